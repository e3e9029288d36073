// Tabu search for QUBO.
//
// Maths. With local fields f_i = c_i + sum_j q_ij x_j and s_i = 1 - 2 x_i, flipping x_i changes the
// energy by the gain d_i = s_i f_i. Flipping j changes every other gain by d_k += s_j s_k q_jk
// (before the flip), and d_j -> -d_j: one O(n) pass over row j, written as a branch-free loop over
// contiguous doubles so the compiler vectorises it (dense form), or over the CSR row (sparse form).
// Under "exactly k" groups the moves are swaps inside a group (x_in 0 -> 1, x_out 1 -> 0) with
// delta = f_in - f_out - q_in,out = d_in + d_out - q_in,out, and plain flips of the variables
// outside any group, so every visited assignment is feasible.
//
// Search (Glover, Lü & Hao 2010 "Diversification-driven tabu search for UBQP"; Palubeckis 2004
// "Multistart tabu search strategies for the unconstrained binary quadratic optimization problem";
// Beasley 1998 "Heuristic algorithms for the unconstrained binary quadratic programming problem"):
// each iteration makes the best admissible move, ties broken uniformly at random; a move is
// admissible when none of its variables is tabu, or when it gives a new best energy (aspiration).
// A moved variable stays tabu for n/100 + U[1,10] iterations (the random part breaks cycles of a
// fixed tenure; capped at n/4 so small problems keep free moves). When the round's best has not
// improved for stall_iterations, the search restarts: either from the best solution with a random
// fraction of its variables flipped (swapped), or from the best point of a greedy path between two
// elite solutions (path relinking, Wang, Lü, Glover & Hao 2012), taken at a distance in [d/3, 2d/3]
// from the start so the new round is both good and away from both parents. Each read ends with a
// best-improvement descent (polish) from exactly recomputed gains, so every sample is a local
// minimum of its move set.
#include "qprune/tabu_solver.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "core/parallel_for.hpp"
#include "solver/common/progress.hpp"
#include "core/rng.hpp"
#include "solver/common/samples.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune {

void TabuOptions::validate() const {
  auto fail = [](const std::string& what) { throw InvalidArgument("TabuOptions::" + what); };
  if (tenure_divisor < 1)
    fail("tenure_divisor must be >= 1, got " + std::to_string(tenure_divisor));
  if (tenure_random < 0) fail("tenure_random must be >= 0, got " + std::to_string(tenure_random));
  if (stall_iterations < 0) {
    fail("stall_iterations must be >= 0, got " + std::to_string(stall_iterations));
  }
  if (max_iterations < 0)
    fail("max_iterations must be >= 0, got " + std::to_string(max_iterations));
  if (!(perturbation_fraction > 0.0 && perturbation_fraction <= 1.0)) {
    fail("perturbation_fraction must be in (0, 1], got " + std::to_string(perturbation_fraction));
  }
  if (!(max_perturbation_fraction >= perturbation_fraction && max_perturbation_fraction <= 1.0)) {
    fail("max_perturbation_fraction must be in [perturbation_fraction, 1], got " +
         std::to_string(max_perturbation_fraction));
  }
  if (elite_size < 0) fail("elite_size must be >= 0, got " + std::to_string(elite_size));
  if (!(relink_probability >= 0.0 && relink_probability <= 1.0)) {
    fail("relink_probability must be in [0, 1], got " + std::to_string(relink_probability));
  }
}

TabuSearch::TabuSearch(TabuOptions options) : options_(options) { options_.validate(); }

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The searched problem, compiled once and shared read-only by all reads.
struct Compiled {
  int n = 0;
  std::vector<double> linear;
  double offset = 0.0;
  bool dense = false;
  const double* dense_q = nullptr;  // column-major symmetric, zero diagonal: column i == row i
  const std::int64_t* row_offsets = nullptr;
  const int* columns = nullptr;
  const double* values = nullptr;
  // Swap mode: groups with 0 < k < size (the others are fixed), and the free variables.
  bool swap_mode = false;
  std::vector<std::vector<int>> groups;
  std::vector<int> group_of;  // -1: free or fixed
  std::vector<int> free_vars;
  std::vector<double>
      row_max;             // max(0, max_j q_ij): bounds -q_in,out from below when pruning swaps
  double tolerance = 0.0;  // improvements smaller than this are rounding noise

