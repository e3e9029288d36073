// The pruning pipeline over checkpoints (include/qprune/prune_pipeline.hpp): one layer's problem
// from a checkpoint and statistics, all layers solved into masks, single-layer export for external
// solvers and import of their answers (with the documented repair rule).
#include "qprune/prune_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "problems/common/input_file.hpp"
#include "qprune/atomic_output.hpp"
#include "qprune/error.hpp"
#include "solver/common/byte_codec.hpp"

namespace qprune {
namespace {

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }

// A projection weight as the builders want it: float for 16/32-bit storage (exact, half the
// memory of double), double for F64.
struct Weight {
  Eigen::MatrixXf f;
  Eigen::MatrixXd d;
  bool is_double = false;
};
Weight read_weight(const Checkpoint& ckpt, const std::string& name) {
  Weight w;
  w.is_double = ckpt.info(name).dtype == Dtype::kF64;
  if (w.is_double) {
    w.d = ckpt.read_matrix(name);
  } else {
    w.f = ckpt.read_matrix_f32(name);
  }
  return w;
}

// Units kept in one layer for a unit kind and sparsity (throws like keep_count when the sparsity
// leaves nothing or, for heads per KV group, is not expressible).
int layer_keep_count(const ModelConfig& cfg, MaskUnit unit, double sparsity) {
  const auto heads = static_cast<int>(cfg.num_attention_heads);
  const auto kv = static_cast<int>(cfg.num_key_value_heads);
  switch (unit) {
    case MaskUnit::kMlp:
      return keep_count(static_cast<int>(cfg.intermediate_size), sparsity);
    case MaskUnit::kHeads:
      return keep_count(heads, sparsity);
    case MaskUnit::kKvGroups:
      return keep_count(kv, sparsity);
    case MaskUnit::kHeadsPerGroup:
      return keep_count(heads, sparsity, kv);
  }
  throw InvalidArgument("unknown unit kind");
}

const char* source_name(GramSource s) {
  switch (s) {
    case GramSource::kCalibration:
      return "calibration";
    case GramSource::kIdentity:
      return "magnitude";
    case GramSource::kIsserlis:
      return "isserlis";
  }
  return "?";
}

// The weight whose input channels a problem's units are: down_proj for MLP neurons, else o_proj.
std::string unit_weight_name(int layer, UnitKind unit) {
  return layer_prefix(layer) +
         (unit == UnitKind::kMlpNeuron ? "mlp.down_proj.weight" : "self_attn.o_proj.weight");
}

}  // namespace

const char* mask_method_name(MaskMethod method) {
  switch (method) {
    case MaskMethod::kQubo:
      return "qubo";
    case MaskMethod::kDiagonal:
      return "diagonal";
    case MaskMethod::kMagnitude:
      return "magnitude";
  }
  return "?";
}

Assignment magnitude_top_k(const Checkpoint& ckpt, const LayerProblem& problem) {
  const Eigen::MatrixXd w = ckpt.read_matrix(unit_weight_name(problem.layer, problem.unit));
  if (w.cols() != problem.num_channels())
    throw InvalidArgument("magnitude_top_k: " + problem.name + " has " +
                          std::to_string(problem.num_channels()) + " channels, the weight " +
                          std::to_string(w.cols()) + " columns");
  return keep_top_scores(problem, magnitude_scores(w, problem.unit_width));
}

const char* data_free_name(DataFreeModel model) {
  return model == DataFreeModel::kMagnitude ? "magnitude" : "isserlis";
}

bool bias_compensation_supported(const ModelConfig& config) {
  return config.family == ModelFamily::kLlama;
}

MaskUnit head_unit_for(const ModelConfig& config, MaskUnit requested) {
  if (config.num_key_value_heads == config.num_attention_heads) return MaskUnit::kHeads;
  if (requested == MaskUnit::kKvGroups || requested == MaskUnit::kHeadsPerGroup) return requested;
  throw InvalidArgument("the model uses grouped-query attention (" +
                        std::to_string(config.num_attention_heads) + " query heads, " +
                        std::to_string(config.num_key_value_heads) +
                        " KV heads): choose --head-shape kv_groups or heads_per_group");
}

AppliedHeadSparsity applied_head_sparsity(const ModelConfig& config, MaskUnit shape,
                                          double requested) {
  AppliedHeadSparsity a;
  a.unit = head_unit_for(config, shape);
  a.units = static_cast<int>(a.unit == MaskUnit::kKvGroups ? config.num_key_value_heads
                                                           : config.num_attention_heads);
  a.kept = layer_keep_count(config, a.unit, requested);
  a.requested = requested;
  a.applied = 1.0 - static_cast<double>(a.kept) / a.units;
  return a;
}

