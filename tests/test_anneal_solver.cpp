// Tests of the simulated annealing solver "sa": optima against the brute force of test_support.hpp
// on small unconstrained and constrained models, thread-count independence, feasibility of the
// swap mode, honesty of the penalty mode, both precisions and both kernels, early stops.
#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <cmath>

#include "qprune/anneal_solver.hpp"
#include "qprune/error.hpp"
#include "qprune/greedy_solver.hpp"
#include "qprune/pruning.hpp"
#include "qprune/solvers.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

constexpr std::uint64_t kSeeds[] = {1, 2, 3, 17, 12345};

SolveOptions reads(int num_reads, std::uint64_t seed) {
  SolveOptions o;
  o.num_reads = num_reads;
  o.seed = seed;
  return o;
}

AnnealOptions sweeps(int num_sweeps) {
  AnnealOptions a;
  a.num_sweeps = num_sweeps;
  return a;
}

/// Two groups over the first 8 variables of an n-variable model, the rest free.
QuboModel constrained_model(int n, double density, std::uint64_t seed,
                            Storage storage = Storage::kAuto) {
  QuboModel m = test::random_model(n, density, seed, 10, storage);
  m.add_constraint({"g0", {0, 2, 4, 6, 8}, 2});
  m.add_constraint({"g1", {1, 3, 5, 7}, 3});
  return m;
}

void check_energies(const QuboModel& m, const SolveResult& r) {
  REQUIRE(r.has_solution());
  for (const Sample& s : r.samples) {
    CHECK(s.energy == m.energy(s.x));
    CHECK(s.feasible == m.is_feasible(s.x));
  }
}

