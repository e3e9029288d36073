// Options shared by every subcommand that reads a QUBO file: the path (with an optional `#k`
// instance suffix) and an explicit format.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/model_input.hpp is part of the cli program; no library layer may include it"
#endif

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "qprune/formats.hpp"

namespace qprune::cli {

struct ModelInput {
  std::string path;
  std::string format;  // empty: detect
};

/// Adds the positional FILE and --from options to `sub`.
void add_model_input(CLI::App& sub, ModelInput& input);
/// Reads the model the options name.
[[nodiscard]] QuboModel read_input(const ModelInput& input);
/// The --help text listing every format with its extensions and convention.
[[nodiscard]] std::string formats_help();
/// The --help text listing every solution (answer) file format.
[[nodiscard]] std::string solution_formats_help();
/// The solution format names for CLI::IsMember checks.
[[nodiscard]] std::vector<std::string> solution_format_names();
/// The format names for CLI::IsMember checks.
[[nodiscard]] std::vector<std::string> format_names(bool readable, bool writable);
/// The qasm format's options (convert, export): --qaoa-layers (the depth of optimised angles),
/// --qaoa-gammas and --qaoa-betas (given angles, one per layer).
void add_qaoa_angle_options(CLI::App& sub, int& layers, std::vector<double>& gammas,
                            std::vector<double>& betas);

}  // namespace qprune::cli
