// Names of the unit kinds (include/qprune/unit_kind.hpp), as masks files and CLI flags spell them.
#include "qprune/unit_kind.hpp"

#include "qprune/error.hpp"

namespace qprune {

const char* unit_kind_name(UnitKind unit) {
  switch (unit) {
    case UnitKind::kMlp:
      return "mlp";
    case UnitKind::kHeads:
      return "heads";
    case UnitKind::kKvGroups:
      return "kv_groups";
    case UnitKind::kHeadsPerGroup:
      return "heads_per_group";
    case UnitKind::kExperts:
      return "experts";
  }
  return "?";
}

UnitKind unit_kind_from_name(const std::string& name) {
  for (UnitKind unit : kUnitKinds)
    if (name == unit_kind_name(unit)) return unit;
  throw InvalidArgument("unknown unit kind '" + name +
                        "'; expected mlp, heads, kv_groups, heads_per_group or experts");
}

}  // namespace qprune
