// config.json of the Llama, Qwen2, Mistral, Qwen2-MoE, Mixtral and DeepSeek-V3 families: parsing
// with defaults taken from Transformers' config classes (LlamaConfig, Qwen2Config, MistralConfig,
// Qwen2MoeConfig, MixtralConfig, DeepseekV3Config), the expected tensor list, and writing an
// updated copy that keeps unknown keys in their original order.
#include "qprune/model_config.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/json_input.hpp"
#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

// nlohmann::json (std::map), not ordered_json: ordered_map inserts by a linear search, so an
// object of n keys parses in O(n^2) (a fuzzed config of 50,000 keys ran for minutes). Written
// configs have sorted keys, as Hugging Face's own save_pretrained writes them (sort_keys=True).
using Json = nlohmann::json;

struct FamilyRow {
  ModelFamily family;
  const char* model_type;
  const char* architecture;
  std::int64_t default_max_positions;  // Transformers' default max_position_embeddings
};

constexpr FamilyRow kFamilies[] = {
    {ModelFamily::kLlama, "llama", "LlamaForCausalLM", 2048},
    {ModelFamily::kQwen2, "qwen2", "Qwen2ForCausalLM", 32768},
    {ModelFamily::kMistral, "mistral", "MistralForCausalLM", std::int64_t{4096} * 32},
    {ModelFamily::kQwen2Moe, "qwen2_moe", "Qwen2MoeForCausalLM", 32768},
    {ModelFamily::kMixtral, "mixtral", "MixtralForCausalLM", std::int64_t{4096} * 32},
    {ModelFamily::kDeepseekV3, "deepseek_v3", "DeepseekV3ForCausalLM", 4096},
};

std::string known_list(bool architectures) {
  std::string s;
  for (const FamilyRow& row : kFamilies)
    s += std::string(s.empty() ? "" : ", ") + (architectures ? row.architecture : row.model_type);
  return s;
}

// Bounds on the dimensions: unit counts are ints downstream, and products of two dimensions
// (a tensor's element count) must stay far from int64 overflow. expected_tensors() lists a dozen
// tensors per layer, so the layer count is bounded too (a 10^11-layer config once hung it).
constexpr std::int64_t kMaxDimension = std::numeric_limits<int>::max();
constexpr std::int64_t kMaxLayers = 65536;

class FieldReader {
 public:
  FieldReader(const Json& j, const std::string& path) : j_(j), path_(path) {}

  [[noreturn]] void fail(const std::string& what) const { throw ParseError(path_, 0, what); }

  std::int64_t required_int(const char* key, std::int64_t max = kMaxDimension) const {
    const auto it = j_.find(key);
    if (it == j_.end())
      fail(std::string("expected field '") + key + "' (a positive integer), found none");
    return as_int(key, *it, max);
  }
  std::int64_t optional_int(const char* key, std::int64_t fallback,
                            std::int64_t max = kMaxDimension) const {
    const auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? fallback : as_int(key, *it, max);
  }
  double optional_double(const char* key, double fallback) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number())
      fail(std::string("expected field '") + key + "' to be a number, found " +
           detail::describe_json(*it));
    return it->get<double>();
  }
  /// Like optional_int, 0 allowed (a part the model does without, e.g. no shared expert).
  std::int64_t optional_count(const char* key, std::int64_t fallback) const {
    const auto it = j_.find(key);
    if (it != j_.end() && it->is_number_unsigned() && it->get<std::uint64_t>() == 0) return 0;
    return optional_int(key, fallback);
  }
  /// A list of layer numbers (Qwen2-MoE's mlp_only_layers), each below `limit`.
  std::vector<std::int64_t> optional_layer_list(const char* key, std::int64_t limit) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return {};
    if (!it->is_array())
      fail(std::string("expected field '") + key + "' to be a list of layer numbers, found " +
           detail::describe_json(*it));
    std::vector<std::int64_t> out;
    for (const Json& v : *it) {
      if (!v.is_number_unsigned() || v.get<std::uint64_t>() >= static_cast<std::uint64_t>(limit))
        fail(std::string("expected field '") + key + "' to hold layer numbers below " +
             std::to_string(limit) + ", found " + detail::describe_json(v));
      out.push_back(v.get<std::int64_t>());
    }
    return out;
  }
  /// A string field that must be one of `allowed` (absent or null: `allowed[0]`).
  std::string optional_choice(const char* key, std::initializer_list<const char*> allowed,
                              const std::string& why) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return *allowed.begin();
    for (const char* a : allowed)
      if (it->is_string() && it->get<std::string>() == a) return a;
    std::string list;
    for (const char* a : allowed) list += std::string(list.empty() ? "\"" : ", \"") + a + "\"";
    fail(std::string("expected field '") + key + "' to be " + list + " (" + why + "), found " +
         detail::describe_json(*it));
  }
  bool optional_bool(const char* key, bool fallback) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean())
      fail(std::string("expected field '") + key + "' to be true or false, found " +
           detail::describe_json(*it));
    return it->get<bool>();
  }

 private:
  std::int64_t as_int(const char* key, const Json& v, std::int64_t max) const {
    // Non-negative JSON integers are stored unsigned: compare as unsigned before converting.
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0 ||
        v.get<std::uint64_t>() > static_cast<std::uint64_t>(max))
      fail(std::string("expected field '") + key + "' to be a positive integer <= " +
           std::to_string(max) + ", found " + detail::describe_json(v));
    return v.get<std::int64_t>();
  }
  const Json& j_;
  const std::string& path_;
};

