// The pruning QUBO against direct measurements: for random gated-MLP layers and attention layers
// built here, the QUBO energy of a mask must equal the output error measured by zeroing the
// removed channels (with and without mean compensation), the refit must match an independent QR
// least-squares solve, and the minima must match brute force over all masks.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "core/interruptible_gram.hpp"
#include "qprune/error.hpp"
#include "qprune/pruning.hpp"
#include "qprune/pruning_refit.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
using qprune::test::normal_matrix;

namespace {

// A random Llama-style gated MLP and its down_proj input over T tokens.
struct GatedLayer {
  Eigen::MatrixXd w_gate, w_up, w_down;  // I x D, I x D, H x I
  Eigen::MatrixXd a;                     // I x T
};

GatedLayer random_gated_layer(int hidden, int inter, int tokens, std::mt19937_64& rng) {
  GatedLayer l;
  const int d = hidden;
  l.w_gate = normal_matrix(inter, d, rng, 1.0 / std::sqrt(d));
  l.w_up = normal_matrix(inter, d, rng, 1.0 / std::sqrt(d));
  l.w_down = normal_matrix(hidden, inter, rng, 1.0 / std::sqrt(inter));
  // Shifted inputs give the activations a non-zero mean, as real residual streams have.
  Eigen::MatrixXd x = normal_matrix(d, tokens, rng);
  x.colwise() += normal_matrix(d, 1, rng, 0.7).col(0);
  const Eigen::ArrayXXd z = (l.w_gate * x).array();
  l.a = (z / (1.0 + (-z).exp())) * (l.w_up * x).array();
  return l;
}

ActivationStats stats_of(const Eigen::MatrixXd& a, bool with_mean) {
  ActivationStats s;
  s.gram = a * a.transpose();
  if (with_mean) {
    s.mean = a.rowwise().mean();
    s.num_tokens = a.cols();
  }
  return s;
}

// ||Y - Y_pruned||_F^2 with Y = W A and Y_pruned = W diag(keep) A (+ b 1^T): measured directly.
double direct_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& a, const Assignment& keep,
                    const Eigen::VectorXd* bias = nullptr) {
  Eigen::VectorXd k(static_cast<Eigen::Index>(keep.size()));
  for (std::size_t i = 0; i < keep.size(); ++i) k[static_cast<Eigen::Index>(i)] = keep[i];
  Eigen::MatrixXd pruned = w * k.asDiagonal() * a;
  if (bias != nullptr) pruned.colwise() += *bias;
  return (w * a - pruned).squaredNorm();
}

Assignment random_mask(int n, std::mt19937_64& rng, int kept) {
  std::vector<int> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), rng);
  Assignment x(static_cast<std::size_t>(n), 0);
  for (int t = 0; t < kept; ++t) x[static_cast<std::size_t>(idx[static_cast<std::size_t>(t)])] = 1;
  return x;
}

double rel(double a, double b) {
  return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-300});
}

int ones(const Assignment& x) { return std::accumulate(x.begin(), x.end(), 0); }

}  // namespace

