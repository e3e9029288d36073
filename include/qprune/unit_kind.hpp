// What one pruning unit stands for: one QUBO variable of a layer problem, one index of a mask
// entry, one value of the CLI's --unit / --head-shape. One enum for the builders, masks files,
// pipeline and CLI (the names are those of masks files and flags).
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/unit_kind.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <string>

namespace qprune {

enum class UnitKind {
  kMlp,    ///< one MLP neuron: a gate/up row, a down_proj input column
  kHeads,  ///< one query head of an MHA layer (num_kv_heads == num_heads): head_dim o_proj channels
  kKvGroups,  ///< one KV group: its query heads' channels and the group's k/v rows, removed
              ///< together
  /// one query head of a GQA layer, the same number kept in every KV group (one "keep k/groups"
  /// constraint per group)
  kHeadsPerGroup,
  kExperts,  ///< one routed expert of a MoE layer: its tensors and its router row, removed together
};

/// Every kind, in the order of the enum.
inline constexpr UnitKind kUnitKinds[] = {UnitKind::kMlp, UnitKind::kHeads, UnitKind::kKvGroups,
                                          UnitKind::kHeadsPerGroup, UnitKind::kExperts};

/// "mlp", "heads", "kv_groups", "heads_per_group", "experts".
[[nodiscard]] const char* unit_kind_name(UnitKind unit);
/// The unit with that name; throws InvalidArgument listing the names.
[[nodiscard]] UnitKind unit_kind_from_name(const std::string& name);
/// True for the attention kinds (o_proj input channels), false for MLP neurons and experts.
[[nodiscard]] constexpr bool is_attention(UnitKind unit) {
  return unit == UnitKind::kHeads || unit == UnitKind::kKvGroups ||
         unit == UnitKind::kHeadsPerGroup;
}

}  // namespace qprune
