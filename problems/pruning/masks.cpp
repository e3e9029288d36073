// Masks files (docs/masks.md): JSON with the checkpoint identity, the run's settings and one entry
// per (layer, unit kind) with the kept indices and objective values.
#include "qprune/masks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "core/json_input.hpp"
#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

using Json = nlohmann::ordered_json;  // written: fields in a fixed, readable order
// Read as nlohmann::json (std::map): ordered_map inserts by a linear search, so an object of n
// keys would parse in O(n^2).
using InJson = nlohmann::json;
constexpr const char* kFormat = "qprune-masks";

// The statuses an entry may carry: a solver's or an import's (kNotRun, kSkipped and kError
// describe no mask).
constexpr RunStatus kStatuses[] = {RunStatus::kOptimal,         RunStatus::kCompleted,
                                   RunStatus::kTimeLimit,       RunStatus::kTargetReached,
                                   RunStatus::kInterrupted,     RunStatus::kImported,
                                   RunStatus::kImportedRepaired};

// A range bound for messages: 0, 1, or "inf" for the largest double.
std::string format_bound(double x) {
  if (x >= std::numeric_limits<double>::max()) return "inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace

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
    if (e.layer == layer && (e.unit == UnitKind::kMlp) == mlp) return &e;
  return nullptr;
}

void Masks::check_identity(const Checkpoint& ckpt) const {
  const CheckpointIdentity here = CheckpointIdentity::of(ckpt);
  if (here.same_model(checkpoint)) return;
  throw InvalidArgument("masks were computed for checkpoint " + checkpoint.path + " (config " +
                        checkpoint.config_hash + ", tensors " + checkpoint.tensors_hash +
                        "), not for " + here.path + " (config " + here.config_hash + ", tensors " +
                        here.tensors_hash + ")");
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
    for (UnitKind u : m.run.units) units.push_back(unit_kind_name(u));
    Json run = {{"units", units}};
    run["head_sparsity"] = m.run.head_sparsity ? Json(*m.run.head_sparsity) : Json(nullptr);
    if (m.run.allocation == MaskAllocation::kGlobal) {
      run["cost_scale"] = m.run.cost_scale;
      run["max_layer_sparsity"] = m.run.max_layer_sparsity;
    }
    run["mean_compensation_requested"] = m.run.mean_compensation_requested;
    run["data_free"] = m.run.data_free;
    if (m.run.multiple_of > 1) {
      run["multiple_of"] = m.run.multiple_of;
      run["effective_sparsity"] = m.run.effective_sparsity;
      run["rounding_cost"] = m.run.rounding_cost;
    }
    j["run"] = std::move(run);
  }
  if (m.behaviour.active())
    j["behaviour"] = {{"mode", m.behaviour.mode},
                      {"statistics", m.behaviour.statistics},
                      {"weight", m.behaviour.weight}};
  Json entries = Json::array();
  for (const LayerMask& e : m.entries) {
    entries.push_back({{"layer", e.layer},
                       {"unit", unit_kind_name(e.unit)},
                       {"num_units", e.num_units},
                       {"kept", e.kept},
                       {"objective", e.objective},
                       {"baseline_objective", e.baseline_objective},
                       {"feasible", e.feasible},
                       {"time_s", e.time_s},
                       {"status", std::string(to_string(e.status))},
                       {"seed", e.seed},
                       {"keep", e.keep}});
    if (e.unrounded_keep > 0) {
      entries.back()["unrounded_keep"] = e.unrounded_keep;
      entries.back()["rounding_cost"] = e.rounding_cost;
    }
    if (e.rerouted_error) entries.back()["rerouted_error"] = *e.rerouted_error;
    if (e.rerouted_relative_error)
      entries.back()["rerouted_relative_error"] = *e.rerouted_relative_error;
    if (e.qubo_rerouted_error) entries.back()["qubo_rerouted_error"] = *e.qubo_rerouted_error;
    if (e.behaviour)
      entries.back()["behaviour"] = {
          {"preserve_relative_error", e.behaviour->preserve_relative_error},
          {"contrast_relative_error", e.behaviour->contrast_relative_error},
          {"saturation_weight", e.behaviour->saturation_weight}};
  }
  j["entries"] = std::move(entries);
  const std::string text = j.dump(2) + "\n";
  detail::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