TEST_CASE("MLP QUBO energy equals the measured output error of every mask") {
  std::mt19937_64 rng(101);
  for (int trial = 0; trial < 8; ++trial) {
    const int h = 6 + trial;
    const int n = 8 + 2 * trial;
    const int t = 50 + 20 * trial;
    const GatedLayer l = random_gated_layer(h, n, t, rng);
    for (bool with_mean : {false, true}) {
      MlpProblemOptions o;
      o.layer = trial;
      o.mean_compensation = false;  // uncentred even when the mean is known
      const LayerProblem p = build_mlp_problem(l.w_down, stats_of(l.a, with_mean), o);
      REQUIRE(p.num_units() == n);
      CHECK_FALSE(p.centered);
      CHECK_FALSE(p.approximate);
      CHECK(p.source == GramSource::kCalibration);
      CHECK(p.model.label(3) == std::to_string(trial) + ".mlp.3");
      CHECK_FALSE(p.model.has_constraints());
      // M itself: G o (W^T W), computed here from the activations.
      const Eigen::MatrixXd m_ref =
          (l.a * l.a.transpose()).cwiseProduct(l.w_down.transpose() * l.w_down);
      CHECK((error_matrix(p) - m_ref).cwiseAbs().maxCoeff() <= 1e-11 * m_ref.cwiseAbs().maxCoeff());
      for (int r = 0; r < 60; ++r) {
        const int kept = static_cast<int>(rng() % static_cast<std::uint64_t>(n));  // >= 1 removed
        const Assignment x = random_mask(n, rng, kept);
        const double e = direct_error(l.w_down, l.a, x);
        CHECK(rel(p.model.energy(x), e) < 1e-9);
        CHECK(rel(reconstruction_error(l.w_down, l.a, x), e) < 1e-12);
      }
      CHECK(std::abs(p.model.energy(Assignment(static_cast<std::size_t>(n), 1))) <=
            1e-12 * p.model.offset());
    }
  }
}

TEST_CASE("centred MLP QUBO equals the error after adding the compensating bias") {
  std::mt19937_64 rng(202);
  for (int trial = 0; trial < 6; ++trial) {
    const int h = 8 + trial, n = 10 + 2 * trial, t = 60 + 25 * trial;
    const GatedLayer l = random_gated_layer(h, n, t, rng);
    const ActivationStats stats = stats_of(l.a, true);
    MlpProblemOptions o;
    o.keep = n / 2;
    const LayerProblem p = build_mlp_problem(l.w_down, stats, o);
    CHECK(p.centered);
    REQUIRE(p.model.constraints().size() == 1);
    CHECK(p.model.constraints()[0].name == "layer.0.mlp");
    CHECK(p.model.constraints()[0].k == n / 2);
    const Eigen::VectorXd mu = l.a.rowwise().mean();
    // The centred scatter sum_t (a_t - mu)(a_t - mu)^T, computed from the centred activations.
    const Eigen::MatrixXd ac = l.a.colwise() - mu;
    CHECK((centered_gram(stats) - ac * ac.transpose()).cwiseAbs().maxCoeff() <=
          1e-10 * stats.gram.cwiseAbs().maxCoeff());
    double centred_sum = 0.0, plain_sum = 0.0;
    for (int r = 0; r < 60; ++r) {
      const Assignment x =
          random_mask(n, rng, 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(n - 1)));
      Eigen::VectorXd b = Eigen::VectorXd::Zero(h);  // W[:, S] mu_S, written out
      for (int i = 0; i < n; ++i)
        if (!x[static_cast<std::size_t>(i)]) b += l.w_down.col(i) * mu[i];
      const double e = direct_error(l.w_down, l.a, x, &b);
      CHECK(rel(p.model.energy(x), e) < 1e-9);
      CHECK(rel(reconstruction_error_compensated(l.w_down, l.a, x), e) < 1e-10);
      CHECK((compensation_bias(l.w_down, mu, x) - b).norm() <= 1e-12 * (1.0 + b.norm()));
      centred_sum += e;
      plain_sum += direct_error(l.w_down, l.a, x);
    }
    // The bias is the best constant, so compensation never hurts on the calibration set.
    CHECK(centred_sum <= plain_sum);
  }
}

TEST_CASE("float weights give the same problem as their double values") {
  std::mt19937_64 rng(303);
  const GatedLayer l = random_gated_layer(8, 12, 80, rng);
  const Eigen::MatrixXf wf = l.w_down.cast<float>();
  const ActivationStats stats = stats_of(l.a, true);
  const LayerProblem pf = build_mlp_problem(wf, stats, {});
  const LayerProblem pd = build_mlp_problem(Eigen::MatrixXd(wf.cast<double>()), stats, {});
  for (int r = 0; r < 20; ++r) {
    const Assignment x = random_mask(12, rng, 6);
    CHECK(rel(pf.model.energy(x), pd.model.energy(x)) < 1e-13);
  }
}

