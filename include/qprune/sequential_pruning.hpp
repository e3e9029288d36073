// The whole pruning job in one pass over the model (`qprune prune`): calibrate, choose the units,
// re-fit and write, one decoder layer at a time.
//
// Sequential, error-correcting (SparseGPT / OBC / ZipLM style; docs/pruning_math.md, section 9):
// two residual streams run side by side over the calibration tokens, the original model's and the
// pruned model's. Each prunable projection (o_proj for heads, down_proj for MLP neurons) is
// calibrated on the inputs the PRUNED model produces at that point (a_t), and its kept columns are
// re-fitted so that it reproduces the ORIGINAL model's output there (y_t): with H = sum a a^T and
// the cross-Gram B = sum y a^T, keeping K leaves E(K) = ||Y||^2 - tr(B_K H_KK^{-1} B_K^T), the
// objective the solvers minimise (RefitObjective). The pruned sublayer's output then advances the
// pruned stream, so later layers are calibrated on, and correct, what the earlier cuts did.
//
// Mean compensation (a constant output correction) goes where the architecture can hold it:
// Llama: a down_proj / o_proj bias (mlp_bias / attention_bias); Qwen2 attention: the v_proj
// bias, exactly, because softmax rows sum to one (a constant added to a KV head's values adds the
// same constant to every query head's output that reads it); Qwen2 MLP and Mistral: none.
//
// Memory: one layer's weights and statistics at a time (n^2 doubles for H, the search state 2 n^2),
// two residual streams (hidden x tokens floats each) and one sublayer's activations for both
// streams, plus the refitted down_proj / o_proj columns of every layer (as floats) until the
// checkpoint is written.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 4
#error \
    "include/qprune/sequential_pruning.hpp is in the workflows layer; a lower layer (core, problems, solver) may not include it"
#endif

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qprune/checkpoint.hpp"
#include "qprune/masks.hpp"
#include "qprune/pruning.hpp"
#include "qprune/refit_search.hpp"
#include "qprune/run_status.hpp"
#include "qprune/solvers.hpp"

