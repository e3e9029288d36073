// Tests of the "qaoa" solver: p = 1 expectation at the reported angles against exact enumeration,
// the sampled best against the brute force of test_support.hpp, reproducibility from the seed,
// native constraints (every sample feasible), optimisers, the decomposition on 40 variables, and
// option validation.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <sstream>

#include "qprune/error.hpp"
#include "qprune/qaoa_solver.hpp"
#include "qprune/solvers.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

SolveOptions seeded(std::uint64_t seed) {
  SolveOptions o;
  o.seed = seed;
  return o;
}

TEST_CASE("qaoa: p = 1 expected energy equals exact enumeration at the reported angles") {
  const QuboModel model = test::random_model(5, 0.8, 4, 5);
  QaoaOptions o;
  o.layers = 1;
  o.optimizer = QaoaOptimizer::kCobyla;
  const SolveResult r = QaoaSolver(o).solve(model, seeded(1));
  const auto [g, b] = test::parse_angles(r.info.at("angles"));
  REQUIRE(g.size() == 1);
  // Independent p = 1 amplitude: <z|U|+> = 2^{-n/2} sum_y e^{-i g C(y)/B} prod_j <z_j|e^{-i b
  // X}|y_j>.
  const int n = 5;
  const double scale = model.max_flip_change();
  std::vector<double> c(32);
  for (std::uint64_t z = 0; z < 32; ++z) c[z] = model.energy(test::bits_to_assignment(z, n));
  double mean = 0.0, best = 1e300, p_best = 0.0;
  for (double v : c) best = std::min(best, v);
  for (std::uint64_t z = 0; z < 32; ++z) {
    std::complex<double> amp = 0.0;
    for (std::uint64_t y = 0; y < 32; ++y) {
      std::complex<double> t = std::exp(std::complex<double>(0, -g[0] * c[y] / scale));
      for (int j = 0; j < n; ++j)
        t *= ((z >> j) & 1U) == ((y >> j) & 1U) ? std::complex<double>(std::cos(b[0]), 0)
                                                : std::complex<double>(0, -std::sin(b[0]));
      amp += t;
    }
    amp /= std::sqrt(32.0);
    mean += std::norm(amp) * c[z];
    if (c[z] == best) p_best += std::norm(amp);
  }
  CHECK(r.counters.at("expected_energy") == doctest::Approx(mean).epsilon(1e-10));
  CHECK(r.counters.at("optimum_probability") == doctest::Approx(p_best).epsilon(1e-10));
  CHECK(r.counters.at("optimum_energy") == doctest::Approx(best));
  // QAOA at optimised angles beats the uniform superposition's mean.
  double uniform = 0.0;
  for (double v : c) uniform += v / 32.0;
  CHECK(r.counters.at("expected_energy") < uniform);
}

TEST_CASE("qaoa: the sampled best reaches the brute-force optimum on small problems") {
  for (std::uint64_t seed : {1, 2, 3}) {
    const QuboModel model = test::random_model(9, 0.5, seed, 10);
    QaoaOptions o;
    o.layers = 2;
    o.shots = 2000;
    o.greedy_descent = false;
    SolverSettings settings;
    settings.qaoa = o;
    const SolveResult r = make_solver("qaoa", settings)->solve(model, seeded(seed));
    CHECK(r.best().energy == doctest::Approx(test::brute_force_minimum(model, false)));
    CHECK(r.counters.at("approximation_ratio") > 0.5);
    for (const Sample& s : r.samples) CHECK(s.energy == doctest::Approx(model.energy(s.x)));
  }
}

TEST_CASE("qaoa: results are reproducible from the seed") {
  const QuboModel model = test::random_model(8, 0.5, 9);
  QaoaOptions o;
  o.layers = 2;
  o.shots = 50;
  const SolveResult a = QaoaSolver(o).solve(model, seeded(5));
  const SolveResult b = QaoaSolver(o).solve(model, seeded(5));
  REQUIRE(a.samples.size() == b.samples.size());
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    CHECK(a.samples[i].x == b.samples[i].x);
    CHECK(a.samples[i].num_occurrences == b.samples[i].num_occurrences);
  }
}

