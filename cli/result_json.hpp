// A SolveResult as report lines and as one JSON document, the same for `solve --json` and for
// `solve -o result.json` (which `qprune energy` and read_solution accept back). The document's
// layout is docs/json.md, "qprune-solve-result".
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/result_json.hpp is part of the cli program; no library layer may include it"
#endif

#include <nlohmann/json.hpp>
#include <string>

#include "cli/report.hpp"
#include "qprune/solver.hpp"

namespace qprune::cli {

/// The version of the qprune-solve-result layout: raised when a key changes meaning or type.
inline constexpr int kSolveResultVersion = 1;

/// The `Key : value` lines of the text report.
void add_result_lines(Report& r, const SolveResult& result, const QuboModel& model);
/// The JSON document: format, version, qprune_version, file, read_seconds, the result's
/// fields, best_energy / feasible (a boolean) / best_assignment, info (typed: see
/// typed_info_value), counters and samples.
[[nodiscard]] nlohmann::json result_document(const SolveResult& result, const QuboModel& model,
                                             const std::string& file, double read_seconds);
/// An info value (text in SolveResult) as JSON: a number when the whole text is one, true/false,
/// an array of numbers for "[a, b, ...]", else the text.
[[nodiscard]] nlohmann::json typed_info_value(const std::string& text);
/// Writes `document` to `path` through a temporary file and a rename.
void write_json_document(const nlohmann::json& document, const std::string& path);

}  // namespace qprune::cli
