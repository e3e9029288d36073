// guard_outputs: the one check every writing command runs before its work (cli/output_guard.hpp).
#include "cli/output_guard.hpp"

#include <cctype>
#include <filesystem>
#include <span>

#include "qprune/error.hpp"

namespace qprune::cli {

void guard_outputs(std::initializer_list<NamedPath> outputs, std::vector<NamedPath> inputs,
                   std::initializer_list<NamedPath> folder_outputs) {
  check_outputs_outside_inputs(
      std::span<const NamedPath>(outputs.begin(), outputs.size()), inputs,
      std::span<const NamedPath>(folder_outputs.begin(), folder_outputs.size()));
}

std::string input_file(const std::string& spec) {
  const std::size_t hash = spec.rfind('#');
  if (hash == std::string::npos || hash + 1 == spec.size()) return spec;
  for (std::size_t i = hash + 1; i < spec.size(); ++i)
    if (std::isdigit(static_cast<unsigned char>(spec[i])) == 0) return spec;
  std::error_code ec;
  if (std::filesystem::exists(spec, ec)) return spec;
  return spec.substr(0, hash);
}

}  // namespace qprune::cli

namespace qprune::cli {

void check_replaceable_folder(const std::string& folder, bool (*ours)(const std::string& name)) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(folder, ec);
  if (ec || !fs::exists(st)) return;
  if (!fs::is_directory(st))
    throw InvalidArgument("output folder " + folder + " exists and is not a folder");
  for (const fs::directory_entry& e : fs::directory_iterator(folder)) {
    const std::string name = e.path().filename().string();
    if (!ours(name))
      throw InvalidArgument("output folder " + folder + " holds " + name +
                            ", which this command did not write; the folder is replaced as a "
                            "whole, so give a new or empty folder");
  }
}

}  // namespace qprune::cli
