// A reference forward pass for decoder-only checkpoints of the Llama / Qwen2 / Mistral family and
// the mixture-of-experts Qwen2-MoE / Mixtral / DeepSeek-V3, in F32 on the CPU (Eigen + OpenMP):
// token embedding, per layer RMSNorm -> attention with rotary embeddings (plain, or rope_scaling
// llama3 / DeepSeek-V3's yarn: RopeScaling, docs/forward_pass.md) and grouped-query heads
// (DeepSeek-V3: multi-head latent attention, MlaConfig) -> residual -> RMSNorm -> gated SiLU MLP
// (or the MoE block of MoeConfig: top-k routed experts, Qwen2-MoE's gated shared expert,
// DeepSeek-V3's grouped sigmoid routing and ungated shared experts) -> residual, final RMSNorm and
// the (tied or separate) lm_head. Full causal
// attention over each sequence, no KV cache: it is meant for calibration statistics and perplexity,
// not for generation.
//
// The widths come from the ModelConfig (intermediate_size, heads, kv heads, head_dim), so pruned
// checkpoints run as they are. Biases are used whenever the checkpoint holds them (q/k/v for Qwen2,
// o_proj / down_proj biases that mean compensation adds, Llama's mlp_bias).
//
// Weights are read one layer at a time from the Checkpoint (BF16/F16 converted exactly to F32) and
// released after the layer; a call over several sequences reads each layer once for all of them.
//
// Example:
//   Checkpoint ckpt = Checkpoint::open("examples/model/checkpoint");
//   Transformer model(ckpt);
//   std::vector<std::int32_t> ids = {72, 105};            // byte-level: "Hi"
//   Eigen::MatrixXf logits = model.logits(ids);            // vocab x 2, column t predicts token
//   t+1
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/transformer.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "qprune/model_config.hpp"

