// Time to build one MLP layer's pruning problem at full size (issue 17 point 6), against the
// machine's own matrix-product rate measured in the same run, so the figure survives a noisy
// machine: the data-free problem (Isserlis statistics from w_gate and w_up, then the error matrix
// M = G o (W^T W) of w_down and its QUBO) and the calibrated one (the error matrix from given
// statistics: the same Gram, as measured statistics with a mean, so centred). Random weights of
// the layer's shape (no checkpoint I/O: that is timed by `qprune mask`); all threads, as
// `qprune mask` runs.
//
// The rate probes run the GEMM kernels the build uses (core/gram_kernels.hpp: the widest
// instruction set of this CPU, or QPRUNE_GEMM_ISA) on all threads, one m x m x H product per
// thread, in double (the error matrix) and in float (the Isserlis products); the "fraction"
// columns are (useful flops / time) / probe rate, useful flops counting only the lower triangles
// actually needed (Isserlis: 4 n^2 H in float, error matrix: n^2 H in double). The load average
// (/proc/loadavg, 1 minute) is printed before and after each run.
//
// --solve adds, on the data-free problem of the last run, the energies of the diagonal top-k,
// greedy and sa (default options: automatic sweeps and start, one read) and their gains over the
// top-k, in % and in ppm.
//
// Usage: layer_build_bench [--n 18944] [--hidden 3584] [--runs 3] [--keep 0.6] [--solve]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <pcg_random.hpp>
#include <string>
#include <vector>

#include "core/gram_kernels.hpp"
#include "core/parallel_for.hpp"
#include "qprune/anneal_solver.hpp"
#include "qprune/greedy_solver.hpp"
#include "qprune/pruning.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double one = -1.0;
  in >> one;
  return one;
}

Eigen::MatrixXd random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed,
                              double scale) {
  Eigen::MatrixXd m(rows, cols);
  pcg32 rng(seed);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i)
      m(i, j) = scale * (static_cast<double>(rng()) * 0x1p-32 - 0.5);
  return m;
}

// GFLOP/s of the kernels' product on all threads: each thread one (m x h)^T (h x m) product,
// best of 3.
template <class T, class Probe>
double probe_gflops(Eigen::Index h, Probe probe) {
  const Eigen::Index m = 1024;
  const int threads = qprune::detail::max_threads();
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Matrix a = random_matrix(h, m, 7, 1.0).cast<T>(), b = random_matrix(h, m, 8, 1.0).cast<T>();
  std::vector<Matrix> c(static_cast<std::size_t>(threads), Matrix(m, m));
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    qprune::detail::parallel_for(threads, [&](std::int64_t t) {
      probe(a.data(), b.data(), h, m, c[static_cast<std::size_t>(t)].data());
    });
    best = std::min(best, seconds_since(t0));
  }
  return threads * 2.0 * static_cast<double>(m) * static_cast<double>(m) * static_cast<double>(h) /
         best / 1e9;
}

