// Direct references for the pruning QUBO: the output error of a mask measured from the activations
// themselves (never through M), and the mean-compensating bias. Tests use them as the reference
// the QUBO energy must reproduce; `apply` uses compensation_bias.
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "qprune/pruning.hpp"

namespace qprune {
namespace {

std::vector<Eigen::Index> removed_channels(const Assignment& keep, Eigen::Index n,
                                           const char* who) {
  if (keep.size() != static_cast<std::size_t>(n)) {
    throw InvalidArgument(std::string(who) + ": mask has " + std::to_string(keep.size()) +
                          " entries, the weight has " + std::to_string(n) + " input channels");
  }
  std::vector<Eigen::Index> s;
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] > 1) throw InvalidArgument(std::string(who) + ": mask entries must be 0 or 1");
    if (keep[i] == 0) s.push_back(static_cast<Eigen::Index>(i));
  }
  return s;
}

void check_activations(const Eigen::MatrixXd& w, const Eigen::MatrixXd& a, const char* who) {
  if (a.rows() != w.cols()) {
    throw InvalidArgument(std::string(who) + ": activations have " + std::to_string(a.rows()) +
                          " rows, the weight has " + std::to_string(w.cols()) + " columns");
  }
}

}  // namespace

double reconstruction_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& activations,
                            const Assignment& keep) {
  check_activations(w, activations, "reconstruction_error");
  const auto s = removed_channels(keep, w.cols(), "reconstruction_error");
  if (s.empty()) return 0.0;
  // The full output minus the pruned output is exactly the removed channels' contribution.
  return (w(Eigen::all, s) * activations(s, Eigen::all)).squaredNorm();
}

double reconstruction_error_compensated(const Eigen::MatrixXd& w,
                                        const Eigen::MatrixXd& activations,
                                        const Assignment& keep) {
  check_activations(w, activations, "reconstruction_error_compensated");
  const auto s = removed_channels(keep, w.cols(), "reconstruction_error_compensated");
  if (s.empty() || activations.cols() == 0) return 0.0;
  const Eigen::MatrixXd a_s = activations(s, Eigen::all);
  const Eigen::VectorXd mu_s = a_s.rowwise().mean();
  return (w(Eigen::all, s) * (a_s.colwise() - mu_s)).squaredNorm();
}

Eigen::VectorXd compensation_bias(const Eigen::MatrixXd& w, const Eigen::VectorXd& mean,
                                  const Assignment& keep) {
  if (mean.size() != w.cols()) {
    throw InvalidArgument("compensation_bias: mean has " + std::to_string(mean.size()) +
                          " entries, the weight has " + std::to_string(w.cols()) + " columns");
  }
  const auto s = removed_channels(keep, w.cols(), "compensation_bias");
  if (s.empty()) return Eigen::VectorXd::Zero(w.rows());
  return w(Eigen::all, s) * mean(s);
}

}  // namespace qprune
