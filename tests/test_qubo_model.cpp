// QuboModel: energies against a term-by-term reference, dense == sparse, QUBO -> Ising -> QUBO,
// single-flip deltas, constraint groups and the penalty form.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "qprune/error.hpp"
#include "qprune/qubo_model.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
using qprune::test::bits_to_assignment;
using qprune::test::random_model;

namespace {
// E(x) written out from the definition, independent of QuboModel::energy.
double reference_energy(const QuboModel& m, const Assignment& x) {
  double e = m.offset();
  for (int i = 0; i < m.num_variables(); ++i) {
    e += m.linear()[i] * x[static_cast<std::size_t>(i)];
    for (int j = i + 1; j < m.num_variables(); ++j)
      e += m.coupling(i, j) * x[static_cast<std::size_t>(i)] * x[static_cast<std::size_t>(j)];
  }
  return e;
}
}  // namespace

TEST_CASE("the toy problem of FORMATS.md has optimum -6 at (1,0,1)") {
  const QuboModel m =
      QuboModel::from_couplings(3, Eigen::Vector3d(-5, -3, -1), {{0, 1, 12}, {1, 2, 2}});
  CHECK(m.energy({1, 0, 1}) == -6.0);
  CHECK(m.energy({1, 1, 1}) == -5 - 3 - 1 + 12 + 2);
  CHECK(test::brute_force_minimum(m, false) == -6.0);
}

TEST_CASE("dense and sparse storage give identical energies, deltas and couplings") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const QuboModel sparse = random_model(12, 0.4, seed, 10, Storage::kSparse);
    const QuboModel dense = sparse.with_storage(Storage::kDense);
    REQUIRE(sparse.storage() == Storage::kSparse);
    REQUIRE(dense.storage() == Storage::kDense);
    CHECK(sparse.num_couplings() == dense.num_couplings());
    for (std::uint64_t bits = 0; bits < 4096; bits += 37) {
      const Assignment x = bits_to_assignment(bits, 12);
      CHECK(sparse.energy(x) == dense.energy(x));
      CHECK(sparse.energy(x) == doctest::Approx(reference_energy(sparse, x)).epsilon(1e-12));
      for (int i = 0; i < 12; ++i) {
        Assignment y = x;
        y[static_cast<std::size_t>(i)] ^= 1;
        CHECK(sparse.flip_delta(x, i) == doctest::Approx(sparse.energy(y) - sparse.energy(x)));
        CHECK(dense.flip_delta(x, i) == sparse.flip_delta(x, i));
      }
    }
  }
}

TEST_CASE("auto storage follows the density threshold") {
  CHECK(random_model(40, 0.05, 3).storage() == Storage::kSparse);
  CHECK(random_model(40, 0.9, 3).storage() == Storage::kDense);
}

TEST_CASE("builders sum duplicates, fold diagonals and reject bad entries") {
  const QuboModel m = QuboModel::from_couplings(3, Eigen::Vector3d(1, 0, 0),
                                                {{0, 1, 2}, {1, 0, 3}, {2, 2, 4}, {1, 2, 0}});
  CHECK(m.coupling(0, 1) == 5.0);
  CHECK(m.coupling(1, 0) == 5.0);
  CHECK(m.linear()[2] == 4.0);
  CHECK(m.num_couplings() == 1);
  CHECK_THROWS_AS((void)QuboModel::from_couplings(2, {}, {{0, 2, 1.0}}), InvalidArgument);
  CHECK_THROWS_AS((void)QuboModel::from_couplings(2, {}, {{0, 1, std::nan("")}}), InvalidArgument);
  CHECK_THROWS_AS((void)m.energy({1, 0}), InvalidArgument);
  CHECK_THROWS_AS((void)m.energy({1, 0, 2}), InvalidArgument);
}