Masks read_masks(const std::filesystem::path& path) {
  const std::string p = path.string();
  const std::string text = detail::read_text_file(path);
  InJson j = detail::parse_json<InJson>(text, {p});
  auto fail = [&](const std::string& what) { throw ParseError(p, 0, what); };
  // Every field is checked for its JSON type and range before it is used, and every error names
  // the field (`entries[3].status`): nlohmann's value() and get() throw type errors outside
  // qprune::Error, get<int>() of a double out of int's range is undefined behaviour
  // (tests/data/fuzz_regressions/masks/), and a value that parses but means nothing ("status":
  // "banana", an unsorted `kept`) would otherwise be applied. Non-negative JSON integers are
  // stored unsigned, so is_number_unsigned() is "an integer >= 0".
  const auto field = [&](const InJson& obj, const std::string& key,
                         const std::string& name) -> const InJson& {
    if (!obj.contains(key)) fail("expected field \"" + name + "\", found none");
    return obj[key];
  };
  const auto count = [&](const InJson& v, const std::string& name) -> int {
    if (!v.is_number_unsigned() ||
        v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
      fail("expected \"" + name + "\" to be an integer in [0, 2^31), found " +
           detail::describe_json(v));
    return static_cast<int>(v.get<std::uint64_t>());
  };
  const auto seed = [&](const InJson& v, const std::string& name) -> std::uint64_t {
    if (!v.is_number_unsigned())
      fail("expected \"" + name + "\" to be an integer in [0, 2^64), found " +
           detail::describe_json(v));
    return v.get<std::uint64_t>();
  };
  const auto string_field = [&](const InJson& v, const std::string& name) -> std::string {
    if (!v.is_string())
      fail("expected \"" + name + "\" to be a string, found " + detail::describe_json(v));
    return v.get<std::string>();
  };
  const auto boolean = [&](const InJson& v, const std::string& name) -> bool {
    if (!v.is_boolean())
      fail("expected \"" + name + "\" to be true or false, found " + detail::describe_json(v));
    return v.get<bool>();
  };
  // A finite number; `lo`/`hi` bound it (inclusive unless `hi_open`).
  const auto number = [&](const InJson& v, const std::string& name, double lo, double hi,
                          bool hi_open) -> double {
    if (!v.is_number())
      fail("expected \"" + name + "\" to be a number, found " + detail::describe_json(v));
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || (hi_open ? x >= hi : x > hi))
      fail("expected \"" + name + "\" in [" + format_bound(lo) + ", " + format_bound(hi) +
           (hi_open ? ")" : "]") + ", found " + detail::describe_json(v));
    return x;
  };
  const auto finite = [&](const InJson& v, const std::string& name) -> double {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      fail("expected \"" + name + "\" to be a finite number, found " + detail::describe_json(v));
    return v.get<double>();
  };
  const auto unit_kind = [&](const InJson& v, const std::string& name) -> UnitKind {
    const std::string s = string_field(v, name);
    for (UnitKind u : kUnitKinds)
      if (s == unit_kind_name(u)) return u;
    fail("expected \"" + name + "\" to be one of mlp, heads, kv_groups, heads_per_group, found " +
         detail::describe_json(v));
    return UnitKind::kMlp;
  };
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string() || j["format"] != kFormat)
    fail(std::string("expected a qprune masks file (\"format\": \"") + kFormat + "\"), found " +
         (j.is_object() && j.contains("format") ? detail::describe_json(j["format"])
                                                : std::string("no format")));
  if (!j.contains("version") || !j["version"].is_number_integer() ||
      j["version"] != Masks::kVersion)
    fail("expected \"version\": 1, found " +
         (j.contains("version") ? detail::describe_json(j["version"]) : "none"));
  Masks m;
  const InJson& c = field(j, "checkpoint", "checkpoint");
  if (!c.is_object())
    fail("expected \"checkpoint\" to be an object, found " + detail::describe_json(c));
  m.checkpoint.path = string_field(field(c, "path", "checkpoint.path"), "checkpoint.path");
  m.checkpoint.config_hash =
      string_field(field(c, "config_hash", "checkpoint.config_hash"), "checkpoint.config_hash");
  m.checkpoint.tensors_hash =
      string_field(field(c, "tensors_hash", "checkpoint.tensors_hash"), "checkpoint.tensors_hash");
  m.solver = string_field(field(j, "solver", "solver"), "solver");
  m.seed = seed(field(j, "seed", "seed"), "seed");
  m.sparsity = number(field(j, "sparsity", "sparsity"), "sparsity", 0.0, 1.0, true);
  m.objective_source =
      string_field(field(j, "objective_source", "objective_source"), "objective_source");
  m.approximate = boolean(field(j, "approximate", "approximate"), "approximate");
  m.mean_compensation =
      boolean(field(j, "mean_compensation", "mean_compensation"), "mean_compensation");
  if (j.contains("calibration")) m.calibration = string_field(j["calibration"], "calibration");
  if (j.contains("allocation")) {
    const std::string a = string_field(j["allocation"], "allocation");
    if (a != "uniform" && a != "global")
      fail("expected \"allocation\" to be uniform or global, found " +
           detail::describe_json(j["allocation"]));
    m.run.allocation = mask_allocation_from_name(a);
  }
  if (j.contains("run")) {
    const InJson& r = j["run"];
    if (!r.is_object()) fail("expected \"run\" to be an object, found " + detail::describe_json(r));
    m.run.recorded = true;
    const InJson& units = field(r, "units", "run.units");
    if (!units.is_array())
      fail("expected \"run.units\" to be an array, found " + detail::describe_json(units));
    for (std::size_t i = 0; i < units.size(); ++i)
      m.run.units.push_back(unit_kind(units[i], "run.units[" + std::to_string(i) + "]"));
    if (r.contains("head_sparsity") && !r["head_sparsity"].is_null())
      m.run.head_sparsity = number(r["head_sparsity"], "run.head_sparsity", 0.0, 1.0, true);
    if (r.contains("cost_scale"))
      m.run.cost_scale = string_field(r["cost_scale"], "run.cost_scale");
    if (r.contains("max_layer_sparsity"))
      m.run.max_layer_sparsity =
          number(r["max_layer_sparsity"], "run.max_layer_sparsity", 0.0, 1.0, false);
    m.run.mean_compensation_requested =
        boolean(field(r, "mean_compensation_requested", "run.mean_compensation_requested"),
                "run.mean_compensation_requested");
    m.run.data_free = string_field(field(r, "data_free", "run.data_free"), "run.data_free");
    if (r.contains("multiple_of")) {
      m.run.multiple_of = count(r["multiple_of"], "run.multiple_of");
      if (m.run.multiple_of < 1) fail("expected \"run.multiple_of\" >= 1, found 0");
    }
    if (r.contains("effective_sparsity"))
      m.run.effective_sparsity =
          number(r["effective_sparsity"], "run.effective_sparsity", 0.0, 1.0, false);
    if (r.contains("rounding_cost"))
      m.run.rounding_cost = finite(r["rounding_cost"], "run.rounding_cost");
  }
  if (j.contains("behaviour")) {
    const InJson& b = j["behaviour"];
    if (!b.is_object())
      fail("expected \"behaviour\" to be an object, found " + detail::describe_json(b));
    m.behaviour.mode = string_field(field(b, "mode", "behaviour.mode"), "behaviour.mode");
    if (m.behaviour.mode != "suppress" && m.behaviour.mode != "protect")
      fail("expected \"behaviour.mode\" to be suppress or protect, found " +
           detail::describe_json(b["mode"]));
    m.behaviour.statistics =
        string_field(field(b, "statistics", "behaviour.statistics"), "behaviour.statistics");
    m.behaviour.weight = finite(field(b, "weight", "behaviour.weight"), "behaviour.weight");
  }
  const InJson& entries = field(j, "entries", "entries");
  if (!entries.is_array())
    fail("expected \"entries\" to be an array, found " + detail::describe_json(entries));
  std::set<std::pair<int, bool>> seen;  // (layer, is MLP) of the entries read so far
  for (std::size_t n = 0; n < entries.size(); ++n) {
    const InJson& e = entries[n];
    const std::string at = "entries[" + std::to_string(n) + "]";
    if (!e.is_object())
      fail("expected \"" + at + "\" to be an object, found " + detail::describe_json(e));
    LayerMask l;
    l.layer = count(field(e, "layer", at + ".layer"), at + ".layer");
    l.unit = unit_kind(field(e, "unit", at + ".unit"), at + ".unit");
    l.num_units = count(field(e, "num_units", at + ".num_units"), at + ".num_units");
    if (l.num_units < 1) fail("expected \"" + at + ".num_units\" >= 1, found 0");
    const InJson& kept = field(e, "kept", at + ".kept");
    if (!kept.is_array())
      fail("expected \"" + at + ".kept\" to be an array, found " + detail::describe_json(kept));
    for (const InJson& k : kept) l.kept.push_back(count(k, at + ".kept"));
    for (std::size_t i = 0; i < l.kept.size(); ++i)
      if (l.kept[i] >= l.num_units || (i > 0 && l.kept[i] <= l.kept[i - 1]))
        fail("expected \"" + at + ".kept\" to hold increasing unit indices in [0, " +
             std::to_string(l.num_units) + ") (" + at + ".num_units), found " +
             std::to_string(l.kept[i]) + " at position " + std::to_string(i));
    if (l.kept.empty())
      fail("expected \"" + at + ".kept\" to hold at least one unit (a layer keeps >= 1), found []");
    if (e.contains("objective")) l.objective = finite(e["objective"], at + ".objective");
    if (e.contains("baseline_objective"))
      l.baseline_objective = finite(e["baseline_objective"], at + ".baseline_objective");
    if (e.contains("feasible")) l.feasible = boolean(e["feasible"], at + ".feasible");
    if (e.contains("rerouted_error"))
      l.rerouted_error = finite(e["rerouted_error"], at + ".rerouted_error");
    if (e.contains("qubo_rerouted_error"))
      l.qubo_rerouted_error = finite(e["qubo_rerouted_error"], at + ".qubo_rerouted_error");
    if (e.contains("rerouted_relative_error"))
      l.rerouted_relative_error =
          finite(e["rerouted_relative_error"], at + ".rerouted_relative_error");
    if (e.contains("time_s"))
      l.time_s =
          number(e["time_s"], at + ".time_s", 0.0, std::numeric_limits<double>::max(), false);
    if (e.contains("status")) {
      const std::string status_text = string_field(e["status"], at + ".status");
      std::optional<RunStatus> status;
      try {
        status = run_status_from_string(status_text);
      } catch (const InvalidArgument&) {
        // Reported below, with the field and the statuses a mask may have.
      }
      if (!status ||
          std::find(std::begin(kStatuses), std::end(kStatuses), *status) == std::end(kStatuses)) {
        std::string names;
        for (RunStatus s : kStatuses) {
          if (!names.empty()) names += ", ";
          names += to_string(s);
        }
        fail("expected \"" + at + ".status\" to be one of " + names + ", found " +
             detail::describe_json(e["status"]));
      }
      l.status = *status;
    }
    if (e.contains("seed")) l.seed = seed(e["seed"], at + ".seed");
    if (e.contains("keep")) {
      l.keep = count(e["keep"], at + ".keep");
      if (l.keep > l.num_units)
        fail("expected \"" + at + ".keep\" in [0, " + std::to_string(l.num_units) + "] (" + at +
             ".num_units), found " + std::to_string(l.keep));
      // A feasible entry keeps exactly the count it was asked for (docs/masks.md).
      if (l.feasible && l.keep > 0 && static_cast<std::size_t>(l.keep) != l.kept.size())
        fail("expected \"" + at + ".kept\" to hold " + std::to_string(l.keep) + " units (" + at +
             ".keep, feasible), found " + std::to_string(l.kept.size()));
    }
    if (e.contains("unrounded_keep")) {
      l.unrounded_keep = count(e["unrounded_keep"], at + ".unrounded_keep");
      if (l.unrounded_keep > l.num_units)
        fail("expected \"" + at + ".unrounded_keep\" in [0, " + std::to_string(l.num_units) +
             "] (" + at + ".num_units), found " + std::to_string(l.unrounded_keep));
    }
    if (e.contains("rounding_cost"))
      l.rounding_cost = finite(e["rounding_cost"], at + ".rounding_cost");
    if (e.contains("behaviour")) {
      const InJson& b = e["behaviour"];
      if (!b.is_object())
        fail("expected \"" + at + ".behaviour\" to be an object, found " +
             detail::describe_json(b));
      const std::string bt = at + ".behaviour";
      l.behaviour.emplace();
      l.behaviour->preserve_relative_error =
          finite(field(b, "preserve_relative_error", bt + ".preserve_relative_error"),
                 bt + ".preserve_relative_error");
      l.behaviour->contrast_relative_error =
          finite(field(b, "contrast_relative_error", bt + ".contrast_relative_error"),
                 bt + ".contrast_relative_error");
      if (b.contains("saturation_weight"))
        l.behaviour->saturation_weight = finite(b["saturation_weight"], bt + ".saturation_weight");
    }
    // A set, not Masks::find per entry: that scan made a file of 50,000 entries quadratic.
    if (!seen.emplace(l.layer, l.unit == UnitKind::kMlp).second)
      fail("expected one entry per layer and unit kind, found layer " + std::to_string(l.layer) +
           " " + unit_kind_name(l.unit) + " again in \"" + at + "\"");
    m.entries.push_back(std::move(l));
  }
  return m;
}

}  // namespace qprune
