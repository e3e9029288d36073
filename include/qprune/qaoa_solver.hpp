// Simulated QAOA ("qaoa"): the Quantum Approximate Optimisation Algorithm run on a statevector
// simulator. p layers of the phase exp(-i gamma_l C) and a mixer exp(-i beta_l B) act on the
// mixer's ground state; the angles are optimised classically (NLopt) to minimise <C>, then
// `shots` bitstrings are sampled from the final state. Under constraint groups the native mode
// starts from Dicke states and uses Hamming-weight-preserving XY mixers, so every sample is
// feasible; it can store only the feasible amplitudes (subspace mode). Problems larger than the
// statevector are decomposed: from the greedy solver's answer, subproblems of a few variables
// chosen by energy impact are solved by warm-start QAOA and accepted only when the whole energy
// drops.
//
// Angle units: the phase uses the normalised cost C / B with B = QuboModel::max_flip_change()
// (the largest change one flip can make; 1 when the model has no coefficients), so one flip moves
// the normalised cost by at most 1 and angles of order 1 are meaningful for every model.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/qaoa_solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cstdint>
#include <vector>

#include "qprune/solver.hpp"

namespace qprune {

/// Classical optimiser of the angles (NLopt).
enum class QaoaOptimizer {
  kCobyla,      ///< derivative-free (NLopt LN_COBYLA)
  kNelderMead,  ///< derivative-free (NLopt LN_NELDERMEAD)
  kLbfgs,       ///< L-BFGS (NLopt LD_LBFGS) with exact gradients from an adjoint pass
  kNone,        ///< no optimisation: the initial angles are used as they are
};

/// How the angles start.
enum class QaoaInit {
  kInterp,      ///< optimise p = 1 from the linear ramp, then p -> p + 1 by INTERP (Zhou et al.
                ///< 2020, PRX 10, 021067) up to QaoaOptions::layers
  kLinearRamp,  ///< gamma_l = (l + 0.5) / p dt, beta_l = (1 - (l + 0.5) / p) dt (l = 0..p-1),
                ///< dt = QaoaOptions::ramp_dt, optimised directly at p = layers
  kFixed,       ///< QaoaOptions::gammas / betas (then optimised unless the optimiser is kNone)
};

enum class QaoaPrecision { kDouble, kFloat };

/// Mixer under constraint groups (without groups every mixer is the X mixer).
enum class QaoaMixer {
  kXyRing,      ///< trotterised ring: even pairs, odd pairs, then the wrap pair
  kXyComplete,  ///< trotterised complete graph: all pairs (a < b) in lexicographic order
};

/// Which amplitudes are stored under constraint groups in the native mode.
enum class QaoaSpace {
  kAuto,      ///< the subspace whenever there are groups (it is never larger)
  kFull,      ///< all 2^n amplitudes (the infeasible ones stay 0)
  kSubspace,  ///< only the feasible ones: 2^free * prod_g C(m_g, k_g)
};

struct QaoaOptions {
  /// Number of QAOA layers p, >= 1.
  int layers = 3;
  QaoaInit init = QaoaInit::kInterp;
  /// Total "time" of the linear ramp (see QaoaInit::kLinearRamp), > 0. 0.75 on the normalised
  /// cost is a short adiabatic-like path that works well at p <= 5 on random QUBOs.
  double ramp_dt = 0.75;
  /// Fixed angles for QaoaInit::kFixed (same length, >= 1; `layers` is then their length).
  std::vector<double> gammas;
  std::vector<double> betas;
  /// The decomposition's warm-start subproblems use COBYLA unless this is kNone.
  QaoaOptimizer optimizer = QaoaOptimizer::kLbfgs;
  /// Objective evaluations per optimisation (per p with INTERP), >= 1.
  int max_evaluations = 200;
  /// Relative tolerance on the angles at which the optimiser stops, >= 0.
  double xtol_rel = 1e-6;
  /// Relative change of <C> below which the optimiser stops, >= 0 (0: off). At p >= 3 L-BFGS
  /// usually spends the whole budget on slow gains; 1e-4 halves the evaluations there for a
  /// slightly higher <C> (BENCHMARKS.md, "qaoa: depth study").
  double ftol_rel = 0.0;
  QaoaPrecision precision = QaoaPrecision::kDouble;
  QaoaMixer mixer = QaoaMixer::kXyRing;
  QaoaSpace space = QaoaSpace::kAuto;
  /// Bitstrings sampled from the final state, >= 1 (reproducible from SolveOptions::seed).
  int shots = 1000;
  /// Improve the best sampled bitstring by a greedy descent (single flips, or swaps within a
  /// group in the native constraint mode) and add it to the samples.
  bool greedy_descent = true;
  /// Largest state space simulated directly: 2^max_qubits amplitudes (full: n <= max_qubits;
  /// subspace: its dimension). Larger problems are decomposed into subproblems of at most
  /// max_qubits variables. In [1, 40].
  int max_qubits = 20;
  /// Decomposition: at most this many rounds of subproblem solving (fewer at the time limit, after
  /// stall_rounds without an improvement, or when every variable has seeded a subproblem since the
  /// last improvement), >= 1.
  int decomposition_rounds = 200;
  /// Decomposition: variables per subproblem (at most max_qubits), in [2, 30]. Chosen by energy
  /// impact around the incumbent: a seed with the smallest flip cost (within its group, among the
  /// variables of its value), grown over the strongest couplings to the set, ones and zeros of a
  /// group in balance; the rest stays clamped at the incumbent.
  int subproblem_qubits = 12;
  /// Decomposition: solve each subproblem with warm-start QAOA (Egger et al. 2021, Quantum 5, 479:
  /// initial product state and mixer biased towards the incumbent) instead of the plain engine run
  /// (X mixer from |+>, or XY mixers from Dicke states, INTERP angles from scratch).
  bool warm_start = true;
  /// Warm start: regularisation eps of the classical solution, c_i = eps or 1 - eps, in (0, 0.5]
  /// (0.5: the plain |+> start and X mixer). 0.35 rather than Egger et al.'s 0.25: at 0.25 the
  /// samples of a 12-qubit subproblem stay so close to the incumbent that 3 of 5 dense random
  /// n = 22 QUBOs ended at a worse local minimum (BENCHMARKS.md, "Issue 17: hybrid qaoa").
  double warm_epsilon = 0.35;
  /// Warm start: optimiser evaluations when a subproblem starts from the previous subproblem's
  /// angles (the first one, and any after a change of size, gets max_evaluations), >= 1.
  int transfer_evaluations = 20;
  /// Decomposition: rounds in a row without an improvement after which it stops, >= 1.
  int stall_rounds = 50;