LayerProblem build_layer_problem(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                                 const LayerProblemSpec& spec) {
  const ModelConfig& cfg = ckpt.config();
  if (spec.layer < 0 || spec.layer >= cfg.num_hidden_layers)
    throw InvalidArgument("layer " + std::to_string(spec.layer) + " out of range [0, " +
                          std::to_string(cfg.num_hidden_layers) + ")");
  const std::string p = layer_prefix(spec.layer);
  const bool compensate = spec.mean_compensation && bias_compensation_supported(cfg);
  if (spec.unit == MaskUnit::kMlp) {
    MlpProblemOptions o;
    o.layer = spec.layer;
    o.keep = layer_keep_count(cfg, MaskUnit::kMlp, spec.sparsity);
    o.mean_compensation = compensate;
    const std::string down = p + "mlp.down_proj.weight";
    if (spec.objective == PruneObjective::kRefit) {
      if (stats == nullptr) throw InvalidArgument("--objective refit needs calibration statistics");
      const RefitObjective obj = build_refit_objective(ckpt, *stats, spec);
      LayerProblem surrogate =
          mlp_problem_from_matrix(obj.pairwise_surrogate(), {}, obj.error_all_kept(), o);
      surrogate.centered = compensate;
      return surrogate;
    }
    if (stats != nullptr && stats->has(StatsKind::kMlp)) {
      const ActivationStats s = stats->read(StatsKind::kMlp, spec.layer);
      const Weight w = read_weight(ckpt, down);
      return w.is_double ? build_mlp_problem(w.d, s, o) : build_mlp_problem(w.f, s, o);
    }
    if (spec.data_free == DataFreeModel::kIsserlis) {
      o.mean_compensation = false;  // the bias would come from a model of the mean: not written
      const ActivationStats s = isserlis_statistics(ckpt.read_matrix(p + "mlp.gate_proj.weight"),
                                                    ckpt.read_matrix(p + "mlp.up_proj.weight"));
      const Weight w = read_weight(ckpt, down);
      return w.is_double ? build_mlp_problem(w.d, s, o) : build_mlp_problem(w.f, s, o);
    }
    return build_mlp_problem_magnitude(ckpt.read_matrix(down), o);
  }
  const MaskUnit unit = head_unit_for(cfg, spec.unit);
  if (unit != spec.unit && spec.unit != MaskUnit::kKvGroups &&
      spec.unit != MaskUnit::kHeadsPerGroup)
    throw InvalidArgument("unexpected head unit");
  HeadProblemOptions o;
  o.layer = spec.layer;
  o.shape = {static_cast<int>(cfg.num_attention_heads), static_cast<int>(cfg.num_key_value_heads),
             static_cast<int>(cfg.head_dim)};
  o.mean_compensation = compensate;
  o.units = unit == MaskUnit::kHeads      ? HeadUnits::kHeads
            : unit == MaskUnit::kKvGroups ? HeadUnits::kKvGroups
                                          : HeadUnits::kHeadsPerGroup;
  o.keep = layer_keep_count(cfg, unit, spec.sparsity);
  const std::string wo = p + "self_attn.o_proj.weight";
  if (spec.objective == PruneObjective::kRefit) {
    if (stats == nullptr) throw InvalidArgument("--objective refit needs calibration statistics");
    const RefitObjective obj = build_refit_objective(ckpt, *stats, spec);
    LayerProblem surrogate =
        head_problem_from_matrix(obj.pairwise_surrogate(), {}, obj.error_all_kept(), o);
    surrogate.centered = compensate;
    return surrogate;
  }
  if (stats != nullptr && stats->has(StatsKind::kAttn)) {
    const ActivationStats s = stats->read(StatsKind::kAttn, spec.layer);
    const Weight w = read_weight(ckpt, wo);
    return w.is_double ? build_head_problem(w.d, s, o) : build_head_problem(w.f, s, o);
  }
  return build_head_problem_magnitude(ckpt.read_matrix(wo), o);
}

RefitObjective build_refit_objective(const Checkpoint& ckpt, const CalibrationStatsFile& stats,
                                     const LayerProblemSpec& spec) {
  const ModelConfig& cfg = ckpt.config();
  const bool mlp = spec.unit == MaskUnit::kMlp;
  const StatsKind kind = mlp ? StatsKind::kMlp : StatsKind::kAttn;
  if (!stats.has(kind))
    throw InvalidArgument(stats.path().string() + ": no " + stats_kind_name(kind) +
                          " statistics for the refit objective");
  const ActivationStats s = stats.read(kind, spec.layer);
  const bool centre =
      spec.mean_compensation && bias_compensation_supported(cfg) && s.mean.size() != 0;
  const Eigen::MatrixXd h = centre ? centered_gram(s) : s.gram;
  const Eigen::MatrixXd w = ckpt.read_matrix(
      layer_prefix(spec.layer) + (mlp ? "mlp.down_proj.weight" : "self_attn.o_proj.weight"));
  Eigen::MatrixXd b = w * h;
  const double energy = b.cwiseProduct(w).sum();
  const int heads = static_cast<int>(cfg.num_attention_heads);
  const int kv = static_cast<int>(cfg.num_key_value_heads);
  const int hd = static_cast<int>(cfg.head_dim);
  const MaskUnit unit = mlp ? MaskUnit::kMlp : head_unit_for(cfg, spec.unit);
  UnitLayout layout;
  switch (unit) {
    case MaskUnit::kMlp:
      layout = {static_cast<int>(cfg.intermediate_size), 1, 1,
                layer_keep_count(cfg, unit, spec.sparsity)};
      break;
    case MaskUnit::kHeads:
      layout = {heads, hd, 1, layer_keep_count(cfg, unit, spec.sparsity)};
      break;
    case MaskUnit::kKvGroups:
      layout = {kv, hd * (heads / kv), 1, layer_keep_count(cfg, unit, spec.sparsity)};
      break;
    case MaskUnit::kHeadsPerGroup:
      layout = {heads, hd, kv, layer_keep_count(cfg, unit, spec.sparsity) / kv};
      break;
  }
  return RefitObjective(h, std::move(b), energy, layout);
}

