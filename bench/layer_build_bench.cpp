// Time to build one MLP layer's pruning problem at full size (issue 17 point 6), against the
// machine's own matrix-product rate measured in the same run, so the figure survives a noisy
// machine: the data-free problem (Isserlis statistics from w_gate and w_up, then the error matrix
// M = G o (W^T W) of w_down and its QUBO) and the calibrated one (the error matrix from given
// statistics). Random weights of the layer's shape (no checkpoint I/O: that is timed by
// `qprune mask`); all threads, as `qprune mask` runs.
//
// The rate probe is one Eigen product of the same inner dimension (H) on all threads; the
// "fraction" columns are (useful flops / time) / probe rate, useful flops counting only the
// lower triangles actually needed (Isserlis: 4 n^2 H, error matrix: n^2 H).
//
// Usage: layer_build_bench [--n 18944] [--hidden 3584] [--runs 3]
#include <chrono>
#include <cstdio>
#include <pcg_random.hpp>
#include <string>
#include <vector>

#include "core/parallel_for.hpp"
#include "qprune/pruning.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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

// GFLOP/s of one (t x h) (h x t) product on all threads, best of 3.
double probe_gflops(Eigen::Index h) {
  const Eigen::Index t = 2048;
  const Eigen::MatrixXd a = random_matrix(t, h, 7, 1.0), b = random_matrix(h, t, 8, 1.0);
  Eigen::MatrixXd c(t, t);
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * static_cast<double>(t) * static_cast<double>(t) * static_cast<double>(h) / best /
         1e9;
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::Index n = 18944, h = 3584;
  int runs = 3;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string key = argv[a];
    if (key == "--n") n = std::stol(argv[a + 1]);
    if (key == "--hidden") h = std::stol(argv[a + 1]);
    if (key == "--runs") runs = std::stoi(argv[a + 1]);
  }
  std::printf("layer build: n = %ld units, hidden %ld, %d threads\n", static_cast<long>(n),
              static_cast<long>(h), qprune::detail::max_threads());
  const Eigen::MatrixXd w_gate = random_matrix(n, h, 1, 0.05), w_up = random_matrix(n, h, 2, 0.05);
  const Eigen::MatrixXd w_down = random_matrix(h, n, 3, 0.05);
  const double nn_h = static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(h);
  std::printf("%4s %10s %10s %10s %10s %10s %10s %10s\n", "run", "probe GF/s", "isserlis s",
              "fraction", "error M s", "fraction", "total s", "vs probe");
  for (int r = 0; r < runs; ++r) {
    const double before = probe_gflops(h);
    auto t0 = std::chrono::steady_clock::now();
    const qprune::ActivationStats s = qprune::isserlis_statistics(w_gate, w_up, 1.0);
    const double t_iss = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    qprune::MlpProblemOptions o;
    o.keep = static_cast<int>(0.6 * static_cast<double>(n));
    const qprune::LayerProblem p = qprune::build_mlp_problem(w_down, s, o);
    const double t_err = seconds_since(t0);
    const double after = probe_gflops(h);
    const double probe = 0.5 * (before + after);
    const double f_iss = 4.0 * nn_h / t_iss / 1e9 / probe;
    const double f_err = nn_h / t_err / 1e9 / probe;
    std::printf("%4d %10.1f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", r, probe, t_iss, f_iss,
                t_err, f_err, t_iss + t_err, 5.0 * nn_h / (t_iss + t_err) / 1e9 / probe);
    if (p.model.num_variables() != n) return 1;
  }
  return 0;
}
