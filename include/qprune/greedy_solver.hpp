// Greedy solver: best-improvement single-flip descent from random starts (one per read); with
// constraint groups, greedy selection by marginal gain then best-swap descent, always feasible.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/greedy_solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cstdint>

#include "qprune/solver.hpp"

namespace qprune {

struct GreedyOptions {
  /// Stop a descent after this many improving moves (a safeguard; descents end far earlier). >= 1.
  std::int64_t max_moves_per_read = 100'000'000;
  /// Throws InvalidArgument naming the field and the violated bound.
  void validate() const;
};

/// Each read (seeded from (seed, read)) starts from a random assignment and repeatedly makes the
/// single flip that lowers the energy most, until none does: the samples are local minima.
/// Under native constraint groups (ConstraintMode kAuto/kNative) read 0 starts from the greedy
/// construction (every group filled one unit at a time by the best marginal gain), the other reads
/// from uniformly random feasible assignments; moves are the best single flip of a variable outside
/// every group or the best swap (one unit in, one out) inside a group, so every sample is feasible
/// and no flip or swap improves it. kPenalty: plain flips on the penalised model.
class GreedySolver final : public Solver {
 public:
  explicit GreedySolver(GreedyOptions options = {});
  [[nodiscard]] std::string name() const override { return "greedy"; }
  [[nodiscard]] SolveResult solve(const QuboModel& model,
                                  const SolveOptions& options) const override;

 private:
  GreedyOptions options_;
};

}  // namespace qprune