std::uint64_t layer_seed(std::uint64_t run_seed, int layer, MaskUnit unit) {
  std::uint64_t z = run_seed + 0x9E3779B97F4A7C15ULL * (2 * static_cast<std::uint64_t>(layer) + 1 +
                                                        (unit == MaskUnit::kMlp ? 0 : 1) * 0x1000);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void MaskRunOptions::validate() const {
  if (!mlp && !heads) throw InvalidArgument("MaskRunOptions: mlp or heads must be set");
  if (head_sparsity && !(*head_sparsity >= 0.0 && *head_sparsity < 1.0))
    throw InvalidArgument("MaskRunOptions::head_sparsity must be in [0, 1), is " +
                          std::to_string(*head_sparsity));
  if (!(sparsity >= 0.0 && sparsity < 1.0))
    throw InvalidArgument("MaskRunOptions::sparsity must be in [0, 1), is " +
                          std::to_string(sparsity));
  if (head_shape != MaskUnit::kKvGroups && head_shape != MaskUnit::kHeadsPerGroup)
    throw InvalidArgument("MaskRunOptions::head_shape must be kv_groups or heads_per_group");
  if (allocation == MaskAllocation::kGlobal && heads)
    throw InvalidArgument(
        "MaskRunOptions::allocation global supports MLP neurons only (apply cannot pad attention "
        "heads); use --unit mlp, or --allocation uniform for heads");
  if (!(max_layer_sparsity >= 0.0 && max_layer_sparsity <= 1.0))
    throw InvalidArgument("MaskRunOptions::max_layer_sparsity must be in [0, 1], is " +
                          std::to_string(max_layer_sparsity));
  solve.validate();
}

void check_resumable(const Masks& previous, const Masks& planned) {
  auto differ = [](const std::string& field, const std::string& was, const std::string& now) {
    std::string msg = "cannot resume: the masks file was made with ";
    msg.append(field).append(" ").append(was).append(", this run asks for ").append(now);
    msg.append(" (field '").append(field).append("')");
    throw InvalidArgument(msg);
  };
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (!previous.checkpoint.same_model(planned.checkpoint))
    throw InvalidArgument("cannot resume: the masks file was made for checkpoint " +
                          previous.checkpoint.path + " (config " + previous.checkpoint.config_hash +
                          ", tensors " + previous.checkpoint.tensors_hash + "), not for " +
                          planned.checkpoint.path + " (field 'checkpoint')");
  if (!previous.run.recorded)
    throw InvalidArgument(
        "cannot resume: the masks file does not record its run options (field "
        "'run'; written by an older qprune or by import-solution)");
  if (previous.solver != planned.solver) differ("solver", previous.solver, planned.solver);
  if (previous.seed != planned.seed)
    differ("seed", std::to_string(previous.seed), std::to_string(planned.seed));
  if (previous.sparsity != planned.sparsity)
    differ("sparsity", num(previous.sparsity), num(planned.sparsity));
  if (previous.calibration != planned.calibration)
    differ("calibration", previous.calibration.empty() ? "none" : previous.calibration,
           planned.calibration.empty() ? "none" : planned.calibration);
  const MaskRunRecord &a = previous.run, &b = planned.run;
  auto units = [](const MaskRunRecord& r) {
    std::string s;
    for (MaskUnit u : r.units) {
      if (!s.empty()) s += ',';
      s += mask_unit_name(u);
    }
    return s;
  };
  if (a.units != b.units) differ("unit", units(a), units(b));
  auto opt = [&](const std::optional<double>& v) { return v ? num(*v) : std::string("unset"); };
  if (a.head_sparsity != b.head_sparsity)
    differ("head_sparsity", opt(a.head_sparsity), opt(b.head_sparsity));
  if (a.allocation != b.allocation)
    differ("allocation", mask_allocation_name(a.allocation), mask_allocation_name(b.allocation));
  if (a.allocation == MaskAllocation::kGlobal) {
    if (a.cost_scale != b.cost_scale) differ("cost_scale", a.cost_scale, b.cost_scale);
    if (a.max_layer_sparsity != b.max_layer_sparsity)
      differ("max_layer_sparsity", num(a.max_layer_sparsity), num(b.max_layer_sparsity));
  }
  if (a.mean_compensation_requested != b.mean_compensation_requested)
    differ("mean_compensation", a.mean_compensation_requested ? "on" : "off",
           b.mean_compensation_requested ? "on" : "off");
  if (a.data_free != b.data_free) differ("data_free", a.data_free, b.data_free);
}

namespace {

bool raised(const std::atomic<bool>* flag) { return flag != nullptr && flag->load(); }

// The planning step of a global allocation: every layer's MLP problem is built in turn (one in
// memory at a time) only for its diagonal costs, then allocate_global picks the keep counts.
// nullopt when interrupted meanwhile.
std::optional<std::vector<int>> plan_global_keep(const Checkpoint& ckpt,
                                                 const CalibrationStatsFile* stats,
                                                 const MaskRunOptions& options) {
  std::vector<LayerUnitCosts> costs;
  for (int layer = 0; layer < ckpt.config().num_hidden_layers; ++layer) {
    if (raised(options.solve.interrupt)) return std::nullopt;
    // Sparsity 0: the keep constraint does not matter here, only the costs.
    const LayerProblemSpec spec{layer, MaskUnit::kMlp, 0.0, options.mean_compensation,
                                options.data_free};
    try {
      costs.push_back(LayerUnitCosts::of(build_layer_problem(ckpt, stats, spec)));
    } catch (const Interrupted&) {
      return std::nullopt;  // the build polls the interrupt flag too
    }
  }
  GlobalAllocationOptions go;
  go.sparsity = options.sparsity;
  go.scale = options.cost_scale;
  go.max_layer_sparsity = options.max_layer_sparsity;
  return allocate_global_costs(costs, go).keep;
}

}  // namespace

std::vector<int> kept_indices(const Assignment& x) {
  std::vector<int> kept;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i]) kept.push_back(static_cast<int>(i));
  return kept;
}

