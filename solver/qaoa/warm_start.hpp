// Warm-start QAOA (Egger, Marecek, Woerner 2021, "Warm-starting quantum optimization", Quantum 5,
// 479) on the small subproblems of the decomposition: the circuit starts from a product state
// biased towards a classical solution x* and mixes with an operator whose ground state that is.
//
// Regularisation: c_i = eps when x*_i = 0, 1 - eps when x*_i = 1 (eps in (0, 1/2]), so no qubit
// is frozen at a basis state. Qubit i starts in |theta_i> = R_Y(theta_i)|0> = cos(theta_i/2)|0> +
// sin(theta_i/2)|1>, theta_i = 2 asin(sqrt(c_i)), and mixes with Egger's rotated mixer
// H_i = sin(theta_i) X + cos(theta_i) Z = 2|theta_i><theta_i| - I, so |theta_i> is an eigenstate
// and eps = 1/2 is the standard X mixer from |+> (the engine's exp(-i beta X)).
// Constraint groups (exactly k of the group's subproblem variables are 1, native mode): the
// group's factor of the state lives in its C(m, k) feasible configurations, as in the engine's
// feasible subspace. It starts from the same product amplitudes restricted to weight k and
// renormalised, |phi_g>, and mixes with 2|phi_g><phi_g| - I: the same rule as a free qubit (a
// free qubit is a group of one variable without a count), so every sample is feasible and
// |phi_g> is again the mixer's eigenstate (the projector form of Bartschi and Eidenbenz 2020).
// One mixer layer is exp(-i beta sum_f (2 P_f - I)) over the factors f; up to a global phase
// each factor maps psi -> psi + (exp(-2 i beta) - 1) |phi_f><phi_f|psi>.
//
// Why not the Engine of statevector.hpp: its fused kernels rotate every qubit about the same X
// axis (or swap pairs for XY), while here every factor has its own axis. Subproblems hold at most
// a few thousand amplitudes (12 qubits: 4096), where this plain loop runs a layer in tens of
// microseconds.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/qaoa/warm_start.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "qprune/qaoa_solver.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune::detail::qaoa {

struct WarmStartRun {
  /// <C> of the final state, in the subproblem's energy units.
  double expected_energy = std::numeric_limits<double>::quiet_NaN();
  /// The lowest-energy sampled assignment (subproblem variables) and its energy.
  Assignment best;
  double best_energy = std::numeric_limits<double>::infinity();
  /// Optimised angles (gammas, then betas; gammas in units of the normalised cost C / B with
  /// B = QuboModel::max_flip_change(), as in the engine), to start the next subproblem from.
  std::vector<double> angles;
  int evaluations = 0;
  std::uint64_t dimension = 0;
};

/// Warm-start QAOA on `model` (at most 30 variables) from the classical solution `start` (feasible
/// for the model's groups when `native`; the groups are ignored otherwise): `qaoa.layers` layers,
/// angles from `initial_angles` (2 p values) or else the linear ramp of qaoa.ramp_dt, optimised by
/// COBYLA for at most `max_evaluations` evaluations of <C>, then qaoa.shots samples drawn with
/// `seed`. Throws ResourceError when the state does not fit `memory_limit_bytes`.
[[nodiscard]] WarmStartRun run_warm_start(const QuboModel& model, bool native,
                                          const Assignment& start, const QaoaOptions& qaoa,
                                          const std::vector<double>& initial_angles,
                                          int max_evaluations, std::uint64_t seed,
                                          std::optional<std::uint64_t> memory_limit_bytes,
                                          const StopCondition& stop);

}  // namespace qprune::detail::qaoa