TEST_CASE("brute force over all k-masks equals the feasible QUBO minimum") {
  std::mt19937_64 rng(404);
  for (int trial = 0; trial < 3; ++trial) {
    const int n = 10 + trial;  // <= 12
    const GatedLayer l = random_gated_layer(7 + trial, n, 70 + 30 * trial, rng);
    for (bool centred : {false, true}) {
      for (int k : {2, n / 2, n - 2}) {
        MlpProblemOptions o;
        o.keep = k;
        o.mean_compensation = centred;
        const LayerProblem p = build_mlp_problem(l.w_down, stats_of(l.a, true), o);
        double best = 1e300;
        for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << n); ++bits) {
          const Assignment x = test::bits_to_assignment(bits, n);
          if (ones(x) != k) continue;
          best = std::min(best, centred ? reconstruction_error_compensated(l.w_down, l.a, x)
                                        : direct_error(l.w_down, l.a, x));
        }
        CHECK(rel(test::brute_force_minimum(p.model, true), best) < 1e-9);
      }
    }
  }
}

TEST_CASE("attention head QUBO equals zeroing the removed heads' o_proj input channels") {
  std::mt19937_64 rng(505);
  struct Case {
    int heads, kv, head_dim;
    UnitKind units;
  };
  const Case cases[] = {{4, 4, 3, UnitKind::kHeads},         {6, 6, 2, UnitKind::kHeads},
                        {8, 2, 2, UnitKind::kKvGroups},      {6, 3, 3, UnitKind::kKvGroups},
                        {8, 2, 2, UnitKind::kHeadsPerGroup}, {9, 3, 2, UnitKind::kHeadsPerGroup}};
  for (const Case& c : cases) {
    const int channels = c.heads * c.head_dim;
    const int hidden = 10;
    const int t = 120;
    Eigen::MatrixXd z = normal_matrix(channels, t, rng);
    z.colwise() += normal_matrix(channels, 1, rng, 0.5).col(0);
    const Eigen::MatrixXd w_o = normal_matrix(hidden, channels, rng);
    for (bool centred : {false, true}) {
      HeadProblemOptions o;
      o.layer = 5;
      o.shape = {c.heads, c.kv, c.head_dim};
      o.units = c.units;
      o.mean_compensation = centred;
      const int group = c.heads / c.kv;
      const int n_units = c.units == UnitKind::kKvGroups ? c.kv : c.heads;
      const int keep = c.units == UnitKind::kHeadsPerGroup ? c.kv * (group - 1) : n_units / 2;
      o.keep = keep;
      const LayerProblem p = build_head_problem(w_o, stats_of(z, true), o);
      REQUIRE(p.num_units() == n_units);
      CHECK(p.centered == centred);
      CHECK(p.unit_width * n_units == channels);
      // Constraint groups: one over all units, or one per KV group over its contiguous heads.
      if (c.units == UnitKind::kHeadsPerGroup) {
        REQUIRE(p.model.constraints().size() == static_cast<std::size_t>(c.kv));
        for (int g = 0; g < c.kv; ++g) {
          const CardinalityConstraint& cc = p.model.constraints()[static_cast<std::size_t>(g)];
          CHECK(cc.name == "layer.5.attn.kv." + std::to_string(g));
          CHECK(cc.k == group - 1);
          std::vector<int> expect(static_cast<std::size_t>(group));
          std::iota(expect.begin(), expect.end(), g * group);
          CHECK(cc.variables == expect);
        }
      } else {
        REQUIRE(p.model.constraints().size() == 1);
        CHECK(p.model.constraints()[0].k == keep);
        CHECK(p.model.constraints()[0].name ==
              (c.units == UnitKind::kKvGroups ? "layer.5.kv" : "layer.5.attn"));
      }
      for (int r = 0; r < 40; ++r) {
        const Assignment x = random_mask(
            n_units, rng, static_cast<int>(rng() % static_cast<std::uint64_t>(n_units)));
        // Channel mask written out: unit u owns channels [u w, (u + 1) w).
        Assignment ch(static_cast<std::size_t>(channels));
        for (int cidx = 0; cidx < channels; ++cidx)
          ch[static_cast<std::size_t>(cidx)] = x[static_cast<std::size_t>(cidx / p.unit_width)];
        CHECK(channel_mask(p, x) == ch);
        Eigen::VectorXd b = Eigen::VectorXd::Zero(hidden);
        const Eigen::VectorXd mu = z.rowwise().mean();
        for (int cidx = 0; cidx < channels; ++cidx)
          if (!ch[static_cast<std::size_t>(cidx)]) b += w_o.col(cidx) * mu[cidx];
        const double e = direct_error(w_o, z, ch, centred ? &b : nullptr);
        CHECK(rel(p.model.energy(x), e) < 1e-9);
      }
    }
  }
}