// Writes `key` = value if it differs from what the original JSON holds (or from `fallback` when
// the original lacks the key), so unchanged fields keep their original spelling.
template <class T>
void update_field(Json& j, const char* key, const T& value, const T& fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (value != fallback) j[key] = value;
    return;
  }
  // The original may hold another JSON type where the reader ignored it (e.g. a numeric
  // torch_dtype when dtype is the string): compare only like with like, else overwrite.
  if constexpr (std::is_same_v<T, double>) {
    if (it->is_number() && it->template get<double>() == value) return;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (it->is_boolean() && it->template get<bool>() == value) return;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (it->is_string() && it->template get<std::string>() == value) return;
  } else {
    if (it->is_number_integer() && *it == value) return;
  }
  *it = value;
}

// A name from the file for a message: quoted, cut to 40 characters (a name may be megabytes).
std::string short_quote(const std::string& s) {
  return "'" + (s.size() > 40 ? s.substr(0, 37) + "..." : s) + "'";
}

}  // namespace

const char* model_family_name(ModelFamily family) {
  for (const FamilyRow& row : kFamilies)
    if (row.family == family) return row.model_type;
  return "?";
}

namespace {

// DeepseekV3Config's fields (defaults: Transformers' DeepseekV3Config, i.e. DeepSeek-V3's own).
void parse_deepseek_v3(const FieldReader& r, const Json& j, ModelConfig& c) {
  MoeConfig& m = c.moe;
  m.num_experts = r.optional_int("n_routed_experts", 256);
  m.num_experts_per_tok = r.optional_int("num_experts_per_tok", 8);
  m.expert_intermediate_size = r.optional_int("moe_intermediate_size", 2048);
  const std::int64_t shared = r.optional_count("n_shared_experts", 1);
  if (shared * m.expert_intermediate_size > kMaxDimension)
    r.fail("expected n_shared_experts * moe_intermediate_size <= " + std::to_string(kMaxDimension) +
           ", found " + std::to_string(shared) + " * " +
           std::to_string(m.expert_intermediate_size));
  m.shared_expert_intermediate_size = shared * m.expert_intermediate_size;
  m.norm_topk_prob = r.optional_bool("norm_topk_prob", true);
  m.sigmoid_scores = true;
  m.router_bias = true;
  (void)r.optional_choice("scoring_func", {"sigmoid"},
                          "DeepSeek-V3's router; qprune implements no other scoring");
  (void)r.optional_choice("topk_method", {"noaux_tc"},
                          "DeepSeek-V3's grouped top-k with e_score_correction_bias");
  m.n_group = r.optional_int("n_group", 8);
  m.topk_group = r.optional_int("topk_group", 4);
  m.routed_scaling_factor = r.optional_double("routed_scaling_factor", 2.5);
  if (!std::isfinite(m.routed_scaling_factor) || !(m.routed_scaling_factor > 0.0))
    r.fail("expected field 'routed_scaling_factor' to be a finite number > 0, found " +
           std::to_string(m.routed_scaling_factor));
  m.first_k_dense_replace = r.optional_count("first_k_dense_replace", 3);
  m.moe_layer_freq = r.optional_int("moe_layer_freq", 1);
  if (m.num_experts % m.n_group != 0)
    r.fail("expected field 'n_group' to divide n_routed_experts " + std::to_string(m.num_experts) +
           " (groups of equal size), found " + std::to_string(m.n_group));
  if (m.topk_group > m.n_group)
    r.fail("expected field 'topk_group' to be at most n_group " + std::to_string(m.n_group) +
           ", found " + std::to_string(m.topk_group));
  if (m.num_experts_per_tok > m.topk_group * (m.num_experts / m.n_group))
    r.fail("expected field 'num_experts_per_tok' to be at most the experts of topk_group " +
           std::to_string(m.topk_group) + " groups (" +
           std::to_string(m.topk_group * (m.num_experts / m.n_group)) + "), found " +
           std::to_string(m.num_experts_per_tok));
  MlaConfig& a = c.mla;
  // q_lora_rank null (DeepSeek-V2-Lite style): the query is one projection q_proj.
  const auto q_rank = j.find("q_lora_rank");
  a.q_lora_rank = q_rank != j.end() && q_rank->is_null() ? 0 : r.optional_int("q_lora_rank", 1536);
  a.kv_lora_rank = r.optional_int("kv_lora_rank", 512);
  a.qk_nope_head_dim = r.optional_int("qk_nope_head_dim", 128);
  a.qk_rope_head_dim = r.optional_int("qk_rope_head_dim", 64);
  a.v_head_dim = r.optional_int("v_head_dim", 128);
  a.rope_interleave = r.optional_bool("rope_interleave", true);
  if (a.qk_rope_head_dim % 2 != 0)
    r.fail("expected field 'qk_rope_head_dim' to be even (rotary pairs), found " +
           std::to_string(a.qk_rope_head_dim));
  const std::int64_t heads = c.num_attention_heads;
  for (const auto& [what, width] :
       {std::pair{"num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim)",
                  a.qk_nope_head_dim + a.qk_rope_head_dim},
        std::pair{"num_attention_heads * (qk_nope_head_dim + v_head_dim)",
                  a.qk_nope_head_dim + a.v_head_dim}})
    if (heads * width > kMaxDimension)  // each factor <= 2^32: no overflow
      r.fail(std::string("expected ") + what + " <= " + std::to_string(kMaxDimension) + ", found " +
             std::to_string(heads) + " * " + std::to_string(width));
  // The MTP layers sit after the decoder layers; their numbers must stay below kMaxLayers too.
  c.num_nextn_predict_layers = r.optional_count("num_nextn_predict_layers", 0);
  if (c.num_nextn_predict_layers > kMaxLayers - c.num_hidden_layers)
    r.fail("expected num_hidden_layers + num_nextn_predict_layers <= " +
           std::to_string(kMaxLayers) + ", found " + std::to_string(c.num_hidden_layers) + " + " +
           std::to_string(c.num_nextn_predict_layers));
  // DeepSeek's attention_bias adds biases to q_a/kv_a/o_proj, which the forward pass lacks.
  if (r.optional_bool("attention_bias", false))
    c.forward_unsupported.push_back("attention_bias: true (MLA without biases only)");
}

// rope_scaling (RopeScaling). A malformed object does not stop the parse: mask, apply and export
// never run the model, so they keep working; `invalid` names the field and the forward pass refuses
// it. The required fields are those Transformers' _validate_llama3_parameters requires (llama3) and
// those DeepSeek's DeepseekV3YarnRotaryEmbedding reads without a default (yarn: factor), plus
// original_max_position_embeddings for yarn: DeepSeek's class defaults it to 4096, Transformers'
// _compute_yarn_parameters to max_position_embeddings, so a config without it is ambiguous.
RopeScaling parse_rope_scaling(const Json& v, ModelFamily family) {
  RopeScaling r;
  if (!v.is_object()) {
    r.type = RopeScaling::Type::kUnsupported;
    r.type_name = "?";
    r.invalid = "expected an object or null, found " + detail::describe_json(v);
    return r;
  }
  const auto type_it = v.contains("rope_type") ? v.find("rope_type") : v.find("type");
  if (type_it == v.end() || !type_it->is_string()) {
    r.type = RopeScaling::Type::kUnsupported;
    r.type_name = "?";
    r.invalid = "expected field 'rope_type' (or 'type') to name the scaling, found " +
                (type_it == v.end() ? std::string("none") : detail::describe_json(*type_it));
    return r;
  }
  r.type_name = type_it->get<std::string>();
  if (r.type_name.size() > 40) r.type_name = r.type_name.substr(0, 37) + "...";
  if (r.type_name == "default") {
    r.type_name.clear();
    return r;
  }
  if (r.type_name == "llama3") {
    r.type = RopeScaling::Type::kLlama3;
  } else if (r.type_name == "yarn" && family == ModelFamily::kDeepseekV3) {
    r.type = RopeScaling::Type::kYarn;
  } else {
    r.type = RopeScaling::Type::kUnsupported;
    return r;
  }
  // The first problem found, in the order of the fields below.
  auto fail = [&r](const std::string& what) {
    if (r.invalid.empty()) r.invalid = what;
  };
  auto number = [&](const char* key, double fallback, bool required, double lower, bool strict) {
    const auto it = v.find(key);
    if (it == v.end() || it->is_null()) {
      if (required) fail(std::string("expected field '") + key + "' (a number), found none");
      return fallback;
    }
    const bool ok = it->is_number() && std::isfinite(it->get<double>()) &&
                    (strict ? it->get<double>() > lower : it->get<double>() >= lower);
    if (!ok) {
      char bound[32];
      std::snprintf(bound, sizeof bound, "%g", lower);
      fail(std::string("expected field '") + key + "' to be a finite number " +
           (strict ? "> " : ">= ") + bound + ", found " + detail::describe_json(*it));
      return fallback;
    }
    return it->get<double>();
  };
  r.factor = number("factor", 1.0, true, 0.0, true);
  if (const auto it = v.find("original_max_position_embeddings"); it == v.end() || it->is_null()) {
    fail("expected field 'original_max_position_embeddings' (a positive integer), found none");
  } else if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0 ||
             it->get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxDimension)) {
    fail("expected field 'original_max_position_embeddings' to be a positive integer <= " +
         std::to_string(kMaxDimension) + ", found " + detail::describe_json(*it));
  } else {
    r.original_max_position_embeddings = it->get<std::int64_t>();
  }
  if (r.type == RopeScaling::Type::kLlama3) {
    r.low_freq_factor = number("low_freq_factor", 1.0, true, 0.0, true);
    r.high_freq_factor = number("high_freq_factor", 4.0, true, 0.0, true);
    if (r.invalid.empty() && !(r.high_freq_factor > r.low_freq_factor))
      fail("expected field 'high_freq_factor' to be greater than low_freq_factor " +
           std::to_string(r.low_freq_factor) + ", found " + std::to_string(r.high_freq_factor));
  } else {
    r.beta_fast = number("beta_fast", 32.0, false, 0.0, true);
    r.beta_slow = number("beta_slow", 1.0, false, 0.0, true);
    r.mscale = number("mscale", 1.0, false, 0.0, false);
    r.mscale_all_dim = number("mscale_all_dim", 0.0, false, 0.0, false);
    if (r.invalid.empty() && r.beta_fast < r.beta_slow)
      fail("expected field 'beta_fast' to be at least beta_slow " + std::to_string(r.beta_slow) +
           ", found " + std::to_string(r.beta_fast));
  }
  return r;
}

