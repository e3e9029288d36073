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
// minimum of its move set. The reads run through run_reads (solver/common/read_loop.hpp); the
// coefficients are the shared CompiledProblem, the starts feasible_start, the polish
// SteepestDescent. The breakout method (run_breakout, Benlic & Hao 2013) shares the gains, the
// move scan and the polish, and replaces the restarts by short adaptive jumps between descents.
#include "qprune/tabu_solver.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"
#include "solver/common/feasible_start.hpp"
#include "solver/common/read_loop.hpp"
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
  if (!(breakout_jump_min_fraction > 0.0 && breakout_jump_min_fraction <= 1.0)) {
    fail("breakout_jump_min_fraction must be in (0, 1], got " +
         std::to_string(breakout_jump_min_fraction));
  }
  if (!(breakout_jump_max_fraction >= breakout_jump_min_fraction &&
        breakout_jump_max_fraction <= 1.0)) {
    fail("breakout_jump_max_fraction must be in [breakout_jump_min_fraction, 1], got " +
         std::to_string(breakout_jump_max_fraction));
  }
  if (breakout_stall < 1)
    fail("breakout_stall must be >= 1, got " + std::to_string(breakout_stall));
}

TabuSearch::TabuSearch(TabuOptions options) : options_(options) { options_.validate(); }

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// What tabu adds to the compiled problem, shared read-only by all reads.
struct TabuProblem {
  const detail::CompiledProblem& p;
  std::vector<double> row_max;  // swap mode: max(0, max_j q_ij), bounds -q_in,out from below
  double tolerance = 0.0;       // improvements smaller than this are rounding noise
  detail::SteepestDescent polish;

  TabuProblem(const detail::CompiledProblem& problem, bool swap_mode)
      : p(problem),
        row_max(swap_mode ? detail::positive_row_bounds(problem) : std::vector<double>{}),
        tolerance(1e-12 * (1.0 + problem.max_flip_change())),
        polish(problem, tolerance) {}
};

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
  const TabuProblem* problem = nullptr;
  const TabuOptions* options = nullptr;
  std::int64_t max_iterations = 0;  // per read; 0: none, the read ends at its time share
  std::int64_t stall_iterations = 0;
  bool breakout = false;  // run_breakout instead of run_tabu
  std::atomic<std::int64_t> iterations{0};
  std::atomic<std::int64_t> local_optima{0};  // breakout
  std::atomic<std::int64_t> restarts{0};
  std::atomic<std::int64_t> reads_completed{0};  // reads that ran all max_iterations
  std::atomic<std::int64_t> search_ns{0};        // time in the iteration loops, summed over reads
};

template <bool kDense>
class TabuRun {
 public:
  TabuRun(Shared& shared, detail::ReadContext& read)
      : sh_(shared),
        tp_(*shared.problem),
        p_(tp_.p),
        layout_(p_.layout()),
        swap_mode_(layout_.has_groups()),
        opt_(*shared.options),
        control_(read.control),
        rng_(read.rng),
        n_(p_.size()),
        x_(static_cast<std::size_t>(n_), 0),
        s_(static_cast<std::size_t>(n_), 1.0),
        d_(static_cast<std::size_t>(n_), 0.0),
        tabu_until_(static_cast<std::size_t>(n_), 0) {
    if (!kDense && swap_mode_) scratch_.assign(static_cast<std::size_t>(n_), 0.0);
  }

  /// `read`: this read's index (for its share of the time limit when there is no iteration count).
  Assignment run(std::int64_t read) {
    const detail::Stopwatch watch;
    detail::feasible_start(layout_, detail::StartDraws::kEveryVariable, rng_, x_.data());
    recompute();
    best_x_ = x_;
    best_e_ = e_;
    // An iteration costs O(n) or more (the move scan and the gain update): a clock read every
    // 2^12 / n iterations is a few microseconds apart, a fraction of a percent of the time, and
    // keeps a stop within microseconds of the limit.
    check_every_ = std::max<std::int64_t>(1, (std::int64_t{1} << 12) / std::max(1, n_));
    max_iterations_ =
        sh_.max_iterations > 0 ? sh_.max_iterations : std::numeric_limits<std::int64_t>::max();
    deadline_s_ = sh_.max_iterations > 0 ? kInf : control_.read_deadline_s(read);  // its share
    const std::int64_t iterations = sh_.breakout ? run_breakout() : run_tabu();
    sh_.iterations += iterations;
    sh_.search_ns += static_cast<std::int64_t>(1e9 * watch.elapsed_s());
    polish();
    return std::move(best_x_);
  }

