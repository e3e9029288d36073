// solve_by_components: see component_solve.hpp.
#include "solver/graph/component_solve.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "core/rng.hpp"
#include "qprune/exact_solver.hpp"
#include "solver/common/samples.hpp"
#include "solver/common/stopwatch.hpp"
#include "solver/graph/coupling_graph.hpp"

namespace qprune::detail::graph {
namespace {

/// Statuses from strongest to weakest claim: the combination can claim only what every part does.
int weakness(SolveStatus s) {
  switch (s) {
    case SolveStatus::kOptimal:
      return 0;
    case SolveStatus::kCompleted:
      return 1;
    case SolveStatus::kTargetReached:
      return 2;
    case SolveStatus::kTimeLimit:
      return 3;
    case SolveStatus::kInterrupted:
      return 4;
    case SolveStatus::kNotRun:
    // Workflow statuses: a solver never ends with them.
    case SolveStatus::kImported:
    case SolveStatus::kImportedRepaired:
    case SolveStatus::kSkipped:
    case SolveStatus::kError:
      return 5;
  }
  return 5;
}

/// The part of `model` on `vars` (ascending): its linear terms, the couplings among them, and the
/// constraint groups inside it (a group lies wholly in one component).
QuboModel part_of(const QuboModel& model, const std::vector<int>& vars,
                  const std::vector<int>& local) {
  const int m = static_cast<int>(vars.size());
  Eigen::VectorXd c(m);
  std::vector<Coupling> couplings;
  for (int a = 0; a < m; ++a) {
    const int i = vars[static_cast<std::size_t>(a)];
    c[a] = model.linear()[i];
    model.for_each_in_row(i, [&](int j, double q) {
      const int b = local[static_cast<std::size_t>(j)];
      if (b > a) couplings.push_back({a, b, q});
    });
  }
  QuboModel part = QuboModel::from_couplings(m, std::move(c), couplings);
  for (const CardinalityConstraint& g : model.constraints()) {
    if (local[static_cast<std::size_t>(g.variables.front())] < 0) continue;
    CardinalityConstraint sub{g.name, {}, g.k};
    for (int v : g.variables) sub.variables.push_back(local[static_cast<std::size_t>(v)]);
    part.add_constraint(std::move(sub));
  }
  return part;
}

}  // namespace

SolveResult solve_by_components(const Solver& solver, const QuboModel& model,
                                const SolveOptions& options) {
  options.validate();
  const Stopwatch watch;
  const Components components = connected_components(model);
  if (components.count() <= 1) return solver.solve(model, options);

  const int n = model.num_variables();
  const ExactSolver exact;
  // One penalty weight for every part, the whole model's, so that the parts search the same
  // penalised landscape as the whole would.
  SolveOptions part_options = options;
  part_options.target_energy.reset();
  part_options.progress = nullptr;
  if (options.constraint_mode == ConstraintMode::kPenalty && model.has_constraints())
    part_options.penalty_weight = options.penalty_weight.value_or(model.default_penalty_weight());

  std::vector<std::vector<Assignment>> part_samples;  // per part, best first, in local indices
  std::vector<int> local(static_cast<std::size_t>(n), -1);
  SolveStatus status = SolveStatus::kOptimal;
  int exact_parts = 0, largest = 0, direct = 0;
  // Variables in the parts for the chosen solver not yet solved.
  std::int64_t unsolved = 0;
  for (const std::vector<int>& vars : components.members)
    if (static_cast<int>(vars.size()) > kExactComponentSize)
      unsolved += static_cast<std::int64_t>(vars.size());
  for (int k = 0; k < components.count(); ++k) {
    const std::vector<int>& vars = components.members[static_cast<std::size_t>(k)];
    const int m = static_cast<int>(vars.size());
    largest = std::max(largest, m);
    // A lone variable outside any group: x = 1 exactly when its linear term is negative.
    if (m == 1 && !model.has_constraints()) {
      part_samples.push_back(
          {Assignment{static_cast<std::uint8_t>(model.linear()[vars[0]] < 0.0)}});
      ++direct;
      continue;
    }
    for (int a = 0; a < m; ++a)
      local[static_cast<std::size_t>(vars[static_cast<std::size_t>(a)])] = a;
    const QuboModel part = part_of(model, vars, local);
    for (int v : vars) local[static_cast<std::size_t>(v)] = -1;
    part_options.seed = mix64(options.seed ^ mix64(0xc0490000ULL + static_cast<std::uint64_t>(k)));
    // A part for the chosen solver gets the time left in proportion to its size among those
    // still to solve: a solver that uses its whole budget (tabu without an iteration count,
    // reads until the time limit) must not leave nothing to the parts after it. Exact parts take
    // milliseconds and may use all that is left.
    const bool small = m <= kExactComponentSize;
    const double left = options.time_limit_s - watch.elapsed_s();
    double share = 1.0;
    if (!small) {
      share = static_cast<double>(m) / static_cast<double>(unsolved);
      unsolved -= m;
    }
    part_options.time_limit_s = std::isfinite(left) ? std::max(left * share, 1e-6) : left;
    const SolveResult r =
        (small ? static_cast<const Solver&>(exact) : solver).solve(part, part_options);
    exact_parts += small ? 1 : 0;
    if (weakness(r.status) > weakness(status)) status = r.status;
    std::vector<Assignment> xs;
    for (const Sample& s : r.samples) xs.push_back(s.x);
    if (xs.empty()) {
      // A part stopped before it had any sample: nothing whole can be reported.
      SolveResult out;
      out.solver = solver.name();
      out.seed = options.seed;
      out.status = status;
      out.message = "split into " + std::to_string(components.count()) + " components; part " +
                    std::to_string(k) + " ended without a sample (" + r.message + ")";
      out.wall_time_s = watch.elapsed_s();
      return out;
    }
    part_samples.push_back(std::move(xs));
  }

  std::size_t rows = 1;
  for (const auto& xs : part_samples) rows = std::max(rows, xs.size());
  rows = std::min(rows, static_cast<std::size_t>(options.max_samples));
  std::vector<Assignment> joined(rows, Assignment(static_cast<std::size_t>(n), 0));
  for (std::size_t k = 0; k < part_samples.size(); ++k) {
    const std::vector<int>& vars = components.members[k];
    for (std::size_t r = 0; r < rows; ++r) {
      const Assignment& y = part_samples[k][std::min(r, part_samples[k].size() - 1)];
      for (std::size_t a = 0; a < vars.size(); ++a)
        joined[r][static_cast<std::size_t>(vars[a])] = y[a];
    }
  }
  SolveResult out;
  out.solver = solver.name();
  out.seed = options.seed;
  finalize_samples(model, std::move(joined), options.max_samples, out);
  if (options.target_energy && out.has_solution() && out.best().feasible &&
      out.best().energy <= *options.target_energy && weakness(status) <= 1) {
    status = SolveStatus::kTargetReached;
  }
  out.status = status;
  out.wall_time_s = watch.elapsed_s();
  out.counters["components"] = components.count();
  out.counters["components_exact"] = exact_parts + direct;
  out.counters["largest_component"] = largest;
  std::ostringstream msg;
  msg << "split into " << components.count() << " components: " << exact_parts + direct
      << " solved exactly (<= " << kExactComponentSize << " variables), "
      << components.count() - exact_parts - direct << " with " << solver.name() << ", largest "
      << largest << " variables";
  out.message = msg.str();
  out.info["components"] = out.message;
  return out;
}

}  // namespace qprune::detail::graph
