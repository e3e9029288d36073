// `qprune solve FILE --solver NAME`: solve a QUBO file and report the result; -o writes the best
// assignment (0/1 per line) or, for a .json path, the whole result. While it runs, a progress line
// on stderr when that is a terminal (not with -q or --json).
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/interrupt.hpp"
#include "cli/model_input.hpp"
#include "cli/output_guard.hpp"
#include "cli/progress_line.hpp"
#include "cli/report.hpp"
#include "cli/result_json.hpp"
#include "cli/solver_options.hpp"

namespace qprune::cli {
namespace {

struct SolveCommandOptions {
  ModelInput input;
  SolverChoice choice;
  std::string output;
  bool json = false;
  bool quiet = false;
};

int run_solve(SolveCommandOptions opts) {
  opts.choice.options.interrupt = install_interrupt_handler();
  use_time_budget(opts.choice);
  guard_outputs({{"--output", opts.output}}, {{"input", input_file(opts.input.path)}});
  const auto read_start = std::chrono::steady_clock::now();
  const QuboModel model = read_input(opts.input);
  const std::chrono::duration<double> read_s = std::chrono::steady_clock::now() - read_start;
  const std::unique_ptr<Solver> solver = make_solver(opts.choice.solver, opts.choice.settings);
  ProgressLine progress("solve");
  if (!opts.quiet && !opts.json && stderr_is_terminal()) {
    opts.choice.options.progress = solve_progress(progress);
  }
  const SolveResult result = solver->solve(model, opts.choice.options);
  progress.finish();

  // One JSON document for --json and -o FILE.json (read_seconds: reading and parsing the file,
  // apart from the solver's own wall time).
  const nlohmann::json document = result_document(result, model, opts.input.path, read_s.count());
  if (opts.json) {
    std::cout << document.dump(2) << "\n";
  } else {
    Report r("solve");
    r.add("File", "file", opts.input.path);
    r.add("Variables", "num_variables", model.num_variables());
    add_result_lines(r, result, model);
    r.print(std::cout, false);
  }
  if (!opts.output.empty() && result.has_solution()) {
    if (opts.output.size() > 5 && opts.output.ends_with(".json")) {
      write_json_document(document, opts.output);
    } else {
      write_solution(result.best().x, opts.output);
    }
  }
  return result.status == SolveStatus::kInterrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

void setup_solve(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<SolveCommandOptions>();
  CLI::App* sub = app.add_subcommand("solve", "Solve a QUBO file with one solver");
  sub->footer(
      "Every reported energy is recomputed from the model (QuboModel::energy). Status: optimal "
      "(proven), completed, time_limit, target_reached, interrupted (Ctrl-C: the best answer so "
      "far is reported and written; exit code 5; a second Ctrl-C aborts).\n" +
      formats_help());
  add_model_input(*sub, opts->input);
  add_solver_options(*sub, opts->choice);
  sub->add_option(
      "--output,-o", opts->output,
      "write the best assignment (0/1 per line), or the whole result if it ends in .json");
  sub->add_flag("--json", opts->json, "print the report as JSON (with all samples)");
  sub->add_flag("--quiet,-q", opts->quiet, "no progress line on stderr (shown only on a terminal)");
  sub->callback([opts, &result] { result.exit_code = run_solve(*opts); });
}

}  // namespace qprune::cli