// quantization_config of a block-wise FP8 checkpoint (DeepSeek-V3 / R1: {"activation_scheme":
// "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}); nullopt for
// another quant_method (not read by qprune).
std::optional<Fp8Quantization> parse_fp8_quantization(const Json& q, const std::string& path) {
  const auto method = q.find("quant_method");
  if (method == q.end() || !method->is_string() || method->get<std::string>() != "fp8")
    return std::nullopt;
  auto fail = [&](const std::string& what) { throw ParseError(path, 0, what); };
  if (const auto fmt = q.find("fmt");
      fmt != q.end() && !fmt->is_null() && !(fmt->is_string() && fmt->get<std::string>() == "e4m3"))
    fail(
        "expected field 'quantization_config.fmt' to be \"e4m3\" (the only FP8 format qprune "
        "reads), found " +
        detail::describe_json(*fmt));
  Fp8Quantization out;
  const auto block = q.find("weight_block_size");
  if (block == q.end() || block->is_null()) return out;  // Transformers' default, 128 x 128
  if (!block->is_array() || block->size() != 2)
    fail(
        "expected field 'quantization_config.weight_block_size' to be two positive integers "
        "[rows, cols], found " +
        detail::describe_json(*block));
  std::int64_t dims[2] = {0, 0};
  for (std::size_t k = 0; k < 2; ++k) {
    const Json& v = (*block)[k];
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0 ||
        v.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxDimension))
      fail(
          "expected field 'quantization_config.weight_block_size' to be two positive integers "
          "[rows, cols], found " +
          detail::describe_json(*block));
    dims[k] = v.get<std::int64_t>();
  }
  out.block_rows = dims[0];
  out.block_cols = dims[1];
  return out;
}

}  // namespace

