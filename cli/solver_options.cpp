// Solver options on the command line. Defaults come from the option structs themselves, so the
// --help text and the library never disagree.
#include "cli/solver_options.hpp"

#include <map>

namespace qprune::cli {

void add_solver_options(CLI::App& sub, SolverChoice& c) {
  std::string solvers_help = "solver:";
  for (const std::string& name : solver_names())
    solvers_help += "\n  " + name + ": " + solver_description(name);
  sub.add_option("--solver,-s", c.solver, solvers_help)
      ->transform(CLI::IsMember(solver_names(), CLI::ignore_case))
      ->capture_default_str();
  sub.add_option("--seed", c.options.seed, "run seed (reads and restarts derive their own streams)")
      ->capture_default_str();
  sub.add_option("--time-limit", c.options.time_limit_s, "wall-clock limit in seconds")
      ->check(CLI::PositiveNumber);
  sub.add_option("--reads,-r", c.options.num_reads, "independent reads / restarts")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--target-energy", c.options.target_energy,
                 "stop as soon as a sample reaches this energy");
  static const std::map<std::string, ConstraintMode> modes = {
      {"auto", ConstraintMode::kAuto},
      {"native", ConstraintMode::kNative},
      {"penalty", ConstraintMode::kPenalty}};
  sub.add_option_function<std::string>(
         "--constraints", [&c](const std::string& mode) { c.options.constraint_mode = modes.at(mode); },
         "constraint groups: native = feasible moves only, penalty = w (sum x - k)^2 added, "
         "auto = native where the solver has it (default)")
      ->transform(CLI::IsMember(modes, CLI::ignore_case));
  sub.add_option("--penalty-weight", c.options.penalty_weight,
                 "penalty weight w (default 1.01 B, B = largest single-flip change)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--samples", c.options.max_samples, "distinct samples kept in the result")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  CLI::Option_group* exact = sub.add_option_group("exact", "options of --solver exact");
  exact->add_option("--exact-max-variables", c.settings.exact.max_variables,
                    "refuse problems with more free variables than this")
      ->capture_default_str();
  CLI::Option_group* greedy = sub.add_option_group("greedy", "options of --solver greedy");
  greedy->add_option("--greedy-max-moves", c.settings.greedy.max_moves_per_read,
                     "cap on improving moves per read")
      ->capture_default_str();
}

}  // namespace qprune::cli
