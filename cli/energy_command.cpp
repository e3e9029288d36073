// `qprune energy FILE SOLUTION`: energy and feasibility of a given assignment.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/model_input.hpp"
#include "cli/report.hpp"

namespace qprune::cli {
namespace {

struct EnergyOptions {
  ModelInput input;
  std::string solution;
  std::string from;
  bool json = false;
};

int run_energy(const EnergyOptions& opts) {
  const QuboModel model = read_input(opts.input);
  SolutionReadOptions solution_options;
  solution_options.format = opts.from;
  const Assignment x = read_solution(opts.solution, model, solution_options);
  int ones = 0;
  for (auto v : x) ones += v;
  Report r("energy");
  r.add("Variables", "num_variables", model.num_variables());
  r.add("Ones", "num_ones", ones);
  r.add("Energy", "energy", json_number(model.energy(x)));
  r.add("Feasible", "feasible", model.is_feasible(x));
  r.add("Constraint violation", "constraint_violation", model.constraint_violation(x));
  r.print(std::cout, opts.json);
  return 0;
}

}  // namespace

void setup_energy(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<EnergyOptions>();
  CLI::App* sub = app.add_subcommand("energy", "Energy and feasibility of a given assignment");
  sub->footer(
      solution_formats_help() +
      "Variables are matched by name (labels, or x1..xn as the LP/MPS writers name them) or by "
      "position.\nFor a maximisation format the energy is minus the file's objective.\n" +
      formats_help());
  add_model_input(*sub, opts->input);
  sub->add_option("solution", opts->solution, "assignment file")->required();
  // (--from is the model file's format, as in every command that reads one.)
  sub->add_option("--solution-from", opts->from, "solution format (default: told from the content)")
      ->transform(CLI::IsMember(solution_format_names(), CLI::ignore_case));
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, &result] { result.exit_code = run_energy(*opts); });
}

}  // namespace qprune::cli
