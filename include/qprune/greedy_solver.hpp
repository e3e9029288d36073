// Greedy solver: best-improvement single-flip descent from random starts (one per read); with
// constraint groups, greedy selection by marginal gain then best-swap descent, always feasible.
#pragma once

#include "qprune/solver.hpp"

namespace qprune {

struct GreedyOptions {
  /// Stop a descent after this many improving moves (a safeguard; descents end far earlier). >= 1.
  std::int64_t max_moves_per_read = 100'000'000;
  void validate() const;
};

class GreedySolver final : public Solver {
 public:
  explicit GreedySolver(GreedyOptions options = {});
  [[nodiscard]] std::string name() const override { return "greedy"; }
  [[nodiscard]] SolveResult solve(const QuboModel& model, const SolveOptions& options) const override;

 private:
  GreedyOptions options_;
};

}  // namespace qprune