TEST_CASE("head options reject shapes a standard config cannot describe") {
  HeadProblemOptions o;
  o.shape = {8, 2, 4};
  o.units = UnitKind::kHeads;
  CHECK_THROWS_AS(o.validate(), InvalidArgument);
  o.units = UnitKind::kHeadsPerGroup;
  o.validate();
  o.shape = {4, 4, 4};
  CHECK_THROWS_AS(o.validate(), InvalidArgument);
  o.shape = {6, 4, 4};
  CHECK_THROWS_AS(o.validate(), InvalidArgument);
  // keep = 5 heads cannot be split evenly over 2 groups.
  std::mt19937_64 rng(1);
  HeadProblemOptions ok;
  ok.shape = {8, 2, 2};
  ok.units = UnitKind::kHeadsPerGroup;
  LayerProblem p = build_head_problem_magnitude(normal_matrix(4, 16, rng), ok);
  CHECK_THROWS_AS(set_keep(p, 5), InvalidArgument);
  set_keep(p, 6);
  CHECK(p.model.constraints().size() == 2);
  CHECK(uniform_keep(p, 0.25) == 6);
  CHECK_THROWS_AS((void)uniform_keep(p, 0.4), InvalidArgument);  // keeps 5 of 8
}

TEST_CASE("refit matches a QR least-squares solve and never increases the error") {
  std::mt19937_64 rng(606);
  for (int trial = 0; trial < 6; ++trial) {
    const int h = 6 + trial, n = 8 + 3 * trial, t = 50 + 30 * trial;
    const GatedLayer l = random_gated_layer(h, n, t, rng);
    const Eigen::MatrixXd y = l.w_down * l.a;
    for (int r = 0; r < 10; ++r) {
      const Assignment x =
          random_mask(n, rng, 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(n - 1)));
      std::vector<Eigen::Index> kept, removed;
      for (int i = 0; i < n; ++i) (x[static_cast<std::size_t>(i)] ? kept : removed).push_back(i);
      const Eigen::MatrixXd a_k = l.a(kept, Eigen::all);

      // Plain refit: W'^T = argmin ||A_K^T W'^T - Y^T||.
      RefitOptions ro;
      ro.mean_compensation = false;
      const ActivationStats stats = stats_of(l.a, true);
      const RefitResult fit = refit_columns(l.w_down, stats, x, ro);
      const Eigen::MatrixXd w_ls =
          a_k.transpose().colPivHouseholderQr().solve(y.transpose()).transpose();
      const double err_ls = (y - w_ls * a_k).squaredNorm();
      CHECK(fit.damping == 0.0);
      CHECK((fit.kept_columns - w_ls).norm() <= 1e-8 * w_ls.norm());
      CHECK(rel(fit.error, err_ls) < 1e-8);
      CHECK(rel(refit_error(l.w_down, stats.gram, x), err_ls) < 1e-8);
      CHECK(rel(fit.error_without_refit, direct_error(l.w_down, l.a, x)) < 1e-9);
      CHECK(fit.error <= fit.error_without_refit * (1.0 + 1e-12));
      CHECK(fit.bias.size() == 0);
      // The OBS form tr(W_S ((H^-1)_SS)^-1 W_S^T) for invertible H.
      const Eigen::MatrixXd hinv = stats.gram.inverse();
      const Eigen::MatrixXd w_s = l.w_down(Eigen::all, removed);
      const double obs =
          (w_s * Eigen::MatrixXd(hinv(removed, removed)).inverse() * w_s.transpose()).trace();
      CHECK(rel(obs, err_ls) < 1e-7);

      // Centred refit: the joint optimum over W' and a bias, [A_K^T 1] [W'^T; b^T] = Y^T.
      const RefitResult cfit = refit_columns(l.w_down, stats, x);
      Eigen::MatrixXd aug(t, static_cast<Eigen::Index>(kept.size()) + 1);
      aug << a_k.transpose(), Eigen::VectorXd::Ones(t);
      const Eigen::MatrixXd sol = aug.colPivHouseholderQr().solve(y.transpose());
      const Eigen::MatrixXd w_c = sol.topRows(static_cast<Eigen::Index>(kept.size())).transpose();
      const Eigen::VectorXd b_c = sol.bottomRows(1).transpose();
      const double err_c = ((y - w_c * a_k).colwise() - b_c).squaredNorm();
      CHECK((cfit.kept_columns - w_c).norm() <= 1e-8 * w_c.norm());
      CHECK((cfit.bias - b_c).norm() <= 1e-8 * (1.0 + b_c.norm()));
      CHECK(rel(cfit.error, err_c) < 1e-8);
      CHECK(rel(refit_error(l.w_down, centered_gram(stats), x), err_c) < 1e-8);
      CHECK(rel(cfit.error_without_refit, reconstruction_error_compensated(l.w_down, l.a, x)) <
            1e-9);
      CHECK(cfit.error <= cfit.error_without_refit * (1.0 + 1e-12));
      CHECK(cfit.error <= fit.error * (1.0 + 1e-12));  // a free bias can only help
    }
  }
}

