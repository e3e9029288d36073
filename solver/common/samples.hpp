// Turning the assignments a solver ended with into the result's samples: energies recomputed with
// QuboModel::energy (the reference, so no kernel's rounding ever reaches a report), feasibility
// checked, duplicates merged, best first, at most max_samples kept.
#pragma once

#include <vector>

#include "qprune/solver.hpp"

namespace qprune::detail {

void finalize_samples(const QuboModel& model, std::vector<Assignment> assignments, int max_samples,
                      SolveResult& result);

/// The model a solver should search when it has no native constraint handling, or was asked for
/// the penalty form: `model` itself without constraint groups, else its penalised form. Records
/// the mode (and the weight) in result.info. Throws InvalidArgument for kNative.
[[nodiscard]] QuboModel penalty_form(const QuboModel& model, const SolveOptions& options,
                                     const std::string& solver, SolveResult& result);

}  // namespace qprune::detail
