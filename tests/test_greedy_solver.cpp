// GreedySolver: samples are local minima (no flip, and under constraint groups no swap, improves,
// checked with QuboModel energies), feasibility in native mode, agreement with the exhaustive
// optimum on small instances, separable models solved exactly, stop conditions, determinism.
#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <cmath>

#include "qprune/error.hpp"
#include "qprune/exact_solver.hpp"
#include "qprune/greedy_solver.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
using qprune::test::brute_force_minimum;
using qprune::test::random_model;

namespace {

constexpr double kTol = 1e-9;

bool in_group(const QuboModel& m, int v) {
  for (const auto& g : m.constraints())
    for (int u : g.variables)
      if (u == v) return true;
  return false;
}

// No single flip of a free variable lowers E; no swap inside a group lowers E (energies
// recomputed).
void check_local_minimum(const QuboModel& m, const Assignment& x, bool swaps) {
  for (int i = 0; i < m.num_variables(); ++i) {
    if (swaps && in_group(m, i)) continue;
    CHECK(m.flip_delta(x, i) >= -kTol);
  }
  if (!swaps) return;
  const double e = m.energy(x);
  for (const auto& g : m.constraints()) {
    for (int out : g.variables) {
      if (!x[static_cast<std::size_t>(out)]) continue;
      for (int in : g.variables) {
        if (x[static_cast<std::size_t>(in)]) continue;
        Assignment y = x;
        y[static_cast<std::size_t>(out)] = 0;
        y[static_cast<std::size_t>(in)] = 1;
        CHECK(m.energy(y) - e >= -kTol);
      }
    }
  }
}

QuboModel grouped_model(int n, std::uint64_t seed, Storage storage = Storage::kAuto) {
  QuboModel m = random_model(n, 0.6, seed, 10, storage);
  std::vector<int> a, b, c;
  for (int i = 0; i < n; ++i) (i % 3 == 0 ? a : i % 3 == 1 ? b : c).push_back(i);
  m.add_constraint({"a", a, static_cast<int>(a.size()) / 2});
  m.add_constraint({"b", b, 1});  // c stays free
  return m;
}

}  // namespace

TEST_CASE("greedy: every sample is a single-flip local minimum") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const QuboModel m = random_model(20 + 5 * static_cast<int>(seed), seed % 2 ? 0.3 : 1.0, seed);
    SolveOptions o;
    o.num_reads = 20;
    o.seed = seed;
    const SolveResult r = GreedySolver().solve(m, o);
    CHECK(r.status == SolveStatus::kCompleted);
    CHECK(r.counters.at("reads") == 20);
    REQUIRE(r.has_solution());
    for (const Sample& s : r.samples) {
      CHECK(s.energy == m.energy(s.x));
      check_local_minimum(m, s.x, false);
    }
  }
}

TEST_CASE("greedy with groups: samples are feasible and no flip or swap improves them") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const QuboModel m = grouped_model(18 + static_cast<int>(seed), seed,
                                      seed % 2 ? Storage::kSparse : Storage::kDense);
    SolveOptions o;
    o.num_reads = 16;
    o.seed = seed;
    const SolveResult r = GreedySolver().solve(m, o);
    CHECK(r.info.at("constraint_mode") == "native");
    REQUIRE(r.has_solution());
    for (const Sample& s : r.samples) {
      CHECK(s.feasible);
      CHECK(m.is_feasible(s.x));
      check_local_minimum(m, s.x, true);
    }
  }
}

TEST_CASE("greedy in penalty mode: local minima of the penalised model") {
  const QuboModel m = grouped_model(15, 3);
  SolveOptions o;
  o.num_reads = 10;
  o.constraint_mode = ConstraintMode::kPenalty;
  const SolveResult r = GreedySolver().solve(m, o);
  CHECK(r.info.at("constraint_mode") == "penalty");
  const QuboModel p = m.penalized();
  for (const Sample& s : r.samples) {
    CHECK(s.energy == m.energy(s.x));  // reported with the original objective
    check_local_minimum(p, s.x, false);
  }
}

TEST_CASE("greedy solves separable models (no couplings) exactly, with and without groups") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    QuboModel m = random_model(14, 0.0, seed);
    REQUIRE(m.num_couplings() == 0);
    const SolveResult r = GreedySolver().solve(m, {});
    CHECK(r.best().energy == brute_force_minimum(m, false));
    // With groups the greedy construction (read 0) takes the k smallest linear terms: optimal.
    m.add_constraint({"g", {0, 1, 2, 3, 4, 5, 6}, 3});
    m.add_constraint({"h", {7, 8, 9, 10}, 2});
    const SolveResult rc = GreedySolver().solve(m, {});
    CHECK(rc.best().feasible);
    CHECK(rc.best().energy == brute_force_minimum(m, true));
  }
}

TEST_CASE("greedy with 50 reads finds the exhaustive optimum on most small instances") {
  int hits = 0, hits_grouped = 0;
  const int instances = 20;
  for (std::uint64_t seed = 1; seed <= instances; ++seed) {
    SolveOptions o;
    o.num_reads = 50;
    o.seed = seed;
    const QuboModel m = random_model(12, 0.5, seed * 17);
    const double optimum = ExactSolver().solve(m, {}).best().energy;
    CHECK(optimum == brute_force_minimum(m, false));
    const SolveResult r = GreedySolver().solve(m, o);
    CHECK(r.best().energy >= optimum);
    hits += r.best().energy == optimum;
    const QuboModel g = grouped_model(12, seed * 23);
    const SolveResult rg = GreedySolver().solve(g, o);
    CHECK(rg.best().energy >= brute_force_minimum(g, true));
    hits_grouped += rg.best().energy == brute_force_minimum(g, true);
  }
  MESSAGE("greedy found the optimum on " << hits << "/" << instances << " unconstrained and "
                                         << hits_grouped << "/" << instances
                                         << " grouped instances");
  CHECK(hits >= instances * 3 / 4);
  CHECK(hits_grouped >= instances * 3 / 4);
}

TEST_CASE("greedy: same samples with 1 and 2 threads; stop conditions; option validation") {
  const QuboModel m = grouped_model(30, 4);
  SolveOptions o;
  o.num_reads = 12;
  o.seed = 77;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const SolveResult one = GreedySolver().solve(m, o);
  omp_set_num_threads(2);
  const SolveResult two = GreedySolver().solve(m, o);
  omp_set_num_threads(saved);
  REQUIRE(one.samples.size() == two.samples.size());
  for (std::size_t s = 0; s < one.samples.size(); ++s) CHECK(one.samples[s].x == two.samples[s].x);

  std::atomic<bool> stop{true};
  SolveOptions i = o;
  i.interrupt = &stop;
  const SolveResult ri = GreedySolver().solve(random_model(300, 0.5, 5), i);
  CHECK(ri.status == SolveStatus::kInterrupted);
  CHECK(ri.has_solution());

  SolveOptions t = o;
  t.target_energy = 1e300;  // any sample reaches it
  const SolveResult rt = GreedySolver().solve(m, t);
  CHECK(rt.status == SolveStatus::kTargetReached);
  CHECK(rt.has_solution());

  CHECK_THROWS_AS(GreedySolver(GreedyOptions{0}), InvalidArgument);
  SolveOptions native = o;
  native.constraint_mode = ConstraintMode::kNative;
  CHECK(GreedySolver().solve(m, native).best().feasible);
}
