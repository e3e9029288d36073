// The GEMM kernels of layer-problem building (core/gram_kernels.hpp): every instruction set this
// CPU runs against a naive double reference and against each other, over all the tiles of a
// lower triangle (diagonal and off-diagonal, an uneven last tile, a column stride above k), and
// the run-time choice (QPRUNE_GEMM_ISA; CTest runs this file once more with it set to baseline).
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/gram_kernels.hpp"
#include "core/interruptible_gram.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"
#include "qprune/pruning.hpp"
#include "tests/test_support.hpp"

using qprune::detail::GemmIsa;
using qprune::detail::GramKernels;
using qprune::detail::GramTile;
using qprune::test::normal_matrix;

namespace {

using Index = Eigen::Index;

// The kernels of every instruction set this build and CPU have (baseline always).
std::vector<const GramKernels*> available_kernels() {
  std::vector<const GramKernels*> out;
  for (GemmIsa isa : {GemmIsa::kBaseline, GemmIsa::kAvx2, GemmIsa::kAvx512})
    if (const GramKernels* k = qprune::detail::gram_kernels_for(isa)) out.push_back(k);
  return out;
}

// The lower-triangle tiles of an n x n matrix with side `tile` (as for_each_lower_tile cuts it).
std::vector<GramTile> lower_tiles(Index n, Index tile) {
  std::vector<GramTile> tiles;
  for (Index j0 = 0; j0 < n; j0 += tile)
    for (Index i0 = j0; i0 < n; i0 += tile)
      tiles.push_back({i0, std::min(tile, n - i0), j0, std::min(tile, n - j0)});
  return tiles;
}

// gamma_k = k u / (1 - k u): the bound on the relative (to |x|.|y|) error of a k-term dot product
// in a format of unit roundoff u, whatever the order of the sums (Higham, Accuracy and Stability
// of Numerical Algorithms, 3.1).
double gamma(Index k, double u) {
  const double ku = static_cast<double>(k) * u;
  return ku / (1.0 - ku);
}

// Per-entry bound of the float Isserlis statistics against exact arithmetic, as documented at
// isserlis_statistics: scale 2 (2e + e^2) |g_i| |g_j| |u_i| |u_j| with e = gamma_H(float) + 2u,
// plus a few double roundings of the same scale.
Eigen::MatrixXd isserlis_float_bound(const Eigen::MatrixXd& wg, const Eigen::MatrixXd& wu,
                                     double scale) {
  const double u = 0x1p-24;
  const double e = gamma(wg.cols(), u) + 2.0 * u;
  const Eigen::VectorXd norms =
      wg.rowwise().norm().cwiseProduct(wu.rowwise().norm());  // |g_i| |u_i|
  return (scale * (2.0 * (2.0 * e + e * e) + 1e-12)) * norms * norms.transpose();
}

// The Isserlis statistics in double, term by term from whole products (no tiles).
Eigen::MatrixXd isserlis_reference(const Eigen::MatrixXd& wg, const Eigen::MatrixXd& wu,
                                   double scale) {
  const Eigen::VectorXd d = wg.cwiseProduct(wu).rowwise().sum();
  const Eigen::MatrixXd gg = wg * wg.transpose(), uu = wu * wu.transpose();
  const Eigen::MatrixXd gu = wg * wu.transpose();
  return scale * (d * d.transpose() + gg.cwiseProduct(uu) + gu.cwiseProduct(gu.transpose()));
}

}  // namespace

