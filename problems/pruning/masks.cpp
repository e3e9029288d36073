// Masks files (docs/masks.md): JSON with the checkpoint identity, the run's settings and one entry
// per (layer, unit kind) with the kept indices and objective values.
#include "qprune/masks.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

using Json = nlohmann::ordered_json;
constexpr const char* kFormat = "qprune-masks";

struct UnitRow {
  MaskUnit unit;
  const char* name;
};
constexpr UnitRow kUnits[] = {{MaskUnit::kMlp, "mlp"},
                              {MaskUnit::kHeads, "heads"},
                              {MaskUnit::kKvGroups, "kv_groups"},
                              {MaskUnit::kHeadsPerGroup, "heads_per_group"}};

}  // namespace

const char* mask_unit_name(MaskUnit unit) {
  for (const UnitRow& r : kUnits)
    if (r.unit == unit) return r.name;
  return "?";
}

MaskUnit mask_unit_from_name(const std::string& name) {
  for (const UnitRow& r : kUnits)
    if (name == r.name) return r.unit;
  throw InvalidArgument("unknown unit kind '" + name +
                        "'; expected mlp, heads, kv_groups or heads_per_group");
}

const char* mask_allocation_name(MaskAllocation allocation) {
  return allocation == MaskAllocation::kGlobal ? "global" : "uniform";
}

MaskAllocation mask_allocation_from_name(const std::string& name) {
  if (name == "uniform") return MaskAllocation::kUniform;
  if (name == "global") return MaskAllocation::kGlobal;
  throw InvalidArgument("unknown allocation '" + name + "'; expected uniform or global");
}

CheckpointIdentity CheckpointIdentity::of(const Checkpoint& checkpoint) {
  CheckpointIdentity id;
  id.path = std::filesystem::absolute(checkpoint.folder()).lexically_normal().string();
  id.config_hash = checkpoint_config_hash(checkpoint);
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  };
  for (const std::string& name : checkpoint.tensor_names()) {  // sorted
    const TensorInfo& info = checkpoint.info(name);
    std::string line = name + " " + info.dtype_text + " [";
    for (std::int64_t d : info.shape) line += std::to_string(d) + ",";
    line += "] " + std::to_string(info.num_bytes()) + "\n";
    mix(line);
    // A sample of the content (the first 32 bytes of each tensor: one page touched per tensor)
    // tells apart checkpoints of one architecture with different weights, at no real cost.
    std::byte bytes[32];
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(32, info.num_bytes()));
    checkpoint.file_of(name).read_raw(name, 0, std::span(bytes, n));
    for (std::size_t i = 0; i < n; ++i)
      h = (h ^ static_cast<unsigned char>(bytes[i])) * 1099511628211ULL;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  id.tensors_hash = buf;
  return id;
}

const LayerMask* Masks::find(int layer, bool mlp) const {
  for (const LayerMask& e : entries)
    if (e.layer == layer && (e.unit == MaskUnit::kMlp) == mlp) return &e;
  return nullptr;
}

void Masks::check_identity(const Checkpoint& ckpt) const {
  const CheckpointIdentity here = CheckpointIdentity::of(ckpt);
  if (here.same_model(checkpoint)) return;
  throw InvalidArgument("masks were computed for checkpoint " + checkpoint.path + " (config " +
                        checkpoint.config_hash + ", tensors " + checkpoint.tensors_hash +
                        "), not for " + here.path + " (config " + here.config_hash +
                        ", tensors " + here.tensors_hash + ")");
}

