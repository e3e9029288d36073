// The config.json of a Hugging Face decoder-only checkpoint (Llama, Qwen2, Mistral families and the
// mixture-of-experts Qwen2-MoE, Mixtral and DeepSeek-V3): the dimensions pruning needs, the tensor
// names and shapes they imply, and writing an updated copy that keeps every key qprune does not
// know about.
//
// Example:
//   ModelConfig cfg = ModelConfig::load("llama/config.json");
//   for (const ExpectedTensor& t : expected_tensors(cfg)) std::cout << t.name << "\n";
//   cfg.intermediate_size = 8192;                    // after pruning MLP neurons
//   std::string text = cfg.to_json();                // every other key kept as it was
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/model_config.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qprune {

/// The model families qprune can prune.
enum class ModelFamily { kLlama, kQwen2, kMistral, kQwen2Moe, kMixtral, kDeepseekV3 };

/// The config's model_type: "llama", "qwen2", "mistral", "qwen2_moe", "mixtral", "deepseek_v3".
[[nodiscard]] const char* model_family_name(ModelFamily family);

/// The mixture-of-experts block of Qwen2-MoE and Mixtral (Transformers' Qwen2MoeSparseMoeBlock,
/// MixtralSparseMoeBlock). For a token x with router logits r = W_router x (no bias):
///   p = softmax(r) over the layer's experts, T = the top-k experts by p,
///   w_e = p_e for e in T, divided by sum_{f in T} p_f when norm_topk_prob (Mixtral: always),
///   y = sum_{e in T} w_e E_e(x) [+ sigmoid(w_sg . x) S(x), Qwen2-MoE's gated shared expert],
/// every expert E_e and the shared S a gated SiLU MLP down(silu(gate x) * up x).
/// DeepSeek-V3 (DeepseekV3TopkRouter, scoring_func "sigmoid", topk_method "noaux_tc") instead:
///   s = sigmoid(r), c = s + b (b = the router's e_score_correction_bias, used only to choose),
///   the E experts in n_group groups of E / n_group consecutive ids, a group's score the sum of
///   its 2 largest c, the topk_group best groups kept, T = the top-k experts by c among theirs,
///   w_e = s_e (/ sum_{f in T} s_f when norm_topk_prob) * routed_scaling_factor,
///   y = sum_{e in T} w_e E_e(x) + S(x) (the shared experts, ungated, width
///   moe_intermediate_size * n_shared_experts).
struct MoeConfig {
  std::int64_t num_experts = 0;          ///< routed experts of every MoE layer; 0: a dense model
  std::int64_t num_experts_per_tok = 0;  ///< k of the top-k routing
  std::int64_t expert_intermediate_size = 0;  ///< an expert's width (Qwen2-MoE
                                              ///< moe_intermediate_size; Mixtral intermediate_size)
  std::int64_t shared_expert_intermediate_size = 0;  ///< Qwen2-MoE's shared expert; 0: none
  bool norm_topk_prob = false;
  /// Qwen2-MoE: layer l has the MoE block when l is not in mlp_only_layers and (l + 1) is a
  /// multiple of decoder_sparse_step; the others a dense MLP of intermediate_size.
  std::int64_t decoder_sparse_step = 1;
  std::vector<std::int64_t> mlp_only_layers;
  /// DeepSeek-V3's router (see above); the softmax families keep these defaults.
  bool sigmoid_scores = false;  ///< scoring_func "sigmoid" (DeepSeek-V3) instead of softmax
  bool router_bias = false;     ///< the router has e_score_correction_bias [experts]
  std::int64_t n_group = 1;     ///< routing groups (the experts split into equal groups)
  std::int64_t topk_group = 1;  ///< groups kept per token (n_group 1: every group)
  double routed_scaling_factor = 1.0;
  /// DeepSeek-V3: layer l has the MoE block when l >= first_k_dense_replace and l is a multiple
  /// of moe_layer_freq; the others a dense MLP of intermediate_size.
  std::int64_t first_k_dense_replace = 0;
  std::int64_t moe_layer_freq = 1;
};

/// DeepSeek-V3's multi-head latent attention (DeepseekV3Attention), per token x, H heads:
///   q = q_b_proj(RMSNorm(q_a_proj x)) (q_proj x when q_lora_rank is null), head h
///       [q_nope (qk_nope_head_dim) | q_rope (qk_rope_head_dim)];
///   [c | k_rope] = kv_a_proj_with_mqa x, [k_nope_h | v_h] = kv_b_proj(RMSNorm(c)) per head,
///   k_rope one rotary key shared by every head;
///   score = (q_nope . k_nope + rope(q_rope) . rope(k_rope)) / sqrt(qk_nope + qk_rope head dims),
///   the heads' outputs (v_head_dim each) concatenated into o_proj [hidden, H * v_head_dim].
/// rope_interleave (DeepSeek's layout, the default) rotates consecutive pairs (x[2i], x[2i+1]);
/// false: the rotate-half pairs (x[i], x[i + d/2]).
struct MlaConfig {
  std::int64_t q_lora_rank = 0;   ///< 0: no low-rank query path (q_proj)
  std::int64_t kv_lora_rank = 0;  ///< 0: not MLA (every family but DeepSeek-V3)
  std::int64_t qk_nope_head_dim = 0;
  std::int64_t qk_rope_head_dim = 0;
  std::int64_t v_head_dim = 0;
  bool rope_interleave = true;
};

/// config.json's rope_scaling, the two kinds the forward pass implements (the type from the key
/// `rope_type`, else `type`; "default" is plain rotary embeddings). With inv_freq_i =
/// rope_theta^(-2i/d), i < d/2, d the rotary dimension (head_dim; DeepSeek-V3 qk_rope_head_dim):
///   llama3 (Transformers' _compute_llama3_parameters; Llama 3.1-3.3): wavelen_i = 2 pi /
///   inv_freq_i,
///     L = original_max_position_embeddings; wavelen_i < L / high_freq_factor: unchanged;
///     wavelen_i > L / low_freq_factor: inv_freq_i / factor; between: with
///     s = (L / wavelen_i - low_freq_factor) / (high_freq_factor - low_freq_factor),
///     (1 - s) inv_freq_i / factor + s inv_freq_i. cos/sin and the softmax scale unchanged.
///   yarn (DeepSeek-V3's own modeling_deepseek.py, DeepseekV3YarnRotaryEmbedding; DeepSeek-V3
///   only):
///     corr(r) = d ln(L / (2 pi r)) / (2 ln rope_theta), low = max(floor(corr(beta_fast)), 0),
///     high = min(ceil(corr(beta_slow)), d - 1), ramp_i = clamp((i - low) / (high - low), 0, 1)
///     (high += 0.001 when equal), inv_freq_i <- inv_freq_i / factor * ramp_i
///     + inv_freq_i * (1 - ramp_i); cos and sin times m(factor, mscale) / m(factor, mscale_all_dim)
///     and the attention's softmax scale times m(factor, mscale_all_dim)^2 when mscale_all_dim !=
///     0, m(f, x) = 0.1 x ln f + 1 for f > 1, else 1.
struct RopeScaling {
  enum class Type {
    kNone,         ///< rope_scaling absent, null, or rope_type "default"
    kLlama3,       ///< "llama3"
    kYarn,         ///< "yarn" (DeepSeek-V3's formula)
    kUnsupported,  ///< any other type (linear, dynamic, longrope, ...): in forward_unsupported
  };
  Type type = Type::kNone;
  std::string type_name;  ///< the type as written ("yarn", "linear", ...); empty for kNone
  double factor = 1.0;    ///< required, finite and > 0
  std::int64_t original_max_position_embeddings = 0;  ///< required (> 0) for llama3 and yarn
  double low_freq_factor = 1.0;                       ///< llama3, required, > 0
  double high_freq_factor = 4.0;                      ///< llama3, required, > low_freq_factor
  double beta_fast = 32.0;      ///< yarn, default 32; finite, > 0 and >= beta_slow
  double beta_slow = 1.0;       ///< yarn, default 1; finite and > 0
  double mscale = 1.0;          ///< yarn, default 1 (DeepSeek's); finite and >= 0
  double mscale_all_dim = 0.0;  ///< yarn, default 0 (DeepSeek's: no softmax scaling); >= 0
  /// Why the rope_scaling object is malformed, naming the field (e.g. "field 'factor' must be a
  /// finite number > 0, found -1"); empty when it is well formed. Such a config is still read
  /// and applied; the forward pass refuses it (InvalidArgument).
  std::string invalid;
};

/// Block-wise FP8 weights (config.json `quantization_config` with quant_method "fp8", as in the
/// released DeepSeek-V3 / R1 checkpoints and Transformers' FineGrainedFP8Config): a linear weight
/// stored as F8_E4M3 codes Wq [rows, cols] has a companion `<weight>_scale_inv` (a float tensor,
/// F32 in DeepSeek's files) of shape [ceil(rows / block_rows), ceil(cols / block_cols)], and
///   W[i][j] = e4m3(Wq[i][j]) * scale_inv[i / block_rows][j / block_cols].
/// Weights stored in a float dtype (norms, embeddings, lm_head, the router, and any module listed
/// in modules_to_not_convert) have no scale and are read as they are.
struct Fp8Quantization {
  std::int64_t block_rows = 128;  ///< weight_block_size[0] (default: Transformers' 128)
  std::int64_t block_cols = 128;  ///< weight_block_size[1]
};

/// The fields of config.json that fix the tensor shapes. Edit the public fields, then to_json()
/// writes the original JSON with the changed fields updated (keys it does not know are kept, in
/// their order). A field absent from the file gets the default written next to it and is only
/// written back when its value differs from that default.
struct ModelConfig {
  ModelFamily family = ModelFamily::kLlama;
  std::string architecture;              ///< architectures[0], e.g. "LlamaForCausalLM"
  std::int64_t hidden_size = 0;          ///< required
  std::int64_t intermediate_size = 0;    ///< required
  std::int64_t num_hidden_layers = 0;    ///< required
  std::int64_t num_attention_heads = 0;  ///< required
  std::int64_t num_key_value_heads = 0;  ///< default: num_attention_heads
  std::int64_t head_dim = 0;             ///< default: hidden_size / num_attention_heads
  std::int64_t vocab_size = 0;           ///< required
  double rms_norm_eps = 1e-6;            ///< default 1e-6 (Transformers' default for all three)
  double rope_theta = 10000.0;           ///< default 10000
  bool tie_word_embeddings = false;      ///< default false: lm_head.weight is a tensor of its own
  /// q/k/v projections have biases: Qwen2 always; Llama when `attention_bias` is true.
  bool attention_bias = false;
  /// o_proj has a bias: Llama when `attention_bias` is true; never for Qwen2 and Mistral.
  bool o_proj_bias = false;
  bool mlp_bias = false;  ///< Llama's `mlp_bias` (gate/up/down biases); default false
  std::int64_t max_position_embeddings = 0;  ///< default: the family's Transformers default
  std::string torch_dtype;  ///< "bfloat16", "float32", ... (`torch_dtype` or `dtype`); may be empty
  MoeConfig moe;            ///< num_experts == 0 for the dense families
  MlaConfig mla;            ///< kv_lora_rank == 0 except for DeepSeek-V3
  RopeScaling rope_scaling;  ///< kNone unless config.json has a rope_scaling object
  /// DeepSeek-V3's multi-token-prediction layers (num_nextn_predict_layers, default 0): stored as
  /// model.layers.<num_hidden_layers + i>.*, a MoE decoder layer plus embed_tokens, enorm, hnorm,
  /// eh_proj and shared_head. Transformers' forward (and qprune's) does not use them.
  std::int64_t num_nextn_predict_layers = 0;
  /// quantization_config with quant_method "fp8" (validated: fmt "e4m3" when given,
  /// weight_block_size two positive integers); nullopt for an unquantised checkpoint. Other
  /// quantization methods are not read (their tensors fail the dtype check on open). to_json()
  /// keeps quantization_config as the file has it (edit config_json to change it).
  std::optional<Fp8Quantization> fp8;
  /// Fields present in config.json that change the forward pass in ways qprune's does not
  /// implement (hidden_act other than silu, a rope_scaling type other than llama3 and yarn (yarn
  /// only for DeepSeek-V3), use_sliding_window, partial rotary),
  /// one readable entry each; empty when the forward pass is exact. The Transformer refuses them.
  std::vector<std::string> forward_unsupported;

  /// Parses config.json text. `path` only names the file in errors. Throws ParseError
  /// (`path:0: expected field 'hidden_size' ...`, or `path: byte N:` for JSON syntax errors) for a
  /// missing or mistyped field, an unknown architecture / model_type, or inconsistent dimensions.
  [[nodiscard]] static ModelConfig parse(const std::string& json_text, const std::string& path);
  /// Reads and parses a config.json file (IoError if it cannot be read).
  [[nodiscard]] static ModelConfig load(const std::string& path);

  /// The original JSON text with the fields above written back where they changed, 2-space
  /// indented. Throws InvalidArgument if the fields are inconsistent (see validate()).
  [[nodiscard]] std::string to_json() const;
  /// Checks positivity and divisibility (heads % kv heads, hidden % heads when head_dim is
  /// derived); throws InvalidArgument naming the field.
  void validate() const;

 private:
  std::string raw_json_;  // the text parse() was given; to_json() edits a copy of it
};

/// One tensor a checkpoint of a given config must hold, with its shape in the file's order
/// (PyTorch nn.Linear: [out_features, in_features]).
struct ExpectedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  /// The config fields the shape comes from, e.g. "[hidden_size, intermediate_size]" (messages).
  std::string dims;
  /// False for a tensor the config gives a meaning (and a shape) but does not require: a bias the
  /// config does not declare, lm_head.weight with tied embeddings. Present, it must have `shape`.
  bool required = true;
};

