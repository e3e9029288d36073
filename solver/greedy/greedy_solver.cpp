// Greedy solver: steepest descent (SteepestDescent of solver/common/descent.hpp: the best flip
// or in-group swap each step) from one start per read, reads in parallel through run_reads. Read 0
// under constraint groups starts from a greedy construction, the others from random feasible
// starts.
#include "qprune/greedy_solver.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "core/memory_check.hpp"
#include "qprune/error.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"
#include "solver/common/feasible_start.hpp"
#include "solver/common/read_loop.hpp"

namespace qprune {

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
    // The compiled form views the model's rows in place now; the check keeps the memory contract
    // of the greedy solver as tests/test_memory_limits.cpp pins it (room for one dense copy).
    detail::check_memory(detail::square_bytes(search.num_variables(), sizeof(double)),
                         "greedy: the dense coupling rows of " +
                             std::to_string(search.num_variables()) + " variables",
                         "use sparse model storage for sparse problems, or a smaller problem",
                         options.memory_limit_bytes);
  }
  // Native mode: variables outside every group flip; groups with 0 < k < size swap; the others
  // are fixed (all 0 or all 1) by the constraint itself.
  const detail::CompiledProblem problem(search, native);
  const detail::SteepestDescent descent(problem, 1e-12 * std::max(1.0, problem.max_flip_change()));

  std::atomic<std::int64_t> moves{0}, descent_ns{0};
  const detail::ReadsSummary summary =
      detail::run_reads(model, options, stop, "greedy reads", result, [&](detail::ReadContext& r) {
        Assignment x(static_cast<std::size_t>(problem.size()), 0);
        std::vector<double> f;
        if (native && r.read == 0) {
          detail::greedy_construction(problem, x, f);
        } else {
          detail::feasible_start(problem.layout(), detail::StartDraws::kFreeVariables, r.rng,
                                 x.data());
          problem.fields(x.data(), f);
        }
        const detail::Stopwatch watch;
        moves += descent.run(x.data(), f.data(), options_.max_moves_per_read,
                             [&] { return r.control.poll() != SolveStatus::kCompleted; });
        descent_ns += static_cast<std::int64_t>(1e9 * watch.elapsed_s());
        return x;
      });
  const auto made = moves.load();
  result.counters["moves"] = static_cast<double>(made);
  result.counters["reads"] = static_cast<double>(summary.reads_run);
  // The rate divides by the time it describes: the descents, summed over reads.
  const double descent_s = 1e-9 * static_cast<double>(descent_ns.load());
  result.counters["descent_time_s"] = descent_s;
  result.counters["moves_per_s"] = descent_s > 0.0 ? static_cast<double>(made) / descent_s : 0.0;
  result.message = std::to_string(summary.reads_run) +
                   (options.reads_until_time_limit
                        ? " descents (new reads until the time limit)"
                        : std::string(" of ") + std::to_string(options.num_reads) + " descents") +
                   " to a local minimum (" + std::to_string(made) + " moves)" +
                   (summary.status == SolveStatus::kCompleted
                        ? ""
                        : "; stopped: " + std::string(to_string(result.status)));
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
