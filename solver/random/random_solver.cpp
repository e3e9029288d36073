// Random baseline: each read draws a uniform assignment, or under constraint groups a uniform
// feasible one (feasible_start: a uniformly random k-subset of every group, the variables outside
// any group uniform).
#include "qprune/random_solver.hpp"

#include "solver/common/compiled_problem.hpp"
#include "solver/common/feasible_start.hpp"
#include "solver/common/read_loop.hpp"

namespace qprune {

RandomSolver::RandomSolver(RandomOptions options) : options_(options) { options_.validate(); }

SolveResult RandomSolver::solve(const QuboModel& model, const SolveOptions& options) const {
  // Random draws ignore the penalty form; only whether to draw feasible assignments matters.
  detail::SolveSetup setup(name(), model, options);
  SolveResult& result = setup.result;
  const detail::StopCondition stop(options);
  const detail::GroupLayout layout(model, setup.native());
  const detail::ReadsSummary summary =
      detail::run_reads(model, options, stop, "random reads", result, [&](detail::ReadContext& r) {
        Assignment x(static_cast<std::size_t>(model.num_variables()));
        detail::feasible_start(layout, detail::StartDraws::kEveryVariable, r.rng, x.data());
        return x;
      });
  result.message = "drew " + std::to_string(summary.reads_run) + " random assignments" +
                   (options.reads_until_time_limit ? " (new reads until the time limit)" : "");
  result.counters["reads"] = static_cast<double>(summary.reads_run);
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
