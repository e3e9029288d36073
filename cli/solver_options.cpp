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
  CLI::Option_group* sa = sub.add_option_group("sa", "options of --solver sa");
  sa->add_option("--sweeps", c.settings.anneal.num_sweeps, "sweeps per read (about n moves each)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  static const std::map<std::string, AnnealSchedule> schedules = {
      {"geometric", AnnealSchedule::kGeometric}, {"linear", AnnealSchedule::kLinear}};
  sa->add_option_function<std::string>(
        "--schedule", [&c](const std::string& v) { c.settings.anneal.schedule = schedules.at(v); },
        "inverse-temperature schedule: geometric (default) or linear")
      ->transform(CLI::IsMember(schedules, CLI::ignore_case));
  static const std::map<std::string, SweepOrder> orders = {{"sequential", SweepOrder::kSequential},
                                                           {"random", SweepOrder::kRandom}};
  sa->add_option_function<std::string>(
        "--sweep-order", [&c](const std::string& v) { c.settings.anneal.order = orders.at(v); },
        "order of flip attempts in a sweep: sequential (default) or random")
      ->transform(CLI::IsMember(orders, CLI::ignore_case));
  static const std::map<std::string, AnnealPrecision> precisions = {
      {"auto", AnnealPrecision::kAuto},
      {"float", AnnealPrecision::kFloat},
      {"double", AnnealPrecision::kDouble},
      {"integer", AnnealPrecision::kInteger}};
  sa->add_option_function<std::string>(
        "--precision",
        [&c](const std::string& v) { c.settings.anneal.precision = precisions.at(v); },
        "kernel arithmetic: auto (default: integer, else float when exact/safe, else double), "
        "float, double, integer")
      ->transform(CLI::IsMember(precisions, CLI::ignore_case));
  sa->add_option_function<std::vector<double>>(
        "--beta-range",
        [&c](const std::vector<double>& v) { c.settings.anneal.beta_range = std::make_pair(v[0], v[1]); },
        "HOT COLD inverse temperatures (default: from the coefficients, reported)")
      ->expected(2);
  sa->add_flag_function(
      "--no-descent", [&c](std::int64_t) { c.settings.anneal.greedy_descent = false; },
      "skip the final greedy descent of each read");
  CLI::Option_group* tabu = sub.add_option_group("tabu", "options of --solver tabu");
  tabu->add_option("--tabu-iterations", c.settings.tabu.max_iterations,
                   "iterations per read (0: max(100000, 1000 n))")
      ->capture_default_str();
  tabu->add_option("--tabu-stall", c.settings.tabu.stall_iterations,
                   "iterations without a new best before a restart (0: max(20000, 10 n))")
      ->capture_default_str();
  tabu->add_option("--tabu-tenure-divisor", c.settings.tabu.tenure_divisor,
                   "tenure = n / divisor + U[1, tenure-random]")
      ->capture_default_str();
  tabu->add_option("--tabu-tenure-random", c.settings.tabu.tenure_random,
                   "upper end of the random part of the tenure")
      ->capture_default_str();
  tabu->add_option("--tabu-elite", c.settings.tabu.elite_size,
                   "elite solutions kept for path relinking (0 or 1: no relinking)")
      ->capture_default_str();
  CLI::Option_group* qaoa = sub.add_option_group("qaoa", "options of --solver qaoa");
  qaoa->add_option("--qaoa-layers", c.settings.qaoa.layers, "QAOA layers p")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  qaoa->add_option("--qaoa-evaluations", c.settings.qaoa.max_evaluations,
                   "objective evaluations per angle optimisation (per p with INTERP)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  qaoa->add_option("--qaoa-shots", c.settings.qaoa.shots, "bitstrings sampled from the final state")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  qaoa->add_option("--qaoa-max-qubits", c.settings.qaoa.max_qubits,
                   "largest state simulated directly (2^max amplitudes); larger problems are "
                   "decomposed")
      ->check(CLI::Range(1, 40))
      ->capture_default_str();
  qaoa->add_option("--qaoa-rounds", c.settings.qaoa.decomposition_rounds,
                   "decomposition rounds (problems above --qaoa-max-qubits)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  static const std::map<std::string, QaoaOptimizer> optimizers = {
      {"lbfgs", QaoaOptimizer::kLbfgs},
      {"cobyla", QaoaOptimizer::kCobyla},
      {"nelder-mead", QaoaOptimizer::kNelderMead},
      {"none", QaoaOptimizer::kNone}};
  qaoa->add_option_function<std::string>(
          "--qaoa-optimizer",
          [&c](const std::string& v) { c.settings.qaoa.optimizer = optimizers.at(v); },
          "angle optimiser: lbfgs (default, adjoint gradients), cobyla, nelder-mead, none")
      ->transform(CLI::IsMember(optimizers, CLI::ignore_case));
  CLI::Option_group* greedy = sub.add_option_group("greedy", "options of --solver greedy");
  greedy->add_option("--greedy-max-moves", c.settings.greedy.max_moves_per_read,
                     "cap on improving moves per read")
      ->capture_default_str();
}

}  // namespace qprune::cli