TEST_CASE("refit on a semidefinite Gram damps, stays finite and does not increase the error") {
  std::mt19937_64 rng(707);
  GatedLayer l = random_gated_layer(8, 12, 60, rng);
  l.a.row(2).setZero();  // a dead neuron: H is singular
  l.a.row(5).setZero();
  const ActivationStats stats = stats_of(l.a, false);
  Assignment x(12, 1);
  x[0] = x[7] = x[9] = 0;  // neurons 2 and 5 kept
  const RefitResult fit = refit_columns(l.w_down, stats, x);
  CHECK(fit.damping > 0.0);
  CHECK(fit.kept_columns.allFinite());
  CHECK(fit.error <= fit.error_without_refit);
  // The measured error of the refitted weights equals the reported one.
  Eigen::MatrixXd w_new = Eigen::MatrixXd::Zero(8, 12);
  std::vector<Eigen::Index> kept;
  for (int i = 0; i < 12; ++i)
    if (x[static_cast<std::size_t>(i)]) kept.push_back(i);
  w_new(Eigen::all, kept) = fit.kept_columns;
  CHECK(rel((l.w_down * l.a - w_new * l.a).squaredNorm(), fit.error) < 1e-8);
}

TEST_CASE("diagonal top-k keeps the units whose single removal costs most") {
  std::mt19937_64 rng(808);
  for (int trial = 0; trial < 5; ++trial) {
    const int n = 9 + trial;
    const GatedLayer l = random_gated_layer(6 + trial, n, 90, rng);
    MlpProblemOptions o;
    o.keep = n / 2 + 1;
    o.mean_compensation = false;
    const LayerProblem p = build_mlp_problem(l.w_down, stats_of(l.a, true), o);
    const Assignment keep = diagonal_top_k(p);
    CHECK(ones(keep) == *o.keep);
    // Singleton costs measured directly: remove unit i alone.
    std::vector<double> single(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      Assignment x(static_cast<std::size_t>(n), 1);
      x[static_cast<std::size_t>(i)] = 0;
      single[static_cast<std::size_t>(i)] = direct_error(l.w_down, l.a, x);
      CHECK(rel(p.unit_cost[i], single[static_cast<std::size_t>(i)]) < 1e-9);
    }
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (keep[static_cast<std::size_t>(i)] && !keep[static_cast<std::size_t>(j)])
          CHECK(single[static_cast<std::size_t>(i)] >= single[static_cast<std::size_t>(j)]);
    CHECK(p.model.is_feasible(keep));
  }
}