TEST_CASE("from_couplings sums repeated pairs in input order, sorted or not, dense or sparse") {
  // Reference: a map that adds each entry in input order to the folded pair, diagonals to the
  // linear terms, then drops zero sums. Bit-for-bit equality, as the readers rely on.
  std::mt19937_64 rng(11);
  const auto bits = [](double v) {
    std::uint64_t b = 0;
    std::memcpy(&b, &v, sizeof b);
    return b;
  };
  for (int round = 0; round < 40; ++round) {
    const int n = 2 + static_cast<int>(rng() % 30);
    const bool in_order = round % 4 == 0;  // the no-sort path
    std::vector<Coupling> list;
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (int i = 0; i < n; ++i)
      for (int j = i; j < n; ++j) {
        const int repeats = in_order ? static_cast<int>(rng() % 2) : static_cast<int>(rng() % 4);
        for (int r = 0; r < repeats; ++r) {
          const double v =
              rng() % 7 == 0 ? 0.0 : u(rng) * std::pow(10.0, static_cast<double>(rng() % 9) - 4);
          list.push_back(rng() % 2 ? Coupling{i, j, v} : Coupling{j, i, v});
        }
      }
    if (!in_order) std::shuffle(list.begin(), list.end(), rng);
    if (in_order)
      for (Coupling& c : list)
        if (c.i > c.j) std::swap(c.i, c.j);
    std::map<std::pair<int, int>, double> reference;
    Eigen::VectorXd linear = Eigen::VectorXd::Zero(n);
    for (const Coupling& c : list) {
      if (c.i == c.j)
        linear[c.i] += c.value;
      else
        reference[{std::min(c.i, c.j), std::max(c.i, c.j)}] += c.value;
    }
    std::int64_t nonzero = 0;
    for (const auto& [key, v] : reference) nonzero += v != 0.0;
    for (const Storage storage : {Storage::kDense, Storage::kSparse}) {
      CAPTURE(round);
      const QuboModel m = QuboModel::from_couplings(n, {}, list, 0.0, storage);
      CHECK(m.num_couplings() == nonzero);
      int differ = 0;
      for (int i = 0; i < n; ++i) {
        differ += bits(m.linear()[i]) != bits(linear[i]);
        for (int j = i + 1; j < n; ++j) {
          const auto it = reference.find({i, j});
          const double expected = it == reference.end() ? 0.0 : it->second;
          differ += bits(m.coupling(i, j)) != bits(expected == 0.0 ? 0.0 : expected);
          differ += m.coupling(j, i) != m.coupling(i, j);
        }
      }
      CHECK(differ == 0);
      // The rvalue overload (the readers' path) builds the same model.
      const QuboModel moved =
          QuboModel::from_couplings(n, {}, std::vector<Coupling>(list), 0.0, storage);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) differ += bits(moved.coupling(i, j)) != bits(m.coupling(i, j));
      CHECK(differ == 0);
    }
  }
}

TEST_CASE("from_dense takes a symmetric matrix and matches from_couplings") {
  const QuboModel a = random_model(9, 0.7, 11, 10, Storage::kSparse);
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(9, 9);
  a.for_each_coupling([&](int i, int j, double v) { q(i, j) = q(j, i) = v; });
  const QuboModel b = QuboModel::from_dense(a.linear(), q, a.offset(), Storage::kDense);
  for (std::uint64_t bits = 0; bits < 512; ++bits) {
    const Assignment x = bits_to_assignment(bits, 9);
    CHECK(a.energy(x) == b.energy(x));
  }
  q(0, 1) += 1.0;
  CHECK_THROWS_AS((void)QuboModel::from_dense(a.linear(), q), InvalidArgument);
}

TEST_CASE("from_dense over several tiles: averaged pairs, coupling count, first asymmetric pair") {
  // n = 150 spans three 64-wide tiles with an uneven last one; rounding-level asymmetry is
  // averaged, a real one is reported at its first pair in column order.
  const int n = 150;
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(n, n);
  std::int64_t nonzero = 0;
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < j; ++i) {
      if ((i + 3 * j) % 5 == 0) continue;  // some zero pairs
      q(i, j) = u(rng);
      q(j, i) = q(i, j) * (1.0 + 1e-15);
      ++nonzero;
    }
  }
  const QuboModel m = QuboModel::from_dense(Eigen::VectorXd::Zero(n), q, 0.0, Storage::kDense);
  CHECK(m.num_couplings() == nonzero);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < j; ++i) CHECK(m.coupling(i, j) == 0.5 * (q(i, j) + q(j, i)));
  q(100, 7) += 0.5;   // column 100 of the lower side: pair (7, 100)
  q(90, 120) -= 0.5;  // pair (90, 120), later in column order
  try {
    (void)QuboModel::from_dense(Eigen::VectorXd::Zero(n), q);
    FAIL("no error");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()).find("not symmetric at (7, 100)") != std::string::npos);
  }
}