bool same_samples(const SolveResult& a, const SolveResult& b) {
  if (a.samples.size() != b.samples.size()) return false;
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    if (a.samples[i].x != b.samples[i].x) return false;
    if (a.samples[i].num_occurrences != b.samples[i].num_occurrences) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("sa finds the brute-force optimum of small unconstrained models") {
  for (int n : {6, 10, 14}) {
    for (double density : {0.3, 1.0}) {
      const QuboModel m = test::random_model(n, density, 100 + static_cast<std::uint64_t>(n));
      const double optimum = test::brute_force_minimum(m, false);
      for (std::uint64_t seed : kSeeds) {
        const SolveResult r = SimulatedAnnealing(sweeps(200)).solve(m, reads(8, seed));
        CAPTURE(n);
        CAPTURE(density);
        CAPTURE(seed);
        check_energies(m, r);
        CHECK(r.status == SolveStatus::kCompleted);
        CHECK(r.best().energy == doctest::Approx(optimum).epsilon(1e-12));
        CHECK(r.counters.at("flip_attempts") == 8.0 * 200 * n);
        CHECK(r.info.at("constraint_mode") == "none");
      }
    }
  }
}

TEST_CASE(
    "sa: float, double and integer kernels, random order and linear schedule reach the optimum") {
  const QuboModel m = test::random_model(14, 0.8, 7);
  const double optimum = test::brute_force_minimum(m, false);
  for (std::uint64_t seed : kSeeds) {
    AnnealOptions f = sweeps(200), d = sweeps(200), i = sweeps(200), rnd = sweeps(200),
                  lin = sweeps(200);
    f.precision = AnnealPrecision::kFloat;
    d.precision = AnnealPrecision::kDouble;
    i.precision = AnnealPrecision::kInteger;
    rnd.order = SweepOrder::kRandom;
    lin.schedule = AnnealSchedule::kLinear;
    for (const AnnealOptions& a : {f, d, i, rnd, lin}) {
      const SolveResult r = SimulatedAnnealing(a).solve(m, reads(8, seed));
      check_energies(m, r);
      CHECK(r.best().energy == doctest::Approx(optimum).epsilon(1e-12));
    }
  }
  // Non-integer coefficients: the double kernel still finds the optimum.
  QuboModel real = QuboModel::from_couplings(12, Eigen::VectorXd::LinSpaced(12, -1.3, 0.7),
                                             {{0, 1, 0.31},
                                              {1, 2, -1.7},
                                              {2, 3, 2.2},
                                              {3, 4, -0.05},
                                              {4, 5, 1e-3},
                                              {0, 11, 3.3},
                                              {5, 6, -0.8},
                                              {6, 7, 0.9},
                                              {7, 8, -2.1},
                                              {8, 9, 0.4},
                                              {9, 10, -0.6},
                                              {10, 11, 1.1}});
  const double real_optimum = test::brute_force_minimum(real, false);
  for (std::uint64_t seed : kSeeds) {
    const SolveResult r = SimulatedAnnealing(sweeps(300)).solve(real, reads(8, seed));
    CHECK(r.best().energy == doctest::Approx(real_optimum).epsilon(1e-12));
  }
}

TEST_CASE("sa: automatic precision and beta range follow the coefficients") {
  const QuboModel ints = test::random_model(10, 1.0, 3, 10, Storage::kDense);
  const SolveResult r = SimulatedAnnealing(sweeps(10)).solve(ints, reads(1, 1));
  CHECK(r.info.at("precision").rfind("int8", 0) == 0);
  const SolveResult rs =
      SimulatedAnnealing(sweeps(10)).solve(ints.with_storage(Storage::kSparse), reads(1, 1));
  CHECK(rs.info.at("precision").rfind("int8", 0) == 0);
  const QuboModel big_ints = test::random_model(10, 1.0, 3, 1000, Storage::kDense);
  const SolveResult r16 = SimulatedAnnealing(sweeps(10)).solve(big_ints, reads(1, 1));
  CHECK(r16.info.at("precision").rfind("int16", 0) == 0);
  // Independent reference: B = max_flip_change(), smallest non-zero coefficient by a scan.
  double smallest = 1e300;
  for (int i = 0; i < ints.num_variables(); ++i) {
    if (ints.linear()[i] != 0.0) smallest = std::min(smallest, std::abs(ints.linear()[i]));
    for (int j = 0; j < ints.num_variables(); ++j)
      if (ints.coupling(i, j) != 0.0) smallest = std::min(smallest, std::abs(ints.coupling(i, j)));
  }
  const auto [hot, cold] = default_beta_range(ints);
  CHECK(hot == doctest::Approx(std::log(2.0) / ints.max_flip_change()));
  CHECK(cold == doctest::Approx(std::log(100.0) / smallest));

  // Coefficients spanning 1e-6 .. 1e3: float would blur the smallest costs at the cold end.
  const QuboModel wide =
      QuboModel::from_couplings(3, Eigen::Vector3d(1e-6, -1e3, 2.5), {{0, 1, 1e3}, {1, 2, -3e-6}});
  const SolveResult w = SimulatedAnnealing(sweeps(10)).solve(wide, reads(1, 1));
  CHECK(w.info.at("precision").rfind("double", 0) == 0);
  AnnealOptions integer = sweeps(10);
  integer.precision = AnnealPrecision::kInteger;
  CHECK_THROWS_AS((void)SimulatedAnnealing(integer).solve(wide, reads(1, 1)), InvalidArgument);
}

TEST_CASE("sa: samples do not depend on the number of threads") {
  const QuboModel m = test::random_model(40, 0.5, 11);
  const QuboModel c = constrained_model(20, 0.7, 12);
  const int before = omp_get_max_threads();
  for (const QuboModel* model : {&m, &c}) {
    omp_set_num_threads(1);
    const SolveResult one = SimulatedAnnealing(sweeps(50)).solve(*model, reads(12, 99));
    omp_set_num_threads(2);
    const SolveResult two = SimulatedAnnealing(sweeps(50)).solve(*model, reads(12, 99));
    CHECK(same_samples(one, two));
  }
  omp_set_num_threads(before);
}

TEST_CASE("sa: dense and sparse kernels give identical samples for the same seed") {
  // Both kernels on both storages, in every arithmetic: the layout of the couplings changes the
  // cost of a move, never a decision.
  const auto solve = [](const QuboModel& m, Storage kernel, AnnealPrecision precision,
                        std::uint64_t seed) {
    AnnealOptions a = sweeps(100);
    a.kernel_storage = kernel;
    a.precision = precision;
    const SolveResult r = SimulatedAnnealing(a).solve(m, reads(4, seed));
    CHECK(r.info.at("kernel").rfind(kernel == Storage::kDense ? "dense" : "sparse", 0) == 0);
    return r;
  };
  for (std::uint64_t seed : kSeeds) {
    const QuboModel dense = test::random_model(30, 0.4, seed, 10, Storage::kDense);
    const QuboModel sparse = dense.with_storage(Storage::kSparse);
    REQUIRE(sparse.storage() == Storage::kSparse);
    const QuboModel dc = constrained_model(16, 0.6, seed, Storage::kDense);
    const QuboModel sc = dc.with_storage(Storage::kSparse);
    for (AnnealPrecision p : {AnnealPrecision::kAuto, AnnealPrecision::kFloat,
                              AnnealPrecision::kDouble, AnnealPrecision::kInteger}) {
      const SolveResult a = solve(dense, Storage::kDense, p, seed);
      CHECK(same_samples(a, solve(sparse, Storage::kSparse, p, seed)));
      CHECK(same_samples(a, solve(dense, Storage::kSparse, p, seed)));
      CHECK(same_samples(a, solve(sparse, Storage::kDense, p, seed)));
      const SolveResult ca = solve(dc, Storage::kDense, p, seed);
      CHECK(same_samples(ca, solve(sc, Storage::kSparse, p, seed)));
    }
    // Exact arithmetic: integer and float fields make the same decisions.
    const SolveResult i = solve(sparse, Storage::kSparse, AnnealPrecision::kInteger, seed);
    CHECK(same_samples(i, solve(sparse, Storage::kSparse, AnnealPrecision::kFloat, seed)));
  }
}

TEST_CASE("sa: the sparse integer kernel reaches the brute-force optimum") {
  for (std::uint64_t seed : kSeeds) {
    const QuboModel m = test::random_model(16, 0.3, seed, 100, Storage::kSparse);
    const double optimum = test::brute_force_minimum(m, false);
    for (SweepOrder order : {SweepOrder::kSequential, SweepOrder::kRandom}) {
      AnnealOptions a = sweeps(200);
      a.precision = AnnealPrecision::kInteger;
      a.kernel_storage = Storage::kSparse;
      a.order = order;
      const SolveResult r = SimulatedAnnealing(a).solve(m, reads(8, seed));
      CHECK(r.info.at("precision").rfind("int8", 0) == 0);
      check_energies(m, r);
      CHECK(r.best().energy == optimum);
    }
    const QuboModel big = test::random_model(16, 0.3, seed, 1000, Storage::kSparse);
    const SolveResult r16 = SimulatedAnnealing(sweeps(200)).solve(big, reads(8, seed));
    CHECK(r16.info.at("precision").rfind("int16", 0) == 0);
    CHECK(r16.best().energy == test::brute_force_minimum(big, false));
  }
}

TEST_CASE("sa: automatic kernel choice follows the cost of a row update") {
  // A 2000-variable chain: 2 entries per row against 2048-entry dense rows.
  std::vector<Coupling> chain;
  for (int i = 0; i + 1 < 2000; ++i) chain.push_back({i, i + 1, (i % 7) - 3.0});
  const QuboModel sparse_chain = QuboModel::from_couplings(
      2000, Eigen::VectorXd::Constant(2000, 1.0), chain, 0.0, Storage::kSparse);
  const SolveResult a = SimulatedAnnealing(sweeps(2)).solve(sparse_chain, reads(1, 1));
  CHECK(a.info.at("kernel").rfind("sparse", 0) == 0);
  CHECK(a.info.at("kernel_choice").rfind("sparse (auto", 0) == 0);
  const SolveResult b =
      SimulatedAnnealing(sweeps(2)).solve(sparse_chain.with_storage(Storage::kDense), reads(1, 1));
  CHECK(b.info.at("kernel").rfind("sparse", 0) == 0);
  // Fully dense, even when stored as CSR: dense rows.
  const QuboModel full = test::random_model(300, 1.0, 5, 10, Storage::kSparse);
  REQUIRE(full.storage() == Storage::kSparse);
  const SolveResult c = SimulatedAnnealing(sweeps(2)).solve(full, reads(1, 1));
  CHECK(c.info.at("kernel").rfind("dense", 0) == 0);
  AnnealOptions forced = sweeps(2);
  forced.kernel_storage = Storage::kSparse;
  const SolveResult d = SimulatedAnnealing(forced).solve(full, reads(1, 1));
  CHECK(d.info.at("kernel_choice") == "sparse (requested)");
}

TEST_CASE("sa swap mode: only feasible samples, and the feasible optimum") {
  for (Storage storage : {Storage::kDense, Storage::kSparse}) {
    const QuboModel m = constrained_model(13, 0.8, 5, storage);
    const double optimum = test::brute_force_minimum(m, true);
    for (std::uint64_t seed = 0; seed < 40; ++seed) {
      SolveOptions o = reads(8, seed);
      o.constraint_mode = seed % 2 ? ConstraintMode::kNative : ConstraintMode::kAuto;
      AnnealOptions a = sweeps(seed < 10 ? 200 : 5);  // a short anneal visits rough states
      a.greedy_descent = seed % 3 != 0;
      const SolveResult r = SimulatedAnnealing(a).solve(m, o);
      check_energies(m, r);
      CHECK(r.info.at("constraint_mode") == "native");
      for (const Sample& s : r.samples) CHECK(m.is_feasible(s.x));
      if (seed < 10) CHECK(r.best().energy == doctest::Approx(optimum).epsilon(1e-12));
    }
  }
  // A group with k == 0 and one with k == size stay fixed; free variables still move.
  QuboModel m = test::random_model(10, 1.0, 8);
  m.add_constraint({"none", {0, 1}, 0});
  m.add_constraint({"all", {2, 3}, 2});
  m.add_constraint({"half", {4, 5, 6, 7}, 2});
  const SolveResult r = SimulatedAnnealing(sweeps(200)).solve(m, reads(8, 3));
  check_energies(m, r);
  CHECK(r.best().feasible);
  CHECK(r.best().energy == doctest::Approx(test::brute_force_minimum(m, true)).epsilon(1e-12));
}

TEST_CASE("sa penalty mode: feasibility is reported honestly") {
  const QuboModel m = constrained_model(12, 0.8, 21);
  const double optimum = test::brute_force_minimum(m, true);
  bool saw_infeasible = false;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    SolveOptions o = reads(seed < 5 ? 32 : 8, seed);
    o.constraint_mode = ConstraintMode::kPenalty;
    AnnealOptions a = sweeps(seed < 5 ? 1000 : 2);
    a.greedy_descent = seed >= 5 ? false : true;
    if (seed >= 5) a.beta_range = std::make_pair(1e-4, 1e-3);  // hot throughout: infeasible ends
    const SolveResult r = SimulatedAnnealing(a).solve(m, o);
    check_energies(m, r);
    CHECK(r.info.at("constraint_mode") == "penalty");
    CHECK(r.info.count("penalty_weight") == 1);
    for (const Sample& s : r.samples) saw_infeasible |= !s.feasible;
    if (seed < 5) {
      CHECK(r.best().feasible);
      CHECK(r.best().energy == doctest::Approx(optimum).epsilon(1e-12));
    }
  }
  CHECK(saw_infeasible);  // the check above must have had something to check
}

