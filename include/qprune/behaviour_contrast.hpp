// Behaviour-targeted pruning (docs/pruning_math.md, section 11): one layer's contrastive problem
// from two calibration statistics of the same checkpoint, B (the behaviour to preserve, the usual
// calibration text) and A (the behaviour to suppress, or to protect):
//   E(x) = err_B(x) - w err_A(x),     w = lambda N_B / N_A,
// err_S(x) = (1-x)^T (G_S o W^T W) (1-x) the layer's output error on set S (section 1), and
// N_S = tr(W G_S W^T) = err_S(nothing kept) the layer's output energy on S. With this scale
// lambda = 1 weighs a relative error on A as much as the same relative error on B. lambda > 0
// suppresses A (the QUBO is indefinite); lambda < 0 protects A (E = err_B + |lambda| ... , PSD).
// Because err is linear in the Gram, the problem is the ordinary pruning QUBO of the combined
// Gram G_B - w G_A, built by the same builders.
//
// With mean compensation (families that hold a bias) the bias apply writes comes from B's mean,
// so B's Gram is centred (C_B = G_B - T_B mu_B mu_B^T) and A's is its scatter around B's mean,
//   G_A|B = G_A - T_A (mu_A mu_B^T + mu_B mu_A^T) + T_A mu_B mu_B^T,
// i.e. err_A is A's output error after the bias that is actually written.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/behaviour_contrast.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <optional>
#include <string>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/checkpoint_problems.hpp"
#include "qprune/pruning.hpp"

namespace qprune {

/// The largest |lambda| accepted: beyond it B's term is under 1 % of A's at equal relative error,
/// the problem is "damage A whatever B" (docs/pruning_math.md 11.4).
inline constexpr double kMaxBehaviourWeight = 100.0;

/// The combined Gram of one layer and its scale.
struct ContrastiveGram {
  Eigen::MatrixXd gram;           ///< G_B' - w G_A' (channels x channels)
  double preserve_energy = 0.0;   ///< N_B = tr(W G_B' W^T)
  double contrast_energy = 0.0;   ///< N_A = tr(W G_A' W^T)
  double raw_weight = 0.0;        ///< w = lambda N_B / N_A
  Eigen::MatrixXd preserve_gram;  ///< G_B' (kept for the per-layer report)
  Eigen::MatrixXd contrast_gram;  ///< G_A'
};

/// The combined Gram for weight `w` (H x channels), statistics B (`preserve`) and A (`contrast`)
/// of the same channels, and the normalised weight lambda. `centre`: B centred, A around B's mean
/// (both need means). Throws InvalidArgument on size mismatch, |lambda| > kMaxBehaviourWeight, a
/// non-finite lambda, or a set whose output energy is 0 (nothing to compare), naming `what`.
[[nodiscard]] ContrastiveGram contrastive_gram(const Eigen::MatrixXd& w,
                                               const ActivationStats& preserve,
                                               const ActivationStats& contrast, double lambda,
                                               bool centre, const std::string& what);

/// Protect mode's statistics for the least-squares refit: the kept columns that minimise
/// err_B + w err_A with the masks' weight w = |lambda| N_B / N_A (contrastive_gram's, same
/// centring), i.e. the refit on both sets with A's tokens weighted by w:
///   G = G_B + w G_A,  T = T_B + w T_A,  mu = (T_B mu_B + w T_A mu_A) / T,
/// so that the centred scatter G - T mu mu^T is the weighted sum of both sets' scatters around
/// the common mean (the bias that serves both). T is stored rounded to tokens and G, scaled by
/// round(T) / T, stays consistent with it: the refit is invariant to that common factor. `lambda`
/// as signed in the objective (< 0: protect); throws InvalidArgument for lambda >= 0 (a suppress
/// objective is indefinite: its least squares has no minimum) and as contrastive_gram.
[[nodiscard]] ActivationStats protected_refit_statistics(const Eigen::MatrixXd& w,
                                                         const ActivationStats& preserve,
                                                         const ActivationStats& contrast,
                                                         double lambda, bool centre,
                                                         const std::string& what);

/// err(x) = ||W diag(removed channels) A||^2 from a Gram: tr(W_S G_SS W_S^T) over the removed
/// channels S of the unit mask `keep` (unit_width channels per unit).
[[nodiscard]] double gram_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& gram,
                                const Assignment& keep, int unit_width);

