// The refit objective against independent references: E(K) against an explicit least-squares
// solve on the activations (QR) and against the Schur-complement form of docs/pruning_math.md;
// the sweep state's incremental deltas and moves against fresh evaluations; the pairwise
// surrogate exact for one and two removed units.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "qprune/error.hpp"
#include "qprune/refit_objective.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
using qprune::test::normal_matrix;

namespace {

// Correlated inputs A (n x T), targets Y = W A_orig with A_orig a perturbed copy of A (the
// sequential case: the pruned layer sees other inputs than the original did).
struct Instance {
  Eigen::MatrixXd a, y, w;
};
Instance random_instance(int n, int out, int tokens, std::mt19937_64& rng, bool perturbed) {
  Instance in;
  const Eigen::MatrixXd mix = normal_matrix(n, n, rng) * 0.4 + Eigen::MatrixXd::Identity(n, n);
  in.a = mix * normal_matrix(n, tokens, rng);
  in.w = normal_matrix(out, n, rng);
  const Eigen::MatrixXd a_orig =
      perturbed ? Eigen::MatrixXd(in.a + 0.3 * normal_matrix(n, tokens, rng)) : in.a;
  in.y = in.w * a_orig;
  return in;
}

RefitObjective objective_of(const Instance& in, UnitLayout layout) {
  return RefitObjective(in.a * in.a.transpose(), in.y * in.a.transpose(), in.y.squaredNorm(),
                        layout);
}

Assignment random_mask(int units, int keep, std::mt19937_64& rng) {
  Assignment x(static_cast<std::size_t>(units), 0);
  std::vector<int> idx(static_cast<std::size_t>(units));
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), rng);
  for (int i = 0; i < keep; ++i) x[static_cast<std::size_t>(idx[static_cast<std::size_t>(i)])] = 1;
  return x;
}

// min_W' ||Y - W' A_K||^2 by a column-pivoted QR of A_K^T: independent of the Gram algebra.
double least_squares_error(const Instance& in, const Assignment& keep, int width) {
  std::vector<Eigen::Index> k;
  for (std::size_t u = 0; u < keep.size(); ++u)
    if (keep[u])
      for (int c = 0; c < width; ++c) k.push_back(static_cast<Eigen::Index>(u) * width + c);
  const Eigen::MatrixXd ak_t = in.a(k, Eigen::all).transpose();  // T x k
  const Eigen::MatrixXd sol = ak_t.colPivHouseholderQr().solve(in.y.transpose());
  return (in.y.transpose() - ak_t * sol).squaredNorm();
}

}  // namespace

TEST_CASE("refit objective equals the least-squares error, sequential and one-shot") {
  std::mt19937_64 rng(11);
  for (const bool perturbed : {false, true})
    for (const int width : {1, 3}) {
      const int units = 9;
      const Instance in = random_instance(units * width, 5, 200, rng, perturbed);
      const RefitObjective obj = objective_of(in, {units, width, 1, 5});
      CHECK(obj.damping() == 0.0);
      for (int trial = 0; trial < 10; ++trial) {
        const Assignment keep = random_mask(units, 1 + trial % (units - 1), rng);
        const double ref = least_squares_error(in, keep, width);
        CHECK(obj.error(keep) == doctest::Approx(ref).epsilon(1e-9).scale(in.y.squaredNorm()));
        // The refitted weights reproduce the same error.
        std::vector<Eigen::Index> k;
        for (int u = 0; u < units; ++u)
          if (keep[static_cast<std::size_t>(u)])
            for (int c = 0; c < width; ++c) k.push_back(Eigen::Index{u} * width + c);
        const Eigen::MatrixXd wk = obj.refit(keep);
        CHECK((in.y - wk * in.a(k, Eigen::all)).squaredNorm() ==
              doctest::Approx(ref).epsilon(1e-9).scale(in.y.squaredNorm()));
      }
    }
}

TEST_CASE("refit objective one-shot: E(K) = tr(W_S ((H^-1)_SS)^-1 W_S^T), the OBS/ZipLM form") {
  std::mt19937_64 rng(12);
  const int n = 12;
  const Instance in = random_instance(n, 4, 300, rng, false);
  const RefitObjective obj = objective_of(in, {n, 1, 1, 6});
  const Eigen::MatrixXd h = in.a * in.a.transpose();
  const Eigen::MatrixXd hinv = h.inverse();
  for (int trial = 0; trial < 20; ++trial) {
    const Assignment keep = random_mask(n, 1 + trial % (n - 1), rng);
    std::vector<Eigen::Index> s;
    for (int u = 0; u < n; ++u)
      if (!keep[static_cast<std::size_t>(u)]) s.push_back(u);
    const Eigen::MatrixXd ws = in.w(Eigen::all, s);
    const double schur = (ws * hinv(s, s).inverse() * ws.transpose()).trace();
    CHECK(obj.error(keep) == doctest::Approx(schur).epsilon(1e-8).scale(in.y.squaredNorm()));
  }
}

