// SolveResult to report lines and JSON.
#include "cli/result_json.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "qprune/atomic_output.hpp"
#include "qprune/error.hpp"

namespace qprune::cli {
namespace {

std::string bit_string(const Assignment& x) {
  std::string s(x.size(), '0');
  for (std::size_t i = 0; i < x.size(); ++i) s[i] = x[i] ? '1' : '0';
  return s;
}

}  // namespace

void add_result_lines(Report& r, const SolveResult& result, const QuboModel& model) {
  r.add("Solver", "solver", result.solver);
  r.add("Status", "status", std::string(to_string(result.status)));
  r.add("Message", "message", result.message);
  r.add("Seed", "seed", result.seed);
  r.add("Wall time (s)", "wall_time_s", result.wall_time_s);
  if (result.has_solution()) {
    const Sample& best = result.best();
    r.add("Best energy", "best_energy", json_number(best.energy));
    r.add("Feasible", "feasible", best.feasible);
    if (model.num_variables() <= 128)
      r.add("Best assignment", "best_assignment", bit_string(best.x));
    r.add("Distinct samples", "num_samples", static_cast<int>(result.samples.size()));
  }
  for (const auto& [key, value] : result.info) r.add(key, key, value);
  for (const auto& [key, value] : result.counters) r.add(key, key, json_number(value));
}

nlohmann::json typed_info_value(const std::string& text) {
  const auto number = [](std::string_view t, double& out) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return !t.empty() && ec == std::errc() && end == t.data() + t.size();
  };
  double v = 0.0;
  if (number(text, v)) return json_number(v);
  if (text == "true" || text == "false") return text == "true";
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    nlohmann::json list = nlohmann::json::array();
    std::string_view body(text.data() + 1, text.size() - 2);
    for (std::size_t start = 0; start <= body.size();) {
      const std::size_t comma = std::min(body.find(',', start), body.size());
      if (!number(body.substr(start, comma - start), v)) return text;
      list.push_back(json_number(v));
      start = comma + 1;
    }
    return list;
  }
  return text;
}

nlohmann::json result_document(const SolveResult& result, const QuboModel& model,
                               const std::string& file, double read_seconds) {
  nlohmann::json j;
  j["format"] = "qprune-solve-result";
  j["version"] = kSolveResultVersion;
  j["qprune_version"] = QPRUNE_VERSION;
  j["file"] = file;
  j["read_seconds"] = read_seconds;
  j["solver"] = result.solver;
  j["status"] = std::string(to_string(result.status));
  j["message"] = result.message;
  j["seed"] = result.seed;
  j["wall_time_s"] = result.wall_time_s;
  j["num_variables"] = model.num_variables();
  if (result.has_solution()) {
    j["best_energy"] = json_number(result.best().energy);
    j["feasible"] = result.best().feasible;
    j["best_assignment"] = bit_string(result.best().x);
  }
  nlohmann::json info = nlohmann::json::object();
  for (const auto& [key, value] : result.info) info[key] = typed_info_value(value);
  j["info"] = info;
  nlohmann::json counters = nlohmann::json::object();
  for (const auto& [key, value] : result.counters) counters[key] = json_number(value);
  j["counters"] = counters;
  nlohmann::json samples = nlohmann::json::array();
  for (const Sample& s : result.samples) {
    samples.push_back({{"energy", json_number(s.energy)},
                       {"feasible", s.feasible},
                       {"num_occurrences", s.num_occurrences},
                       {"x", s.x}});
  }
  j["samples"] = samples;
  return j;
}

void write_json_document(const nlohmann::json& document, const std::string& path) {
  write_file_atomically(std::filesystem::path(path), document.dump(1) + "\n");
}

}  // namespace qprune::cli
