// Expert pruning of MoE layers (include/qprune/expert_pruning.hpp): keep counts, the exact
// re-routed error on sampled inputs, baselines and exhaustive search.
#include "qprune/expert_pruning.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/parallel_for.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"

namespace qprune {

using Eigen::Index;

int expert_keep_count(const ModelConfig& config, double sparsity) {
  const std::int64_t e = config.moe.num_experts;
  if (e == 0) throw InvalidArgument("the model has no experts (--unit experts is for MoE models)");
  const int keep = keep_count(static_cast<int>(e), sparsity);
  if (keep < config.moe.num_experts_per_tok)
    throw InvalidArgument("sparsity " + std::to_string(sparsity) + " keeps " +
                          std::to_string(keep) + " of " + std::to_string(e) +
                          " experts, fewer than num_experts_per_tok = " +
                          std::to_string(config.moe.num_experts_per_tok) +
                          " that the router chooses per token (lower the sparsity, or lower "
                          "num_experts_per_tok in config.json first)");
  const std::int64_t groups = config.moe.n_group;
  if (groups > 1 && keep % groups != 0)
    throw InvalidArgument("sparsity " + std::to_string(sparsity) + " keeps " +
                          std::to_string(keep) + " of " + std::to_string(e) +
                          " experts, not a multiple of n_group = " + std::to_string(groups) +
                          " (grouped routing needs every group to keep the same number)");
  if (groups > 1 && config.moe.topk_group * (keep / groups) < config.moe.num_experts_per_tok)
    throw InvalidArgument(
        "sparsity " + std::to_string(sparsity) + " keeps " + std::to_string(keep / groups) +
        " experts per group: topk_group = " + std::to_string(config.moe.topk_group) +
        " groups hold " + std::to_string(config.moe.topk_group * (keep / groups)) +
        ", fewer than num_experts_per_tok = " + std::to_string(config.moe.num_experts_per_tok));
  return keep;
}

ExpertRerouting::ExpertRerouting(const MoeBlockWeights& block, const Eigen::MatrixXf& inputs)
    : top_k_(block.top_k), norm_topk_prob_(block.norm_topk_prob) {
  routing_.router = block.router;
  routing_.top_k = block.top_k;
  routing_.norm_topk_prob = block.norm_topk_prob;
  routing_.sigmoid_scores = block.sigmoid_scores;
  routing_.score_bias = block.score_bias;
  routing_.num_groups = block.num_groups;
  routing_.topk_groups = block.topk_groups;
  routing_.routed_scaling_factor = block.routed_scaling_factor;
  if (top_k_ < 1 || top_k_ > kMaxTopK || top_k_ > block.num_experts)
    throw InvalidArgument("ExpertRerouting: num_experts_per_tok " + std::to_string(top_k_) +
                          " must be in [1, min(" + std::to_string(kMaxTopK) +
                          ", number of experts)]");
  const MoeRouting r = forward::moe_routing(block, inputs);
  probs_ = r.probs;
  // One expert's weights at a time (per thread), read and dropped: only the outputs stay.
  outputs_.resize(static_cast<std::size_t>(block.num_experts));
  detail::parallel_for(block.num_experts, [&](std::int64_t e) {
    throw_if_interrupted("computing the experts' outputs");
    outputs_[static_cast<std::size_t>(e)] =
        forward::expert_output(block.expert(static_cast<int>(e)), inputs);
  });
  std::vector<char> all(static_cast<std::size_t>(block.num_experts), 1);
  reference_.resize(inputs.rows(), inputs.cols());
  for (Index t = 0; t < inputs.cols(); ++t) reference_.col(t) = routed_output(all, t);
  routed_energy_ = reference_.cast<double>().squaredNorm();
}

Eigen::VectorXf ExpertRerouting::routed_output(const std::vector<char>& keep, Index t) const {
  // The kept experts' probabilities renormalised (a softmax over the kept router rows), their
  // top k (equal: the lower id, as moe_routing), renormalised again when norm_topk_prob.
  const Index experts = probs_.rows();
  int chosen[kMaxTopK];
  float weight[kMaxTopK];
  const int k = top_k_;
  std::pair<int, float> order[kMaxTopK];
  if (routing_.sigmoid_scores) {
    // DeepSeek-V3: the router's own grouped choice over the kept experts (its final weights).
    forward::grouped_topk(routing_, probs_.col(t).data(), &keep, chosen, weight);
    for (int j = 0; j < k; ++j) order[j] = {chosen[j], weight[j]};
    return sum_in_id_order(order, k, t);
  }
  int count = 0;
  float kept_mass = 0.0f;
  for (Index e = 0; e < experts; ++e) {
    if (!keep[static_cast<std::size_t>(e)]) continue;
    const float p = probs_(e, t);
    kept_mass += p;
    // Insert into the running top k (kept sorted by decreasing probability, then id).
    int at = count < k ? count : k;
    while (at > 0 && probs_(chosen[at - 1], t) < p) --at;
    if (at >= k) continue;
    for (int j = std::min(count, k - 1); j > at; --j) chosen[j] = chosen[j - 1];
    chosen[at] = static_cast<int>(e);
    count = std::min(count + 1, k);
  }
  float sum = 0.0f;
  for (int j = 0; j < count; ++j) {
    weight[j] = probs_(chosen[j], t) / kept_mass;
    sum += weight[j];
  }
  for (int j = 0; j < count; ++j)
    order[j] = {chosen[j], norm_topk_prob_ ? weight[j] / sum : weight[j]};
  return sum_in_id_order(order, count, t);
}

Eigen::VectorXf ExpertRerouting::sum_in_id_order(std::pair<int, float>* order, int count,
                                                 Index t) const {
  // In increasing expert id, as the forward pass adds them.
  std::sort(order, order + count);
  Eigen::VectorXf y = Eigen::VectorXf::Zero(outputs_.front().rows());
  for (int j = 0; j < count; ++j)
    y += outputs_[static_cast<std::size_t>(order[j].first)].col(t) * order[j].second;
  return y;
}

double ExpertRerouting::error(const std::vector<int>& kept) const {
  if (kept.empty()) throw InvalidArgument("ExpertRerouting::error: no expert kept");
  std::vector<char> keep(outputs_.size(), 0);
  for (const int e : kept) {
    if (e < 0 || e >= num_experts() || keep[static_cast<std::size_t>(e)])
      throw InvalidArgument("ExpertRerouting::error: expert " + std::to_string(e) +
                            " out of range or repeated");
    keep[static_cast<std::size_t>(e)] = 1;
  }
  double total = 0.0;
  for (Index t = 0; t < probs_.cols(); ++t)
    total += (routed_output(keep, t) - reference_.col(t)).cast<double>().squaredNorm();
  return total;
}

std::vector<int> top_experts(const Eigen::VectorXd& scores, int keep) {
  std::vector<int> ids(static_cast<std::size_t>(scores.size()));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  ids.resize(static_cast<std::size_t>(std::clamp<Index>(keep, 0, scores.size())));
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<int> improve_by_swaps(const ExpertRerouting& scorer, std::vector<int> kept,
                                  int max_rounds) {
  const int n = scorer.num_experts();
  std::sort(kept.begin(), kept.end());
  double current = scorer.error(kept);
  for (int round = 0; round < max_rounds; ++round) {
    throw_if_interrupted("improving the kept experts by swaps");
    std::vector<char> in(static_cast<std::size_t>(n), 0);
    for (const int e : kept) in[static_cast<std::size_t>(e)] = 1;
    // Every (kept slot, removed expert) swap, evaluated in parallel, the best taken.
    // Within a routing group only: grouped routing needs every group to keep as many.
    const int per_group = n / scorer.num_groups();
    std::vector<std::pair<int, int>> moves;
    for (std::size_t slot = 0; slot < kept.size(); ++slot)
      for (int e = 0; e < n; ++e)
        if (!in[static_cast<std::size_t>(e)] && e / per_group == kept[slot] / per_group)
          moves.emplace_back(static_cast<int>(slot), e);
    std::vector<double> err(moves.size());
    detail::parallel_for(static_cast<std::int64_t>(moves.size()), [&](std::int64_t m) {
      std::vector<int> next = kept;
      const auto& [slot, e] = moves[static_cast<std::size_t>(m)];
      next[static_cast<std::size_t>(slot)] = e;
      err[static_cast<std::size_t>(m)] = scorer.error(next);
    });
    const auto best = std::min_element(err.begin(), err.end());
    if (best == err.end() || !(*best < current)) break;
    const auto& [slot, e] = moves[static_cast<std::size_t>(best - err.begin())];
    kept[static_cast<std::size_t>(slot)] = e;
    current = *best;
    std::sort(kept.begin(), kept.end());
  }
  return kept;
}

namespace {

std::int64_t binomial(int n, int keep) {
  if (keep < 0 || keep > n) return 0;
  keep = std::min(keep, n - keep);
  double c = 1.0;  // exact below 2^53, far above any count that is enumerated
  for (int i = 1; i <= keep; ++i) c = c * (n - keep + i) / i;
  return c >= 9e18 ? std::numeric_limits<std::int64_t>::max() : std::llround(c);
}

// Every subset of `keep` among first, first + 1, ..., first + n - 1, in lexicographic order.
std::vector<std::vector<int>> all_subsets(int first, int n, int keep) {
  std::vector<std::vector<int>> all;
  std::vector<int> s(static_cast<std::size_t>(keep));
  std::iota(s.begin(), s.end(), 0);
  while (true) {
    all.push_back(s);
    for (int& e : all.back()) e += first;
    int i = keep - 1;
    while (i >= 0 && s[static_cast<std::size_t>(i)] == n - keep + i) --i;
    if (i < 0) break;
    ++s[static_cast<std::size_t>(i)];
    for (int j = i + 1; j < keep; ++j)
      s[static_cast<std::size_t>(j)] = s[static_cast<std::size_t>(j - 1)] + 1;
  }
  return all;
}

}  // namespace

std::int64_t subset_count(int n, int keep, int groups) {
  if (groups < 1 || n % groups != 0 || keep % groups != 0) return 0;
  const std::int64_t per = binomial(n / groups, keep / groups);
  std::int64_t count = 1;
  for (int g = 0; g < groups; ++g) {
    if (per != 0 && count > std::numeric_limits<std::int64_t>::max() / per)
      return std::numeric_limits<std::int64_t>::max();
    count *= per;
  }
  return count;
}

std::vector<int> best_rerouted_subset(const ExpertRerouting& scorer, int keep,
                                      std::int64_t max_subsets) {
  const int n = scorer.num_experts();
  const int groups = scorer.num_groups();
  const std::int64_t count = subset_count(n, keep, groups);
  if (count == 0 || keep < 1)
    throw InvalidArgument("best_rerouted_subset: keep " + std::to_string(keep) +
                          " out of range, or not a multiple of the " + std::to_string(groups) +
                          " routing groups");
  if (count > max_subsets)
    throw InvalidArgument("exhaustive search over " + std::to_string(count) + " subsets of " +
                          std::to_string(keep) + " of " + std::to_string(n) +
                          " experts is beyond the limit of " + std::to_string(max_subsets));
  // Each group's subsets, then their product in lexicographic order (group 0 most significant).
  const int per = n / groups;
  const std::vector<std::vector<int>> part = all_subsets(0, per, keep / groups);
  std::vector<std::vector<int>> all;
  all.reserve(static_cast<std::size_t>(count));
  std::vector<std::size_t> digit(static_cast<std::size_t>(groups), 0);
  while (true) {
    std::vector<int> s;
    s.reserve(static_cast<std::size_t>(keep));
    for (int g = 0; g < groups; ++g)
      for (const int e : part[digit[static_cast<std::size_t>(g)]]) s.push_back(g * per + e);
    all.push_back(std::move(s));
    int g = groups - 1;
    while (g >= 0 && ++digit[static_cast<std::size_t>(g)] == part.size())
      digit[static_cast<std::size_t>(g--)] = 0;
    if (g < 0) break;
  }
  std::vector<double> err(all.size());
  detail::parallel_for(static_cast<std::int64_t>(all.size()), [&](std::int64_t i) {
    if (i % 64 == 0) throw_if_interrupted("searching every subset of experts");
    err[static_cast<std::size_t>(i)] = scorer.error(all[static_cast<std::size_t>(i)]);
  });
  const auto best = std::min_element(err.begin(), err.end()) - err.begin();
  return all[static_cast<std::size_t>(best)];
}

}  // namespace qprune
