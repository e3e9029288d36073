// Greedy solver: best-improvement descent, one read per start, reads in parallel.
//
// Local fields f_j = c_j + sum_k q_jk x_k give every move's energy change in O(1):
//   flip i:                    (1 - 2 x_i) f_i
//   swap (in: 0 -> 1, out: 1 -> 0, same group):  f_in - f_out - q_in,out
// (the last term because taking `out` away first lowers f_in by q_in,out). Choosing the best move
// scans the candidates (O(n) for flips; for swaps O(sum over the group's ones of (degree + group
// size)), q_in,out read from the out-row scattered into a scratch array); applying a move updates
// the fields along the flipped rows, O(degree). A move is taken only if it lowers the energy by
// more than a tolerance scaled to the model (1e-12 B), so rounding can never make a descent cycle.
#include "qprune/greedy_solver.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "core/memory_check.hpp"
#include "qprune/error.hpp"
#include "core/parallel_for.hpp"
#include "solver/common/progress.hpp"
#include "core/rng.hpp"
#include "solver/common/samples.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune {
namespace {

std::size_t idx(int i) { return static_cast<std::size_t>(i); }
constexpr std::int64_t kPollMoves = 16;  // poll the stop conditions every 16 moves

// The solver's own form: the linear terms and either dense rows (a dense model: O(1) coupling
// lookup for swaps, contiguous row updates) or symmetric CSR rows (a sparse model).
struct Compiled {
  int n = 0;
  bool dense = false;
  std::vector<double> linear;
  std::vector<double> matrix;  // dense: row-major n x n, zero diagonal
  std::vector<std::int64_t> offsets{0};
  std::vector<int> cols;
  std::vector<double> vals;

  explicit Compiled(const QuboModel& m)
      : n(m.num_variables()), dense(m.storage() == Storage::kDense) {
    linear.assign(m.linear().data(), m.linear().data() + n);
    if (dense) {
      const Eigen::MatrixXd& q = m.dense_couplings();  // symmetric: column i is row i
      matrix.assign(q.data(), q.data() + static_cast<std::size_t>(q.size()));
      return;
    }
    for (int i = 0; i < n; ++i) {
      m.for_each_in_row(i, [&](int j, double q) {
        cols.push_back(j);
        vals.push_back(q);
      });
      offsets.push_back(static_cast<std::int64_t>(cols.size()));
    }
  }
  [[nodiscard]] const double* dense_row(int i) const { return matrix.data() + idx(i) * idx(n); }
  // f[j] += s * q_ij for every j.
  void add_row(int i, double s, std::vector<double>& f) const {
    if (dense) {
      const double* row = dense_row(i);
      double* fp = f.data();
      for (int j = 0; j < n; ++j) fp[j] += s * row[j];
      return;
    }
    for (auto p = offsets[idx(i)]; p < offsets[idx(i) + 1]; ++p) {
      f[idx(cols[static_cast<std::size_t>(p)])] += s * vals[static_cast<std::size_t>(p)];
    }
  }
  void fields(const Assignment& x, std::vector<double>& f) const {
    f = linear;
    for (int k = 0; k < n; ++k)
      if (x[idx(k)]) add_row(k, 1.0, f);
  }
  void flip(Assignment& x, std::vector<double>& f, int i) const {
    add_row(i, x[idx(i)] ? -1.0 : 1.0, f);
    x[idx(i)] ^= 1;
  }
};

// A group that can swap (0 < k < size) and the largest coupling inside it, for the bound
// delta(out, in) >= min_in f_in - f_out - max_q.
struct SwapGroup {
  std::vector<int> variables;
  double max_q = 0.0;
};

struct Shared {
  const detail::StopCondition* stop = nullptr;
  std::atomic<int> reason{0};  // a SolveStatus, 0 while the search goes on
  std::atomic<std::int64_t> moves{0};
  std::atomic<std::int64_t> reads{0};
  void set(SolveStatus s) {
    int expected = 0;
    reason.compare_exchange_strong(expected, static_cast<int>(s));
  }
  bool poll() {
    if (reason.load(std::memory_order_relaxed) != 0) return true;
    const SolveStatus s = stop->check();
    if (s == SolveStatus::kCompleted) return false;
    set(s);
    return true;
  }
};

// One descent (flips of `flip_vars`, swaps inside `groups`) from x, in place.
struct Descent {
  const Compiled& cm;
  const std::vector<int>& flip_vars;
  const std::vector<SwapGroup>& groups;
  double tolerance;
  std::int64_t max_moves;

