// The mask run of the pruning pipeline (include/qprune/prune_pipeline.hpp): every layer's problem
// solved into masks, as jobs of a JobRunner, with resume checks and the global allocation's plan.
// Export / import of single layers is problem_exchange.cpp; applying masks is apply.cpp.
#include "qprune/prune_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "core/byte_codec.hpp"
#include "core/input_file.hpp"
#include "qprune/atomic_output.hpp"
#include "qprune/behaviour_contrast.hpp"
#include "qprune/error.hpp"
#include "qprune/expert_pruning.hpp"

namespace qprune {

const char* mask_method_name(MaskMethod method) {
  switch (method) {
    case MaskMethod::kQubo:
      return "qubo";
    case MaskMethod::kDiagonal:
      return "diagonal";
    case MaskMethod::kMagnitude:
      return "magnitude";
    case MaskMethod::kContrastiveDiagonal:
      return "contrastive-diagonal";
    case MaskMethod::kExpertFrequency:
      return "frequency";
    case MaskMethod::kExpertWeight:
      return "routed-weight";
    case MaskMethod::kExhaustive:
      return "exhaustive";
  }
  return "?";
}

MaskMethod mask_method_from_name(const std::string& name) {
  std::string names;
  for (const MaskMethod m : {MaskMethod::kQubo, MaskMethod::kDiagonal, MaskMethod::kMagnitude,
                             MaskMethod::kContrastiveDiagonal, MaskMethod::kExpertFrequency,
                             MaskMethod::kExpertWeight, MaskMethod::kExhaustive}) {
    if (name == mask_method_name(m)) return m;
    names += (names.empty() ? "" : ", ") + std::string(mask_method_name(m));
  }
  throw InvalidArgument("method must be one of " + names + ", is " + name);
}

std::uint64_t layer_seed(std::uint64_t run_seed, int layer, UnitKind unit) {
  std::uint64_t z = run_seed + 0x9E3779B97F4A7C15ULL * (2 * static_cast<std::uint64_t>(layer) + 1 +
                                                        (unit == UnitKind::kMlp       ? 0ULL
                                                         : unit == UnitKind::kExperts ? 0x2000ULL
                                                                                      : 0x1000ULL));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void MaskRunOptions::validate() const {
  if (!mlp && !heads && !experts)
    throw InvalidArgument("MaskRunOptions: mlp, heads or experts must be set");
  const bool expert_method = method == MaskMethod::kExpertFrequency ||
                             method == MaskMethod::kExpertWeight ||
                             method == MaskMethod::kExhaustive;
  if (expert_method && (mlp || heads))
    throw InvalidArgument(std::string("MaskRunOptions::method ") + mask_method_name(method) +
                          " chooses experts; use --unit experts alone");
  if (experts && (method == MaskMethod::kMagnitude || method == MaskMethod::kContrastiveDiagonal))
    throw InvalidArgument(std::string("MaskRunOptions::method ") + mask_method_name(method) +
                          " is not defined for experts; use qubo, diagonal, frequency, "
                          "routed-weight or exhaustive");
  if (experts && (allocation == MaskAllocation::kGlobal || contrast != nullptr))
    throw InvalidArgument(
        "experts are pruned uniformly (config.json holds one number of experts) and without a "
        "behaviour contrast");
  if (head_sparsity && !(*head_sparsity >= 0.0 && *head_sparsity < 1.0))
    throw InvalidArgument("MaskRunOptions::head_sparsity must be in [0, 1), is " +
                          std::to_string(*head_sparsity));
  if (!(sparsity >= 0.0 && sparsity < 1.0))
    throw InvalidArgument("MaskRunOptions::sparsity must be in [0, 1), is " +
                          std::to_string(sparsity));
  if (head_shape != UnitKind::kKvGroups && head_shape != UnitKind::kHeadsPerGroup)
    throw InvalidArgument("MaskRunOptions::head_shape must be kv_groups or heads_per_group");
  if (allocation == MaskAllocation::kGlobal && heads)
    throw InvalidArgument(
        "MaskRunOptions::allocation global supports MLP neurons only (apply cannot pad attention "
        "heads); use --unit mlp, or --allocation uniform for heads");
  if (!(max_layer_sparsity >= 0.0 && max_layer_sparsity <= 1.0))
    throw InvalidArgument("MaskRunOptions::max_layer_sparsity must be in [0, 1], is " +
                          std::to_string(max_layer_sparsity));
  if (multiple_of < 1)
    throw InvalidArgument("MaskRunOptions::multiple_of (--multiple-of) must be >= 1, is " +
                          std::to_string(multiple_of));
  if (contrast != nullptr) {
    if (!std::isfinite(behaviour_weight) || behaviour_weight == 0.0 ||
        std::abs(behaviour_weight) > kMaxBehaviourWeight)
      throw InvalidArgument(
          "MaskRunOptions::behaviour_weight must be finite, nonzero and at most 100 in absolute "
          "value with a behaviour contrast, is " +
          std::to_string(behaviour_weight));
    if (allocation == MaskAllocation::kGlobal)
      throw InvalidArgument(
          "MaskRunOptions::allocation global is not defined for a behaviour contrast (its layer "
          "costs can be negative); use --allocation uniform");
    if (method == MaskMethod::kMagnitude)
      throw InvalidArgument(
          "MaskRunOptions::method magnitude ignores the statistics, so it has no behaviour "
          "contrast; use qubo, diagonal or contrastive-diagonal");
  } else if (method == MaskMethod::kContrastiveDiagonal) {
    throw InvalidArgument(
        "MaskRunOptions::method contrastive-diagonal needs a behaviour contrast (--suppress or "
        "--protect with --preserve)");
  }
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
    for (UnitKind u : r.units) {
      if (!s.empty()) s += ',';
      s += unit_kind_name(u);
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
  if (a.multiple_of != b.multiple_of)
    differ("multiple_of", std::to_string(a.multiple_of), std::to_string(b.multiple_of));
  if (a.mean_compensation_requested != b.mean_compensation_requested)
    differ("mean_compensation", a.mean_compensation_requested ? "on" : "off",
           b.mean_compensation_requested ? "on" : "off");
  if (a.data_free != b.data_free) differ("data_free", a.data_free, b.data_free);
  const BehaviourRecord &p = previous.behaviour, &q = planned.behaviour;
  if (p.mode != q.mode)
    differ("behaviour.mode", p.mode.empty() ? "none" : p.mode, q.mode.empty() ? "none" : q.mode);
  if (p.statistics != q.statistics) differ("behaviour.statistics", p.statistics, q.statistics);
  if (p.weight != q.weight) differ("behaviour.weight", num(p.weight), num(q.weight));
}

namespace {

bool raised(const std::atomic<bool>* flag) { return flag != nullptr && flag->load(); }

// The planning step of a global allocation: every layer's MLP problem is built in turn (one in
// memory at a time) only for its diagonal costs, then allocate_global picks the keep counts.
// nullopt when interrupted meanwhile. With --multiple-of also the counts of the same allocation
// at multiple 1 (`unrounded`; empty when that allocation cannot be made).
struct GlobalPlan {
  std::vector<int> keep, unrounded;
};
std::optional<GlobalPlan> plan_global_keep(const Checkpoint& ckpt,
                                           const CalibrationStatsFile* stats,
                                           const MaskRunOptions& options) {
  std::vector<LayerUnitCosts> costs;
  for (int layer = 0; layer < ckpt.config().num_hidden_layers; ++layer) {
    if (raised(options.solve.interrupt)) return std::nullopt;
    // Sparsity 0: the keep constraint does not matter here, only the costs.
    const LayerProblemSpec spec{layer, UnitKind::kMlp, 0.0, options.mean_compensation,
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
  go.multiple_of = options.multiple_of;
  GlobalPlan plan;
  plan.keep = allocate_global_costs(costs, go).keep;
  if (options.multiple_of > 1) {
    go.multiple_of = 1;
    try {
      plan.unrounded = allocate_global_costs(costs, go).keep;
    } catch (const InvalidArgument&) {
      // The blocks may reach a budget (to within half a block) that single units cannot.
    }
  }
  return plan;
}

}  // namespace

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
  w.put(static_cast<int>(e.status));
  w.put(e.seed);
  w.put(e.keep);
  w.put(e.unrounded_keep);
  w.put(e.rounding_cost);
  w.put(r.centered);
  w.put(r.approximate);
  w.put(r.source);
  w.put(r.resumed);
  w.put(e.rerouted_error.has_value());
  if (e.rerouted_error) {
    w.put(*e.rerouted_error);
    w.put(e.rerouted_relative_error.value_or(0.0));
    w.put(e.qubo_rerouted_error.has_value());
    w.put(e.qubo_rerouted_error.value_or(0.0));
  }
  w.put(e.behaviour.has_value());
  if (e.behaviour) {
    w.put(e.behaviour->preserve_relative_error);
    w.put(e.behaviour->contrast_relative_error);
    w.put(e.behaviour->saturation_weight);
  }
  return kLayerTag + w.take();
}

LayerJobResult decode_layer_result(const std::string& bytes) {
  const std::string body = bytes.substr(1);  // after kLayerTag
  detail::ByteReader in(body);
  LayerJobResult r;
  LayerMask& e = r.mask;
  in.get(e.layer);
  e.unit = static_cast<UnitKind>(in.get<int>());
  in.get(e.num_units);
  in.get(e.kept);
  in.get(e.objective);
  in.get(e.baseline_objective);
  in.get(e.feasible);
  in.get(e.time_s);
  e.status = static_cast<RunStatus>(in.get<int>());
  in.get(e.seed);
  in.get(e.keep);
  in.get(e.unrounded_keep);
  in.get(e.rounding_cost);
  in.get(r.centered);
  in.get(r.approximate);
  in.get(r.source);
  in.get(r.resumed);
  if (in.get<bool>()) {
    e.rerouted_error = in.get<double>();
    e.rerouted_relative_error = in.get<double>();
    const bool qubo = in.get<bool>();
    const double value = in.get<double>();
    if (qubo) e.qubo_rerouted_error = value;
  }
  if (in.get<bool>()) {
    e.behaviour.emplace();
    in.get(e.behaviour->preserve_relative_error);
    in.get(e.behaviour->contrast_relative_error);
    in.get(e.behaviour->saturation_weight);
  }
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
  if (options.contrast != nullptr) {
    if (stats == nullptr)
      throw InvalidArgument(
          "a behaviour contrast needs the preserved set's statistics (--preserve B.stats)");
    check_contrast_files(ckpt, *stats, *options.contrast);
    masks.behaviour.mode = options.behaviour_weight > 0.0 ? "suppress" : "protect";
    masks.behaviour.statistics =
        std::filesystem::absolute(options.contrast->path()).lexically_normal().string();
    masks.behaviour.weight = options.behaviour_weight;
  }
  const std::unique_ptr<Solver> solver =
      solving ? make_solver(options.solver, options.settings) : nullptr;
  std::vector<UnitKind> kinds;
  if (options.mlp) kinds.push_back(UnitKind::kMlp);
  if (options.heads) kinds.push_back(head_unit_for(cfg, options.head_shape));
  if (options.experts) {
    if (cfg.moe.num_experts == 0)
      throw InvalidArgument(ckpt.folder().string() + " (" + model_family_name(cfg.family) +
                            ") has no experts; --unit experts is for MoE checkpoints");
    (void)expert_keep_count(cfg, options.sparsity);  // fails fast when too few would remain
    kinds.push_back(UnitKind::kExperts);
  }
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
  masks.run.multiple_of = options.mlp ? options.multiple_of : 1;
  const Masks* previous = options.resume;
  if (previous != nullptr) check_resumable(*previous, masks);

  // Planning step: the per-layer keep counts of a global allocation (every process plans the same
  // counts; uniform: from the sparsity, inside build_layer_problem).
  std::optional<GlobalPlan> global_plan;
  if (options.allocation == MaskAllocation::kGlobal && options.mlp) {
    global_plan = plan_global_keep(ckpt, stats, options);
    if (!global_plan) kinds.clear();  // interrupted while planning: nothing solved
  }

  // The jobs: one per (unit kind, layer), in the order of the masks file. A global allocation's
  // layer is built at sparsity 0 and then given its own k (set_keep). With --multiple-of an MLP
  // job also knows its count before rounding (0: unknown), for the rounding's cost.
  struct LayerJob {
    LayerProblemSpec spec;
    std::optional<int> keep;
    int unrounded_keep = 0;
  };
  const int multiple_of = masks.run.multiple_of;
  std::vector<LayerJob> specs;
  for (UnitKind unit : kinds) {
    const double sparsity = unit == UnitKind::kMlp
                                ? options.sparsity
                                : options.head_sparsity.value_or(options.sparsity);
    for (int layer = 0; layer < cfg.num_hidden_layers; ++layer) {
      const auto at = static_cast<std::size_t>(layer);
      // MLP neurons of the dense layers, experts of the MoE layers.
      if ((unit == UnitKind::kMlp || unit == UnitKind::kExperts) &&
          is_moe_layer(cfg, layer) != (unit == UnitKind::kExperts))
        continue;
      LayerJob job{{layer, unit, sparsity, options.mean_compensation, options.data_free}, {}, 0};
      if (unit == UnitKind::kMlp && global_plan) {
        job.keep = global_plan->keep[at];
        job.spec.sparsity = 0.0;
        if (!global_plan->unrounded.empty()) job.unrounded_keep = global_plan->unrounded[at];
      } else if (unit == UnitKind::kMlp && multiple_of > 1) {
        job.spec.multiple_of = multiple_of;
        job.unrounded_keep = layer_keep_count(cfg, unit, sparsity);
      }
      specs.push_back(job);
    }
  }
  // Fail fast, before any solve, on a sparsity that leaves nothing or is not expressible (or a
  // --multiple-of above the layer's units).
  for (const LayerJob& job : specs)
    if (!job.keep)
      (void)layer_keep_count(cfg, job.spec.unit, job.spec.sparsity, job.spec.multiple_of);
  // Largest problems first, so that a dynamic runner's processes finish together.
  auto units_of = [&](UnitKind unit) {
    return unit == UnitKind::kMlp        ? cfg.intermediate_size
           : unit == UnitKind::kKvGroups ? cfg.num_key_value_heads
           : unit == UnitKind::kExperts  ? cfg.moe.num_experts
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
           unit_kind_name(specs[i].spec.unit);
  };
  std::exception_ptr failed;  // this process's failed layer (only with options.layer_error)
  auto solve_layer = [&](std::size_t i) -> std::string {
    const LayerProblemSpec& spec = specs[i].spec;
    const std::optional<int>& keep = specs[i].keep;
    // Skip step (resume): a finished entry of the previous run for this layer is taken over, also
    // after an interrupt.
    const LayerMask* done =
        previous != nullptr ? previous->find(spec.layer, spec.unit == UnitKind::kMlp) : nullptr;
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
    std::optional<ContrastiveLayer> contrastive;
    try {
      if (options.contrast != nullptr) {
        contrastive.emplace(build_contrastive_layer(ckpt, *stats, *options.contrast, spec,
                                                    options.behaviour_weight));
        built.emplace(std::move(contrastive->problem));
      } else {
        built.emplace(build_layer_problem(ckpt, stats, spec));
      }
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
    // Experts: the exact re-routed error on the sampled inputs scores candidates and baselines.
    std::optional<ExpertRerouting> rerouting;
    std::optional<ExpertStats> expert_stats;
    if (spec.unit == UnitKind::kExperts) {
      expert_stats = stats->read_experts(spec.layer);
      rerouting.emplace(*DecoderLayerWeights::read(ckpt, spec.layer).moe, expert_stats->inputs);
    }
    if (solving) {
      const SolveResult result = solver->solve(problem.model, so);
      if (!result.has_solution())
        throw Error("solver " + options.solver + " returned no sample for layer " +
                    std::to_string(spec.layer) + " (" + result.message + ")");
      x = result.best().x;
      if (rerouting) {
        // The QUBO ignores re-routing: its best sample's exact error is recorded, then the best
        // feasible sample by that error is improved by swap descent on it.
        // (Grouped routing scores only sets that keep as many of every group: feasible ones.)
        double best = rerouting->num_groups() == 1 || problem.model.is_feasible(x)
                          ? rerouting->error(kept_indices(x))
                          : std::numeric_limits<double>::infinity();
        if (std::isfinite(best)) e.qubo_rerouted_error = best;
        for (const Sample& cand : result.samples) {
          if (!problem.model.is_feasible(cand.x)) continue;
          const double err = rerouting->error(kept_indices(cand.x));
          if (err < best) {
            best = err;
            x = cand.x;
          }
        }
        // The solver's time limit bounds the descent too (its own budget, from its start).
        x = assignment_of(
            improve_by_swaps(*rerouting, kept_indices(x), 1000, options.solve.time_limit_s),
            problem.num_units());
      }
      e.time_s = result.wall_time_s;
      e.status = result.status;
    } else if (rerouting) {
      const auto start = std::chrono::steady_clock::now();
      int keep_n = 0;
      for (const CardinalityConstraint& c : problem.model.constraints()) keep_n += c.k;
      // The baselines' top scores per constraint: per routing group with grouped routing.
      std::vector<int> kept;
      switch (options.method) {
        case MaskMethod::kExpertFrequency:
          kept = kept_indices(keep_top_scores(problem, expert_stats->tokens));
          break;
        case MaskMethod::kExpertWeight:
          kept = kept_indices(keep_top_scores(problem, expert_stats->weight));
          break;
        case MaskMethod::kExhaustive:
          kept = best_rerouted_subset(*rerouting, keep_n);
          break;
        default:
          kept = kept_indices(diagonal_top_k(problem));
      }
      x = assignment_of(kept, problem.num_units());
      e.time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      e.status = RunStatus::kCompleted;
    } else {
      const auto start = std::chrono::steady_clock::now();
      if (options.method == MaskMethod::kContrastiveDiagonal) {
        const StatsKind kind = spec.unit == UnitKind::kMlp ? StatsKind::kMlp : StatsKind::kAttn;
        x = contrastive_diagonal_top_k(problem, contrastive->weight, stats->read(kind, spec.layer),
                                       options.contrast->read(kind, spec.layer));
      } else {
        x = options.method == MaskMethod::kDiagonal ? diagonal_top_k(problem)
                                                    : magnitude_top_k(ckpt, problem);
      }
      e.time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      e.status = RunStatus::kCompleted;
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
    if (multiple_of > 1 && specs[i].unrounded_keep > 0) {
      // The rounding's predicted cost: the diagonal removal cost at the two counts.
      const LayerUnitCosts costs = LayerUnitCosts::of(problem);
      e.unrounded_keep = specs[i].unrounded_keep;
      e.rounding_cost = removal_cost(costs, e.keep) - removal_cost(costs, e.unrounded_keep);
    }
    if (rerouting) {
      e.rerouted_error = rerouting->error(e.kept);
      e.rerouted_relative_error =
          rerouting->routed_energy() > 0.0 ? *e.rerouted_error / rerouting->routed_energy() : 0.0;
    }
    if (contrastive) {
      e.behaviour.emplace();
      e.behaviour->preserve_relative_error = contrastive->preserve_relative_error(x);
      e.behaviour->contrast_relative_error = contrastive->contrast_relative_error(x);
      e.behaviour->saturation_weight = contrastive->saturation;
    }
    r.centered = problem.centered;
    r.approximate = problem.approximate;
    r.source = gram_source_name(problem.source);
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
      std::string bytes = encode_error(e, jobs.label(i));
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
  if (multiple_of > 1) {
    std::int64_t removed = 0, units = 0;
    for (const LayerMask& e : masks.entries) {
      if (e.unit != UnitKind::kMlp) continue;
      units += e.num_units;
      removed += e.num_units - (e.keep > 0 ? e.keep : static_cast<int>(e.kept.size()));
      masks.run.rounding_cost += e.rounding_cost;
    }
    masks.run.effective_sparsity =
        units > 0 ? static_cast<double>(removed) / static_cast<double>(units) : 0.0;
  }
  if (!source.empty()) masks.objective_source = source;
  masks.approximate = any_approximate;
  masks.mean_compensation = any_centered;
  return masks;
}

}  // namespace qprune
