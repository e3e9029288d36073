// Building one layer's pruning problem from a checkpoint: which units a layer has, how many a
// sparsity keeps, and the layer's QUBO (LayerProblem) or refit objective from its weights and
// calibration statistics, reading only that layer's tensors. The solving and applying pipeline
// over all layers is qprune/prune_pipeline.hpp (workflows layer).
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error "qprune/checkpoint_problems.hpp is in the problems layer; the core layer may not include it"
#endif

#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/masks.hpp"
#include "qprune/pruning.hpp"
#include "qprune/refit_objective.hpp"

namespace qprune {

/// Statistics used when no calibration file is given (both approximate).
enum class DataFreeModel {
  kMagnitude,  ///< G = I: sum of ||W[:, i]||^2 over removed units
  kIsserlis,   ///< Gaussian-input model of the gated MLP (MLP only; heads fall back to magnitude)
};
/// "magnitude" or "isserlis".
[[nodiscard]] const char* data_free_name(DataFreeModel model);

/// True when apply can write the mean-compensation bias for this family (Llama: mlp_bias /
/// attention_bias switches; docs/pruning_math.md section 3). Qwen2 and Mistral: false.
[[nodiscard]] bool bias_compensation_supported(const ModelConfig& config);

/// The head unit kind a layer of this config uses for a requested GQA shape: kHeads for MHA
/// (num_kv_heads == num_heads) whatever was asked; for GQA `requested` must be kKvGroups or
/// kHeadsPerGroup (kHeads: InvalidArgument naming --head-shape).
[[nodiscard]] UnitKind head_unit_for(const ModelConfig& config, UnitKind requested);

/// What a requested head sparsity becomes in one layer: heads go in whole steps (one head for MHA,
/// one KV group for kv_groups, one head in every group for heads_per_group), so the kept count is
/// rounded and the applied sparsity may differ from the requested one (GQA with 4 KV groups:
/// 0.3 -> 0.25). Throws like keep_count when no step fits (heads_per_group between two steps).
struct AppliedHeadSparsity {
  UnitKind unit = UnitKind::kHeads;  ///< head_unit_for(config, shape)
  int units = 0;                     ///< heads or KV groups per layer
  int kept = 0;                      ///< kept per layer
  double requested = 0.0;
  double applied = 0.0;  ///< 1 - kept / units
};
[[nodiscard]] AppliedHeadSparsity applied_head_sparsity(const ModelConfig& config, UnitKind shape,
                                                        double requested);

/// What one layer problem is.
struct LayerProblemSpec {
  int layer = 0;
  UnitKind unit = UnitKind::kMlp;
  double sparsity = 0.5;  ///< uniform: keep round((1 - sparsity) n) units
  /// Centre with the statistics' mean (and have apply write the bias); only effective with
  /// calibration means and a family that can hold the bias (bias_compensation_supported).
  bool mean_compensation = true;
  DataFreeModel data_free = DataFreeModel::kMagnitude;  ///< used without statistics
  /// kRefit: the problem is the pairwise quadratic surrogate of the refit objective
  /// (RefitObjective::pairwise_surrogate of build_refit_objective); needs calibration statistics.
  PruneObjective objective = PruneObjective::kNoRefit;
  /// MLP only: the kept count is rounded to a multiple of this (round_keep_to_multiple), >= 1.
  /// Heads are not rounded (a kept head already brings head_dim channels).
  int multiple_of = 1;
  /// Behaviour contrast (include/qprune/behaviour_contrast.hpp, docs/pruning_math.md section 11):
  /// with a second statistics file A here, the problem is E(x) = err_B(x) - w err_A(x) with B the
  /// `stats` given to build_layer_problem and w = behaviour_weight N_B / N_A (> 0: suppress A,
  /// < 0: protect A). Not owned; null: the ordinary problem.
  const CalibrationStatsFile* contrast = nullptr;
  double behaviour_weight = 0.0;  ///< lambda, in [-kMaxBehaviourWeight, kMaxBehaviourWeight]
};

/// Builds one layer's problem, reading only that layer's tensors and statistics (`stats` may be
/// null: data-free). Throws InvalidArgument for an unknown layer, a unit kind the config does not
/// allow, or a sparsity that leaves no unit / is not expressible (nearest ones listed).
[[nodiscard]] LayerProblem build_layer_problem(const Checkpoint& checkpoint,
                                               const CalibrationStatsFile* stats,
                                               const LayerProblemSpec& spec);

/// One layer's refit objective on one-shot statistics (a calibration statistics file): H = the
/// Gram (centred when compensation is on and the family holds a bias), B = W H and ||Y||^2 =
/// tr(W H W^T), i.e. the layer re-fitted to its own output; the keep count of `spec`. Throws
/// InvalidArgument without the statistics of that kind.
[[nodiscard]] RefitObjective build_refit_objective(const Checkpoint& checkpoint,
                                                   const CalibrationStatsFile& stats,
                                                   const LayerProblemSpec& spec);

/// Units one layer keeps for a unit kind and sparsity (throws like keep_count when the sparsity
/// leaves nothing or, for heads per KV group, is not expressible). `multiple_of` rounds the MLP
/// count (keep_count's multiple_of); it does not apply to heads.
[[nodiscard]] int layer_keep_count(const ModelConfig& config, UnitKind unit, double sparsity,
                                   int multiple_of = 1);

/// Where a problem's Gram came from: "calibration", "magnitude" or "isserlis".
[[nodiscard]] const char* gram_source_name(GramSource source);

/// Magnitude baseline of one layer problem built by build_layer_problem: reads that layer's
/// down_proj (MLP) or o_proj (heads) weight and keeps, in every constraint group, the units with
/// the largest sum of squared column norms over their channels (keep_top_scores of
/// magnitude_scores(W, unit_width)). Data-free: the problem's statistics are not used.
[[nodiscard]] Assignment magnitude_top_k(const Checkpoint& checkpoint, const LayerProblem& problem);

/// The kept unit indices of an assignment, and the reverse.
[[nodiscard]] std::vector<int> kept_indices(const Assignment& x);
[[nodiscard]] Assignment assignment_of(const std::vector<int>& kept, int num_units);

}  // namespace qprune
