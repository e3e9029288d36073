// Benchmark of the qaoa statevector engine: time of one layer (phase + X mixer) for n = 20..28
// qubits in float and double next to a STREAM-like triad measured in the same program, the ratio
// to the bandwidth bound, and the time to build the cost diagonal of a dense QUBO.
// Usage: qaoa_bench [max_n = 26] [repeats = 3]. Bytes per layer counted: the fused pass (phase +
// 12 low qubits) and ceil((n-12)/8) grouped high-qubit passes, each reading and writing the state.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "solver/qaoa/statevector.hpp"

using namespace qprune;
using detail::qaoa::CostTerms;
using detail::qaoa::Engine;
using detail::qaoa::MixerKind;
using detail::qaoa::SpaceKind;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

CostTerms dense_cost(int n) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  CostTerms c;
  c.n = n;
  c.linear = Eigen::VectorXd(n);
  c.couplings = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i) {
    c.linear[i] = u(rng);
    for (int j = i + 1; j < n; ++j) c.couplings(i, j) = c.couplings(j, i) = u(rng) / n;
  }
  return c;
}

/// Best-of-`repeats` triad a = b + s c over 3 arrays of 2^25 doubles: bytes moved / time.
double triad_gbs(int repeats) {
  const std::size_t n = std::size_t{1} << 25;
  detail::qaoa::AlignedArray<double> a(n), b(n), c(n);
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) a[i] = 0.0, b[i] = 1.0, c[i] = 2.0;
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {
    const double t0 = now_s();
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + 0.5 * c[i];
    best = std::min(best, now_s() - t0);
  }
  // STREAM counts 3 x 8 bytes per element (no write-allocate).
  return 24.0 * static_cast<double>(n) / best / 1e9;
}

template <class Real>
void bench_layer(int n, int repeats, double gbs) {
  const Engine<Real> engine(dense_cost(n), {}, MixerKind::kX, SpaceKind::kFull);
  auto psi = engine.make_state();
  engine.initial_state(psi.data());
  engine.layer(psi.data(), 0.1, 0.2);  // warm-up (first touch done in initial_state)
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = now_s();
    engine.layer(psi.data(), 0.1, 0.2);
    best = std::min(best, now_s() - t0);
  }
  const int high = std::max(0, n - 12);
  const int passes = 1 + (high + 7) / 8;
  const double bytes = 2.0 * passes * engine.state_bytes();
  const double bound = bytes / (gbs * 1e9);
  std::printf("n=%2d %-6s layer %.4f s  passes %d  bytes %.2f GB  bound %.4f s  ratio %.2f  "
              "(%.1f GB/s)  diagonal %.3f s\n",
              n, sizeof(Real) == 4 ? "float" : "double", best, passes, bytes / 1e9, bound,
              best / bound, bytes / best / 1e9, engine.diagonal_time_s());
}

}  // namespace

int main(int argc, char** argv) {
  const int max_n = argc > 1 ? std::atoi(argv[1]) : 26;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  const double gbs = triad_gbs(repeats);
  std::printf("threads %d  triad %.1f GB/s\n", omp_get_max_threads(), gbs);
  for (int n = 20; n <= max_n; n += 2) {
    bench_layer<float>(n, repeats, gbs);
    bench_layer<double>(n, repeats, gbs);
  }
  return 0;
}
