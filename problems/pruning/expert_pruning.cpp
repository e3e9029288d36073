// Expert pruning of MoE layers (include/qprune/expert_pruning.hpp): keep counts, the exact
// re-routed error on sampled inputs, its incremental form for swap descent, baselines and
// exhaustive search.
#include "qprune/expert_pruning.hpp"

#include <algorithm>
#include <chrono>
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

ExpertRerouting::ExpertRerouting(const MoeBlockWeights& block, const Eigen::MatrixXf& inputs,
                                 std::size_t chunk_bytes)
    : experts_(block.num_experts), top_k_(block.top_k), norm_topk_prob_(block.norm_topk_prob) {
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
  probs_ = forward::moe_routing(block, inputs).probs;
  const Index samples = inputs.cols();
  const Index hidden = inputs.rows();
  const auto n = static_cast<std::size_t>(experts_);
  const std::size_t tri = n * (n + 1) / 2;
  grams_.assign(tri * static_cast<std::size_t>(samples), 0.0);
  // All experts' outputs of a chunk of samples, sample-major (column c * experts + e), so that
  // a sample's outputs are one contiguous block for its Gram.
  const std::size_t sample_bytes = n * static_cast<std::size_t>(hidden) * sizeof(float);
  const Index chunk = std::max<Index>(
      1, std::min<Index>(samples,
                         static_cast<Index>(chunk_bytes / std::max<std::size_t>(sample_bytes, 1))));
  Eigen::MatrixXf outputs(hidden, chunk * experts_);
  for (Index first = 0; first < samples; first += chunk) {
    const Index count = std::min(chunk, samples - first);
    ++chunks_;
    // One expert's weights at a time (per thread), read and dropped.
    detail::parallel_for(experts_, [&](std::int64_t e) {
      throw_if_interrupted("computing the experts' outputs");
      const Eigen::MatrixXf y = forward::expert_output(block.expert(static_cast<int>(e)),
                                                       inputs.middleCols(first, count));
      for (Index c = 0; c < count; ++c) outputs.col(c * experts_ + e) = y.col(c);
    });
    detail::parallel_for(count, [&](std::int64_t c) {
      if (c % 64 == 0) throw_if_interrupted("computing the experts' Grams");
      const Eigen::MatrixXd v = outputs.middleCols(c * experts_, experts_).cast<double>();
      Eigen::MatrixXd g = Eigen::MatrixXd::Zero(experts_, experts_);
      g.selfadjointView<Eigen::Upper>().rankUpdate(v.transpose());
      double* out = grams_.data() + static_cast<std::size_t>(first + c) * tri;
      for (Index i = 0; i < experts_; ++i)
        for (Index j = i; j < experts_; ++j) *out++ = g(i, j);
    });
  }
  // The full block's choice, as routed_choice makes it (error(all experts) is exactly 0).
  ref_ids_.resize(top_k_, samples);
  ref_weights_.resize(top_k_, samples);
  const std::vector<char> all(n, 1);
  for (Index t = 0; t < samples; ++t) {
    (void)routed_choice(all, t, ref_ids_.col(t).data(), ref_weights_.col(t).data());
    std::pair<int, double> a[kMaxTopK];
    for (int j = 0; j < top_k_; ++j) a[j] = {ref_ids_(j, t), ref_weights_(j, t)};
    routed_energy_ += quadratic(t, a, top_k_);
  }
}

