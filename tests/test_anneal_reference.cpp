// Tests of the neal-class reference annealer of the sa benchmarks (bench/neal_reference.hpp): its
// cached energy changes stay consistent with the model, and on small instances its best read
// reaches the brute-force optimum, so the speed comparison in BENCHMARKS.md is against a working
// annealer.
#include <doctest/doctest.h>

#include "bench/neal_reference.hpp"
#include "qprune/anneal_solver.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

Assignment to_binary(const std::vector<std::int8_t>& s) {
  Assignment x(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) x[i] = static_cast<std::uint8_t>(s[i] > 0);
  return x;
}

}  // namespace

TEST_CASE("neal reference: reported energies are the model's, best read is the optimum") {
  for (std::uint64_t seed : {1, 2, 3}) {
    const QuboModel m = test::random_model(14, 0.5, seed);
    const double optimum = test::brute_force_minimum(m, false);
    const bench::NealReference neal(m);
    bench::Xorshift128Plus rng(seed);
    const auto betas = bench::geometric_betas(default_beta_range(m), 200);
    double best = 1e300;
    for (int r = 0; r < 8; ++r) {
      const bench::NealReference::Read read = neal.anneal(betas, rng);
      CHECK(read.energy == doctest::Approx(m.energy(to_binary(read.spins))).epsilon(1e-12));
      CHECK(read.attempts == 200 * 14);
      best = std::min(best, read.energy);
    }
    CHECK(best == doctest::Approx(optimum).epsilon(1e-12));
  }
}

TEST_CASE("neal reference: one sweep at infinite cold accepts only improving flips") {
  // A cold beta makes the threshold tiny: after the sweeps no single flip may lower the energy.
  const QuboModel m = test::random_model(30, 0.3, 9);
  const bench::NealReference neal(m);
  bench::Xorshift128Plus rng(0);  // neal's seed 0 becomes the all-ones state
  const bench::NealReference::Read read = neal.anneal(std::vector<double>(50, 1e9), rng);
  const Assignment x = to_binary(read.spins);
  const double e = m.energy(x);
  for (int i = 0; i < m.num_variables(); ++i) {
    Assignment y = x;
    y[static_cast<std::size_t>(i)] ^= 1;
    CHECK(m.energy(y) >= e - 1e-9);
  }
}

}  // namespace qprune