  [[nodiscard]] const double* row(int i) const {
    return dense_q + static_cast<std::size_t>(i) * static_cast<std::size_t>(n);
  }
};

Compiled compile(const QuboModel& model, bool swap_mode) {
  Compiled c;
  c.n = model.num_variables();
  c.linear.assign(model.linear().data(), model.linear().data() + c.n);
  c.offset = model.offset();
  c.dense = model.storage() == Storage::kDense;
  if (c.dense) {
    c.dense_q = model.dense_couplings().data();
  } else {
    c.row_offsets = model.row_offsets().data();
    c.columns = model.columns().data();
    c.values = model.values().data();
  }
  c.tolerance = 1e-12 * (1.0 + model.max_flip_change());
  c.swap_mode = swap_mode;
  c.group_of.assign(static_cast<std::size_t>(c.n), -1);
  std::vector<bool> in_group(static_cast<std::size_t>(c.n), false);
  if (swap_mode) {
    for (const CardinalityConstraint& g : model.constraints()) {
      for (int v : g.variables) in_group[static_cast<std::size_t>(v)] = true;
      if (g.k == 0 || g.k == static_cast<int>(g.variables.size())) continue;
      for (int v : g.variables)
        c.group_of[static_cast<std::size_t>(v)] = static_cast<int>(c.groups.size());
      c.groups.push_back(g.variables);
    }
    c.row_max.assign(static_cast<std::size_t>(c.n), 0.0);
    for (int i = 0; i < c.n; ++i) {
      model.for_each_in_row(i, [&](int, double q) {
        c.row_max[static_cast<std::size_t>(i)] =
            std::max(c.row_max[static_cast<std::size_t>(i)], q);
      });
    }
  }
  for (int i = 0; i < c.n; ++i)
    if (!in_group[static_cast<std::size_t>(i)]) c.free_vars.push_back(i);
  return c;
}

// A move: flip `a` (b < 0) or swap in `a`, out `b`.
struct Move {
  int a = -1;
  int b = -1;
  double delta = kInf;
};

struct Elite {
  Assignment x;
  double energy = kInf;
};

// State shared between the reads of one solve.
struct Shared {
  const Compiled* problem = nullptr;
  const TabuOptions* options = nullptr;
  const QuboModel* original = nullptr;  // the user's model: target checks use its energy and groups
  const detail::StopCondition* stop = nullptr;
  std::optional<double> target;
  std::int64_t max_iterations = 0;
  std::int64_t stall_iterations = 0;
  std::atomic<bool> target_hit{false};
};

struct ReadOutcome {
  Assignment x;
  SolveStatus status = SolveStatus::kCompleted;
  std::int64_t iterations = 0;
  std::int64_t restarts = 0;
};

template <bool kDense>
class TabuRun {
 public:
  TabuRun(Shared& shared, pcg32 rng)
      : sh_(shared),
        p_(*shared.problem),
        opt_(*shared.options),
        rng_(rng),
        n_(p_.n),
        x_(static_cast<std::size_t>(n_), 0),
        s_(static_cast<std::size_t>(n_), 1.0),
        d_(static_cast<std::size_t>(n_), 0.0),
        tabu_until_(static_cast<std::size_t>(n_), 0) {
    if (!kDense && p_.swap_mode) scratch_.assign(static_cast<std::size_t>(n_), 0.0);
  }

  ReadOutcome run() {
    random_start();
    recompute();
    best_x_ = x_;
    best_e_ = e_;
    start_round();
    ReadOutcome out;
    const std::int64_t check_every =
        std::max<std::int64_t>(1, (std::int64_t{1} << 16) / std::max(1, n_));
    std::int64_t iter = 0;
    for (;; ++iter) {
      if (iter % check_every == 0) {
        if (sh_.target_hit.load(std::memory_order_relaxed)) {
          out.status = SolveStatus::kTargetReached;
          break;
        }
        const SolveStatus s = sh_.stop->check();
        if (s != SolveStatus::kCompleted) {
          out.status = s;
          break;
        }
      }
      if (iter >= sh_.max_iterations) break;
      if (iter - last_improvement_ >= sh_.stall_iterations) {
        restart(iter);
        ++out.restarts;
      }
      Move m = select(iter, true);
      if (m.a < 0) m = select(iter, false);  // everything tabu and nothing aspires: ignore tabu
      if (m.a < 0) break;                    // no move at all (everything fixed)
      apply(m, iter);
      if (e_ < round_best_e_) {
        round_best_e_ = e_;
        round_best_x_ = x_;
        last_improvement_ = iter;
        if (e_ < best_e_) {
          best_e_ = e_;
          best_x_ = x_;
          check_target();
        }
      }
    }
    out.iterations = iter;
    polish();
    out.x = std::move(best_x_);
    return out;
  }