  std::int64_t run(Assignment& x, std::vector<double>& f, Shared& shared) const {
    std::vector<double> scratch(cm.dense ? 0 : idx(cm.n), 0.0);
    std::vector<int> ones, zeros;
    std::int64_t moves = 0;
    while (moves < max_moves) {
      if (moves % kPollMoves == 0 && moves > 0 && shared.poll()) break;
      double best = -tolerance;
      int best_a = -1, best_b = -1;  // flip: (a, -1); swap: (out a, in b)
      for (int i : flip_vars) {
        const double d = x[idx(i)] ? -f[idx(i)] : f[idx(i)];
        if (d < best) {
          best = d;
          best_a = i;
          best_b = -1;
        }
      }
      for (const SwapGroup& g : groups) {
        ones.clear();
        zeros.clear();
        double min_in = std::numeric_limits<double>::infinity();
        for (int v : g.variables) {
          if (x[idx(v)]) {
            ones.push_back(v);
          } else {
            zeros.push_back(v);
            min_in = std::min(min_in, f[idx(v)]);
          }
        }
        for (int o : ones) {
          if (min_in - f[idx(o)] - g.max_q >= best) continue;  // no `in` can beat the best move
          const double* q = nullptr;
          if (cm.dense) {
            q = cm.dense_row(o);
          } else {
            cm.add_row(o, 1.0, scratch);  // scatter row o: scratch[j] = q_oj
            q = scratch.data();
          }
          for (int in : zeros) {
            const double d = f[idx(in)] - f[idx(o)] - q[in];
            if (d < best) {
              best = d;
              best_a = o;
              best_b = in;
            }
          }
          if (!cm.dense) cm.add_row(o, -1.0, scratch);  // back to zero (exactly: q - q)
        }
      }
      if (best_a < 0) break;  // a local minimum
      cm.flip(x, f, best_a);
      if (best_b >= 0) cm.flip(x, f, best_b);
      ++moves;
    }
    return moves;
  }
};

}  // namespace

void GreedyOptions::validate() const {
  if (max_moves_per_read < 1) {
    throw InvalidArgument("GreedyOptions::max_moves_per_read must be >= 1, got " +
                          std::to_string(max_moves_per_read));
  }
}

GreedySolver::GreedySolver(GreedyOptions options) : options_(options) { options_.validate(); }