namespace qprune {

/// What each pruned projection is fitted to reproduce.
enum class RefitTarget {
  kLayerOutput,  ///< the original model's output of this projection
  /// ... plus the difference between the original and the pruned residual stream at its input:
  /// the projection also corrects what the earlier cuts left in the stream (default; on the
  /// example model 6.80 -> 6.66 held-out perplexity at uniform 40 % / 50 %).
  kResidual,
};
[[nodiscard]] const char* refit_target_name(RefitTarget target);

/// The selection methods that are baselines or refit-objective solvers; any other name is a QUBO
/// solver of make_solver. Returned in the order --help lists them.
[[nodiscard]] std::vector<std::string> prune_method_names();

/// How a global allocation compares the removal costs of different layers.
enum class AllocationScale {
  kResidualStream,  ///< relative to the energy of the residual stream at the projection (default)
  kLayerOutput,     ///< relative to the projection's own output energy
  kAbsolute,        ///< absolute errors
};
/// "stream", "output", "absolute".
[[nodiscard]] const char* allocation_scale_name(AllocationScale scale);

struct PruneOptions {
  bool mlp = true;                                 ///< prune MLP neurons
  bool heads = true;                               ///< prune attention heads
  double sparsity = 0.4;                           ///< MLP neurons removed per layer, in [0, 1)
  std::optional<double> head_sparsity;             ///< heads removed per layer; unset: `sparsity`
  UnitKind head_shape = UnitKind::kHeadsPerGroup;  ///< GQA: kKvGroups or kHeadsPerGroup
  /// How units are chosen:
  ///   magnitude  top-k ||W[:, unit]||^2 (data-free)
  ///   diagonal   top-k H_ii ||W[:, i]||^2 (Wanda-sp: the no-refit removal cost of a unit alone)
  ///   flap       top-k C_ii ||W[:, i]||^2 with C the centred Gram (FLAP's fluctuation metric)
  ///   obs        OBS / ZipLM greedy on the refit objective
  ///   sa, tabu   with the refit objective: swap annealing / tabu on it, started from obs;
  ///              with no-refit: the QUBO solvers of that name
  ///   exact      with refit: every feasible mask (small layers); else the QUBO exact solver
  ///   any other solver name (qaoa, greedy, ...): that QUBO solver on the no-refit QUBO, or with
  ///              the refit objective on its pairwise surrogate
  ///              (RefitObjective::pairwise_surrogate)
  std::string method = "obs";
  /// Default: kRefit when `refit`, else kNoRefit.
  std::optional<PruneObjective> objective;
  bool refit = true;       ///< re-fit the kept down_proj / o_proj columns (least squares)
  bool sequential = true;  ///< false: every layer calibrated on the original model (one-shot)
  RefitTarget target = RefitTarget::kResidual;
  bool mean_compensation = true;  ///< where the architecture can hold it (see the file comment)
  /// kGlobal: `sparsity` of all MLP neurons and `head_sparsity` of all heads removed, the
  /// per-layer counts from the layers' OBS greedy removal costs on one-shot statistics (a first
  /// pass), compared across layers by `allocation_scale`; the checkpoint is padded to the widest
  /// layer (zero units: stored and effective parameters differ).
  MaskAllocation allocation = MaskAllocation::kGlobal;
  AllocationScale allocation_scale = AllocationScale::kResidualStream;
  double max_layer_sparsity = 0.8;  ///< global: cap per layer, in [0, 1]
  /// --multiple-of: every MLP keep count is a multiple of this, >= 1 (heads are not rounded).
  /// Uniform: round_keep_to_multiple; global: allocate_global_costs in blocks of it, and each
  /// MLP mask entry records its count at multiple 1 and the rounding's cost predicted by the
  /// allocation's path costs (LayerMask::unrounded_keep, rounding_cost).
  int multiple_of = 1;
  /// Ridge added to H when it is not numerically positive definite (RefitObjective), relative
  /// to its mean diagonal; > 0.
  double damping_rel = 1e-8;
  /// A prior towards the original weights, lambda ||W' - W_K||^2 with lambda = ridge_rel x mean
  /// diag(H), in the objective and the refit alike (docs/pruning_math.md 9.1); makes the refit
  /// well posed with fewer tokens than kept channels; >= 0.
  double ridge_rel = 0.0;
  SolveOptions solve;  ///< for QUBO solvers; solve.seed is the run seed
  SolverSettings settings;
  RefitSearchOptions search;  ///< for obs, sa, tabu, exact on the refit objective
  const std::atomic<bool>* interrupt = nullptr;  ///< polled between and inside layers
  /// Called after each pruned projection (layer, "mlp" / "heads", what was done).
  std::function<void(const std::string& line)> progress;
  /// Bytes the run may hold at once (streams, activations, statistics, search state); default:
  /// MemAvailable. ResourceError before the first layer when the estimate exceeds it.
  std::optional<std::uint64_t> memory_limit_bytes;
  /// Throws InvalidArgument naming the option (as the CLI spells it).
  void validate() const;
};

/// What happened to one prunable projection.
struct PrunedProjection {
  int layer = 0;
  UnitKind unit = UnitKind::kMlp;
  int num_units = 0;
  std::vector<int> kept;
  std::string method;
  /// The refit objective E(K) of the chosen mask (NaN when the run neither refits nor chooses on
  /// it) and, for comparison on the same statistics, of the baselines and of the greedy start.
  double refit_error = 0.0;
  /// The diagonal (Wanda-sp) mask's error under the run's objective (refit; or no-refit when the
  /// refit objective is not computed).
  double diagonal_refit_error = 0.0;
  double obs_refit_error = 0.0;           ///< OBS greedy mask
  double no_refit_error = 0.0;            ///< error of the chosen mask without refit
  double target_energy = 0.0;             ///< ||Y||^2: the error of removing every unit
  double error_written = 0.0;             ///< error of the weights written (compensation included)
  double damping = 0.0;                   ///< absolute ridge added to H
  double select_s = 0.0;                  ///< time choosing the units
  RunStatus status = RunStatus::kNotRun;  ///< how the selection ended (kCompleted, kOptimal, ...)
};

struct PruneReport {
  ModelConfig config;  ///< of the written checkpoint
  std::vector<PrunedProjection> projections;
  Masks masks;  ///< the masks chosen (for `apply` one-shot use or inspection)
  std::int64_t tokens = 0;
  std::int64_t original_parameters = 0;
  std::int64_t stored_parameters = 0;
  std::int64_t padding_parameters = 0;
  [[nodiscard]] std::int64_t effective_parameters() const {
    return stored_parameters - padding_parameters;
  }
  double forward_s = 0.0;  ///< forward passes and statistics
  double select_s = 0.0;   ///< unit selection
  double write_s = 0.0;
  std::vector<std::string> warnings;
  /// options.interrupt was raised: the run stopped and wrote nothing.
  bool interrupted = false;
};

/// Prunes `checkpoint` on the calibration windows (independent sequences, e.g. from
/// calibration_windows) and writes the smaller checkpoint to `out_folder` (as write_checkpoint: a
/// new or empty folder). Throws InvalidArgument for bad options, too few tokens, or an
/// architecture the forward pass cannot run, ResourceError when the run does not fit in memory,
/// IoError on write failures. An interrupt ends the run with report.interrupted and nothing
/// written.
PruneReport prune_model(const Checkpoint& checkpoint,
                        const std::vector<std::vector<std::int32_t>>& windows,
                        const PruneOptions& options, const std::filesystem::path& out_folder);

/// Calibration windows: `count` windows of `context` tokens. seed 0: consecutive from the start
/// (as `qprune calibrate`); otherwise windows starting at positions drawn uniformly from the
/// text with that seed (different seeds give different calibration samples).
[[nodiscard]] std::vector<std::vector<std::int32_t>> calibration_windows(
    std::span<const std::int32_t> tokens, std::int64_t context, std::int64_t max_tokens,
    std::uint64_t seed);

}  // namespace qprune
