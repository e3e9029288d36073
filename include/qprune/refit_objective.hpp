// The error a pruned layer leaves after its kept columns are re-fitted by least squares, as a
// function of the kept set: the objective that decides the model's quality once compensation is
// applied (docs/pruning_math.md, sections 5 and 9).
//
// For target outputs y_t (out, e.g. the ORIGINAL model's layer output) and the inputs a_t (n
// channels) that the pruned layer actually sees (e.g. produced by the already-pruned layers),
// keeping the channel set K and re-fitting W' costs
//   E(K) = min_W' sum_t ||y_t - W' a_{t,K}||^2 = ||Y||^2 - tr(B_K (H_KK)^{-1} B_K^T),
//   H = sum_t a_t a_t^T (n x n),  B = sum_t y_t a_t^T (out x n).
// With W* = B H^{-1} (the refit with every channel kept) and S the removed channels this is
//   E(K) = E(all) + tr(W*_S ((H^{-1})_SS)^{-1} W*_S^T),
// the OBS / ZipLM form; when y_t = W a_t, W* = W and E(all) = 0.
//
// RefitSearchState keeps the sweep-operator form of H and of the outputs' inner products for one
// kept set, so that the error change of removing, adding or swapping a unit is O(1) (O(w^3) for
// units of w channels) and carrying a move out is O(n^2): what greedy (OBS), swap descent, tabu
// and annealing on this objective need. Mean compensation (a free output bias) is the same
// objective on centred statistics, which the caller forms.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/refit_objective.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune {

/// The objective a layer's unit choice minimises.
enum class PruneObjective {
  kRefit,    ///< the error left after the least-squares refit (RefitObjective)
  kNoRefit,  ///< the error of dropping the units without refit (the layer QUBO)
};
/// "refit" or "no-refit".
[[nodiscard]] const char* prune_objective_name(PruneObjective objective);

/// Which units make up a layer's choice and how many each constraint group keeps. Units are
/// contiguous blocks of `unit_width` channels; groups are contiguous equal blocks of units (one
/// group for MLP neurons, whole-KV-group units and MHA heads; one per KV group for heads kept per
/// group).
struct UnitLayout {
  int num_units = 0;
  int unit_width = 1;      ///< channels per unit (1 for neurons, head_dim for heads)
  int num_groups = 1;      ///< must divide num_units
  int keep_per_group = 0;  ///< units kept in every group, in [1, units per group]
  [[nodiscard]] int units_per_group() const { return num_units / num_groups; }
  [[nodiscard]] int num_channels() const { return num_units * unit_width; }
  [[nodiscard]] int keep() const { return keep_per_group * num_groups; }
  [[nodiscard]] int group_of(int unit) const { return unit / units_per_group(); }
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// The refit error as a set function (see the top of this file). Holds H (damped) and B.
class RefitObjective {
 public:
  /// gram: H (n x n, symmetric positive semidefinite), cross: B (out x n), target_energy: ||Y||^2.
  /// `damping_rel` > 0: lambda = damping_rel x mean diag(H) is added to H's diagonal when H is not
  /// numerically positive definite, growing 10x until it is (dead units, fewer tokens than
  /// channels); `damping()` reports it and every quantity here uses the damped H. Throws
  /// InvalidArgument on size mismatches, non-finite values, or a Gram that is not positive
  /// semidefinite beyond rounding (a diagonal entry below -1e-9 max|diag|).
  RefitObjective(Eigen::MatrixXd gram, Eigen::MatrixXd cross, double target_energy,
                 UnitLayout layout, double damping_rel = 1e-8);

  [[nodiscard]] const UnitLayout& layout() const { return layout_; }
  [[nodiscard]] int num_channels() const { return static_cast<int>(gram_.rows()); }
  [[nodiscard]] int num_outputs() const { return static_cast<int>(cross_.rows()); }
  [[nodiscard]] const Eigen::MatrixXd& gram() const { return gram_; }  ///< damped H
  [[nodiscard]] const Eigen::MatrixXd& cross() const { return cross_; }
  [[nodiscard]] double target_energy() const { return target_energy_; }
  [[nodiscard]] double damping() const { return damping_; }