TEST_CASE("every instruction set's column Gram equals a naive double sum, lower triangle only") {
  std::mt19937_64 rng(1701);
  const Index k = 301, ld = k + 3, n = 517;  // a stride above k, an uneven last tile
  const Eigen::MatrixXd x = normal_matrix(ld, n, rng);
  Eigen::MatrixXd naive = Eigen::MatrixXd::Zero(n, n), bound(n, n);
  const double g = gamma(k, std::numeric_limits<double>::epsilon() / 2);
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < n; ++i) {
      double s = 0.0;
      for (Index t = 0; t < k; ++t) s += x(t, i) * x(t, j);
      naive(i, j) = s;
      // Both sums are within gamma_k |x_i|.|x_j| of the exact one.
      bound(i, j) = 2.0 * g * x.col(i).head(k).cwiseAbs().dot(x.col(j).head(k).cwiseAbs());
    }
  }
  const double sentinel = 12345.0;
  std::vector<Eigen::MatrixXd> results;
  for (const GramKernels* kernels : available_kernels()) {
    CAPTURE(std::string(kernels->name));
    Eigen::MatrixXd out = Eigen::MatrixXd::Constant(n, n, sentinel);
    out.triangularView<Eigen::Lower>().setConstant(1.0);  // the kernel adds to what is there
    for (const GramTile& t : lower_tiles(n, 128))
      kernels->add_column_gram(x.data(), ld, k, t, out.data(), n);
    bool upper_untouched = true, within = true;
    for (Index j = 0; j < n; ++j) {
      for (Index i = 0; i < j; ++i) upper_untouched = upper_untouched && out(i, j) == sentinel;
      for (Index i = j; i < n; ++i)
        within = within && std::abs(out(i, j) - 1.0 - naive(i, j)) <= bound(i, j) + 1e-15;
    }
    CHECK(upper_untouched);
    CHECK(within);
    results.push_back(out);
  }
  // The paths agree with each other as closely as each with the reference.
  for (std::size_t a = 1; a < results.size(); ++a) {
    const Eigen::MatrixXd diff =
        (results[a] - results[0]).cwiseAbs().triangularView<Eigen::Lower>();
    CHECK((diff.array() <= bound.array() + 1e-15).all());
  }
}

TEST_CASE("every instruction set's float Isserlis tile is within its documented bound") {
  std::mt19937_64 rng(1702);
  const Index h = 333, n = 290;
  const Eigen::MatrixXd wg = normal_matrix(n, h, rng, 0.05), wu = normal_matrix(n, h, rng, 0.05);
  const double scale = 0.25 * 0.7 * 0.7;
  const Eigen::MatrixXd reference = isserlis_reference(wg, wu, scale);
  const Eigen::MatrixXd bound = isserlis_float_bound(wg, wu, scale);
  const Eigen::VectorXd d = wg.cwiseProduct(wu).rowwise().sum();
  // Float operands with a column stride above H.
  const Index ld = h + 5;
  Eigen::MatrixXf g = Eigen::MatrixXf::Zero(ld, n), u = Eigen::MatrixXf::Zero(ld, n);
  g.topRows(h) = wg.transpose().cast<float>();
  u.topRows(h) = wu.transpose().cast<float>();
  std::vector<Eigen::MatrixXd> results;
  for (const GramKernels* kernels : available_kernels()) {
    CAPTURE(std::string(kernels->name));
    Eigen::MatrixXd out = Eigen::MatrixXd::Constant(n, n, 12345.0);
    for (const GramTile& t : lower_tiles(n, 96))
      kernels->isserlis_float(g.data(), u.data(), ld, h, d.data(), scale, t, out.data(), n);
    bool upper_untouched = true, within = true;
    for (Index j = 0; j < n; ++j) {
      for (Index i = 0; i < j; ++i) upper_untouched = upper_untouched && out(i, j) == 12345.0;
      for (Index i = j; i < n; ++i)
        within = within && std::abs(out(i, j) - reference(i, j)) <= bound(i, j);
    }
    CHECK(upper_untouched);
    CHECK(within);
    // The bound is not vacuous: float is measurably coarser than double here.
    const Eigen::MatrixXd err = (out - reference).triangularView<Eigen::StrictlyLower>();
    CHECK(err.cwiseAbs().maxCoeff() > 1e-9 * bound.maxCoeff());
    results.push_back(out);
  }
  for (std::size_t a = 1; a < results.size(); ++a) {
    const Eigen::MatrixXd diff =
        (results[a] - results[0]).cwiseAbs().triangularView<Eigen::Lower>();
    CHECK((diff.array() <= 2.0 * bound.array()).all());
  }
}

