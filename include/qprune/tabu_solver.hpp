// Tabu search solver: one-flip tabu search for QUBO in the tradition of Glover, Lü and Hao and of
// Palubeckis (MST2), with restarts by perturbation of the best solution and path relinking between
// elite solutions. Under constraint groups it searches feasible assignments only (swap moves inside
// a group, plain flips outside), or the penalised QUBO when asked.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/tabu_solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cstdint>

#include "qprune/solver.hpp"

namespace qprune {

struct TabuOptions {
  /// Tabu tenure after a move: n / tenure_divisor + U[1, tenure_random], capped at max(1, n / 4) so
  /// that small problems keep non-tabu moves. Glover/Lü/Hao use n/100 + rand(1..10) on bqp; the
  /// random part breaks the cycles a fixed tenure falls into. >= 1.
  int tenure_divisor = 100;
  /// Upper end of the random part of the tenure. >= 0.
  int tenure_random = 10;
  /// Iterations without a new best (of the current round) before a restart; 0 picks
  /// max(20000, 10 n). >= 0.
  std::int64_t stall_iterations = 0;
  /// Iterations per read. Tabu search has no natural end, so 0 (automatic) lets the time limit
  /// decide when there is one: with a fixed number of reads each read searches until its share of
  /// the limit (the time left split evenly over the rounds of reads still to run on the threads;
  /// one read gets it all), and with SolveOptions::reads_until_time_limit the reads have
  /// max(100000, 1000 n) iterations and new ones start until the limit. Without a time limit 0
  /// picks max(100000, 1000 n), in the order of seconds for dense n ~ 1000. >= 0.
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
  /// Throws InvalidArgument naming the field and the violated bound.
  void validate() const;
};

/// Tabu search. Reads (SolveOptions::num_reads) are independent searches run in parallel, each
/// seeded from (seed, read), so results do not depend on the thread count. kCompleted when every
/// read ran its max_iterations; kTimeLimit when the limit ended the run or a read's time share
/// (see max_iterations); else the target or an interrupt. The time limit is checked every few
/// microseconds inside the iteration loop. Counters: "iterations" (all reads), "search_time_s"
/// (time in the iteration loops, summed over reads), "iterations_per_s" (iterations /
/// search_time_s: the speed of one read), "restarts", "reads" (started), "reads_completed" (ran
/// all their max_iterations).
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
