// The config.json of a Hugging Face decoder-only checkpoint (Llama, Qwen2, Mistral families): the
// dimensions pruning needs, the tensor names and shapes they imply, and writing an updated copy
// that keeps every key qprune does not know about.
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
enum class ModelFamily { kLlama, kQwen2, kMistral };

/// "llama", "qwen2" or "mistral" (the config's model_type).
[[nodiscard]] const char* model_family_name(ModelFamily family);

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
  /// Fields present in config.json that change the forward pass in ways qprune's does not
  /// implement (hidden_act other than silu, rope_scaling, use_sliding_window, partial rotary),
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

/// The tensors a config implies: embed_tokens, per layer the attention projections (and biases),
/// the MLP projections (and biases), both RMSNorm weights, the final norm, and lm_head unless tied.
/// Layer tensors come in layer order, then the global ones.
[[nodiscard]] std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);
/// The expected tensors of one decoder layer (names include the `model.layers.{i}.` prefix).
[[nodiscard]] std::vector<ExpectedTensor> expected_layer_tensors(const ModelConfig& config,
                                                                 std::int64_t layer);

/// Every tensor name a config gives a meaning to, required or not (ExpectedTensor::required):
/// per decoder layer by the name after `model.layers.{i}.` (`layer` true: "mlp.down_proj.weight",
/// the biases of every projection, both norms), else the whole names of the embeddings, the final
/// norm and lm_head. The checkpoint's one validation (Checkpoint::open) checks each present tensor
/// of these names against its shape, and that the required ones exist in every layer.
[[nodiscard]] std::vector<ExpectedTensor> known_tensors(const ModelConfig& config, bool layer);

/// The layer number N of a tensor named `model.layers.N.<rest>` (N decimal without sign or leading
/// zero, at most 9 digits; <rest> not empty); nullopt for any other name. Never throws.
/// Checkpoint::open refuses a `model.layers.` name that this does not parse, or whose N is not
/// below num_hidden_layers, so for the tensors of an open checkpoint it is either nullopt (not a
/// layer tensor) or a valid layer.
[[nodiscard]] std::optional<std::int64_t> tensor_layer_index(std::string_view name);
/// The `model.layers.{layer}.` prefix of a layer's tensor names.
[[nodiscard]] std::string layer_tensor_prefix(std::int64_t layer);

}  // namespace qprune