  /// E(K) for a unit mask (keep[u] = 1: kept), from a Cholesky factorisation of H_KK: the
  /// reference that every incremental quantity is tested against. O(k^3).
  [[nodiscard]] double error(const Assignment& keep_units) const;
  /// The optimal kept columns W'_K = B_K (H_KK)^{-1} (out x kept channels, increasing order).
  [[nodiscard]] Eigen::MatrixXd refit(const Assignment& keep_units) const;
  /// E with every unit kept, and with none (= ||Y||^2).
  [[nodiscard]] double error_all_kept() const;

  /// Quadratic surrogate for QUBO solvers and export (docs/pruning_math.md, section 9): with
  /// c_u = E(all but u) - E(all) and q_uv = E(all but u, v) - E(all) - c_u - c_v (exact for any
  /// one or two removed units), E(K) ~ E(all) + sum_{u in S} c_u + sum_{u<v in S} q_uv. Returned
  /// as the symmetric unit matrix M with M_uu = c_u, M_uv = q_uv / 2, so that the surrogate is
  /// E(all) + s^T M s with s = 1 - keep.
  [[nodiscard]] Eigen::MatrixXd pairwise_surrogate() const;

 private:
  friend class RefitSearchState;
  UnitLayout layout_;
  Eigen::MatrixXd gram_;
  Eigen::MatrixXd cross_;
  double target_energy_ = 0.0;
  double damping_ = 0.0;
};

/// One kept set of a RefitObjective with the quantities that make moves cheap (see the top of the
/// file): A, the sweep of H over the kept channels (A_KK = -(H_KK)^{-1}, A_KS = (H_KK)^{-1} H_KS,
/// A_SS = H_SS - H_SK (H_KK)^{-1} H_KS), G = R^T R with R = [W'_K, B_S - W'_K H_KS] (the refitted
/// weights and the removed channels' residual correlations), and the current error. Memory 2 n^2
/// doubles. Rounding accumulates with every move; rebuild() recomputes from H and B (O(n^3)) and
/// the search algorithms call it periodically.
class RefitSearchState {
 public:
  /// The state of `keep_units` (any mask, not necessarily feasible; at least one unit kept).
  RefitSearchState(const RefitObjective& objective, const Assignment& keep_units);

  [[nodiscard]] const RefitObjective& objective() const { return *objective_; }
  [[nodiscard]] double error() const { return error_; }
  [[nodiscard]] const Assignment& keep() const { return keep_; }
  [[nodiscard]] bool kept(int unit) const { return keep_[static_cast<std::size_t>(unit)] != 0; }

  /// E(K \ u) - E(K) >= 0 for a kept unit u.
  [[nodiscard]] double remove_delta(int unit) const;
  /// E(K + u) - E(K) <= 0 for a removed unit u.
  [[nodiscard]] double add_delta(int unit) const;
  /// E(K \ out + in) - E(K) for a kept `out` and a removed `in`.
  [[nodiscard]] double swap_delta(int out, int in) const;
  /// For every kept unit i and removed unit j (w = 1 only): delta(i, j) = swap_delta(i, j), written
  /// into `deltas` (kept x removed, in the order of kept_units() / removed_units()). O(k (n - k)).
  void all_swap_deltas(Eigen::MatrixXd& deltas) const;
  [[nodiscard]] std::vector<int> kept_units() const;
  [[nodiscard]] std::vector<int> removed_units() const;

  void remove(int unit);
  void add(int unit);
  void swap(int out, int in) {
    remove(out);
    add(in);
  }
  /// Recomputes A, G and the error from H and B for the current kept set.
  void rebuild();
  /// Moves carried out since the last rebuild.
  [[nodiscard]] std::int64_t moves_since_rebuild() const { return moves_; }

 private:
  // Sweeps (sign +1) or reverse-sweeps (-1) the channel block of `unit` (Goodnight's operator).
  void sweep_unit(int unit, int sign);
  void sweep_channel(int channel, int sign);
  // The w x w blocks of A and G of a unit pair.
  [[nodiscard]] Eigen::MatrixXd block_a(int u, int v) const;
  [[nodiscard]] Eigen::MatrixXd block_g(int u, int v) const;

  const RefitObjective* objective_;
  Assignment keep_;
  Eigen::MatrixXd a_;  // sweep of H over the kept channels
  Eigen::MatrixXd g_;  // R^T R
  double error_ = 0.0;
  std::int64_t moves_ = 0;
};

}  // namespace qprune
