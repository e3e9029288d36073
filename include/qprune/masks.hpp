// Masks files: which units of which layers a pruning run keeps, for which checkpoint, found how
// and at what objective. JSON, versioned (docs/masks.md); written by `qprune mask` and
// `qprune import-solution`, read by `qprune apply`.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error "include/qprune/masks.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "qprune/run_status.hpp"
#include "qprune/unit_kind.hpp"

namespace qprune {

class Checkpoint;

/// Identity of a checkpoint: where it was, a hash of config.json and a hash of the tensor index
/// (every tensor's name, dtype, shape and byte size, sorted, plus the first 32 bytes of each
/// tensor's data, so same-architecture checkpoints with other weights differ). Masks for one
/// checkpoint must not be applied to another: equal hashes are required, the path is informative
/// only.
struct CheckpointIdentity {
  std::string path;
  std::string config_hash;   ///< checkpoint_config_hash (fnv1a64 of config.json)
  std::string tensors_hash;  ///< fnv1a64 of "name dtype shape bytes" lines + 32 data bytes each

  [[nodiscard]] static CheckpointIdentity of(const Checkpoint& checkpoint);
  [[nodiscard]] bool same_model(const CheckpointIdentity& other) const {
    return config_hash == other.config_hash && tensors_hash == other.tensors_hash;
  }
};

/// What a behaviour-contrast run measured for one layer's mask (docs/pruning_math.md section
/// 11): its relative errors on the preserved set B and the contrasted set A (err_B / N_B,
/// err_A / N_A: fractions of the layer's output energy on each set), and, in suppress mode, the
/// layer's saturation weight (lambda above which the single-removal scores ignore B; else 0).
struct LayerBehaviour {
  double preserve_relative_error = 0.0;
  double contrast_relative_error = 0.0;
  double saturation_weight = 0.0;
};

/// One layer's mask of one unit kind.
struct LayerMask {
  int layer = 0;
  UnitKind unit = UnitKind::kMlp;
  int num_units = 0;                ///< units of this kind in the layer
  std::vector<int> kept;            ///< kept unit indices, increasing
  double objective = 0.0;           ///< QUBO energy of the mask (the layer's calibration error)
  double baseline_objective = 0.0;  ///< energy of the diagonal-score (Wanda/FLAP-like) mask
  bool feasible = true;             ///< kept.size() equals the target count (per group)
  double time_s = 0.0;              ///< solver wall time
  /// How the mask was found: the solver's status (kOptimal, kCompleted, kTimeLimit,
  /// kTargetReached, kInterrupted) or an import's (kImported, kImportedRepaired); kNotRun when the
  /// file did not record it (older files).
  RunStatus status = RunStatus::kNotRun;
  std::uint64_t seed = 0;  ///< the layer's seed
  /// Units this layer was asked to keep (its own k: the uniform count, or the global allocation's);
  /// 0 when unknown (files written before it was recorded: then kept.size() is assumed).
  int keep = 0;
  /// With --multiple-of (MaskRunRecord::multiple_of > 1, MLP): the count before rounding (the
  /// uniform count, or the global allocation's at multiple 1); 0 when not rounded or unknown.
  int unrounded_keep = 0;
  /// With unrounded_keep: the predicted change of `objective` from the rounding, in its units:
  /// the diagonal removal cost (removal_cost: sum of the smallest M_ii) at `keep` minus that at
  /// unrounded_keep. Positive when the rounding removes more units.
  double rounding_cost = 0.0;
  /// Behaviour contrast runs only (Masks::behaviour): see LayerBehaviour.
  std::optional<LayerBehaviour> behaviour{};
  /// Experts only: the mask's exact block error with re-routing on the calibration's sampled
  /// inputs (ExpertRerouting::error), and that error relative to the routed output's energy.
  std::optional<double> rerouted_error{};
  std::optional<double> rerouted_relative_error{};
  /// Experts, qubo method: the re-routed error of the solver's best sample itself, before the
  /// candidates were re-scored and improved by swaps (improve_by_swaps) on the exact error.
  std::optional<double> qubo_rerouted_error{};
  /// True when the entry is final: its solve ran to its end (status other than kInterrupted).
  [[nodiscard]] bool complete() const { return status != RunStatus::kInterrupted; }
};

/// How the per-layer keep counts of a run were chosen.
enum class MaskAllocation {
  kUniform,  ///< every layer keeps round((1 - sparsity) n)
  kGlobal,   ///< allocate_global over all layers of a unit kind (diagonal costs)
};
/// "uniform" or "global".
[[nodiscard]] const char* mask_allocation_name(MaskAllocation allocation);
/// The allocation with that name; throws InvalidArgument listing the names.
[[nodiscard]] MaskAllocation mask_allocation_from_name(const std::string& name);

/// The options of the run that made a masks file, beyond the top-level fields: what `mask
/// --resume` must find equal before it reuses entries. Files without it read as defaults with
/// `recorded == false` (then resume refuses them).
struct MaskRunRecord {
  bool recorded = false;
  std::vector<UnitKind> units;          ///< unit kinds requested, in solve order
  std::optional<double> head_sparsity;  ///< when it differed from `sparsity`
  MaskAllocation allocation = MaskAllocation::kUniform;
  std::string cost_scale;           ///< global only: "absolute" or "relative"
  double max_layer_sparsity = 1.0;  ///< global only
  bool mean_compensation_requested = true;
  std::string data_free;  ///< "magnitude" or "isserlis"
  /// --multiple-of: every MLP keep count is a multiple of this (1: not rounded). The two fields
  /// after it are written only when it is above 1 (informative; resume compares multiple_of).
  int multiple_of = 1;
  /// MLP units removed over the entries / their units (the sparsity reached; `sparsity` asked).
  double effective_sparsity = 0.0;
  double rounding_cost = 0.0;  ///< sum of the entries' LayerMask::rounding_cost
};

/// A behaviour contrast run (docs/masks.md, docs/pruning_math.md section 11): the objective per
/// layer was err_B(x) - w err_A(x) with B = Masks::calibration and A = `statistics`.
struct BehaviourRecord {
  std::string mode;        ///< "" (no contrast), "suppress" or "protect"
  std::string statistics;  ///< the contrasted set A's statistics file (absolute path)
  double weight = 0.0;     ///< lambda as signed in the objective: > 0 suppress, < 0 protect
  [[nodiscard]] bool active() const { return !mode.empty(); }
};

/// A masks file.
struct Masks {
  static constexpr int kVersion = 1;
  CheckpointIdentity checkpoint;
  std::string solver;
  std::uint64_t seed = 0;  ///< run seed (each layer's seed is derived from it)
  double sparsity = 0.0;   ///< requested uniform sparsity
  /// "calibration" (measured statistics), "magnitude" or "isserlis" (data-free, approximate).
  std::string objective_source = "calibration";
  bool approximate = false;        ///< objective values are a model of the error
  bool mean_compensation = false;  ///< apply must write the compensating biases
  std::string calibration;         ///< path of the statistics file used (empty: none)
  MaskRunRecord run;               ///< the run's other options (allocation, units, ...)
  BehaviourRecord behaviour;       ///< a behaviour contrast run (else mode empty)
  std::vector<LayerMask> entries;  ///< sorted by (unit, layer)
  /// Entries compute_masks took over from MaskRunOptions::resume (not stored in the file).
  int resumed_entries = 0;

  /// The entry for (layer, unit kind); nullptr when absent. Head kinds match each other.
  [[nodiscard]] const LayerMask* find(int layer, bool mlp) const;
  /// Throws InvalidArgument (naming both hashes and paths) unless `checkpoint` is the model these
  /// masks were computed for.
  void check_identity(const Checkpoint& checkpoint) const;
};

/// Writes masks as JSON through a temporary file and a rename. Throws IoError.
void write_masks(const Masks& masks, const std::filesystem::path& path);
/// Reads a masks file. Throws IoError, or ParseError (`path:0: expected ..., found ...`) for a
/// wrong format/version, missing fields, or indices out of range / unsorted / duplicated.
[[nodiscard]] Masks read_masks(const std::filesystem::path& path);

}  // namespace qprune
