// ExactSolver against the independent brute force of test_support.hpp: unconstrained, with
// constraint groups (native feasible enumeration) and in penalty form; thread-count independence;
// refusal of too-large problems; time limit and interrupt.
#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <random>
#include <string>

#include "qprune/error.hpp"
#include "qprune/exact_solver.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
using qprune::test::brute_force_minimum;
using qprune::test::random_model;

namespace {

// Disjoint groups over a random subset of the variables (some stay free), k drawn in [0, size]
// with the extremes k = 0 and k = size forced on the first two groups when there are enough.
void add_random_groups(QuboModel& m, std::uint64_t seed, int max_groups = 3) {
  std::mt19937_64 rng(seed);
  const int n = m.num_variables();
  std::vector<int> order(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::size_t next = 0;
  const int groups = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(max_groups));
  for (int g = 0; g < groups && next < order.size(); ++g) {
    const auto left = order.size() - next;
    const auto size =
        1 + static_cast<std::size_t>(rng() % std::max<std::uint64_t>(1, left * 2 / 3 + 1));
    CardinalityConstraint c;
    c.name = std::to_string(g);  // (not "g" + ...: GCC 12 gives a false -Wrestrict there)
    for (std::size_t a = 0; a < std::min(size, left); ++a) c.variables.push_back(order[next++]);
    const int s = static_cast<int>(c.variables.size());
    c.k = g == 0 && seed % 3 == 0   ? 0
          : g == 1 && seed % 3 == 1 ? s
                                    : static_cast<int>(rng() % static_cast<std::uint64_t>(s + 1));
    m.add_constraint(c);
  }
}

double count_feasible(const QuboModel& m) {
  double states = 1.0;
  int grouped = 0;
  for (const auto& g : m.constraints()) {
    const int s = static_cast<int>(g.variables.size());
    double c = 1.0;
    for (int i = 0; i < g.k; ++i) c = c * (s - i) / (i + 1);
    states *= c;
    grouped += s;
  }
  return states * std::pow(2.0, m.num_variables() - grouped);
}

}  // namespace

TEST_CASE("exact matches the brute-force minimum on random unconstrained models, n = 1..16") {
  const ExactSolver solver;
  for (int n = 1; n <= 16; ++n) {
    for (const Storage storage : {Storage::kDense, Storage::kSparse}) {
      for (const double density : {0.3, 1.0}) {
        const std::uint64_t seed =
            static_cast<std::uint64_t>(n * 100) + (storage == Storage::kDense);
        const QuboModel m = random_model(n, density, seed, 10, storage);
        const SolveResult r = solver.solve(m, {});
        CAPTURE(n);
        CAPTURE(density);
        REQUIRE(r.status == SolveStatus::kOptimal);
        REQUIRE(r.has_solution());
        const double expected = brute_force_minimum(m, false);
        CHECK(r.best().energy == expected);
        CHECK(m.energy(r.best().x) == expected);
        CHECK(r.counters.at("states_enumerated") == std::pow(2.0, n));
      }
    }
  }
}

TEST_CASE("exact enumerates exactly the feasible assignments under constraint groups") {
  const ExactSolver solver;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    const int n = 2 + static_cast<int>(seed % 13);  // 2..14
    QuboModel m = random_model(n, seed % 2 ? 0.4 : 1.0, seed * 7919, 10,
                               seed % 4 < 2 ? Storage::kDense : Storage::kSparse);
    add_random_groups(m, seed);
    const SolveResult r = solver.solve(m, {});
    CAPTURE(seed);
    REQUIRE(r.status == SolveStatus::kOptimal);
    REQUIRE(r.has_solution());
    CHECK(r.best().feasible);
    CHECK(m.is_feasible(r.best().x));
    const double expected = brute_force_minimum(m, true);
    CHECK(r.best().energy == expected);
    CHECK(m.energy(r.best().x) == expected);
    CHECK(r.counters.at("states_enumerated") == count_feasible(m));
  }
}

TEST_CASE("exact: groups with k = 0 and k = size, and a single large group") {
  QuboModel m = random_model(14, 0.8, 5);
  m.add_constraint({"none", {0, 1, 2}, 0});
  m.add_constraint({"all", {3, 4}, 2});
  m.add_constraint({"half", {5, 6, 7, 8, 9, 10}, 3});  // 11..13 free
  const SolveResult r = ExactSolver().solve(m, {});
  REQUIRE(r.status == SolveStatus::kOptimal);
  CHECK(r.best().energy == brute_force_minimum(m, true));
  CHECK(r.counters.at("states_enumerated") == 20 * 8);

  QuboModel one = random_model(16, 1.0, 6);
  one.add_constraint({"all16",
                      [] {
                        std::vector<int> v;
                        for (int i = 0; i < 16; ++i) v.push_back(i);
                        return v;
                      }(),
                      7});
  const SolveResult r1 = ExactSolver().solve(one, {});
  CHECK(r1.best().energy == brute_force_minimum(one, true));
  CHECK(r1.counters.at("states_enumerated") == 11440);  // C(16, 7)
}