  /// Throws InvalidArgument naming the field and the violated bound.
  void validate() const;
};

class QaoaSolver final : public Solver {
 public:
  explicit QaoaSolver(QaoaOptions options = {});
  [[nodiscard]] std::string name() const override { return "qaoa"; }
  /// Counters: "expected_energy" (<C> of the final state, in model units, of the searched model:
  /// the penalised one in the penalty mode), "energy_std", "optimum_probability" (mass on the
  /// states with the minimal diagonal), "feasible_probability", "approximation_ratio"
  /// ((<C> - Cmax) / (Cmin - Cmax): 1 at the optimum, 0 at the worst state), "layer_time_s"
  /// (mean time of one layer), "diagonal_time_s", "state_gib", "evaluations" (all state
  /// evaluations, the per-depth statistics included), "qubits"; per optimised depth k (every k
  /// with INTERP): "expected_energy_p<k>", "optimum_probability_p<k>", "approximation_ratio_p<k>";
  /// with INTERP "interp_restarts": depths whose search from the INTERP point ended above the
  /// k - 1 optimum and was restarted from the k - 1 angles plus an identity layer, so that
  /// expected_energy_p<k> is non-increasing in k (up to round-off).
  /// Info: "constraint_mode", "mixer", "space", "precision", "optimizer", "angles_p<k>"
  /// (gammas; betas after optimisation at p = k), "evaluations_p<k>" (optimiser evaluations at
  /// depth k, both searches when restarted), "restart_p<k>", "decomposition" (a summary, or
  /// "none" when solved directly), "round_log" (decomposed: one entry per round, "; "-separated:
  /// round, subproblem size, <C> and the best sampled energy both as whole-model energies, whether
  /// accepted, and the round's seconds). Decomposed counters: "start_energy" (the greedy warm
  /// start's energy), "decomposition_rounds", "accepted_rounds", "subproblem_qubits".
  /// The decomposed result is never above its warm start: the greedy solver's answer with the
  /// same SolveOptions (seed, reads), and a round's assignment replaces the incumbent only when
  /// QuboModel::energy says it is strictly lower.
  /// Throws ResourceError when even the decomposition's subproblem does not fit in memory: the
  /// statevector run needs dimension x (8 + s x b) bytes (the cost diagonal, then s states of
  /// b = 16 bytes per amplitude in double, 8 in float; s = 2 with L-BFGS for the adjoint pass,
  /// else 1), checked against SolveOptions::memory_limit_bytes (each subproblem when decomposed;
  /// a warm-start subproblem needs dimension x 44 bytes: masks, diagonal and two double states).
  [[nodiscard]] SolveResult solve(const QuboModel& model,
                                  const SolveOptions& options) const override;
  [[nodiscard]] const QaoaOptions& options() const { return options_; }

 private:
  QaoaOptions options_;
};

/// QAOA angles in the solver's units (see the top of this file), one gamma and one beta per layer.
struct QaoaAngles {
  std::vector<double> gammas;
  std::vector<double> betas;
};

/// The angles QaoaSolver optimises for `model` solved directly (X mixer: a model without
/// constraint groups, e.g. QuboModel::penalized()), with `options` (layers, init, optimiser,
/// evaluations) and `seed`: the angles the OpenQASM writer takes (WriteOptions::qaoa_gammas,
/// qaoa_betas). Throws InvalidArgument for a model with groups or more variables than
/// options.max_qubits (the statevector: give the angles, or write a subproblem).
[[nodiscard]] QaoaAngles optimised_qaoa_angles(const QuboModel& model,
                                               const QaoaOptions& options = {},
                                               std::uint64_t seed = 0);

}  // namespace qprune