TEST_CASE("magnitude problems are diagonal, and there diagonal top-k is optimal") {
  std::mt19937_64 rng(909);
  const Eigen::MatrixXd w = normal_matrix(7, 11, rng);
  MlpProblemOptions o;
  o.keep = 4;
  const LayerProblem p = build_mlp_problem_magnitude(w, o);
  CHECK(p.source == GramSource::kIdentity);
  CHECK(p.approximate);
  CHECK(p.model.num_couplings() == 0);
  for (int r = 0; r < 30; ++r) {
    const Assignment x = random_mask(11, rng, static_cast<int>(rng() % 12));
    double e = 0.0;
    for (int i = 0; i < 11; ++i)
      if (!x[static_cast<std::size_t>(i)]) e += w.col(i).squaredNorm();
    CHECK(rel(p.model.energy(x) + 1.0, e + 1.0) < 1e-12);
    // G = I is the identity Gram: the same as the calibration builder with gram = I.
    ActivationStats id;
    id.gram = Eigen::MatrixXd::Identity(11, 11);
    CHECK(rel(build_mlp_problem(w, id, {}).model.energy(x) + 1.0, e + 1.0) < 1e-12);
  }
  const Assignment top = diagonal_top_k(p);
  CHECK(rel(p.model.energy(top), test::brute_force_minimum(p.model, true)) < 1e-12);
  CHECK(keep_top_scores(p, magnitude_scores(w)) == top);

  // Heads per group: top-k within every group, which is optimal for a diagonal problem too.
  HeadProblemOptions ho;
  ho.shape = {8, 2, 3};
  ho.units = UnitKind::kHeadsPerGroup;
  ho.keep = 4;
  const Eigen::MatrixXd w_o = normal_matrix(5, 24, rng);
  const LayerProblem hp = build_head_problem_magnitude(w_o, ho);
  const Assignment htop = diagonal_top_k(hp);
  CHECK(hp.model.is_feasible(htop));
  CHECK(rel(hp.model.energy(htop), test::brute_force_minimum(hp.model, true)) < 1e-12);
  CHECK(rel(hp.unit_cost[1], w_o.middleCols(3, 3).squaredNorm()) < 1e-12);
}

TEST_CASE("gated magnitude score is the product of the neuron's weight norms") {
  std::mt19937_64 rng(111);
  const GatedLayer l = random_gated_layer(5, 7, 10, rng);
  const Eigen::VectorXd s = magnitude_scores(l.w_down, l.w_gate, l.w_up);
  for (int i = 0; i < 7; ++i) {
    CHECK(rel(s[i], l.w_down.col(i).squaredNorm() * l.w_gate.row(i).squaredNorm() *
                        l.w_up.row(i).squaredNorm()) < 1e-12);
  }
}