 private:
  [[nodiscard]] std::uint32_t below(std::size_t bound) {
    return detail::uniform_below(rng_, static_cast<std::uint32_t>(bound));
  }

  void random_start() {
    for (auto& v : x_) v = static_cast<std::uint8_t>(rng_(2));
    if (!p_.swap_mode) return;
    for (const CardinalityConstraint& g : sh_.original->constraints()) {
      std::vector<int> vars = g.variables;
      for (std::size_t a = 0; a < vars.size(); ++a) {  // partial Fisher-Yates: the first k are ones
        std::swap(vars[a], vars[a + below(vars.size() - a)]);
        x_[static_cast<std::size_t>(vars[a])] = a < static_cast<std::size_t>(g.k) ? 1 : 0;
      }
    }
  }

  // Gains and energy from scratch, so rounding drift of the incremental updates never accumulates
  // beyond one round.
  void recompute() {
    for (int i = 0; i < n_; ++i)
      d_[static_cast<std::size_t>(i)] = p_.linear[static_cast<std::size_t>(i)];
    for (int j = 0; j < n_; ++j) {
      if (!x_[static_cast<std::size_t>(j)]) continue;
      if constexpr (kDense) {
        const double* q = p_.row(j);
        for (int k = 0; k < n_; ++k) d_[static_cast<std::size_t>(k)] += q[k];
      } else {
        for (std::int64_t e = p_.row_offsets[j]; e < p_.row_offsets[j + 1]; ++e)
          d_[static_cast<std::size_t>(p_.columns[e])] += p_.values[e];
      }
    }
    e_ = p_.offset;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n_); ++i) {
      if (x_[i]) e_ += 0.5 * (p_.linear[i] + d_[i]);  // c_i + (f_i - c_i) / 2
      s_[i] = x_[i] ? -1.0 : 1.0;
      d_[i] *= s_[i];
    }
  }

  void flip(int j) {
    const auto uj = static_cast<std::size_t>(j);
    e_ += d_[uj];
    const double sj = s_[uj];
    double* d = d_.data();
    const double* s = s_.data();
    if constexpr (kDense) {
      const double* q = p_.row(j);  // q[j] == 0, so d[j] is untouched by the loop
      for (int k = 0; k < n_; ++k) d[k] += sj * s[k] * q[k];
    } else {
      for (std::int64_t e = p_.row_offsets[j]; e < p_.row_offsets[j + 1]; ++e) {
        const int k = p_.columns[e];
        d[k] += sj * s[k] * p_.values[e];
      }
    }
    d_[uj] = -d_[uj];
    s_[uj] = -sj;
    x_[uj] ^= 1U;
  }

  [[nodiscard]] std::int64_t tenure() {
    std::int64_t t = n_ / opt_.tenure_divisor;
    if (opt_.tenure_random > 0) t += 1 + below(static_cast<std::size_t>(opt_.tenure_random));
    return std::clamp<std::int64_t>(t, 1, std::max(1, n_ / 4));
  }

  void apply(const Move& m, std::int64_t iter) {
    flip(m.a);
    tabu_until_[static_cast<std::size_t>(m.a)] = iter + 1 + tenure();
    if (m.b >= 0) {
      flip(m.b);
      tabu_until_[static_cast<std::size_t>(m.b)] = iter + 1 + tenure();
    }
  }

  // Keeps the better of `best` and (a, b, delta), ties uniformly at random (reservoir sampling).
  void offer(Move& best, int& ties, int a, int b, double delta) {
    if (delta < best.delta) {
      best = {a, b, delta};
      ties = 1;
    } else if (delta == best.delta && below(static_cast<std::size_t>(++ties)) == 0) {
      best = {a, b, delta};
    }
  }

  // The best admissible move (respect_tabu) or the best move of all.
  Move select(std::int64_t iter, bool respect_tabu) {
    Move best;
    int ties = 0;
    const double aspire = best_e_ - e_;  // delta < aspire: a new best, admissible even if tabu
    const std::int64_t* tabu = tabu_until_.data();
    if (!p_.swap_mode) {
      const double* d = d_.data();
      for (int j = 0; j < n_; ++j) {
        const double dj = d[j];
        if (dj > best.delta) continue;
        if (respect_tabu && tabu[j] > iter && !(dj < aspire)) continue;
        offer(best, ties, j, -1, dj);
      }
      return best;
    }
    for (int j : p_.free_vars) {
      const double dj = d_[static_cast<std::size_t>(j)];
      if (dj > best.delta) continue;
      if (respect_tabu && tabu[j] > iter && !(dj < aspire)) continue;
      offer(best, ties, j, -1, dj);
    }
    for (const std::vector<int>& g : p_.groups) {
      ins_.clear();
      outs_.clear();
      for (int v : g) (x_[static_cast<std::size_t>(v)] ? outs_ : ins_).push_back(v);
      auto by_gain = [&](int l, int r) {
        return d_[static_cast<std::size_t>(l)] < d_[static_cast<std::size_t>(r)];
      };
      std::sort(ins_.begin(), ins_.end(), by_gain);
      std::sort(outs_.begin(), outs_.end(), by_gain);
      const double min_in = d_[static_cast<std::size_t>(ins_.front())];
      for (int o : outs_) {
        const double d_o = d_[static_cast<std::size_t>(o)];
        const double qmax = p_.row_max[static_cast<std::size_t>(o)];
        // Outs are sorted by gain, but qmax varies: skip (not stop) when this one cannot win.
        if (d_o + min_in - qmax > best.delta) continue;
        const double* q = nullptr;
        if constexpr (kDense) {
          q = p_.row(o);
        } else {
          for (std::int64_t e = p_.row_offsets[o]; e < p_.row_offsets[o + 1]; ++e)
            scratch_[static_cast<std::size_t>(p_.columns[e])] = p_.values[e];
          q = scratch_.data();
        }
        const bool o_tabu = respect_tabu && tabu[o] > iter;
        for (int in : ins_) {
          const double d_in = d_[static_cast<std::size_t>(in)];
          if (d_o + d_in - qmax > best.delta) break;  // ins sorted: no later one can win
          const double delta = d_o + d_in - q[in];
          if (delta > best.delta) continue;
          if ((o_tabu || (respect_tabu && tabu[in] > iter)) && !(delta < aspire)) continue;
          offer(best, ties, in, o, delta);
        }
        if constexpr (!kDense) {
          for (std::int64_t e = p_.row_offsets[o]; e < p_.row_offsets[o + 1]; ++e)
            scratch_[static_cast<std::size_t>(p_.columns[e])] = 0.0;
        }
      }
    }
    return best;
  }

  void check_target() {
    if (!sh_.target) return;
    // Tracked energies carry rounding; the user's model decides (feasibility included, so a
    // penalised search stops only on a feasible sample).
    if (best_e_ > *sh_.target + p_.tolerance) return;
    if (sh_.original->is_feasible(best_x_) && sh_.original->energy(best_x_) <= *sh_.target) {
      sh_.target_hit.store(true, std::memory_order_relaxed);
    }
  }

  void start_round() {
    round_best_e_ = e_;
    round_best_x_ = x_;
    std::fill(tabu_until_.begin(), tabu_until_.end(), 0);
  }

  void add_elite(const Assignment& x, double e) {
    if (opt_.elite_size < 2) return;
    for (const Elite& el : elite_)
      if (el.energy == e && el.x == x) return;
    if (static_cast<int>(elite_.size()) < opt_.elite_size) {
      elite_.push_back({x, e});
      return;
    }
    auto worst = std::max_element(elite_.begin(), elite_.end(), [](const Elite& l, const Elite& r) {
      return l.energy < r.energy;
    });
    if (e < worst->energy) *worst = {x, e};
  }

  void restart(std::int64_t iter) {
    add_elite(round_best_x_, round_best_e_);
    failed_restarts_ = best_e_ < best_at_restart_ ? 0 : failed_restarts_ + 1;
    best_at_restart_ = best_e_;
    const bool relink =
        !p_.swap_mode && elite_.size() >= 2 && detail::uniform01(rng_) < opt_.relink_probability;
    if (!(relink && path_relink())) perturb_best();
    last_improvement_ = iter;
    start_round();
  }

  // Greedy path from one elite solution towards another: each step flips the differing variable
  // with the best gain; the new round starts from the best point at distance [d/3, 2d/3].
  bool path_relink() {
    const std::size_t a = below(elite_.size());
    std::size_t b = below(elite_.size() - 1);
    if (b >= a) ++b;
    x_ = elite_[a].x;
    std::vector<int> diff;
    for (int i = 0; i < n_; ++i)
      if (x_[static_cast<std::size_t>(i)] != elite_[b].x[static_cast<std::size_t>(i)])
        diff.push_back(i);
    if (diff.size() < 3) return false;
    recompute();
    const std::size_t lo = diff.size() / 3, hi = 2 * diff.size() / 3;
    Assignment best_x;
    double best_e = kInf;
    for (std::size_t step = 1; step <= hi; ++step) {
      std::size_t pick = 0;
      int ties = 0;
      double pick_d = kInf;
      for (std::size_t t = 0; t < diff.size(); ++t) {
        const double dt = d_[static_cast<std::size_t>(diff[t])];
        if (dt < pick_d) {
          pick_d = dt;
          pick = t;
          ties = 1;
        } else if (dt == pick_d && below(static_cast<std::size_t>(++ties)) == 0) {
          pick = t;
        }
      }
      flip(diff[pick]);
      diff[pick] = diff.back();
      diff.pop_back();
      if (step >= lo && e_ < best_e) {
        best_e = e_;
        best_x = x_;
      }
    }
    x_ = std::move(best_x);
    recompute();
    return true;
  }

  [[nodiscard]] double perturbation_fraction() const {
    return std::min(opt_.max_perturbation_fraction,
                    opt_.perturbation_fraction * static_cast<double>(1 + failed_restarts_));
  }

  // The best solution with a random fraction of its variables flipped; in swap mode a grouped
  // variable is swapped with a random member of its group holding the other value.
  void perturb_best() {
    x_ = best_x_;
    recompute();
    const auto count =
        static_cast<std::size_t>(std::max(1.0, std::round(perturbation_fraction() * n_)));
    if (!p_.swap_mode) {
      std::vector<int> order(static_cast<std::size_t>(n_));
      std::iota(order.begin(), order.end(), 0);
      for (std::size_t t = 0; t < count && t < order.size(); ++t) {
        std::swap(order[t], order[t + below(order.size() - t)]);
        flip(order[t]);
      }
      return;
    }
    std::vector<int> movable = p_.free_vars;
    for (const auto& g : p_.groups) movable.insert(movable.end(), g.begin(), g.end());
    if (movable.empty()) return;
    std::vector<int> other;
    for (std::size_t t = 0; t < count; ++t) {
      const int v = movable[below(movable.size())];
      const int g = p_.group_of[static_cast<std::size_t>(v)];
      if (g < 0) {
        flip(v);
        continue;
      }
      other.clear();
      for (int u : p_.groups[static_cast<std::size_t>(g)])
        if (x_[static_cast<std::size_t>(u)] != x_[static_cast<std::size_t>(v)]) other.push_back(u);
      flip(v);
      flip(other[below(other.size())]);  // non-empty: 0 < k < size
    }
  }

  // Best-improvement descent from exact gains: every sample is a local minimum of the move set.
  void polish() {
    x_ = best_x_;
    recompute();
    // Each accepted move lowers the tracked energy by more than the tolerance (a move that does
    // not is undone and ends the descent), so the descent cannot cycle; the cap is a last guard.
    const std::int64_t max_moves = 100 * std::int64_t{n_} + 1000;
    for (std::int64_t moves = 0; moves < max_moves; ++moves) {
      const Move m = select(0, false);
      if (m.a < 0 || !(m.delta < -p_.tolerance)) break;
      const double before = e_;
      flip(m.a);
      if (m.b >= 0) flip(m.b);
      if (!(e_ < before - p_.tolerance)) {
        if (m.b >= 0) flip(m.b);
        flip(m.a);
        break;
      }
    }
    best_x_ = x_;
  }

  Shared& sh_;
  const Compiled& p_;
  const TabuOptions& opt_;
  pcg32 rng_;
  int n_;
  Assignment x_;
  std::vector<double> s_;  // 1 - 2 x_i
  std::vector<double> d_;  // flip gains
  std::vector<std::int64_t> tabu_until_;
  double e_ = 0.0;
  Assignment best_x_, round_best_x_;
  double best_e_ = kInf, round_best_e_ = kInf;
  std::int64_t last_improvement_ = 0;
  double best_at_restart_ = kInf;  // best_e_ at the previous restart
  int failed_restarts_ = 0;        // restarts in a row whose round found no new best
  std::vector<Elite> elite_;
  std::vector<int> ins_, outs_;
  std::vector<double> scratch_;  // sparse swap mode: row of q scattered to dense
};

}  // namespace

