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
#include <optional>

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

/// apply_masks with the kept columns from `refitted` (see prune_pipeline.hpp for the layout
/// rules and errors).
ApplyReport write_pruned_checkpoint(const Checkpoint& checkpoint, const Masks& masks,
                                    const RefitProvider& refitted,
                                    const std::filesystem::path& out_folder,
                                    const CheckpointWriteOptions& write);

}  // namespace qprune::detail
