// Tests of the hybrid qaoa (solver/qaoa/decomposition.cpp with warm_start.hpp): the warm-start
// circuit against an independent dense-matrix simulation of Egger et al.'s rotated mixer, its
// initial state against the product distribution it encodes (and, under a group, that
// distribution restricted to the group's count), eps = 1/2 against the engine's standard QAOA,
// and on 25 random instances the decomposed result never above the greedy solver's answer nor
// its warm start, never below exact's proven optimum, with every energy recomputed by
// QuboModel::energy.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <string>

#include "qprune/error.hpp"
#include "qprune/exact_solver.hpp"
#include "qprune/greedy_solver.hpp"
#include "qprune/qaoa_solver.hpp"
#include "solver/qaoa/warm_start.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

using Complex = std::complex<double>;
using detail::qaoa::run_warm_start;

/// The warm-start circuit's <C> at fixed angles (no optimisation).
double warm_expectation(const QuboModel& model, bool native, const Assignment& start,
                        double epsilon, const std::vector<double>& angles) {
  QaoaOptions o;
  o.layers = static_cast<int>(angles.size() / 2);
  o.optimizer = QaoaOptimizer::kNone;
  o.warm_epsilon = epsilon;
  o.shots = 1;
  const SolveOptions none;
  const detail::StopCondition stop(none);
  return run_warm_start(model, native, start, o, angles, 1, 0, std::nullopt, stop).expected_energy;
}

TEST_CASE("warm start: <C> equals a dense simulation of Egger et al.'s rotated mixer") {
  // Independent: 2^n x 2^n matrices, qubit i rotated by exp(-i b H_i) = cos b I - i sin b H_i
  // with H_i = sin(theta_i) X + cos(theta_i) Z (H_i^2 = I), from R_Y(theta_i)|0>,
  // theta_i = 2 asin(sqrt(c_i)).
  const int n = 4;
  const QuboModel model = test::random_model(n, 0.8, 31, 6);
  const Assignment start = {1, 0, 0, 1};
  const double eps = 0.2;
  const std::vector<double> angles = {0.4, -0.3, 0.7, 0.25};  // gammas, then betas (p = 2)
  const int dim = 1 << n;
  Eigen::VectorXcd psi = Eigen::VectorXcd::Ones(dim);
  std::vector<double> theta(n);
  for (int i = 0; i < n; ++i) {
    const double c = start[static_cast<std::size_t>(i)] ? 1.0 - eps : eps;
    theta[static_cast<std::size_t>(i)] = 2.0 * std::asin(std::sqrt(c));
  }
  for (int z = 0; z < dim; ++z)
    for (int i = 0; i < n; ++i)
      psi[z] *= ((z >> i) & 1) ? std::sin(theta[static_cast<std::size_t>(i)] / 2)
                               : std::cos(theta[static_cast<std::size_t>(i)] / 2);
  const double scale = model.max_flip_change();
  Eigen::VectorXd c(dim);
  for (int z = 0; z < dim; ++z) c[z] = model.energy(test::bits_to_assignment(z, n));
  for (int l = 0; l < 2; ++l) {
    for (int z = 0; z < dim; ++z) psi[z] *= std::polar(1.0, -angles[l] * c[z] / scale);
    const double b = angles[2 + static_cast<std::size_t>(l)];
    for (int i = 0; i < n; ++i) {
      const double t = theta[static_cast<std::size_t>(i)];
      Eigen::Matrix2cd u;
      u << Complex(std::cos(b), -std::sin(b) * std::cos(t)), Complex(0, -std::sin(b) * std::sin(t)),
          Complex(0, -std::sin(b) * std::sin(t)), Complex(std::cos(b), std::sin(b) * std::cos(t));
      Eigen::VectorXcd next = psi;
      for (int z = 0; z < dim; ++z) {
        const int bit = (z >> i) & 1;
        const int other = z ^ (1 << i);
        next[z] = u(bit, bit) * psi[z] + u(bit, 1 - bit) * psi[other];
      }
      psi = next;
    }
  }
  double mean = 0.0;
  for (int z = 0; z < dim; ++z) mean += std::norm(psi[z]) * c[z];
  CHECK(warm_expectation(model, false, start, eps, angles) == doctest::Approx(mean).epsilon(1e-10));
}

