// The refit error as a set function and its sweep-operator search state (include/qprune/
// refit_objective.hpp; the algebra is in docs/pruning_math.md, section 9).
//
// Goodnight's sweep operator on the augmented Gram [[H, B^T], [B, Y Y^T]]: sweeping the kept
// channels K gives A (the sweep of H, stored whole) and the output row R = [B_K H_KK^{-1},
// B_S - B_K H_KK^{-1} H_KS], whose trace block is the error. Only inner products of R's columns
// enter any error change, so the state stores G = R^T R instead of R: every update below is a
// rank-w change of two n x n matrices and never touches the output dimension.
#include "qprune/refit_objective.hpp"

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/parallel_for.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

using Eigen::Index;
using Eigen::MatrixXd;

std::vector<Index> channels_of(const UnitLayout& layout, const Assignment& keep, bool kept) {
  std::vector<Index> out;
  const int w = layout.unit_width;
  for (int u = 0; u < layout.num_units; ++u)
    if ((keep[static_cast<std::size_t>(u)] != 0) == kept)
      for (int c = 0; c < w; ++c) out.push_back(static_cast<Index>(u) * w + c);
  return out;
}

void check_mask(const UnitLayout& layout, const Assignment& keep, const char* who) {
  if (keep.size() != static_cast<std::size_t>(layout.num_units))
    throw InvalidArgument(std::string(who) + ": mask has " + std::to_string(keep.size()) +
                          " entries, the layer has " + std::to_string(layout.num_units) + " units");
  for (const auto v : keep)
    if (v > 1) throw InvalidArgument(std::string(who) + ": mask entries must be 0 or 1");
}

// tr(a^{-1} g) for a small symmetric a (w x w); w = 1 is a division.
double trace_solve(const MatrixXd& a, const MatrixXd& g) {
  if (a.rows() == 1) return g(0, 0) / a(0, 0);
  return a.partialPivLu().solve(g).trace();
}

}  // namespace

const char* prune_objective_name(PruneObjective objective) {
  return objective == PruneObjective::kRefit ? "refit" : "no-refit";
}

void UnitLayout::validate() const {
  if (num_units < 1) throw InvalidArgument("UnitLayout::num_units must be >= 1");
  if (unit_width < 1) throw InvalidArgument("UnitLayout::unit_width must be >= 1");
  if (num_groups < 1 || num_units % num_groups != 0)
    throw InvalidArgument("UnitLayout::num_groups (" + std::to_string(num_groups) +
                          ") must divide num_units (" + std::to_string(num_units) + ")");
  if (keep_per_group < 1 || keep_per_group > units_per_group())
    throw InvalidArgument("UnitLayout::keep_per_group must be in [1, " +
                          std::to_string(units_per_group()) + "], is " +
                          std::to_string(keep_per_group));
}

RefitObjective::RefitObjective(MatrixXd gram, MatrixXd cross, double target_energy,
                               UnitLayout layout, double damping_rel)
    : layout_(layout),
      gram_(std::move(gram)),
      cross_(std::move(cross)),
      target_energy_(target_energy) {
  layout_.validate();
  const Index n = layout_.num_channels();
  if (gram_.rows() != n || gram_.cols() != n)
    throw InvalidArgument("RefitObjective: the Gram is " + std::to_string(gram_.rows()) + " x " +
                          std::to_string(gram_.cols()) + ", the layout has " + std::to_string(n) +
                          " channels");
  if (cross_.cols() != n)
    throw InvalidArgument("RefitObjective: the cross product has " + std::to_string(cross_.cols()) +
                          " columns, expected " + std::to_string(n));
  if (!gram_.allFinite() || !cross_.allFinite() || !std::isfinite(target_energy_))
    throw InvalidArgument("RefitObjective: statistics hold NaN or Inf");
  if (!(damping_rel > 0.0) || !std::isfinite(damping_rel))
    throw InvalidArgument("RefitObjective: damping must be > 0");
  const double max_diag = gram_.diagonal().cwiseAbs().maxCoeff();
  if (gram_.diagonal().minCoeff() < -1e-9 * max_diag)
    throw InvalidArgument("RefitObjective: the Gram is not positive semidefinite (diagonal entry " +
                          std::to_string(gram_.diagonal().minCoeff()) + ")");
  // Symmetrise exactly (every formula below relies on it), in place: at full size a temporary
  // would be another n^2 doubles.
  for (Index j = 0; j < n; ++j)
    for (Index i = j + 1; i < n; ++i) gram_(i, j) = gram_(j, i) = 0.5 * (gram_(i, j) + gram_(j, i));
  double mean_diag = gram_.diagonal().mean();
  if (!(mean_diag > 0.0)) mean_diag = 1.0;
  const double tiny = static_cast<double>(n) * std::numeric_limits<double>::epsilon() * max_diag;
  auto healthy = [&](const Eigen::LLT<MatrixXd>& llt) {
    if (llt.info() != Eigen::Success) return false;
    const Eigen::VectorXd piv = llt.matrixLLT().diagonal();
    return piv.allFinite() && piv.minCoeff() * piv.minCoeff() > tiny;
  };
  Eigen::LLT<MatrixXd> llt(gram_);
  for (double lambda = damping_rel * mean_diag; !healthy(llt); lambda *= 10.0) {
    if (lambda > 1e6 * mean_diag)
      throw InvalidArgument("RefitObjective: the Gram cannot be factorised even with damping " +
                            std::to_string(lambda));
    gram_.diagonal().array() += lambda - damping_;
    damping_ = lambda;
    llt.compute(gram_);
  }
}

