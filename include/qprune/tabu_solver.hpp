// Tabu search solver: one-flip tabu search for QUBO in the tradition of Glover, Lü and Hao and of
// Palubeckis (MST2), with restarts by perturbation of the best solution and path relinking between
// elite solutions. Under constraint groups it searches feasible assignments only (swap moves inside
// a group, plain flips outside), or the penalised QUBO when asked. On sparse single-flip problems
// (weighted Max-Cut) it runs Breakout Local Search instead (Benlic & Hao 2013): descents to local
// optima linked by tabu-directed, recency-based or random jumps of adaptive length.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/tabu_solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cstdint>

#include "qprune/solver.hpp"

namespace qprune {

/// Which search TabuSearch runs.
enum class TabuMethod {
  /// kBreakout on single-flip problems (no constraint group searched natively) whose coupling
  /// density is at most kBreakoutMaxDensity, kTabu otherwise: on Gset the breakout search closes
  /// most of tabu's gap on the sparse graphs, while on dense ones (bqp, G1-G10) the restarts and
  /// path relinking of kTabu do better.
  kAuto,
  /// Tabu search with restarts and path relinking (swap moves under constraint groups).
  kTabu,
  /// Breakout Local Search; single flips only (InvalidArgument under native constraint groups).
  kBreakout,
};

/// Coupling density (QuboModel::density) up to which TabuMethod::kAuto picks breakout.
inline constexpr double kBreakoutMaxDensity = 0.05;

struct TabuOptions {
  /// The search: see TabuMethod.
  TabuMethod method = TabuMethod::kAuto;
  /// Tabu tenure after a move: n / tenure_divisor + U[1, tenure_random], capped at max(1, n / 4) so
  /// that small problems keep non-tabu moves. Glover/Lü/Hao use n/100 + rand(1..10) on bqp; the
  /// random part breaks the cycles a fixed tenure falls into. >= 1.
  int tenure_divisor = 100;
  /// Upper end of the random part of the tenure. >= 0.
  int tenure_random = 10;
  /// Iterations without a new best (of the current round) before a restart; 0 picks
  /// max(20000, 10 n). Method tabu only (breakout never restarts; see breakout_stall). >= 0.
  std::int64_t stall_iterations = 0;
  /// Iterations per read. Tabu search has no natural end, so 0 (automatic) lets the time limit
  /// decide when there is one: with a fixed number of reads each read searches until its share of
  /// the limit (the time left split evenly over the rounds of reads still to run on the threads;
  /// one read gets it all), and with SolveOptions::reads_until_time_limit the reads have
  /// max(100000, 1000 n) iterations and new ones start until the limit. Without a time limit 0
  /// picks max(100000, 1000 n), in the order of seconds for dense n ~ 1000. An iteration is one
  /// move (a flip or a swap), in the breakout method too (descent and jump moves alike); breakout
  /// reads of the automatic length make 10 times as many, max(10^6, 10^4 n): its jumps already
  /// diversify, and a fresh random start throws away the basin it has found. >= 0.
  std::int64_t max_iterations = 0;
  /// Fraction of the variables flipped (or swapped) when a restart perturbs the best solution.
  /// Each restart that found no new best raises it by this amount, up to
  /// max_perturbation_fraction, and a new best resets it: small kicks while they pay, and
  /// near-random restarts (0.5 flips half the variables) when the read is stuck in one basin.
  /// In (0, 1].
  double perturbation_fraction = 0.1;
  /// Upper end of the adaptive perturbation. In [perturbation_fraction, 1].
  double max_perturbation_fraction = 0.5;
  /// Elite solutions kept per read for path relinking; 0 or 1 disables relinking (restarts then
  /// always perturb the best solution). >= 0.
  int elite_size = 8;
  /// Probability that a restart relinks two elite solutions instead of perturbing the best one
  /// (when the pool holds two or more). In [0, 1].
  double relink_probability = 0.5;
  /// Breakout: the jump (perturbation moves after a local optimum) starts at
  /// max(1, jump_min_fraction n), grows by one each time the descent falls back to the energy of
  /// the local optimum it left, and returns to the start after it escapes. Benlic & Hao use 0.01 n
  /// (and 0.1 n for the largest) for runs of minutes; at seconds twice both did better on Gset
  /// (G14, G18, G22, G43, 5 s, 2 seeds: mean gap 0.09 % against 0.33 %). In (0, 1].
  double breakout_jump_min_fraction = 0.02;
  /// Breakout: the largest jump, jump_max_fraction n (at least min(10, n / 2), so that small
  /// problems can leave a basin), also the length of the random jump after breakout_stall local
  /// optima without a new best. In [breakout_jump_min_fraction, 1].
  double breakout_jump_max_fraction = 0.2;
  /// Breakout: local optima in a row without a new best before a random jump of the largest length;
  /// it also weighs the jump kind: a tabu-directed jump with probability max(exp(-w / stall), 0.8)
  /// after w such optima, else recency-based or random. Benlic & Hao use T = 1000 for runs of
  /// minutes; at seconds (about 10^5 local optima) 100 did better on Gset G18 (987 and 984 of 992
  /// over two seeds at 5 s, against 979 with 1000). >= 1.
  int breakout_stall = 100;
  /// Throws InvalidArgument naming the field and the violated bound.
  void validate() const;
};

/// Tabu search. Reads (SolveOptions::num_reads) are independent searches run in parallel, each
/// seeded from (seed, read), so results do not depend on the thread count. kCompleted when every
/// read ran its max_iterations; kTimeLimit when the limit ended the run or a read's time share
/// (see max_iterations); else the target or an interrupt. The time limit is checked every few
/// microseconds inside the iteration loop. Counters: "iterations" (all reads), "search_time_s"
/// (time in the iteration loops, summed over reads), "iterations_per_s" (iterations /
/// search_time_s: the speed of one read), "restarts" (method tabu), "local_optima" (method
/// breakout: descents ended), "reads" (started), "reads_completed" (ran all their max_iterations).
/// info["method"] says which search ran (tabu or breakout). Throws InvalidArgument for method
/// breakout on a model whose constraint groups are searched natively.
class TabuSearch final : public Solver {
 public:
  explicit TabuSearch(TabuOptions options = {});
  [[nodiscard]] std::string name() const override { return "tabu"; }
  [[nodiscard]] SolveResult solve(const QuboModel& model,
                                  const SolveOptions& options) const override;
  [[nodiscard]] const TabuOptions& options() const { return options_; }

 private:
  TabuOptions options_;
};

}  // namespace qprune
