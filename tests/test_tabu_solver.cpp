// Tabu search: optimum of small instances against an independent brute force (plain and under
// constraint groups), thread-count independence, dense == sparse, feasibility of swap mode and
// honest flags in penalty mode, local minimality of every sample, and the stop statuses; for the
// breakout method also the proven optima of small Biq Mac Max-Cut instances and its choice by
// kAuto.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>

#include "qprune/comparison.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/solvers.hpp"
#include "qprune/tabu_solver.hpp"
#include "tests/test_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace qprune;
using qprune::test::brute_force_minimum;
using qprune::test::random_model;

namespace {

TabuOptions small_options() {
  TabuOptions o;
  o.max_iterations = 4000;
  o.stall_iterations = 200;  // several restarts per read, so perturbation and relinking both run
  return o;
}

// Random model with two groups ("exactly 2 of 5", "exactly 1 of 4") and free variables.
QuboModel constrained_model(int n, double density, std::uint64_t seed, Storage storage) {
  QuboModel m = random_model(n, density, seed, 10, storage);
  m.add_constraint({"a", {0, 2, 4, 6, 8}, 2});
  m.add_constraint({"b", {1, 3, 5, 7}, 1});
  return m;
}

void check_flip_local_minimum(const QuboModel& m, const Assignment& x) {
  for (int i = 0; i < m.num_variables(); ++i) CHECK(m.flip_delta(x, i) >= -1e-9);
}

// No swap inside a group and no flip of a variable outside every group improves x.
void check_swap_local_minimum(const QuboModel& m, const Assignment& x) {
  const double e = m.energy(x);
  std::vector<bool> grouped(static_cast<std::size_t>(m.num_variables()), false);
  for (const CardinalityConstraint& g : m.constraints()) {
    for (int in : g.variables) {
      grouped[static_cast<std::size_t>(in)] = true;
      for (int out : g.variables) {
        if (x[static_cast<std::size_t>(in)] != 0 || x[static_cast<std::size_t>(out)] != 1) continue;
        Assignment y = x;
        y[static_cast<std::size_t>(in)] = 1;
        y[static_cast<std::size_t>(out)] = 0;
        CHECK(m.energy(y) >= e - 1e-9);
      }
    }
  }
  for (int i = 0; i < m.num_variables(); ++i)
    if (!grouped[static_cast<std::size_t>(i)]) CHECK(m.flip_delta(x, i) >= -1e-9);
}

void check_same_samples(const SolveResult& a, const SolveResult& b) {
  REQUIRE(a.samples.size() == b.samples.size());
  for (std::size_t s = 0; s < a.samples.size(); ++s) {
    CHECK(a.samples[s].x == b.samples[s].x);
    CHECK(a.samples[s].energy == b.samples[s].energy);
    CHECK(a.samples[s].num_occurrences == b.samples[s].num_occurrences);
  }
}

}  // namespace

TEST_CASE("tabu finds the brute-force optimum of small unconstrained models") {
  const TabuSearch tabu(small_options());
  for (int n : {4, 9, 14}) {
    for (double density : {0.3, 1.0}) {
      for (std::uint64_t seed = 1; seed <= 4; ++seed) {
        for (Storage storage : {Storage::kDense, Storage::kSparse}) {
          const QuboModel m =
              random_model(n, density, 100 * seed + static_cast<std::uint64_t>(n), 10, storage);
          const double optimum = brute_force_minimum(m, false);
          for (std::uint64_t run_seed : {0ULL, 7ULL, 12345ULL}) {
            SolveOptions o;
            o.seed = run_seed;
            o.num_reads = 2;
            const SolveResult r = tabu.solve(m, o);
            CAPTURE(n);
            CAPTURE(seed);
            CAPTURE(run_seed);
            REQUIRE(r.status == SolveStatus::kCompleted);
            CHECK(r.best().energy == doctest::Approx(optimum));
            CHECK(r.best().energy == m.energy(r.best().x));
            for (const Sample& s : r.samples) check_flip_local_minimum(m, s.x);
          }
        }
      }
    }
  }
}