TEST_CASE("sa counters: each rate divides by the time it names; reads until the time limit") {
  const QuboModel m = test::random_model(120, 0.5, 14);
  const SolveResult r = SimulatedAnnealing(sweeps(50)).solve(m, reads(4, 3));
  CHECK(r.status == SolveStatus::kCompleted);
  const double attempts = r.counters.at("flip_attempts");
  CHECK(attempts == 4.0 * 50.0 * 120.0);
  CHECK(r.counters.at("reads") == 4);
  CHECK(r.counters.at("reads_completed") == 4);
  CHECK(r.counters.at("anneal_time_s") > 0.0);
  CHECK(r.counters.at("attempts_per_s") * r.counters.at("anneal_time_s") ==
        doctest::Approx(attempts).epsilon(1e-9));
  CHECK(r.counters.at("ns_per_attempt") * r.counters.at("attempts_per_s") ==
        doctest::Approx(1e9).epsilon(1e-9));
  CHECK(r.counters.at("descent_time_s") >= 0.0);
  CHECK(r.counters.count("flips_per_s") == 0);  // the old name mixed two times

  // New reads until the limit; an interrupt raised after 5 reads stands in for the limit, which
  // would make the count machine-dependent.
  std::atomic<bool> flag{false};
  SolveOptions repeat = reads(1, 3);
  repeat.time_limit_s = 1e9;
  repeat.reads_until_time_limit = true;
  repeat.interrupt = &flag;
  repeat.progress = [&](const SolveProgress& p) {
    if (p.done >= 5) flag = true;
  };
  const SolveResult u = SimulatedAnnealing(sweeps(50)).solve(m, repeat);
  CHECK(u.status == SolveStatus::kInterrupted);
  CHECK(u.counters.at("reads") >= 5);
  CHECK(u.counters.at("reads_completed") >= 5);
  check_energies(m, u);
}

