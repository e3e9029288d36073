// The pruning QUBO of one layer: from a layer's weights and calibration statistics (Eigen matrices;
// no file I/O here) to a QuboModel whose energy is the layer's output error, plus the helpers that
// check, score and allocate masks. The maths is in docs/pruning_math.md.
//
// Units and variables: one binary variable per prunable unit (an MLP neuron, an attention head, or
// a whole KV group), x_i = 1 when unit i is KEPT. With M the layer's error matrix
//   M = G o (W^T W)      (G = A A^T over the calibration tokens, W = down_proj or o_proj weight)
// summed over the channels of each unit, removing the set S = {i : x_i = 0} costs
//   E(x) = (1-x)^T M (1-x) = 1^T M 1 - 2 (M 1)^T x + x^T M x,
// so in the QuboModel convention c_i = M_ii - 2 (M 1)_i, q_ij = 2 M_ij (i < j), offset 1^T M 1.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/pruning.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qprune/qubo_model.hpp"
#include "qprune/unit_kind.hpp"

namespace qprune {

/// Calibration statistics of a layer's unit activations a_t (t = 1..T): the inputs of down_proj
/// (one entry per MLP neuron) or of o_proj (one entry per channel, heads * head_dim).
struct ActivationStats {
  Eigen::MatrixXd gram;         ///< G = sum_t a_t a_t^T (n x n, symmetric PSD)
  Eigen::VectorXd mean;         ///< mu = (1/T) sum_t a_t (n), or empty when unknown
  std::int64_t num_tokens = 0;  ///< T; needed with `mean` (C = G - T mu mu^T)
  bool approximate = false;     ///< true when the statistics are a model, not measured
  /// Throws InvalidArgument naming the field when sizes, finiteness or T disagree.
  void validate() const;
};

/// Where the activation Gram G came from (what the QUBO's energy means).
enum class GramSource {
  kCalibration,  ///< measured: the energy is the layer's exact calibration output error
  kIdentity,     ///< G = I, data-free magnitude pruning (sum of ||W[:, i]||^2 over removed units)
  kIsserlis,     ///< data-free Gaussian-input model of a gated MLP (approximate)
};

/// Attention head layout (HF: query head h reads KV head h / (num_heads / num_kv_heads)).
struct AttentionShape {
  int num_heads = 0;     ///< query heads (num_attention_heads)
  int num_kv_heads = 0;  ///< KV heads (num_key_value_heads); == num_heads for MHA
  int head_dim = 0;
  [[nodiscard]] int heads_per_group() const {
    return num_kv_heads > 0 ? num_heads / num_kv_heads : 0;
  }
  [[nodiscard]] int num_channels() const { return num_heads * head_dim; }
  /// Throws InvalidArgument unless all are positive and num_kv_heads divides num_heads.
  void validate() const;
};

/// A layer's pruning problem. `model` holds the whole objective; M itself is not kept (it would
/// double the memory): its off-diagonal is q_ij / 2 and its diagonal is `unit_cost`.
struct LayerProblem {
  QuboModel model;  ///< keep variables; energy(x) = output error of mask x
  UnitKind unit = UnitKind::kMlp;
  GramSource source = GramSource::kCalibration;
  bool centered = false;     ///< mean compensation: G replaced by C = G - T mu mu^T
  bool approximate = false;  ///< energy is a model of the error, not the measured error
  int layer = 0;
  int unit_width = 1;         ///< input channels per unit (1, head_dim or group * head_dim)
  int num_groups = 1;         ///< constraint groups (KV groups for kHeadsPerGroup, else 1)
  std::string name;           ///< constraint name, e.g. "layer.3.mlp"
  Eigen::VectorXd unit_cost;  ///< M_ii: error of removing unit i alone

