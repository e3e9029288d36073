// Checkpoint layers as QUBO instances: the spec `CKPT:layer=L:unit=U:sparsity=S[:calib=STATS]
// [:data_free=magnitude|isserlis][:compensation=0|1]` names one layer's pruning problem, so that
// `qprune compare` (and anything else that takes instances) can run solvers on it like on a file.
#include "qprune/layer_instance.hpp"

#include <cmath>
#include <filesystem>
#include <memory>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/checkpoint_problems.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t pos; (pos = text.find(sep, start)) != std::string::npos; start = pos + 1)
    parts.push_back(text.substr(start, pos - start));
  parts.push_back(text.substr(start));
  return parts;
}

[[noreturn]] void bad(const std::string& spec, const std::string& what) {
  throw InvalidArgument("checkpoint layer instance '" + spec + "': " + what +
                        " (expected CKPT:layer=L:unit=mlp|heads|kv_groups|heads_per_group:"
                        "sparsity=S[:calib=STATS][:data_free=magnitude|isserlis]"
                        "[:compensation=0|1])");
}

double parse_number(const std::string& spec, const std::string& key, const std::string& text) {
  std::size_t used = 0;
  double v = 0.0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) bad(spec, key + "=" + text + " is not a number");
  return v;
}

}  // namespace

std::optional<LayerInstanceSpec> parse_layer_instance(const std::string& spec) {
  const std::vector<std::string> parts = split(spec, ':');
  if (parts.size() < 2 || parts[1].rfind("layer=", 0) != 0) return std::nullopt;
  LayerInstanceSpec out;
  out.checkpoint = parts[0];
  bool have_layer = false, have_unit = false, have_sparsity = false;
  for (std::size_t p = 1; p < parts.size(); ++p) {
    const std::size_t eq = parts[p].find('=');
    if (eq == std::string::npos) bad(spec, "'" + parts[p] + "' is not key=value");
    const std::string key = parts[p].substr(0, eq), value = parts[p].substr(eq + 1);
    if (key == "layer") {
      const double layer = parse_number(spec, key, value);
      if (layer < 0 || layer != static_cast<int>(layer)) bad(spec, "layer must be an integer >= 0");
      out.problem.layer = static_cast<int>(layer);
      have_layer = true;
    } else if (key == "unit") {
      out.problem.unit = unit_kind_from_name(value);
      have_unit = true;
    } else if (key == "sparsity") {
      out.problem.sparsity = parse_number(spec, key, value);
      have_sparsity = true;
    } else if (key == "calib") {
      out.calibration = value;
    } else if (key == "data_free") {
      if (value == "magnitude") {
        out.problem.data_free = DataFreeModel::kMagnitude;
      } else if (value == "isserlis") {
        out.problem.data_free = DataFreeModel::kIsserlis;
      } else {
        bad(spec, "data_free=" + value + " is not magnitude or isserlis");
      }
    } else if (key == "compensation") {
      if (value != "0" && value != "1") bad(spec, "compensation must be 0 or 1");
      out.problem.mean_compensation = value == "1";
    } else {
      bad(spec, "unknown key '" + key + "'");
    }
  }
  if (!have_layer || !have_unit || !have_sparsity)
    bad(spec, "layer, unit and sparsity are required");
  return out;
}

QuboModel load_layer_instance(const LayerInstanceSpec& spec) {
  const Checkpoint checkpoint = Checkpoint::open(spec.checkpoint);
  std::optional<CalibrationStatsFile> stats;
  if (!spec.calibration.empty()) {
    stats.emplace(CalibrationStatsFile::open(spec.calibration));
    stats->check_against(checkpoint.config(), checkpoint_config_hash(checkpoint));
  }
  return build_layer_problem(checkpoint, stats ? &*stats : nullptr, spec.problem).model;
}

std::string layer_instance_name(const LayerInstanceSpec& spec) {
  return std::filesystem::path(spec.checkpoint).filename().string() + ".layer" +
         std::to_string(spec.problem.layer) + "." + unit_kind_name(spec.problem.unit) + ".s" +
         std::to_string(std::lround(spec.problem.sparsity * 100));
}

}  // namespace qprune
