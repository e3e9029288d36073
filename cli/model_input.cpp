// Shared QUBO-file input options.
#include "cli/model_input.hpp"

#include <sstream>

namespace qprune::cli {

std::vector<std::string> format_names(bool readable, bool writable) {
  std::vector<std::string> names;
  for (const FormatInfo& f : formats())
    if ((!readable || f.can_read) && (!writable || f.can_write)) names.push_back(f.name);
  return names;
}

std::string formats_help() {
  std::ostringstream out;
  out << "Formats (read/write, extensions: convention):\n";
  for (const FormatInfo& f : formats()) {
    std::string ext;
    for (const std::string& e : f.extensions) ext += (ext.empty() ? "" : " ") + e;
    out << "  " << f.name << " [" << (f.can_read ? "r" : "-") << (f.can_write ? "w" : "-") << "] "
        << ext << ": " << f.description << "\n";
  }
  out << "Any input may be gzip-compressed. FILE#k picks instance k of a multi-instance file.";
  return out.str();
}

void add_qaoa_angle_options(CLI::App& sub, int& layers, std::vector<double>& gammas,
                            std::vector<double>& betas) {
  sub.add_option("--qaoa-layers", layers,
                 "qasm: QAOA layers p of the circuit, its angles optimised by the qaoa solver "
                 "(at most 20 variables; more: give the angles or export a --subproblem)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub.add_option("--qaoa-gammas", gammas,
                 "qasm: the phase angles, one per layer (the qaoa solver's units: "
                 "exp(-i gamma C / B), B the largest single-flip change)")
      ->delimiter(',');
  sub.add_option("--qaoa-betas", betas, "qasm: the mixer angles exp(-i beta sum X), one per layer")
      ->delimiter(',');
}

std::vector<std::string> solution_format_names() {
  std::vector<std::string> names;
  for (const SolutionFormatInfo& f : solution_formats()) names.push_back(f.name);
  return names;
}

std::string solution_formats_help() {
  std::string out = "Solution formats (told from the content; give one to force it):\n";
  for (const SolutionFormatInfo& f : solution_formats())
    out.append("  ").append(f.name).append(": ").append(f.description).append("\n");
  return out;
}

void add_model_input(CLI::App& sub, ModelInput& input) {
  sub.add_option("file", input.path, "QUBO file (FILE#k: instance k of a multi-instance file)")
      ->required();
  sub.add_option("--from", input.format, "input format (default: from the extension/content)")
      ->transform(CLI::IsMember(format_names(true, false), CLI::ignore_case));
}

QuboModel read_input(const ModelInput& input) {
  ReadOptions options;
  options.format = input.format;
  return read_model(input.path, options);
}

}  // namespace qprune::cli
