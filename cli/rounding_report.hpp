// The report lines of --multiple-of (mask, prune): the multiple, the MLP sparsity asked and
// reached, the kept neurons before and after rounding, and the rounding's predicted cost, from
// the masks' run record and entries (LayerMask::unrounded_keep, rounding_cost).
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/rounding_report.hpp is part of the cli program; no library layer may include it"
#endif

#include <string>

#include "cli/report.hpp"
#include "qprune/masks.hpp"

namespace qprune::cli {

/// Adds the rounding lines for masks made with run.multiple_of > 1. `asked` is the MLP sparsity
/// requested; `cost_basis` says what rounding_cost measures (the cost model it was predicted by).
inline void add_rounding_report(Report& r, const Masks& masks, double asked,
                                const std::string& cost_basis) {
  long long kept = 0, unrounded = 0;
  bool all_known = true;
  for (const LayerMask& e : masks.entries) {
    if (e.unit != UnitKind::kMlp) continue;
    kept += e.keep > 0 ? e.keep : static_cast<long long>(e.kept.size());
    unrounded += e.unrounded_keep;
    all_known = all_known && e.unrounded_keep > 0;
  }
  r.add("Multiple of", "multiple_of", masks.run.multiple_of);
  r.add("MLP sparsity asked", "sparsity_asked", asked);
  r.add("MLP sparsity reached", "sparsity_reached", masks.run.effective_sparsity);
  r.add("MLP kept", "mlp_kept", kept);
  if (all_known) {
    r.add("MLP kept unrounded", "mlp_kept_unrounded", unrounded);
    r.add("Rounding cost predicted", "rounding_cost_predicted", masks.run.rounding_cost);
    r.add("Rounding cost basis", "rounding_cost_basis", cost_basis);
  }
}

}  // namespace qprune::cli
