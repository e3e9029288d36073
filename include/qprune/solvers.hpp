// The solver registry: every solver by name, with its own options gathered in SolverSettings.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/solvers.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qprune/anneal_solver.hpp"
#include "qprune/exact_solver.hpp"
#include "qprune/greedy_solver.hpp"
#include "qprune/qaoa_solver.hpp"
#include "qprune/random_solver.hpp"
#include "qprune/solver.hpp"
#include "qprune/tabu_solver.hpp"

namespace qprune {

/// Each solver's own options; make_solver() hands the matching member to the solver it builds.
struct SolverSettings {
  ExactOptions exact;
  GreedyOptions greedy;
  RandomOptions random;
  AnnealOptions anneal;
  TabuOptions tabu;
  QaoaOptions qaoa;
};

/// Names accepted by make_solver, in the order `qprune solve --help` lists them.
[[nodiscard]] std::vector<std::string> solver_names();
/// One line describing a solver, for --help.
[[nodiscard]] std::string solver_description(std::string_view name);
/// Builds the named solver (case-insensitive). Throws InvalidArgument listing the valid names.
[[nodiscard]] std::unique_ptr<Solver> make_solver(std::string_view name,
                                                  const SolverSettings& settings = {});

}  // namespace qprune