TEST_CASE("refit search state: deltas and moves agree with fresh evaluations") {
  std::mt19937_64 rng(13);
  for (const int width : {1, 2}) {
    const int units = 14;
    const Instance in = random_instance(units * width, 6, 400, rng, true);
    const RefitObjective obj = objective_of(in, {units, width, 1, 7});
    const double scale = in.y.squaredNorm();
    RefitSearchState st(obj, random_mask(units, 7, rng));
    for (int step = 0; step < 40; ++step) {
      CHECK(st.error() == doctest::Approx(obj.error(st.keep())).epsilon(1e-9).scale(scale));
      const std::vector<int> k = st.kept_units();
      const std::vector<int> s = st.removed_units();
      const int i = k[static_cast<std::size_t>(step) % k.size()];
      const int j = s[static_cast<std::size_t>(step * 7) % s.size()];
      Assignment x = st.keep();
      x[static_cast<std::size_t>(i)] = 0;
      CHECK(st.remove_delta(i) ==
            doctest::Approx(obj.error(x) - st.error()).epsilon(1e-8).scale(scale));
      x[static_cast<std::size_t>(j)] = 1;
      const double direct = obj.error(x) - st.error();
      CHECK(st.swap_delta(i, j) == doctest::Approx(direct).epsilon(1e-8).scale(scale));
      x[static_cast<std::size_t>(i)] = 1;
      CHECK(st.add_delta(j) ==
            doctest::Approx(obj.error(x) - st.error()).epsilon(1e-8).scale(scale));
      if (width == 1) {
        Eigen::MatrixXd all;
        st.all_swap_deltas(all);
        const auto ii = std::find(k.begin(), k.end(), i) - k.begin();
        const auto jj = std::find(s.begin(), s.end(), j) - s.begin();
        CHECK(all(ii, jj) == doctest::Approx(direct).epsilon(1e-8).scale(scale));
      }
      // Alternate swaps with plain removals and additions, so the kept count moves too.
      if (step % 3 == 0)
        st.swap(i, j);
      else if (step % 3 == 1 && k.size() > 2)
        st.remove(i);
      else
        st.add(j);
    }
    const double before = st.error();
    st.rebuild();
    CHECK(st.error() == doctest::Approx(before).epsilon(1e-9).scale(scale));
  }
}

TEST_CASE("pairwise surrogate is exact for one and two removed units") {
  std::mt19937_64 rng(14);
  for (const int width : {1, 2}) {
    const int units = 8;
    const Instance in = random_instance(units * width, 4, 300, rng, true);
    const RefitObjective obj = objective_of(in, {units, width, 1, 4});
    const Eigen::MatrixXd m = obj.pairwise_surrogate();
    const double full = obj.error_all_kept();
    const double scale = in.y.squaredNorm();
    for (int u = 0; u < units; ++u)
      for (int v = u; v < units; ++v) {
        Assignment keep(static_cast<std::size_t>(units), 1);
        keep[static_cast<std::size_t>(u)] = keep[static_cast<std::size_t>(v)] = 0;
        Eigen::VectorXd s = Eigen::VectorXd::Zero(units);
        s[u] = s[v] = 1.0;
        CHECK(full + s.dot(m * s) == doctest::Approx(obj.error(keep)).epsilon(1e-8).scale(scale));
      }
  }
}

TEST_CASE("refit objective refuses bad statistics") {
  Eigen::MatrixXd h = Eigen::MatrixXd::Identity(3, 3);
  h(1, 1) = -1.0;
  CHECK_THROWS_AS(RefitObjective(h, Eigen::MatrixXd::Zero(2, 3), 0.0, {3, 1, 1, 2}),
                  InvalidArgument);
  CHECK_THROWS_AS(RefitObjective(Eigen::MatrixXd::Identity(3, 3), Eigen::MatrixXd::Zero(2, 4), 0.0,
                                 {3, 1, 1, 2}),
                  InvalidArgument);
  CHECK_THROWS_AS(RefitObjective(Eigen::MatrixXd::Identity(3, 3), Eigen::MatrixXd::Zero(2, 3), 0.0,
                                 {3, 1, 1, 4}),
                  InvalidArgument);
  // A singular Gram (a dead channel) is damped, and says so.
  Eigen::MatrixXd dead = Eigen::MatrixXd::Identity(3, 3);
  dead(2, 2) = 0.0;
  const RefitObjective obj(dead, Eigen::MatrixXd::Ones(2, 3), 6.0, {3, 1, 1, 2});
  CHECK(obj.damping() > 0.0);
}
