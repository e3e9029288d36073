// Random baseline: uniform random assignments (uniform feasible ones under constraint groups).
// Every comparison needs it to show what a solver adds over chance.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/random_solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include "qprune/solver.hpp"

namespace qprune {

struct RandomOptions {
  void validate() const {}
};

class RandomSolver final : public Solver {
 public:
  explicit RandomSolver(RandomOptions options = {});
  [[nodiscard]] std::string name() const override { return "random"; }
  [[nodiscard]] SolveResult solve(const QuboModel& model,
                                  const SolveOptions& options) const override;

 private:
  RandomOptions options_;
};

}  // namespace qprune
