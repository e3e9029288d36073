// Benchmark of the qaoa statevector engine: time of one layer (phase + X mixer) for n = 20..max_n
// qubits in float and double next to a STREAM-like triad measured in the same program, the ratio
// to the bandwidth bound, and the time to build the cost diagonal of a dense QUBO (the parallel
// first touch of its pages and the fill apart).
// Usage:
//   qaoa_bench [max_n = 26] [repeats = 3]     the table (BENCHMARKS.md)
//   qaoa_bench layer <n> <float|double>        one engine, one layer (peak memory with time -v)
//   qaoa_bench subspace <n> <k> [shots = 1000]  QaoaSolver at p = 1, fixed angles, one group
//                                              "exactly k of n", subspace mode: one state
//                                              evaluation and the sample
// Bytes per layer counted: the fused pass (phase + 12 low qubits) and ceil((n-12)/8) grouped
// high-qubit passes, each reading and writing the state; "2-pass ratio" and "1-pass ratio" are the
// time over two (the bound) and one read and write of the state at the triad bandwidth.
// OMP_WAIT_POLICY defaults to passive (qaoa_omp_env.hpp). QAOA_BENCH_ISA=generic|avx2|avx512
// runs the layer kernels of a narrower instruction set than the CPU's best.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "bench/qaoa_bench_support.hpp"
#include "bench/qaoa_omp_env.hpp"
#include "qprune/qaoa_solver.hpp"
#include "solver/qaoa/layer_kernels.hpp"
#include "solver/qaoa/statevector.hpp"

using namespace qprune;
using detail::qaoa::CostTerms;
using detail::qaoa::DiagonalStorage;
using detail::qaoa::Engine;
using detail::qaoa::MixerKind;
using detail::qaoa::SpaceKind;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// CPU seconds of the process, all threads (on a loaded machine: what the work costs, apart from
/// the time spent waiting for a core).
double cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
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
  const Engine<Real> engine(bench::dense_cost(n), {}, MixerKind::kX, SpaceKind::kFull);
  auto psi = engine.make_state();
  engine.initial_state(psi.data());
  engine.layer(psi.data(), 0.1, 0.2);  // warm-up (first touch done in initial_state)
  double best = 1e30, best_cpu = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = now_s(), c0 = cpu_s();
    engine.layer(psi.data(), 0.1, 0.2);
    best = std::min(best, now_s() - t0);
    best_cpu = std::min(best_cpu, cpu_s() - c0);
  }
  const int high = std::max(0, n - 12);
  const int passes = 1 + (high + 7) / 8;
  const double bytes = 2.0 * passes * engine.state_bytes();
  const double bound = bytes / (gbs * 1e9);
  const double one_pass = 2.0 * engine.state_bytes() / (gbs * 1e9);
  std::printf(
      "n=%2d %-6s layer %.4f s (cpu %.4f s)  passes %d  bytes %.2f GB  bound %.4f s  "
      "ratio %.2f  2-pass ratio %.2f  1-pass ratio %.2f  (%.1f GB/s)  diagonal: touch "
      "%.3f s + fill %.3f s\n",
      n, sizeof(Real) == 4 ? "float" : "double", best, best_cpu, passes, bytes / 1e9, bound,
      best / bound, best / (2 * one_pass), best / one_pass, bytes / best / 1e9,
      engine.first_touch_time_s(), engine.diagonal_time_s());
}

template <class Real>
int single_layer(int n) {
  const double t0 = now_s();
  // Forward simulation only: the diagonal (8 bytes per amplitude) is not stored; <C> comes from
  // the factorised tables.
  const Engine<Real> engine(bench::dense_cost(n), {}, MixerKind::kX, SpaceKind::kFull, 1,
                            DiagonalStorage::kFactorised);
  auto psi = engine.make_state();
  const double t1 = now_s();
  engine.initial_state(psi.data());
  const double t2 = now_s();
  engine.layer(psi.data(), 0.1, 0.2);
  const double t3 = now_s();
  const auto m = engine.moments(psi.data());
  const double t4 = now_s();
  std::printf(
      "n=%d %s: state %.2f GiB (diagonal not stored); engine + state allocation %.2f s, "
      "initial state (first touch) %.2f s, one layer %.2f s, moments %.2f s, <C> %.6g, "
      "norm %.12f\n",
      n, sizeof(Real) == 4 ? "float" : "double", engine.state_bytes() / double(1 << 30), t1 - t0,
      t2 - t1, t3 - t2, t4 - t3, m.mean, m.norm);
  return 0;
}

