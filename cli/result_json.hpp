// A SolveResult as report lines and as JSON (the `--json` output and the -o result.json file,
// which `qprune energy` and read_solution accept back).
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/result_json.hpp is part of the cli program; no library layer may include it"
#endif

#include <nlohmann/json.hpp>
#include <string>

#include "cli/report.hpp"
#include "qprune/solver.hpp"

namespace qprune::cli {

void add_result_lines(Report& r, const SolveResult& result, const QuboModel& model);
[[nodiscard]] nlohmann::json result_to_json(const SolveResult& result, const QuboModel& model);
/// Writes result_to_json to `path` through a temporary file and a rename.
void write_result_json(const SolveResult& result, const QuboModel& model, const std::string& path);

}  // namespace qprune::cli
