// Solver options on the command line. Defaults come from the option structs themselves, so the
// --help text and the library never disagree.
#include "cli/solver_options.hpp"

#include <cmath>
#include <map>

#include "cli/validators.hpp"

namespace qprune::cli {
namespace {

/// An option whose value is one of the names in `choices` (case-insensitive; a typo lists them).
template <class Group, class Enum>
void add_choice(Group& group, const std::string& flag, const std::map<std::string, Enum>& choices,
                Enum& target, const std::string& help) {
  group
      .template add_option_function<std::string>(
          flag, [&choices, &target](const std::string& v) { target = choices.at(v); }, help)
      ->transform(CLI::IsMember(choices, CLI::ignore_case));
}

}  // namespace

void add_solver_options(CLI::App& sub, SolverChoice& c, bool with_solver_flag) {
  if (with_solver_flag) {
    std::string solvers_help = "solver:";
    for (const std::string& name : solver_names())
      solvers_help += "\n  " + name + ": " + solver_description(name);
    sub.add_option("--solver,-s", c.solver, solvers_help)
        ->transform(CLI::IsMember(solver_names(), CLI::ignore_case))
        ->capture_default_str();
  }
  sub.add_option("--seed", c.options.seed,
                 "run seed, 0..2^64-1 (reads and restarts derive their own streams)")
      ->check(uint64_value())
      ->capture_default_str();
  sub.add_option("--time-limit", c.options.time_limit_s,
                 "wall-clock limit of the search in seconds, checked inside the reads; `solve` "
                 "with sa or tabu and no --reads uses the whole budget: new reads start until the "
                 "limit (MQLib's -r); a tabu read without --tabu-iterations searches until its "
                 "share of the limit")
      ->check(positive());
  sub.add_option("--reads,-r", c.options.num_reads,
                 "independent reads / restarts (with --time-limit: exactly this many, those not "
                 "started by the limit skipped)")
      ->check(positive())
      ->capture_default_str()
      ->each([&c](const std::string&) { c.reads_given = true; });
  sub.add_option("--target-energy", c.options.target_energy,
                 "stop as soon as a sample reaches this energy");
  static const std::map<std::string, ConstraintMode> modes = {
      {"auto", ConstraintMode::kAuto},
      {"native", ConstraintMode::kNative},
      {"penalty", ConstraintMode::kPenalty}};
  add_choice(sub, "--constraints", modes, c.options.constraint_mode,
             "constraint groups: native = feasible moves only, penalty = w (sum x - k)^2 added, "
             "auto = native where the solver has it (default)");
  sub.add_option("--penalty-weight", c.options.penalty_weight,
                 "penalty weight w (default 1.01 B, B = largest single-flip change)")
      ->check(non_negative());
  sub.add_option("--samples", c.options.max_samples, "distinct samples kept in the result")
      ->check(positive())
      ->capture_default_str();
  sub.add_flag("--split-components", c.options.split_components,
               "solve each connected component of the coupling graph on its own (<= 24 variables "
               "exactly, the rest with the chosen solver) and join the parts");

  CLI::Option_group* exact = sub.add_option_group("exact", "options of --solver exact");
  exact
      ->add_option("--exact-max-variables", c.settings.exact.max_variables,
                   "refuse problems with more free variables than this")
      ->capture_default_str();
  CLI::Option_group* sa = sub.add_option_group("sa", "options of --solver sa");
  sa->add_option("--sweeps", c.settings.anneal.num_sweeps,
                 "sweeps per read (about n moves each); 0: 1000, fewer for dense n > 5000")
      ->check(non_negative())
      ->capture_default_str();
  static const std::map<std::string, AnnealSchedule> schedules = {
      {"geometric", AnnealSchedule::kGeometric}, {"linear", AnnealSchedule::kLinear}};
  add_choice(*sa, "--schedule", schedules, c.settings.anneal.schedule,
             "inverse-temperature schedule: geometric (default) or linear");
  static const std::map<std::string, SweepOrder> orders = {{"sequential", SweepOrder::kSequential},
                                                           {"random", SweepOrder::kRandom}};
  add_choice(*sa, "--sweep-order", orders, c.settings.anneal.order,
             "order of flip attempts in a sweep: sequential (default) or random");
  static const std::map<std::string, AnnealStart> starts = {{"auto", AnnealStart::kAuto},
                                                            {"random", AnnealStart::kRandom},
                                                            {"greedy", AnnealStart::kGreedy}};
  add_choice(*sa, "--start", starts, c.settings.anneal.start,
             "where reads start: auto (default: greedy for dense pruning layers above 5000 units, "
             "else random), random, greedy (greedy's answer, never returned worse)");
  static const std::map<std::string, AnnealPrecision> precisions = {
      {"auto", AnnealPrecision::kAuto},
      {"float", AnnealPrecision::kFloat},
      {"double", AnnealPrecision::kDouble},
      {"integer", AnnealPrecision::kInteger}};
  add_choice(*sa, "--precision", precisions, c.settings.anneal.precision,
             "kernel arithmetic: auto (default: integer, else float when exact/safe, else double), "
             "float, double, integer");
  sa->add_option_function<std::vector<double>>(
        "--beta-range",
        [&c](const std::vector<double>& v) {
          c.settings.anneal.beta_range = std::make_pair(v[0], v[1]);
        },
        "HOT COLD inverse temperatures, 0 < HOT <= COLD (default: from the coefficients, "
        "reported)")
      ->expected(2);
  sa->add_flag_function(
      "--no-descent", [&c](std::int64_t) { c.settings.anneal.greedy_descent = false; },
      "skip the final greedy descent of each read");
  CLI::Option_group* tabu = sub.add_option_group("tabu", "options of --solver tabu");
  static const std::map<std::string, TabuMethod> tabu_methods = {
      {"auto", TabuMethod::kAuto},
      {"tabu", TabuMethod::kTabu},
      {"breakout", TabuMethod::kBreakout}};
  add_choice(*tabu, "--tabu-method", tabu_methods, c.settings.tabu.method,
             "search: tabu (restarts and path relinking; swap moves under constraint groups), "
             "breakout (Breakout Local Search: descents linked by short adaptive jumps; single "
             "flips only, best on sparse Max-Cut-like problems), auto (default: breakout without "
             "constraint groups at coupling density <= 5 %, else tabu)");
  tabu->add_option("--tabu-iterations", c.settings.tabu.max_iterations,
                   "iterations per read (0: until the read's share of --time-limit, else "
                   "max(100000, 1000 n))")
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
  tabu->add_option("--breakout-jump-min", c.settings.tabu.breakout_jump_min_fraction,
                   "breakout: shortest jump between descents, a fraction of n (at least one move); "
                   "the jump grows by one move each time the search falls back into the same local "
                   "optimum and returns to this after it escapes")
      ->capture_default_str();
  tabu->add_option("--breakout-jump-max", c.settings.tabu.breakout_jump_max_fraction,
                   "breakout: longest jump, a fraction of n; also the random jump taken when the "
                   "search stalls (see --breakout-stall)")
      ->capture_default_str();
  tabu->add_option("--breakout-stall", c.settings.tabu.breakout_stall,
                   "breakout: local optima in a row without a new best before a random jump of "
                   "--breakout-jump-max; smaller values also make random and recency jumps more "
                   "frequent than tabu-directed ones sooner")
      ->capture_default_str();
  CLI::Option_group* qaoa = sub.add_option_group("qaoa", "options of --solver qaoa");
  QaoaOptions& q = c.settings.qaoa;
  qaoa->add_option("--qaoa-layers,--layers,-p", q.layers, "QAOA depth p")
      ->check(positive())
      ->capture_default_str();
  qaoa->add_option("--qaoa-shots,--shots", q.shots, "bitstrings sampled from the final state")
      ->check(positive())
      ->capture_default_str();
  static const std::map<std::string, QaoaInit> inits = {
      {"interp", QaoaInit::kInterp}, {"ramp", QaoaInit::kLinearRamp}, {"fixed", QaoaInit::kFixed}};
  add_choice(*qaoa, "--qaoa-init", inits, q.init,
             "angle start: interp (p=1 from a linear ramp, then INTERP to p; default), ramp, fixed "
             "(--gammas/--betas)");
  qaoa->add_option("--gammas", q.gammas, "fixed initial gammas (with --qaoa-init fixed)");
  qaoa->add_option("--betas", q.betas, "fixed initial betas (with --qaoa-init fixed)");
  static const std::map<std::string, QaoaOptimizer> optimizers = {
      {"lbfgs", QaoaOptimizer::kLbfgs},
      {"cobyla", QaoaOptimizer::kCobyla},
      {"nelder-mead", QaoaOptimizer::kNelderMead},
      {"none", QaoaOptimizer::kNone}};
  add_choice(
      *qaoa, "--qaoa-optimizer", optimizers, q.optimizer,
      "angle optimiser (NLopt): lbfgs with adjoint gradients (default), cobyla, nelder-mead, "
      "none");
  qaoa->add_option("--qaoa-evaluations", q.max_evaluations,
                   "objective evaluations per optimisation")
      ->capture_default_str();
  qaoa->add_option("--qaoa-ftol", q.ftol_rel,
                   "stop the optimiser when <C> changes by less than this relative amount (0: off; "
                   "1e-4 about halves the evaluations at p >= 3 for a slightly higher <C>)")
      ->check(non_negative())
      ->capture_default_str();
  static const std::map<std::string, QaoaPrecision> qprec = {{"double", QaoaPrecision::kDouble},
                                                             {"float", QaoaPrecision::kFloat}};
  add_choice(*qaoa, "--qaoa-precision", qprec, q.precision,
             "statevector: double (default) or float");
  static const std::map<std::string, QaoaMixer> mixers = {{"xy-ring", QaoaMixer::kXyRing},
                                                          {"xy-complete", QaoaMixer::kXyComplete}};
  add_choice(*qaoa, "--mixer", mixers, q.mixer,
             "mixer under constraint groups: xy-ring (default) or xy-complete (X mixer otherwise)");
  static const std::map<std::string, QaoaSpace> spaces = {
      {"auto", QaoaSpace::kAuto}, {"full", QaoaSpace::kFull}, {"subspace", QaoaSpace::kSubspace}};
  add_choice(*qaoa, "--qaoa-space", spaces, q.space,
             "stored amplitudes under groups: auto (default), full, subspace (feasible only)");
  qaoa->add_option(
          "--qaoa-max-qubits", q.max_qubits,
          "largest state simulated directly (2^q amplitudes); larger problems are decomposed")
      ->capture_default_str();
  qaoa->add_option("--qaoa-rounds", q.decomposition_rounds,
                   "most decomposition rounds (fewer after --qaoa-stall rounds without a gain)")
      ->capture_default_str();
  qaoa->add_option("--qaoa-subproblem-qubits", q.subproblem_qubits,
                   "variables per decomposition subproblem (at most --qaoa-max-qubits), chosen by "
                   "energy impact around the incumbent")
      ->capture_default_str();
  qaoa->add_option("--qaoa-stall", q.stall_rounds,
                   "decomposition: stop after this many rounds in a row without an improvement")
      ->capture_default_str();
  qaoa->add_option("--qaoa-warm-epsilon", q.warm_epsilon,
                   "warm start: regularisation of the incumbent, c_i = eps or 1 - eps, in (0, 0.5]")
      ->capture_default_str();
  qaoa->add_option("--qaoa-transfer-evaluations", q.transfer_evaluations,
                   "warm start: optimiser evaluations from the previous subproblem's angles")
      ->capture_default_str();
  qaoa->add_flag_function(
      "--qaoa-no-warm-start", [&q](std::int64_t) { q.warm_start = false; },
      "solve decomposition subproblems with plain QAOA (X/XY mixers, angles from scratch) instead "
      "of warm-start QAOA biased towards the incumbent");
  qaoa->add_flag_function(
      "--qaoa-no-descent", [&q](std::int64_t) { q.greedy_descent = false; },
      "do not improve the best sampled bitstring by a greedy descent");
  CLI::Option_group* greedy = sub.add_option_group("greedy", "options of --solver greedy");
  greedy
      ->add_option("--greedy-max-moves", c.settings.greedy.max_moves_per_read,
                   "cap on improving moves per read")
      ->capture_default_str();
}

void use_time_budget(SolverChoice& c) {
  const bool restarts = c.solver == "sa" || c.solver == "tabu";
  c.options.reads_until_time_limit =
      restarts && std::isfinite(c.options.time_limit_s) && !c.reads_given;
}

}  // namespace qprune::cli
