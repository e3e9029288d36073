// Tests of the qaoa solver's depth schedule (INTERP, p = 1..4): the optimised expected energy is
// non-increasing in p, also when the optimiser is starved so that the search from the INTERP
// point ends worse than the previous depth (the restart from the zero-padded angles must then
// recover it), and every per-depth expected energy equals an independent naive statevector
// simulation at the reported angles.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <sstream>
#include <string>

#include "qprune/qaoa_solver.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

/// <C> after the p layers exp(-i b_l sum X) exp(-i g_l C / B) on |+>^n, one gate at a time on
/// 2^n amplitudes (no factorised tables, no fused passes): the reference for the engine.
double naive_expectation(const QuboModel& model, const std::vector<double>& g,
                         const std::vector<double>& b) {
  const int n = model.num_variables();
  const std::size_t dim = std::size_t{1} << n;
  const double scale = model.max_flip_change() > 0 ? model.max_flip_change() : 1.0;
  std::vector<double> c(dim);
  for (std::size_t z = 0; z < dim; ++z) c[z] = model.energy(test::bits_to_assignment(z, n));
  std::vector<std::complex<double>> psi(dim, 1.0 / std::sqrt(static_cast<double>(dim)));
  for (std::size_t l = 0; l < g.size(); ++l) {
    for (std::size_t z = 0; z < dim; ++z)
      psi[z] *= std::exp(std::complex<double>(0.0, -g[l] * c[z] / scale));
    const std::complex<double> co(std::cos(b[l]), 0.0), si(0.0, -std::sin(b[l]));
    for (int q = 0; q < n; ++q) {
      for (std::size_t z = 0; z < dim; ++z) {
        if ((z >> q) & 1U) continue;
        const std::size_t w = z | (std::size_t{1} << q);
        const std::complex<double> u = psi[z], v = psi[w];
        psi[z] = co * u + si * v;
        psi[w] = co * v + si * u;
      }
    }
  }
  double mean = 0.0;
  for (std::size_t z = 0; z < dim; ++z) mean += std::norm(psi[z]) * c[z];
  return mean;
}

/// expected_energy_p1..p4 of a layers = 4 INTERP run.
std::vector<double> depth_energies(const SolveResult& r) {
  std::vector<double> e;
  for (int p = 1; p <= 4; ++p) e.push_back(r.counters.at("expected_energy_p" + std::to_string(p)));
  return e;
}

void check_monotone(const std::vector<double>& e) {
  for (std::size_t p = 1; p < e.size(); ++p) {
    INFO("p = " << p + 1 << ": " << e[p] << " after " << e[p - 1]);
    CHECK(e[p] <= e[p - 1] + 1e-9 * std::max(1.0, std::abs(e[p - 1])));
  }
}

TEST_CASE("qaoa depth: INTERP expected energy is non-increasing over p = 1..4 and exact") {
  for (std::uint64_t seed : {11, 12, 13}) {
    const QuboModel model = test::random_model(9, 0.6, seed, 10);
    QaoaOptions o;
    o.layers = 4;
    o.shots = 10;
    const SolveResult r = QaoaSolver(o).solve(model, SolveOptions{});
    const std::vector<double> e = depth_energies(r);
    check_monotone(e);
    for (int p = 1; p <= 4; ++p) {
      const auto [g, b] = test::parse_angles(r.info.at("angles_p" + std::to_string(p)));
      REQUIRE(g.size() == static_cast<std::size_t>(p));
      CHECK(e[static_cast<std::size_t>(p - 1)] ==
            doctest::Approx(naive_expectation(model, g, b)).epsilon(1e-9));
    }
    CHECK(r.counters.at("expected_energy_p4") ==
          doctest::Approx(r.counters.at("expected_energy")).epsilon(1e-12));
  }
}

TEST_CASE("qaoa depth: a starved optimiser is restarted from the zero-padded angles") {
  // Two COBYLA evaluations per depth: the start point and one step of 0.1, so the INTERP point
  // itself decides whether p beats p - 1; whenever it does not, the restart must recover p - 1.
  int restarts = 0;
  for (std::uint64_t seed : {21, 22, 23, 24}) {
    const QuboModel model = test::random_model(8, 0.7, seed, 10);
    QaoaOptions o;
    o.layers = 4;
    o.shots = 10;
    o.optimizer = QaoaOptimizer::kCobyla;
    o.max_evaluations = 2;
    const SolveResult r = QaoaSolver(o).solve(model, SolveOptions{});
    const std::vector<double> e = depth_energies(r);
    check_monotone(e);
    restarts += static_cast<int>(r.counters.at("interp_restarts"));
    for (int p = 1; p <= 4; ++p) {
      const auto [g, b] = test::parse_angles(r.info.at("angles_p" + std::to_string(p)));
      CHECK(e[static_cast<std::size_t>(p - 1)] ==
            doctest::Approx(naive_expectation(model, g, b)).epsilon(1e-9));
    }
  }
  CHECK(restarts > 0);  // the case above really exercised the restart
}

TEST_CASE("qaoa depth: monotone with XY mixers in the subspace (keep 5 of 10)") {
  QuboModel model = test::random_model(10, 0.6, 31, 10);
  model.add_constraint({"keep", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 5});
  for (QaoaOptimizer opt : {QaoaOptimizer::kLbfgs, QaoaOptimizer::kNelderMead}) {
    QaoaOptions o;
    o.layers = 4;
    o.shots = 10;
    o.optimizer = opt;
    o.max_evaluations = 60;
    const SolveResult r = QaoaSolver(o).solve(model, SolveOptions{});
    REQUIRE(r.info.at("space") == "subspace");
    check_monotone(depth_energies(r));
    // Every depth beats the Dicke state's mean (the average over the feasible states).
    double sum = 0.0;
    int count = 0;
    for (std::uint64_t z = 0; z < 1024; ++z) {
      const Assignment x = test::bits_to_assignment(z, 10);
      if (!model.is_feasible(x)) continue;
      sum += model.energy(x);
      ++count;
    }
    CHECK(r.counters.at("expected_energy_p1") < sum / count);
  }
}

}  // namespace
}  // namespace qprune