double RefitObjective::error(const Assignment& keep_units) const {
  check_mask(layout_, keep_units, "RefitObjective::error");
  const std::vector<Index> k = channels_of(layout_, keep_units, true);
  if (k.empty()) return target_energy_;
  const Eigen::LLT<MatrixXd> llt(gram_(k, k));
  const MatrixXd b_k = cross_(Eigen::all, k);
  const MatrixXd half = llt.matrixL().solve(b_k.transpose());  // L^{-1} B_K^T
  // A least-squares residual is >= 0; rounding in the difference of two large numbers can push a
  // near-zero error (nothing removed, one-shot) slightly below it.
  return std::max(0.0, target_energy_ - half.squaredNorm());
}

MatrixXd RefitObjective::refit(const Assignment& keep_units) const {
  check_mask(layout_, keep_units, "RefitObjective::refit");
  const std::vector<Index> k = channels_of(layout_, keep_units, true);
  if (k.empty()) throw InvalidArgument("RefitObjective::refit: no unit is kept");
  const Eigen::LLT<MatrixXd> llt(gram_(k, k));
  return llt.solve(cross_(Eigen::all, k).transpose()).transpose();
}

double RefitObjective::error_all_kept() const {
  return error(Assignment(static_cast<std::size_t>(layout_.num_units), 1));
}

MatrixXd RefitObjective::pairwise_surrogate() const {
  const Index n = num_channels();
  const int units = layout_.num_units;
  const int w = layout_.unit_width;
  const Eigen::LLT<MatrixXd> llt(gram_);
  const MatrixXd hinv = llt.solve(MatrixXd::Identity(n, n));
  const MatrixXd wstar = cross_ * hinv;  // the refit with every channel kept
  const MatrixXd g = wstar.transpose() * wstar;
  MatrixXd m(units, units);
  // Removing a set P from the full set costs tr(((H^{-1})_PP)^{-1} G_PP) (the OBS form with W*).
  auto cost = [&](const std::vector<Index>& p) { return trace_solve(hinv(p, p), g(p, p)); };
  std::vector<std::vector<Index>> ch(static_cast<std::size_t>(units));
  for (int u = 0; u < units; ++u)
    for (int c = 0; c < w; ++c) ch[static_cast<std::size_t>(u)].push_back(Index{u} * w + c);
  for (int u = 0; u < units; ++u) m(u, u) = cost(ch[static_cast<std::size_t>(u)]);
  for (int u = 0; u < units; ++u)
    for (int v = u + 1; v < units; ++v) {
      double pair;
      if (w == 1) {
        const double a = hinv(u, u), b = hinv(v, v), c = hinv(u, v);
        pair = (b * g(u, u) - 2.0 * c * g(u, v) + a * g(v, v)) / (a * b - c * c);
      } else {
        std::vector<Index> p = ch[static_cast<std::size_t>(u)];
        p.insert(p.end(), ch[static_cast<std::size_t>(v)].begin(),
                 ch[static_cast<std::size_t>(v)].end());
        pair = cost(p);
      }
      m(u, v) = m(v, u) = 0.5 * (pair - m(u, u) - m(v, v));
    }
  return m;
}

// ---- search state -------------------------------------------------------------------------------

RefitSearchState::RefitSearchState(const RefitObjective& objective, const Assignment& keep_units)
    : objective_(&objective), keep_(keep_units) {
  check_mask(objective.layout(), keep_, "RefitSearchState");
  rebuild();
}

