// The swap descent on the exact re-routed error of a MoE layer (improve_by_swaps) on a synthetic
// block of DeepSeek-V3's routing shape: 256 experts in 8 groups, top-4 groups, top-8, keep 128,
// sigmoid scores with a bias; random router, experts and inputs (a small hidden size keeps the
// expert outputs cheap; the routing work is that of the real layer). Measured in the same run
// from the same start: rounds of the previous descent, which scores every swap with a full
// ExpertRerouting::error, against rounds of ExpertSwapState, which re-evaluates only the samples
// a swap can change; then the whole new descent.
//
// Usage: expert_swap_bench [--samples 1024] [--hidden 512] [--width 64] [--old-rounds 2]
//                          [--max-rounds 1000]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/parallel_for.hpp"
#include "qprune/expert_pruning.hpp"
#include "qprune/transformer.hpp"

namespace {

using namespace qprune;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every swap within a routing group of `kept` (sorted), in improve_by_swaps's order.
std::vector<std::pair<int, int>> swaps_of(const std::vector<int>& kept, int n, int groups) {
  std::vector<char> in(static_cast<std::size_t>(n), 0);
  for (const int e : kept) in[static_cast<std::size_t>(e)] = 1;
  const int per = n / groups;
  std::vector<std::pair<int, int>> moves;
  for (const int out : kept)
    for (int e = 0; e < n; ++e)
      if (!in[static_cast<std::size_t>(e)] && e / per == out / per) moves.emplace_back(out, e);
  return moves;
}

// One round of the previous descent: every swap scored by a full error, in parallel; the best
// applied when it improves. Returns false at a local optimum.
bool full_round(const ExpertRerouting& scorer, std::vector<int>& kept, double& current) {
  const auto moves = swaps_of(kept, scorer.num_experts(), scorer.num_groups());
  std::vector<double> err(moves.size());
  detail::parallel_for(static_cast<std::int64_t>(moves.size()), [&](std::int64_t m) {
    std::vector<int> next = kept;
    const auto& [out, in] = moves[static_cast<std::size_t>(m)];
    *std::find(next.begin(), next.end(), out) = in;
    err[static_cast<std::size_t>(m)] = scorer.error(next);
  });
  const auto best = std::min_element(err.begin(), err.end());
  if (best == err.end() || !(*best < current)) return false;
  const auto& [out, in] = moves[static_cast<std::size_t>(best - err.begin())];
  *std::find(kept.begin(), kept.end(), out) = in;
  std::sort(kept.begin(), kept.end());
  current = *best;
  return true;
}

// One round of the new descent (as improve_by_swaps). Returns false at a local optimum.
bool incremental_round(const ExpertRerouting& scorer, ExpertSwapState& state) {
  const auto moves = swaps_of(state.kept(), scorer.num_experts(), scorer.num_groups());
  std::vector<double> delta(moves.size());
  detail::parallel_for(static_cast<std::int64_t>(moves.size()), [&](std::int64_t m) {
    const auto& [out, in] = moves[static_cast<std::size_t>(m)];
    delta[static_cast<std::size_t>(m)] = state.swap_delta(out, in);
  });
  const auto best = std::min_element(delta.begin(), delta.end());
  if (best == delta.end() || !(*best < 0.0)) return false;
  const auto [out, in] = moves[static_cast<std::size_t>(best - delta.begin())];
  state.apply_swap(out, in);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::Index samples = 1024, hidden = 512, width = 64;
  int old_rounds = 2, max_rounds = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (a == "--samples")
      samples = v;
    else if (a == "--hidden")
      hidden = v;
    else if (a == "--width")
      width = v;
    else if (a == "--old-rounds")
      old_rounds = static_cast<int>(v);
    else if (a == "--max-rounds")
      max_rounds = static_cast<int>(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const int n = 256, groups = 8, keep = 128;
  std::mt19937 rng(22);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](Eigen::Index rows, Eigen::Index cols, float scale) {
    return Eigen::MatrixXf(
        Eigen::MatrixXf::NullaryExpr(rows, cols, [&] { return scale * normal(rng); }));
  };
  const float s = 1.0f / std::sqrt(static_cast<float>(hidden));
  MoeBlockWeights block;
  block.router = random(n, hidden, s);
  block.top_k = 8;
  block.norm_topk_prob = true;
  block.sigmoid_scores = true;
  block.num_groups = groups;
  block.topk_groups = 4;
  block.score_bias = random(n, 1, 0.1f);
  block.routed_scaling_factor = 2.5f;
  std::vector<ExpertWeights> experts(static_cast<std::size_t>(n));
  for (ExpertWeights& e : experts) {
    e.gate = random(width, hidden, s);
    e.up = random(width, hidden, s);
    e.down = random(hidden, width, 1.0f / std::sqrt(static_cast<float>(width)));
  }
  block.hold_experts(std::move(experts));
  const Eigen::MatrixXf inputs = random(hidden, samples, 1.0f);
  auto t0 = std::chrono::steady_clock::now();
  const ExpertRerouting scorer(block, inputs);
  std::printf(
      "Shape            : %d experts, %d groups (top 4), top-8, keep %d, %ld samples, "
      "hidden %ld, width %ld, %d threads\n",
      n, groups, keep, static_cast<long>(samples), static_cast<long>(hidden),
      static_cast<long>(width), detail::max_threads());
  std::printf("Scorer build s   : %.3f\n", seconds_since(t0));
  // The start: the first keep / groups experts of every group.
  std::vector<int> start;
  for (int g = 0; g < groups; ++g)
    for (int j = 0; j < keep / groups; ++j) start.push_back(g * (n / groups) + j);
  std::printf("Swaps per round  : %zu\n", swaps_of(start, n, groups).size());

  std::vector<int> old_kept = start;
  double current = scorer.error(old_kept);
  t0 = std::chrono::steady_clock::now();
  int done_old = 0;
  while (done_old < old_rounds && full_round(scorer, old_kept, current)) ++done_old;
  const double old_per_round = seconds_since(t0) / std::max(done_old, 1);

  t0 = std::chrono::steady_clock::now();
  ExpertSwapState state(scorer, start);
  const double state_s = seconds_since(t0);
  double affected = 0.0;
  for (const auto& [out, in] : swaps_of(start, n, groups))
    affected += static_cast<double>(state.affected_count(out, in));
  affected /= static_cast<double>(swaps_of(start, n, groups).size()) * static_cast<double>(samples);
  t0 = std::chrono::steady_clock::now();
  int done_new = 0;
  while (done_new < old_rounds && incremental_round(scorer, state)) ++done_new;
  const double new_per_round = seconds_since(t0) / std::max(done_new, 1);
  std::printf("Same sets        : %s after %d rounds\n", state.kept() == old_kept ? "yes" : "NO",
              done_new);
  std::printf("Affected samples : %.4f of all, mean over the first round's swaps\n", affected);
  std::printf("Old s per round  : %.3f\n", old_per_round);
  std::printf("New s per round  : %.3f (state built in %.3f s)\n", new_per_round, state_s);
  std::printf("Speedup          : %.1f\n", old_per_round / new_per_round);

  t0 = std::chrono::steady_clock::now();
  const std::vector<int> final_kept = improve_by_swaps(scorer, start, max_rounds);
  const double descent_s = seconds_since(t0);
  std::printf("Descent s        : %.3f (improve_by_swaps from the start, at most --max-rounds)\n",
              descent_s);
  std::printf("Error start/end  : %.6g / %.6g\n", scorer.error(start), scorer.error(final_kept));
  return 0;
}