 private:
  // True when iteration `iter` may not run: the run was stopped, this read's time share is used, or
  // it ran all its iterations. The clock is read every check_every_ iterations.
  [[nodiscard]] bool must_stop(std::int64_t iter) {
    if (iter % check_every_ == 0) {
      if (control_.poll() != SolveStatus::kCompleted) return true;
      if (deadline_s_ < kInf && control_.elapsed_s() >= deadline_s_) {
        control_.note_time_share_used();
        return true;
      }
    }
    if (iter >= max_iterations_) {
      ++sh_.reads_completed;
      return true;
    }
    return false;
  }

  // Tabu search with restarts; returns the iterations run.
  std::int64_t run_tabu() {
    start_round();
    std::int64_t restarts = 0;
    std::int64_t iter = 0;
    for (; !must_stop(iter); ++iter) {
      if (iter - last_improvement_ >= sh_.stall_iterations) {
        restart(iter);
        ++restarts;
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
    sh_.restarts += restarts;
    return iter;
  }

  // Breakout Local Search (Benlic & Hao 2013, "Breakout local search for the max-cut problem",
  // Eng. Appl. of AI 26(3), Algorithm 1): steepest descent to a local optimum, then a jump of L
  // moves. L adapts: L0 after the search escaped the previous local optimum, L + 1 when it fell
  // back into it, Lmax (a random jump) after `stall` local optima in a row without a new best. The
  // jump kind is drawn per local optimum: directed (the best non-tabu move, tenure U[3, n/10],
  // aspiration on a new best) with probability P = max(exp(-w / stall), P0) after w non-improving
  // optima, else recency-based (the least recently moved variable) or random, Q : 1 - Q. Unlike
  // tabu's restarts the jumps never lose the current basin: on sparse Max-Cut the good optima are
  // near each other, and short directed walks between them beat long rounds from far-off starts.
  // Returns the moves made.
  std::int64_t run_breakout() {
    constexpr double kDirectedMinProbability = 0.8;  // P0 of the paper
    constexpr double kRecencyShare = 0.5;            // Q of the paper
    const auto magnitude = [this](double fraction) {
      return std::max(1, static_cast<int>(std::round(fraction * n_)));
    };
    const int jump_min = magnitude(opt_.breakout_jump_min_fraction);
    // At least min(10, n / 2): on small problems a one-move jump is undone by the next descent.
    const int jump_max =
        std::max({jump_min, magnitude(opt_.breakout_jump_max_fraction), std::min(10, n_ / 2)});
    const int stall = opt_.breakout_stall;
    last_moved_.assign(static_cast<std::size_t>(n_), -1);
    double previous_e = kInf;  // energy of the previous local optimum
    int jump = jump_min;
    int non_improving = 0;  // w: local optima in a row without a new best
    std::int64_t local_optima = 0;
    std::int64_t iter = 0;
    const auto move = [&](int j) {
      flip(j);
      tabu_until_[static_cast<std::size_t>(j)] = iter + 1 + breakout_tenure();
      last_moved_[static_cast<std::size_t>(j)] = iter;
      ++iter;
    };
    for (;;) {
      bool stopped = false;
      while (!(stopped = must_stop(iter))) {  // steepest descent
        const Move m = select(iter, false);
        if (!(m.delta < -tp_.tolerance)) break;
        move(m.a);
      }
      if (stopped) break;
      ++local_optima;
      if (e_ < best_e_ - tp_.tolerance) {
        best_e_ = e_;
        best_x_ = x_;
        non_improving = 0;
        check_target();
      } else {
        ++non_improving;
      }
      enum class Kind { kDirected, kRecency, kRandom } kind = Kind::kRandom;
      if (non_improving > stall) {
        jump = jump_max;  // stagnation: a long random jump
        non_improving = 0;
        // Rounding drift of the incremental gains stays bounded by one such period.
        recompute();
      } else {
        // "Fell back into the previous optimum" by energy, not by assignment: on +-1 weights the
        // descent often ends at another optimum of the same plateau, and only a longer jump leaves
        // it (measured on Gset G18 at 5 s: 979 vs 959 of 992).
        const bool fell_back = std::abs(e_ - previous_e) <= tp_.tolerance;
        jump = fell_back ? std::min(jump + 1, jump_max) : jump_min;
        const double directed = std::max(std::exp(-static_cast<double>(non_improving) / stall),
                                         kDirectedMinProbability);
        const double r = detail::uniform01(rng_);
        kind = r < directed                                      ? Kind::kDirected
               : r < directed + (1.0 - directed) * kRecencyShare ? Kind::kRecency
                                                                 : Kind::kRandom;
      }
      previous_e = e_;
      for (int t = 0; t < jump && !(stopped = must_stop(iter)); ++t) {
        if (kind == Kind::kDirected) {
          Move m = select(iter, true);
          if (m.a < 0) m = select(iter, false);  // everything tabu: ignore tabu
          move(m.a);
        } else if (kind == Kind::kRecency) {
          move(least_recently_moved());
        } else {
          move(static_cast<int>(below(static_cast<std::size_t>(n_))));
        }
      }
      if (stopped) break;
    }
    sh_.local_optima += local_optima;
    return iter;
  }

  [[nodiscard]] std::int64_t breakout_tenure() {
    const int choices = std::max(3, n_ / 10) - 2;  // U[3, max(3, n / 10)]
    const std::int64_t t = 3 + below(static_cast<std::size_t>(choices));
    return std::min<std::int64_t>(t, std::max(1, n_ / 4));
  }

  // The variable moved longest ago (never moved first), ties uniformly at random.
  [[nodiscard]] int least_recently_moved() {
    int pick = 0;
    int ties = 0;
    std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
    for (int j = 0; j < n_; ++j) {
      const std::int64_t t = last_moved_[static_cast<std::size_t>(j)];
      if (t < oldest) {
        oldest = t;
        pick = j;
        ties = 1;
      } else if (t == oldest && below(static_cast<std::size_t>(++ties)) == 0) {
        pick = j;
      }
    }
    return pick;
  }

  [[nodiscard]] std::uint32_t below(std::size_t bound) {
    return detail::uniform_below(rng_, static_cast<std::uint32_t>(bound));
  }

  // Gains and energy from scratch, so rounding drift of the incremental updates never accumulates
  // beyond one round.
  void recompute() {
    for (int i = 0; i < n_; ++i) d_[static_cast<std::size_t>(i)] = p_.linear(i);
    for (int j = 0; j < n_; ++j) {
      if (!x_[static_cast<std::size_t>(j)]) continue;
      p_.add_row(d_.data(), j, 1.0);
    }
    e_ = p_.offset();
    for (std::size_t i = 0; i < static_cast<std::size_t>(n_); ++i) {
      if (x_[i]) e_ += 0.5 * (p_.linear(static_cast<int>(i)) + d_[i]);  // c_i + (f_i - c_i) / 2
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
      const double* q = p_.dense_row(j);  // q[j] == 0, so d[j] is untouched by the loop
      for (int k = 0; k < n_; ++k) d[k] += sj * s[k] * q[k];
    } else {
      const int* columns = p_.columns();
      const double* values = p_.values();
      for (std::int64_t e = p_.row_begin(j), end = p_.row_end(j); e < end; ++e) {
        const int k = columns[e];
        d[k] += sj * s[k] * values[e];
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
    if (!swap_mode_) {
      const double* d = d_.data();
      for (int j = 0; j < n_; ++j) {
        const double dj = d[j];
        if (dj > best.delta) continue;
        if (respect_tabu && tabu[j] > iter && !(dj < aspire)) continue;
        offer(best, ties, j, -1, dj);
      }
      return best;
    }
    for (int j : layout_.free_vars) {
      const double dj = d_[static_cast<std::size_t>(j)];
      if (dj > best.delta) continue;
      if (respect_tabu && tabu[j] > iter && !(dj < aspire)) continue;
      offer(best, ties, j, -1, dj);
    }
    for (const detail::GroupLayout::Group& g : layout_.groups) {
      ins_.clear();
      outs_.clear();
      const int* members = layout_.members(g);
      for (int t = 0; t < g.size; ++t)
        (x_[static_cast<std::size_t>(members[t])] ? outs_ : ins_).push_back(members[t]);
      auto by_gain = [&](int l, int r) {
        return d_[static_cast<std::size_t>(l)] < d_[static_cast<std::size_t>(r)];
      };
      std::sort(ins_.begin(), ins_.end(), by_gain);
      std::sort(outs_.begin(), outs_.end(), by_gain);
      const double min_in = d_[static_cast<std::size_t>(ins_.front())];
      for (int o : outs_) {
        const double d_o = d_[static_cast<std::size_t>(o)];
        const double qmax = tp_.row_max[static_cast<std::size_t>(o)];
        // Outs are sorted by gain, but qmax varies: skip (not stop) when this one cannot win.
        if (d_o + min_in - qmax > best.delta) continue;
        const double* q = nullptr;
        if constexpr (kDense) {
          q = p_.dense_row(o);
        } else {
          for (std::int64_t e = p_.row_begin(o); e < p_.row_end(o); ++e)
            scratch_[static_cast<std::size_t>(p_.columns()[e])] = p_.values()[e];
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
          for (std::int64_t e = p_.row_begin(o); e < p_.row_end(o); ++e)
            scratch_[static_cast<std::size_t>(p_.columns()[e])] = 0.0;
        }
      }
    }
    return best;
  }

  void check_target() {
    const std::optional<double>& target = control_.target();
    if (!target) return;
    // Tracked energies carry rounding; the user's model decides (feasibility included, so a
    // penalised search stops only on a feasible sample).
    if (best_e_ > *target + tp_.tolerance) return;
    (void)control_.check_target(best_x_);
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
        !swap_mode_ && elite_.size() >= 2 && detail::uniform01(rng_) < opt_.relink_probability;
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
    if (!swap_mode_) {
      std::vector<int> order(static_cast<std::size_t>(n_));
      std::iota(order.begin(), order.end(), 0);
      for (std::size_t t = 0; t < count && t < order.size(); ++t) {
        std::swap(order[t], order[t + below(order.size() - t)]);
        flip(order[t]);
      }
      return;
    }
    std::vector<int> movable = layout_.free_vars;
    movable.insert(movable.end(), layout_.slots.begin(), layout_.slots.end());
    if (movable.empty()) return;
    std::vector<int> other;
    for (std::size_t t = 0; t < count; ++t) {
      const int v = movable[below(movable.size())];
      const int g = layout_.group_of[static_cast<std::size_t>(v)];
      if (g < 0) {
        flip(v);
        continue;
      }
      other.clear();
      const detail::GroupLayout::Group& group = layout_.groups[static_cast<std::size_t>(g)];
      const int* members = layout_.members(group);
      for (int m = 0; m < group.size; ++m)
        if (x_[static_cast<std::size_t>(members[m])] != x_[static_cast<std::size_t>(v)])
          other.push_back(members[m]);
      flip(v);
      flip(other[below(other.size())]);  // non-empty: 0 < k < size
    }
  }

  // Steepest descent from exactly recomputed fields: every sample is a local minimum of the move
  // set. Each move lowers the energy by more than the tolerance, so it cannot cycle; the cap is a
  // last guard.
  void polish() {
    std::vector<double> f;
    p_.fields(best_x_.data(), f);
    (void)tp_.polish.run(best_x_.data(), f.data(), 100 * std::int64_t{n_} + 1000);
  }

  Shared& sh_;
  const TabuProblem& tp_;
  const detail::CompiledProblem& p_;
  const detail::GroupLayout& layout_;
  bool swap_mode_;
  const TabuOptions& opt_;
  detail::ReadControl& control_;
  pcg32 rng_;
  int n_;
  Assignment x_;
  std::vector<double> s_;  // 1 - 2 x_i
  std::vector<double> d_;  // flip gains
  std::vector<std::int64_t> tabu_until_;
  std::vector<std::int64_t> last_moved_;  // breakout: iteration of each variable's last move
  std::int64_t check_every_ = 1;          // iterations between clock reads
  std::int64_t max_iterations_ = 0;
  double deadline_s_ = kInf;  // this read's share of the time limit
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
  const detail::StopCondition stop(options);
  const bool swap_mode = setup.native();
  const detail::CompiledProblem compiled(setup.searched(), swap_mode);
  const TabuProblem problem(compiled, swap_mode);
  const std::int64_t n = compiled.size();

  // Breakout makes single flips only; kAuto keeps it to the sparse problems it is built for.
  if (options_.method == TabuMethod::kBreakout && swap_mode) {
    throw InvalidArgument(
        "TabuOptions::method breakout makes single flips only; this model's constraint groups need "
        "method tabu (swap moves) or the penalty constraint mode");
  }
  const bool breakout = options_.method == TabuMethod::kBreakout ||
                        (options_.method == TabuMethod::kAuto && !swap_mode &&
                         setup.searched().density() <= kBreakoutMaxDensity);

  Shared shared;
  shared.problem = &problem;
  shared.options = &options_;
  shared.breakout = breakout;
  // Iterations per read: the given count; else, under a time limit with a fixed number of reads,
  // none (each read searches until its share of the limit: a budget is there to be used); else
  // max(100000, 1000 n), which also sizes the reads repeated until a time limit (10 times more
  // for breakout, see TabuOptions::max_iterations).
  const bool time_shares = options_.max_iterations == 0 && std::isfinite(options.time_limit_s) &&
                           !options.reads_until_time_limit;
  const std::int64_t automatic_iterations = breakout ? std::max<std::int64_t>(1'000'000, 10'000 * n)
                                                     : std::max<std::int64_t>(100'000, 1000 * n);
  shared.max_iterations = options_.max_iterations > 0 ? options_.max_iterations
                          : time_shares               ? 0
                                                      : automatic_iterations;
  shared.stall_iterations = options_.stall_iterations > 0 ? options_.stall_iterations
                                                          : std::max<std::int64_t>(20'000, 10 * n);

  const detail::ReadsSummary summary =
      detail::run_reads(model, options, stop, "tabu reads", result, [&](detail::ReadContext& r) {
        return compiled.dense() ? TabuRun<true>(shared, r).run(r.read)
                                : TabuRun<false>(shared, r).run(r.read);
      });

  const std::string reads =
      std::to_string(summary.reads_run) +
      (options.reads_until_time_limit
           ? " reads (new reads until the time limit)"
           : std::string(" of ") + std::to_string(options.num_reads) + " reads");
  const std::string per_read = shared.max_iterations > 0
                                   ? std::to_string(shared.max_iterations) + " iterations per read"
                                   : "each read searching for its share of the time limit";
  switch (result.status) {
    case SolveStatus::kTargetReached:
      result.message = "reached the target energy (" + reads + ")";
      break;
    case SolveStatus::kInterrupted:
      result.message = "interrupted; best sample so far kept (" + reads + ")";
      break;
    case SolveStatus::kTimeLimit:
      result.message = "stopped at the time limit: " + reads + ", " + per_read;
      break;
    default:
      result.message = "ran " + reads + ", " + per_read;
  }
  const auto iterations = shared.iterations.load();
  const double search_s = 1e-9 * static_cast<double>(shared.search_ns.load());
  result.counters["iterations"] = static_cast<double>(iterations);
  result.counters["search_time_s"] = search_s;
  result.counters["iterations_per_s"] =
      search_s > 0.0 ? static_cast<double>(iterations) / search_s : 0.0;
  result.counters["restarts"] = static_cast<double>(shared.restarts.load());
  result.counters["local_optima"] = static_cast<double>(shared.local_optima.load());
  result.counters["reads"] = static_cast<double>(summary.reads_run);
  result.counters["reads_completed"] = static_cast<double>(shared.reads_completed.load());
  result.info["max_iterations"] = shared.max_iterations > 0 ? std::to_string(shared.max_iterations)
                                                            : "none (time share per read)";
  result.info["method"] = breakout ? "breakout" : "tabu";
  if (!breakout) result.info["stall_iterations"] = std::to_string(shared.stall_iterations);
  result.info["storage"] = compiled.dense() ? "dense" : "sparse";
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