TEST_CASE("sa stops early: time limit, target energy, interrupt") {
  const QuboModel big = test::random_model(300, 0.5, 4);
  SolveOptions o = reads(2, 1);
  o.time_limit_s = 0.05;
  const SolveResult t = SimulatedAnnealing(sweeps(100'000'000)).solve(big, o);
  CHECK(t.status == SolveStatus::kTimeLimit);
  check_energies(big, t);
  CHECK(t.counters.at("reads_completed") == 0.0);

  const QuboModel m = test::random_model(14, 0.8, 9);
  const double optimum = test::brute_force_minimum(m, false);
  SolveOptions target = reads(4, 2);
  target.target_energy = optimum;
  const SolveResult r = SimulatedAnnealing(sweeps(100'000'000)).solve(m, target);
  CHECK(r.status == SolveStatus::kTargetReached);
  CHECK(r.best().energy <= optimum + 1e-9);
  check_energies(m, r);

  const QuboModel c = constrained_model(14, 0.8, 10);
  SolveOptions ctarget = reads(4, 2);
  ctarget.target_energy = test::brute_force_minimum(c, true);
  const SolveResult cr = SimulatedAnnealing(sweeps(100'000'000)).solve(c, ctarget);
  CHECK(cr.status == SolveStatus::kTargetReached);
  CHECK(cr.best().feasible);
  CHECK(cr.best().energy <= *ctarget.target_energy + 1e-9);

  std::atomic<bool> flag{true};
  SolveOptions io = reads(3, 1);
  io.interrupt = &flag;
  const SolveResult i = SimulatedAnnealing(sweeps(100'000'000)).solve(big, io);
  CHECK(i.status == SolveStatus::kInterrupted);
  CHECK(i.has_solution());
}