TEST_CASE("warm start: the initial state is the regularised product distribution") {
  const int n = 6;
  QuboModel model = test::random_model(n, 0.7, 12, 9);
  const Assignment start = {1, 1, 0, 0, 1, 0};
  const double eps = 0.3;
  const auto p_one = [&](int i) { return start[static_cast<std::size_t>(i)] ? 1.0 - eps : eps; };
  // gamma = beta = 0: <C> of the initial state. Without groups: the product distribution.
  double expected = 0.0, total = 0.0;
  for (std::uint64_t z = 0; z < (1U << n); ++z) {
    double p = 1.0;
    for (int i = 0; i < n; ++i) p *= ((z >> i) & 1U) ? p_one(i) : 1.0 - p_one(i);
    expected += p * model.energy(test::bits_to_assignment(z, n));
  }
  CHECK(warm_expectation(model, false, start, eps, {0.0, 0.0}) ==
        doctest::Approx(expected).epsilon(1e-12));
  // A group {0, 1, 2, 3} with k = 2 (as start has): the distribution restricted to its count.
  model.add_constraint({"g", {0, 1, 2, 3}, 2});
  expected = 0.0;
  for (std::uint64_t z = 0; z < (1U << n); ++z) {
    const Assignment x = test::bits_to_assignment(z, n);
    if (!model.is_feasible(x)) continue;
    double p = 1.0;
    for (int i = 0; i < n; ++i) p *= ((z >> i) & 1U) ? p_one(i) : 1.0 - p_one(i);
    expected += p * model.energy(x);
    total += p;
  }
  CHECK(warm_expectation(model, true, start, eps, {0.0, 0.0}) ==
        doctest::Approx(expected / total).epsilon(1e-12));
}

TEST_CASE("warm start: eps = 1/2 is the engine's standard QAOA from |+> with the X mixer") {
  const QuboModel model = test::random_model(7, 0.6, 5, 8);
  QaoaOptions o;
  o.init = QaoaInit::kFixed;
  o.gammas = {0.3, 0.55};
  o.betas = {0.6, 0.2};
  o.optimizer = QaoaOptimizer::kNone;
  SolveOptions options;
  options.seed = 2;
  const SolveResult engine = QaoaSolver(o).solve(model, options);
  const Assignment any(7, 1);  // eps = 1/2 makes every qubit |+>, whatever the start
  CHECK(warm_expectation(model, false, any, 0.5, {0.3, 0.55, 0.6, 0.2}) ==
        doctest::Approx(engine.counters.at("expected_energy")).epsilon(1e-10));
}

TEST_CASE("warm start: every sample of a constrained subproblem keeps the group's count") {
  QuboModel model = test::random_model(10, 0.7, 8, 9);
  model.add_constraint({"g", {1, 3, 4, 6, 7, 9}, 3});
  const Assignment start = {0, 1, 1, 1, 0, 0, 1, 0, 0, 0};
  REQUIRE(model.is_feasible(start));
  QaoaOptions o;
  o.layers = 2;
  o.shots = 300;
  const SolveOptions none;
  const detail::StopCondition stop(none);
  const auto run = run_warm_start(model, true, start, o, {}, 40, 9, std::nullopt, stop);
  CHECK(run.dimension == 16 * 20);  // 2^4 free x C(6, 3)
  REQUIRE(!run.best.empty());
  CHECK(model.is_feasible(run.best));
  CHECK(run.best_energy == doctest::Approx(model.energy(run.best)));
  CHECK(run.best_energy >= test::brute_force_minimum(model, true) - 1e-9);
}

