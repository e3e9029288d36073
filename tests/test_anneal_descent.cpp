// Tests of the swap-mode greedy descent of the annealing kernels (anneal_kernel.hpp): it must end
// in a swap local optimum (checked by trying every swap and free flip with QuboModel::energy), keep
// its cached fields exact, and solve a diagonal (data-free magnitude) problem as sorting does; and
// "sa" must return the exact top-k of a large diagonal constrained problem with its sparse kernel.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/rng.hpp"
#include "qprune/anneal_solver.hpp"
#include "solver/anneal/anneal_kernel.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

using detail::anneal::DenseForm;
using detail::anneal::SparseForm;
using detail::anneal::SwapLayout;

/// Runs swap_descent with form F from a random feasible start; returns the final assignment after
/// checking the cached fields against a fresh computation.
template <class Form>
Assignment descend(const QuboModel& m, std::uint64_t seed, std::int64_t* moves = nullptr) {
  using Real = typename Form::RealType;
  const Form form(m);
  const SwapLayout layout(m);
  pcg32 rng = detail::make_rng(seed, 0);
  std::vector<std::uint8_t> x(static_cast<std::size_t>(m.num_variables()));
  std::vector<int> slots;
  detail::anneal::random_feasible_start(layout, rng, x.data(), slots);
  detail::anneal::AlignedVector<Real> h(x.size()), fresh(x.size());
  detail::anneal::compute_fields(form, x.data(), h.data());
  const std::int64_t made =
      detail::anneal::swap_descent(form, layout, detail::anneal::positive_row_bounds(form), slots,
                                   x.data(), h.data(), 0.0, std::int64_t{1} << 40);
  if (moves != nullptr) *moves = made;
  detail::anneal::compute_fields(form, x.data(), fresh.data());
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(h[i] == fresh[i]);
  // The slot order still lists each group's ones first.
  for (const SwapLayout::Group& g : layout.groups) {
    for (int p = 0; p < g.size; ++p) {
      CHECK(x[static_cast<std::size_t>(slots[static_cast<std::size_t>(g.begin + p)])] ==
            (p < g.k ? 1 : 0));
    }
  }
  return Assignment(x.begin(), x.end());
}

}  // namespace

TEST_CASE("swap descent ends in a swap local optimum (every swap and free flip tried)") {
  // Couplings of both signs, so the branch-and-bound bound u_a > 0 matters, and groups of
  // several sizes with free variables around them.
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    for (Storage storage : {Storage::kDense, Storage::kSparse}) {
      const double density = seed % 3 == 0 ? 1.0 : 0.2;
      QuboModel m = test::random_model(40, density, seed, 10, storage);
      std::vector<int> big(30), small = {30, 31, 32, 33, 34, 35};
      std::iota(big.begin(), big.end(), 0);
      std::shuffle(big.begin(), big.end(), std::mt19937_64(seed));
      m.add_constraint({"big", big, 5 + static_cast<int>(seed % 20)});
      m.add_constraint({"small", small, 3});
      const Assignment x = storage == Storage::kDense ? descend<DenseForm<double>>(m, seed)
                                                      : descend<SparseForm<double>>(m, seed);
      CHECK(m.is_feasible(x));
      CHECK(qprune::test::is_local_minimum(m, x));
      // Integer coefficients: float and int8 forms make the same exact decisions.
      if (storage == Storage::kDense) {
        CHECK(descend<DenseForm<float>>(m, seed) == x);
        CHECK(descend<DenseForm<std::int32_t, std::int8_t>>(m, seed) == x);
      }
    }
  }
}

TEST_CASE(
    "swap descent on a diagonal problem is the top-k by sorting, one swap per misplaced unit") {
  // The data-free magnitude model: E = sum_i c_i x_i with one group of all n units and k ones.
  const int n = 20000, k = 12000;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-2.0, -1.0);
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = u(rng);
  QuboModel m = QuboModel::from_couplings(n, c, {}, 0.0, Storage::kSparse);
  std::vector<int> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  m.add_constraint({"mlp", all, k});

  std::vector<int> order = all;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return c[a] < c[b]; });
  Assignment expected(static_cast<std::size_t>(n), 0);
  for (int i = 0; i < k; ++i)
    expected[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;

  // The start of descend() is random_feasible_start with the same seed: count its misplaced ones.
  const SwapLayout layout(m);
  pcg32 start_rng = detail::make_rng(3, 0);
  std::vector<std::uint8_t> start(static_cast<std::size_t>(n));
  std::vector<int> slots;
  detail::anneal::random_feasible_start(layout, start_rng, start.data(), slots);
  std::int64_t misplaced = 0;
  for (int i = 0; i < n; ++i)
    misplaced +=
        start[static_cast<std::size_t>(i)] == 1 && expected[static_cast<std::size_t>(i)] == 0;

  std::int64_t moves = -1;
  CHECK(descend<SparseForm<double>>(m, 3, &moves) == expected);
  CHECK(moves == misplaced);
}

TEST_CASE("sa on a large diagonal constrained problem: sparse kernel and the exact top-k") {
  const int n = 6000, k = 3600;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1.0, 0.0);
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = u(rng);
  // Default storage: a model without couplings must be stored (and annealed) sparse.
  QuboModel m = QuboModel::from_couplings(n, c, {}, 0.0);
  std::vector<int> even, odd;
  for (int i = 0; i < n; ++i) (i % 2 ? odd : even).push_back(i);
  m.add_constraint({"even", even, k / 2});
  m.add_constraint({"odd", odd, k / 2});

  Assignment expected(static_cast<std::size_t>(n), 0);
  for (const std::vector<int>* group : {&even, &odd}) {
    std::vector<int> order = *group;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return c[a] < c[b]; });
    for (int i = 0; i < k / 2; ++i)
      expected[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;
  }
  SolveOptions o;
  o.num_reads = 2;
  o.seed = 5;
  AnnealOptions a;
  a.num_sweeps = 50;
  const SolveResult r = SimulatedAnnealing(a).solve(m, o);
  REQUIRE(r.has_solution());
  CHECK(r.info.at("kernel").rfind("sparse, swap moves", 0) == 0);
  CHECK(r.best().x == expected);
  CHECK(r.best().energy == m.energy(expected));
}

}  // namespace qprune
