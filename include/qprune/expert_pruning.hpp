// Expert pruning of a mixture-of-experts layer (docs/pruning_math.md section 12): which routed
// experts to keep. Expert e's contribution to the block output at token t is c_e(t) = w_e(t)
// E_e(x_t) (zero when the router did not choose e). Removing a set S without re-routing leaves the
// error sum_t ||sum_{e in S} c_e(t)||^2 = (1 - x)^T G (1 - x), G_ef = sum_t <c_e(t), c_f(t)>: a
// QUBO over x_e = 1 (keep), the same form as the MLP problem. The pruned model does re-route: the
// router loses the removed experts' rows and each token takes its top-k among the kept ones, which
// is not quadratic in x. ExpertRerouting measures that exact error on sampled block inputs, for
// scoring a solver's candidates, the baselines and an exhaustive search where the subsets can be
// counted. DeepSeek-V3's grouped routing splits the experts into n_group groups of equal size, so
// every group keeps keep / n_group experts: one cardinality constraint per routing group, which
// the baselines, the swaps and the exhaustive search respect too.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/expert_pruning.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/model_config.hpp"
#include "qprune/pruning.hpp"
#include "qprune/transformer.hpp"

namespace qprune {

/// Experts a MoE layer keeps at a sparsity: round((1 - sparsity) E). Throws InvalidArgument when
/// that is fewer than num_experts_per_tok (the router could not choose k experts) or the model has
/// no experts; with grouped routing (n_group > 1) also when it is not a multiple of n_group, or
/// when the topk_group groups a token may use would hold fewer than num_experts_per_tok.
[[nodiscard]] int expert_keep_count(const ModelConfig& config, double sparsity);

/// The expert QUBO of one MoE layer: E(x) = (1 - x)^T G (1 - x) with "keep `keep`" (labels
/// "L.experts.e", name "layer.L.experts"). unit_cost_e = G_ee, the error of removing e alone.
/// `groups` > 1 (DeepSeek-V3's n_group): one constraint "keep keep / groups" per routing group of
/// consecutive experts (named "layer.L.experts.group.g"); keep must be a multiple of groups.
[[nodiscard]] LayerProblem build_expert_problem(const ExpertStats& stats, int layer, int keep,
                                                int groups = 1);

/// The exact error of a kept set with re-routing, on the sampled block inputs of ExpertStats:
/// sum_t ||y(t) - y_K(t)||^2 with y the routed output of the full block and y_K that of the block
/// whose router lost the other experts' rows (softmax over K, its top-k, renormalised when
/// norm_topk_prob; DeepSeek-V3: forward::grouped_topk over K, with K's own groups and bias
/// entries). The shared expert is the same in both and drops out. y(t) - y_K(t) = sum_e a_e
/// E_e(x_t) with a_e the difference of expert e's two weights (nonzero for at most 2 top_k
/// experts), so the error is a^T G_t a with G_t the Gram of the experts' outputs on sample t:
/// held per sample (experts (experts + 1) / 2 doubles: 1.1 GB at DeepSeek-V3's 256 experts and
/// 4,096 samples, where the outputs themselves would be 30 GB), a sample's error costs O(top_k^2)
/// whatever the hidden size. The Grams are built over chunks of samples, all experts' outputs of
/// a chunk in at most `chunk_bytes`; every chunk reads each expert once more (DeepSeek-V3: 2 GiB
/// hold 292 samples, whose outputs cost about twice the reading of the experts).
class ExpertRerouting {
 public:
  /// The largest num_experts_per_tok measured (DeepSeek-V3: 8, Qwen2-MoE: 4-8, Mixtral: 2).
  static constexpr int kMaxTopK = 64;
  /// The default bound on one chunk's expert outputs (experts x hidden x chunk floats).
  static constexpr std::size_t kChunkBytes = std::size_t{2} << 30;
  /// `inputs`: hidden x S block inputs (after the norm).
  ExpertRerouting(const MoeBlockWeights& block, const Eigen::MatrixXf& inputs,
                  std::size_t chunk_bytes = kChunkBytes);
  [[nodiscard]] int num_experts() const { return experts_; }
  /// The routing groups (n_group; 1 for softmax routers): a kept set must take the same number
  /// of experts from each group of num_experts() / num_groups() consecutive ids.
  [[nodiscard]] int num_groups() const { return routing_.num_groups; }
  [[nodiscard]] Eigen::Index num_samples() const { return probs_.cols(); }
  /// The chunks of samples the Grams were built in (each read every expert once).
  [[nodiscard]] int num_chunks() const { return chunks_; }
  /// The error of keeping `kept` (distinct expert ids, at least one). Deterministic.
  [[nodiscard]] double error(const std::vector<int>& kept) const;
  /// sum_t ||y(t)||^2 of the routed output: error / this is the relative error.
  [[nodiscard]] double routed_energy() const { return routed_energy_; }
  /// Sample t's term of error(): the same value, bit for bit, that error() adds for t. `keep`:
  /// one flag per expert.
  [[nodiscard]] double sample_error(const std::vector<char>& keep, Eigen::Index t) const;