SolveResult TabuSearch::solve(const QuboModel& model, const SolveOptions& options) const {
  detail::SolveSetup setup(name(), model, options);
  SolveResult& result = setup.result;
  detail::StopCondition stop(options);
  const bool swap_mode = setup.native();
  const QuboModel* searched = &setup.searched();
  const Compiled problem = compile(*searched, swap_mode);
  const std::int64_t n = problem.n;

  Shared shared;
  shared.problem = &problem;
  shared.options = &options_;
  shared.original = &model;
  shared.stop = &stop;
  shared.target = options.target_energy;
  shared.max_iterations = options_.max_iterations > 0 ? options_.max_iterations
                                                      : std::max<std::int64_t>(100'000, 1000 * n);
  shared.stall_iterations = options_.stall_iterations > 0 ? options_.stall_iterations
                                                          : std::max<std::int64_t>(20'000, 10 * n);

  std::vector<ReadOutcome> outcomes(static_cast<std::size_t>(options.num_reads));
  detail::UnitProgress progress(model, options, "tabu reads", options.num_reads);
  detail::parallel_for(options.num_reads, [&](std::int64_t read) {
    pcg32 rng = detail::make_rng(options.seed, static_cast<std::uint64_t>(read));
    ReadOutcome& out = outcomes[static_cast<std::size_t>(read)];
    if (problem.dense) {
      out = TabuRun<true>(shared, rng).run();
    } else {
      out = TabuRun<false>(shared, rng).run();
    }
    progress.unit_done(&out.x);
  });

  std::int64_t iterations = 0, restarts = 0;
  bool interrupted = false, timed_out = false;
  std::vector<Assignment> assignments;
  for (ReadOutcome& o : outcomes) {
    iterations += o.iterations;
    restarts += o.restarts;
    interrupted |= o.status == SolveStatus::kInterrupted;
    timed_out |= o.status == SolveStatus::kTimeLimit;
    assignments.push_back(std::move(o.x));
  }
  detail::finalize_samples(model, std::move(assignments), options.max_samples, result);
  result.wall_time_s = stop.elapsed_s();

  const bool target_hit =
      shared.target_hit.load() || (options.target_energy && result.best().feasible &&
                                   result.best().energy <= *options.target_energy);
  if (target_hit) {
    result.status = SolveStatus::kTargetReached;
    result.message = "reached the target energy";
  } else if (interrupted) {
    result.status = SolveStatus::kInterrupted;
    result.message = "interrupted; best sample so far kept";
  } else if (timed_out) {
    result.status = SolveStatus::kTimeLimit;
    result.message = "stopped at the time limit";
  } else {
    result.status = SolveStatus::kCompleted;
    result.message = "ran " + std::to_string(shared.max_iterations) + " iterations in each of " +
                     std::to_string(options.num_reads) + " reads";
  }
  result.counters["iterations"] = static_cast<double>(iterations);
  result.counters["iterations_per_s"] =
      result.wall_time_s > 0.0 ? static_cast<double>(iterations) / result.wall_time_s : 0.0;
  result.counters["restarts"] = static_cast<double>(restarts);
  result.counters["reads"] = options.num_reads;
  result.info["max_iterations"] = std::to_string(shared.max_iterations);
  result.info["stall_iterations"] = std::to_string(shared.stall_iterations);
  result.info["storage"] = problem.dense ? "dense" : "sparse";
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
