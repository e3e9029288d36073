// Optimal least-squares refit of the kept input columns (OBS / ZipLM closed form) and the error it
// leaves; see include/qprune/pruning_refit.hpp and docs/pruning_math.md for the derivation.
#include <Eigen/Cholesky>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "qprune/pruning_refit.hpp"

namespace qprune {
namespace {

using Index = Eigen::Index;

struct Split {
  std::vector<Index> kept;
  std::vector<Index> removed;
};

Split split_mask(const Assignment& keep, Index n, const char* who) {
  if (keep.size() != static_cast<std::size_t>(n)) {
    throw InvalidArgument(std::string(who) + ": mask has " + std::to_string(keep.size()) +
                          " entries, the weight has " + std::to_string(n) + " input channels");
  }
  Split s;
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] > 1) throw InvalidArgument(std::string(who) + ": mask entries must be 0 or 1");
    (keep[i] ? s.kept : s.removed).push_back(static_cast<Index>(i));
  }
  return s;
}

// Cholesky of H_KK, damped only when it is not numerically positive definite: a pivot below
// sqrt(k eps max diag) means H_KK is singular to working precision (dead neurons, T < n), and the
// undamped solve would amplify rounding. The damping grows by 10x until the factorisation holds.
struct Factor {
  Eigen::LLT<Eigen::MatrixXd> llt;
  double damping = 0.0;
};

Factor factor_kept(const Eigen::MatrixXd& h_kk, double damping_rel) {
  const Index k = h_kk.rows();
  const double max_diag = h_kk.diagonal().maxCoeff();
  double mean_diag = h_kk.diagonal().mean();
  if (!(mean_diag > 0.0)) mean_diag = 1.0;  // all kept units dead: any damping scale works
  const double tiny =
      static_cast<double>(k) * std::numeric_limits<double>::epsilon() * std::max(max_diag, 0.0);
  Factor f;
  auto healthy = [&] {
    if (f.llt.info() != Eigen::Success) return false;
    const Eigen::VectorXd pivots = f.llt.matrixLLT().diagonal();
    return pivots.allFinite() && pivots.minCoeff() * pivots.minCoeff() > tiny;
  };
  f.llt.compute(h_kk);
  for (double lambda = damping_rel * mean_diag; !healthy(); lambda *= 10.0) {
    if (lambda > 1e6 * mean_diag) {
      throw InvalidArgument("refit: H_KK could not be factorised even with damping " +
                            std::to_string(lambda));
    }
    Eigen::MatrixXd damped = h_kk;
    damped.diagonal().array() += lambda;
    f.llt.compute(damped);
    f.damping = lambda;
  }
  return f;
}

}  // namespace

void RefitOptions::validate() const {
  if (!(damping_rel > 0.0) || !std::isfinite(damping_rel)) {
    throw InvalidArgument("RefitOptions::damping_rel must be > 0, is " +
                          std::to_string(damping_rel));
  }
}

std::string check_refit_tokens(std::int64_t tokens, std::int64_t kept_channels,
                               const std::string& where, bool regularised,
                               const std::string& remedy) {
  const std::string numbers = std::to_string(tokens) + " calibration tokens for " +
                              std::to_string(kept_channels) + " kept channels of " + where;
  // Fewer tokens than kept channels: H_KK has rank <= T < k, the least-squares refit has a whole
  // subspace of exact fits and the damping picks one that fits the calibration text, not the
  // model. Only a prior (ridge) makes the problem well posed.
  if (tokens < kept_channels && !regularised)
    throw InvalidArgument(numbers + "; a refit needs more tokens than kept channels (" + remedy +
                          ")");
  if (tokens < 4 * kept_channels)
    return "only " + numbers +
           "; a refit wants at least 4x as many tokens as kept channels, or it fits the "
           "calibration text rather than the model";
  return "";
}