 private:
  friend class ExpertSwapState;
  // The experts the router chooses for sample t among the kept ones and their weights (ids by
  // decreasing choice score); returns how many (top_k, fewer only when fewer are kept).
  int routed_choice(const std::vector<char>& keep, Eigen::Index t, int* ids, float* weights) const;
  // a^T G_t a over the (id, coefficient) pairs; ids distinct.
  [[nodiscard]] double quadratic(Eigen::Index t, const std::pair<int, double>* a, int n) const;
  MoeBlockWeights routing_;    // the block's router and routing settings, no experts
  Eigen::MatrixXf probs_;      // experts x S
  std::vector<double> grams_;  // per sample: G_t's upper triangle, row by row
  Eigen::MatrixXi ref_ids_;    // top_k x S: the full block's choice
  Eigen::MatrixXf ref_weights_;
  int experts_ = 0;
  int top_k_ = 0;
  int chunks_ = 0;
  bool norm_topk_prob_ = false;
  double routed_energy_ = 0.0;
};

/// A kept set with each sample's error and routing cached, for swap descent: swapping kept expert
/// `out` for removed expert `in` can change only the samples whose top k holds `out`, or that `in`
/// could enter (its score not below the k-th chosen one), or, with grouped routing, whose chosen
/// groups could change (the swapped group's score crossing the best unchosen or the worst chosen
/// group's). swap_delta re-evaluates those samples only, each with ExpertRerouting::sample_error.
/// Softmax routing without norm_topk_prob renormalises every sample over the kept mass: there all
/// samples are affected. A kept set that is unbalanced over the routing groups: likewise.
class ExpertSwapState {
 public:
  /// `kept`: distinct expert ids, at least top_k (InvalidArgument otherwise).
  ExpertSwapState(const ExpertRerouting& scorer, std::vector<int> kept);
  /// The kept experts, ids increasing.
  [[nodiscard]] const std::vector<int>& kept() const { return kept_; }
  /// ExpertRerouting::error(kept()), bit for bit (the cached terms added in sample order).
  [[nodiscard]] double error() const { return error_; }
  /// error after swapping `out` (kept) for `in` (removed) minus error(); InvalidArgument when
  /// `out` is not kept or `in` is. Deterministic.
  [[nodiscard]] double swap_delta(int out, int in) const;
  /// The samples swap_delta(out, in) re-evaluates.
  [[nodiscard]] Eigen::Index affected_count(int out, int in) const;
  /// Make the swap: the affected samples' errors re-evaluated, every sample's routing re-cached.
  void apply_swap(int out, int in);

 private:
  void check_swap(int out, int in) const;
  [[nodiscard]] bool affected(int out, int in, Eigen::Index t) const;
  [[nodiscard]] float choice_score(int e, Eigen::Index t) const;
  void cache_routing();
  const ExpertRerouting* scorer_;
  std::vector<int> kept_;
  std::vector<char> keep_;   // per expert
  std::vector<double> err_;  // per sample
  double error_ = 0.0;
  bool all_affected_ = false;  // every swap re-evaluates every sample
  bool grouped_ = false;       // group choice can change (sigmoid, topk_group < n_group)
  int groups_ = 1;             // routing groups
  std::vector<char> chosen_;   // S x experts: in the sample's top k
  std::vector<float> theta_;   // per sample: the k-th chosen score
  // Grouped: per (sample, group): the three best kept (id, biased score), the group's score,
  // whether chosen; per sample the best unchosen and the worst chosen group score.
  std::vector<int> top3_id_;
  std::vector<float> top3_score_;
  std::vector<float> group_score_;
  std::vector<char> group_chosen_;
  std::vector<float> best_unchosen_, worst_chosen_;
};

/// The `keep` experts with the largest scores (equal scores: the lower id), ids increasing: the
/// baselines keep the most used experts (ExpertStats::tokens) or the largest routed-weight mass
/// (ExpertStats::weight).
[[nodiscard]] std::vector<int> top_experts(const Eigen::VectorXd& scores, int keep);

/// The kept set of `keep` experts with the least re-routed error, by enumerating every subset
/// (with routing groups: every subset that keeps keep / num_groups of each group) in parallel;
/// ties: the first in lexicographic order. Throws InvalidArgument when there are more than
/// `max_subsets` subsets.
[[nodiscard]] std::vector<int> best_rerouted_subset(const ExpertRerouting& scorer, int keep,
                                                    std::int64_t max_subsets = 20'000'000);

/// Swap descent on the exact re-routed error from `kept`: while some swap of a kept and a removed
/// expert (of the same routing group) lowers ExpertRerouting::error, take the best such swap (ties:
/// the first in id order). Ends at a set no single swap improves; ids increasing. `max_rounds`
/// bounds the swaps made; no round starts once `time_limit_s` (wall, from the call) has passed.
/// Each swap is scored by ExpertSwapState on the samples it can change.
[[nodiscard]] std::vector<int> improve_by_swaps(
    const ExpertRerouting& scorer, std::vector<int> kept, int max_rounds = 1000,
    double time_limit_s = std::numeric_limits<double>::infinity());

/// The number of subsets of `keep` among `n` (saturating at INT64_MAX); with `groups` > 1 the
/// subsets that keep keep / groups of each of `groups` equal groups (0 unless both divide).
[[nodiscard]] std::int64_t subset_count(int n, int keep, int groups = 1);

}  // namespace qprune
