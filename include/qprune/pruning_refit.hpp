// Optimal least-squares refit of the kept columns after pruning (the OBS / ZipLM closed form; see
// docs/pruning_math.md). With H = A A^T (or the centred C) and K the kept channels,
//   W_K' = argmin ||W A - W_K' A_K||_F^2 = W H_{:,K} (H_KK)^{-1},
//   error = tr(W_S E_SS W_S^T),   E_SS = H_SS - H_SK H_KK^{-1} H_KS = ((H^{-1})_SS)^{-1},
// the last equality when H is invertible. The error is <= the no-refit error s^T M s.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/pruning_refit.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstdint>
#include <string>

#include "qprune/pruning.hpp"
#include "qprune/qubo_model.hpp"

namespace qprune {

struct RefitOptions {
  /// Tikhonov damping, relative to the mean diagonal of H_KK, added only when H_KK is not
  /// numerically positive definite (semidefinite H: dead neurons, T < n); then multiplied by 10
  /// until the Cholesky factorisation succeeds. Must be > 0.
  double damping_rel = 1e-8;
  /// With stats.mean given: refit on the centred C = G - T mu mu^T and return the bias that keeps
  /// the mean output (the optimum over W_K' and a bias b jointly).
  bool mean_compensation = true;
  void validate() const;
};

struct RefitResult {
  Eigen::MatrixXd kept_columns;  ///< H x k: the new W[:, K] (kept channels in increasing order)
  Eigen::VectorXd bias;          ///< H: b = W mu - W_K' mu_K when centred, else empty
  double error = 0.0;  ///< calibration error of the refitted layer, ||W A - W' A_K - b||^2
  double error_without_refit = 0.0;  ///< s^T M s for the same mask (same centring)
  double damping = 0.0;  ///< absolute damping added to diag(H_KK); 0 when none was needed
};

/// The one rule on calibration tokens for a least-squares refit (apply --refit and prune): with
/// T = `tokens` < `kept_channels` the refit is refused (InvalidArgument naming the numbers, `where`
/// and `remedy`) unless `regularised` (a ridge prior makes it well posed); with T < 4 x kept the
/// returned warning names the numbers; otherwise "".
[[nodiscard]] std::string check_refit_tokens(std::int64_t tokens, std::int64_t kept_channels,
                                             const std::string& where, bool regularised,
                                             const std::string& remedy);

/// Refuses statistics a refit cannot use (InvalidArgument starting with `where`): 0 tokens,
/// NaN/Inf, or an all-zero Gram (the refit would zero the projection and report error 0 -> 0).
void check_refit_statistics(const ActivationStats& stats, const std::string& where);

/// Least-squares refit of the kept channels of `w` (H x n, PyTorch layout) on the calibration
/// statistics `stats` (n x n Gram of the layer input); keep has n channel entries (use
/// channel_mask for units). Throws InvalidArgument on size mismatches or an empty kept set.
[[nodiscard]] RefitResult refit_columns(const Eigen::MatrixXd& w, const ActivationStats& stats,
                                        const Assignment& keep, const RefitOptions& options = {});

/// The error after the optimal refit, tr(W_S E_SS W_S^T), from a Gram matrix (pass the centred
/// gram for the mean-compensated error); cheaper than refit_columns when only a score is needed.
[[nodiscard]] double refit_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& gram,
                                 const Assignment& keep, const RefitOptions& options = {});

}  // namespace qprune