TEST_CASE("exact on the penalty form finds a feasible constrained optimum") {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    QuboModel m = random_model(4 + static_cast<int>(seed % 8), 0.7, seed * 31);
    add_random_groups(m, seed + 1000, 2);
    SolveOptions o;
    o.constraint_mode = ConstraintMode::kPenalty;
    const SolveResult r = ExactSolver().solve(m, o);
    CAPTURE(seed);
    REQUIRE(r.status == SolveStatus::kOptimal);
    CHECK(r.info.at("constraint_mode") == "penalty");
    CHECK(r.best().feasible);
    CHECK(r.best().energy == doctest::Approx(brute_force_minimum(m, true)));
  }
}

TEST_CASE("exact gives the same assignment with 1 and 2 threads (ties included)") {
  const int saved = omp_get_max_threads();
  // Coefficients in [-1, 1] make many ties; the tie rule must not depend on the thread count.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    QuboModel m = random_model(22, 0.5, seed, 1);
    QuboModel c = random_model(22, 0.5, seed + 50, 1);
    c.add_constraint({"a", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 4});
    c.add_constraint({"b", {10, 11, 12, 13, 14, 15}, 2});
    for (const QuboModel* model : {&m, &c}) {
      omp_set_num_threads(1);
      const SolveResult one = ExactSolver().solve(*model, {});
      omp_set_num_threads(2);
      const SolveResult two = ExactSolver().solve(*model, {});
      REQUIRE(one.status == SolveStatus::kOptimal);
      CHECK(one.best().x == two.best().x);
      CHECK(one.best().energy == two.best().energy);
      CHECK(one.counters.at("states_enumerated") == two.counters.at("states_enumerated"));
    }
  }
  omp_set_num_threads(saved);
}

TEST_CASE("exact refuses a too-large enumeration before starting, naming the state count") {
  const QuboModel m = random_model(60, 0.05, 1);
  try {
    (void)ExactSolver().solve(m, {});
    FAIL("expected ResourceError");
  } catch (const ResourceError& e) {
    const std::string what = e.what();
    CHECK(what.find("1152921504606846976 states") != std::string::npos);  // 2^60
    CHECK(what.find("max_variables") != std::string::npos);
  }
  // Feasible count C(40, 20) * 2^20 = 1.4e11 * 1e6 > 2^36 although many assignments are excluded.
  QuboModel c = random_model(60, 0.05, 2);
  std::vector<int> vars;
  for (int i = 0; i < 40; ++i) vars.push_back(i);
  c.add_constraint({"big", vars, 20});
  CHECK_THROWS_AS((void)ExactSolver().solve(c, {}), ResourceError);
  // The same with a raised limit is still refused above 2^48; the options are validated.
  CHECK_THROWS_AS(ExactSolver(ExactOptions{49}), InvalidArgument);
  CHECK_THROWS_AS(ExactSolver(ExactOptions{0}), InvalidArgument);
  // A small feasible set of a large model is fine: C(60, 1) states.
  QuboModel small = random_model(60, 0.1, 3);
  std::vector<int> all;
  for (int i = 0; i < 60; ++i) all.push_back(i);
  small.add_constraint({"one", all, 1});
  const SolveResult r = ExactSolver().solve(small, {});
  CHECK(r.status == SolveStatus::kOptimal);
  CHECK(r.counters.at("states_enumerated") == 60);
  double best = 1e300;
  for (int i = 0; i < 60; ++i) best = std::min(best, small.offset() + small.linear()[i]);
  CHECK(r.best().energy == best);
}

TEST_CASE("exact stops at the time limit or an interrupt with a valid sample, never optimal") {
  const QuboModel m = random_model(34, 0.5, 9);
  SolveOptions o;
  o.time_limit_s = 0.2;
  const SolveResult r = ExactSolver().solve(m, o);
  CHECK(r.status == SolveStatus::kTimeLimit);
  REQUIRE(r.has_solution());
  CHECK(r.best().energy == m.energy(r.best().x));
  CHECK(r.counters.at("states_enumerated") < std::pow(2.0, 34));

  std::atomic<bool> stop{true};
  SolveOptions i;
  i.interrupt = &stop;
  const SolveResult ri = ExactSolver().solve(m, i);
  CHECK(ri.status == SolveStatus::kInterrupted);
  CHECK(ri.has_solution());
}

TEST_CASE("exact handles the empty model") {
  const QuboModel m = QuboModel::from_couplings(0, Eigen::VectorXd(0), {}, 2.5);
  const SolveResult r = ExactSolver().solve(m, {});
  CHECK(r.status == SolveStatus::kOptimal);
  REQUIRE(r.has_solution());
  CHECK(r.best().energy == 2.5);
}

TEST_CASE(
    "exact: a large group alone (swap loop across poll points) agrees with the penalty form") {
  // C(26, 13) = 10400600 feasible states in chunks of > 2^16, so the revolving-door inner loop is
  // cut at poll points; the penalty form enumerates all 2^26 assignments through the free-variable
  // Gray code instead (checked against brute force above).
  QuboModel m = random_model(26, 1.0, 12);
  std::vector<int> all;
  for (int i = 0; i < 26; ++i) all.push_back(i);
  m.add_constraint({"all", all, 13});
  const SolveResult native = ExactSolver().solve(m, {});
  SolveOptions p;
  p.constraint_mode = ConstraintMode::kPenalty;
  const SolveResult penalty = ExactSolver().solve(m, p);
  REQUIRE(native.status == SolveStatus::kOptimal);
  CHECK(native.counters.at("states_enumerated") == 10400600);
  CHECK(native.best().feasible);
  CHECK(penalty.best().feasible);
  CHECK(native.best().energy == penalty.best().energy);
}