int subspace(int n, int k, int shots) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::VectorXd linear(n);
  Eigen::MatrixXd q = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i) {
    linear[i] = u(rng);
    for (int j = i + 1; j < n; ++j) q(i, j) = q(j, i) = u(rng) / n;
  }
  QuboModel model = QuboModel::from_dense(linear, q);
  CardinalityConstraint group;
  group.name = "all";
  group.k = k;
  for (int i = 0; i < n; ++i) group.variables.push_back(i);
  model.add_constraint(group);
  QaoaOptions o;
  o.init = QaoaInit::kFixed;
  o.optimizer = QaoaOptimizer::kNone;
  o.gammas = {0.4};
  o.betas = {0.3};
  o.space = QaoaSpace::kSubspace;
  o.max_qubits = 40;
  o.shots = shots;
  o.greedy_descent = false;
  SolveOptions so;
  so.seed = 3;
  const double t0 = now_s();
  const SolveResult r = QaoaSolver(o).solve(model, so);
  const double t1 = now_s();
  std::printf(
      "subspace n=%d k=%d: dimension %.0f, state %.2f GiB, %.1f s in all (diagonal %.1f s, "
      "layer %.2f s, %.0f evaluations), <C> %.6g, ratio %.4f, %d shots, best sampled %.6g, "
      "distinct %.0f, feasible probability %.12f, info %s / %s\n",
      n, k, r.counters.at("dimension"), r.counters.at("state_gib"), t1 - t0,
      r.counters.at("diagonal_time_s"), r.counters.at("layer_time_s"), r.counters.at("evaluations"),
      r.counters.at("expected_energy"), r.counters.at("approximation_ratio"), shots,
      r.best().energy, r.counters.at("distinct_shots"), r.counters.at("feasible_probability"),
      r.info.at("space").c_str(), r.info.at("mixer").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::default_passive_omp_wait(argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "layer" && argc > 3) {
    const int n = std::atoi(argv[2]);
    return std::string(argv[3]) == "float" ? single_layer<float>(n) : single_layer<double>(n);
  }
  if (mode == "subspace" && argc > 3)
    return subspace(std::atoi(argv[2]), std::atoi(argv[3]), argc > 4 ? std::atoi(argv[4]) : 1000);
  const int max_n = argc > 1 ? std::atoi(argv[1]) : 26;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  if (const char* isa = std::getenv("QAOA_BENCH_ISA")) {
    const std::string name = isa;
    if (name != "generic" && name != "avx2" && name != "avx512") {
      std::fprintf(stderr, "QAOA_BENCH_ISA: expected generic, avx2 or avx512, got '%s'\n", isa);
      return 2;
    }
    detail::qaoa::set_kernel_isa(name == "generic" ? detail::qaoa::KernelIsa::kGeneric
                                 : name == "avx2"  ? detail::qaoa::KernelIsa::kAvx2
                                                   : detail::qaoa::KernelIsa::kAvx512);
  }
  const double gbs = triad_gbs(repeats);
  std::printf("threads %d  triad %.1f GB/s  OMP_WAIT_POLICY=%s  kernels %s\n",
              omp_get_max_threads(), gbs,
              std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)",
              detail::qaoa::to_string(detail::qaoa::kernel_isa()));
  for (int n = 20; n <= max_n; n += 2) {
    bench_layer<float>(n, repeats, gbs);
    bench_layer<double>(n, repeats, gbs);
  }
  return 0;
}
