// The subcommands of `qprune`: each has one options struct filled by CLI11 and a setup_x/run_x pair
// (CLI11's examples/subcom_in_files layout). setup_x registers the subcommand and, when it is
// chosen, run_x runs it and stores its exit code.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/commands.hpp is part of the cli program; no library layer may include it"
#endif

#include <CLI/CLI.hpp>

namespace qprune::cli {

/// Where a chosen subcommand leaves its exit code.
struct CommandResult {
  int exit_code = 0;
};

void setup_info(CLI::App& app, CommandResult& result);
void setup_convert(CLI::App& app, CommandResult& result);
void setup_solve(CLI::App& app, CommandResult& result);
void setup_energy(CLI::App& app, CommandResult& result);
void setup_mask(CLI::App& app, CommandResult& result);
void setup_apply(CLI::App& app, CommandResult& result);
void setup_export(CLI::App& app, CommandResult& result);
void setup_import_solution(CLI::App& app, CommandResult& result);
void setup_compare(CLI::App& app, CommandResult& result);
void setup_calibrate(CLI::App& app, CommandResult& result);
void setup_perplexity(CLI::App& app, CommandResult& result);
void setup_prune(CLI::App& app, CommandResult& result);
void setup_gguf(CLI::App& app, CommandResult& result);
void setup_ablate_direction(CLI::App& app, CommandResult& result);

}  // namespace qprune::cli