void write_masks(const Masks& m, const std::filesystem::path& path) {
  Json j;
  j["format"] = kFormat;
  j["version"] = Masks::kVersion;
  j["checkpoint"] = {{"path", m.checkpoint.path},
                     {"config_hash", m.checkpoint.config_hash},
                     {"tensors_hash", m.checkpoint.tensors_hash}};
  j["solver"] = m.solver;
  j["seed"] = m.seed;
  j["sparsity"] = m.sparsity;
  j["objective_source"] = m.objective_source;
  j["approximate"] = m.approximate;
  j["mean_compensation"] = m.mean_compensation;
  j["calibration"] = m.calibration;
  j["allocation"] = mask_allocation_name(m.run.allocation);
  if (m.run.recorded) {
    Json units = Json::array();
    for (MaskUnit u : m.run.units) units.push_back(mask_unit_name(u));
    Json run = {{"units", units}};
    run["head_sparsity"] = m.run.head_sparsity ? Json(*m.run.head_sparsity) : Json(nullptr);
    if (m.run.allocation == MaskAllocation::kGlobal) {
      run["cost_scale"] = m.run.cost_scale;
      run["max_layer_sparsity"] = m.run.max_layer_sparsity;
    }
    run["mean_compensation_requested"] = m.run.mean_compensation_requested;
    run["data_free"] = m.run.data_free;
    j["run"] = std::move(run);
  }
  Json entries = Json::array();
  for (const LayerMask& e : m.entries) {
    entries.push_back({{"layer", e.layer},
                       {"unit", mask_unit_name(e.unit)},
                       {"num_units", e.num_units},
                       {"kept", e.kept},
                       {"objective", e.objective},
                       {"baseline_objective", e.baseline_objective},
                       {"feasible", e.feasible},
                       {"time_s", e.time_s},
                       {"status", e.status},
                       {"seed", e.seed},
                       {"keep", e.keep}});
  }
  j["entries"] = std::move(entries);
  const std::string text = j.dump(2) + "\n";
  detail::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

Masks read_masks(const std::filesystem::path& path) {
  const std::string p = path.string();
  const std::string text = detail::read_text_file(path);
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw ParseError::at_byte(p, e.byte > 0 ? static_cast<std::int64_t>(e.byte) - 1 : 0,
                              "expected JSON, found invalid JSON (" + std::string(e.what()) + ")");
  } catch (const Json::out_of_range& e) {  // a number beyond double, e.g. 1e400 (no position)
    throw ParseError(p, 0, "expected JSON, found " + std::string(e.what()));
  }
  auto fail = [&](const std::string& what) { throw ParseError(p, 0, what); };
  // Every value is checked for its JSON type before it is converted: nlohmann's value() and get()
  // throw type errors outside qprune::Error, and get<int>() of a double out of int's range is
  // undefined behaviour (tests/data/fuzz_regressions/masks/). Non-negative JSON integers are
  // stored unsigned, so is_number_unsigned() is "an integer >= 0".
  const auto count = [&](const Json& v, const std::string& key) -> int {
    if (!v.is_number_unsigned() ||
        v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
      fail("expected \"" + key + "\" to be an integer in [0, 2^31), found " + v.dump());
    return static_cast<int>(v.get<std::uint64_t>());
  };
  const auto seed = [&](const Json& v) -> std::uint64_t {
    if (!v.is_number_unsigned()) fail("expected \"seed\" to be an integer >= 0, found " + v.dump());
    return v.get<std::uint64_t>();
  };
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string() ||
      j["format"] != kFormat)
    fail(std::string("expected a qprune masks file (\"format\": \"") + kFormat + "\"), found " +
         (j.is_object() && j.contains("format") ? j["format"].dump() : std::string("no format")));
  if (!j.contains("version") || !j["version"].is_number_integer() ||
      j["version"] != Masks::kVersion)
    fail("expected \"version\": 1, found " + (j.contains("version") ? j["version"].dump() : "none"));
  Masks m;
  try {
    const Json& c = j.at("checkpoint");
    m.checkpoint.path = c.at("path").get<std::string>();
    m.checkpoint.config_hash = c.at("config_hash").get<std::string>();
    m.checkpoint.tensors_hash = c.at("tensors_hash").get<std::string>();
    m.solver = j.at("solver").get<std::string>();
    m.seed = seed(j.at("seed"));
    m.sparsity = j.at("sparsity").get<double>();
    m.objective_source = j.at("objective_source").get<std::string>();
    m.approximate = j.at("approximate").get<bool>();
    m.mean_compensation = j.at("mean_compensation").get<bool>();
    m.calibration = j.value("calibration", "");
    m.run.allocation = mask_allocation_from_name(j.value("allocation", "uniform"));
    if (j.contains("run")) {
      const Json& r = j.at("run");
      m.run.recorded = true;
      for (const Json& u : r.at("units"))
        m.run.units.push_back(mask_unit_from_name(u.get<std::string>()));
      if (r.contains("head_sparsity") && !r.at("head_sparsity").is_null())
        m.run.head_sparsity = r.at("head_sparsity").get<double>();
      m.run.cost_scale = r.value("cost_scale", "");
      m.run.max_layer_sparsity = r.value("max_layer_sparsity", 1.0);
      m.run.mean_compensation_requested = r.at("mean_compensation_requested").get<bool>();
      m.run.data_free = r.at("data_free").get<std::string>();
    }
    for (const Json& e : j.at("entries")) {
      LayerMask l;
      l.layer = count(e.at("layer"), "layer");
      l.unit = mask_unit_from_name(e.at("unit").get<std::string>());
      l.num_units = count(e.at("num_units"), "num_units");
      const Json& kept = e.at("kept");
      if (!kept.is_array()) fail("expected \"kept\" to be an array, found " + kept.dump());
      for (const Json& k : kept) l.kept.push_back(count(k, "kept"));
      l.objective = e.value("objective", 0.0);
      l.baseline_objective = e.value("baseline_objective", 0.0);
      l.feasible = e.value("feasible", true);
      l.time_s = e.value("time_s", 0.0);
      l.status = e.value("status", "");
      l.seed = e.contains("seed") ? seed(e["seed"]) : 0;
      l.keep = e.contains("keep") ? count(e["keep"], "keep") : 0;
      const std::string where = "entry layer " + std::to_string(l.layer) + " " +
                                mask_unit_name(l.unit);
      if (l.layer < 0 || l.num_units < 1) fail("expected layer >= 0 and num_units >= 1 in " + where);
      for (std::size_t i = 0; i < l.kept.size(); ++i)
        if (l.kept[i] < 0 || l.kept[i] >= l.num_units || (i > 0 && l.kept[i] <= l.kept[i - 1]))
          fail("expected increasing kept indices in [0, " + std::to_string(l.num_units) +
               ") in " + where + ", found " + std::to_string(l.kept[i]));
      if (l.keep < 0 || l.keep > l.num_units)
        fail("expected keep in [0, " + std::to_string(l.num_units) + "] in " + where + ", found " +
             std::to_string(l.keep));
      if (m.find(l.layer, l.unit == MaskUnit::kMlp) != nullptr) fail("expected one " + where);
      m.entries.push_back(std::move(l));
    }
  } catch (const Json::exception& e) {
    fail(std::string("expected the masks fields (docs/masks.md), found: ") + e.what());
  } catch (const InvalidArgument& e) {
    fail(std::string("expected a known unit kind / allocation, found: ") + e.what());
  }
  return m;
}

}  // namespace qprune
