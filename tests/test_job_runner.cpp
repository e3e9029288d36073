// The JobRunner seam of compute_masks, run_comparison and collect_calibration_statistics, without
// MPI: a test runner that behaves like a multi-process one (jobs started in the given priority
// order, results arriving in another order, chunk partial sums computed in reverse order into
// separate buffers as if on other ranks, then added in chunk order) must give exactly the results
// of the serial runner. The MPI runner itself is tested by tests/cli/mpi_*.sh.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <numeric>
#include <sstream>

#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/comparison.hpp"
#include "qprune/error.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/transformer.hpp"
#include "tests/masks_checks.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

namespace {

class ScrambledRunner final : public JobRunner {
 public:
  explicit ScrambledRunner(int processes) : processes_(processes) {}
  [[nodiscard]] int num_processes() const override { return processes_; }
  [[nodiscard]] bool is_coordinator() const override { return true; }

  std::vector<std::string> run(const Jobs& jobs) override {
    std::vector<std::size_t> order = jobs.order;
    if (order.empty()) {
      order.resize(jobs.count);
      std::iota(order.begin(), order.end(), std::size_t{0});
    }
    started = order;
    std::vector<std::string> results(jobs.count);
    for (std::size_t i : order) results[i] = jobs.run(i);
    // Results arrive last-started first.
    for (auto it = order.rbegin(); it != order.rend(); ++it)
      if (jobs.done) jobs.done(*it, results[*it]);
    return results;
  }

  void ordered_sum(const OrderedSum& sum, std::span<double> total) override {
    std::vector<std::vector<double>> partials(sum.count, std::vector<double>(sum.size, 0.0));
    for (std::size_t c = sum.count; c-- > 0;) sum.partial(c, partials[c]);
    std::fill(total.begin(), total.end(), 0.0);
    for (std::size_t c = 0; c < sum.count; ++c) {
      for (std::size_t i = 0; i < sum.size; ++i) total[i] += partials[c][i];
      if (sum.added) sum.added(c);
    }
    chunks = sum.count;
  }

  std::vector<std::size_t> started;
  std::size_t chunks = 0;

