// ns per flip attempt of qprune's "sa" against the neal-class reference (bench/neal_reference.hpp)
// on sparse and dense instances, interleaved in one run: per run, sa with the automatic kernel
// choice, sa forced to the CSR kernel, sa forced to dense rows (n <= 5000), then the reference,
// each 1 thread, 1 read, the same sweeps and the same geometric beta schedule (sa's automatic
// range), sa without its closing descent. Medians over --runs runs; the last columns are the
// median of the per-run ratios neal / sa. qprune's figure is its anneal_time_s counter over its
// flip_attempts (the sweeps only), the reference's its own timer over the same sweeps (plus its
// O(nnz) initial deltas). Same seeds give the same samples, so accept rates agree closely.
//
// Instances: random sparse n = 10^4 with 5 random partners per variable (mean degree ~10), integer
// coefficients in [-100, 100] or real in [-1, 1]; random 10 % density n = 1000, integer and real;
// Gset G22 and G43 (Max-Cut as a QUBO, energy = -cut) from the shared benchmark folder when there;
// random dense n = 1000 and 2000, integer in [-100, 100].
//
// --mode crossover times sa's two kernels only (sparse vs dense rows, same samples) over densities
// at several n, integer and real: the data of the cost model in anneal_solver.cpp.
//
// Usage: sparse_anneal_bench [--runs R] [--sweeps S] [--only name,name] [--mode compare|crossover]
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "bench/neal_reference.hpp"
#include "qprune/anneal_solver.hpp"

namespace {

using qprune::bench::find_benchmarks;
using qprune::bench::median;
using qprune::bench::read_gset;

using qprune::QuboModel;
using qprune::Storage;

/// Random coefficient: an integer in [-100, 100] or a real in [-1, 1].
double draw(std::mt19937_64& rng, bool integer) {
  if (integer) return static_cast<double>(std::uniform_int_distribution<int>(-100, 100)(rng));
  return std::uniform_real_distribution<double>(-1.0, 1.0)(rng);
}

/// n variables, each picking `partners` random others (duplicates summed): mean degree 2 partners.
QuboModel random_sparse(int n, int partners, bool integer, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = draw(rng, integer);
  std::vector<qprune::Coupling> q;
  std::uniform_int_distribution<int> other(0, n - 2);
  for (int i = 0; i < n; ++i) {
    for (int p = 0; p < partners; ++p) {
      int j = other(rng);
      if (j >= i) ++j;
      double v = draw(rng, integer);
      if (v == 0.0) v = 1.0;
      q.push_back({std::min(i, j), std::max(i, j), v});
    }
  }
  // A pair drawn twice keeps its first coefficient (summing could leave the weight range).
  std::stable_sort(q.begin(), q.end(), [](const qprune::Coupling& a, const qprune::Coupling& b) {
    return a.i != b.i ? a.i < b.i : a.j < b.j;
  });
  q.erase(std::unique(q.begin(), q.end(),
                      [](const qprune::Coupling& a, const qprune::Coupling& b) {
                        return a.i == b.i && a.j == b.j;
                      }),
          q.end());
  return QuboModel::from_couplings(n, c, q, 0.0, Storage::kSparse);
}

/// Each pair coupled with probability `density`.
QuboModel random_density(int n, double density, bool integer, std::uint64_t seed, Storage storage) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = draw(rng, integer);
  std::vector<qprune::Coupling> q;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      if (u(rng) >= density) continue;
      double v = draw(rng, integer);
      if (v == 0.0) v = 1.0;
      q.push_back({i, j, v});
    }
  }
  return QuboModel::from_couplings(n, c, q, 0.0, storage);
}

struct SaRun {
  double ns = 0.0;  // per flip attempt, sweeps only
  double accept = 0.0;
  double energy = 0.0;
  std::string kernel, precision;
};

SaRun run_sa(const QuboModel& m, int sweeps, Storage kernel, std::uint64_t seed) {
  qprune::AnnealOptions a;
  a.num_sweeps = sweeps;
  a.greedy_descent = false;
  a.kernel_storage = kernel;
  qprune::SolveOptions o;
  o.seed = seed;
  const qprune::SolveResult r = qprune::SimulatedAnnealing(a).solve(m, o);
  const double attempts = r.counters.at("flip_attempts");
  return {1e9 * r.counters.at("anneal_time_s") / attempts,
          r.counters.at("accepted_moves") / attempts, r.best().energy, r.info.at("kernel"),
          r.info.at("precision")};
}

std::string first_word(const std::string& s) { return s.substr(0, s.find_first_of(" ,")); }

