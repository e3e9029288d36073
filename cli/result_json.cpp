// SolveResult to report lines and JSON.
#include "cli/result_json.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

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
    r.add("Feasible", "feasible", best.feasible ? "yes" : "no");
    if (model.num_variables() <= 128)
      r.add("Best assignment", "best_assignment", bit_string(best.x));
    r.add("Distinct samples", "num_samples", static_cast<int>(result.samples.size()));
  }
  for (const auto& [key, value] : result.info) r.add(key, key, value);
  for (const auto& [key, value] : result.counters) r.add(key, key, json_number(value));
  r.add_json("samples", result_to_json(result, model)["samples"]);
}

nlohmann::json result_to_json(const SolveResult& result, const QuboModel& model) {
  nlohmann::json j;
  j["solver"] = result.solver;
  j["status"] = std::string(to_string(result.status));
  j["message"] = result.message;
  j["seed"] = result.seed;
  j["wall_time_s"] = result.wall_time_s;
  j["num_variables"] = model.num_variables();
  j["info"] = result.info;
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

void write_result_json(const SolveResult& result, const QuboModel& model, const std::string& path) {
  write_file_atomically(std::filesystem::path(path), result_to_json(result, model).dump(1) + "\n");
}

}  // namespace qprune::cli
