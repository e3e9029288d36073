// Tests of the coupling-graph use (solver/graph/): components checked against an independent
// breadth-first search, the split solve against the brute force and the exact solver on
// disconnected models.
#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <set>

#include "qprune/exact_solver.hpp"
#include "qprune/solvers.hpp"
#include "solver/graph/coupling_graph.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

/// Blocks of random models side by side (no coupling between blocks), with the offsets summed.
QuboModel block_diagonal(const std::vector<QuboModel>& blocks, Storage storage = Storage::kAuto) {
  int n = 0;
  for (const QuboModel& b : blocks) n += b.num_variables();
  Eigen::VectorXd c(n);
  std::vector<Coupling> q;
  double offset = 0.0;
  int base = 0;
  for (const QuboModel& b : blocks) {
    c.segment(base, b.num_variables()) = b.linear();
    b.for_each_coupling([&](int i, int j, double v) { q.push_back({base + i, base + j, v}); });
    offset += b.offset();
    base += b.num_variables();
  }
  return QuboModel::from_couplings(n, c, q, offset, storage);
}

/// Independent reference: component label of every variable by breadth-first search over
/// coupling(i, j) != 0 and over shared constraint groups.
std::vector<int> bfs_components(const QuboModel& m) {
  const int n = m.num_variables();
  std::vector<int> label(static_cast<std::size_t>(n), -1);
  int next = 0;
  for (int s = 0; s < n; ++s) {
    if (label[static_cast<std::size_t>(s)] >= 0) continue;
    std::deque<int> queue{s};
    label[static_cast<std::size_t>(s)] = next;
    while (!queue.empty()) {
      const int v = queue.front();
      queue.pop_front();
      std::vector<int> adjacent;
      for (int w = 0; w < n; ++w)
        if (w != v && m.coupling(v, w) != 0.0) adjacent.push_back(w);
      for (const CardinalityConstraint& g : m.constraints())
        if (std::find(g.variables.begin(), g.variables.end(), v) != g.variables.end())
          adjacent.insert(adjacent.end(), g.variables.begin(), g.variables.end());
      for (int w : adjacent) {
        if (label[static_cast<std::size_t>(w)] >= 0) continue;
        label[static_cast<std::size_t>(w)] = next;
        queue.push_back(w);
      }
    }
    ++next;
  }
  return label;
}

/// Same partition: a bijection between the labels.
void check_same_partition(const std::vector<int>& a, const std::vector<int>& b) {
  REQUIRE(a.size() == b.size());
  std::set<std::pair<int, int>> pairs([&] {
    std::set<std::pair<int, int>> p;
    for (std::size_t i = 0; i < a.size(); ++i) p.insert({a[i], b[i]});
    return p;
  }());
  std::set<int> la(a.begin(), a.end()), lb(b.begin(), b.end());
  CHECK(pairs.size() == la.size());
  CHECK(la.size() == lb.size());
}

TEST_CASE("coupling graph: components match a breadth-first search, dense and sparse") {
  for (std::uint64_t seed : {1, 2, 3}) {
    const QuboModel blocks = block_diagonal(
        {test::random_model(6, 0.5, seed), test::random_model(1, 0.0, seed + 10),
         test::random_model(9, 0.3, seed + 20), test::random_model(5, 0.05, seed + 30)});
    for (Storage storage : {Storage::kDense, Storage::kSparse}) {
      QuboModel m = blocks.with_storage(storage);
      const auto c = detail::graph::connected_components(m);
      check_same_partition(c.component_of, bfs_components(m));
      for (int k = 0; k < c.count(); ++k) {
        const auto& members = c.members[static_cast<std::size_t>(k)];
        CHECK(std::is_sorted(members.begin(), members.end()));
        for (int v : members) CHECK(c.component_of[static_cast<std::size_t>(v)] == k);
      }
      // A group spanning two blocks joins them.
      m.add_constraint({"bridge", {0, 7}, 1});
      const auto joined = detail::graph::connected_components(m);
      check_same_partition(joined.component_of, bfs_components(m));
      CHECK(joined.component_of[0] == joined.component_of[7]);
    }
  }
  CHECK(detail::graph::connected_components(QuboModel::from_couplings(0, Eigen::VectorXd(0), {}))
            .count() == 0);
}