ModelConfig ModelConfig::parse(const std::string& json_text, const std::string& path) {
  const Json j = detail::parse_json<Json>(json_text, {path});
  if (!j.is_object())
    throw ParseError(path, 0, std::string("expected a JSON object, found ") + j.type_name());
  const FieldReader r(j, path);

  // The family: architectures[0] when present, else model_type; both must agree when both exist.
  const FamilyRow* by_arch = nullptr;
  const FamilyRow* by_type = nullptr;
  ModelConfig c;
  if (const auto it = j.find("architectures"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->empty() || !(*it)[0].is_string())
      r.fail("expected field 'architectures' to be a non-empty array of strings, found " +
             detail::describe_json(*it));
    c.architecture = (*it)[0].get<std::string>();
    for (const FamilyRow& row : kFamilies)
      if (c.architecture == row.architecture) by_arch = &row;
    if (by_arch == nullptr)
      r.fail("expected field 'architectures' to name one of " + known_list(true) + ", found " +
             short_quote(c.architecture) + " (unknown architecture)");
  }
  if (const auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    const std::string type = it->is_string() ? it->get<std::string>() : std::string();
    for (const FamilyRow& row : kFamilies)
      if (type == row.model_type) by_type = &row;
    if (by_type == nullptr)
      r.fail("expected field 'model_type' to be one of " + known_list(false) + ", found " +
             (it->is_string() ? short_quote(type) : detail::describe_json(*it)) +
             " (unknown architecture)");
  }
  if (by_arch == nullptr && by_type == nullptr)
    r.fail("expected field 'architectures' or 'model_type', found neither");
  if (by_arch != nullptr && by_type != nullptr && by_arch != by_type)
    r.fail(std::string("expected field 'model_type' to match architectures[0] '") +
           by_arch->architecture + "', found '" + by_type->model_type + "'");
  const FamilyRow& family = by_arch != nullptr ? *by_arch : *by_type;
  c.family = family.family;
  if (c.architecture.empty()) c.architecture = family.architecture;

  c.hidden_size = r.required_int("hidden_size");
  c.intermediate_size = r.required_int("intermediate_size");
  c.num_hidden_layers = r.required_int("num_hidden_layers", kMaxLayers);
  c.num_attention_heads = r.required_int("num_attention_heads");
  c.vocab_size = r.required_int("vocab_size");
  c.num_key_value_heads = r.optional_int("num_key_value_heads", c.num_attention_heads);
  if ((!j.contains("head_dim") || j["head_dim"].is_null()) &&
      c.hidden_size % c.num_attention_heads != 0)
    r.fail("expected field 'head_dim' (hidden_size " + std::to_string(c.hidden_size) +
           " is not a multiple of num_attention_heads " + std::to_string(c.num_attention_heads) +
           "), found none");
  c.head_dim = r.optional_int("head_dim", c.hidden_size / c.num_attention_heads);
  if (c.num_attention_heads * c.head_dim > kMaxDimension)  // both <= 2^31: no overflow here
    r.fail("expected num_attention_heads * head_dim <= " + std::to_string(kMaxDimension) +
           ", found " + std::to_string(c.num_attention_heads) + " * " + std::to_string(c.head_dim));
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("expected field 'num_key_value_heads' to divide num_attention_heads " +
           std::to_string(c.num_attention_heads) + ", found " +
           std::to_string(c.num_key_value_heads));
  c.rms_norm_eps = r.optional_double("rms_norm_eps", 1e-6);
  c.rope_theta = r.optional_double("rope_theta", 10000.0);
  c.tie_word_embeddings = r.optional_bool("tie_word_embeddings", false);
  c.max_position_embeddings =
      r.optional_int("max_position_embeddings", family.default_max_positions,
                     std::numeric_limits<std::int64_t>::max());
  switch (c.family) {
    case ModelFamily::kLlama:
      c.attention_bias = r.optional_bool("attention_bias", false);
      c.o_proj_bias = c.attention_bias;
      c.mlp_bias = r.optional_bool("mlp_bias", false);
      break;
    case ModelFamily::kQwen2:  // q/k/v always carry biases, o_proj and the MLP never
      c.attention_bias = true;
      break;
    case ModelFamily::kMistral:
      break;
    case ModelFamily::kQwen2Moe:  // Qwen2MoeConfig: q/k/v biases (qkv_bias, default true)
      c.attention_bias = r.optional_bool("qkv_bias", true);
      c.moe.num_experts = r.optional_int("num_experts", 60);
      c.moe.num_experts_per_tok = r.optional_int("num_experts_per_tok", 4);
      c.moe.expert_intermediate_size = r.optional_int("moe_intermediate_size", 1408);
      c.moe.shared_expert_intermediate_size =
          r.optional_count("shared_expert_intermediate_size", 5632);
      c.moe.norm_topk_prob = r.optional_bool("norm_topk_prob", false);
      c.moe.decoder_sparse_step = r.optional_int("decoder_sparse_step", 1);
      c.moe.mlp_only_layers = r.optional_layer_list("mlp_only_layers", c.num_hidden_layers);
      break;
    case ModelFamily::kMixtral:  // MixtralConfig: every layer sparse, weights renormalised
      c.moe.num_experts = r.optional_int("num_local_experts", 8);
      c.moe.num_experts_per_tok = r.optional_int("num_experts_per_tok", 2);
      c.moe.expert_intermediate_size = c.intermediate_size;
      c.moe.norm_topk_prob = true;
      break;
    case ModelFamily::kDeepseekV3:
      parse_deepseek_v3(r, j, c);
      break;
  }
  if (c.moe.num_experts > 0 && c.moe.num_experts_per_tok > c.moe.num_experts)
    r.fail("expected field 'num_experts_per_tok' to be at most the number of experts " +
           std::to_string(c.moe.num_experts) + ", found " +
           std::to_string(c.moe.num_experts_per_tok));
  if (const auto it = j.find("quantization_config"); it != j.end() && it->is_object())
    c.fp8 = parse_fp8_quantization(*it, path);
  for (const char* key : {"torch_dtype", "dtype"}) {
    const auto it = j.find(key);
    if (it != j.end() && it->is_string()) {
      c.torch_dtype = it->get<std::string>();
      break;
    }
  }
  // Fields that change what the forward pass computes and that it does not implement: calibrate,
  // perplexity and prune refuse such a checkpoint (Transformer) instead of computing something
  // else; mask/apply/export do not run the model and accept it.
  auto short_text = [](const Json& v) {
    const std::string t = v.is_string() ? v.get<std::string>() : std::string(v.type_name());
    return t.size() > 40 ? t.substr(0, 40) + "..." : t;
  };
  if (const auto it = j.find("hidden_act");
      it != j.end() && !it->is_null() && !(it->is_string() && it->get<std::string>() == "silu"))
    c.forward_unsupported.push_back("hidden_act '" + short_text(*it) + "' (only silu)");
  if (const auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    c.rope_scaling = parse_rope_scaling(*it, c.family);
    if (c.rope_scaling.type == RopeScaling::Type::kUnsupported && c.rope_scaling.invalid.empty())
      c.forward_unsupported.push_back(
          "rope_scaling type '" + c.rope_scaling.type_name + "' on " + model_family_name(c.family) +
          " (only llama3, and yarn on deepseek_v3; plain rotary embeddings otherwise)");
  }
  if (const auto it = j.find("use_sliding_window");
      it != j.end() && it->is_boolean() && it->get<bool>())
    c.forward_unsupported.push_back("use_sliding_window: true (only full causal attention)");
  if (const auto it = j.find("partial_rotary_factor");
      it != j.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 1.0))
    c.forward_unsupported.push_back("partial_rotary_factor (only rotary over the whole head)");
  c.raw_json_ = json_text;
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  return parse(detail::read_text_file(path), path);
}