TEST_CASE("QUBO -> Ising -> QUBO keeps every energy") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const QuboModel m = random_model(10, 0.5, seed);
    const IsingModel ising = m.to_ising();
    const QuboModel back = QuboModel::from_ising(ising);
    for (std::uint64_t bits = 0; bits < 1024; ++bits) {
      const Assignment x = bits_to_assignment(bits, 10);
      std::vector<std::int8_t> s(10);
      for (int i = 0; i < 10; ++i)
        s[static_cast<std::size_t>(i)] = x[static_cast<std::size_t>(i)] ? 1 : -1;
      CHECK(ising.energy(s) == doctest::Approx(m.energy(x)).epsilon(1e-12));
      CHECK(back.energy(x) == doctest::Approx(m.energy(x)).epsilon(1e-12));
    }
  }
}

TEST_CASE("constraint groups: feasibility, violation, validation") {
  QuboModel m = random_model(8, 0.5, 7);
  m.add_constraint({"a", {0, 1, 2, 3}, 2});
  m.add_constraint({"b", {4, 5, 6}, 1});
  CHECK(m.is_feasible({1, 1, 0, 0, 0, 1, 0, 1}));
  CHECK_FALSE(m.is_feasible({1, 1, 1, 0, 0, 1, 0, 0}));
  CHECK(m.constraint_violation({1, 1, 1, 0, 1, 1, 0, 0}) == 2);
  CHECK_THROWS_AS(m.add_constraint({"overlap", {3, 7}, 1}), InvalidArgument);
  CHECK_THROWS_AS(m.add_constraint({"range", {8}, 1}), InvalidArgument);
  CHECK_THROWS_AS(m.add_constraint({"k", {7}, 2}), InvalidArgument);
  CHECK_THROWS_AS(m.add_constraint({"dup", {7, 7}, 1}), InvalidArgument);
}

TEST_CASE(
    "penalty form: energy = objective + w (count - k)^2 + shift (count - k), and the default "
    "weight makes minimisers feasible") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    QuboModel m = random_model(10, 0.6, seed, 20);
    m.add_constraint({"g1", {0, 2, 4, 6, 8}, 2});
    m.add_constraint({"g2", {1, 3, 5}, 1});
    const double w = 3.5;
    const QuboModel p = m.penalized(w);
    CHECK_FALSE(p.has_constraints());
    const std::vector<double> shift = m.penalty_terms().shifts;
    REQUIRE(shift.size() == 2);
    for (std::uint64_t bits = 0; bits < 1024; ++bits) {
      const Assignment x = bits_to_assignment(bits, 10);
      int c1 = x[0] + x[2] + x[4] + x[6] + x[8], c2 = x[1] + x[3] + x[5];
      const double expected = m.energy(x) + w * ((c1 - 2) * (c1 - 2) + (c2 - 1) * (c2 - 1)) +
                              shift[0] * (c1 - 2) + shift[1] * (c2 - 1);
      CHECK(p.energy(x) == doctest::Approx(expected).epsilon(1e-12));
    }
    // With the default weight, the unconstrained minimum of the penalised model is the
    // constrained minimum of the original, reached only at feasible points.
    const QuboModel pd = m.penalized();
    CHECK(m.default_penalty_weight() > 0.0);
    CHECK(test::brute_force_minimum(pd, false) ==
          doctest::Approx(test::brute_force_minimum(m, true)).epsilon(1e-12));
  }
}

TEST_CASE("penalty_bound: any weight above it keeps every minimiser feasible (brute force)") {
  // Random models with groups of every kind (k = 0, k = size, ungrouped variables), some with one
  // dominant variable (where the bound must stay far below the largest single-flip change, the
  // old default), checked over all 2^11 assignments: the lowest infeasible penalised energy is
  // above the constrained optimum.
  int far_below = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    QuboModel base = random_model(11, 0.3 + 0.1 * static_cast<double>(seed % 7), seed, 10);
    Eigen::VectorXd c = base.linear();
    if (seed % 2 == 0) c[static_cast<Eigen::Index>(seed % 11)] -= 500.0;  // a dominant variable
    QuboModel m = QuboModel::from_couplings(11, c, base.coupling_list(), base.offset());
    m.add_constraint({"a", {0, 1, 2, 3, 4}, static_cast<int>(seed % 6)});
    m.add_constraint({"b", {5, 6, 7}, static_cast<int>(seed % 4)});
    if (seed % 3 == 0) m.add_constraint({"c", {8, 9}, 1});  // else 8, 9, 10 are free
    const double bound = m.penalty_bound();
    CHECK(bound <= m.max_flip_change());
    if (bound < 0.25 * m.max_flip_change()) ++far_below;
    const QuboModel p = m.penalized(bound * (1.0 + 1e-9) + 1e-9);
    double best_feasible = std::numeric_limits<double>::infinity();
    double best_infeasible = std::numeric_limits<double>::infinity();
    for (std::uint64_t bits = 0; bits < 2048; ++bits) {
      const Assignment x = bits_to_assignment(bits, 11);
      double& best = m.is_feasible(x) ? best_feasible : best_infeasible;
      best = std::min(best, p.energy(x));
    }
    CAPTURE(seed);
    CHECK(best_infeasible > best_feasible);
    CHECK(best_feasible == doctest::Approx(test::brute_force_minimum(m, true)).epsilon(1e-12));
  }
  CHECK(far_below >= 10);  // the dominant-variable models
}