SolveOptions split(std::uint64_t seed, int reads = 4) {
  SolveOptions o;
  o.seed = seed;
  o.num_reads = reads;
  o.split_components = true;
  return o;
}

TEST_CASE("split solve: small disconnected models are solved to the proven optimum") {
  for (std::uint64_t seed : {7, 8, 9}) {
    const QuboModel m = block_diagonal(
        {test::random_model(7, 0.6, seed), test::random_model(1, 0.0, seed + 1),
         test::random_model(8, 0.4, seed + 2), test::random_model(1, 0.0, seed + 3)});
    const double optimum = test::brute_force_minimum(m, false);
    for (const char* name : {"sa", "greedy", "random", "tabu"}) {
      CAPTURE(name);
      const SolveResult r = make_solver(name)->solve(m, split(seed));
      REQUIRE(r.has_solution());
      CHECK(r.best().energy == doctest::Approx(optimum));
      CHECK(r.best().energy == doctest::Approx(m.energy(r.best().x)));
      CHECK(r.status == SolveStatus::kOptimal);  // every part was small enough to prove
      CHECK(r.counters.at("components") == 4);
      CHECK(r.solver == name);
    }
  }
}

TEST_CASE("split solve: constraint groups stay whole, native and penalty modes") {
  QuboModel m = block_diagonal({test::random_model(6, 0.5, 11), test::random_model(6, 0.5, 12),
                                test::random_model(5, 0.5, 13)});
  m.add_constraint({"a", {0, 1, 2, 3}, 2});
  m.add_constraint({"b", {6, 8, 10}, 1});
  m.add_constraint({"c", {5, 12}, 1});  // joins the first two blocks
  const double optimum = test::brute_force_minimum(m, true);
  for (ConstraintMode mode : {ConstraintMode::kAuto, ConstraintMode::kPenalty}) {
    SolveOptions o = split(3);
    o.constraint_mode = mode;
    const SolveResult r = make_solver("sa")->solve(m, o);
    REQUIRE(r.has_solution());
    CHECK(r.best().feasible);
    CHECK(r.best().energy == doctest::Approx(optimum));
    CHECK(r.counters.at("components") == detail::graph::connected_components(m).count());
    CHECK(r.counters.at("components") >= 2);
  }
}

TEST_CASE("split solve: a large part goes to the chosen solver, a connected model is untouched") {
  const QuboModel big = test::random_model(26, 0.3, 21);
  const QuboModel small = test::random_model(5, 0.5, 22);
  const QuboModel m = block_diagonal({big, small});
  // Independent parts: the whole minimum is the sum of the parts' minima (offsets included).
  const double optimum =
      ExactSolver().solve(big, {}).best().energy + test::brute_force_minimum(small, false);
  AnnealOptions a;
  a.num_sweeps = 2000;
  SolverSettings settings;
  settings.anneal = a;
  const SolveResult r = make_solver("sa", settings)->solve(m, split(5, 8));
  REQUIRE(r.has_solution());
  CHECK(r.best().energy == doctest::Approx(optimum));
  CHECK(r.status == SolveStatus::kCompleted);  // the sa part claims no proof
  CHECK(r.counters.at("components_exact") == 1);

  // A connected model: the same result as without splitting.
  SolveOptions plain = split(5, 8);
  plain.split_components = false;
  const SolveResult with = make_solver("sa", settings)->solve(big, split(5, 8));
  const SolveResult without = make_solver("sa", settings)->solve(big, plain);
  CHECK(with.best().x == without.best().x);
  CHECK(with.info.count("components") == 0);
}

}  // namespace
}  // namespace qprune
