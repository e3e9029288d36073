// Output of every subcommand: an ordered list of key/value pairs printed either as stable
// `Key : value` lines (for people and golden tests) or as one JSON object (--json).
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/report.hpp is part of the cli program; no library layer may include it"
#endif

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace qprune::cli {

/// The version of the reports' common layout (docs/json.md): raised when a key changes type.
inline constexpr int kReportVersion = 1;

class Report {
 public:
  /// `command` names the report in JSON: "format": "qprune-<command>-report", with "version"
  /// (kReportVersion) and "qprune_version".
  explicit Report(std::string command) : command_(std::move(command)) {}
  /// Adds a line; `json_key` is the snake_case key used in JSON, `value` any JSON-able value. An
  /// empty `json_key` makes a text-only line (its data then goes in through add_json). A boolean
  /// prints as yes/no in the text and true/false in JSON.
  void add(std::string label, std::string json_key, nlohmann::json value) {
    lines_.push_back({std::move(label), std::move(json_key), std::move(value)});
  }
  /// Adds a JSON-only entry (e.g. the sample list), not printed in text mode.
  void add_json(const std::string& json_key, nlohmann::json value) {
    extra_[json_key] = std::move(value);
  }

  void print(std::ostream& out, bool as_json) const;

 private:
  struct Line {
    std::string label;
    std::string json_key;
    nlohmann::json value;
  };
  std::string command_;
  std::vector<Line> lines_;
  nlohmann::json extra_ = nlohmann::json::object();
};

/// A double as text: an integer value exactly, without exponent ("-1117170", never
/// "-1.11717e+06"); any other value as the shortest text that reads back to the same double.
[[nodiscard]] std::string format_double(double v);

/// A double for a JSON report: an integer value (|v| < 2^63) as a JSON integer, so it prints
/// exactly and without exponent in both the JSON and the text report; any other value as a JSON
/// double (printed as the shortest text that reads back to it). For energies and counters.
[[nodiscard]] nlohmann::json json_number(double v);

/// Heads go in whole steps, so a head sparsity may be rounded (GQA, 4 KV groups: 0.3 -> 0.25).
/// When the applied value differs from the requested one, says so on stderr, naming `flag`, the
/// requested and the applied value and the kept count: "qprune: notice: ...".
void notice_head_sparsity(std::ostream& err, const std::string& flag, double requested,
                          double applied, int kept, int units, const std::string& unit_name);

}  // namespace qprune::cli
