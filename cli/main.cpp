// qprune: the command-line program. A thin shell over the library: parse, run one subcommand, map
// errors to one clear line on stderr and an exit code (cli/exit_codes.hpp).
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/option_names.hpp"
#include "cli/parallel.hpp"
#include "core/memory_check.hpp"
#include "qprune/error.hpp"

namespace {

constexpr const char* kDescription =
    R"(qprune: structured pruning of neural-network checkpoints as QUBO/Ising problems,
and a toolbox to read, write, solve and compare QUBO problems.

Energy convention (everywhere in qprune):
  QUBO   minimise E(x) = offset + sum_i c_i x_i + sum_{i<j} q_ij x_i x_j,  x in {0,1}^n
  Ising  minimise E(s) = offset + sum_i h_i s_i + sum_{i<j} J_ij s_i s_j,  s in {-1,+1}^n,  x = (1+s)/2
Each pair counts once. Formats that maximise (Beasley, MQLib, Max-Cut, QPLIB 'maximize') are negated on
read, so a published maximum V appears as energy -V. See docs/formats.md.

Exit codes: 0 ok, 1 internal error, 2 bad input or usage, 3 file could not be read/written,
4 request too large for memory/time, 5 interrupted (best answer so far written).)";

}  // namespace

namespace {

// "qprune SUB" for the subcommand being run (for messages), or "qprune".
std::string command_name(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return "qprune " + sub->get_name();
  return "qprune";
}

}  // namespace

namespace qprune::cli {

std::string error_message(const std::exception& e, const std::string& command) {
  const bool no_memory = dynamic_cast<const std::bad_alloc*>(&e) != nullptr;
  if (!no_memory && dynamic_cast<const std::length_error*>(&e) == nullptr)
    return translate_option_names(e.what());
  std::string msg = std::string("out of memory in `") + command + "` (" +
                    (no_memory ? "std::bad_alloc" : "std::length_error: " + std::string(e.what())) +
                    ") in an allocation that no up-front check covered";
  const std::string budget = qprune::detail::describe_current_budget();
  if (!budget.empty()) msg += "; " + budget;
  return msg + "; use a smaller input or raise the memory limit";
}

}  // namespace qprune::cli

namespace {

// Parses and runs one subcommand; returns the exit code.
int run(int argc, char** argv) {
  using namespace qprune::cli;
  CLI::App app{kDescription, "qprune"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("qprune ") + QPRUNE_VERSION);
  app.get_formatter()->column_width(34);
  CommandResult result;
  setup_info(app, result);
  setup_convert(app, result);
  setup_solve(app, result);
  setup_energy(app, result);
  setup_mask(app, result);
  setup_apply(app, result);
  setup_gguf(app, result);
  setup_export(app, result);
  setup_import_solution(app, result);
  setup_compare(app, result);
  setup_calibrate(app, result);
  setup_perplexity(app, result);
  setup_prune(app, result);
  setup_ablate_direction(app, result);
  const bool coordinator = process_rank() == 0;
  if (!coordinator) {
    // Under MPI only mask, compare and calibrate are spread over the ranks; the other commands
    // run once, on rank 0.
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      const std::string& name = sub->get_name();
      if (name != "mask" && name != "compare" && name != "calibrate") sub->callback([] {});
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (!coordinator) return e.get_exit_code() == 0 ? kExitOk : kExitBadInput;  // rank 0 says it
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  } catch (const std::exception& e) {
    const int code = exit_code_for(e);
    // Errors outside the distributed jobs (options, input files) usually hit every rank alike:
    // rank 0 reports at once and ends the run; another rank reports only if it is still alive a
    // moment later, i.e. when the error is its own (then rank 0 may be waiting for it).
    if (!coordinator) std::this_thread::sleep_for(std::chrono::seconds(1));
    std::cerr << "qprune: " << error_kind(code) << ": "
              << (process_count() > 1 ? "rank " + std::to_string(process_rank()) + ": " : "")
              << error_message(e, command_name(app)) << "\n";
    abort_processes(code);
    return code;
  }
  return result.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  qprune::cli::init_processes(argc, argv);
  const int code = run(argc, argv);
  qprune::cli::finish_processes();
  return code;
}