void ModelConfig::validate() const {
  auto positive = [](const char* field, std::int64_t v) {
    if (v <= 0)
      throw InvalidArgument(std::string("ModelConfig: ") + field + " must be > 0, got " +
                            std::to_string(v));
  };
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("vocab_size", vocab_size);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_nextn_predict_layers < 0 ||
      (num_nextn_predict_layers > 0 && family != ModelFamily::kDeepseekV3))
    throw InvalidArgument(
        "ModelConfig: num_nextn_predict_layers must be >= 0 (and 0 except for "
        "DeepSeek-V3), got " +
        std::to_string(num_nextn_predict_layers));
  if (fp8) {
    positive("fp8 block_rows (quantization_config.weight_block_size[0])", fp8->block_rows);
    positive("fp8 block_cols (quantization_config.weight_block_size[1])", fp8->block_cols);
  }
  if (num_attention_heads % num_key_value_heads != 0)
    throw InvalidArgument(
        "ModelConfig: num_key_value_heads (" + std::to_string(num_key_value_heads) +
        ") must divide num_attention_heads (" + std::to_string(num_attention_heads) + ")");
  if (!(rms_norm_eps > 0.0) || !std::isfinite(rope_theta) || !(rope_theta > 0.0))
    throw InvalidArgument("ModelConfig: rms_norm_eps and rope_theta must be finite and > 0");
  if (family == ModelFamily::kQwen2 && (!attention_bias || o_proj_bias || mlp_bias))
    throw InvalidArgument(
        "ModelConfig: Qwen2 has q/k/v biases only (attention_bias = true, "
        "o_proj_bias = mlp_bias = false)");
  if ((family == ModelFamily::kMistral || family == ModelFamily::kMixtral) &&
      (attention_bias || o_proj_bias || mlp_bias))
    throw InvalidArgument(std::string("ModelConfig: ") + model_family_name(family) +
                          " has no biases");
  if (family == ModelFamily::kQwen2Moe && (o_proj_bias || mlp_bias))
    throw InvalidArgument("ModelConfig: Qwen2-MoE has q/k/v biases at most");
  const bool moe_family = family == ModelFamily::kQwen2Moe || family == ModelFamily::kMixtral ||
                          family == ModelFamily::kDeepseekV3;
  if (family == ModelFamily::kDeepseekV3) {
    if (attention_bias || o_proj_bias || mlp_bias)
      throw InvalidArgument("ModelConfig: qprune's DeepSeek-V3 has no biases");
    positive("n_group", moe.n_group);
    positive("topk_group", moe.topk_group);
    positive("moe_layer_freq", moe.moe_layer_freq);
    positive("kv_lora_rank", mla.kv_lora_rank);
    positive("qk_nope_head_dim", mla.qk_nope_head_dim);
    positive("qk_rope_head_dim", mla.qk_rope_head_dim);
    positive("v_head_dim", mla.v_head_dim);
    if (moe.num_experts % moe.n_group != 0 || moe.topk_group > moe.n_group ||
        moe.num_experts_per_tok > moe.topk_group * (moe.num_experts / moe.n_group))
      throw InvalidArgument("ModelConfig: n_group (" + std::to_string(moe.n_group) +
                            ") must divide n_routed_experts (" + std::to_string(moe.num_experts) +
                            "), topk_group (" + std::to_string(moe.topk_group) +
                            ") must not exceed it, and num_experts_per_tok (" +
                            std::to_string(moe.num_experts_per_tok) +
                            ") must not exceed the topk_group groups' experts");
  } else if (mla.kv_lora_rank != 0 || moe.sigmoid_scores || moe.router_bias || moe.n_group != 1) {
    throw InvalidArgument(std::string("ModelConfig: ") + model_family_name(family) +
                          " has neither latent attention nor grouped sigmoid routing");
  }
  if (moe_family) {
    positive("num_experts", moe.num_experts);
    positive("num_experts_per_tok", moe.num_experts_per_tok);
    positive("expert_intermediate_size", moe.expert_intermediate_size);
    positive("decoder_sparse_step", moe.decoder_sparse_step);
    if (moe.num_experts_per_tok > moe.num_experts)
      throw InvalidArgument(
          "ModelConfig: num_experts_per_tok (" + std::to_string(moe.num_experts_per_tok) +
          ") must not exceed the number of experts (" + std::to_string(moe.num_experts) + ")");
    if (family == ModelFamily::kMixtral && moe.expert_intermediate_size != intermediate_size)
      throw InvalidArgument("ModelConfig: Mixtral's expert width is intermediate_size");
  } else if (moe.num_experts != 0) {
    throw InvalidArgument(std::string("ModelConfig: ") + model_family_name(family) +
                          " has no experts");
  }
  if (family == ModelFamily::kLlama && attention_bias != o_proj_bias)
    throw InvalidArgument(
        "ModelConfig: Llama's attention_bias covers q/k/v and o_proj alike "
        "(attention_bias must equal o_proj_bias)");
}

