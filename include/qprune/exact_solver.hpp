// Exact solver: exhaustive Gray-code enumeration (feasible assignments only when the model has
// constraint groups). Proves optimality; refuses problems too large to enumerate.
#pragma once

#include "qprune/solver.hpp"

namespace qprune {

struct ExactOptions {
  /// Largest number of free variables enumerated (2^n states); above it solve() throws
  /// ResourceError with the state count and a time estimate. In [1, 48].
  int max_variables = 36;
  void validate() const;
};

class ExactSolver final : public Solver {
 public:
  explicit ExactSolver(ExactOptions options = {});
  [[nodiscard]] std::string name() const override { return "exact"; }
  [[nodiscard]] SolveResult solve(const QuboModel& model, const SolveOptions& options) const override;

 private:
  ExactOptions options_;
};

}  // namespace qprune