namespace qprune {

class Checkpoint;

struct MoeTrace;

/// Activations a forward pass can hand out, per layer. Matrices have one column per token of one
/// sequence (channels x tokens); they are valid during the call only.
struct ForwardHooks {
  /// The down_proj input a = silu(gate_proj x) * (up_proj x): intermediate_size x T.
  std::function<void(int layer, int sequence, const Eigen::MatrixXf& mlp_activations)> mlp;
  /// The o_proj input (the heads' outputs, head h in rows [h*head_dim, (h+1)*head_dim)): C x T.
  std::function<void(int layer, int sequence, const Eigen::MatrixXf& o_proj_input)> attn;
  /// The residual stream (hidden x T) after the layer's attention (after_mlp false) and after its
  /// MLP (true).
  std::function<void(int layer, int sequence, bool after_mlp, const Eigen::MatrixXf& stream)>
      stream;
  /// A MoE layer's block (instead of `mlp`, which dense layers call): its input, routing and each
  /// chosen expert's weighted output.
  std::function<void(int layer, int sequence, const MoeTrace& trace)> moe;
};

/// One gated SiLU MLP without biases, down(silu(gate x) * up x): a routed or shared expert.
struct ExpertWeights {
  Eigen::MatrixXf gate, up, down;  ///< width x hidden, width x hidden, hidden x width
};

/// The weights of a MoE block (MoeConfig) as the forward pass uses them.
struct MoeBlockWeights {
  Eigen::MatrixXf router;  ///< experts x hidden
  /// The routed experts are read one at a time, when needed, and dropped after use: a block never
  /// holds all of them (DeepSeek-V3's 256 experts of a layer are 45 GB as F32). read_expert(e)
  /// returns expert e's F32 weights; DecoderLayerWeights::read sets it to read the checkpoint
  /// (which must outlive the block), hold_experts to copy from experts held in memory.
  int num_experts = 0;
  std::function<ExpertWeights(int expert)> read_expert;
  ExpertWeights shared;            ///< the shared expert(s); empty matrices: none
  Eigen::RowVectorXf shared_gate;  ///< 1 x hidden (Qwen2-MoE); empty: the shared expert ungated
  int top_k = 0;
  bool norm_topk_prob = false;
  /// DeepSeek-V3's grouped sigmoid routing (MoeConfig); false: softmax top-k.
  bool sigmoid_scores = false;
  Eigen::VectorXf score_bias;  ///< experts: e_score_correction_bias (choice only); empty: none
  int num_groups = 1;          ///< n_group: consecutive experts in groups of equal size
  int topk_groups = 1;         ///< topk_group
  float routed_scaling_factor = 1.0f;
  /// Per expert: 1 when the router may choose it; empty: every expert. A block with removed
  /// experts routes as the pruned checkpoint does (softmax over the kept router rows; DeepSeek-V3:
  /// the grouped choice over the kept experts), without writing it (Transformer::set_expert_keep).
  std::vector<char> keep;
  /// Expert e's weights through read_expert; InvalidArgument when e is not in [0, num_experts).
  [[nodiscard]] ExpertWeights expert(int e) const;
  /// Serve read_expert from `experts`, held in memory (edited blocks, tests); sets num_experts.
  void hold_experts(std::vector<ExpertWeights> experts);
};

/// The routing of a MoE block over T tokens.
struct MoeRouting {
  /// experts x T: softmax of the router logits over the block's experts (DeepSeek-V3: their
  /// sigmoid, the unbiased scores the weights come from)
  Eigen::MatrixXf probs;
  Eigen::MatrixXi chosen;   ///< top_k x T: the chosen experts, by decreasing probability
  Eigen::MatrixXf weights;  ///< top_k x T: their weights (renormalised when norm_topk_prob)
};

/// What a MoE block computed, per token (one sequence's columns in a hook).
struct MoeTrace {
  const Eigen::MatrixXf* input = nullptr;  ///< hidden x T: the block input (after the norm)
  const MoeRouting* routing = nullptr;
  /// hidden x (top_k T): column t * top_k + j is w E(x_t) of expert routing->chosen(j, t), the
  /// chosen expert's contribution to the block output.
  const Eigen::MatrixXf* contributions = nullptr;
};

/// DeepSeek-V3's multi-head latent attention weights (MlaConfig; PyTorch layout, out x in).
struct MlaWeights {
  Eigen::MatrixXf q_a;        ///< q_lora_rank x hidden; empty: q_b is q_proj (heads*qk x hidden)
  Eigen::VectorXf q_a_norm;   ///< q_lora_rank
  Eigen::MatrixXf q_b;        ///< heads*(nope+rope) x q_lora_rank (or x hidden)
  Eigen::MatrixXf kv_a;       ///< (kv_lora_rank + rope) x hidden
  Eigen::VectorXf kv_a_norm;  ///< kv_lora_rank
  Eigen::MatrixXf kv_b;       ///< heads*(nope+v) x kv_lora_rank
  int nope_dim = 0, rope_dim = 0, v_dim = 0;
  bool rope_interleave = true;
  double eps = 1e-6;  ///< rms_norm_eps of both latent norms
};

/// The F32 weights of one decoder layer as the forward pass uses them (PyTorch layout, out x in;
/// a bias vector is empty when the checkpoint has none). Sequential pruning edits these in memory
/// and runs the edited layer before anything is written.
struct DecoderLayerWeights {
  Eigen::VectorXf input_norm, post_attention_norm;
  Eigen::MatrixXf q, k, v, o;  ///< q, k, v empty in a latent-attention layer (mla)
  Eigen::VectorXf q_bias, k_bias, v_bias, o_bias;
  std::optional<MlaWeights> mla;   ///< DeepSeek-V3's attention (o is its o_proj)
  Eigen::MatrixXf gate, up, down;  ///< empty in a MoE layer
  Eigen::VectorXf gate_bias, up_bias, down_bias;
  std::optional<MoeBlockWeights> moe;  ///< a MoE layer's block (is_moe_layer)
  int num_heads = 0;                   ///< query heads (rows of q / head_dim)
  int num_kv_heads = 0;                ///< KV heads (rows of k and v / head_dim)
  int head_dim = 0;
  /// Layer `layer` of a checkpoint, with the head counts of its config.
  [[nodiscard]] static DecoderLayerWeights read(const Checkpoint& checkpoint, int layer);
};

/// Independent token sequences side by side as the columns of one matrix (sequence s owns columns
/// [offset(s), offset(s + 1))), with the rotary tables of their positions (rope_scaling
/// included; InvalidArgument for a malformed or unsupported one, RopeScaling).
class TokenBatch {
 public:
  TokenBatch(const std::vector<std::vector<std::int32_t>>& sequences, const ModelConfig& config);
  [[nodiscard]] int num_sequences() const { return static_cast<int>(offsets_.size()) - 1; }
  [[nodiscard]] Eigen::Index offset(int sequence) const {
    return offsets_[static_cast<std::size_t>(sequence)];
  }
  [[nodiscard]] Eigen::Index num_tokens() const { return offsets_.back(); }
  /// The token embeddings (hidden x tokens). InvalidArgument for an id outside the vocabulary.
  [[nodiscard]] Eigen::MatrixXf embed(const Checkpoint& checkpoint) const;
  /// The rotary cos / sin of position `pos` (head_dim / 2 entries each; DeepSeek-V3:
  /// qk_rope_head_dim / 2).
  [[nodiscard]] const std::vector<float>& cos_at(Eigen::Index pos) const {
    return cos_[static_cast<std::size_t>(pos)];
  }
  [[nodiscard]] const std::vector<float>& sin_at(Eigen::Index pos) const {
    return sin_[static_cast<std::size_t>(pos)];
  }
  /// What multiplies the attention's softmax scale 1 / sqrt(head dim): yarn's
  /// m(factor, mscale_all_dim)^2 on DeepSeek-V3 (RopeScaling), else 1.
  [[nodiscard]] double softmax_scale_factor() const { return softmax_scale_factor_; }