int ExpertRerouting::routed_choice(const std::vector<char>& keep, Index t, int* ids,
                                   float* weights) const {
  const int k = top_k_;
  if (routing_.sigmoid_scores) {
    // DeepSeek-V3: the router's own grouped choice over the kept experts (its final weights).
    forward::grouped_topk(routing_, probs_.col(t).data(), &keep, ids, weights);
    return k;
  }
  // The kept experts' probabilities renormalised (a softmax over the kept router rows), their
  // top k (equal: the lower id, as moe_routing), renormalised again when norm_topk_prob.
  int count = 0;
  float kept_mass = 0.0f;
  for (int e = 0; e < experts_; ++e) {
    if (!keep[static_cast<std::size_t>(e)]) continue;
    const float p = probs_(e, t);
    kept_mass += p;
    // Insert into the running top k (kept sorted by decreasing probability, then id).
    int at = count < k ? count : k;
    while (at > 0 && probs_(ids[at - 1], t) < p) --at;
    if (at >= k) continue;
    for (int j = std::min(count, k - 1); j > at; --j) ids[j] = ids[j - 1];
    ids[at] = e;
    count = std::min(count + 1, k);
  }
  // Renormalised over the top k, the kept mass cancels: left out, so that a sample's output
  // depends on its top k alone and a swap that does not change them leaves it bit for bit.
  float sum = 0.0f;
  for (int j = 0; j < count; ++j) sum += probs_(ids[j], t);
  for (int j = 0; j < count; ++j) {
    const float p = probs_(ids[j], t);
    weights[j] = norm_topk_prob_ ? p / sum : p / kept_mass;
  }
  return count;
}

double ExpertRerouting::quadratic(Index t, const std::pair<int, double>* a, int n) const {
  const auto e = static_cast<std::size_t>(experts_);
  const double* g = grams_.data() + static_cast<std::size_t>(t) * (e * (e + 1) / 2);
  // Row i of the packed upper triangle starts at i e - i (i - 1) / 2.
  const auto at = [&](std::size_t i, std::size_t j) {
    if (i > j) std::swap(i, j);
    return g[i * e - i * (i - 1) / 2 + (j - i)];
  };
  double sum = 0.0;
  for (int p = 0; p < n; ++p) {
    const auto i = static_cast<std::size_t>(a[p].first);
    sum += a[p].second * a[p].second * at(i, i);
    for (int q = p + 1; q < n; ++q)
      sum += 2.0 * a[p].second * a[q].second * at(i, static_cast<std::size_t>(a[q].first));
  }
  return std::max(sum, 0.0);  // G_t is a Gram: a negative sum is rounding
}

double ExpertRerouting::error(const std::vector<int>& kept) const {
  if (kept.empty()) throw InvalidArgument("ExpertRerouting::error: no expert kept");
  std::vector<char> keep(static_cast<std::size_t>(experts_), 0);
  for (const int e : kept) {
    if (e < 0 || e >= num_experts() || keep[static_cast<std::size_t>(e)])
      throw InvalidArgument("ExpertRerouting::error: expert " + std::to_string(e) +
                            " out of range or repeated");
    keep[static_cast<std::size_t>(e)] = 1;
  }
  double total = 0.0;
  for (Index t = 0; t < probs_.cols(); ++t) total += sample_error(keep, t);
  return total;
}

double ExpertRerouting::sample_error(const std::vector<char>& keep, Index t) const {
  // a = the full block's weights minus the kept set's, over the experts either chooses.
  int ids[kMaxTopK];
  float weights[kMaxTopK];
  const int count = routed_choice(keep, t, ids, weights);
  std::pair<int, double> a[2 * kMaxTopK];
  int n = 0;
  for (int j = 0; j < top_k_; ++j) a[n++] = {ref_ids_(j, t), ref_weights_(j, t)};
  for (int j = 0; j < count; ++j) {
    int p = 0;
    while (p < top_k_ && a[p].first != ids[j]) ++p;
    if (p < top_k_)
      a[p].second -= weights[j];
    else
      a[n++] = {ids[j], -static_cast<double>(weights[j])};
  }
  return quadratic(t, a, n);
}