void RefitSearchState::rebuild() {
  const RefitObjective& o = *objective_;
  const Index n = o.num_channels();
  const std::vector<Index> k = channels_of(o.layout(), keep_, true);
  const std::vector<Index> s = channels_of(o.layout(), keep_, false);
  if (k.empty()) throw InvalidArgument("RefitSearchState: at least one unit must be kept");
  const MatrixXd& h = o.gram_;
  const Eigen::LLT<MatrixXd> llt(h(k, k));
  const MatrixXd hinv_k =
      llt.solve(MatrixXd::Identity(static_cast<Index>(k.size()), static_cast<Index>(k.size())));
  const MatrixXd h_ks = h(k, s);
  const MatrixXd coef = hinv_k * h_ks;  // A_KS
  a_.resize(n, n);
  a_(k, k) = -hinv_k;
  a_(k, s) = coef;
  a_(s, k) = coef.transpose();
  a_(s, s) = h(s, s) - h_ks.transpose() * coef;
  MatrixXd r(o.num_outputs(), n);
  const MatrixXd w_k = o.cross_(Eigen::all, k) * hinv_k;  // W'_K
  r(Eigen::all, k) = w_k;
  r(Eigen::all, s) = o.cross_(Eigen::all, s) - w_k * h_ks;
  g_.noalias() = r.transpose() * r;
  error_ = o.target_energy_ - (w_k.cwiseProduct(o.cross_(Eigen::all, k))).sum();
  moves_ = 0;
}

std::vector<int> RefitSearchState::kept_units() const {
  std::vector<int> out;
  for (std::size_t u = 0; u < keep_.size(); ++u)
    if (keep_[u]) out.push_back(static_cast<int>(u));
  return out;
}

std::vector<int> RefitSearchState::removed_units() const {
  std::vector<int> out;
  for (std::size_t u = 0; u < keep_.size(); ++u)
    if (!keep_[u]) out.push_back(static_cast<int>(u));
  return out;
}

MatrixXd RefitSearchState::block_a(int u, int v) const {
  const Index w = objective_->layout().unit_width;
  return a_.block(u * w, v * w, w, w);
}

MatrixXd RefitSearchState::block_g(int u, int v) const {
  const Index w = objective_->layout().unit_width;
  return g_.block(u * w, v * w, w, w);
}

// Flipping unit u alone (sweep in or out) changes the error by -tr(A_UU^{-1} G_UU): A_UU is
// negative definite for a kept unit (the change is >= 0) and positive definite for a removed one.
double RefitSearchState::remove_delta(int unit) const {
  return -trace_solve(block_a(unit, unit), block_g(unit, unit));
}

double RefitSearchState::add_delta(int unit) const {
  return -trace_solve(block_a(unit, unit), block_g(unit, unit));
}

double RefitSearchState::swap_delta(int out, int in) const {
  const Index w = objective_->layout().unit_width;
  if (w == 1) {
    const double aii = a_(out, out), ajj = a_(in, in), aij = a_(out, in);
    const double gii = g_(out, out), gjj = g_(in, in), gij = g_(out, in);
    const double t = aij / aii;
    return -gii / aii - (gjj - 2.0 * gij * t + gii * t * t) / (ajj - aij * t);
  }
  const MatrixXd a = block_a(out, out);
  const MatrixXd g_ii = block_g(out, out);
  const Eigen::PartialPivLU<MatrixXd> lu(a);
  const double first = -lu.solve(g_ii).trace();
  const MatrixXd v = lu.solve(block_a(out, in));  // a^{-1} A_IJ
  const MatrixXd a_jj = block_a(in, in) - block_a(in, out) * v;
  const MatrixXd g_ij = block_g(out, in);
  const MatrixXd g_jj =
      block_g(in, in) - g_ij.transpose() * v - v.transpose() * g_ij + v.transpose() * g_ii * v;
  return first - trace_solve(a_jj, g_jj);
}

void RefitSearchState::all_swap_deltas(MatrixXd& deltas) const {
  if (objective_->layout().unit_width != 1)
    throw InvalidArgument("all_swap_deltas: only for units of one channel");
  const std::vector<int> k = kept_units();
  const std::vector<int> s = removed_units();
  deltas.resize(static_cast<Index>(k.size()), static_cast<Index>(s.size()));
  // Column-major loop: for a removed j, run over the kept i (A and G are symmetric, so A(i, j)
  // is read down column j).
  for (Index jj = 0; jj < deltas.cols(); ++jj) {
    const Index j = s[static_cast<std::size_t>(jj)];
    const double ajj = a_(j, j), gjj = g_(j, j);
    const double* acol = a_.col(j).data();
    const double* gcol = g_.col(j).data();
    for (Index ii = 0; ii < deltas.rows(); ++ii) {
      const Index i = k[static_cast<std::size_t>(ii)];
      const double aii = a_(i, i), gii = g_(i, i);
      const double t = acol[i] / aii;
      deltas(ii, jj) = -gii / aii - (gjj - 2.0 * gcol[i] * t + gii * t * t) / (ajj - acol[i] * t);
    }
  }
}