/// Per-unit removal cost of a Gram: M_uu = sum over the unit's channels c, c' of G_cc'(W^T W)_cc'.
[[nodiscard]] Eigen::VectorXd unit_removal_costs(const Eigen::MatrixXd& w,
                                                 const Eigen::MatrixXd& gram, int unit_width);

/// Suppress mode's saturation weight: the lambda above which the single-removal scores
/// d_u = c_B,u / N_B - lambda c_A,u / N_A remove exactly the `remove` units with the largest
/// c_A,u / N_A, i.e. the most A-active units whatever B says. 0 when every lambda >= 0 does.
[[nodiscard]] double saturation_weight(const Eigen::VectorXd& preserve_cost,
                                       const Eigen::VectorXd& contrast_cost, double preserve_energy,
                                       double contrast_energy, int remove);

/// What a contrastive layer problem is, beyond its LayerProblem.
struct ContrastiveLayer {
  LayerProblem problem;  ///< energy E(x) = err_B(x) - w err_A(x)
  double preserve_energy = 0.0;
  double contrast_energy = 0.0;
  double raw_weight = 0.0;
  double saturation = 0.0;  ///< saturation_weight (suppress mode), else 0
  Eigen::MatrixXd weight;   ///< W (H x channels), for the per-mask errors
  Eigen::MatrixXd preserve_gram, contrast_gram;
  /// err_B(x) / N_B and err_A(x) / N_A of a unit mask.
  [[nodiscard]] double preserve_relative_error(const Assignment& keep) const;
  [[nodiscard]] double contrast_relative_error(const Assignment& keep) const;
};

/// One layer's contrastive problem of a checkpoint: `spec` as build_layer_problem (calibration
/// statistics only: not the refit objective, not data-free), `preserve` B, `contrast` A, lambda
/// `behaviour_weight`. Both files are checked against the checkpoint (same model hash), must
/// differ, and hold the unit kind. Throws InvalidArgument naming the files and numbers; the files
/// are assumed to have passed check_contrast_files.
[[nodiscard]] ContrastiveLayer build_contrastive_layer(const Checkpoint& checkpoint,
                                                       const CalibrationStatsFile& preserve,
                                                       const CalibrationStatsFile& contrast,
                                                       const LayerProblemSpec& spec,
                                                       double behaviour_weight);

/// Checks two statistics files for a contrast: each of this checkpoint (model hash, shapes), not
/// the same file or the same content (equal token counts and an equal first Gram), and each with
/// at least as many tokens as the largest Gram has channels (fewer: the Gram is rank-deficient
/// and the contrast is fitted to a handful of directions). Throws InvalidArgument naming the files
/// and the numbers.
void check_contrast_files(const Checkpoint& checkpoint, const CalibrationStatsFile& preserve,
                          const CalibrationStatsFile& contrast);

/// Baseline (a) of issue 21: keep, per constraint group, the units with the smallest mean
/// per-token output energy difference between A and B,
///   s_u = (c_A,u / T_A) - (c_B,u / T_B),   c_S,u = unit_removal_costs on the (uncentred) Gram,
/// i.e. remove the units whose squared activation, weighted by their weight norm, is largest on A
/// relative to B. Independent of lambda.
[[nodiscard]] Assignment contrastive_diagonal_top_k(const LayerProblem& problem,
                                                    const Eigen::MatrixXd& weight,
                                                    const ActivationStats& preserve,
                                                    const ActivationStats& contrast);

}  // namespace qprune