 private:
  int processes_;
};

std::string model_dir() { return test::data_path("../../examples/model/checkpoint"); }

std::vector<std::int32_t> calibration_tokens(std::size_t count) {
  std::ifstream in(test::data_path("../../examples/model/calibration.txt"), std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return byte_tokens(ss.str().substr(0, count));
}

}  // namespace

TEST_CASE("compute_masks: a scrambled runner gives the serial masks, largest problems first") {
  const Checkpoint ckpt = Checkpoint::open(model_dir());
  MaskRunOptions o;
  o.mlp = true;
  o.heads = true;
  o.head_shape = UnitKind::kKvGroups;  // 2 KV groups: a smaller problem than the 512 neurons
  o.sparsity = 0.5;
  o.data_free = DataFreeModel::kMagnitude;
  o.solver = "sa";
  o.settings.anneal.num_sweeps = 50;
  o.solve.seed = 11;
  std::vector<std::string> progress;
  o.progress = [&](const LayerMask& e) {
    progress.push_back(std::to_string(e.layer) + unit_kind_name(e.unit));
  };
  const Masks serial = compute_masks(ckpt, nullptr, o);
  CHECK(progress.size() == 8);
  progress.clear();
  ScrambledRunner runner(3);
  o.runner = &runner;
  const Masks scrambled = compute_masks(ckpt, nullptr, o);

  // The 4 MLP jobs (512 units) start before the 4 KV-group jobs (2 units).
  REQUIRE(runner.started.size() == 8);
  for (std::size_t k = 0; k < 4; ++k) CHECK(runner.started[k] < 4);
  CHECK(progress.size() == 8);
  CHECK(progress.front() == "3kv_groups");  // the last started arrives first here
  test::check_same_entries(scrambled, serial);
  for (const LayerMask& e : serial.entries) CHECK(e.seed == layer_seed(11, e.layer, e.unit));
  CHECK(serial.mean_compensation == scrambled.mean_compensation);
  // Entries in file order: MLP layers 0..3, then heads.
  CHECK(scrambled.entries[0].unit == UnitKind::kMlp);
  CHECK(scrambled.entries[4].unit == UnitKind::kKvGroups);
  CHECK(scrambled.entries[7].layer == 3);
}

TEST_CASE("run_comparison: cells spread by a runner give the runs of the thread pool") {
  const std::vector<Instance> instances = {make_instance(test::data_path("instances/bqp50.txt#1")),
                                           make_instance(test::data_path("formats/toy.qubo"))};
  ComparisonOptions o;
  o.solvers = {parse_solver_spec("sa"), parse_solver_spec("greedy")};
  o.settings.anneal.num_sweeps = 100;
  o.num_seeds = 2;
  o.jobs = 1;
  o.threads_per_run = 1;
  o.solve.seed = 5;
  const ComparisonReport pool = run_comparison(instances, o);
  ScrambledRunner runner(2);
  o.runner = &runner;
  int calls = 0;
  o.progress = [&](int done, int total, const RunRecord&) {
    ++calls;
    CHECK(done == calls);
    CHECK(total == 8);
  };
  const ComparisonReport spread = run_comparison(instances, o);
  CHECK(calls == 8);
  // bqp50 (50 variables) before the toy instance.
  REQUIRE(runner.started.size() == 8);
  for (std::size_t k = 0; k < 4; ++k) CHECK(runner.started[k] < 4);
  REQUIRE(pool.runs.size() == spread.runs.size());
  for (std::size_t i = 0; i < pool.runs.size(); ++i) {
    CHECK(pool.runs[i].index == spread.runs[i].index);
    CHECK(pool.runs[i].solver == spread.runs[i].solver);
    CHECK(pool.runs[i].instance == spread.runs[i].instance);
    CHECK(pool.runs[i].seed == spread.runs[i].seed);
    CHECK(pool.runs[i].status == spread.runs[i].status);
    CHECK(pool.runs[i].energy == spread.runs[i].energy);
    CHECK(pool.runs[i].feasible == spread.runs[i].feasible);
  }
  REQUIRE(pool.summaries.size() == spread.summaries.size());
  for (std::size_t i = 0; i < pool.summaries.size(); ++i) {
    CHECK(pool.summaries[i].best == spread.summaries[i].best);
    CHECK(pool.summaries[i].success_probability == spread.summaries[i].success_probability);
  }
  CHECK(spread.jobs == 2);  // one cell at a time per process
}

TEST_CASE("run_comparison: an interrupt before the runs leaves them not_run, runner or not") {
  const std::vector<Instance> instances = {make_instance(test::data_path("formats/toy.qubo"))};
  ComparisonOptions o;
  o.solvers = {parse_solver_spec("greedy")};
  o.num_seeds = 2;
  o.jobs = 1;
  o.threads_per_run = 1;
  const std::atomic<bool> stop{true};
  o.solve.interrupt = &stop;
  const ComparisonReport pool = run_comparison(instances, o);
  ScrambledRunner runner(2);
  o.runner = &runner;
  const ComparisonReport spread = run_comparison(instances, o);
  for (const ComparisonReport* report : {&pool, &spread}) {
    CHECK(report->interrupted);
    REQUIRE(report->runs.size() == 2);
    for (const RunRecord& r : report->runs) {
      CHECK(r.status == RunStatus::kNotRun);
      CHECK(r.message == "interrupted before this run started");
    }
  }
}

TEST_CASE("calibration: chunks summed in order give the same bits for any runner") {
  const Checkpoint ckpt = Checkpoint::open(model_dir());
  const Transformer model(ckpt);
  const std::vector<std::int32_t> ids = calibration_tokens(1000);
  CalibrationOptions o;
  o.context = 64;  // 16 windows: 8 batches of 2, 3 chunks of up to 3 batches
  o.windows_per_batch = 2;
  o.batches_per_chunk = 3;
  std::vector<std::int64_t> progress;
  o.progress = [&](std::int64_t done, std::int64_t total) {
    CHECK(total == 1000);
    progress.push_back(done);
  };
  const CalibrationStatistics serial = collect_calibration_statistics(model, ids, o);
  CHECK(progress == std::vector<std::int64_t>{384, 768, 1000});
  ScrambledRunner runner(2);
  o.runner = &runner;
  const CalibrationStatistics scrambled = collect_calibration_statistics(model, ids, o);
  CHECK(runner.chunks == 3);
  REQUIRE(serial.mlp.size() == scrambled.mlp.size());
  for (std::size_t l = 0; l < serial.mlp.size(); ++l) {
    CHECK(serial.mlp[l].gram == scrambled.mlp[l].gram);  // bit for bit
    CHECK(serial.mlp[l].mean == scrambled.mlp[l].mean);
    CHECK(serial.attn[l].gram == scrambled.attn[l].gram);
    CHECK(serial.attn[l].mean == scrambled.attn[l].mean);
  }
  // Another chunking changes only the rounding: the sums agree to double precision.
  o.runner = nullptr;
  o.batches_per_chunk = 1;
  const CalibrationStatistics fine = collect_calibration_statistics(model, ids, o);
  for (std::size_t l = 0; l < serial.mlp.size(); ++l) {
    const double scale = serial.mlp[l].gram.cwiseAbs().maxCoeff();
    CHECK(scale > 0.0);
    CHECK((serial.mlp[l].gram - fine.mlp[l].gram).cwiseAbs().maxCoeff() <= 1e-12 * scale);
  }
  o.batches_per_chunk = 0;
  CHECK_THROWS_AS((void)collect_calibration_statistics(model, ids, o), InvalidArgument);
}

TEST_CASE("serial runner: index order, and a failing job's error reaches the caller") {
  SerialJobRunner runner;
  JobRunner::Jobs jobs;
  jobs.count = 3;
  jobs.order = {2, 1, 0};
  std::vector<std::size_t> ran;
  jobs.run = [&](std::size_t i) {
    ran.push_back(i);
    if (i == 1) throw InvalidArgument("job 1 is bad");
    return std::to_string(i);
  };
  jobs.label = [](std::size_t i) { return "job " + std::to_string(i); };
  CHECK_THROWS_WITH_AS((void)runner.run(jobs), "job 1 is bad", InvalidArgument);
  CHECK(ran == std::vector<std::size_t>{0, 1});
}