void compare(const std::string& name, const QuboModel& m, int sweeps, int runs) {
  const auto betas = qprune::bench::geometric_betas(qprune::default_beta_range(m), sweeps);
  const qprune::bench::NealReference neal(m);
  const bool with_dense = m.num_variables() <= 5000;
  std::vector<double> a, s, d, r, ratio_auto, ratio_sparse, acc_sa, acc_neal, e_sa, e_neal;
  std::string kernel, precision;
  for (int run = 0; run < runs; ++run) {
    const auto seed = static_cast<std::uint64_t>(run + 1);
    const SaRun sa = run_sa(m, sweeps, Storage::kAuto, seed);
    kernel = first_word(sa.kernel);
    precision = first_word(sa.precision);
    a.push_back(sa.ns);
    acc_sa.push_back(sa.accept);
    e_sa.push_back(sa.energy);
    s.push_back(run_sa(m, sweeps, Storage::kSparse, seed).ns);
    if (with_dense) d.push_back(run_sa(m, sweeps, Storage::kDense, seed).ns);
    qprune::bench::Xorshift128Plus rng(seed);
    const auto read = neal.anneal(betas, rng);
    r.push_back(1e9 * read.anneal_s / static_cast<double>(read.attempts));
    acc_neal.push_back(static_cast<double>(read.accepted) / static_cast<double>(read.attempts));
    e_neal.push_back(read.energy);
    ratio_auto.push_back(r.back() / a.back());
    ratio_sparse.push_back(r.back() / s.back());
  }
  const double row = 2.0 * static_cast<double>(m.num_couplings()) / m.num_variables();
  std::printf(
      "%-14s %6d %7.1f %-6s %-6s %8.2f %8.2f %8.2f %8.2f %7.2f %7.2f %6.3f %6.3f %12.6g %12.6g\n",
      name.c_str(), m.num_variables(), row, precision.c_str(), kernel.c_str(), median(a), median(s),
      with_dense ? median(d) : 0.0, median(r), median(ratio_auto), median(ratio_sparse),
      median(acc_sa), median(acc_neal), median(e_sa), median(e_neal));
  std::fflush(stdout);
}

void crossover(int sweeps, int runs) {
  std::printf("%6s %8s %7s %-6s %9s %9s %8s %7s\n", "n", "density", "row", "prec", "sparse ns",
              "dense ns", "dense/sp", "accept");
  for (int n : {1000, 2000, 4000}) {
    for (bool integer : {true, false}) {
      for (double density : {0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32}) {
        const QuboModel m = random_density(n, density, integer, 7 + static_cast<std::uint64_t>(n),
                                           Storage::kSparse);
        std::vector<double> s, d, ratio, acc;
        std::string precision;
        for (int run = 0; run < runs; ++run) {
          const auto seed = static_cast<std::uint64_t>(run + 1);
          const SaRun sp = run_sa(m, sweeps, Storage::kSparse, seed);
          const SaRun de = run_sa(m, sweeps, Storage::kDense, seed);
          precision = first_word(sp.precision);
          s.push_back(sp.ns);
          d.push_back(de.ns);
          ratio.push_back(de.ns / sp.ns);
          acc.push_back(sp.accept);
        }
        const double row = 2.0 * static_cast<double>(m.num_couplings()) / n;
        std::printf("%6d %8.3f %7.1f %-6s %9.2f %9.2f %8.2f %7.3f\n", n, density, row,
                    precision.c_str(), median(s), median(d), median(ratio), median(acc));
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5, sweeps = 1000;
  std::string mode = "compare";
  std::set<std::string> only;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string key = argv[a];
    const std::string value = argv[a + 1];
    if (key == "--runs") runs = std::stoi(value);
    if (key == "--sweeps") sweeps = std::stoi(value);
    if (key == "--mode") mode = value;
    if (key == "--only") {
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');) only.insert(item);
    }
  }
  omp_set_num_threads(1);
  std::printf(
      "sa vs neal-class reference: 1 thread, 1 read, %d sweeps, geometric, sa's auto beta "
      "range, no descent, median of %d runs\n",
      sweeps, runs);
  if (mode == "crossover") {
    crossover(sweeps, runs);
    return 0;
  }
  std::printf("%-14s %6s %7s %-6s %-6s %8s %8s %8s %8s %7s %7s %6s %6s %12s %12s\n", "instance",
              "n", "row", "prec", "kernel", "auto ns", "csr ns", "dense ns", "neal ns", "neal/au",
              "neal/csr", "acc sa", "acc nl", "E sa", "E neal");
  const auto want = [&](const std::string& name) { return only.empty() || only.count(name) > 0; };
  const auto run = [&](const std::string& name, auto make) {
    if (want(name)) compare(name, make(), sweeps, runs);
  };
  run("sparse10k-int", [] { return random_sparse(10000, 5, true, 1); });
  run("sparse10k-real", [] { return random_sparse(10000, 5, false, 2); });
  run("dens10%-1k-int", [] { return random_density(1000, 0.1, true, 3, Storage::kSparse); });
  run("dens10%-1k-real", [] { return random_density(1000, 0.1, false, 4, Storage::kSparse); });
  const std::filesystem::path bench = find_benchmarks();
  for (const char* g : {"G22", "G43"}) {
    const std::filesystem::path file = bench / "gset" / (std::string(g) + ".txt");
    if (!want(g)) continue;
    if (bench.empty() || !std::filesystem::exists(file)) {
      std::printf("%s: skipped: %s not found\n", g, file.c_str());
      continue;
    }
    compare(g, read_gset(file), sweeps, runs);
  }
  run("dense1k-int", [] { return random_density(1000, 1.0, true, 5, Storage::kDense); });
  run("dense2k-int", [] { return random_density(2000, 1.0, true, 6, Storage::kDense); });
  return 0;
}