namespace {
// A dense MLP layer problem with real off-diagonal structure: data-free (Isserlis) statistics of
// random gate/up weights and a random down projection, keeping `keep` of n units.
LayerProblem random_layer(int n, int hidden, int keep, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Eigen::MatrixXd wg = test::normal_matrix(n, hidden, rng, 0.1);
  const Eigen::MatrixXd wu = test::normal_matrix(n, hidden, rng, 0.1);
  const Eigen::MatrixXd wd = test::normal_matrix(hidden, n, rng, 0.1);
  MlpProblemOptions o;
  o.keep = keep;
  return build_mlp_problem(wd, isserlis_statistics(wg, wu), o);
}
}  // namespace

TEST_CASE("sa from the greedy start is never worse than greedy, and often better") {
  // Greedy's answer is the start of every read, and a read returns it when annealing found
  // nothing lower: on every layer and seed sa's best is at most greedy's (read 0 is the same
  // construction and descent). Few sweeps on purpose: the guarantee must not depend on them.
  int better = 0, cases = 0;
  for (std::uint64_t seed : kSeeds) {
    for (int n : {24, 90, 200}) {
      const LayerProblem layer = random_layer(n, 16, (3 * n) / 5, seed);
      const double greedy = GreedySolver().solve(layer.model, reads(1, seed)).best().energy;
      AnnealOptions a = sweeps(n == 200 ? 5 : 50);
      a.start = AnnealStart::kGreedy;
      const SolveResult r = SimulatedAnnealing(a).solve(layer.model, reads(4, seed));
      CAPTURE(seed);
      CAPTURE(n);
      CHECK(r.best().feasible);
      CHECK(r.best().energy <= greedy);
      CHECK(r.info.at("start").rfind("greedy", 0) == 0);
      ++cases;
      if (r.best().energy < greedy - 1e-12 * std::abs(greedy)) ++better;
      if (n == 24) {  // small enough for the exact oracle: sa never below the optimum either
        CHECK(r.best().energy >= test::brute_force_minimum(layer.model, true) - 1e-9);
      }
    }
  }
  // The start is a local minimum of swaps; annealing from it must find lower states on some of
  // these layers, or it only hands back greedy's answer.
  CHECK(better > 0);
  MESSAGE("sa below greedy on " << better << " of " << cases << " layers");
}

