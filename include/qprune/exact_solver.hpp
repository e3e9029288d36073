// Exact solver: exhaustive Gray-code enumeration (feasible assignments only when the model has
// constraint groups). Proves optimality; refuses problems too large to enumerate.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/exact_solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include "qprune/solver.hpp"

namespace qprune {

struct ExactOptions {
  /// Largest enumeration allowed: at most 2^max_variables states (all 2^n assignments, or the
  /// prod_g C(n_g, k_g) * 2^free feasible ones under native constraint groups). Above it solve()
  /// throws ResourceError, before any enumeration, with the state count and a time estimate.
  /// In [1, 48]. Default 36: about 2^36 states is minutes on a few cores for n <= 64.
  int max_variables = 36;
  /// Throws InvalidArgument naming the field and the violated bound.
  void validate() const;
};

/// Enumerates every (feasible) assignment in Gray-code order with O(n) incremental work per state
/// (a revolving-door order inside each constraint group, so a step is one flip or one swap), in
/// parallel over fixed prefixes. Status kOptimal when the enumeration finished; kTimeLimit,
/// kInterrupted or kTargetReached (stop conditions are polled every 2^16 states) with the best
/// state seen otherwise. The result holds one sample, the best, and it is the same whatever the
/// number of threads (ties: first in enumeration order). ConstraintMode kAuto and kNative
/// enumerate feasible assignments only; kPenalty enumerates the penalised model.
class ExactSolver final : public Solver {
 public:
  explicit ExactSolver(ExactOptions options = {});
  [[nodiscard]] std::string name() const override { return "exact"; }
  /// Throws ResourceError when the enumeration exceeds 2^max_variables states.
  [[nodiscard]] SolveResult solve(const QuboModel& model,
                                  const SolveOptions& options) const override;

 private:
  ExactOptions options_;
};

}  // namespace qprune
