// Random baseline: each read draws a uniform assignment, or under constraint groups a uniform
// feasible one (a uniformly random k-subset of every group, Fisher-Yates), with the variables
// outside any group uniform.
#include "qprune/random_solver.hpp"

#include <numeric>

#include "core/parallel_for.hpp"
#include "solver/common/progress.hpp"
#include "core/rng.hpp"
#include "solver/common/samples.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune {

RandomSolver::RandomSolver(RandomOptions options) : options_(options) { options_.validate(); }

SolveResult RandomSolver::solve(const QuboModel& model, const SolveOptions& options) const {
  // Random draws ignore the penalty form; only whether to draw feasible assignments matters.
  detail::SolveSetup setup(name(), model, options);
  SolveResult& result = setup.result;
  detail::StopCondition stop(options);
  const bool feasible_draws = setup.native();

  const auto n = static_cast<std::size_t>(model.num_variables());
  std::vector<Assignment> draws(static_cast<std::size_t>(options.num_reads));
  detail::UnitProgress progress(model, options, "random reads", options.num_reads);
  detail::parallel_for(options.num_reads, [&](std::int64_t read) {
    pcg32 rng = detail::make_rng(options.seed, static_cast<std::uint64_t>(read));
    Assignment x(n);
    for (auto& v : x) v = static_cast<std::uint8_t>(rng(2));
    if (feasible_draws) {
      for (const CardinalityConstraint& g : model.constraints()) {
        std::vector<int> vars = g.variables;
        for (std::size_t a = 0; a < vars.size(); ++a) {  // partial Fisher-Yates: first k chosen
          const std::size_t b = a + rng(static_cast<std::uint32_t>(vars.size() - a));
          std::swap(vars[a], vars[b]);
          x[static_cast<std::size_t>(vars[a])] = a < static_cast<std::size_t>(g.k) ? 1 : 0;
        }
      }
    }
    progress.unit_done(&x);
    draws[static_cast<std::size_t>(read)] = std::move(x);
  });
  detail::finalize_samples(model, std::move(draws), options.max_samples, result);
  result.status = SolveStatus::kCompleted;
  result.message = "drew " + std::to_string(options.num_reads) + " random assignments";
  result.wall_time_s = stop.elapsed_s();
  result.counters["reads"] = options.num_reads;
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
