// The swap descent that ends every "sa" read in swap mode, on a data-free magnitude MLP layer of
// DeepSeek-R1-Distill-Qwen-7B size (n = 18944 units, keep k = 11366, diagonal model): the state
// sa reaches without the descent, then the descent of anneal_kernel.hpp next to the previous
// best-swap scan (k (n - k) pairs per move, one move per scan), measured in the same run on the
// same state. The scores are -(1 + 0.017 z), z ~ N(0, 1): column norms of a 3584-row Gaussian
// down_proj are that concentrated, so many near-ties stay misplaced after annealing.
//
// Usage: swap_descent_bench [--old-moves 10] (the old scan is capped at that many moves and its
// total is extrapolated from the time per move)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>

#include "qprune/anneal_solver.hpp"
#include "solver/anneal/anneal_kernel.hpp"

namespace {

using namespace qprune;
using namespace qprune::detail;
using namespace qprune::detail::anneal;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The previous descent of one group: scan every (zero, one) pair for the best swap, apply it,
/// repeat; stops at a local optimum or after max_moves.
std::int64_t best_swap_scan(const SparseForm<double>& form, int* s, int size, int k,
                            std::uint8_t* x, double* h, std::int64_t max_moves) {
  std::int64_t moves = 0;
  for (; moves < max_moves; ++moves) {
    int best_a = -1, best_b = -1;
    double best = 0.0;
    for (int ib = 0; ib < k; ++ib) {
      for (int ia = k; ia < size; ++ia) {
        const double d = h[s[ia]] - h[s[ib]] - form.coupling(s[ia], s[ib]);
        if (d < best) {
          best = d;
          best_a = ia;
          best_b = ib;
        }
      }
    }
    if (best_a < 0) break;
    apply_swap(form, s, best_a, best_b, x, h);
  }
  return moves;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t old_moves = 10;
  for (int a = 1; a + 1 < argc; a += 2)
    if (std::string(argv[a]) == "--old-moves") old_moves = std::stoll(argv[a + 1]);
  const int n = 18944, k = 11366;
  std::mt19937_64 rng(1);
  std::normal_distribution<double> z(0.0, 1.0);
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = -(1.0 + 0.017 * z(rng));
  QuboModel m = QuboModel::from_couplings(n, c, {}, 0.0, Storage::kSparse);
  std::vector<int> all(static_cast<std::size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  m.add_constraint({"mlp", all, k});
  std::vector<int> order = all;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return c[a] < c[b]; });
  std::vector<char> top(static_cast<std::size_t>(n), 0);
  for (int i = 0; i < k; ++i) top[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;

  AnnealOptions anneal;
  anneal.greedy_descent = false;
  SolveOptions options;
  options.seed = 3;
  const SolveResult r = SimulatedAnnealing(anneal).solve(m, options);
  const Assignment& annealed = r.best().x;
  int misplaced = 0;
  for (std::size_t i = 0; i < annealed.size(); ++i) misplaced += annealed[i] && !top[i];
  std::printf("sa without descent (%s sweeps): %.2f s, misplaced ones %d of %d\n",
              r.info.at("sweeps").c_str(), r.counters.at("anneal_time_s"), misplaced, k);

  const SparseForm<double> form(m);
  const SwapLayout layout(m);
  for (const bool old : {true, false}) {
    std::vector<std::uint8_t> x(annealed.begin(), annealed.end());
    std::vector<int> slots;
    for (int i = 0; i < n; ++i)
      if (x[static_cast<std::size_t>(i)]) slots.push_back(i);
    for (int i = 0; i < n; ++i)
      if (!x[static_cast<std::size_t>(i)]) slots.push_back(i);
    std::vector<double> h(static_cast<std::size_t>(n));
    compute_fields(form, x.data(), h.data());
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t moves =
        old ? best_swap_scan(form, slots.data(), n, k, x.data(), h.data(), old_moves)
            : swap_descent(form, layout, positive_row_bounds(form), slots, x.data(), h.data(), 0.0,
                           std::int64_t{1} << 40);
    const double t = seconds_since(t0);
    int wrong = 0;
    for (std::size_t i = 0; i < x.size(); ++i) wrong += x[i] && !top[i];
    const double per_move = t / static_cast<double>(std::max<std::int64_t>(moves, 1));
    std::printf(
        "%-26s %6lld moves in %8.3f s (%.2e s per move), misplaced after: %d%s\n",
        old ? "previous best-swap scan:" : "descent (sort + bound):", static_cast<long long>(moves),
        t, per_move, wrong,
        old ? (", projected for all: " + std::to_string(per_move * misplaced) + " s").c_str() : "");
  }
  return 0;
}
