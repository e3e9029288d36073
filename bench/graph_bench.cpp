// The Boost.Graph uses of issue 16, measured (BENCHMARKS.md, "Issue 16: Boost.Graph uses,
// measured"). Two modes, each printing medians over --runs runs:
//
//   graph_bench split [--copies C] [--solver sa|tabu] [--reads R] FILE...
//       Block-diagonal model of C copies of each FILE (any format read_model reads): the plain
//       solver against SolveOptions::split_components (time, best energy). A single FILE that is
//       connected (a pruning layer) shows the cost of the component scan alone.
//   graph_bench scan FILE
//       connected_components alone.
// (The chromatic-sweep mode measured in the same section is in commit 03cc112, with the code.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "qprune/formats.hpp"
#include "qprune/solvers.hpp"
#include "solver/graph/coupling_graph.hpp"

namespace {

using qprune::bench::median;

using qprune::QuboModel;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

QuboModel block_diagonal(const std::vector<QuboModel>& blocks) {
  int n = 0;
  for (const QuboModel& b : blocks) n += b.num_variables();
  Eigen::VectorXd c(n);
  std::vector<qprune::Coupling> q;
  double offset = 0.0;
  int base = 0;
  for (const QuboModel& b : blocks) {
    c.segment(base, b.num_variables()) = b.linear();
    b.for_each_coupling([&](int i, int j, double v) { q.push_back({base + i, base + j, v}); });
    offset += b.offset();
    base += b.num_variables();
  }
  return QuboModel::from_couplings(n, c, q, offset);
}

struct Args {
  std::string mode;
  int runs = 5, copies = 1, reads = 4;
  std::string solver = "sa";
  std::vector<std::string> files;
};

int run_split(const Args& a) {
  std::vector<QuboModel> blocks;
  for (const std::string& f : a.files) {
    const QuboModel m = qprune::read_model(f);
    for (int c = 0; c < a.copies; ++c) blocks.push_back(m);
  }
  const QuboModel model = blocks.size() == 1 ? blocks.front() : block_diagonal(blocks);
  const auto components = qprune::detail::graph::connected_components(model);
  std::printf("model: %d variables, %lld couplings, %s, %d components\n", model.num_variables(),
              static_cast<long long>(model.num_couplings()),
              model.storage() == qprune::Storage::kDense ? "dense" : "sparse", components.count());
  const auto solver = qprune::make_solver(a.solver);
  for (bool split : {false, true}) {
    std::vector<double> times, energies;
    std::string status;
    for (int r = 0; r < a.runs; ++r) {
      qprune::SolveOptions o;
      o.seed = static_cast<std::uint64_t>(r + 1);
      o.num_reads = a.reads;
      o.split_components = split;
      const double t0 = now_s();
      const qprune::SolveResult res = solver->solve(model, o);
      times.push_back(now_s() - t0);
      energies.push_back(res.best().energy);
      status = std::string(qprune::to_string(res.status));
    }
    std::printf(
        "%-6s %s reads=%d: median time %.4f s, median best energy %.6g, best %.6g, worst "
        "%.6g, status %s\n",
        a.solver.c_str(), split ? "split" : "plain", a.reads, median(times), median(energies),
        *std::min_element(energies.begin(), energies.end()),
        *std::max_element(energies.begin(), energies.end()), status.c_str());
  }
  return 0;
}

int run_scan(const Args& a) {
  const QuboModel model = qprune::read_model(a.files.at(0));
  std::vector<double> components_s;
  int count = 0;
  for (int r = 0; r < a.runs; ++r) {
    double t0 = now_s();
    count = qprune::detail::graph::connected_components(model).count();
    components_s.push_back(now_s() - t0);
  }
  std::printf("model: %d variables, %lld couplings: components %d in %.6f s\n",
              model.num_variables(), static_cast<long long>(model.num_couplings()), count,
              median(components_s));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr, "usage: graph_bench split|scan [options] FILE...\n");
    return 2;
  }
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    const auto value = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (s == "--runs")
      a.runs = std::atoi(value().c_str());
    else if (s == "--copies")
      a.copies = std::atoi(value().c_str());
    else if (s == "--reads")
      a.reads = std::atoi(value().c_str());
    else if (s == "--solver")
      a.solver = value();
    else
      a.files.push_back(s);
  }
  if (a.files.empty()) return 2;
  if (a.mode == "split") return run_split(a);
  if (a.mode == "scan") return run_scan(a);
  return 2;
}