Assignment assignment_of(const std::vector<int>& kept, int num_units) {
  Assignment x(static_cast<std::size_t>(num_units), 0);
  for (int i : kept) {
    if (i < 0 || i >= num_units)
      throw InvalidArgument("unit index " + std::to_string(i) + " out of range [0, " +
                            std::to_string(num_units) + ")");
    x[static_cast<std::size_t>(i)] = 1;
  }
  return x;
}

namespace {

// One (layer, unit kind) job's result as it travels through a JobRunner: the mask and what the
// layer's problem was (for the masks file's source / centring / approximate fields).
struct LayerJobResult {
  LayerMask mask;
  bool centered = false;
  bool approximate = false;
  std::string source;
  bool resumed = false;  ///< taken over from MaskRunOptions::resume, not solved
};

// A job's result is tagged: a finished layer, or the error of a layer that failed (kept as its exit
// class and message, so that it can cross processes; MaskRunOptions::layer_error).
constexpr char kLayerTag = 'L';
constexpr char kErrorTag = 'E';
enum class ErrorClass : int { kError, kInvalidArgument, kIoError, kResourceError };

std::string encode_error(const std::exception& e, const std::string& label) {
  detail::ByteWriter w;
  ErrorClass c = ErrorClass::kError;
  if (dynamic_cast<const ParseError*>(&e) || dynamic_cast<const InvalidArgument*>(&e))
    c = ErrorClass::kInvalidArgument;
  else if (dynamic_cast<const IoError*>(&e))
    c = ErrorClass::kIoError;
  else if (dynamic_cast<const ResourceError*>(&e))
    c = ErrorClass::kResourceError;
  w.put(static_cast<int>(c));
  w.put(label + ": " + e.what());
  return kErrorTag + w.take();
}

std::exception_ptr decode_error(const std::string& bytes) {
  const std::string body = bytes.substr(1);  // after kErrorTag
  detail::ByteReader in(body);
  const auto c = static_cast<ErrorClass>(in.get<int>());
  const std::string message = in.get<std::string>();
  switch (c) {
    case ErrorClass::kInvalidArgument:
      return std::make_exception_ptr(InvalidArgument(message));
    case ErrorClass::kIoError:
      return std::make_exception_ptr(IoError(message));
    case ErrorClass::kResourceError:
      return std::make_exception_ptr(ResourceError(message));
    default:
      return std::make_exception_ptr(Error(message));
  }
}

bool is_error_result(const std::string& bytes) { return !bytes.empty() && bytes[0] == kErrorTag; }

std::string encode(const LayerJobResult& r) {
  detail::ByteWriter w;
  const LayerMask& e = r.mask;
  w.put(e.layer);
  w.put(static_cast<int>(e.unit));
  w.put(e.num_units);
  w.put(e.kept);
  w.put(e.objective);
  w.put(e.baseline_objective);
  w.put(e.feasible);
  w.put(e.time_s);
  w.put(e.status);
  w.put(e.seed);
  w.put(e.keep);
  w.put(r.centered);
  w.put(r.approximate);
  w.put(r.source);
  w.put(r.resumed);
  return kLayerTag + w.take();
}

LayerJobResult decode_layer_result(const std::string& bytes) {
  const std::string body = bytes.substr(1);  // after kLayerTag
  detail::ByteReader in(body);
  LayerJobResult r;
  LayerMask& e = r.mask;
  in.get(e.layer);
  e.unit = static_cast<MaskUnit>(in.get<int>());
  in.get(e.num_units);
  in.get(e.kept);
  in.get(e.objective);
  in.get(e.baseline_objective);
  in.get(e.feasible);
  in.get(e.time_s);
  in.get(e.status);
  in.get(e.seed);
  in.get(e.keep);
  in.get(r.centered);
  in.get(r.approximate);
  in.get(r.source);
  in.get(r.resumed);
  return r;
}

}  // namespace