TEST_CASE("Isserlis statistics over several tiles equal the closed form computed in one piece") {
  // n above the tile side (896 for H = 1200), so the lower-triangle tiles, the diagonal tiles and
  // the mirroring all take part; the reference is the formula with whole products.
  std::mt19937_64 rng(223);
  const int n = 1300, h = 1200;
  const Eigen::MatrixXd wg = normal_matrix(n, h, rng, 0.05);
  const Eigen::MatrixXd wu = normal_matrix(n, h, rng, 0.05);
  const double sigma = 0.8, s2 = sigma * sigma;
  REQUIRE(qprune::detail::gram_tile_size(h) < n);
  const ActivationStats s = isserlis_statistics(wg, wu, sigma);
  const Eigen::VectorXd d = wg.cwiseProduct(wu).rowwise().sum();
  const Eigen::MatrixXd gg = wg * wg.transpose(), uu = wu * wu.transpose();
  const Eigen::MatrixXd gu = wg * wu.transpose();
  const Eigen::MatrixXd reference = (0.25 * s2 * s2) * (d * d.transpose() + gg.cwiseProduct(uu) +
                                                        gu.cwiseProduct(gu.transpose()));
  // Off the diagonal the four products run in float (the bound is at isserlis_statistics and
  // checked per entry in test_gram_kernels.cpp); the diagonal is double.
  CHECK((s.gram - reference).cwiseAbs().maxCoeff() <= 1e-5 * reference.cwiseAbs().maxCoeff());
  CHECK((s.gram.diagonal() - reference.diagonal()).cwiseAbs().maxCoeff() <=
        1e-12 * reference.diagonal().cwiseAbs().maxCoeff());
  CHECK(s.gram == s.gram.transpose());
  CHECK((s.mean - 0.5 * s2 * d).cwiseAbs().maxCoeff() <= 1e-15 * d.cwiseAbs().maxCoeff());
}

TEST_CASE("Isserlis statistics match Monte Carlo of the linearised gated activation") {
  std::mt19937_64 rng(222);
  const int n = 4, d = 5;
  const Eigen::MatrixXd wg = normal_matrix(n, d, rng, 0.6);
  const Eigen::MatrixXd wu = normal_matrix(n, d, rng, 0.6);
  const double sigma = 1.3;
  const ActivationStats s = isserlis_statistics(wg, wu, sigma);
  CHECK(s.approximate);
  CHECK(s.num_tokens == 1);
  const int samples = 400000;
  const Eigen::MatrixXd x = normal_matrix(d, samples, rng, sigma);
  const Eigen::MatrixXd a = (0.5 * (wg * x).array() * (wu * x).array()).matrix();  // SiLU(z) ~ z/2
  const Eigen::MatrixXd g_mc = a * a.transpose() / samples;
  const Eigen::VectorXd mu_mc = a.rowwise().mean();
  const double scale = g_mc.cwiseAbs().maxCoeff();
  CHECK((s.gram - g_mc).cwiseAbs().maxCoeff() < 0.05 * scale);
  CHECK((s.mean - mu_mc).cwiseAbs().maxCoeff() <
        0.03 * mu_mc.cwiseAbs().maxCoeff() + 0.01 * std::sqrt(scale));
  CHECK((s.gram - s.gram.transpose()).cwiseAbs().maxCoeff() < 1e-12 * scale);
  // A problem from these statistics is labelled approximate.
  const LayerProblem p = build_mlp_problem(normal_matrix(3, n, rng), s, {});
  CHECK(p.approximate);
  CHECK(p.source == GramSource::kIsserlis);
  CHECK(p.centered);
}

TEST_CASE("keep_count rounds, and says when a sparsity cannot be expressed") {
  CHECK(keep_count(10, 0.25) == 8);  // round(7.5) = 8
  CHECK(keep_count(18944, 0.5) == 9472);
  CHECK(keep_count(12, 0.0) == 12);
  CHECK_THROWS_AS((void)keep_count(10, 0.96), InvalidArgument);  // keeps 0
  CHECK_THROWS_AS((void)keep_count(10, 1.0), InvalidArgument);
  CHECK_THROWS_AS((void)keep_count(10, -0.1), InvalidArgument);
  CHECK(keep_count(28, 0.5, 7) == 14);
  CHECK_THROWS_AS((void)keep_count(28, 0.5, 4), InvalidArgument);  // 14 heads over 4 groups
}

namespace {
// Sum of the r smallest entries of v (scaled).
double smallest_sum(const Eigen::VectorXd& v, int r, double scale) {
  std::vector<double> c(v.data(), v.data() + v.size());
  std::sort(c.begin(), c.end());
  return scale * std::accumulate(c.begin(), c.begin() + r, 0.0);
}
}  // namespace