TEST_CASE("labels and energy bounds") {
  QuboModel m =
      QuboModel::from_couplings(3, Eigen::Vector3d(-1, 2, 0), {{0, 1, -4}, {1, 2, 3}}, 1.0);
  CHECK(m.label(2) == "2");
  m.set_labels({"a", "b", "c"});
  CHECK(m.label(1) == "b");
  CHECK_THROWS_AS(m.set_labels({"a", "a", "b"}), InvalidArgument);
  const EnergyBounds b = m.energy_bounds();
  CHECK(b.lower == 1.0 - 1.0 - 4.0);
  CHECK(b.upper == 1.0 + 2.0 + 3.0);
  CHECK(m.max_flip_change() == 2.0 + 4.0 + 3.0);
}

TEST_CASE("from_dense_form: E = offset + c.x + x^T Q x for any square Q, checked against the sum") {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (const int n : {1, 5, 70, 130}) {  // one tile, several, a partial last tile
    QuboModel::RowMajorMatrix q(n, n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) q(i, j) = (i + j) % 7 == 0 ? 0.0 : u(rng);  // some zero pairs
    Eigen::VectorXd c(n);
    for (int i = 0; i < n; ++i) c[i] = u(rng);
    const QuboModel m = QuboModel::from_dense_form(c, q, 0.5);
    for (int t = 0; t < 5; ++t) {
      Assignment x(static_cast<std::size_t>(n));
      Eigen::VectorXd xv(n);
      for (int i = 0; i < n; ++i) xv[i] = x[static_cast<std::size_t>(i)] = rng() % 2;
      const double direct = 0.5 + c.dot(xv) + xv.dot(q * xv);
      CHECK(m.energy(x) == doctest::Approx(direct).epsilon(1e-12));
    }
    std::int64_t pairs = 0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) pairs += q(i, j) + q(j, i) != 0.0;
    CHECK(m.num_couplings() == pairs);
    for (int i = 0; i < n; ++i)  // both triangles of the stored matrix, every tile pair
      for (int j = 0; j < n; ++j) CHECK(m.coupling(i, j) == (i == j ? 0.0 : q(i, j) + q(j, i)));
  }
  // A NaN in the lower triangle of an off-diagonal tile pair, and a sum that overflows.
  QuboModel::RowMajorMatrix big = QuboModel::RowMajorMatrix::Zero(130, 130);
  big(129, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS((void)QuboModel::from_dense_form(Eigen::VectorXd::Zero(130), big),
                       doctest::Contains("not finite"), InvalidArgument);
  big(129, 3) = big(3, 129) = 1e308;
  CHECK_THROWS_WITH_AS((void)QuboModel::from_dense_form(Eigen::VectorXd::Zero(130), big),
                       doctest::Contains("not finite"), InvalidArgument);
  QuboModel::RowMajorMatrix bad = QuboModel::RowMajorMatrix::Zero(3, 3);
  bad(0, 2) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS((void)QuboModel::from_dense_form(Eigen::VectorXd::Zero(3), bad),
                       doctest::Contains("not finite"), InvalidArgument);
  bad(0, 2) = 0.0;
  bad(1, 1) = std::numeric_limits<double>::infinity();  // a diagonal entry: a linear term
  CHECK_THROWS_WITH_AS((void)QuboModel::from_dense_form(Eigen::VectorXd::Zero(3), bad),
                       doctest::Contains("not finite"), InvalidArgument);
  CHECK_THROWS_WITH_AS(
      (void)QuboModel::from_dense_form(Eigen::VectorXd::Zero(2), QuboModel::RowMajorMatrix(2, 3)),
      doctest::Contains("not square"), InvalidArgument);
  CHECK_THROWS_AS(
      (void)QuboModel::from_dense_form(Eigen::VectorXd::Zero(3), QuboModel::RowMajorMatrix(2, 2)),
      InvalidArgument);
}
