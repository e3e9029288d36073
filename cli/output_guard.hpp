// The CLI side of the one output guard (qprune::check_outputs_outside_inputs): every command that
// writes calls guard_outputs first, with every path it writes and every path it reads, so that
// `-o CKPT/config.json`, `solve -o IN`, `convert IN IN` and symlinked variants are refused (exit 2)
// before any work.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/output_guard.hpp is part of the cli program; no library layer may include it"
#endif

#include <initializer_list>
#include <string>
#include <vector>

#include "qprune/atomic_output.hpp"

namespace qprune::cli {

/// Throws InvalidArgument (naming both paths) when an output is, or is inside, an input, or a
/// folder output holds an input. Empty paths (options not given) are skipped.
void guard_outputs(std::initializer_list<NamedPath> outputs, std::vector<NamedPath> inputs,
                   std::initializer_list<NamedPath> folder_outputs = {});

/// The file a QUBO input names: "FILE#k" without the instance suffix when FILE#k is not itself a
/// file.
[[nodiscard]] std::string input_file(const std::string& spec);

}  // namespace qprune::cli

namespace qprune::cli {

/// For commands whose folder output is replaced as a whole (compare -o, export --all -o): throws
/// InvalidArgument when `folder` exists and is not a folder, or holds an entry for which `ours`
/// (given the entry's file name) is false, so that replacing it never deletes a file the command
/// did not write (`-o .` or `-o ~` are refused instead of emptied).
void check_replaceable_folder(const std::string& folder, bool (*ours)(const std::string& name));

}  // namespace qprune::cli