 private:
  const std::vector<std::vector<std::int32_t>>* sequences_;
  std::int64_t vocab_size_;
  std::vector<Eigen::Index> offsets_;
  std::vector<std::vector<float>> cos_, sin_;
  double softmax_scale_factor_ = 1.0;
};

/// The pieces of one decoder layer (x: the residual stream, hidden x tokens of a TokenBatch):
///   x += o_proj(attention_heads(rms_norm(x, input_norm)))
///   x += down_proj(mlp_activations(rms_norm(x, post_attention_norm)))
/// Every projection runs in fixed panels of token columns, so results do not depend on threads.
namespace forward {
/// w * x (+ bias when non-empty).
[[nodiscard]] Eigen::MatrixXf project(const Eigen::MatrixXf& w, const Eigen::VectorXf& bias,
                                      const Eigen::MatrixXf& x);
/// RMSNorm per column: weight * x / sqrt(mean(x^2) + eps), in F32 as Transformers computes it.
[[nodiscard]] Eigen::MatrixXf rms_norm(const Eigen::MatrixXf& x, const Eigen::VectorXf& weight,
                                       double eps);
/// The o_proj input: every query head's softmax-weighted values (heads * head_dim x tokens; with
/// latent attention heads * v_head_dim).
[[nodiscard]] Eigen::MatrixXf attention_heads(const DecoderLayerWeights& layer,
                                              const Eigen::MatrixXf& normed,
                                              const TokenBatch& batch);
/// The down_proj input silu(gate x) * (up x) (intermediate x tokens).
[[nodiscard]] Eigen::MatrixXf mlp_activations(const DecoderLayerWeights& layer,
                                              const Eigen::MatrixXf& normed);
/// The routing of a MoE block for the columns of `normed` (MoeConfig's formula).
[[nodiscard]] MoeRouting moe_routing(const MoeBlockWeights& block, const Eigen::MatrixXf& normed);
/// DeepSeek-V3's grouped choice for one token, over the experts flagged in `keep` (nullptr: all):
/// the kept experts, in id order, form block.num_groups groups of equal size (InvalidArgument
/// otherwise, or when fewer than top_k can be chosen); `scores` are the sigmoid scores of all the
/// block's experts, score_bias added for the choice. Writes top_k experts by decreasing biased
/// score (equal: the lower id) to `chosen` and their weights to `weights`.
void grouped_topk(const MoeBlockWeights& block, const float* scores, const std::vector<char>* keep,
                  int* chosen, float* weights);
/// E(x) of one expert for the columns of x (width from the weights).
[[nodiscard]] Eigen::MatrixXf expert_output(const ExpertWeights& expert, const Eigen::MatrixXf& x);
/// The MoE block's output (hidden x tokens) under `routing`: the chosen experts' weighted outputs,
/// added per token in increasing expert id as Transformers does, plus the gated shared expert.
/// `contributions` (optional): each chosen expert's weighted output, laid out as MoeTrace's.
[[nodiscard]] Eigen::MatrixXf moe_block(const MoeBlockWeights& block, const Eigen::MatrixXf& normed,
                                        const MoeRouting& routing,
                                        Eigen::MatrixXf* contributions = nullptr);
}  // namespace forward

/// The forward pass of one checkpoint. Holds a reference to the checkpoint (which must outlive it)
/// and no weights between calls.
class Transformer {
 public:
  /// Checks the config (validate(); InvalidArgument naming a malformed rope_scaling field
  /// (RopeScaling::invalid) or every entry of ModelConfig::forward_unsupported) and that the
  /// checkpoint holds every expected tensor with its shape (Checkpoint::check_expected_tensors:
  /// ParseError naming the first missing one).
  explicit Transformer(const Checkpoint& checkpoint);

