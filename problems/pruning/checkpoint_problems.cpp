// Building one layer's pruning problem from a checkpoint (include/qprune/checkpoint_problems.hpp):
// the layer's weights and calibration statistics in, a LayerProblem or RefitObjective out, one
// layer in memory at a time. The pipeline that solves and applies these lives in
// workflows/pruning/.
#include "qprune/checkpoint_problems.hpp"

#include <algorithm>

#include "qprune/behaviour_contrast.hpp"
#include "qprune/error.hpp"
#include "qprune/expert_pruning.hpp"

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

// The weight whose input channels a problem's units are: down_proj for MLP neurons, else o_proj.
std::string unit_weight_name(int layer, UnitKind unit) {
  return layer_prefix(layer) +
         (unit == UnitKind::kMlp ? "mlp.down_proj.weight" : "self_attn.o_proj.weight");
}

}  // namespace

int layer_keep_count(const ModelConfig& cfg, UnitKind unit, double sparsity, int multiple_of) {
  const auto heads = static_cast<int>(cfg.num_attention_heads);
  const auto kv = static_cast<int>(cfg.num_key_value_heads);
  switch (unit) {
    case UnitKind::kMlp:
      return keep_count(static_cast<int>(cfg.intermediate_size), sparsity, 1, multiple_of);
    case UnitKind::kHeads:
      return keep_count(heads, sparsity);
    case UnitKind::kKvGroups:
      return keep_count(kv, sparsity);
    case UnitKind::kHeadsPerGroup:
      return keep_count(heads, sparsity, kv);
    case UnitKind::kExperts:
      return expert_keep_count(cfg, sparsity);
  }
  throw InvalidArgument("unknown unit kind");
}

const char* gram_source_name(GramSource s) {
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

namespace {

// DeepSeek-V3's latent attention: a head owns its q_b_proj and kv_b_proj rows and o_proj columns,
// but shares the latent K/V projection and the rotary key; slicing it is not built
// (docs/pruning_math.md 12.4).
void refuse_latent_attention_heads(const ModelConfig& config) {
  if (config.mla.kv_lora_rank > 0)
    throw InvalidArgument(std::string(model_family_name(config.family)) +
                          " uses multi-head latent attention (kv_lora_rank " +
                          std::to_string(config.mla.kv_lora_rank) +
                          "): qprune does not prune its heads yet (they share one latent K/V "
                          "projection and one rotary key); prune experts (--unit experts) or the "
                          "dense layers' MLP neurons (--unit mlp)");
}

}  // namespace

UnitKind head_unit_for(const ModelConfig& config, UnitKind requested) {
  refuse_latent_attention_heads(config);
  if (config.num_key_value_heads == config.num_attention_heads) return UnitKind::kHeads;
  if (requested == UnitKind::kKvGroups || requested == UnitKind::kHeadsPerGroup) return requested;
  throw InvalidArgument("the model uses grouped-query attention (" +
                        std::to_string(config.num_attention_heads) + " query heads, " +
                        std::to_string(config.num_key_value_heads) +
                        " KV heads): choose --head-shape kv_groups or heads_per_group");
}

AppliedHeadSparsity applied_head_sparsity(const ModelConfig& config, UnitKind shape,
                                          double requested) {
  AppliedHeadSparsity a;
  a.unit = head_unit_for(config, shape);
  a.units = static_cast<int>(a.unit == UnitKind::kKvGroups ? config.num_key_value_heads
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
  if (spec.contrast != nullptr) {
    if (stats == nullptr)
      throw InvalidArgument(
          "a behaviour contrast needs the preserved set's statistics too (--preserve)");
    return build_contrastive_layer(ckpt, *stats, *spec.contrast, spec, spec.behaviour_weight)
        .problem;
  }
  if (spec.unit != UnitKind::kMlp && spec.unit != UnitKind::kExperts)
    refuse_latent_attention_heads(cfg);
  const std::string p = layer_prefix(spec.layer);
  if (spec.unit == UnitKind::kExperts) {
    if (!is_moe_layer(cfg, spec.layer))
      throw InvalidArgument("layer " + std::to_string(spec.layer) +
                            " has a dense MLP, not experts (--unit experts prunes MoE layers)");
    if (stats == nullptr || !stats->has_experts(spec.layer))
      throw InvalidArgument(
          "expert pruning needs the expert statistics of this MoE checkpoint: run "
          "`qprune calibrate` on it (layer " +
          std::to_string(spec.layer) + " has none" +
          (stats != nullptr ? " in " + stats->path().string() : std::string()) + ")");
    return build_expert_problem(stats->read_experts(spec.layer), spec.layer,
                                expert_keep_count(cfg, spec.sparsity),
                                static_cast<int>(cfg.moe.n_group));
  }
  if (is_moe_layer(cfg, spec.layer) && spec.unit == UnitKind::kMlp)
    throw InvalidArgument("layer " + std::to_string(spec.layer) +
                          " is a MoE layer: prune its experts (--unit experts), not MLP neurons");
  const bool compensate = spec.mean_compensation && bias_compensation_supported(cfg);
  if (spec.unit == UnitKind::kMlp) {
    MlpProblemOptions o;
    o.layer = spec.layer;
    o.keep = layer_keep_count(cfg, UnitKind::kMlp, spec.sparsity, spec.multiple_of);
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
  const UnitKind unit = head_unit_for(cfg, spec.unit);
  if (unit != spec.unit && spec.unit != UnitKind::kKvGroups &&
      spec.unit != UnitKind::kHeadsPerGroup)
    throw InvalidArgument("unexpected head unit");
  HeadProblemOptions o;
  o.layer = spec.layer;
  o.shape = {static_cast<int>(cfg.num_attention_heads), static_cast<int>(cfg.num_key_value_heads),
             static_cast<int>(cfg.head_dim)};
  o.mean_compensation = compensate;
  o.units = unit;
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
  const bool mlp = spec.unit == UnitKind::kMlp;
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
  const UnitKind unit = mlp ? UnitKind::kMlp : head_unit_for(cfg, spec.unit);
  UnitLayout layout;
  switch (unit) {
    case UnitKind::kMlp:
      layout = {static_cast<int>(cfg.intermediate_size), 1, 1,
                layer_keep_count(cfg, unit, spec.sparsity, spec.multiple_of)};
      break;
    case UnitKind::kHeads:
      layout = {heads, hd, 1, layer_keep_count(cfg, unit, spec.sparsity)};
      break;
    case UnitKind::kKvGroups:
      layout = {kv, hd * (heads / kv), 1, layer_keep_count(cfg, unit, spec.sparsity)};
      break;
    case UnitKind::kHeadsPerGroup:
      layout = {heads, hd, kv, layer_keep_count(cfg, unit, spec.sparsity) / kv};
      break;
    case UnitKind::kExperts:
      throw InvalidArgument("--objective refit is for MLP neurons and heads, not experts");
  }
  return RefitObjective(h, std::move(b), energy, layout);
}

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

}  // namespace qprune
