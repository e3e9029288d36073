// Command-line options of the solvers, shared by every subcommand that solves (solve, and later
// mask and compare): the common SolveOptions and one option group per solver.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/solver_options.hpp is part of the cli program; no library layer may include it"
#endif

#include <CLI/CLI.hpp>
#include <string>

#include "qprune/solvers.hpp"

namespace qprune::cli {

struct SolverChoice {
  std::string solver = "greedy";
  SolveOptions options;
  SolverSettings settings;
  bool reads_given = false;  ///< --reads was on the command line
};

/// Adds --solver (unless `with_solver_flag` is false: a command that names the solver otherwise)
/// and the common options, then each solver's own group.
void add_solver_options(CLI::App& sub, SolverChoice& choice, bool with_solver_flag = true);

/// `qprune solve`'s reading of a time budget: with sa or tabu, a --time-limit and no --reads, new
/// reads start until the limit (SolveOptions::reads_until_time_limit), as MQLib's -r does.
void use_time_budget(SolverChoice& choice);

}  // namespace qprune::cli