std::string ModelConfig::to_json() const {
  validate();
  Json j = raw_json_.empty() ? Json::object() : Json::parse(raw_json_);
  if (!j.contains("architectures")) j["architectures"] = {architecture};
  if (!j.contains("model_type")) j["model_type"] = model_family_name(family);
  update_field<std::int64_t>(j, "hidden_size", hidden_size, 0);
  update_field<std::int64_t>(j, "intermediate_size", intermediate_size, 0);
  update_field<std::int64_t>(j, "num_hidden_layers", num_hidden_layers, 0);
  update_field<std::int64_t>(j, "num_attention_heads", num_attention_heads, 0);
  update_field<std::int64_t>(j, "vocab_size", vocab_size, 0);
  // Derived defaults are judged against the new values: pruning heads keeps head_dim, so a config
  // that relied on hidden_size / num_attention_heads must now spell head_dim out.
  update_field<std::int64_t>(j, "num_key_value_heads", num_key_value_heads, num_attention_heads);
  update_field<std::int64_t>(
      j, "head_dim", head_dim,
      hidden_size % num_attention_heads == 0 ? hidden_size / num_attention_heads : -1);
  update_field<double>(j, "rms_norm_eps", rms_norm_eps, 1e-6);
  update_field<double>(j, "rope_theta", rope_theta, 10000.0);
  update_field<bool>(j, "tie_word_embeddings", tie_word_embeddings, false);
  std::int64_t default_positions = 0;
  for (const FamilyRow& row : kFamilies)
    if (row.family == family) default_positions = row.default_max_positions;
  update_field<std::int64_t>(j, "max_position_embeddings", max_position_embeddings,
                             default_positions);
  if (family == ModelFamily::kLlama) {
    update_field<bool>(j, "attention_bias", attention_bias, false);
    update_field<bool>(j, "mlp_bias", mlp_bias, false);
  }
  if (family == ModelFamily::kQwen2Moe) {
    update_field<std::int64_t>(j, "num_experts", moe.num_experts, 60);
    update_field<std::int64_t>(j, "num_experts_per_tok", moe.num_experts_per_tok, 4);
    update_field<std::int64_t>(j, "moe_intermediate_size", moe.expert_intermediate_size, 1408);
  }
  if (family == ModelFamily::kMixtral) {
    update_field<std::int64_t>(j, "num_local_experts", moe.num_experts, 8);
    update_field<std::int64_t>(j, "num_experts_per_tok", moe.num_experts_per_tok, 2);
  }
  if (family == ModelFamily::kDeepseekV3) {
    update_field<std::int64_t>(j, "n_routed_experts", moe.num_experts, 256);
    update_field<std::int64_t>(j, "num_experts_per_tok", moe.num_experts_per_tok, 8);
    update_field<std::int64_t>(j, "moe_intermediate_size", moe.expert_intermediate_size, 2048);
    update_field<std::int64_t>(j, "num_nextn_predict_layers", num_nextn_predict_layers, 0);
  }
  if (!torch_dtype.empty()) {
    // The key parse() took the dtype from: torch_dtype when it is a string, else dtype.
    const auto torch = j.find("torch_dtype");
    const bool from_dtype =
        (torch == j.end() || !torch->is_string()) && j.contains("dtype") && j["dtype"].is_string();
    const char* key = from_dtype ? "dtype" : "torch_dtype";
    update_field<std::string>(j, key, torch_dtype, "");
  }
  return j.dump(2) + "\n";
}