Masks compute_masks(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                    const MaskRunOptions& options) {
  options.validate();
  const ModelConfig& cfg = ckpt.config();
  Masks masks;
  masks.checkpoint = CheckpointIdentity::of(ckpt);
  const bool solving = options.method == MaskMethod::kQubo;
  masks.solver = solving ? options.solver : mask_method_name(options.method);
  masks.seed = options.solve.seed;
  masks.sparsity = options.sparsity;
  if (stats != nullptr) {
    stats->check_against(cfg, masks.checkpoint.config_hash);
    masks.calibration = std::filesystem::absolute(stats->path()).lexically_normal().string();
  }
  const std::unique_ptr<Solver> solver =
      solving ? make_solver(options.solver, options.settings) : nullptr;
  std::vector<MaskUnit> kinds;
  if (options.mlp) kinds.push_back(MaskUnit::kMlp);
  if (options.heads) kinds.push_back(head_unit_for(cfg, options.head_shape));
  masks.run.recorded = true;
  masks.run.units = kinds;
  masks.run.head_sparsity = options.head_sparsity;
  masks.run.allocation = options.allocation;
  if (options.allocation == MaskAllocation::kGlobal) {
    masks.run.cost_scale = options.cost_scale == CostScale::kAbsolute ? "absolute" : "relative";
    masks.run.max_layer_sparsity = options.max_layer_sparsity;
  }
  masks.run.mean_compensation_requested = options.mean_compensation;
  masks.run.data_free = data_free_name(options.data_free);
  const Masks* previous = options.resume;
  if (previous != nullptr) check_resumable(*previous, masks);

  // Planning step: the per-layer keep counts of a global allocation (every process plans the same
  // counts; uniform: from the sparsity, inside build_layer_problem).
  std::optional<std::vector<int>> global_keep;
  if (options.allocation == MaskAllocation::kGlobal) {
    global_keep = plan_global_keep(ckpt, stats, options);
    if (!global_keep) kinds.clear();  // interrupted while planning: nothing solved
  }

  // The jobs: one per (unit kind, layer), in the order of the masks file. A global allocation's
  // layer is built at sparsity 0 and then given its own k (set_keep).
  struct LayerJob {
    LayerProblemSpec spec;
    std::optional<int> keep;
  };
  std::vector<LayerJob> specs;
  for (MaskUnit unit : kinds) {
    const double sparsity = unit == MaskUnit::kMlp
                                ? options.sparsity
                                : options.head_sparsity.value_or(options.sparsity);
    for (int layer = 0; layer < cfg.num_hidden_layers; ++layer) {
      std::optional<int> keep;
      if (unit == MaskUnit::kMlp && global_keep) keep = (*global_keep)[static_cast<size_t>(layer)];
      specs.push_back(
          {{layer, unit, keep ? 0.0 : sparsity, options.mean_compensation, options.data_free},
           keep});
    }
  }
  // Fail fast, before any solve, on a sparsity that leaves nothing or is not expressible.
  for (const LayerJob& job : specs)
    if (!job.keep) (void)layer_keep_count(cfg, job.spec.unit, job.spec.sparsity);
  // Largest problems first, so that a dynamic runner's processes finish together.
  auto units_of = [&](MaskUnit unit) {
    return unit == MaskUnit::kMlp        ? cfg.intermediate_size
           : unit == MaskUnit::kKvGroups ? cfg.num_key_value_heads
                                         : cfg.num_attention_heads;
  };
  JobRunner::Jobs jobs;
  jobs.count = specs.size();
  jobs.order.resize(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) jobs.order[i] = i;
  std::stable_sort(jobs.order.begin(), jobs.order.end(), [&](std::size_t a, std::size_t b) {
    return units_of(specs[a].spec.unit) > units_of(specs[b].spec.unit);
  });
  jobs.label = [&](std::size_t i) {
    return "layer " + std::to_string(specs[i].spec.layer) + " " +
           mask_unit_name(specs[i].spec.unit);
  };
  std::exception_ptr failed;  // this process's failed layer (only with options.layer_error)
  auto solve_layer = [&](std::size_t i) -> std::string {
    const LayerProblemSpec& spec = specs[i].spec;
    const std::optional<int>& keep = specs[i].keep;
    // Skip step (resume): a finished entry of the previous run for this layer is taken over, also
    // after an interrupt.
    const LayerMask* done =
        previous != nullptr ? previous->find(spec.layer, spec.unit == MaskUnit::kMlp) : nullptr;
    if (done != nullptr && done->complete() && done->unit == spec.unit &&
        (!keep || done->keep == *keep)) {
      LayerJobResult r;
      r.mask = *done;
      r.centered = previous->mean_compensation;
      r.approximate = previous->approximate;
      r.source = previous->objective_source;
      r.resumed = true;
      return encode(r);
    }
    // Interrupted, or a layer failed (layer_error), before this layer started: a resumed entry
    // above is still taken over, so that writing the result keeps it.
    if (raised(options.solve.interrupt) || failed) return {};
    // Building a large layer's problem takes minutes: it polls the interrupt flag and stops with
    // Interrupted, and the layer counts as not started (the finished ones are kept).
    std::optional<LayerProblem> built;
    try {
      built.emplace(build_layer_problem(ckpt, stats, spec));
    } catch (const Interrupted&) {
      return {};
    }
    LayerProblem& problem = *built;
    if (keep) set_keep(problem, *keep);
    SolveOptions so = options.solve;
    so.progress = nullptr;  // layers may be solved at once; the pipeline reports per layer
    so.seed = layer_seed(options.solve.seed, spec.layer, spec.unit);
    LayerJobResult r;
    LayerMask& e = r.mask;
    Assignment x;
    if (solving) {
      const SolveResult result = solver->solve(problem.model, so);
      if (!result.has_solution())
        throw Error("solver " + options.solver + " returned no sample for layer " +
                    std::to_string(spec.layer) + " (" + result.message + ")");
      x = result.best().x;
      e.time_s = result.wall_time_s;
      e.status = std::string(to_string(result.status));
    } else {
      const auto start = std::chrono::steady_clock::now();
      x = options.method == MaskMethod::kDiagonal ? diagonal_top_k(problem)
                                                  : magnitude_top_k(ckpt, problem);
      e.time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      e.status = std::string(to_string(SolveStatus::kCompleted));
    }
    e.layer = spec.layer;
    e.unit = spec.unit;
    e.num_units = problem.num_units();
    e.kept = kept_indices(x);
    e.objective = problem.model.energy(x);
    e.baseline_objective = problem.model.energy(diagonal_top_k(problem));
    e.feasible = problem.model.is_feasible(x);
    e.seed = so.seed;
    for (const CardinalityConstraint& c : problem.model.constraints()) e.keep += c.k;
    r.centered = problem.centered;
    r.approximate = problem.approximate;
    r.source = source_name(problem.source);
    return encode(r);
  };
  // With options.layer_error, a failing layer is a result, and no layer starts after it here.
  jobs.run = [&](std::size_t i) -> std::string {
    if (options.layer_error == nullptr) return solve_layer(i);
    try {
      return solve_layer(i);
    } catch (const std::exception& e) {
      // Named by its layer ("layer 1 mlp: ..."), as the multi-process runner names a failed job;
      // the exit class survives the round trip through bytes.
      const std::string bytes = encode_error(e, jobs.label(i));
      failed = decode_error(bytes);
      return bytes;
    }
  };
  if (options.progress)
    jobs.done = [&](std::size_t, const std::string& bytes) {
      if (!bytes.empty() && !is_error_result(bytes))
        options.progress(decode_layer_result(bytes).mask);
    };
  const std::vector<std::string> results = runner_or_serial(options.runner).run(jobs);
  if (options.layer_error != nullptr) {
    *options.layer_error = failed;  // this process's own error, with its original type
    for (const std::string& bytes : results)
      if (!*options.layer_error && is_error_result(bytes))
        *options.layer_error = decode_error(bytes);  // another process's
  }

  bool any_centered = false, any_approximate = false;
  std::string source;
  for (const std::string& bytes : results) {
    if (bytes.empty() || is_error_result(bytes)) continue;  // not started (interrupt or error)
    LayerJobResult r = decode_layer_result(bytes);
    any_centered = any_centered || r.centered;
    any_approximate = any_approximate || r.approximate;
    if (source.empty() || source == "calibration") source = r.source;  // report the weakest
    if (r.resumed) ++masks.resumed_entries;
    masks.entries.push_back(std::move(r.mask));
  }
  if (!source.empty()) masks.objective_source = source;
  masks.approximate = any_approximate;
  masks.mean_compensation = any_centered;
  return masks;
}

