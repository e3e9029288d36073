// Cost of "sa" on one dense MLP-layer-sized pruning problem in swap mode: n units, one group that
// keeps k = round(0.6 n), real couplings of both signs (like a calibration M matrix, so neither
// the integer kernel nor exact float applies), one read, one thread. Prints the time of the
// annealing sweeps, of the rest (compiling the model, the greedy descent, finalising), and ns
// per attempt, so the default sweep count can be judged at n = 18944 (DeepSeek-R1-Distill-Qwen-7B
// intermediate size) from a few sweeps: the annealing time is linear in the sweep count.
//
// The best energy is printed too, so runs with different sweep counts (and --seed) compare the
// quality the count buys.
//
// Usage: anneal_dense_layer [--n 18944] [--sweeps 20] (0: the automatic count) [--seed 0]
//                           [--no-descent]
#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <pcg_random.hpp>
#include <string>

#include "qprune/anneal_solver.hpp"

int main(int argc, char** argv) {
  int n = 18944, sweeps = 20;
  std::uint64_t seed = 0;
  bool descent = true;
  for (int a = 1; a < argc; ++a) {
    const std::string key = argv[a];
    if (key == "--no-descent") descent = false;
    if (key == "--no-descent" || a + 1 == argc) continue;
    if (key == "--n") n = std::stoi(argv[a + 1]);
    if (key == "--sweeps") sweeps = std::stoi(argv[a + 1]);
    if (key == "--seed") seed = std::stoull(argv[a + 1]);
    ++a;
  }
  omp_set_num_threads(1);
  const auto t0 = std::chrono::steady_clock::now();
  pcg32 rng(1);
  const auto uniform = [&] { return static_cast<double>(rng()) * 0x1p-32 - 0.5; };
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = -1.0 + 0.5 * uniform();
  Eigen::MatrixXd q(n, n);
  for (int j = 0; j < n; ++j) {
    q(j, j) = 0.0;
    for (int i = j + 1; i < n; ++i) q(i, j) = q(j, i) = 2e-3 * uniform();
  }
  qprune::QuboModel m = qprune::QuboModel::from_dense(c, std::move(q));
  std::vector<int> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  m.add_constraint({"mlp", all, static_cast<int>(0.6 * n + 0.5)});
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  qprune::AnnealOptions a;
  a.num_sweeps = sweeps;
  a.greedy_descent = descent;
  qprune::SolveOptions o;
  o.num_reads = 1;
  o.seed = seed;
  const qprune::SolveResult r = qprune::SimulatedAnnealing(a).solve(m, o);
  const double anneal_s = r.counters.at("anneal_time_s");
  std::printf(
      "n %d, %d sweeps: model build %.1f s, solve wall %.1f s (anneal %.1f s, other %.1f s)\n", n,
      sweeps, build_s, r.wall_time_s, anneal_s, r.wall_time_s - anneal_s);
  std::printf("  %.0f ns per attempt, accepted %.3f, kernel %s, precision %s\n",
              r.counters.at("ns_per_attempt"),
              r.counters.at("accepted_moves") / r.counters.at("flip_attempts"),
              r.info.at("kernel").c_str(), r.info.at("precision").c_str());
  const double done = r.counters.at("flip_attempts") / static_cast<double>(n);  // sweeps run
  std::printf("  sweeps %s; projected anneal time at 1000 sweeps: %.0f s\n",
              r.info.at("sweeps").c_str(), anneal_s * 1000.0 / done);
  std::printf("  seed %llu, best energy %.10g\n", static_cast<unsigned long long>(seed),
              r.best().energy);
  return 0;
}