bool is_moe_layer(const ModelConfig& c, std::int64_t layer) {
  if (c.moe.num_experts == 0) return false;
  if (c.family == ModelFamily::kDeepseekV3)
    return layer >= c.moe.first_k_dense_replace && layer % c.moe.moe_layer_freq == 0;
  for (const std::int64_t l : c.moe.mlp_only_layers)
    if (l == layer) return false;
  return (layer + 1) % c.moe.decoder_sparse_step == 0;
}

MoeTensorNames moe_tensor_names(const ModelConfig& c) {
  switch (c.family) {
    case ModelFamily::kQwen2Moe:
      return {"mlp.gate.weight",    "",
              "mlp.experts.",       "gate_proj.weight",
              "up_proj.weight",     "down_proj.weight",
              "mlp.shared_expert.", "mlp.shared_expert_gate.weight"};
    case ModelFamily::kMixtral:
      return {"block_sparse_moe.gate.weight",
              "",
              "block_sparse_moe.experts.",
              "w1.weight",
              "w3.weight",
              "w2.weight",
              "",
              ""};
    case ModelFamily::kDeepseekV3:
      return {"mlp.gate.weight",     "mlp.gate.e_score_correction_bias",
              "mlp.experts.",        "gate_proj.weight",
              "up_proj.weight",      "down_proj.weight",
              "mlp.shared_experts.", ""};
    default:
      throw InvalidArgument(std::string(model_family_name(c.family)) + " has no experts");
  }
}

std::vector<ExpectedTensor> known_global_tensors(const ModelConfig& c) {
  const std::int64_t h = c.hidden_size;
  const std::int64_t v = c.vocab_size;
  return {{"model.embed_tokens.weight", {v, h}, "[vocab_size, hidden_size]"},
          {"model.norm.weight", {h}, "[hidden_size]"},
          {"lm_head.weight", {v, h}, "[vocab_size, hidden_size]", !c.tie_word_embeddings}};
}

namespace {

// Grouped-query attention (Llama, Qwen2, Mistral, Qwen2-MoE, Mixtral) with its optional biases.
void attention_tensors(const ModelConfig& c, std::vector<ExpectedTensor>& t) {
  const std::int64_t h = c.hidden_size;
  const std::int64_t q = c.num_attention_heads * c.head_dim;
  const std::int64_t kv = c.num_key_value_heads * c.head_dim;
  const std::string qd = "num_attention_heads * head_dim";
  const std::string kvd = "num_key_value_heads * head_dim";
  t.push_back({"self_attn.q_proj.weight", {q, h}, "[" + qd + ", hidden_size]"});
  t.push_back({"self_attn.q_proj.bias", {q}, "[" + qd + "]", c.attention_bias});
  t.push_back({"self_attn.k_proj.weight", {kv, h}, "[" + kvd + ", hidden_size]"});
  t.push_back({"self_attn.k_proj.bias", {kv}, "[" + kvd + "]", c.attention_bias});
  t.push_back({"self_attn.v_proj.weight", {kv, h}, "[" + kvd + ", hidden_size]"});
  t.push_back({"self_attn.v_proj.bias", {kv}, "[" + kvd + "]", c.attention_bias});
  t.push_back({"self_attn.o_proj.weight", {h, q}, "[hidden_size, " + qd + "]"});
  t.push_back({"self_attn.o_proj.bias", {h}, "[hidden_size]", c.o_proj_bias});
}

// DeepSeek-V3's latent attention (MlaConfig), without biases.
void mla_tensors(const ModelConfig& c, std::vector<ExpectedTensor>& t) {
  const MlaConfig& a = c.mla;
  const std::int64_t h = c.hidden_size;
  const std::int64_t heads = c.num_attention_heads;
  const std::int64_t qk = heads * (a.qk_nope_head_dim + a.qk_rope_head_dim);
  const std::string qkd = "num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim)";
  if (a.q_lora_rank > 0) {
    t.push_back({"self_attn.q_a_proj.weight", {a.q_lora_rank, h}, "[q_lora_rank, hidden_size]"});
    t.push_back({"self_attn.q_a_layernorm.weight", {a.q_lora_rank}, "[q_lora_rank]"});
    t.push_back({"self_attn.q_b_proj.weight", {qk, a.q_lora_rank}, "[" + qkd + ", q_lora_rank]"});
  } else {
    t.push_back({"self_attn.q_proj.weight", {qk, h}, "[" + qkd + ", hidden_size]"});
  }
  t.push_back({"self_attn.kv_a_proj_with_mqa.weight",
               {a.kv_lora_rank + a.qk_rope_head_dim, h},
               "[kv_lora_rank + qk_rope_head_dim, hidden_size]"});
  t.push_back({"self_attn.kv_a_layernorm.weight", {a.kv_lora_rank}, "[kv_lora_rank]"});
  t.push_back({"self_attn.kv_b_proj.weight",
               {heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank},
               "[num_attention_heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank]"});
  t.push_back({"self_attn.o_proj.weight",
               {h, heads * a.v_head_dim},
               "[hidden_size, num_attention_heads * v_head_dim]"});
}

}  // namespace