  [[nodiscard]] const ModelConfig& config() const { return config_; }

  /// Logits of one sequence: vocab_size x T, column t is the distribution of token t+1. Token ids
  /// must lie in [0, vocab_size) (InvalidArgument otherwise); an empty sequence gives 0 columns.
  [[nodiscard]] Eigen::MatrixXf logits(std::span<const std::int32_t> tokens,
                                       const ForwardHooks* hooks = nullptr) const;

  /// log p(token[t+1] | token[0..t]) for t = 0..T-2 of every sequence (natural log, computed in
  /// double from the F32 logits), each layer's weights read once for all sequences. Hooks see
  /// sequence indices into `sequences`.
  [[nodiscard]] std::vector<Eigen::VectorXd> next_token_log_probs(
      const std::vector<std::vector<std::int32_t>>& sequences,
      const ForwardHooks* hooks = nullptr) const;

  /// Runs the decoder layers only (no final norm, no lm_head) over the sequences, for the hooks:
  /// what calibration needs. `num_layers` < 0: all layers; otherwise stop after that many.
  void run_layers(const std::vector<std::vector<std::int32_t>>& sequences,
                  const ForwardHooks& hooks, int num_layers = -1) const;

  /// Routes MoE layer `layer` around the experts whose flag is 0 (one flag per routed expert), as
  /// the checkpoint pruned by expert masks would: calibrating or measuring a pruned model without
  /// writing it. InvalidArgument for a dense layer, a wrong count, fewer than num_experts_per_tok
  /// kept, or (grouped routing) groups that do not keep as many each.
  void set_expert_keep(int layer, std::vector<char> keep);

 private:
  // Final hidden states (hidden x total tokens, sequences side by side) after `num_layers` layers.
  [[nodiscard]] Eigen::MatrixXf hidden_states(
      const std::vector<std::vector<std::int32_t>>& sequences, const ForwardHooks* hooks,
      int num_layers) const;
  // The same for a batch already laid out; `layers` already clamped.
  [[nodiscard]] Eigen::MatrixXf hidden_states_of(const TokenBatch& batch, const ForwardHooks* hooks,
                                                 int layers) const;

  const Checkpoint* checkpoint_;
  ModelConfig config_;
  std::vector<std::vector<char>> expert_keep_;  // per layer; empty: every expert routable
};

}  // namespace qprune