// ---- Export / import ----------------------------------------------------------------------------

namespace {

std::map<std::string, std::string> info_to_metadata(const ExportedProblemInfo& i) {
  std::ostringstream sp;
  sp.precision(17);
  sp << i.sparsity;
  return {{"qprune.layer", std::to_string(i.layer)},
          {"qprune.unit", mask_unit_name(i.unit)},
          {"qprune.sparsity", sp.str()},
          {"qprune.keep", std::to_string(i.keep)},
          {"qprune.num_units", std::to_string(i.num_units)},
          {"qprune.source", i.source},
          {"qprune.centered", i.centered ? "true" : "false"},
          {"qprune.config_hash", i.config_hash},
          {"qprune.objective", prune_objective_name(i.objective)}};
}

std::optional<ExportedProblemInfo> info_from_metadata(const std::map<std::string, std::string>& m,
                                                      const std::string& path) {
  if (!m.count("qprune.layer")) return std::nullopt;
  auto get = [&](const char* key) {
    const auto it = m.find(key);
    if (it == m.end())
      throw ParseError(path, 0, std::string("expected qprune metadata '") + key + "', found none");
    return it->second;
  };
  ExportedProblemInfo i;
  try {
    i.layer = std::stoi(get("qprune.layer"));
    i.unit = mask_unit_from_name(get("qprune.unit"));
    i.sparsity = std::stod(get("qprune.sparsity"));
    i.keep = std::stoi(get("qprune.keep"));
    i.num_units = std::stoi(get("qprune.num_units"));
  } catch (const ParseError&) {
    throw;
  } catch (const std::exception& e) {
    throw ParseError(path, 0, std::string("expected numeric qprune metadata, found: ") + e.what());
  }
  i.source = get("qprune.source");
  i.centered = get("qprune.centered") == "true";
  i.config_hash = get("qprune.config_hash");
  // Files written before the refit surrogate existed carry no objective: the no-refit QUBO.
  const auto objective = m.find("qprune.objective");
  if (objective != m.end()) {
    if (objective->second == "refit") {
      i.objective = PruneObjective::kRefit;
    } else if (objective->second != "no-refit") {
      throw ParseError(path, 0,
                       "expected qprune.objective refit or no-refit, found '" +
                           objective->second.substr(0, 40) + "'");
    }
  }
  return i;
}

std::string comment_prefix(const std::string& format) {
  if (format == "qbsolv") return "c ";
  if (format == "lp") return "\\ ";
  if (format == "coo" || format == "mqlib" || format == "maxcut") return "# ";
  return "";
}

}  // namespace

