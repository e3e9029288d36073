// What the qaoa solver's files share: the direct statevector run on one (sub)problem, the
// decomposition around it, and the greedy descent both use.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/qaoa/qaoa_internal.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <string>
#include <vector>

#include "qprune/qaoa_solver.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune::detail::qaoa {

/// Runs QAOA on `model` directly (one statevector) and appends the sampled assignments (and the
/// descended best one) to `out`. native: the model's groups are kept with XY mixers (else the
/// model must be the one to search with the X mixer; `feasibility` then supplies the groups whose
/// feasibility probability is reported). Fills counters and info of `result`.
void solve_direct(const QuboModel& model, bool native,
                  const std::vector<CardinalityConstraint>& feasibility, const QaoaOptions& qaoa,
                  const SolveOptions& options, const StopCondition& stop, SolveResult& result,
                  std::vector<Assignment>& out);

/// The decomposition (decomposition.cpp) from `start` (feasible when native), with warm-start
/// QAOA (or solve_direct) on subproblems of min(subproblem_qubits, max_qubits) variables; appends
/// `start` and its final assignment, never of higher energy, to `out`.
void solve_decomposed(const QuboModel& model, bool native, const Assignment& start,
                      const QaoaOptions& qaoa, const SolveOptions& options,
                      const StopCondition& stop, SolveResult& result, std::vector<Assignment>& out);

/// Steepest descent (solver/common/descent.hpp) until no move improves: single flips, or
/// (swaps = true) swaps of a 1 and a 0 within each group plus single flips of the variables
/// outside the groups.
void greedy_descent(const QuboModel& model, Assignment& x, bool swaps);

/// The state space dimension the direct run would simulate (to decide on decomposition).
[[nodiscard]] double direct_dimension(const QuboModel& model, bool native, const QaoaOptions& qaoa);

}  // namespace qprune::detail::qaoa