/// True when decoder layer `layer` has the mixture-of-experts block (MoeConfig), false for a dense
/// MLP (every layer of a dense family).
[[nodiscard]] bool is_moe_layer(const ModelConfig& config, std::int64_t layer);

/// The tensor names of a MoE layer's block, after the `model.layers.{i}.` prefix: Qwen2-MoE
/// `mlp.gate.weight`, `mlp.experts.{e}.{gate,up,down}_proj.weight`, `mlp.shared_expert.*`,
/// `mlp.shared_expert_gate.weight`; Mixtral `block_sparse_moe.gate.weight`,
/// `block_sparse_moe.experts.{e}.{w1,w3,w2}.weight` (gate, up, down); DeepSeek-V3
/// `mlp.gate.weight`, `mlp.gate.e_score_correction_bias`, `mlp.experts.{e}.*`,
/// `mlp.shared_experts.*` (ungated).
struct MoeTensorNames {
  std::string router;
  std::string router_bias;     ///< "mlp.gate.e_score_correction_bias" or empty
  std::string expert_prefix;   ///< expert e's tensors are expert_prefix + e + "." + a projection
  std::string gate, up, down;  ///< projection names inside an expert, e.g. "gate_proj.weight"
  std::string shared_prefix;   ///< "mlp.shared_expert." / "mlp.shared_experts." or empty
  std::string shared_gate;     ///< "mlp.shared_expert_gate.weight" or empty
  [[nodiscard]] std::string expert(std::int64_t e, const std::string& projection) const {
    return expert_prefix + std::to_string(e) + "." + projection;
  }
};
/// The names for the config's family (InvalidArgument for a dense family).
[[nodiscard]] MoeTensorNames moe_tensor_names(const ModelConfig& config);