ExpertSwapState::ExpertSwapState(const ExpertRerouting& scorer, std::vector<int> kept)
    : scorer_(&scorer), kept_(std::move(kept)) {
  const int n = scorer.num_experts();
  std::sort(kept_.begin(), kept_.end());
  keep_.assign(static_cast<std::size_t>(n), 0);
  for (std::size_t i = 0; i < kept_.size(); ++i) {
    const int e = kept_[i];
    if (e < 0 || e >= n || (i > 0 && kept_[i - 1] == e))
      throw InvalidArgument("ExpertSwapState: expert " + std::to_string(e) +
                            " out of range or repeated");
    keep_[static_cast<std::size_t>(e)] = 1;
  }
  if (static_cast<int>(kept_.size()) < scorer.top_k_)
    throw InvalidArgument(
        "ExpertSwapState: " + std::to_string(kept_.size()) +
        " experts kept, fewer than num_experts_per_tok = " + std::to_string(scorer.top_k_));
  const MoeBlockWeights& r = scorer.routing_;
  groups_ = r.num_groups;
  // Without norm_topk_prob every weight is divided by the kept mass, which every swap changes.
  all_affected_ = !r.sigmoid_scores && !scorer.norm_topk_prob_;
  if (r.sigmoid_scores && groups_ > 1) {
    // The router groups the kept experts by position: the routing groups only when balanced.
    const int per_group = n / groups_;
    std::vector<int> count(static_cast<std::size_t>(groups_), 0);
    for (const int e : kept_) ++count[static_cast<std::size_t>(e / per_group)];
    const bool balanced = n % groups_ == 0 && std::all_of(count.begin(), count.end(),
                                                          [&](int c) { return c == count[0]; });
    if (!balanced) all_affected_ = true;
    grouped_ = !all_affected_ && r.topk_groups < groups_;
  }
  const Index samples = scorer.num_samples();
  err_.assign(static_cast<std::size_t>(samples), 0.0);
  detail::parallel_for(samples, [&](std::int64_t t) {
    if (t % 64 == 0) throw_if_interrupted("scoring the kept experts");
    err_[static_cast<std::size_t>(t)] = scorer.sample_error(keep_, t);
  });
  error_ = 0.0;
  for (const double v : err_) error_ += v;
  if (!all_affected_) cache_routing();
}

float ExpertSwapState::choice_score(int e, Index t) const {
  // As forward::grouped_topk computes the biased score c = s + b (the same float operations).
  const MoeBlockWeights& r = scorer_->routing_;
  const float s = scorer_->probs_(e, t);
  if (!r.sigmoid_scores) return s;
  return s + (r.score_bias.size() != 0 ? r.score_bias[e] : 0.0f);
}