std::vector<ExpectedTensor> known_layer_tensors(const ModelConfig& c, std::int64_t layer) {
  const std::int64_t h = c.hidden_size;
  const std::int64_t i = c.intermediate_size;
  std::vector<ExpectedTensor> t;
  // In the order of expected_layer_tensors (Transformers' module order).
  t.push_back({"input_layernorm.weight", {h}, "[hidden_size]"});
  if (c.mla.kv_lora_rank > 0) {
    mla_tensors(c, t);
  } else {
    attention_tensors(c, t);
  }
  t.push_back({"post_attention_layernorm.weight", {h}, "[hidden_size]"});
  if (!is_moe_layer(c, layer)) {
    t.push_back({"mlp.gate_proj.weight", {i, h}, "[intermediate_size, hidden_size]"});
    t.push_back({"mlp.gate_proj.bias", {i}, "[intermediate_size]", c.mlp_bias});
    t.push_back({"mlp.up_proj.weight", {i, h}, "[intermediate_size, hidden_size]"});
    t.push_back({"mlp.up_proj.bias", {i}, "[intermediate_size]", c.mlp_bias});
    t.push_back({"mlp.down_proj.weight", {h, i}, "[hidden_size, intermediate_size]"});
    t.push_back({"mlp.down_proj.bias", {h}, "[hidden_size]", c.mlp_bias});
    return t;
  }
  const MoeTensorNames n = moe_tensor_names(c);
  const std::int64_t e = c.moe.num_experts;
  const std::int64_t w = c.moe.expert_intermediate_size;
  const std::string wd =
      c.family == ModelFamily::kMixtral ? "intermediate_size" : "moe_intermediate_size";
  t.push_back({n.router, {e, h}, "[number of experts, hidden_size]"});
  if (!n.router_bias.empty()) t.push_back({n.router_bias, {e}, "[number of experts]"});
  for (std::int64_t x = 0; x < e; ++x) {
    t.push_back({n.expert(x, n.gate), {w, h}, "[" + wd + ", hidden_size]"});
    t.push_back({n.expert(x, n.up), {w, h}, "[" + wd + ", hidden_size]"});
    t.push_back({n.expert(x, n.down), {h, w}, "[hidden_size, " + wd + "]"});
  }
  if (const std::int64_t s = c.moe.shared_expert_intermediate_size; s > 0) {
    const std::string sd = c.family == ModelFamily::kDeepseekV3
                               ? "moe_intermediate_size * n_shared_experts"
                               : "shared_expert_intermediate_size";
    t.push_back({n.shared_prefix + "gate_proj.weight", {s, h}, "[" + sd + ", hidden_size]"});
    t.push_back({n.shared_prefix + "up_proj.weight", {s, h}, "[" + sd + ", hidden_size]"});
    t.push_back({n.shared_prefix + "down_proj.weight", {h, s}, "[hidden_size, " + sd + "]"});
    if (!n.shared_gate.empty()) t.push_back({n.shared_gate, {1, h}, "[1, hidden_size]"});
  }
  return t;
}

std::vector<ExpectedTensor> expected_layer_tensors(const ModelConfig& c, std::int64_t layer) {
  const std::string p = layer_tensor_prefix(layer);
  std::vector<ExpectedTensor> t;
  for (ExpectedTensor& k : known_layer_tensors(c, layer))
    if (k.required) {
      k.name = p + k.name;
      t.push_back(std::move(k));
    }
  return t;
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  std::vector<ExpectedTensor> t;
  for (std::int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    std::vector<ExpectedTensor> l = expected_layer_tensors(c, layer);
    t.insert(t.end(), std::make_move_iterator(l.begin()), std::make_move_iterator(l.end()));
  }
  for (ExpectedTensor& k : known_global_tensors(c))
    if (k.required) t.push_back(std::move(k));
  return t;
}

std::optional<std::int64_t> tensor_layer_index(std::string_view name) {
  constexpr std::string_view kPrefix = "model.layers.";
  constexpr std::size_t kMaxDigits = 9;  // < 10^9: no overflow, far above kMaxLayers
  if (!name.starts_with(kPrefix)) return std::nullopt;
  const std::string_view rest = name.substr(kPrefix.size());
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > kMaxDigits || dot + 1 == rest.size())
    return std::nullopt;
  if (dot > 1 && rest[0] == '0') return std::nullopt;  // "01": not a name Transformers writes
  std::int64_t n = 0;
  for (std::size_t k = 0; k < dot; ++k) {
    if (rest[k] < '0' || rest[k] > '9') return std::nullopt;
    n = n * 10 + (rest[k] - '0');
  }
  return n;
}

std::string layer_tensor_prefix(std::int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

}  // namespace qprune
