// One checkpoint layer's pruning problem named by a string, so that tools which take QUBO
// instances (qprune compare) take checkpoint layers too:
//   CKPT:layer=L:unit=mlp|heads|kv_groups|heads_per_group:sparsity=S[:calib=STATS]
//        [:data_free=magnitude|isserlis][:compensation=0|1]
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/layer_instance.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <optional>
#include <string>

#include "qprune/checkpoint_problems.hpp"
#include "qprune/qubo_model.hpp"

namespace qprune {

struct LayerInstanceSpec {
  std::string checkpoint;   ///< checkpoint folder
  std::string calibration;  ///< statistics file; empty: data-free
  LayerProblemSpec problem;
};

/// The spec when `spec` has the form above (its second ':'-field starts with `layer=`), nullopt
/// when it is not a layer spec at all; throws InvalidArgument naming what is wrong otherwise.
[[nodiscard]] std::optional<LayerInstanceSpec> parse_layer_instance(const std::string& spec);
/// Builds the layer's problem (reads only that layer's tensors and statistics).
[[nodiscard]] QuboModel load_layer_instance(const LayerInstanceSpec& spec);
/// A short name for reports: `<folder>.layer5.mlp.s40`.
[[nodiscard]] std::string layer_instance_name(const LayerInstanceSpec& spec);

}  // namespace qprune