SolveResult GreedySolver::solve(const QuboModel& model, const SolveOptions& options) const {
  detail::SolveSetup setup(name(), model, options);
  SolveResult& result = setup.result;
  const detail::StopCondition stop(options);
  const bool native = setup.native();
  const QuboModel& search = setup.searched();
  if (search.storage() == Storage::kDense) {
    detail::check_memory(detail::square_bytes(search.num_variables(), sizeof(double)),
                         "greedy: the dense coupling rows of " +
                             std::to_string(search.num_variables()) + " variables",
                         "use sparse model storage for sparse problems, or a smaller problem",
                         options.memory_limit_bytes);
  }
  const Compiled cm(search);
  const int n = cm.n;

  // Native mode: variables outside every group flip; groups with 0 < k < size swap; the others
  // are fixed (all 0 or all 1) by the constraint itself.
  std::vector<int> flip_vars;
  std::vector<SwapGroup> groups;
  std::vector<bool> grouped(idx(n), false);
  if (native) {
    std::vector<bool> member(idx(n), false);
    for (const CardinalityConstraint& g : model.constraints()) {
      for (int v : g.variables) grouped[idx(v)] = true;
      if (g.k == 0 || g.k == static_cast<int>(g.variables.size())) continue;
      SwapGroup sg{g.variables, 0.0};
      for (int v : g.variables) member[idx(v)] = true;
      for (int v : g.variables) {
        search.for_each_in_row(v, [&](int j, double q) {
          if (member[idx(j)]) sg.max_q = std::max(sg.max_q, q);
        });
      }
      for (int v : g.variables) member[idx(v)] = false;
      groups.push_back(std::move(sg));
    }
  }
  for (int v = 0; v < n; ++v)
    if (!grouped[idx(v)]) flip_vars.push_back(v);
  const Descent descent{cm, flip_vars, groups, 1e-12 * std::max(1.0, search.max_flip_change()),
                        options_.max_moves_per_read};

  Shared shared;
  shared.stop = &stop;
  std::vector<Assignment> finals(static_cast<std::size_t>(options.num_reads));
  std::vector<std::uint8_t> done(static_cast<std::size_t>(options.num_reads),
                                 0);  // not vector<bool>: written concurrently
  detail::UnitProgress progress(model, options, "greedy reads", options.num_reads);
  detail::parallel_for(options.num_reads, [&](std::int64_t read) {
    if (read > 0 && shared.reason.load(std::memory_order_relaxed) != 0) return;
    pcg32 rng = detail::make_rng(options.seed, static_cast<std::uint64_t>(read));
    Assignment x(idx(n), 0);
    std::vector<double> f;
    if (native && read == 0) {
      // Greedy construction: groups empty, then the unit of best marginal gain f_j among the
      // groups still short of k, one at a time (ties: lowest index).
      for (const CardinalityConstraint& g : model.constraints())
        if (g.k == static_cast<int>(g.variables.size()))
          for (int v : g.variables) x[idx(v)] = 1;
      cm.fields(x, f);
      std::vector<int> ones(groups.size(), 0);
      std::vector<int> wanted;
      for (const CardinalityConstraint& g : model.constraints())
        if (g.k > 0 && g.k < static_cast<int>(g.variables.size())) wanted.push_back(g.k);
      for (;;) {
        int best_v = -1;
        std::size_t best_g = 0;
        for (std::size_t gi = 0; gi < groups.size(); ++gi) {
          if (ones[gi] == wanted[gi]) continue;
          for (int v : groups[gi].variables)
            if (!x[idx(v)] && (best_v < 0 || f[idx(v)] < f[idx(best_v)])) {
              best_v = v;
              best_g = gi;
            }
        }
        if (best_v < 0) break;
        cm.flip(x, f, best_v);
        ++ones[best_g];
      }
    } else {
      for (int v : flip_vars) x[idx(v)] = static_cast<std::uint8_t>(rng(2));
      if (native) {
        for (const CardinalityConstraint& g : model.constraints()) {
          std::vector<int> vars = g.variables;  // partial Fisher-Yates: the first k are chosen
          for (std::size_t a = 0; a < vars.size(); ++a) {
            const std::size_t b = a + rng(static_cast<std::uint32_t>(vars.size() - a));
            std::swap(vars[a], vars[b]);
            x[idx(vars[a])] = a < static_cast<std::size_t>(g.k) ? 1 : 0;
          }
        }
      }
      cm.fields(x, f);
    }
    shared.moves += descent.run(x, f, shared);
    ++shared.reads;
    if (options.target_energy && search.energy(x) <= *options.target_energy) {
      shared.set(SolveStatus::kTargetReached);
    }
    progress.unit_done(&x);
    finals[static_cast<std::size_t>(read)] = std::move(x);
    done[static_cast<std::size_t>(read)] = 1;
  });

  std::vector<Assignment> assignments;
  for (std::size_t r = 0; r < finals.size(); ++r)
    if (done[r]) assignments.push_back(std::move(finals[r]));
  detail::finalize_samples(model, std::move(assignments), options.max_samples, result);
  result.wall_time_s = stop.elapsed_s();
  const auto moves = shared.moves.load();
  const auto reads = shared.reads.load();
  result.counters["moves"] = static_cast<double>(moves);
  result.counters["reads"] = static_cast<double>(reads);
  result.counters["moves_per_s"] = static_cast<double>(moves) / std::max(result.wall_time_s, 1e-9);
  const int reason = shared.reason.load();
  result.status = reason == 0 ? SolveStatus::kCompleted : static_cast<SolveStatus>(reason);
  result.message = std::to_string(reads) + " of " + std::to_string(options.num_reads) +
                   " descents to a local minimum (" + std::to_string(moves) + " moves)" +
                   (reason == 0 ? "" : "; stopped: " + std::string(to_string(result.status)));
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