// Goodnight's sweep (sign +1) / reverse sweep (-1) of the unit's channel block U, with
// a = A_UU and P = A(:, U):  A_rc -= P_r a^{-1} P_c^T (r, c outside U), A_rU = sign P_r a^{-1},
// A_UU = -a^{-1}. The output row changes as R' = R - R_U V with V = a^{-1} A(U, :) outside U and
// I - sign a^{-1} on U, so G' = G - Q V - V^T Q^T + V^T G_UU V with Q = G(:, U). The error drops
// by tr(a^{-1} G_UU).
void RefitSearchState::sweep_unit(int unit, int sign) {
  const Index w = objective_->layout().unit_width;
  if (w == 1) {
    sweep_channel(unit, sign);
    return;
  }
  const Index n = a_.rows();
  const Index u0 = unit * w;
  const MatrixXd a = a_.block(u0, u0, w, w);
  const MatrixXd ainv = a.inverse();
  const MatrixXd p = a_.middleCols(u0, w);  // n x w
  const MatrixXd q = g_.middleCols(u0, w);  // n x w
  const MatrixXd g_uu = g_.block(u0, u0, w, w);
  error_ -= (ainv * g_uu).trace();
  MatrixXd v = ainv * p.transpose();  // w x n
  v.middleCols(u0, w) = MatrixXd::Identity(w, w) - static_cast<double>(sign) * ainv;
  const MatrixXd pa = p * ainv;              // n x w
  const MatrixXd vg = v.transpose() * g_uu;  // n x w
  // A: the rank-w update, then the unit's own rows and columns.
  a_.noalias() -= pa * p.transpose();
  a_.middleCols(u0, w) = static_cast<double>(sign) * pa;
  a_.middleRows(u0, w) = static_cast<double>(sign) * pa.transpose();
  a_.block(u0, u0, w, w) = -ainv;
  // G: G - Q V - V^T Q^T + V^T G_UU V = G - (Q - 0.5 V^T G_UU) V - V^T (Q - 0.5 V^T G_UU)^T.
  const MatrixXd qh = q - 0.5 * vg;
  g_.noalias() -= qh * v;
  g_.noalias() -= v.transpose() * qh.transpose();
  (void)n;
  ++moves_;
}

// The same for one channel, fused: one pass over A and G, column by column in parallel (the
// moves are memory-bound: 2 n^2 doubles read and written per move).
void RefitSearchState::sweep_channel(int p, int sign) {
  const Index n = a_.rows();
  const double ainv = 1.0 / a_(p, p);
  const double gpp = g_(p, p);
  error_ -= ainv * gpp;
  const Eigen::VectorXd col_a = a_.col(p);
  Eigen::VectorXd v = ainv * col_a;
  v[p] = 1.0 - static_cast<double>(sign) * ainv;
  const Eigen::VectorXd qh = g_.col(p) - (0.5 * gpp) * v;
  constexpr Index kBlock = 64;  // columns per task
  detail::parallel_for((n + kBlock - 1) / kBlock,
                       [&](std::int64_t b) {
                         const Index c1 = std::min(n, (static_cast<Index>(b) + 1) * kBlock);
                         for (Index c = static_cast<Index>(b) * kBlock; c < c1; ++c) {
                           double* ac = a_.col(c).data();
                           double* gc = g_.col(c).data();
                           const double* pa = col_a.data();
                           const double* pv = v.data();
                           const double* pq = qh.data();
                           const double f = col_a[c] * ainv, vc = v[c], qc = qh[c];
                           for (Index r = 0; r < n; ++r) {
                             ac[r] -= pa[r] * f;
                             gc[r] -= pq[r] * vc + pv[r] * qc;
                           }
                         }
                       },
                       n >= 256 ? 2 : std::numeric_limits<std::int64_t>::max());
  // The pivot's own row and column.
  const Eigen::VectorXd edge = (static_cast<double>(sign) * ainv) * col_a;
  a_.col(p) = edge;
  a_.row(p) = edge.transpose();
  a_(p, p) = -ainv;
  ++moves_;
}

void RefitSearchState::remove(int unit) {
  if (!kept(unit)) throw InvalidArgument("RefitSearchState::remove: unit is not kept");
  if (kept_units().size() == 1)
    throw InvalidArgument("RefitSearchState::remove: the last kept unit cannot be removed");
  sweep_unit(unit, -1);
  keep_[static_cast<std::size_t>(unit)] = 0;
}

void RefitSearchState::add(int unit) {
  if (kept(unit)) throw InvalidArgument("RefitSearchState::add: unit is already kept");
  sweep_unit(unit, +1);
  keep_[static_cast<std::size_t>(unit)] = 1;
}

}  // namespace qprune