TEST_CASE("qaoa hybrid: never above greedy or its warm start, never below exact (25 instances)") {
  int optimal = 0, improved = 0;
  for (int t = 0; t < 25; ++t) {
    const int n = 14 + 2 * (t % 5);
    const std::uint64_t seed = 100 + static_cast<std::uint64_t>(t);
    QuboModel model = test::random_model(n, 0.5, seed, 50);
    const bool grouped = t % 2 == 1;
    if (grouped) {  // half the variables, a quarter of them set
      std::vector<int> g;
      for (int i = 0; i < n; i += 2) g.push_back(i);
      model.add_constraint({"g", g, n / 4});
    }
    CAPTURE(n);
    CAPTURE(seed);
    CAPTURE(grouped);
    QaoaOptions o;
    o.max_qubits = 12;
    o.layers = 2;
    SolveOptions options;
    options.seed = seed;
    const SolveResult r = QaoaSolver(o).solve(model, options);
    REQUIRE(r.info.at("decomposition") != "none");
    REQUIRE(r.has_solution());
    const Sample& best = r.best();
    CHECK(best.feasible);
    CHECK(model.is_feasible(best.x));
    CHECK(best.energy == doctest::Approx(model.energy(best.x)).epsilon(1e-12));
    const SolveResult greedy = GreedySolver().solve(model, options);
    CHECK(best.energy <= model.energy(greedy.best().x) + 1e-9);
    CHECK(best.energy <= r.counters.at("start_energy") + 1e-9);
    const double optimum = ExactSolver().solve(model, SolveOptions{}).best().energy;
    CHECK(best.energy >= optimum - 1e-9);
    optimal += best.energy <= optimum + 1e-9;
    improved += best.energy < r.counters.at("start_energy") - 1e-9;
    // The log has one entry per round, and as many accepted as counted.
    const std::string& log = r.info.at("round_log");
    int entries = 0, accepted = 0;
    for (std::size_t at = 0; (at = log.find(" qubits,", at)) != std::string::npos; ++at) ++entries;
    for (std::size_t at = 0; (at = log.find("accepted", at)) != std::string::npos; ++at) ++accepted;
    CHECK(entries == static_cast<int>(r.counters.at("decomposition_rounds")));
    CHECK(accepted == static_cast<int>(r.counters.at("accepted_rounds")));
  }
  MESSAGE("hybrid qaoa: " << optimal << " of 25 at exact's optimum, " << improved
                          << " improved on the greedy warm start");
  // The search does real work: it lifts some greedy starts, and ends at the optimum on most of
  // these small instances (31 rounds of 12 of at most 22 variables cover each many times).
  CHECK(improved >= 1);
  CHECK(optimal >= 20);
}

TEST_CASE("qaoa hybrid: without the warm start (plain engine subproblems) the same guarantee") {
  QuboModel model = test::random_model(18, 0.5, 77, 50);
  QaoaOptions o;
  o.max_qubits = 10;
  o.layers = 1;
  o.max_evaluations = 20;
  o.warm_start = false;
  o.decomposition_rounds = 5;
  SolveOptions options;
  options.seed = 4;
  const SolveResult r = QaoaSolver(o).solve(model, options);
  CHECK(r.info.at("decomposition").find("plain QAOA") != std::string::npos);
  const SolveResult greedy = GreedySolver().solve(model, options);
  CHECK(r.best().energy <= greedy.best().energy + 1e-9);
  CHECK(r.best().energy == doctest::Approx(model.energy(r.best().x)));
}

TEST_CASE("qaoa hybrid: option validation names the field") {
  QaoaOptions o;
  o.warm_epsilon = 0.0;
  CHECK_THROWS_WITH_AS(QaoaSolver{o}, doctest::Contains("QaoaOptions::warm_epsilon"),
                       InvalidArgument);
  o = {};
  o.subproblem_qubits = 1;
  CHECK_THROWS_WITH_AS(QaoaSolver{o}, doctest::Contains("QaoaOptions::subproblem_qubits"),
                       InvalidArgument);
  o = {};
  o.transfer_evaluations = 0;
  CHECK_THROWS_WITH_AS(QaoaSolver{o}, doctest::Contains("QaoaOptions::transfer_evaluations"),
                       InvalidArgument);
  o = {};
  o.stall_rounds = 0;
  CHECK_THROWS_WITH_AS(QaoaSolver{o}, doctest::Contains("QaoaOptions::stall_rounds"),
                       InvalidArgument);
}

}  // namespace
}  // namespace qprune