ExportedProblemInfo export_layer_problem(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                                         const LayerProblemSpec& spec, const std::string& path,
                                         const WriteOptions& write_options) {
  if (stats != nullptr) stats->check_against(ckpt.config(), checkpoint_config_hash(ckpt));
  LayerProblem problem = build_layer_problem(ckpt, stats, spec);
  ExportedProblemInfo info;
  info.layer = spec.layer;
  info.unit =
      spec.unit == MaskUnit::kMlp ? MaskUnit::kMlp : head_unit_for(ckpt.config(), spec.unit);
  info.sparsity = spec.sparsity;
  info.keep = 0;
  for (const CardinalityConstraint& c : problem.model.constraints()) info.keep += c.k;
  info.num_units = problem.num_units();
  info.source = source_name(problem.source);
  info.centered = problem.centered;
  info.config_hash = checkpoint_config_hash(ckpt);
  info.objective = spec.objective;
  for (const auto& [k, v] : info_to_metadata(info)) problem.model.metadata[k] = v;

  std::string format = write_options.format;
  if (format.empty()) {
    const std::string stem =
        path.size() > 3 && path.ends_with(".gz") ? path.substr(0, path.size() - 3) : path;
    const std::string ext = std::filesystem::path(stem).extension().string();
    for (const FormatInfo& f : formats())
      for (const std::string& x : f.extensions)
        if (x == ext && f.can_write && format.empty()) format = f.name;
  }
  const std::string prefix = comment_prefix(format);
  if (prefix.empty() || path.ends_with(".gz")) {
    write_model(problem.model, path, write_options);
    return info;
  }
  // Text formats: the body goes to a scratch file (an AtomicFile never committed: a fresh random
  // name, removed at the end), then the metadata comments are prepended and the whole written
  // atomically (so the header stays first, where readers skip comments).
  std::string body;
  {
    const AtomicFile scratch{std::filesystem::path(path)};
    WriteOptions wo = write_options;
    wo.format = format;
    write_model(problem.model, scratch.temporary_path().string(), wo);
    std::ifstream in(scratch.temporary_path(), std::ios::binary);
    body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw IoError(scratch.temporary_path().string() + ": read failed");
  }
  std::string header;
  for (const auto& [k, v] : info_to_metadata(info)) header += prefix + k + "=" + v + "\n";
  write_file_atomically(std::filesystem::path(path), header + body);
  return info;
}

std::optional<ExportedProblemInfo> read_exported_info(const std::string& path) {
  { const detail::InputFile check(path); }  // refuses a FIFO or device (the stream would block)
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  const int first = in.peek();
  if (first == '{') {
    ReadOptions options;
    options.format = "json";
    const QuboModel m = read_model(path, options);
    return info_from_metadata(m.metadata, path);
  }
  std::map<std::string, std::string> meta;
  std::string line;
  for (int n = 0; n < 64 && std::getline(in, line); ++n) {
    std::size_t at = line.find("qprune.");
    if (at == std::string::npos) continue;
    const std::size_t eq = line.find('=', at);
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    meta[line.substr(at, eq - at)] = value;
  }
  return info_from_metadata(meta, path);
}

RepairResult repair_assignment(const QuboModel& model, Assignment x) {
  RepairResult r;
  for (const CardinalityConstraint& g : model.constraints()) {
    for (;;) {
      int ones = 0;
      for (int v : g.variables) ones += x[static_cast<std::size_t>(v)];
      if (ones == g.k) break;
      const bool drop = ones > g.k;
      int best = -1;
      double best_delta = std::numeric_limits<double>::infinity();
      for (int v : g.variables) {  // increasing index: ties keep the lower index's order
        if ((x[static_cast<std::size_t>(v)] != 0) != drop) continue;
        const double d = model.flip_delta(x, v);
        if (d < best_delta) {
          best_delta = d;
          best = v;
        }
      }
      x[static_cast<std::size_t>(best)] = drop ? 0 : 1;
      (drop ? r.removed : r.added).push_back(best);
    }
  }
  r.x = std::move(x);
  return r;
}