void ExpertSwapState::cache_routing() {
  const int n = scorer_->num_experts();
  const Index samples = scorer_->num_samples();
  const int k = scorer_->top_k_;
  const int g_count = grouped_ ? groups_ : 0;
  const int per_group = n / groups_;
  chosen_.assign(static_cast<std::size_t>(samples) * static_cast<std::size_t>(n), 0);
  theta_.assign(static_cast<std::size_t>(samples), 0.0f);
  const auto cells = static_cast<std::size_t>(samples) * static_cast<std::size_t>(g_count);
  top3_id_.assign(cells * 3, -1);
  top3_score_.assign(cells * 3, -std::numeric_limits<float>::infinity());
  group_score_.assign(cells, 0.0f);
  group_chosen_.assign(cells, 0);
  best_unchosen_.assign(static_cast<std::size_t>(samples), 0.0f);
  worst_chosen_.assign(static_cast<std::size_t>(samples), 0.0f);
  const int per_kept = static_cast<int>(kept_.size()) / groups_;
  detail::parallel_for(samples, [&](std::int64_t t) {
    const auto ts = static_cast<std::size_t>(t);
    char* chosen = chosen_.data() + ts * static_cast<std::size_t>(n);
    if (scorer_->routing_.sigmoid_scores) {
      int ids[ExpertRerouting::kMaxTopK];
      float weights[ExpertRerouting::kMaxTopK];
      forward::grouped_topk(scorer_->routing_, scorer_->probs_.col(t).data(), &keep_, ids, weights);
      for (int j = 0; j < k; ++j) chosen[ids[j]] = 1;
      theta_[ts] = choice_score(ids[k - 1], t);  // ids by decreasing biased score
    } else {
      // The top k of the kept probabilities: only the k-th's value matters here.
      std::vector<float> p;
      p.reserve(kept_.size());
      for (const int e : kept_) p.push_back(scorer_->probs_(e, t));
      std::vector<int> order(kept_.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return p[static_cast<std::size_t>(a)] > p[static_cast<std::size_t>(b)];
      });
      for (int j = 0; j < k; ++j)
        chosen[kept_[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])]] = 1;
      theta_[ts] = p[static_cast<std::size_t>(order[static_cast<std::size_t>(k - 1)])];
    }
    if (!grouped_) return;
    // Each group's three best kept experts and its score (forward::grouped_topk's: the sum of
    // its two largest biased scores, the largest alone with one expert per group).
    const std::size_t base = ts * static_cast<std::size_t>(groups_);
    for (int g = 0; g < groups_; ++g) {
      int* id = top3_id_.data() + (base + static_cast<std::size_t>(g)) * 3;
      float* sc = top3_score_.data() + (base + static_cast<std::size_t>(g)) * 3;
      for (int e = g * per_group; e < (g + 1) * per_group; ++e) {
        if (!keep_[static_cast<std::size_t>(e)]) continue;
        const float v = choice_score(e, t);
        int at = 3;
        while (at > 0 && (id[at - 1] < 0 || sc[at - 1] < v)) --at;
        if (at >= 3) continue;
        for (int j = 2; j > at; --j) {
          id[j] = id[j - 1];
          sc[j] = sc[j - 1];
        }
        id[at] = e;
        sc[at] = v;
      }
      group_score_[base + static_cast<std::size_t>(g)] = per_kept > 1 ? sc[0] + sc[1] : sc[0];
    }
    std::vector<int> order(static_cast<std::size_t>(groups_));
    std::iota(order.begin(), order.end(), 0);
    const float* gs = group_score_.data() + base;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return gs[a] > gs[b]; });
    float worst = std::numeric_limits<float>::infinity();
    float best = -std::numeric_limits<float>::infinity();
    for (int j = 0; j < groups_; ++j) {
      const int g = order[static_cast<std::size_t>(j)];
      if (j < scorer_->routing_.topk_groups) {
        group_chosen_[base + static_cast<std::size_t>(g)] = 1;
        worst = std::min(worst, gs[g]);
      } else {
        best = std::max(best, gs[g]);
      }
    }
    worst_chosen_[ts] = worst;
    best_unchosen_[ts] = best;
  });
}

bool ExpertSwapState::affected(int out, int in, Index t) const {
  if (all_affected_) return true;
  const auto ts = static_cast<std::size_t>(t);
  const int n = scorer_->num_experts();
  if (chosen_[ts * static_cast<std::size_t>(n) + static_cast<std::size_t>(out)]) return true;
  const float s_in = choice_score(in, t);
  if (grouped_) {
    // The swapped group's new score, from its three best and `in`: if it stays on its side of
    // the other groups' (ties counted as crossing), the same groups are chosen.
    const std::size_t cell =
        ts * static_cast<std::size_t>(groups_) + static_cast<std::size_t>(out / (n / groups_));
    float first = -std::numeric_limits<float>::infinity();
    float second = first;
    auto add = [&](float v) {
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) {
        second = v;
      }
    };
    for (std::size_t j = 0; j < 3; ++j)
      if (top3_id_[cell * 3 + j] >= 0 && top3_id_[cell * 3 + j] != out)
        add(top3_score_[cell * 3 + j]);
    add(s_in);
    const float score = static_cast<int>(kept_.size()) / groups_ > 1 ? first + second : first;
    const bool was_chosen = group_chosen_[cell] != 0;
    if (score != group_score_[cell] &&
        (was_chosen ? score <= best_unchosen_[ts] : score >= worst_chosen_[ts]))
      return true;
    if (!was_chosen) return false;  // `in` is no candidate
  }
  // Same candidates but `out` (not chosen) and `in`: `in` enters only if it reaches the k-th.
  return s_in >= theta_[ts];
}

