// One test body run over every registered solver, with `exact` as the oracle: the optimum is
// found on small instances, samples are honest (energy and feasibility recomputed from the model),
// native constraint handling never leaves the feasible set, and samples do not depend on the
// number of threads. A new solver is covered as soon as it is in the registry.
#include <doctest/doctest.h>
#include <omp.h>

#include "qprune/solvers.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

namespace {

// The random baseline is only held to honesty, not to finding optima.
bool is_baseline(const std::string& name) { return name == "random"; }

SolveOptions options_for(const std::string& name, std::uint64_t seed) {
  SolveOptions o;
  o.seed = seed;
  o.num_reads = name == "qaoa" ? 1 : 16;
  return o;
}

SolverSettings settings_for_small_problems() {
  SolverSettings s;
  s.qaoa.shots = 4096;  // enough shots that n <= 10 samples cover the optimum's neighbourhood
  return s;
}

void check_honest(const QuboModel& model, const SolveResult& result) {
  REQUIRE(result.has_solution());
  for (const Sample& s : result.samples) {
    CHECK(s.energy == model.energy(s.x));
    CHECK(s.feasible == model.is_feasible(s.x));
  }
  for (std::size_t i = 1; i < result.samples.size(); ++i) {
    const Sample& a = result.samples[i - 1];
    const Sample& b = result.samples[i];
    CHECK((a.feasible > b.feasible || (a.feasible == b.feasible && a.energy <= b.energy)));
  }
}

QuboModel constrained_model(std::uint64_t seed) {
  QuboModel m = test::random_model(10, 0.7, seed, 20);
  m.add_constraint({"layer.0", {0, 1, 2, 3, 4, 5}, 3});
  m.add_constraint({"layer.1", {6, 7, 8}, 1});
  return m;  // variable 9 is free
}

}  // namespace

TEST_CASE("a default-constructed result says it was never run") {
  const SolveResult r;
  CHECK(r.status == SolveStatus::kNotRun);
  CHECK_FALSE(r.has_solution());
}

TEST_CASE("every solver: optimum of small unconstrained problems, honest samples") {
  const SolverSettings settings = settings_for_small_problems();
  for (const std::string& name : solver_names()) {
    CAPTURE(name);
    const auto solver = make_solver(name, settings);
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      CAPTURE(seed);
      const QuboModel model = test::random_model(10, 0.6, 100 + seed);
      const double optimum = make_solver("exact")->solve(model, {}).best().energy;
      CHECK(optimum == test::brute_force_minimum(model, false));  // the oracle itself
      const SolveResult result = solver->solve(model, options_for(name, seed));
      check_honest(model, result);
      CHECK(result.solver == name);
      CHECK(result.status != SolveStatus::kNotRun);
      if (!is_baseline(name)) CHECK(result.best().energy == optimum);
    }
  }
}

TEST_CASE("every solver: constraint groups, native and penalty modes") {
  const SolverSettings settings = settings_for_small_problems();
  for (const std::string& name : solver_names()) {
    CAPTURE(name);
    const auto solver = make_solver(name, settings);
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      CAPTURE(seed);
      const QuboModel model = constrained_model(seed);
      const double optimum = test::brute_force_minimum(model, true);
      SolveOptions native = options_for(name, seed);
      native.constraint_mode = ConstraintMode::kAuto;
      const SolveResult r = solver->solve(model, native);
      check_honest(model, r);
      for (const Sample& s : r.samples) CHECK(s.feasible);
      if (!is_baseline(name)) CHECK(r.best().energy == optimum);

      SolveOptions penalty = options_for(name, seed);
      penalty.constraint_mode = ConstraintMode::kPenalty;
      penalty.penalty_weight = 0.5;  // deliberately too small: infeasible samples must say so
      const SolveResult p = solver->solve(model, penalty);
      check_honest(model, p);
    }
  }
}

TEST_CASE("every solver: samples do not depend on the number of threads") {
  const SolverSettings settings = settings_for_small_problems();
  const QuboModel model = test::random_model(12, 0.5, 77);
  const int threads = omp_get_max_threads();
  for (const std::string& name : solver_names()) {
    CAPTURE(name);
    const auto solver = make_solver(name, settings);
    const SolveOptions o = options_for(name, 5);
    omp_set_num_threads(1);
    const SolveResult one = solver->solve(model, o);
    omp_set_num_threads(2);
    const SolveResult two = solver->solve(model, o);
    omp_set_num_threads(threads);
    REQUIRE(one.samples.size() == two.samples.size());
    for (std::size_t i = 0; i < one.samples.size(); ++i) {
      CHECK(one.samples[i].x == two.samples[i].x);
      CHECK(one.samples[i].num_occurrences == two.samples[i].num_occurrences);
    }
  }
}
