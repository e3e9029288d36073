// Benchmark of one exact QAOA gradient (adjoint method) against one forward evaluation on the
// statevector engine, X mixer, random dense QUBO: what an L-BFGS step costs relative to a
// derivative-free one. Uses only the engine's layer / adjoint interface, so this file and
// qaoa_bench_support.hpp build against older commits for before/after figures (BENCHMARKS.md).
// Usage: qaoa_gradient_bench [n = 22] [layers = 3] [repeats = 5] [subspace <k>]
// Prints the median time of <C> (forward: layers + moments) and of <C> with its 2p derivatives
// (forward + C psi + adjoint sweep), their ratio, <C> and the sum of the derivatives (to compare
// builds). With `subspace k`: one group "exactly k of all n", XY ring mixer, feasible subspace.
// (The engine options this file uses have kept their signature since commit 38b5838.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/qaoa_bench_support.hpp"
#include "bench/qaoa_omp_env.hpp"
#include "solver/qaoa/statevector.hpp"

using qprune::detail::qaoa::CostTerms;
using qprune::detail::qaoa::Engine;
using qprune::detail::qaoa::Group;
using qprune::detail::qaoa::MixerKind;
using qprune::detail::qaoa::SpaceKind;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  qprune::bench::default_passive_omp_wait(argv);
  const int n = argc > 1 ? std::atoi(argv[1]) : 22;
  const int layers = argc > 2 ? std::atoi(argv[2]) : 3;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  const CostTerms cost = qprune::bench::dense_cost(n);
  const bool subspace = argc > 5 && std::string(argv[4]) == "subspace";
  std::vector<Group> groups;
  if (subspace) {
    Group all;
    all.k = std::atoi(argv[5]);
    for (int i = 0; i < n; ++i) all.variables.push_back(i);
    groups.push_back(all);
  }
  const Engine<double> engine(cost, groups, subspace ? MixerKind::kXyRing : MixerKind::kX,
                              subspace ? SpaceKind::kSubspace : SpaceKind::kFull);
  std::vector<double> gammas, betas;
  for (int l = 0; l < layers; ++l) {
    gammas.push_back(0.1 + 0.05 * l);
    betas.push_back(0.6 - 0.1 * l);
  }
  auto psi = engine.make_state(), lam = engine.make_state();
  std::vector<double> forward, gradient;
  double mean = 0.0, check = 0.0, grad_sum = 0.0;
  for (int r = 0; r < repeats + 1; ++r) {
    const double t0 = now_s();
    engine.initial_state(psi.data());
    for (int l = 0; l < layers; ++l) engine.layer(psi.data(), gammas[l], betas[l]);
    mean = engine.moments(psi.data()).mean;
    const double t1 = now_s();
    engine.initial_state(psi.data());
    for (int l = 0; l < layers; ++l) engine.layer(psi.data(), gammas[l], betas[l]);
    engine.apply_cost(psi.data(), lam.data());
    const double f = engine.real_inner(psi.data(), lam.data());
    double sum = 0.0;
    for (int l = layers; l-- > 0;) {
      sum += engine.mixer_adjoint(psi.data(), lam.data(), betas[l]);
      sum += engine.phase_adjoint(psi.data(), lam.data(), gammas[l]);
    }
    const double t2 = now_s();
    check = f;
    grad_sum = sum;
    if (r == 0) continue;  // warm-up (first touch of both states)
    forward.push_back(t1 - t0);
    gradient.push_back(t2 - t1);
  }
  std::printf(
      "n=%d p=%d %s forward %.4f s  gradient %.4f s  ratio %.2f  (<C> %.10g, %.10g, "
      "derivatives' sum %.12g)\n",
      n, layers, subspace ? "subspace" : "full", median(forward), median(gradient),
      median(gradient) / median(forward), mean, check, grad_sum);
  return 0;
}