TEST_CASE("tabu in swap mode finds the feasible optimum and is never infeasible") {
  const TabuSearch tabu(small_options());
  for (int n : {10, 14}) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      for (Storage storage : {Storage::kDense, Storage::kSparse}) {
        const QuboModel m =
            constrained_model(n, 0.6, 31 * seed + static_cast<std::uint64_t>(n), storage);
        const double optimum = brute_force_minimum(m, true);
        for (ConstraintMode mode : {ConstraintMode::kAuto, ConstraintMode::kNative}) {
          for (std::uint64_t run_seed : {1ULL, 99ULL}) {
            SolveOptions o;
            o.seed = run_seed;
            o.num_reads = 3;
            o.constraint_mode = mode;
            const SolveResult r = tabu.solve(m, o);
            CAPTURE(seed);
            CAPTURE(run_seed);
            CHECK(r.info.at("constraint_mode") == "native");
            CHECK(r.best().energy == doctest::Approx(optimum));
            for (const Sample& s : r.samples) {
              CHECK(s.feasible);
              CHECK(m.is_feasible(s.x));
              check_swap_local_minimum(m, s.x);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("swap mode keeps groups with k = 0 or k = size fixed") {
  QuboModel m = random_model(12, 0.8, 5);
  m.add_constraint({"none", {0, 1, 2}, 0});
  m.add_constraint({"all", {3, 4}, 2});
  m.add_constraint({"some", {5, 6, 7, 8}, 3});
  SolveOptions o;
  o.num_reads = 4;
  const SolveResult r = TabuSearch(small_options()).solve(m, o);
  CHECK(r.best().energy == doctest::Approx(brute_force_minimum(m, true)));
  for (const Sample& s : r.samples) {
    CHECK(m.is_feasible(s.x));
    CHECK(s.x[0] + s.x[1] + s.x[2] == 0);
    CHECK(s.x[3] + s.x[4] == 2);
  }
}

TEST_CASE("penalty mode reports honest feasibility and original energies") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const QuboModel m = constrained_model(12, 0.7, seed, Storage::kAuto);
    SolveOptions o;
    o.seed = seed;
    o.num_reads = 6;
    o.constraint_mode = ConstraintMode::kPenalty;
    const SolveResult r = TabuSearch(small_options()).solve(m, o);
    CHECK(r.info.at("constraint_mode") == "penalty");
    // The default weight exceeds every flip change, so the optimum of the penalised form is the
    // feasible optimum.
    CHECK(r.best().feasible);
    CHECK(r.best().energy == doctest::Approx(brute_force_minimum(m, true)));
    for (const Sample& s : r.samples) {
      CHECK(s.feasible == m.is_feasible(s.x));
      CHECK(s.energy == m.energy(s.x));
    }
    // A tiny weight makes infeasible assignments attractive: they must be flagged as such.
    o.penalty_weight = 0.01;
    const SolveResult weak = TabuSearch(small_options()).solve(m, o);
    for (const Sample& s : weak.samples) CHECK(s.feasible == m.is_feasible(s.x));
  }
}

TEST_CASE("tabu samples do not depend on the number of threads") {
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  for (Storage storage : {Storage::kDense, Storage::kSparse}) {
    for (bool constrained : {false, true}) {
      QuboModel m = random_model(60, 0.3, 17, 50, storage);
      if (constrained) m.add_constraint({"g", {1, 5, 9, 13, 17, 21, 25, 29, 33}, 4});
      SolveOptions o;
      o.seed = 2024;
      o.num_reads = 5;
      TabuOptions t;
      t.max_iterations = 3000;
      t.stall_iterations = 150;
      omp_set_num_threads(1);
      const SolveResult one = TabuSearch(t).solve(m, o);
      omp_set_num_threads(2);
      const SolveResult two = TabuSearch(t).solve(m, o);
      check_same_samples(one, two);
      CHECK(one.counters.at("iterations") == two.counters.at("iterations"));
      CHECK(one.counters.at("restarts") == two.counters.at("restarts"));
      CHECK(one.counters.at("restarts") > 0);
    }
  }
  omp_set_num_threads(saved);
#endif
}

TEST_CASE("dense and sparse forms follow the same trajectory on integer models") {
  // Integer coefficients make every gain update exact, so both forms see identical gains and
  // ties, and draw the same random numbers.
  const QuboModel sparse = random_model(50, 0.5, 8, 20, Storage::kSparse);
  const QuboModel dense = sparse.with_storage(Storage::kDense);
  SolveOptions o;
  o.seed = 3;
  o.num_reads = 3;
  const TabuSearch tabu(small_options());
  const SolveResult a = tabu.solve(sparse, o);
  const SolveResult b = tabu.solve(dense, o);
  CHECK(a.info.at("storage") == "sparse");
  CHECK(b.info.at("storage") == "dense");
  check_same_samples(a, b);
}

TEST_CASE("every sample of a larger run is a local minimum") {
  for (Storage storage : {Storage::kDense, Storage::kSparse}) {
    const QuboModel m = random_model(80, 0.2, 4, 10, storage);
    SolveOptions o;
    o.num_reads = 4;
    o.seed = 11;
    const SolveResult r = TabuSearch(small_options()).solve(m, o);
    for (const Sample& s : r.samples) check_flip_local_minimum(m, s.x);
    QuboModel c = random_model(80, 0.2, 4, 10, storage);
    c.add_constraint({"g1", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 4});
    c.add_constraint({"g2", {20, 22, 24, 26, 28, 30}, 2});
    const SolveResult rc = TabuSearch(small_options()).solve(c, o);
    for (const Sample& s : rc.samples) {
      CHECK(s.feasible);
      check_swap_local_minimum(c, s.x);
    }
  }
}

TEST_CASE("the final polish alone turns a random start into a local minimum") {
  // One tabu iteration leaves best_x close to the random start, so the polish does nearly all the
  // descent: wrong gains (or a wrong swap delta) would leave improving moves behind.
  TabuOptions one;
  one.max_iterations = 1;
  for (Storage storage : {Storage::kDense, Storage::kSparse}) {
    QuboModel m = random_model(40, 1.0, 9, 10, storage);
    SolveOptions o;
    o.num_reads = 8;
    for (const Sample& s : TabuSearch(one).solve(m, o).samples) check_flip_local_minimum(m, s.x);
    m.add_constraint({"g1", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 5});
    m.add_constraint({"g2", {20, 21, 22, 23, 24, 25, 26, 27}, 3});
    for (const Sample& s : TabuSearch(one).solve(m, o).samples) {
      CHECK(s.feasible);
      check_swap_local_minimum(m, s.x);
    }
  }
}

TEST_CASE("time limit, target energy and interrupt end the search with a valid sample") {
  const QuboModel big = random_model(400, 1.0, 21, 100);
  TabuOptions endless;
  endless.max_iterations = std::int64_t{1} << 50;
  const TabuSearch tabu(endless);

  SolveOptions timed;
  timed.time_limit_s = 0.05;
  timed.num_reads = 3;
  const SolveResult t = tabu.solve(big, timed);
  CHECK(t.status == SolveStatus::kTimeLimit);
  REQUIRE(t.has_solution());
  CHECK(t.best().x.size() == 400);
  CHECK(t.best().energy == big.energy(t.best().x));
  check_flip_local_minimum(big, t.best().x);
  CHECK(t.counters.at("iterations") > 0);

  const QuboModel small = random_model(14, 0.8, 77);
  SolveOptions target;
  target.target_energy = brute_force_minimum(small, false);
  target.time_limit_s = 60.0;  // only a safety net; the target is reached in milliseconds
  const SolveResult r = tabu.solve(small, target);
  CHECK(r.status == SolveStatus::kTargetReached);
  CHECK(r.best().energy <= *target.target_energy);

  QuboModel constrained = constrained_model(14, 0.8, 78, Storage::kAuto);
  target.target_energy = brute_force_minimum(constrained, true);
  for (ConstraintMode mode : {ConstraintMode::kNative, ConstraintMode::kPenalty}) {
    target.constraint_mode = mode;
    const SolveResult rc = tabu.solve(constrained, target);
    CHECK(rc.status == SolveStatus::kTargetReached);
    CHECK(rc.best().feasible);
    CHECK(rc.best().energy <= *target.target_energy);
  }

  std::atomic<bool> stop{true};
  SolveOptions interrupted;
  interrupted.interrupt = &stop;
  const SolveResult i = tabu.solve(big, interrupted);
  CHECK(i.status == SolveStatus::kInterrupted);
  REQUIRE(i.has_solution());
  CHECK(i.best().energy == big.energy(i.best().x));
}

TEST_CASE("tabu uses a time budget: one read searches until the limit, or reads repeat") {
  const QuboModel m = random_model(200, 1.0, 31, 100);
  const TabuSearch tabu;  // max_iterations 0: automatic

  // One read and a limit, no iteration count: the read searches until the limit (a budget is
  // there to be used), so the limit, not a finished count, ends it.
  SolveOptions budget;
  budget.time_limit_s = 0.3;
  const SolveResult one = tabu.solve(m, budget);
  CHECK(one.status == SolveStatus::kTimeLimit);
  CHECK(one.counters.at("reads") == 1);
  CHECK(one.counters.at("reads_completed") == 0);
  CHECK(one.info.at("max_iterations") == "none (time share per read)");
  REQUIRE(one.has_solution());
  check_flip_local_minimum(m, one.best().x);

  // An iteration count given: the reads run it and the run is complete.
  TabuOptions counted;
  counted.max_iterations = 3000;
  SolveOptions three = budget;
  three.time_limit_s = 600.0;  // a safety net only
  three.num_reads = 3;
  const SolveResult c = TabuSearch(counted).solve(m, three);
  CHECK(c.status == SolveStatus::kCompleted);
  CHECK(c.counters.at("reads") == 3);
  CHECK(c.counters.at("reads_completed") == 3);
  CHECK(c.counters.at("iterations") == 9000);
  // Each rate divides by the time it names.
  CHECK(c.counters.at("iterations_per_s") * c.counters.at("search_time_s") ==
        doctest::Approx(9000).epsilon(1e-9));

  // Reads until the limit: new reads of the automatic length keep starting; here an interrupt
  // raised after 3 reads ends the run (a time limit would make the count machine-dependent).
  std::atomic<bool> flag{false};
  SolveOptions repeat;
  repeat.time_limit_s = 1e9;
  repeat.reads_until_time_limit = true;
  repeat.interrupt = &flag;
  repeat.progress = [&](const SolveProgress& p) {
    if (p.done >= 3) flag = true;
  };
  const SolveResult r = TabuSearch(counted).solve(m, repeat);
  CHECK(r.status == SolveStatus::kInterrupted);
  CHECK(r.counters.at("reads") >= 3);
  CHECK(r.counters.at("reads_completed") >= 3);
}

TabuOptions breakout_options() {
  TabuOptions o = small_options();
  o.method = TabuMethod::kBreakout;
  return o;
}

TEST_CASE("breakout finds the brute-force optimum of small models, dense and sparse") {
  const TabuSearch breakout(breakout_options());
  for (int n : {4, 9, 14}) {
    for (double density : {0.3, 1.0}) {
      for (std::uint64_t seed = 1; seed <= 4; ++seed) {
        for (Storage storage : {Storage::kDense, Storage::kSparse}) {
          const QuboModel m =
              random_model(n, density, 300 * seed + static_cast<std::uint64_t>(n), 10, storage);
          const double optimum = brute_force_minimum(m, false);
          for (std::uint64_t run_seed : {0ULL, 7ULL}) {
            SolveOptions o;
            o.seed = run_seed;
            o.num_reads = 2;
            const SolveResult r = breakout.solve(m, o);
            CAPTURE(n);
            CAPTURE(seed);
            CAPTURE(run_seed);
            REQUIRE(r.status == SolveStatus::kCompleted);
            CHECK(r.info.at("method") == "breakout");
            CHECK(r.best().energy == doctest::Approx(optimum));
            CHECK(r.best().energy == m.energy(r.best().x));
            CHECK(r.counters.at("local_optima") > 0);
            for (const Sample& s : r.samples) check_flip_local_minimum(m, s.x);
          }
        }
      }
    }
  }
}

TEST_CASE("breakout reaches the proven optima of Biq Mac Max-Cut instances") {
  // Wiegele 2007 (Biq Mac library), proven by branch and bound: +-1 weights (pm1s), integer
  // weights in [-10, 10] (w01) and unit weights (g05), the kinds of the sparse Gset graphs.
  const auto known = read_known_values(test::data_path("instances/known_values.csv"));
  TabuOptions o;
  o.method = TabuMethod::kBreakout;
  o.max_iterations = 200'000;  // a few milliseconds; the optimum comes within ~10^4 moves
  const TabuSearch breakout(o);
  for (const char* name : {"pm1s_100.0", "w01_100.0", "g05_60.0"}) {
    CAPTURE(name);
    ReadOptions read;
    read.format = "maxcut";
    const QuboModel m = read_model(test::data_path(std::string("instances/") + name), read);
    REQUIRE(known.count(name) == 1);
    REQUIRE(known.at(name).optimal);
    for (std::uint64_t seed : {1ULL, 2ULL, 3ULL}) {
      SolveOptions so;
      so.seed = seed;
      so.num_reads = 1;
      const SolveResult r = breakout.solve(m, so);
      CAPTURE(seed);
      CHECK(r.best().energy == known.at(name).energy());
      CHECK(r.best().energy == m.energy(r.best().x));
    }
  }
}

TEST_CASE("method auto: breakout on sparse single-flip problems, tabu on dense or grouped ones") {
  SolveOptions o;
  o.num_reads = 1;
  const TabuSearch automatic(small_options());
  const QuboModel sparse = random_model(200, 0.02, 5, 10, Storage::kSparse);
  REQUIRE(sparse.density() <= kBreakoutMaxDensity);
  CHECK(automatic.solve(sparse, o).info.at("method") == "breakout");
  const QuboModel dense = random_model(60, 0.5, 5);
  REQUIRE(dense.density() > kBreakoutMaxDensity);
  CHECK(automatic.solve(dense, o).info.at("method") == "tabu");
  QuboModel grouped = sparse;
  grouped.add_constraint({"g", {0, 1, 2, 3, 4, 5}, 2});
  CHECK(automatic.solve(grouped, o).info.at("method") == "tabu");
  // Forced: tabu on the sparse model; breakout on the dense one; breakout refuses native groups
  // (swap moves) but searches their penalty form, with honest feasibility flags.
  TabuOptions tabu = small_options();
  tabu.method = TabuMethod::kTabu;
  CHECK(TabuSearch(tabu).solve(sparse, o).info.at("method") == "tabu");
  const TabuSearch breakout(breakout_options());
  CHECK(breakout.solve(dense, o).info.at("method") == "breakout");
  CHECK_THROWS_AS((void)breakout.solve(grouped, o), InvalidArgument);
  SolveOptions penalty = o;
  penalty.constraint_mode = ConstraintMode::kPenalty;
  const QuboModel small_grouped = constrained_model(12, 0.7, 3, Storage::kAuto);
  const SolveResult p = breakout.solve(small_grouped, penalty);
  CHECK(p.info.at("method") == "breakout");
  CHECK(p.best().feasible);
  CHECK(p.best().energy == doctest::Approx(brute_force_minimum(small_grouped, true)));
  for (const Sample& s : p.samples) CHECK(s.feasible == small_grouped.is_feasible(s.x));
}

TEST_CASE("breakout: thread-count independence, time limit, target and interrupt") {
  const QuboModel m = random_model(300, 0.03, 41, 10, Storage::kSparse);
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  SolveOptions o;
  o.seed = 99;
  o.num_reads = 5;
  omp_set_num_threads(1);
  const SolveResult one = TabuSearch(breakout_options()).solve(m, o);
  omp_set_num_threads(2);
  const SolveResult two = TabuSearch(breakout_options()).solve(m, o);
  omp_set_num_threads(saved);
  check_same_samples(one, two);
  CHECK(one.counters.at("local_optima") == two.counters.at("local_optima"));
#endif
  TabuOptions endless;
  endless.method = TabuMethod::kBreakout;
  endless.max_iterations = std::int64_t{1} << 50;
  const TabuSearch breakout(endless);
  SolveOptions timed;
  timed.time_limit_s = 0.05;
  timed.num_reads = 2;
  const SolveResult t = breakout.solve(m, timed);
  CHECK(t.status == SolveStatus::kTimeLimit);
  REQUIRE(t.has_solution());
  CHECK(t.best().energy == m.energy(t.best().x));
  check_flip_local_minimum(m, t.best().x);

  const QuboModel small = random_model(14, 0.8, 78);
  SolveOptions target;
  target.target_energy = brute_force_minimum(small, false);
  target.time_limit_s = 60.0;  // only a safety net; the target is reached in milliseconds
  const SolveResult r = breakout.solve(small, target);
  CHECK(r.status == SolveStatus::kTargetReached);
  CHECK(r.best().energy <= *target.target_energy);

  std::atomic<bool> stop{true};
  SolveOptions interrupted;
  interrupted.interrupt = &stop;
  const SolveResult i = breakout.solve(m, interrupted);
  CHECK(i.status == SolveStatus::kInterrupted);
  REQUIRE(i.has_solution());
  CHECK(i.best().energy == m.energy(i.best().x));
}

TEST_CASE("tabu options are validated and the solver is registered") {
  TabuOptions bad;
  bad.tenure_divisor = 0;
  CHECK_THROWS_AS(TabuSearch{bad}, InvalidArgument);
  bad = {};
  bad.perturbation_fraction = 0.0;
  CHECK_THROWS_AS(TabuSearch{bad}, InvalidArgument);
  bad = {};
  bad.relink_probability = 1.5;
  CHECK_THROWS_AS(TabuSearch{bad}, InvalidArgument);
  bad = {};
  bad.max_iterations = -1;
  CHECK_THROWS_AS(TabuSearch{bad}, InvalidArgument);
  bad = {};
  bad.breakout_jump_min_fraction = 0.0;
  CHECK_THROWS_AS(TabuSearch{bad}, InvalidArgument);
  bad = {};
  bad.breakout_jump_max_fraction = 0.01;  // below the minimum 0.02
  CHECK_THROWS_WITH_AS(TabuSearch{bad}, doctest::Contains("breakout_jump_max_fraction"),
                       InvalidArgument);
  bad = {};
  bad.breakout_stall = 0;
  CHECK_THROWS_AS(TabuSearch{bad}, InvalidArgument);
  SolverSettings settings;
  settings.tabu.max_iterations = 123;
  const auto solver = make_solver("TABU", settings);
  CHECK(solver->name() == "tabu");
  SolveOptions o;
  const SolveResult r = solver->solve(random_model(10, 0.5, 1), o);
  CHECK(r.counters.at("iterations") == 123);
}
