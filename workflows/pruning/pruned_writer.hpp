// Writing a pruned checkpoint from masks (apply_masks) with the kept down_proj / o_proj columns
// taken from the caller: apply_masks re-fits them from the one-shot statistics file, the
// sequential pipeline hands over what it fitted layer by layer. Everything else (rows of gate/up
// and q/k/v, the new config, added bias tensors, padding of ragged MLP widths) is the same code.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 4
#error \
    "workflows/pruning/pruned_writer.hpp is in the workflows layer; a lower layer (core, problems, solver) may not include it"
#endif

#include <Eigen/Core>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qprune/prune_pipeline.hpp"

namespace qprune::detail {

/// New values for one layer's kept down_proj (mlp) or o_proj (heads) columns.
struct RefittedProjection {
  /// out x kept channels, in increasing channel order; empty: the original columns (no refit)
  Eigen::MatrixXd kept_columns;
  Eigen::VectorXd output_bias;  ///< added to the projection's bias; empty: none
  /// Added to the v_proj bias rows of the kept KV heads (kept KV heads x head_dim); empty: none.
  Eigen::VectorXd value_bias;
  double error_without_refit = 0.0;  ///< for the report
  double error_with_refit = 0.0;
};

/// (layer, mlp?) -> the refitted projection, or nullopt to write the kept original columns.
using RefitProvider = std::function<std::optional<RefittedProjection>(int layer, bool mlp)>;

/// Kept query heads and KV groups of one head entry, and where they go in the written layer:
/// slot s of the KV heads reads group kv_slot[s], slot s * per_group + j of the query heads reads
/// head head_slot[...]; -1 is a zero (padding) slot, for layers that keep fewer heads than the
/// widest one (a global allocation written with one width).
struct HeadPlan {
  std::vector<int> heads;
  std::vector<int> kv;
  std::vector<int> kv_slot;
  std::vector<int> head_slot;
};

/// The tensors of a pruned model, one layer at a time: the plan (widths, bias tensors to add, new
/// config) is made once from the masks; a layer's sliced (and re-fitted) tensors are computed when
/// one of them is first asked for, so only one layer's edits are held at a time. Both writers use
/// it: the Hugging Face folder (`pad`: every layer at the widest layer's widths, since its config
/// holds one width, zero units filling the rest) and GGUF (each layer at its own widths).
/// Masks without entries: the checkpoint unchanged (tensor() is always nullopt).
class PrunedLayers {
 public:
  /// Checks the masks against the checkpoint (see apply_masks for the errors).
  PrunedLayers(const Checkpoint& checkpoint, const Masks& masks, RefitProvider refitted, bool pad);

  /// The widths one layer is written with.
  struct Widths {
    std::int64_t mlp = 0;       ///< MLP units (gate/up rows, down_proj columns)
    std::int64_t heads = 0;     ///< query heads
    std::int64_t kv_heads = 0;  ///< key/value heads
  };
  [[nodiscard]] const std::vector<Widths>& widths() const { return widths_; }
  /// The report so far: the new config (the widest widths), added tensors, padding counts.
  [[nodiscard]] const ApplyReport& report() const { return report_; }
  /// Bias tensors the output gains (mean compensation where the model has none).
  [[nodiscard]] const std::map<std::string, CheckpointEdits::NewTensor>& added() const {
    return added_;
  }
  [[nodiscard]] bool prunes_heads() const { return !att_.empty(); }
  /// The weight tensors tensor() gives new values for (sliced MLP and attention projections).
  [[nodiscard]] std::vector<std::string> rewritten_weights() const;
  /// New values of a tensor (by its checkpoint name, or an added one), nullopt: unchanged.
  [[nodiscard]] std::optional<Eigen::MatrixXd> tensor(const std::string& name);
  /// What was done per (layer, unit kind) for the layers computed so far.
  [[nodiscard]] std::vector<AppliedLayer> applied_layers() const;

 private:
  void compute_layer(int layer);
  const Checkpoint& ckpt_;
  RefitProvider refitted_;
  std::vector<const LayerMask*> mlp_, att_;  // per layer, or empty when the masks have none
  std::vector<HeadPlan> plans_;
  std::vector<Widths> widths_;
  bool compensate_ = false;
  ApplyReport report_;
  std::map<std::string, CheckpointEdits::NewTensor> added_;
  int cached_layer_ = -1;
  std::map<std::string, Eigen::MatrixXd> cache_;
  std::map<std::pair<int, int>, AppliedLayer> applied_;
};

/// The re-fitted (or mean-compensated) kept columns apply_masks writes, from the statistics;
/// checks the masks, options and statistics first (see apply_masks for the errors). Warnings about
/// too few calibration tokens are appended to `warnings`. The checkpoint, masks and statistics
/// must outlive the provider.
[[nodiscard]] RefitProvider refit_provider(const Checkpoint& checkpoint, const Masks& masks,
                                           const CalibrationStatsFile* stats,
                                           const ApplyOptions& options,
                                           std::vector<std::string>& warnings);

/// apply_masks with the kept columns from `refitted` (see prune_pipeline.hpp for the layout
/// rules and errors).
ApplyReport write_pruned_checkpoint(const Checkpoint& checkpoint, const Masks& masks,
                                    const RefitProvider& refitted,
                                    const std::filesystem::path& out_folder,
                                    const CheckpointWriteOptions& write);

}  // namespace qprune::detail
