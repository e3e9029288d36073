// The pruning pipeline over checkpoint folders: solve every layer's problem
// (qprune/checkpoint_problems.hpp) into a masks file, apply masks to write a pruned
// checkpoint, and export / import single-layer problems for external solvers. docs/masks.md.
//
// Memory: every function here works one layer at a time. compute_masks reads a layer's weights
// (down_proj or o_proj; gate/up only for the Isserlis model) and statistics, builds and solves its
// problem, and frees them before the next layer; apply_masks computes a layer's new tensors when
// the checkpoint writer reaches them (CheckpointEdits::transform) and keeps one layer's edits.
// Peak: the largest layer's problem (n^2 doubles for M, plus the statistics' n^2) plus one shard of
// the output being encoded.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 4
#error \
    "include/qprune/prune_pipeline.hpp is in the workflows layer; a lower layer (core, problems, solver) may not include it"
#endif

#include <atomic>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/checkpoint_problems.hpp"
#include "qprune/formats.hpp"
#include "qprune/job_runner.hpp"
#include "qprune/masks.hpp"
#include "qprune/pruning.hpp"
#include "qprune/pruning_refit.hpp"
#include "qprune/refit_objective.hpp"
#include "qprune/solvers.hpp"

namespace qprune {

/// The seed of one layer's solve: a SplitMix64 mix of the run seed, the layer and the unit kind,
/// so layers get independent streams and a rerun with the same seed gives the same masks.
[[nodiscard]] std::uint64_t layer_seed(std::uint64_t run_seed, int layer, UnitKind unit);

/// How compute_masks chooses each layer's mask. The baselines are not QUBO solvers: they rank the
/// units of the layer's problem by a score and keep the top k in every constraint group.
enum class MaskMethod {
  kQubo,       ///< solve the layer's QUBO with MaskRunOptions::solver (default)
  kDiagonal,   ///< diagonal score top-k (Wanda/FLAP-like): diagonal_top_k, removal cost M_ii
  kMagnitude,  ///< weight magnitude top-k: magnitude_top_k, ||W[:, unit channels]||^2
  /// Behaviour contrast baseline (needs MaskRunOptions::contrast): remove the units whose mean
  /// per-token output energy is largest on A relative to B (contrastive_diagonal_top_k).
  kContrastiveDiagonal,
  /// Experts only (MaskRunOptions::experts): keep the experts that most tokens chose.
  kExpertFrequency,
  /// Experts only: keep the experts with the largest routing weight summed over the tokens.
  kExpertWeight,
  /// Experts only: every subset, the least exact re-routed error (best_rerouted_subset).
  kExhaustive,
};
/// "qubo", "diagonal", "magnitude", "contrastive-diagonal", "frequency", "routed-weight",
/// "exhaustive".
[[nodiscard]] const char* mask_method_name(MaskMethod method);
/// The method with that name; throws InvalidArgument listing the names.
[[nodiscard]] MaskMethod mask_method_from_name(const std::string& name);

struct MaskRunOptions {
  MaskMethod method = MaskMethod::kQubo;  ///< kQubo uses `solver`; the baselines ignore it
  bool mlp = true;                        ///< mask MLP neurons
  bool heads = false;                     ///< mask attention heads
  /// Mask the routed experts of every MoE layer (uniform sparsity; MoE checkpoints). With the
  /// qubo method every feasible sample of the solver is scored by its exact re-routed error on the
  /// calibration's sampled inputs, and the best one is kept (LayerMask::rerouted_error).
  bool experts = false;
  double sparsity = 0.5;  ///< uniform per layer, in [0, 1)
  /// Sparsity of the head units when it must differ from `sparsity` (a GQA model can only drop
  /// heads in steps of one per KV group); unset: `sparsity`. In [0, 1).
  std::optional<double> head_sparsity;
  UnitKind head_shape = UnitKind::kHeadsPerGroup;  ///< for GQA: kKvGroups or kHeadsPerGroup
  bool mean_compensation = true;                   ///< see LayerProblemSpec
  DataFreeModel data_free = DataFreeModel::kMagnitude;
  std::string solver = "sa";
  SolveOptions solve;  ///< solve.seed is the run seed
  SolverSettings settings;
  /// kUniform: every layer keeps round((1 - sparsity) n). kGlobal (MLP only): `sparsity` of all
  /// neurons of the model is removed, the per-layer counts from allocate_global on the layers'
  /// diagonal costs (a first pass that builds each layer's problem, one at a time, and keeps only
  /// its cost vector); apply then pads every layer to the widest one.
  MaskAllocation allocation = MaskAllocation::kUniform;
  CostScale cost_scale = CostScale::kRelativeToLayerOutput;  ///< global: how layers compare
  /// Global: no layer loses more than this fraction of its units, in [0, 1]. Default 0.8: twice the
  /// usual 40 % and still a fifth of the layer left, so that the diagonal cost (which ignores how
  /// removed units interact) is never trusted down to a near-empty layer.
  double max_layer_sparsity = 0.8;
  /// --multiple-of: every MLP keep count is a multiple of this, >= 1 (1: not rounded). Uniform:
  /// round_keep_to_multiple of each layer's count; global: allocate_global_costs in blocks of it.
  /// Head counts are not rounded. Each MLP entry records its count before rounding and the
  /// rounding's predicted cost (LayerMask::unrounded_keep, rounding_cost), the run record the
  /// effective sparsity and the summed cost.
  int multiple_of = 1;
  /// A previous (possibly interrupted) run's masks: entries that are complete() and match this
  /// run's plan are taken over as they are, the others solved. It must come from the same
  /// checkpoint and options (check_resumable); the result equals an uninterrupted run.
  const Masks* resume = nullptr;
  /// Called after each layer (progress output), also for entries taken over from `resume`; with
  /// a multi-process runner on the coordinator only, in completion order.
  std::function<void(const LayerMask&)> progress;
  /// Where the (layer, unit kind) jobs run, largest problems first; not owned. Null: this process,
  /// one layer after another. Every job is seeded by layer_seed, so the masks do not depend on it.
  JobRunner* runner = nullptr;
  /// Null (default): an error while building or solving a layer ends compute_masks (rethrown).
  /// Set: the first such error is stored here instead, no further layer starts (on the process
  /// that failed), and compute_masks returns the entries finished so far, so that the caller can
  /// keep them (qprune mask writes them, then exits with the error's code; --resume continues).
  /// An error from another process of a multi-process runner arrives as an exception of the same
  /// exit class (IoError, ResourceError, InvalidArgument for parse and argument errors, Error)
  /// with the same message.
  std::exception_ptr* layer_error = nullptr;
  /// Behaviour contrast (docs/pruning_math.md section 11): the statistics of the set A to
  /// suppress (behaviour_weight > 0) or protect (< 0); the `stats` given to compute_masks are the
  /// preserved set B. Each layer's objective is then err_B(x) - w err_A(x), w = behaviour_weight
  /// N_B / N_A. Not owned; null: the ordinary problem. Uniform allocation only; not with the
  /// magnitude method.
  const CalibrationStatsFile* contrast = nullptr;
  /// lambda: finite, |lambda| <= kMaxBehaviourWeight (100); 0 with a contrast is refused (use the
  /// single-set run).
  double behaviour_weight = 0.0;
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// Solves every layer (MLP first, then heads, in layer order) and returns the masks. The mask of
/// each layer is the best sample of the solver (or the baseline's mask, options.method); its
/// objective is the problem's energy and the baseline is the energy of diagonal_top_k. Infeasible
/// answers are kept and marked feasible=false. Masks::solver is the solver's name for kQubo and
/// the method's name ("diagonal", "magnitude") for a baseline.
/// When the interrupt flag (options.solve.interrupt) is raised, the layer being solved is kept with
/// status "interrupted" and layers not yet started are left out (finished ones complete). A layer
/// that fails (e.g. IoError: a shard truncated during the run) is rethrown, or with
/// options.layer_error set, stored there while the finished layers are returned.
/// Each layer's seed is layer_seed(run seed, layer, unit): independent of which layers run.
/// With a multi-process runner every process calls this; only the coordinator gets the entries
/// (the others get none). A global allocation is planned on every process (same counts).
[[nodiscard]] Masks compute_masks(const Checkpoint& checkpoint, const CalibrationStatsFile* stats,
                                  const MaskRunOptions& options);

/// Throws InvalidArgument naming the first field where `previous` (a masks file to resume) differs
/// from `planned` (the header compute_masks makes for this run: checkpoint identity, solver, seed,
/// sparsity, calibration, and the run record: units, head sparsity, allocation, compensation,
/// data-free model), e.g. "... was made with sparsity 0.5, this run asks for 0.4".
void check_resumable(const Masks& previous, const Masks& planned);

struct ApplyOptions {
  /// Re-fit the kept down_proj / o_proj columns by least squares on the statistics (needs them).
  bool refit = false;
  RefitOptions refit_options;
  /// Masks computed in protect mode (mask --protect A.stats): the refit serves their objective,
  /// err_B + w err_A, from both sets' statistics (protected_refit_statistics). This names A's
  /// statistics; empty: the file the masks record (Masks::behaviour.statistics).
  std::filesystem::path protected_statistics;
  CheckpointWriteOptions write;
};

/// What apply did to one (layer, unit kind).
struct AppliedLayer {
  int layer = 0;
  UnitKind unit = UnitKind::kMlp;
  int kept = 0;
  bool bias_written = false;
  double error_without_refit = 0.0;  ///< only with refit: s^T M s (same centring)
  double error_with_refit = 0.0;     ///< only with refit
};

struct ApplyReport {
  ModelConfig config;                      ///< the new config
  std::vector<std::string> added_tensors;  ///< bias tensors that did not exist before
  std::vector<AppliedLayer> layers;
  /// With refit: too few calibration tokens for the kept channels (fewer than 4x; fewer than 1x
  /// is refused), one line per unit kind naming the numbers.
  std::vector<std::string> warnings;
  /// True when MLP widths differ between layers (a global allocation): every layer is written at
  /// the widest kept count, the extra gate/up rows (and biases) and down_proj columns zero.
  bool padded = false;
  /// Block-wise FP8 checkpoints: the modules whose sliced weights were written dequantised as
  /// BF16 without a scale (slicing breaks the 128-blocks), e.g. "model.layers.0.mlp.gate_proj";
  /// they are added to quantization_config.modules_to_not_convert.
  std::vector<std::string> dequantised_modules;
  /// Not empty when DeepSeek-V3's MTP layers were dropped: one line saying so and why.
  std::string mtp_note;
  std::int64_t stored_parameters = 0;   ///< elements of every tensor written
  std::int64_t padding_parameters = 0;  ///< of which the zeros added by padding
  [[nodiscard]] std::int64_t effective_parameters() const {
    return stored_parameters - padding_parameters;
  }
};

/// Writes the pruned checkpoint into `out_folder`: gate/up rows and down columns of removed
/// neurons; q rows (+bias) of removed heads, k/v rows (+bias) of removed KV groups, o_proj columns;
/// dtypes kept; config.json with the new intermediate_size, num_attention_heads,
/// num_key_value_heads and an explicit head_dim; the mean-compensation bias when the masks say so
/// (Llama: down_proj.bias / o_proj.bias, zero gate/up or q/k/v biases, mlp_bias /
/// attention_bias set). `stats` is needed for compensation and refit. MLP masks with different
/// widths per layer (global allocation) are written padded to the widest layer: the extra rows of
/// gate/up (and their biases) and columns of down_proj are zero, which changes no output
/// (silu(0) * 0 = 0). Throws InvalidArgument when the masks belong to another checkpoint, a mask is
/// infeasible or interrupted, head widths differ between layers (a standard config needs one head
/// count; head padding is not supported), or when statistics are needed and missing.
ApplyReport apply_masks(const Checkpoint& checkpoint, const Masks& masks,
                        const CalibrationStatsFile* stats, const std::filesystem::path& out_folder,
                        const ApplyOptions& options = {});

/// How `write_gguf` stores the model.
struct GgufOptions {
  /// Element type of the matrices (F32, F16 or BF16); nullopt: each tensor's own (F64 becomes F32).
  /// Norm weights and biases are always F32, as llama.cpp's converter writes them.
  std::optional<Dtype> dtype;
  /// Without masks: leave out the units that contribute exactly nothing (zero down_proj columns,
  /// zero o_proj head blocks; the padding `apply` and `prune` write for a global allocation), so a
  /// padded checkpoint becomes the unpadded model it stands for. Outputs are unchanged.
  bool drop_zero_units = true;
  /// Called after each tensor written: (tensors done, tensors in all).
  std::function<void(std::size_t, std::size_t)> progress;
};

struct GgufReport {
  /// llama.cpp architecture written: "deci" when the layers' widths differ (llama.cpp honours its
  /// per-layer feed_forward_length / head_count / head_count_kv arrays: Llama-3.1-Nemotron's
  /// variable-width layout); else "qwen2" for a Qwen2 model that keeps every head, "llama"
  /// otherwise (llama.cpp's qwen2 loader needs hidden_size = heads x head_dim; its llama loader
  /// takes the same q/k/v biases).
  std::string architecture;
  std::vector<std::int64_t> mlp_widths;  ///< per layer, as written (never padded)
  std::vector<std::int64_t> heads;       ///< query heads per layer
  std::vector<std::int64_t> kv_heads;    ///< KV heads per layer
  std::string tokenizer;                 ///< what the file's tokenizer is, in words
  std::int64_t stored_parameters = 0;    ///< elements of every tensor written
  std::uint64_t file_bytes = 0;          ///< size of the file written
  std::int64_t zero_units_dropped = 0;   ///< units (MLP, heads or KV groups) left out as zero
  std::vector<AppliedLayer> layers;      ///< as apply_masks reports them
  std::vector<std::string> warnings;     ///< as apply_masks reports them
};

/// Writes `checkpoint`, pruned by `masks` (nullptr or no entries: as it is), as one GGUF file for
/// llama.cpp: the same slicing, mean compensation and refit as apply_masks, but every layer at its
/// own widths (no padding: a global allocation stores only what it keeps). q/k rows are permuted
/// for llama.cpp's interleaved rotary layout where the architecture needs it ("llama", "deci"),
/// the byte-level tokenizer of qprune's example models becomes a 256-token GPT-2 byte vocabulary,
/// and a checkpoint without a tokenizer qprune can read gets no vocabulary (tokenizer "none"; feed
/// token ids). Atomic: a failure or Ctrl-C leaves `out_file` as it was. Throws InvalidArgument for
/// a config whose forward pass llama.cpp's architectures would change (rope scaling, sliding
/// window, another activation), a tensor without a GGUF name, and everything apply_masks refuses.
GgufReport write_gguf(const Checkpoint& checkpoint, const Masks* masks,
                      const CalibrationStatsFile* stats, const std::filesystem::path& out_file,
                      const ApplyOptions& apply = {}, const GgufOptions& options = {});

/// Metadata keys an exported problem carries (json metadata; header comments of qbsolv/coo/lp).
struct ExportedProblemInfo {
  int layer = 0;
  UnitKind unit = UnitKind::kMlp;
  double sparsity = 0.0;
  int keep = 0;
  int num_units = 0;
  std::string source;  ///< "calibration", "magnitude", "isserlis"
  bool centered = false;
  std::string config_hash;
  PruneObjective objective = PruneObjective::kNoRefit;  ///< refit: the pairwise surrogate
  /// source "contrastive" (export --suppress/--protect): lambda as signed in the objective and the
  /// absolute paths of both sets' statistics (qprune.behaviour_weight, qprune.contrast_statistics,
  /// qprune.preserve_statistics).
  std::optional<double> behaviour_weight;
  std::string contrast_statistics;
  std::string preserve_statistics;
  /// How the keep-k group was written, for formats without groups (qbsolv, COO, MQLib, ...);
  /// absent where the format holds it (JSON, LP, MPS). Also in the file's metadata
  /// (qprune.penalty_*, qprune.best_known_energy, qprune.beta_range, ...).
  struct Penalty {
    std::string rule;            ///< "tuned", "provable" or "given" (ExportOptions)
    double weight = 0.0;         ///< w of w (s - k)^2 + shift (s - k)
    std::vector<double> shifts;  ///< one per group
    /// tuned only: the best feasible energy found (the penalised form's target), the single-flip
    /// schedule hint (TunedPenalty::beta_range) and whether the last verification round passed.
    std::optional<double> best_known_energy;
    std::optional<std::pair<double, double>> beta_range;
    bool verified = false;
    /// max |coefficient| / min nonzero |coefficient| of the written (penalised) model.
    double dynamic_range = 0.0;
    double largest_coefficient = 0.0;  ///< max |coefficient| of the written model (--scale-to)
    /// Bits a fixed-point encoding of the written coefficients needs to keep the median nonzero
    /// coupling of the layer's own objective to 1 %: ceil(log2(max |coefficient| / (0.01 median))).
    int precision_bits = 0;
  };
  std::optional<Penalty> penalty;
  /// ExportOptions::subproblem: the layer's variables the file holds (unit indices, file order),
  /// and the reference answer every other unit is fixed at; empty for a whole layer. Metadata
  /// qprune.subproblem_variables (comma list) and qprune.subproblem_reference (0/1 string).
  std::vector<int> subproblem_variables;
  Assignment subproblem_reference;
  double subproblem_reference_energy = 0.0;  ///< E of the reference (qprune.best_known_energy)
};

/// How export_layer_problem writes a layer problem.
struct ExportOptions {
  WriteOptions write;  ///< format, precision; penalty_weight given: the "given" rule
  /// For formats without groups and no given weight: kTuned (default) sets the shifts and weight
  /// from a search (tuned_penalty, include/qprune/tuned_penalty.hpp), so that single-flip
  /// annealers reach the constrained optimum; kProvable writes QuboModel::penalty_terms()'s form,
  /// whose weight is proven safe but which annealers solve far worse (BENCHMARKS.md).
  enum class PenaltyRule { kTuned, kProvable };
  PenaltyRule penalty_rule = PenaltyRule::kTuned;
  std::uint64_t seed = 0;      ///< of the tuning searches
  double tuning_time_s = 1.0;  ///< TunedPenaltyOptions::search_time_s
  /// > 0: write an N-variable sub-instance for QPUs and QAOA: a reference answer (sa, native
  /// moves, the same budget) fixes every other unit; the N free ones are the units nearest the
  /// keep/remove boundary (half the kept units that cost least to remove, half the removed
  /// units that gain most when added). Its energies are the whole layer's (the fixed part in
  /// the offset), so the reference's energy is the bar to beat; import-solution maps an answer
  /// back through the metadata. < the layer's units.
  int subproblem = 0;
  /// Scale the written file so that its largest |coefficient| (linear or coupling, after any
  /// penalty) is this: the range a hardware annealer takes (e.g. 1). Its energies are then
  /// WriteOptions::scale times the layer's (qprune.energy_scale), and so are best_known_energy
  /// and the beta hint's inverse. Finite and > 0 when given.
  std::optional<double> scale_to;
  /// The qasm format without given angles (write.qaoa_gammas empty): the angles are optimised
  /// for the written (penalised) problem with these options (optimised_qaoa_angles).
  QaoaOptions qaoa;
  const std::atomic<bool>* interrupt = nullptr;
};

/// Writes one layer's problem to `path` in a QUBO format: the k-of-n constraint as LP equalities /
/// JSON groups where the format holds them, else as a penalty (ExportOptions; weight and shifts
/// noted in the header). Labels `L.mlp.i`, `L.attn.h`, `L.kv.g`. The ExportedProblemInfo goes
/// into the JSON metadata or, for text formats, into `c`/`#`/`\` comment lines `qprune.key=value`
/// at the top (not for .gz outputs). Returns the info written.
ExportedProblemInfo export_layer_problem(const Checkpoint& checkpoint,
                                         const CalibrationStatsFile* stats,
                                         const LayerProblemSpec& spec, const std::string& path,
                                         const ExportOptions& options = {});

/// Reads back the ExportedProblemInfo of an exported file (JSON metadata or header comments);
/// nullopt when the file carries none (then the caller must say layer and unit).
[[nodiscard]] std::optional<ExportedProblemInfo> read_exported_info(const std::string& path);

/// The repair rule for an infeasible mask (per constraint group): while a group keeps too many,
/// drop the kept unit whose removal raises the energy least (exact marginal cost, flip_delta);
/// while it keeps too few, add the missing unit that lowers it most. Returns the repaired mask and
/// the units it removed / added.
struct RepairResult {
  Assignment x;
  std::vector<int> removed;
  std::vector<int> added;
};
[[nodiscard]] RepairResult repair_assignment(const QuboModel& model, Assignment x);

struct ImportOptions {
  bool repair = false;
  /// For files without qprune metadata (then all three are needed; nothing is assumed) or to
  /// override it.
  std::optional<int> layer;
  std::optional<UnitKind> unit;
  std::optional<double> sparsity;
  /// The answer file's format (solution_formats()); empty: told from its content.
  std::string solution_format;
  /// A contrastive file's set A (suppressed or protected); null: the file its metadata names. Its
  /// preserved set B is the `stats` given to import_solution, or else the file the metadata names.
  const CalibrationStatsFile* contrast = nullptr;
};

struct ImportResult {
  LayerMask mask;
  ExportedProblemInfo info;
  bool was_feasible = true;
  RepairResult repair;  ///< what --repair changed (empty lists when nothing)
  /// Energy of the solution in the file's own model (penalty included); none when the file's
  /// format cannot be read back (lp, lp-linear, mps).
  std::optional<double> file_energy;
};

/// Maps an external solver's 0/1 answer for an exported file back to a layer mask: variable order
/// from the file's labels (json) or its position, the layer/unit from its metadata or `options`.
/// The objective is recomputed on the problem rebuilt from the checkpoint. Infeasible answers
/// throw InvalidArgument unless options.repair.
[[nodiscard]] ImportResult import_solution(const Checkpoint& checkpoint,
                                           const CalibrationStatsFile* stats,
                                           const std::string& qubo_path,
                                           const std::string& solution_path,
                                           const ImportOptions& options);

}  // namespace qprune
