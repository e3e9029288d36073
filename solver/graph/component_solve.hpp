// Solving a model by the connected components of its coupling graph (SolveOptions::
// split_components): the parts are independent, so the minimum of the whole is the sum of the
// parts' minima. Small parts are solved exactly (a proof, usually in microseconds), the others
// with the chosen solver, and the parts' samples are put back together.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/graph/component_solve.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include "qprune/solver.hpp"

namespace qprune::detail::graph {

/// Components of at most this many variables are solved by the exact solver.
inline constexpr int kExactComponentSize = 24;

/// Solves `model` part by part: each component of at most kExactComponentSize variables exactly
/// (a single unconstrained variable directly), the others with `solver`, each with a seed derived
/// from (options.seed, component index), the time limit shared (each part gets what is left), no
/// target energy and no progress callback inside the parts. Sample r of the result joins the
/// r-th best sample of every part (a part's last when it has fewer); energies are recomputed with
/// QuboModel::energy. The status is the weakest of the parts' (optimal only when every part is),
/// then target_reached when the best sample meets SolveOptions::target_energy. A model with a
/// single component is handed to `solver` as it is.
[[nodiscard]] SolveResult solve_by_components(const Solver& solver, const QuboModel& model,
                                              const SolveOptions& options);

}  // namespace qprune::detail::graph