void check_refit_statistics(const ActivationStats& stats, const std::string& where) {
  if (stats.num_tokens < 1)
    throw InvalidArgument(where +
                          ": the statistics hold 0 calibration tokens; a refit needs "
                          "measured statistics (qprune calibrate)");
  if (!stats.gram.allFinite() || (stats.mean.size() != 0 && !stats.mean.allFinite()))
    throw InvalidArgument(where + ": the statistics hold NaN/Inf values");
  // A Gram is PSD, so a zero trace means every entry is zero: no activation reached this layer
  // (or the file was made up). The refit would fit W' A = 0 and zero the whole projection.
  if (stats.gram.size() == 0 || !(stats.gram.diagonal().sum() > 0.0))
    throw InvalidArgument(where +
                          ": the Gram matrix is all zeros (no calibration signal); a refit "
                          "would zero every kept column. Recompute the statistics with qprune "
                          "calibrate on real text, or apply without --refit");
}

RefitResult refit_columns(const Eigen::MatrixXd& w, const ActivationStats& stats,
                          const Assignment& keep, const RefitOptions& options) {
  options.validate();
  stats.validate();
  if (stats.gram.rows() != w.cols()) {
    throw InvalidArgument("refit_columns: gram is " + std::to_string(stats.gram.rows()) +
                          " square, the weight has " + std::to_string(w.cols()) + " columns");
  }
  const Split s = split_mask(keep, w.cols(), "refit_columns");
  if (s.kept.empty()) throw InvalidArgument("refit_columns: no channel is kept");
  const bool centered = options.mean_compensation && stats.mean.size() > 0;
  const Eigen::MatrixXd centred_storage = centered ? centered_gram(stats) : Eigen::MatrixXd();
  const Eigen::MatrixXd& h = centered ? centred_storage : stats.gram;

  RefitResult r;
  const Factor f = factor_kept(h(s.kept, s.kept), options.damping_rel);
  r.damping = f.damping;
  // Normal equations of min ||W A - W' A_K||^2: W' H_KK = W H_{:,K}, so W'^T = H_KK^{-1} (W
  // H_{:,K})^T.
  const Eigen::MatrixXd rhs = w * h(Eigen::all, s.kept);  // H_out x k
  r.kept_columns = f.llt.solve(rhs.transpose()).transpose();
  // D = W - W'_ext (W' on K, 0 on S): the residual is D a_t (minus the bias when centred), so the
  // error of the weights actually returned is tr(D H D^T), damping included.
  Eigen::MatrixXd d = w;
  d(Eigen::all, s.kept) -= r.kept_columns;
  r.error = (d * h).cwiseProduct(d).sum();
  if (!s.removed.empty()) {
    const Eigen::MatrixXd w_s = w(Eigen::all, s.removed);
    r.error_without_refit = (w_s * h(s.removed, s.removed)).cwiseProduct(w_s).sum();
  }
  if (centered) r.bias = d * stats.mean;  // W mu - W' mu_K: keeps the mean output
  return r;
}

double refit_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& gram, const Assignment& keep,
                   const RefitOptions& options) {
  options.validate();
  if (gram.rows() != w.cols() || gram.cols() != w.cols()) {
    throw InvalidArgument("refit_error: gram must be " + std::to_string(w.cols()) + " square");
  }
  const Split s = split_mask(keep, w.cols(), "refit_error");
  if (s.removed.empty()) return 0.0;
  const Eigen::MatrixXd w_s = w(Eigen::all, s.removed);
  Eigen::MatrixXd e_ss = gram(s.removed, s.removed);
  if (!s.kept.empty()) {
    // Schur complement E_SS = H_SS - H_SK H_KK^{-1} H_KS = ((H^{-1})_SS)^{-1} for invertible H.
    const Factor f = factor_kept(gram(s.kept, s.kept), options.damping_rel);
    const Eigen::MatrixXd h_ks = gram(s.kept, s.removed);
    e_ss -= h_ks.transpose() * f.llt.solve(h_ks);
  }
  return (w_s * e_ss).cwiseProduct(w_s).sum();
}

}  // namespace qprune