ImportResult import_solution(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                             const std::string& qubo_path, const std::string& solution_path,
                             const ImportOptions& options) {
  ImportResult out;
  std::optional<ExportedProblemInfo> info = read_exported_info(qubo_path);
  if (!info && (!options.layer || !options.unit))
    throw InvalidArgument(qubo_path +
                          " carries no qprune metadata (layer, unit): give --layer "
                          "and --unit (and --sparsity)");
  if (!info) {
    info.emplace();
    info->sparsity = options.sparsity.value_or(0.5);
    info->source = stats != nullptr ? "calibration" : "magnitude";
    info->centered = true;
  }
  if (options.layer) info->layer = *options.layer;
  if (options.unit) info->unit = *options.unit;
  if (options.sparsity) info->sparsity = *options.sparsity;
  const std::string hash = checkpoint_config_hash(ckpt);
  if (!info->config_hash.empty() && info->config_hash != hash)
    throw InvalidArgument(qubo_path + " was exported from another model (config " +
                          info->config_hash + "), not from " + ckpt.folder().string() + " (" +
                          hash + ")");
  if (info->source == "calibration" && stats == nullptr)
    throw InvalidArgument(qubo_path + " was built from calibration statistics: give --calib");
  if (stats != nullptr) stats->check_against(ckpt.config(), hash);
  LayerProblemSpec spec;
  spec.layer = info->layer;
  spec.unit = info->unit;
  spec.sparsity = info->sparsity;
  spec.mean_compensation = info->centered;
  spec.data_free =
      info->source == "isserlis" ? DataFreeModel::kIsserlis : DataFreeModel::kMagnitude;
  spec.objective = info->objective;
  const LayerProblem problem =
      build_layer_problem(ckpt, info->source == "calibration" ? stats : nullptr, spec);
  const int n = problem.num_units();
  if (info->num_units != 0 && info->num_units != n)
    throw InvalidArgument(qubo_path + ": " + std::to_string(info->num_units) +
                          " units in the file, the rebuilt layer problem has " + std::to_string(n));

  // The file's model (for labels and its own energy); LP files cannot be read back, then the
  // variable order is the export order.
  std::optional<QuboModel> file_model;
  try {
    file_model = read_model(qubo_path);
  } catch (const InvalidArgument&) {
  }
  const int file_n = file_model ? file_model->num_variables() : n;
  if (file_n != n)
    throw InvalidArgument(qubo_path + " has " + std::to_string(file_n) + " variables, layer " +
                          std::to_string(info->layer) + " has " + std::to_string(n) + " units");
  const Assignment file_x = read_solution(solution_path, file_n);
  if (file_model) out.file_energy = file_model->energy(file_x);
  Assignment x(static_cast<std::size_t>(n), 0);
  for (int p = 0; p < n; ++p) {
    int unit = p;
    if (file_model && !file_model->labels().empty()) {
      // Labels "L.kind.i": the unit index is after the last dot, the layer before the first.
      const std::string& label = file_model->labels()[static_cast<std::size_t>(p)];
      const std::size_t first = label.find('.'), last = label.rfind('.');
      try {
        if (first == std::string::npos || std::stoi(label.substr(0, first)) != info->layer)
          throw std::invalid_argument("layer");
        unit = std::stoi(label.substr(last + 1));
      } catch (const std::exception&) {
        throw ParseError(qubo_path, 0,
                         "expected labels 'L.kind.i' of layer " + std::to_string(info->layer) +
                             ", found '" + label + "'");
      }
      if (unit < 0 || unit >= n)
        throw ParseError(
            qubo_path, 0,
            "expected unit index < " + std::to_string(n) + " in label '" + label + "'");
    }
    x[static_cast<std::size_t>(unit)] = file_x[static_cast<std::size_t>(p)];
  }
  out.was_feasible = problem.model.is_feasible(x);
  if (!out.was_feasible) {
    if (!options.repair) {
      std::string counts;
      for (const CardinalityConstraint& g : problem.model.constraints()) {
        int ones = 0;
        for (int v : g.variables) ones += x[static_cast<std::size_t>(v)];
        counts += (counts.empty() ? "" : ", ") + g.name + " keeps " + std::to_string(ones) +
                  " (needs " + std::to_string(g.k) + ")";
      }
      throw InvalidArgument(solution_path + ": infeasible mask: " + counts +
                            "; use --repair to fix it by exact marginal cost");
    }
    out.repair = repair_assignment(problem.model, x);
    x = out.repair.x;
  }
  out.info = *info;
  out.mask.layer = info->layer;
  out.mask.unit =
      spec.unit == MaskUnit::kMlp ? MaskUnit::kMlp : head_unit_for(ckpt.config(), spec.unit);
  out.mask.num_units = n;
  out.mask.kept = kept_indices(x);
  out.mask.objective = problem.model.energy(x);
  out.mask.baseline_objective = problem.model.energy(diagonal_top_k(problem));
  out.mask.feasible = problem.model.is_feasible(x);
  out.mask.status = out.was_feasible ? "imported" : "imported_repaired";
  return out;
}

}  // namespace qprune