TEST_CASE("global allocation minimises the summed diagonal cost (brute force over allocations)") {
  std::mt19937_64 rng(333);
  std::vector<LayerProblem> layers;
  for (int l = 0; l < 3; ++l) {
    const GatedLayer g = random_gated_layer(6, 5 + l, 60, rng);
    MlpProblemOptions o;
    o.layer = l;
    layers.push_back(
        build_mlp_problem(Eigen::MatrixXd(g.w_down * (1.0 + l)), stats_of(g.a, true), o));
  }
  const std::vector<const LayerProblem*> ptrs = {&layers[0], &layers[1], &layers[2]};
  for (CostScale scale : {CostScale::kAbsolute, CostScale::kRelativeToLayerOutput}) {
    for (double sparsity : {0.2, 0.4, 0.7}) {
      GlobalAllocationOptions o;
      o.sparsity = sparsity;
      o.scale = scale;
      const GlobalAllocation a = allocate_global(ptrs, o);
      const int budget = static_cast<int>(std::lround(sparsity * 18));
      CHECK(a.total_keep == 18 - budget);
      double best = 1e300;
      for (int r0 = 0; r0 < 5; ++r0)
        for (int r1 = 0; r1 < 6; ++r1) {
          const int r2 = budget - r0 - r1;
          if (r2 < 0 || r2 > 6) continue;
          const int r[3] = {r0, r1, r2};
          double cost = 0.0;
          for (int l = 0; l < 3; ++l) {
            const double s = scale == CostScale::kAbsolute
                                 ? 1.0
                                 : 1.0 / layers[static_cast<std::size_t>(l)].model.offset();
            cost += smallest_sum(layers[static_cast<std::size_t>(l)].unit_cost, r[l], s);
          }
          best = std::min(best, cost);
        }
      CHECK(rel(a.removed_cost, best) < 1e-12);
      for (int l = 0; l < 3; ++l) CHECK(a.keep[static_cast<std::size_t>(l)] >= 1);
    }
  }
  // A per-layer cap that the budget cannot meet is an error.
  GlobalAllocationOptions capped;
  capped.sparsity = 0.7;
  capped.max_layer_sparsity = 0.5;
  CHECK_THROWS_AS((void)allocate_global(ptrs, capped), InvalidArgument);
}

TEST_CASE("global allocation of heads per group keeps the same number in every group") {
  std::mt19937_64 rng(444);
  std::vector<LayerProblem> layers;
  for (int l = 0; l < 2; ++l) {
    HeadProblemOptions o;
    o.layer = l;
    o.shape = {8, 2, 2};
    o.units = UnitKind::kHeadsPerGroup;
    const Eigen::MatrixXd z = normal_matrix(16, 80, rng);
    layers.push_back(build_head_problem(normal_matrix(6, 16, rng), stats_of(z, true), o));
  }
  GlobalAllocationOptions o;
  o.sparsity = 0.5;
  o.scale = CostScale::kAbsolute;
  const GlobalAllocation a = allocate_global({&layers[0], &layers[1]}, o);
  CHECK(a.total_keep == 8);
  double best = 1e300;
  for (int s0 = 0; s0 <= 3; ++s0) {  // steps: one head from each group
    const int s1 = 4 - s0;
    if (s1 < 0 || s1 > 3) continue;
    double cost = 0.0;
    const int s[2] = {s0, s1};
    for (int l = 0; l < 2; ++l)
      for (int g = 0; g < 2; ++g)
        cost += smallest_sum(layers[static_cast<std::size_t>(l)].unit_cost.segment(4 * g, 4), s[l],
                             1.0);
    best = std::min(best, cost);
  }
  CHECK(rel(a.removed_cost, best) < 1e-12);
  for (std::size_t l = 0; l < 2; ++l) {
    CHECK(a.keep[l] % 2 == 0);
    set_keep(layers[l], a.keep[l]);
    CHECK(layers[l].model.is_feasible(diagonal_top_k(layers[l])));
  }
}
