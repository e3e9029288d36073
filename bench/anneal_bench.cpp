// Throughput of the "sa" kernels: ns per flip attempt and attempts per second, one thread, one
// read, 1000 sweeps, geometric schedule over the automatic beta range. Dense kernel on random fully
// dense instances (integer coefficients uniform in [-100, 100]) at n = 1000, 2000, 5000 in float,
// double and the exact int8-row kernel (what kAuto picks for these instances), next to a naive
// kernel (double, std::mt19937 + uniform_real_distribution + exp on every attempt) measured in the
// same run, so the ratio survives a noisy machine. Sparse kernel on Gset G1 and G22 when the shared
// benchmark folder is there. Medians over --runs runs.
//
// Usage: anneal_bench [--runs R] [--sizes 1000,2000,5000] [--sweeps S]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "qprune/anneal_solver.hpp"

namespace {

using qprune::bench::find_benchmarks;
using qprune::bench::median;
using qprune::bench::read_gset;

using qprune::QuboModel;

QuboModel random_dense(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> coef(-100, 100);
  Eigen::VectorXd c(n);
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i) c[i] = coef(rng);
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) q(i, j) = q(j, i) = coef(rng);
  return QuboModel::from_dense(c, q, 0.0, qprune::Storage::kDense);
}

/// The straightforward kernel: double fields, a column of the Eigen matrix per accepted flip, a
/// mt19937 draw and an exp on every attempt. Returns ns per attempt.
double naive_ns_per_attempt(const QuboModel& m, int sweeps, std::pair<double, double> range,
                            std::uint64_t seed) {
  const int n = m.num_variables();
  const Eigen::MatrixXd& q = m.dense_couplings();
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = static_cast<int>(rng() & 1U);
  Eigen::VectorXd h = m.linear();
  for (int j = 0; j < n; ++j)
    if (x[static_cast<std::size_t>(j)]) h += q.col(j);
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < sweeps; ++s) {
    const double t = sweeps == 1 ? 1.0 : static_cast<double>(s) / (sweeps - 1);
    const double beta = range.first * std::pow(range.second / range.first, t);
    for (int i = 0; i < n; ++i) {
      const double delta = x[static_cast<std::size_t>(i)] ? -h[i] : h[i];
      if (u(rng) < std::exp(-beta * delta)) {
        const double sign = x[static_cast<std::size_t>(i)] ? -1.0 : 1.0;
        h += sign * q.col(i);
        x[static_cast<std::size_t>(i)] ^= 1;
      }
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  volatile double sink = h.sum();  // keep the work observable
  (void)sink;
  return 1e9 * s / (static_cast<double>(sweeps) * n);
}

struct Measured {
  double ns_per_attempt;
  double energy;
  double accept_rate;
};

Measured run_sa(const QuboModel& m, int sweeps, qprune::AnnealPrecision precision,
                std::uint64_t seed) {
  qprune::AnnealOptions a;
  a.num_sweeps = sweeps;
  a.precision = precision;
  a.greedy_descent = false;  // time the annealing kernel only
  qprune::SolveOptions o;
  o.seed = seed;
  const qprune::SolveResult r = qprune::SimulatedAnnealing(a).solve(m, o);
  return {r.counters.at("ns_per_attempt"), r.best().energy,
          r.counters.at("accepted_moves") / r.counters.at("flip_attempts")};
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5, sweeps = 1000;
  std::vector<int> sizes = {1000, 2000, 5000};
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string key = argv[a];
    if (key == "--runs") runs = std::stoi(argv[a + 1]);
    if (key == "--sweeps") sweeps = std::stoi(argv[a + 1]);
    if (key == "--sizes") {
      sizes.clear();
      std::stringstream list(argv[a + 1]);
      for (std::string item; std::getline(list, item, ',');) sizes.push_back(std::stoi(item));
    }
  }
  omp_set_num_threads(1);
  std::printf(
      "sa kernel benchmark: 1 thread, 1 read, %d sweeps, geometric, auto beta range, "
      "median of %d runs\n",
      sweeps, runs);
  std::printf("%-8s %6s %9s %9s %9s %9s %9s %9s %9s %7s\n", "instance", "n", "float ns",
              "double ns", "int8 ns", "naive ns", "naive/fl", "naive/dbl", "naive/i8", "accept");
  for (int n : sizes) {
    const QuboModel m = random_dense(n, 42 + static_cast<std::uint64_t>(n));
    const auto range = qprune::default_beta_range(m);
    std::vector<double> f, d, i8, naive, rf, rd, ri, acc;
    for (int r = 0; r < runs; ++r) {
      const auto seed = static_cast<std::uint64_t>(r);
      const Measured mf = run_sa(m, sweeps, qprune::AnnealPrecision::kFloat, seed);
      f.push_back(mf.ns_per_attempt);
      acc.push_back(mf.accept_rate);
      d.push_back(run_sa(m, sweeps, qprune::AnnealPrecision::kDouble, seed).ns_per_attempt);
      i8.push_back(run_sa(m, sweeps, qprune::AnnealPrecision::kInteger, seed).ns_per_attempt);
      naive.push_back(naive_ns_per_attempt(m, sweeps, range, seed));
      rf.push_back(naive.back() / f.back());
      rd.push_back(naive.back() / d.back());
      ri.push_back(naive.back() / i8.back());
    }
    std::printf("%-8s %6d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %7.3f\n", "dense", n, median(f),
                median(d), median(i8), median(naive), median(rf), median(rd), median(ri),
                median(acc));
    std::fflush(stdout);
  }

  const std::filesystem::path bench = find_benchmarks();
  if (bench.empty()) {
    std::printf("sparse: skipped: shared benchmarks (gset) not found\n");
    return 0;
  }
  for (const char* name : {"G1", "G22"}) {
    const std::filesystem::path file = bench / "gset" / (std::string(name) + ".txt");
    if (!std::filesystem::exists(file)) {
      std::printf("%s: skipped: %s not found\n", name, file.c_str());
      continue;
    }
    const QuboModel m = read_gset(file);
    std::vector<double> f, d, cut;
    for (int r = 0; r < runs; ++r) {
      const auto seed = static_cast<std::uint64_t>(r);
      const Measured mf = run_sa(m, sweeps, qprune::AnnealPrecision::kFloat, seed);
      f.push_back(mf.ns_per_attempt);
      cut.push_back(-mf.energy);
      d.push_back(run_sa(m, sweeps, qprune::AnnealPrecision::kDouble, seed).ns_per_attempt);
    }
    std::printf("%-8s %6d %9.1f %9.1f   (sparse kernel; median cut %.0f, no descent)\n", name,
                m.num_variables(), median(f), median(d), median(cut));
  }
  return 0;
}