TEST_CASE("qaoa: native constraints give only feasible samples; all optimisers; float") {
  QuboModel model = test::random_model(10, 0.5, 3, 10);
  model.add_constraint({"a", {0, 2, 4, 6, 8}, 2});
  model.add_constraint({"b", {1, 3, 5}, 1});
  const double optimum = test::brute_force_minimum(model, true);
  for (QaoaOptimizer opt :
       {QaoaOptimizer::kLbfgs, QaoaOptimizer::kCobyla, QaoaOptimizer::kNelderMead}) {
    for (QaoaSpace space : {QaoaSpace::kSubspace, QaoaSpace::kFull}) {
      QaoaOptions o;
      o.optimizer = opt;
      o.space = space;
      o.layers = 2;
      o.shots = 2000;
      o.max_evaluations = 60;
      const SolveResult r = QaoaSolver(o).solve(model, seeded(2));
      for (const Sample& s : r.samples) CHECK(s.feasible);
      CHECK(r.counters.at("feasible_probability") == doctest::Approx(1.0).epsilon(1e-12));
      CHECK(r.best().energy == doctest::Approx(optimum));
    }
  }
  QaoaOptions f;
  f.precision = QaoaPrecision::kFloat;
  f.layers = 1;
  f.optimizer = QaoaOptimizer::kNone;
  f.init = QaoaInit::kFixed;
  f.gammas = {0.4};
  f.betas = {0.3};
  QaoaOptions d = f;
  d.precision = QaoaPrecision::kDouble;
  const SolveResult rf = QaoaSolver(f).solve(model, seeded(1));
  const SolveResult rd = QaoaSolver(d).solve(model, seeded(1));
  CHECK(std::abs(rf.counters.at("expected_energy") - rd.counters.at("expected_energy")) <
        1e-5 * std::max(1.0, std::abs(rd.counters.at("expected_energy"))));
  // The penalty mode reports how much mass is infeasible.
  SolveOptions pen = seeded(1);
  pen.constraint_mode = ConstraintMode::kPenalty;
  const SolveResult rp = QaoaSolver(d).solve(model, pen);
  CHECK(rp.counters.at("feasible_probability") < 1.0);
  CHECK(rp.info.at("mixer") == "x");
}

TEST_CASE("qaoa: decomposition on 40 variables keeps feasibility and improves on its start") {
  QuboModel model = test::random_model(40, 0.3, 8, 10);
  std::vector<int> g;
  for (int i = 0; i < 40; i += 2) g.push_back(i);
  model.add_constraint({"even", g, 6});
  QaoaOptions o;
  o.max_qubits = 10;
  o.layers = 1;
  o.shots = 200;
  o.max_evaluations = 30;
  o.decomposition_rounds = 6;
  const SolveResult r = QaoaSolver(o).solve(model, seeded(3));
  CHECK(r.info.at("decomposition").find("rounds") != std::string::npos);
  CHECK(r.best().feasible);
  CHECK(r.best().energy <= r.counters.at("start_energy") + 1e-9);
  for (const Sample& s : r.samples) CHECK(s.feasible);
}

TEST_CASE("qaoa: ftol_rel stops the optimiser earlier on the same path") {
  // One layer: NLopt's L-BFGS takes the same steps with and without the tolerance, so the run
  // with ftol_rel is a prefix of the other: fewer evaluations, <C> no lower.
  const QuboModel model = test::random_model(12, 0.6, 21, 10);
  QaoaOptions o;
  o.layers = 1;
  o.shots = 100;
  o.max_evaluations = 200;
  o.xtol_rel = 0.0;
  const SolveResult full = QaoaSolver(o).solve(model, seeded(4));
  o.ftol_rel = 1e-3;
  const SolveResult early = QaoaSolver(o).solve(model, seeded(4));
  MESSAGE("evaluations " << full.counters.at("evaluations") << " -> "
                         << early.counters.at("evaluations"));
  CHECK(early.counters.at("evaluations") < full.counters.at("evaluations"));
  CHECK(early.counters.at("expected_energy") >= full.counters.at("expected_energy") - 1e-12);
}

TEST_CASE("qaoa: option validation names the field") {
  QaoaOptions o;
  o.layers = 0;
  CHECK_THROWS_WITH_AS(QaoaSolver{o}, doctest::Contains("QaoaOptions::layers"), InvalidArgument);
  o = {};
  o.init = QaoaInit::kFixed;
  o.gammas = {0.1};
  CHECK_THROWS_WITH_AS(QaoaSolver{o}, doctest::Contains("QaoaOptions::gammas"), InvalidArgument);
  o = {};
  o.ftol_rel = -1e-3;
  CHECK_THROWS_WITH_AS(QaoaSolver{o}, doctest::Contains("ftol_rel"), InvalidArgument);
  o = {};
  o.max_qubits = 41;
  CHECK_THROWS_AS(QaoaSolver{o}, InvalidArgument);
  CHECK(make_solver("QAOA")->name() == "qaoa");
}

}  // namespace
}  // namespace qprune

TEST_CASE("qaoa decomposes a constrained problem whose group has more than 64 variables") {
  // Regression: the feasible-space size C(m, k) came out 0 for m > 64, so a pruning layer of
  // hundreds of units went to the direct simulator and failed instead of being decomposed.
  using namespace qprune;
  QuboModel model = qprune::test::random_model(100, 0.3, 11);
  std::vector<int> all(100);
  for (int i = 0; i < 100; ++i) all[static_cast<std::size_t>(i)] = i;
  model.add_constraint({"layer.0", all, 40});
  QaoaOptions q;
  q.decomposition_rounds = 2;
  q.layers = 1;
  const SolveResult r = QaoaSolver(q).solve(model, SolveOptions{});
  REQUIRE(r.has_solution());
  CHECK(r.best().feasible);
  CHECK(r.info.at("decomposition") != "none");
}