TEST_CASE("sa start: automatic choice is greedy only for dense groups above 5000 variables") {
  const LayerProblem small = random_layer(60, 8, 36, 5);
  const SolveResult r = SimulatedAnnealing(sweeps(20)).solve(small.model, reads(1, 1));
  CHECK(r.info.at("start") == "random");
  // n = 5001, dense, one group: the automatic start is greedy.
  const int n = 5001;
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i + 1 < n; ++i) q(i, i + 1) = q(i + 1, i) = 0.01 * ((i % 7) - 3);
  Eigen::VectorXd c = Eigen::VectorXd::LinSpaced(n, -1.0, 1.0);
  QuboModel big = QuboModel::from_dense(c, std::move(q), 0.0, Storage::kDense);
  std::vector<int> all(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
  big.add_constraint({"layer", all, 3000});
  const double greedy = GreedySolver().solve(big, reads(1, 1)).best().energy;
  const SolveResult rb = SimulatedAnnealing(sweeps(2)).solve(big, reads(1, 1));
  CHECK(rb.info.at("start").rfind("greedy", 0) == 0);
  CHECK(rb.best().feasible);
  CHECK(rb.best().energy <= greedy);
  AnnealOptions random_start = sweeps(1);
  random_start.start = AnnealStart::kRandom;
  CHECK(SimulatedAnnealing(random_start).solve(big, reads(1, 1)).info.at("start") == "random");
}

TEST_CASE("sa options are validated and the solver is registered") {
  AnnealOptions bad = sweeps(-1);
  CHECK_THROWS_AS(SimulatedAnnealing{bad}, InvalidArgument);
  AnnealOptions range;
  range.beta_range = std::make_pair(-1.0, 2.0);
  CHECK_THROWS_AS(SimulatedAnnealing{range}, InvalidArgument);
  SolverSettings settings;
  settings.anneal.num_sweeps = 20;
  const auto solver = make_solver("SA", settings);
  CHECK(solver->name() == "sa");
  const QuboModel m = test::random_model(8, 1.0, 1);
  const SolveResult r = solver->solve(m, reads(2, 5));
  CHECK(r.counters.at("flip_attempts") == 2.0 * 20 * 8);
  CHECK(r.counters.count("ns_per_attempt") == 1);
  CHECK(r.counters.count("attempts_per_s") == 1);
  // Automatic sweeps (the default): 1000 here, fewer only for dense models above n = 5000.
  const SolveResult automatic = SimulatedAnnealing{}.solve(m, reads(1, 5));
  CHECK(automatic.counters.at("flip_attempts") == 1000.0 * 8);
  CHECK(automatic.info.at("sweeps") == "1000");
  CHECK(automatic.info.at("sweeps_automatic") == "true");
  CHECK(automatic_num_sweeps(5000, true) == 1000);
  CHECK(automatic_num_sweeps(10000, true) == 250);
  CHECK(automatic_num_sweeps(18944, true) == 100);
  CHECK(automatic_num_sweeps(18944, false) == 1000);
}

}  // namespace qprune