void ExpertSwapState::check_swap(int out, int in) const {
  const int n = scorer_->num_experts();
  if (out < 0 || out >= n || in < 0 || in >= n || !keep_[static_cast<std::size_t>(out)] ||
      keep_[static_cast<std::size_t>(in)])
    throw InvalidArgument("ExpertSwapState: swap " + std::to_string(out) + " for " +
                          std::to_string(in) + " needs the first kept and the second removed");
}

double ExpertSwapState::swap_delta(int out, int in) const {
  check_swap(out, in);
  std::vector<char> next = keep_;
  next[static_cast<std::size_t>(out)] = 0;
  next[static_cast<std::size_t>(in)] = 1;
  double delta = 0.0;
  for (Index t = 0; t < scorer_->num_samples(); ++t)
    if (affected(out, in, t))
      delta += scorer_->sample_error(next, t) - err_[static_cast<std::size_t>(t)];
  return delta;
}

Index ExpertSwapState::affected_count(int out, int in) const {
  check_swap(out, in);
  Index count = 0;
  for (Index t = 0; t < scorer_->num_samples(); ++t) count += affected(out, in, t) ? 1 : 0;
  return count;
}

void ExpertSwapState::apply_swap(int out, int in) {
  check_swap(out, in);
  std::vector<Index> changed;
  for (Index t = 0; t < scorer_->num_samples(); ++t)
    if (affected(out, in, t)) changed.push_back(t);
  keep_[static_cast<std::size_t>(out)] = 0;
  keep_[static_cast<std::size_t>(in)] = 1;
  *std::find(kept_.begin(), kept_.end(), out) = in;
  std::sort(kept_.begin(), kept_.end());
  detail::parallel_for(static_cast<std::int64_t>(changed.size()), [&](std::int64_t i) {
    const Index t = changed[static_cast<std::size_t>(i)];
    err_[static_cast<std::size_t>(t)] = scorer_->sample_error(keep_, t);
  });
  error_ = 0.0;
  for (const double v : err_) error_ += v;
  if (!all_affected_) cache_routing();
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
                                  int max_rounds, double time_limit_s) {
  const auto start = std::chrono::steady_clock::now();
  const int n = scorer.num_experts();
  ExpertSwapState state(scorer, std::move(kept));
  for (int round = 0; round < max_rounds; ++round) {
    throw_if_interrupted("improving the kept experts by swaps");
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >=
        time_limit_s)
      break;
    const std::vector<int>& now = state.kept();
    std::vector<char> in(static_cast<std::size_t>(n), 0);
    for (const int e : now) in[static_cast<std::size_t>(e)] = 1;
    // Every (kept, removed) swap, scored in parallel on the samples it can change, the best
    // taken. Within a routing group only: grouped routing needs every group to keep as many.
    const int per_group = n / scorer.num_groups();
    std::vector<std::pair<int, int>> moves;
    for (const int out : now)
      for (int e = 0; e < n; ++e)
        if (!in[static_cast<std::size_t>(e)] && e / per_group == out / per_group)
          moves.emplace_back(out, e);
    std::vector<double> delta(moves.size());
    detail::parallel_for(static_cast<std::int64_t>(moves.size()), [&](std::int64_t m) {
      if (m % 64 == 0) throw_if_interrupted("improving the kept experts by swaps");
      const auto& [out, e] = moves[static_cast<std::size_t>(m)];
      delta[static_cast<std::size_t>(m)] = state.swap_delta(out, e);
    });
    const auto best = std::min_element(delta.begin(), delta.end());
    if (best == delta.end() || !(*best < 0.0)) break;
    const auto [out, e] = moves[static_cast<std::size_t>(best - delta.begin())];
    state.apply_swap(out, e);
  }
  return state.kept();
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