TEST_CASE("isserlis_statistics: double diagonal, float off-diagonal within the bound, symmetric") {
  // n above the tile side, so several tiles, diagonal tiles and the mirroring take part.
  std::mt19937_64 rng(1703);
  const int n = 1100, h = 1500;
  const Eigen::MatrixXd wg = normal_matrix(n, h, rng, 0.05), wu = normal_matrix(n, h, rng, 0.05);
  const double sigma = 0.8, scale = 0.25 * std::pow(sigma, 4);
  REQUIRE(qprune::detail::gram_tile_size(h) < n);
  const qprune::ActivationStats s = qprune::isserlis_statistics(wg, wu, sigma);
  const Eigen::MatrixXd reference = isserlis_reference(wg, wu, scale);
  const Eigen::MatrixXd bound = isserlis_float_bound(wg, wu, scale);
  CHECK(((s.gram - reference).cwiseAbs().array() <= bound.array()).all());
  CHECK((s.gram.diagonal() - reference.diagonal()).cwiseAbs().maxCoeff() <=
        1e-12 * reference.diagonal().maxCoeff());
  CHECK(s.gram == s.gram.transpose());
}

TEST_CASE("the error matrix's Gram equals Eigen's rank update, and stops on the interrupt flag") {
  std::mt19937_64 rng(1704);
  const Index k = 2000, n = 900;  // several tiles (tile side 704 at k = 2000)
  const Eigen::MatrixXd x = normal_matrix(k, n, rng);
  REQUIRE(qprune::detail::gram_tile_size(k) < n);
  Eigen::MatrixXd reference = Eigen::MatrixXd::Zero(n, n);
  reference.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
  const double g = gamma(k, std::numeric_limits<double>::epsilon() / 2);
  const Eigen::MatrixXd abs_gram = x.cwiseAbs().transpose() * x.cwiseAbs();
  for (const GramKernels* kernels : available_kernels()) {
    CAPTURE(std::string(kernels->name));
    Eigen::MatrixXd out = Eigen::MatrixXd::Zero(n, n);
    qprune::detail::add_column_gram_lower(out, x, "testing", *kernels);
    const Eigen::MatrixXd diff = (out - reference).cwiseAbs().triangularView<Eigen::Lower>();
    CHECK((diff.array() <= 2.0 * g * abs_gram.array()).all());
    CHECK(out.triangularView<Eigen::StrictlyUpper>().toDenseMatrix().isZero());
  }
  std::atomic<bool> flag{true};
  qprune::set_interrupt_flag(&flag);
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(n, n);
  CHECK_THROWS_AS(qprune::detail::add_column_gram_lower(out, x, "testing"), qprune::Interrupted);
  qprune::set_interrupt_flag(nullptr);
}

TEST_CASE("the kernels in use: QPRUNE_GEMM_ISA when set, else the widest this CPU runs") {
  const GramKernels& active = qprune::detail::gram_kernels();
  const char* env = std::getenv("QPRUNE_GEMM_ISA");
  if (env != nullptr && *env != 0) {
    CHECK(active.isa == qprune::detail::parse_gemm_isa(env));
  } else {
    CHECK(active.isa == available_kernels().back()->isa);
  }
  CHECK(qprune::detail::gram_kernels_for(GemmIsa::kBaseline) != nullptr);
  CHECK(qprune::detail::parse_gemm_isa("avx2") == GemmIsa::kAvx2);
  CHECK_THROWS_AS((void)qprune::detail::parse_gemm_isa("sse9"), qprune::InvalidArgument);
  // On x86-64 the CPU's own level decides which exist (a build there always has all three).
#if defined(__x86_64__)
  const auto level = qprune::detail::cpu_level();
  CHECK((qprune::detail::gram_kernels_for(GemmIsa::kAvx2) != nullptr) ==
        (level >= qprune::detail::CpuLevel::kAvx2));
  CHECK((qprune::detail::gram_kernels_for(GemmIsa::kAvx512) != nullptr) ==
        (level >= qprune::detail::CpuLevel::kAvx512));
#endif
}
