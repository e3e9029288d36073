// The one NLopt loop over QAOA angles, shared by the full-size solver (qaoa_solver.cpp) and the
// warm-start subproblems of the decomposition (warm_start.cpp): the optimiser chosen by
// QaoaOptimizer, stops on the caller's signal, and the best point evaluated kept (NLopt may return
// a worse one after a round-off or forced stop).
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/qaoa/angle_search.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <functional>
#include <vector>

#include "qprune/qaoa_solver.hpp"

namespace qprune::detail::qaoa {

struct AngleSearch {
  QaoaOptimizer optimizer = QaoaOptimizer::kCobyla;  ///< kNone: no search, x stays as it is
  int max_evaluations = 1;
  double xtol_rel = 0.0;
  double ftol_rel = 0.0;  ///< <= 0: not used
  /// The expected energy at `angles` (2p values: gammas, then betas), filling `gradient` when it
  /// is not null (L-BFGS); NaN: stop now, without a value.
  std::function<double(const double* angles, double* gradient)> objective;
  /// Called after each evaluation with the best value so far; true stops the search.
  std::function<bool(double best)> stop_after;
};

/// Minimises search.objective from `angles`, leaving `angles` at the best point evaluated (the
/// start point when nothing was evaluated). Returns the number of evaluations that gave a value.
int minimise_angles(std::vector<double>& angles, const AngleSearch& search);

}  // namespace qprune::detail::qaoa
