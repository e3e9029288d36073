// SolveOptions::progress, checked over every registered solver with a recording callback: stages
// named, done non-decreasing and within total in each stage, completed runs end every stage with
// done == total, the reported best energy never better than the result's (equal to it at the end
// for the read and chunk based solvers), QAOA's <C> never below the brute-force optimum, and no
// two calls at once while reads run on several threads.
#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "qprune/comparison.hpp"
#include "qprune/solvers.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

namespace {

struct Call {
  std::string stage;
  std::int64_t done = 0;
  std::int64_t total = 0;
  double best_energy = 0.0;
  double objective = 0.0;
};

/// Records every call and notices overlapping ones (the flag is set for the whole call, and the
/// call yields its thread so that an unserialised caller would overlap it).
struct Recorder {
  std::vector<Call> calls;
  std::atomic<bool> busy{false};
  std::atomic<bool> overlapped{false};

  std::function<void(const SolveProgress&)> callback() {
    return [this](const SolveProgress& p) {
      if (busy.exchange(true)) overlapped = true;
      calls.push_back({std::string(p.stage), p.done, p.total, p.best_energy, p.objective});
      std::this_thread::yield();
      busy = false;
    };
  }
};

/// The contract every solver keeps; `completed`: the run did all its work.
void check_contract(const Recorder& rec, bool completed) {
  CHECK_FALSE(rec.overlapped.load());
  std::map<std::string, Call> last;  // per stage
  for (const Call& c : rec.calls) {
    CAPTURE(c.stage);
    CHECK_FALSE(c.stage.empty());
    CHECK(c.total > 0);
    CHECK(c.done >= 0);
    CHECK(c.done <= c.total);
    const auto it = last.find(c.stage);
    if (it != last.end()) {
      CHECK(c.done >= it->second.done);
      CHECK(c.total == it->second.total);
    }
    last[c.stage] = c;
  }
  if (!completed) return;
  for (const auto& [stage, c] : last) {
    CAPTURE(stage);
    CHECK(c.done == c.total);
  }
}

SolverSettings small_settings() {
  SolverSettings s;
  s.anneal.num_sweeps = 200;
  s.tabu.max_iterations = 3000;
  s.qaoa.layers = 2;
  s.qaoa.max_evaluations = 30;
  return s;
}

bool is_read_based(const std::string& name) {
  return name == "sa" || name == "tabu" || name == "greedy" || name == "random";
}

}  // namespace

TEST_CASE("every solver reports progress by the SolveOptions::progress contract") {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(4);  // reads run on several threads even on a small machine
  const SolverSettings settings = small_settings();
  // 16 variables: exact enumerates 2^16 states in several chunks (of >= 2^14 states each).
  const QuboModel model = test::random_model(16, 0.5, 4242);
  const double optimum = test::brute_force_minimum(model, false);
  for (const std::string& name : solver_names()) {
    CAPTURE(name);
    Recorder rec;
    SolveOptions o;
    o.seed = 3;
    o.num_reads = 8;
    o.progress = rec.callback();
    const SolveResult result = make_solver(name, settings)->solve(model, o);
    REQUIRE(result.has_solution());
    const bool completed =
        result.status == SolveStatus::kCompleted || result.status == SolveStatus::kOptimal;
    CHECK(completed);
    REQUIRE_FALSE(rec.calls.empty());
    check_contract(rec, completed);
    for (const Call& c : rec.calls) {
      if (!std::isnan(c.best_energy)) {
        CHECK(c.best_energy >= result.best().energy);
        CHECK(c.best_energy >= optimum);
      }
      if (!std::isnan(c.objective)) CHECK(c.objective >= optimum - 1e-9 * std::abs(optimum));
    }
    if (is_read_based(name) || name == "exact") {
      // One call per read (chunk), best of all of them at the end.
      const Call& end = rec.calls.back();
      CHECK(static_cast<std::int64_t>(rec.calls.size()) == end.total);
      if (is_read_based(name)) CHECK(end.total == o.num_reads);
      CHECK(end.best_energy == result.best().energy);
    }
    if (name == "exact") CHECK(rec.calls.back().total > 1);  // several chunks, in parallel
    if (name == "qaoa") {
      // INTERP: one stage per depth, each of the evaluation budget, <C> reported throughout.
      CHECK(rec.calls.front().stage == "qaoa p=1");
      CHECK(rec.calls.back().total == settings.qaoa.max_evaluations);
      for (const Call& c : rec.calls) CHECK_FALSE(std::isnan(c.objective));
    }
  }
  omp_set_num_threads(threads);
}