/// The tensors a config implies: embed_tokens, per layer the attention projections (and biases),
/// the MLP projections (and biases) or the MoE block's router and experts, both RMSNorm weights,
/// the final norm, and lm_head unless tied.
/// Layer tensors come in layer order, then the global ones.
[[nodiscard]] std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);
/// The expected tensors of one decoder layer (names include the `model.layers.{i}.` prefix).
[[nodiscard]] std::vector<ExpectedTensor> expected_layer_tensors(const ModelConfig& config,
                                                                 std::int64_t layer);

/// Every tensor name a config gives a meaning to in decoder layer `layer`, required or not
/// (ExpectedTensor::required), by the name after `model.layers.{i}.` ("mlp.down_proj.weight", the
/// biases of every projection, both norms; a MoE layer's router and experts). The checkpoint's one
/// validation (Checkpoint::open) checks each present tensor of these names against its shape, and
/// that the required ones exist in every layer.
[[nodiscard]] std::vector<ExpectedTensor> known_layer_tensors(const ModelConfig& config,
                                                              std::int64_t layer);
/// The same for the whole names outside the layers: the embeddings, the final norm and lm_head.
[[nodiscard]] std::vector<ExpectedTensor> known_global_tensors(const ModelConfig& config);

/// The layer number N of a tensor named `model.layers.N.<rest>` (N decimal without sign or leading
/// zero, at most 9 digits; <rest> not empty); nullopt for any other name. Never throws.
/// Checkpoint::open refuses a `model.layers.` name that this does not parse, or whose N is not
/// below num_hidden_layers, so for the tensors of an open checkpoint it is either nullopt (not a
/// layer tensor) or a valid layer.
[[nodiscard]] std::optional<std::int64_t> tensor_layer_index(std::string_view name);
/// The `model.layers.{layer}.` prefix of a layer's tensor names.
[[nodiscard]] std::string layer_tensor_prefix(std::int64_t layer);

}  // namespace qprune
