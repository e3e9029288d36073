// Solvers on the refit objective against exhaustive search (the oracle) on small layers: greedy
// (OBS/ZipLM), swap descent, tabu and annealing, for neurons (one channel per unit), heads (several
// channels) and per-KV-group constraints. The local searches must never be worse than their
// greedy start and must find the proven optimum on most instances.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <numeric>
#include <random>

#include "qprune/error.hpp"
#include "qprune/refit_search.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
using qprune::test::normal_matrix;

namespace {

// A layer whose inputs are strongly correlated (so that the refit matters and greedy is not
// always optimal), seen through perturbed inputs (the sequential case).
RefitObjective random_objective(UnitLayout layout, std::mt19937_64& rng) {
  const int n = layout.num_channels();
  const Eigen::MatrixXd mix = normal_matrix(n, n / 2 + 1, rng);
  const Eigen::MatrixXd a =
      mix * normal_matrix(n / 2 + 1, 300, rng) + 0.3 * normal_matrix(n, 300, rng);
  const Eigen::MatrixXd w = normal_matrix(6, n, rng);
  const Eigen::MatrixXd y = w * (a + 0.2 * normal_matrix(n, 300, rng));
  return RefitObjective(a * a.transpose(), y * a.transpose(), y.squaredNorm(), layout);
}

}  // namespace

TEST_CASE("refit solvers against exhaustive search") {
  struct Case {
    UnitLayout layout;
    const char* name;
  };
  const Case cases[] = {
      {{16, 1, 1, 10}, "neurons 16 keep 10"},
      {{18, 1, 1, 7}, "neurons 18 keep 7"},
      {{8, 3, 1, 4}, "heads 8 (width 3) keep 4"},
      {{12, 2, 3, 2}, "heads 12 in 3 KV groups keep 2 each"},
  };
  std::mt19937_64 rng(21);
  for (const Case& c : cases) {
    CAPTURE(c.name);
    int tabu_optimal = 0, sa_optimal = 0, greedy_optimal = 0;
    const int instances = 10;
    for (int t = 0; t < instances; ++t) {
      const RefitObjective obj = random_objective(c.layout, rng);
      const RefitSearchResult best = exhaustive_refit(obj);
      CHECK(best.status == SolveStatus::kOptimal);
      const double tol = 1e-9 * obj.target_energy();
      const RefitSearchResult greedy = obs_greedy(obj);
      CHECK(feasible_for(c.layout, greedy.keep));
      CHECK(greedy.error >= best.error - tol);
      RefitSearchOptions o;
      o.seed = static_cast<std::uint64_t>(t);
      o.sweeps = 300;  // a slow schedule: what the algorithm can do, not the default's speed
      const RefitSearchResult descent = swap_descent(obj, greedy.keep, o);
      const RefitSearchResult tabu = swap_tabu(obj, greedy.keep, o);
      const RefitSearchResult sa = swap_anneal(obj, greedy.keep, o);
      for (const RefitSearchResult* r : {&descent, &tabu, &sa}) {
        CAPTURE(r->method);
        CHECK(feasible_for(c.layout, r->keep));
        CHECK(r->error <= greedy.error + tol);  // never worse than the start
        CHECK(r->error >= best.error - tol);    // never better than the optimum
        CHECK(r->start_error == doctest::Approx(greedy.error).epsilon(1e-9));
      }
      greedy_optimal += greedy.error <= best.error + tol;
      tabu_optimal += tabu.error <= best.error + tol;
      sa_optimal += sa.error <= best.error + tol;
    }
    MESSAGE(std::string(c.name) << ": optimal greedy " << greedy_optimal << ", tabu "
                                << tabu_optimal << ", sa " << sa_optimal << " of " << instances);
    CHECK(tabu_optimal >= 8);
    CHECK(sa_optimal >= 8);
  }
}

TEST_CASE("refit solvers refuse infeasible starts and report interrupts") {
  std::mt19937_64 rng(22);
  const RefitObjective obj = random_objective({10, 1, 1, 5}, rng);
  CHECK_THROWS_AS((void)swap_tabu(obj, Assignment(10, 1)), InvalidArgument);
  std::atomic<bool> stop{true};
  RefitSearchOptions o;
  o.interrupt = &stop;
  const RefitSearchResult g = obs_greedy(obj, o);
  CHECK(g.status == SolveStatus::kInterrupted);
  CHECK(feasible_for(obj.layout(), g.keep));  // a greedy always finishes its mask
  const RefitSearchResult t = swap_tabu(obj, g.keep, o);
  CHECK(t.status == SolveStatus::kInterrupted);
  CHECK(t.keep == g.keep);
}