TEST_CASE("read-based solvers rank the progress best as the result does (constraint groups)") {
  QuboModel model = test::random_model(10, 0.7, 99, 20);
  model.add_constraint({"layer.0", {0, 1, 2, 3, 4, 5}, 3});
  for (const char* name : {"sa", "tabu", "greedy", "random"}) {
    CAPTURE(name);
    for (ConstraintMode mode : {ConstraintMode::kAuto, ConstraintMode::kPenalty}) {
      CAPTURE(to_string(mode));
      Recorder rec;
      SolveOptions o;
      o.num_reads = 6;
      o.constraint_mode = mode;
      o.penalty_weight = 0.5;  // too small in penalty mode: infeasible samples can win on energy
      o.progress = rec.callback();
      const SolveResult result = make_solver(name, small_settings())->solve(model, o);
      check_contract(rec, true);
      REQUIRE_FALSE(rec.calls.empty());
      CHECK(rec.calls.back().best_energy == result.best().energy);
    }
  }
}

TEST_CASE("qaoa decomposition reports its rounds and each round's QAOA stages") {
  SolverSettings settings = small_settings();
  settings.qaoa.max_qubits = 8;
  settings.qaoa.decomposition_rounds = 3;
  settings.qaoa.layers = 1;
  settings.qaoa.max_evaluations = 10;
  const QuboModel model = test::random_model(14, 0.5, 7);
  Recorder rec;
  SolveOptions o;
  o.progress = rec.callback();
  const SolveResult result = make_solver("qaoa", settings)->solve(model, o);
  check_contract(rec, result.status == SolveStatus::kCompleted);
  std::vector<std::int64_t> rounds;
  for (const Call& c : rec.calls) {
    if (c.stage == "qaoa decomposition") {
      rounds.push_back(c.done);
      CHECK(c.best_energy >= result.best().energy);
    }
  }
  CHECK(rounds == std::vector<std::int64_t>{1, 2, 3});
  CHECK(rec.calls.front().stage == "qaoa round 1/3: warm start p=1");
}

TEST_CASE("a stopped solve may end a stage early, and an unset callback costs nothing") {
  const QuboModel model = test::random_model(12, 0.5, 5);
  const std::atomic<bool> stop{true};
  for (const std::string& name : solver_names()) {
    CAPTURE(name);
    Recorder rec;
    SolveOptions o;
    o.num_reads = 4;
    o.interrupt = &stop;
    o.progress = rec.callback();
    const SolveResult result = make_solver(name, small_settings())->solve(model, o);
    check_contract(rec, false);
    for (const Call& c : rec.calls) CHECK(c.done <= c.total);
    (void)result;
  }
  SolveOptions none;  // no callback: the solvers run as before
  CHECK(make_solver("sa", small_settings())->solve(model, none).has_solution());
}

TEST_CASE("run_comparison does not pass SolveOptions::progress on to its runs") {
  ComparisonOptions options;
  options.solvers = {parse_solver_spec("greedy"), parse_solver_spec("random")};
  options.num_seeds = 2;
  options.jobs = 1;
  int calls = 0;
  options.solve.progress = [&calls](const SolveProgress&) { ++calls; };
  const Instance instance{"r12", "r12", [] { return test::random_model(12, 0.5, 1); }};
  const ComparisonReport report = run_comparison({instance}, options);
  CHECK(report.runs.size() == 4);
  CHECK(calls == 0);
}