  [[nodiscard]] int num_units() const { return model.num_variables(); }
  [[nodiscard]] int num_channels() const { return num_units() * unit_width; }
};

/// Options of build_mlp_problem*.
struct MlpProblemOptions {
  int layer = 0;                  ///< layer index used in labels "L.mlp.i" and "layer.L.mlp"
  std::optional<int> keep;        ///< neurons kept (x = 1); nullopt: no constraint yet (set_keep)
  bool mean_compensation = true;  ///< with stats.mean given: centre G and compensate with a bias
  /// Storage of the couplings (kAuto: dense for calibration data, which gives a dense M).
  Storage storage = Storage::kAuto;
  /// Bytes the n x n error matrix may take (ResourceError before allocating when exceeded).
  /// Default: MemAvailable of /proc/meminfo at the time of the call.
  std::optional<std::uint64_t> memory_limit_bytes;
  void validate() const;
};

/// Options of build_head_problem*.
struct HeadProblemOptions {
  int layer = 0;  ///< labels "L.attn.h" (heads) or "L.kv.g" (groups)
  AttentionShape shape;
  UnitKind units = UnitKind::kHeads;
  /// Units kept: heads for kHeads; KV groups for kKvGroups; total heads for kHeadsPerGroup (a
  /// multiple of num_kv_heads, each group keeping keep / num_kv_heads). nullopt: no constraint yet.
  std::optional<int> keep;
  bool mean_compensation = true;
  Storage storage = Storage::kAuto;
  /// Bytes the channel x channel error matrix may take (as MlpProblemOptions).
  std::optional<std::uint64_t> memory_limit_bytes;
  void validate() const;
};

// ---- Builders ---------------------------------------------------------------------------------
// Memory: M is built in place inside the coupling matrix handed to the QuboModel: n^2 doubles
// (n = 18944 neurons: 2.87 GB), plus the caller's Gram (same size) and a double copy of W when W
// is float (H x n doubles). W^T W is one symmetric rank-k update (half a GEMM).

/// MLP neuron problem from measured statistics (stats of the down_proj input). `w_down` is H x n
/// (PyTorch out x in). Centred (stats.mean given and options.mean_compensation) or not.
[[nodiscard]] LayerProblem build_mlp_problem(const Eigen::MatrixXd& w_down,
                                             const ActivationStats& stats,
                                             const MlpProblemOptions& options);
[[nodiscard]] LayerProblem build_mlp_problem(const Eigen::MatrixXf& w_down,
                                             const ActivationStats& stats,
                                             const MlpProblemOptions& options);
/// Data-free magnitude problem (G = I): E(x) = sum over removed i of ||W_down[:, i]||^2.
[[nodiscard]] LayerProblem build_mlp_problem_magnitude(const Eigen::MatrixXd& w_down,
                                                       const MlpProblemOptions& options);

/// Data-free Gaussian-input statistics of a gated MLP (approximate; docs/pruning_math.md): for
/// x ~ N(0, s^2 I) and SiLU(z) ~ z / 2, per token
///   E[a_i a_j] = (s^4/4) [(g_i.u_i)(g_j.u_j) + (g_i.g_j)(u_i.u_j) + (g_i.u_j)(u_i.g_j)],
///   E[a_i]     = (s^2/2) (g_i.u_i),
/// returned with num_tokens = 1 and approximate = true. w_gate, w_up: n x D (out x in).
[[nodiscard]] ActivationStats isserlis_statistics(const Eigen::MatrixXd& w_gate,
                                                  const Eigen::MatrixXd& w_up,
                                                  double input_std = 1.0);

/// Attention head problem from the Gram of the o_proj input (heads * head_dim channels). `w_o` is
/// H x (heads * head_dim). M_uv = block sums of G o (W_o^T W_o) over the channels of units u, v.
[[nodiscard]] LayerProblem build_head_problem(const Eigen::MatrixXd& w_o,
                                              const ActivationStats& stats,
                                              const HeadProblemOptions& options);
[[nodiscard]] LayerProblem build_head_problem(const Eigen::MatrixXf& w_o,
                                              const ActivationStats& stats,
                                              const HeadProblemOptions& options);
/// Data-free head problem (G = I): E = sum over removed units of ||W_o[:, unit channels]||_F^2.
[[nodiscard]] LayerProblem build_head_problem_magnitude(const Eigen::MatrixXd& w_o,
                                                        const HeadProblemOptions& options);

/// A layer problem whose objective was formed elsewhere (sequential statistics, the refit
/// surrogate): E(x) = offset + sum_u l_u (1 - x_u) + (1 - x)^T M (1 - x) over the units, with the
/// labels, name and keep constraint that `options` give (M: units x units, symmetric, moved in;
/// `removal_linear` l may be empty). unit_cost becomes M_uu + l_u.
[[nodiscard]] LayerProblem mlp_problem_from_matrix(Eigen::MatrixXd m,
                                                   const Eigen::VectorXd& removal_linear,
                                                   double offset, const MlpProblemOptions& options);
[[nodiscard]] LayerProblem head_problem_from_matrix(Eigen::MatrixXd m,
                                                    const Eigen::VectorXd& removal_linear,
                                                    double offset,
                                                    const HeadProblemOptions& options);

/// Replaces the problem's constraints by "keep `keep` units" (split evenly over the KV groups for
/// kHeadsPerGroup). Throws InvalidArgument when keep is out of [1, n] or not a multiple of
/// num_groups.
void set_keep(LayerProblem& problem, int keep);

/// M (n x n) rebuilt from the problem (off-diagonal q_ij / 2, diagonal unit_cost).
[[nodiscard]] Eigen::MatrixXd error_matrix(const LayerProblem& problem);

/// The channel mask of a unit mask: each unit's entry repeated unit_width times.
[[nodiscard]] Assignment channel_mask(const LayerProblem& problem, const Assignment& keep_units);

/// C = G - T mu mu^T: the centred scatter sum_t (a_t - mu)(a_t - mu)^T. Throws if no mean.
[[nodiscard]] Eigen::MatrixXd centered_gram(const ActivationStats& stats);

// ---- Direct references (from activations, independent of M) -----------------------------------

/// ||W diag(1 - keep) A||_F^2: the output change when the removed input channels are zeroed.
/// w: H x n, activations: n x T (one column per token), keep: n channel entries.
[[nodiscard]] double reconstruction_error(const Eigen::MatrixXd& w,
                                          const Eigen::MatrixXd& activations,
                                          const Assignment& keep);
/// The same with the removed channels' mean replaced by the bias b = W[:, S] mu_S (mu = the row
/// means of `activations`): || W_S (A_S - mu_S 1^T) ||_F^2.
[[nodiscard]] double reconstruction_error_compensated(const Eigen::MatrixXd& w,
                                                      const Eigen::MatrixXd& activations,
                                                      const Assignment& keep);
/// b = W[:, S] mu_S (H entries) for the removed channels S = {i : keep_i = 0}: the bias to add to
/// the layer output so that the pruned layer keeps the mean output.
[[nodiscard]] Eigen::VectorXd compensation_bias(const Eigen::MatrixXd& w,
                                                const Eigen::VectorXd& mean,
                                                const Assignment& keep);

// ---- Sparsity allocation ----------------------------------------------------------------------

/// `keep` of `num_units` rounded to a multiple of `multiple_of` (`--multiple-of`: block sizes of
/// quantised formats, GPU tiles): the nearest multiple, a tie rounded up (keep more), never 0, and
/// never above num_units (then the largest multiple <= num_units, also when rounding up would pass
/// it). Throws InvalidArgument when multiple_of < 1 or > num_units (no positive multiple fits), or
/// keep is outside [0, num_units].
[[nodiscard]] int round_keep_to_multiple(int keep, int num_units, int multiple_of);

/// k = round((1 - sparsity) n) units kept; `granularity` units must divide k (KV groups for
/// kHeadsPerGroup). Throws InvalidArgument when sparsity is outside [0, 1), k = 0, or k is not a
/// multiple of granularity (the message lists the nearest expressible sparsities).
/// multiple_of > 1: k is then rounded by round_keep_to_multiple to a multiple of
/// lcm(granularity, multiple_of) instead (k = 0 becomes that multiple; no error for granularity).
[[nodiscard]] int keep_count(int num_units, double sparsity, int granularity = 1,
                             int multiple_of = 1);
/// keep_count for this problem's shape.
[[nodiscard]] int uniform_keep(const LayerProblem& problem, double sparsity);

/// How per-layer removal costs are compared across layers.
enum class CostScale {
  kAbsolute,              ///< M_ii as is: sum of absolute output errors
  kRelativeToLayerOutput  ///< M_ii / (1^T M 1): fraction of the layer's (centred) output energy
};

struct GlobalAllocationOptions {
  double sparsity = 0.5;  ///< fraction of all units removed, in [0, 1)
  CostScale scale = CostScale::kRelativeToLayerOutput;
  /// Upper bound on each layer's sparsity, in [0, 1]; every layer keeps at least one unit (one
  /// head per group for kHeadsPerGroup) regardless.
  double max_layer_sparsity = 1.0;
  /// Every layer keeps a multiple of this many units (of lcm(num_groups, multiple_of) with
  /// groups), >= 1. Above 1 the budget is met as closely as blocks allow: the total removed is the
  /// reachable one nearest round(sparsity * sum n) (a tie keeps more); a layer whose n is not a
  /// multiple removes n mod multiple_of units first, even beyond max_layer_sparsity.
  int multiple_of = 1;
  void validate() const;
};

struct GlobalAllocation {
  std::vector<int> keep;         ///< units kept per layer, in the order of the problems
  std::vector<double> sparsity;  ///< 1 - keep / n per layer
  double removed_cost = 0.0;     ///< sum of the (scaled) diagonal costs of the removed units
  int total_keep = 0;
  int total_units = 0;  ///< sum n
  int budget = 0;       ///< round(sparsity * total_units): the removal asked for
  /// 1 - total_keep / total_units: equals the asked sparsity up to rounding; with multiple_of > 1
  /// it may differ by up to half a block per model (plus the forced removals).
  [[nodiscard]] double effective_sparsity() const {
    return total_units > 0 ? 1.0 - static_cast<double>(total_keep) / total_units : 0.0;
  }
};

/// What allocate_global needs of one layer: its diagonal costs and total, not the whole problem
/// (so a caller can keep these vectors for every layer while holding one layer's problem at a
/// time).
struct LayerUnitCosts {
  Eigen::VectorXd unit_cost;  ///< M_ii per unit (LayerProblem::unit_cost)
  double total_cost = 0.0;    ///< 1^T M 1 (LayerProblem::model.offset()): every unit removed
  int num_groups = 1;         ///< LayerProblem::num_groups; removal steps take one unit per group
  /// The costs of `problem` (copies unit_cost).
  [[nodiscard]] static LayerUnitCosts of(const LayerProblem& problem);
};

/// The layer's removal cost in the allocation's model, unscaled: the sum of the n - keep smallest
/// unit costs (per group: the (n - keep) / num_groups smallest of each). What allocate_global_costs
/// minimises (divided by total_cost with CostScale::kRelativeToLayerOutput); the difference at two
/// counts is the predicted change of the layer's objective (--multiple-of's rounding cost). Throws
/// InvalidArgument unless keep is in [0, n] and a multiple of num_groups.
[[nodiscard]] double removal_cost(const LayerUnitCosts& layer, int keep);

/// Chooses per-layer keep counts with sum(n - keep) = round(sparsity * sum n) by removing, across
/// all layers, the units with the smallest (scaled) diagonal cost M_ii first; a layer with
/// num_groups > 1 (kHeadsPerGroup) removes one unit per group at a time (the cheapest remaining of
/// each, costs summed); with options.multiple_of > 1 in blocks of that many units (the greedy
/// over blocks is optimal for this separable cost when every layer has the same block size).
/// Throws InvalidArgument when the budget cannot be met under the bounds or granularities (with
/// multiple_of: by more than half a block), when a layer is empty or its unit count is not a
/// multiple of num_groups, or multiple_of exceeds a layer's units.
[[nodiscard]] GlobalAllocation allocate_global_costs(const std::vector<LayerUnitCosts>& layers,
                                                     const GlobalAllocationOptions& options);
/// allocate_global_costs of whole problems, which must share one UnitKind.
[[nodiscard]] GlobalAllocation allocate_global(const std::vector<const LayerProblem*>& problems,
                                               const GlobalAllocationOptions& options);

// ---- Baselines --------------------------------------------------------------------------------

/// Keeps, in each constraint group, the k units with the largest score (ties: lower index kept).
/// Throws InvalidArgument when the problem has no constraint or the sizes differ.
[[nodiscard]] Assignment keep_top_scores(const LayerProblem& problem,
                                         const Eigen::VectorXd& scores);
/// Diagonal score top-k (Wanda / FLAP-like): keep the units whose removal alone costs most, M_ii.
[[nodiscard]] Assignment diagonal_top_k(const LayerProblem& problem);
/// Magnitude scores ||W[:, i]||^2 per input channel, summed over each unit's `unit_width` channels.
[[nodiscard]] Eigen::VectorXd magnitude_scores(const Eigen::MatrixXd& w, int unit_width = 1);
/// Gated-MLP magnitude score ||W_down[:, i]||^2 ||g_i||^2 ||u_i||^2: the size of neuron i's whole
/// path (the Isserlis variance's weight-norm term), w_gate and w_up n x D.
[[nodiscard]] Eigen::VectorXd magnitude_scores(const Eigen::MatrixXd& w_down,
                                               const Eigen::MatrixXd& w_gate,
                                               const Eigen::MatrixXd& w_up);

}  // namespace qprune
