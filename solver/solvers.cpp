// The solver registry: names, one-line descriptions, construction by name.
#include "qprune/solvers.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <utility>

#include "qprune/error.hpp"
#include "solver/graph/component_solve.hpp"

namespace qprune {
namespace {

struct Entry {
  const char* name;
  const char* description;
  std::unique_ptr<Solver> (*make)(const SolverSettings&);
};

/// Every solver make_solver() hands out: the named solver, solved by components when
/// SolveOptions::split_components asks for it (a wrapper, so no solver needs to know about it).
class ComponentSplitting final : public Solver {
 public:
  explicit ComponentSplitting(std::unique_ptr<Solver> inner) : inner_(std::move(inner)) {}
  [[nodiscard]] std::string name() const override { return inner_->name(); }
  [[nodiscard]] SolveResult solve(const QuboModel& model,
                                  const SolveOptions& options) const override {
    if (!options.split_components) return inner_->solve(model, options);
    return detail::graph::solve_by_components(*inner_, model, options);
  }

 private:
  std::unique_ptr<Solver> inner_;
};

// A registry factory: the solver S built from its options in SolverSettings.
template <class S, auto kOptions>
std::unique_ptr<Solver> make(const SolverSettings& settings) {
  return std::make_unique<S>(settings.*kOptions);
}

// One line a solver: name, description, factory.
const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {"exact", "exhaustive Gray-code enumeration; proves the optimum (n <= ~36 free variables)",
       make<ExactSolver, &SolverSettings::exact>},
      {"greedy", "best-improvement descent from random starts (feasible swaps under constraints)",
       make<GreedySolver, &SolverSettings::greedy>},
      {"random", "uniform random (feasible) assignments: the baseline every comparison needs",
       make<RandomSolver, &SolverSettings::random>},
      {"sa",
       "simulated annealing: Metropolis sweeps, parallel reads (feasible swaps under constraints)",
       make<SimulatedAnnealing, &SolverSettings::anneal>},
      {"tabu",
       "one-flip tabu search, restarts, path relinking; feasible swaps under constraints; "
       "Breakout Local Search on sparse problems (--tabu-method)",
       make<TabuSearch, &SolverSettings::tabu>},
      {"qaoa",
       "simulated QAOA: statevector, optimised angles, sampled bitstrings (XY mixers under "
       "constraints); above max_qubits warm-start QAOA on subproblems around the greedy answer",
       make<QaoaSolver, &SolverSettings::qaoa>},
  };
  return entries;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const Entry& find(std::string_view name) {
  const std::string key = lower(name);
  for (const Entry& e : registry())
    if (key == e.name) return e;
  std::string names;
  for (const Entry& e : registry()) names += std::string(names.empty() ? "" : ", ") + e.name;
  throw InvalidArgument("unknown solver '" + std::string(name) + "'; choose one of: " + names);
}

}  // namespace

std::vector<std::string> solver_names() {
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.emplace_back(e.name);
  return names;
}

std::string solver_description(std::string_view name) { return find(name).description; }

std::unique_ptr<Solver> make_solver(std::string_view name, const SolverSettings& settings) {
  return std::make_unique<ComponentSplitting>(find(name).make(settings));
}

}  // namespace qprune