// Relative gain of an energy over the top-k's, printed in % and in ppm (a gain below 0.01 % shows
// as +0.00 % in the mask output).
void print_gain(const char* who, double energy, double top_k, double seconds) {
  const double gain = (top_k - energy) / std::abs(top_k);
  std::printf("  %-8s energy %.10g  gain over top-k %+.4f %% = %+.2f ppm  (%.1f s)\n", who, energy,
              100.0 * gain, 1e6 * gain, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::Index n = 18944, h = 3584;
  int runs = 3;
  double keep = 0.6;
  bool solve = false;
  for (int a = 1; a < argc; ++a) {
    const std::string key = argv[a];
    if (key == "--solve") {
      solve = true;
      continue;
    }
    if (a + 1 == argc) break;
    if (key == "--n") n = std::stol(argv[a + 1]);
    if (key == "--hidden") h = std::stol(argv[a + 1]);
    if (key == "--runs") runs = std::stoi(argv[a + 1]);
    if (key == "--keep") keep = std::stod(argv[a + 1]);
    ++a;
  }
  const qprune::detail::GramKernels& kernels = qprune::detail::gram_kernels();
  std::printf("layer build: n = %ld units, hidden %ld, %d threads, GEMM kernels %s\n",
              static_cast<long>(n), static_cast<long>(h), qprune::detail::max_threads(),
              kernels.name);
  const Eigen::MatrixXd w_gate = random_matrix(n, h, 1, 0.05), w_up = random_matrix(n, h, 2, 0.05);
  const Eigen::MatrixXd w_down = random_matrix(h, n, 3, 0.05);
  const double nn_h = static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(h);
  qprune::MlpProblemOptions o;
  o.keep = static_cast<int>(keep * static_cast<double>(n) + 0.5);
  std::printf("%3s %5s %8s %8s | %9s %5s %9s %5s %9s | %9s %5s | %5s\n", "run", "load", "GF/s f64",
              "GF/s f32", "isserlis", "frac", "error M", "frac", "data-free", "calib", "frac",
              "load");
  qprune::LayerProblem last;
  for (int r = 0; r < runs; ++r) {
    const double load_before = load_average();
    const double rate_d = probe_gflops<double>(h, kernels.gemm_probe);
    const double rate_f = probe_gflops<float>(h, kernels.gemm_probe_float);
    auto t0 = std::chrono::steady_clock::now();
    qprune::ActivationStats s = qprune::isserlis_statistics(w_gate, w_up, 1.0);
    const double t_iss = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    qprune::LayerProblem p = qprune::build_mlp_problem(w_down, s, o);
    const double t_err = seconds_since(t0);
    if (p.model.num_variables() != n) return 1;
    p = {};  // free its n x n matrix before the calibrated one is built
    // Calibrated: measured statistics of the same shape (a mean, so the centred error matrix).
    s.approximate = false;
    s.num_tokens = 1000;
    s.mean /= 40.0;
    t0 = std::chrono::steady_clock::now();
    const qprune::LayerProblem pc = qprune::build_mlp_problem(w_down, s, o);
    const double t_cal = seconds_since(t0);
    if (pc.model.num_variables() != n) return 1;
    const double f_iss = 4.0 * nn_h / t_iss / 1e9 / rate_f;
    const double f_err = nn_h / t_err / 1e9 / rate_d;
    const double f_cal = nn_h / t_cal / 1e9 / rate_d;
    std::printf("%3d %5.2f %8.1f %8.1f | %8.2fs %5.2f %8.2fs %5.2f %8.2fs | %8.2fs %5.2f | %5.2f\n",
                r, load_before, rate_d, rate_f, t_iss, f_iss, t_err, f_err, t_iss + t_err, t_cal,
                f_cal, load_average());
    std::fflush(stdout);
    if (r + 1 == runs && solve) {
      s = {};
      last = qprune::build_mlp_problem(w_down, qprune::isserlis_statistics(w_gate, w_up, 1.0), o);
    }
  }
  if (!solve) return 0;
  std::printf("solve, data-free problem, keep %d of %ld (load %.2f):\n", *o.keep,
              static_cast<long>(n), load_average());
  const double top_k = last.model.energy(qprune::diagonal_top_k(last));
  std::printf("  top-k    energy %.10g\n", top_k);
  qprune::SolveOptions so;
  so.num_reads = 1;
  so.seed = 1;
  auto t0 = std::chrono::steady_clock::now();
  const qprune::SolveResult greedy = qprune::GreedySolver().solve(last.model, so);
  print_gain("greedy", greedy.best().energy, top_k, seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  const qprune::SolveResult sa = qprune::SimulatedAnnealing().solve(last.model, so);
  print_gain("sa", sa.best().energy, top_k, seconds_since(t0));
  std::printf("  sa: %s; start %s; beta %s; kept start %g reads; load %.2f\n",
              sa.info.at("sweeps").c_str(), sa.info.at("start").c_str(),
              sa.info.at("beta_range").c_str(), sa.counters.at("reads_kept_start"), load_average());
  return 0;
}
