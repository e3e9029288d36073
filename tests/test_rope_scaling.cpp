// Tests of config.json's rope_scaling (RopeScaling in qprune/model_config.hpp): the forward pass of
// DeepSeek-V3 with yarn and of Llama with llama3 against the independent float64 references of
// tests/data/checkpoints/make_tiny_moe.py (tiny-deepseek-v3-yarn) and make_tiny_llama.py
// (tiny-llama-llama3); that the scaling changes those references far beyond the tolerance; and
// one test per kind of malformed or unsupported rope_scaling.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/model_config.hpp"
#include "qprune/transformer.hpp"
#include "tests/reference_tensors.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"

namespace fs = std::filesystem;
using namespace qprune;

namespace {

fs::path ckpt_dir(const std::string& name) { return test::data_path("checkpoints/" + name); }

using test::flat;

constexpr Eigen::Index kSequences = 2;
constexpr Eigen::Index kLength = 12;

// The largest |logit - expected| over the reference's two sequences of 12 tokens; `scale` gets the
// largest |expected|.
float worst_logit_error(const Checkpoint& ckpt, const std::vector<std::int32_t>& ids,
                        const std::vector<float>& expected, float& scale) {
  const Transformer model(ckpt);
  const auto vocab = static_cast<Eigen::Index>(ckpt.config().vocab_size);
  REQUIRE(expected.size() == static_cast<std::size_t>(kSequences * kLength * vocab));
  float worst = 0.0f;
  scale = 0.0f;
  for (Eigen::Index s = 0; s < kSequences; ++s) {
    const Eigen::MatrixXf got =
        model.logits(std::span<const std::int32_t>(ids.data() + s * kLength, kLength));
    for (Eigen::Index t = 0; t < kLength; ++t)
      for (Eigen::Index v = 0; v < vocab; ++v) {
        const float e = expected[static_cast<std::size_t>((s * kLength + t) * vocab + v)];
        worst = std::max(worst, std::abs(got(v, t) - e));
        scale = std::max(scale, std::abs(e));
      }
  }
  return worst;
}

float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// A copy of checkpoint `name` in a temporary folder with config.json's rope_scaling value replaced
// by `value` (JSON text).
fs::path with_rope_scaling(const std::string& name, const std::string& value) {
  const fs::path src = ckpt_dir(name);
  const fs::path dir = test::temp_dir("rope_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(src / "model.safetensors", dir / "model.safetensors");
  std::string cfg = test::slurp(src / "config.json");
  const std::size_t key = cfg.find("\"rope_scaling\":");
  REQUIRE(key != std::string::npos);
  const std::size_t begin = key + std::string("\"rope_scaling\":").size();
  // The value ends at the brace closing its object (the generators write no nested braces in it).
  const std::size_t end = cfg.find('}', begin) + 1;
  cfg.replace(begin, end - begin, " " + value);
  test::spit(dir / "config.json", cfg);
  return dir;
}

// config.json text of tiny-llama-llama3 with rope_scaling `value`, parsed.
ModelConfig llama_with(const std::string& value) {
  std::string cfg = test::slurp(ckpt_dir("tiny-llama-llama3") / "config.json");
  const std::size_t key = cfg.find("\"rope_scaling\":");
  REQUIRE(key != std::string::npos);
  const std::size_t begin = key + std::string("\"rope_scaling\":").size();
  cfg.replace(begin, cfg.find('}', begin) + 1 - begin, " " + value);
  return ModelConfig::parse(cfg, "config.json");
}

ModelConfig deepseek_with(const std::string& value) {
  std::string cfg = test::slurp(ckpt_dir("tiny-deepseek-v3-yarn") / "config.json");
  const std::size_t key = cfg.find("\"rope_scaling\":");
  REQUIRE(key != std::string::npos);
  const std::size_t begin = key + std::string("\"rope_scaling\":").size();
  cfg.replace(begin, cfg.find('}', begin) + 1 - begin, " " + value);
  return ModelConfig::parse(cfg, "config.json");
}

}  // namespace

TEST_CASE(
    "rope_scaling: DeepSeek-V3 yarn and Llama llama3 logits equal the independent reference") {
  for (const std::string name : {"tiny-deepseek-v3-yarn", "tiny-llama-llama3"}) {
    CAPTURE(name);
    const Checkpoint ckpt = Checkpoint::open(ckpt_dir(name));
    CHECK(ckpt.config().forward_unsupported.empty());
    CHECK(ckpt.config().rope_scaling.invalid.empty());
    CHECK(ckpt.config().rope_scaling.type ==
          (name == "tiny-llama-llama3" ? RopeScaling::Type::kLlama3 : RopeScaling::Type::kYarn));
    const SafetensorsFile ref = SafetensorsFile::open(ckpt_dir(name) / "reference.safetensors");
    float scale = 0.0f;
    const float worst = worst_logit_error(ckpt, flat<std::int32_t>(ref, "input_ids"),
                                          flat<float>(ref, "logits"), scale);
    MESSAGE(name << ": largest logit difference " << worst << " (logits up to " << scale << ")");
    CHECK(worst <= 1e-5f * std::max(1.0f, scale));
    CHECK(scale > 1.0f);
  }
}

TEST_CASE("rope_scaling: the scaling changes the reference logits far beyond the tolerance") {
  // yarn: the same weights and ids as tiny-deepseek-v3, whose reference has no rope_scaling.
  const SafetensorsFile yarn =
      SafetensorsFile::open(ckpt_dir("tiny-deepseek-v3-yarn") / "reference.safetensors");
  const SafetensorsFile plain =
      SafetensorsFile::open(ckpt_dir("tiny-deepseek-v3") / "reference.safetensors");
  CHECK(flat<std::int32_t>(yarn, "input_ids") == flat<std::int32_t>(plain, "input_ids"));
  const float yarn_diff = max_difference(flat<float>(yarn, "logits"), flat<float>(plain, "logits"));
  const SafetensorsFile llama =
      SafetensorsFile::open(ckpt_dir("tiny-llama-llama3") / "reference.safetensors");
  const float llama_diff =
      max_difference(flat<float>(llama, "logits"), flat<float>(llama, "logits_no_rope_scaling"));
  MESSAGE("reference logits with and without rope_scaling differ by " << yarn_diff << " (yarn), "
                                                                      << llama_diff << " (llama3)");
  CHECK(yarn_diff > 1e-2f);  // 1000 times the 1e-5 tolerance
  CHECK(llama_diff > 1e-2f);

  // The same weights with rope_scaling null run as the unscaled references: a forward pass that
  // ignored rope_scaling would compute these, and fail the test above.
  const fs::path no_yarn = with_rope_scaling("tiny-deepseek-v3-yarn", "null");
  float scale = 0.0f;
  CHECK(worst_logit_error(Checkpoint::open(no_yarn), flat<std::int32_t>(plain, "input_ids"),
                          flat<float>(plain, "logits"), scale) <= 1e-5f * std::max(1.0f, scale));
  const fs::path no_llama3 = with_rope_scaling("tiny-llama-llama3", "null");
  CHECK(worst_logit_error(Checkpoint::open(no_llama3), flat<std::int32_t>(llama, "input_ids"),
                          flat<float>(llama, "logits_no_rope_scaling"),
                          scale) <= 1e-5f * std::max(1.0f, scale));
  fs::remove_all(no_yarn);
  fs::remove_all(no_llama3);
}

TEST_CASE("rope_scaling: the released configs' fields; the key type or rope_type") {
  const ModelConfig llama = llama_with(
      R"({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192, "rope_type": "llama3"})");
  const RopeScaling& l = llama.rope_scaling;
  CHECK(l.type == RopeScaling::Type::kLlama3);
  CHECK(l.type_name == "llama3");
  CHECK(l.factor == 8.0);
  CHECK(l.low_freq_factor == 1.0);
  CHECK(l.high_freq_factor == 4.0);
  CHECK(l.original_max_position_embeddings == 8192);
  CHECK(l.invalid.empty());
  CHECK(llama.forward_unsupported.empty());

  const ModelConfig ds = deepseek_with(
      R"({"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
          "original_max_position_embeddings": 4096, "type": "yarn"})");
  const RopeScaling& y = ds.rope_scaling;
  CHECK(y.type == RopeScaling::Type::kYarn);
  CHECK(y.factor == 40.0);
  CHECK(y.beta_fast == 32.0);
  CHECK(y.beta_slow == 1.0);
  CHECK(y.mscale == 1.0);
  CHECK(y.mscale_all_dim == 1.0);
  CHECK(y.original_max_position_embeddings == 4096);
  CHECK(y.invalid.empty());
  CHECK(ds.forward_unsupported.empty());

  // DeepSeek's defaults for the optional yarn fields; rope_type wins over type.
  const ModelConfig defaults = deepseek_with(
      R"({"factor": 4, "original_max_position_embeddings": 64, "rope_type": "yarn",
          "type": "linear"})");
  CHECK(defaults.rope_scaling.type == RopeScaling::Type::kYarn);
  CHECK(defaults.rope_scaling.beta_fast == 32.0);
  CHECK(defaults.rope_scaling.beta_slow == 1.0);
  CHECK(defaults.rope_scaling.mscale == 1.0);
  CHECK(defaults.rope_scaling.mscale_all_dim == 0.0);
  // "default" and null: plain rotary embeddings.
  CHECK(llama_with(R"({"rope_type": "default"})").rope_scaling.type == RopeScaling::Type::kNone);
  CHECK(llama_with("null").rope_scaling.type == RopeScaling::Type::kNone);
}

TEST_CASE("rope_scaling: other types stay refused by the forward pass, naming the type") {
  for (const char* type : {"linear", "dynamic", "longrope", "ntk"}) {
    CAPTURE(type);
    const ModelConfig c =
        llama_with(std::string(R"({"factor": 2.0, "rope_type": ")") + type + "\"}");
    CHECK(c.rope_scaling.type == RopeScaling::Type::kUnsupported);
    REQUIRE(c.forward_unsupported.size() == 1);
    CHECK(c.forward_unsupported[0].find(std::string("rope_scaling type '") + type + "' on llama") !=
          std::string::npos);
  }
  // yarn is built after DeepSeek's code, for DeepSeek-V3 only (Transformers' yarn for other
  // families scales cos and sin differently).
  const ModelConfig yarn_llama =
      llama_with(R"({"factor": 4.0, "original_max_position_embeddings": 16, "type": "yarn"})");
  REQUIRE(yarn_llama.forward_unsupported.size() == 1);
  CHECK(yarn_llama.forward_unsupported[0].find("rope_scaling type 'yarn' on llama") !=
        std::string::npos);

  // The checkpoint opens (mask and apply work as before); the forward pass refuses it.
  const fs::path dir =
      with_rope_scaling("tiny-llama-llama3", R"({"factor": 2.0, "type": "linear"})");
  const Checkpoint ckpt = Checkpoint::open(dir);
  CHECK_THROWS_WITH_AS((void)Transformer(ckpt),
                       doctest::Contains("does not implement rope_scaling type 'linear' on llama"),
                       InvalidArgument);
  fs::remove_all(dir);
}

TEST_CASE("rope_scaling: malformed fields are errors naming the field") {
  struct Bad {
    const char* value;
    const char* message;
  };
  const Bad llama[] = {
      {R"([1, 2])", "expected an object or null, found"},
      {R"({"factor": 8.0})",
       "expected field 'rope_type' (or 'type') to name the scaling, found none"},
      {R"({"factor": 8.0, "rope_type": 3})", "expected field 'rope_type' (or 'type')"},
      {R"({"factor": 0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16, "rope_type": "llama3"})",
       "expected field 'factor' to be a finite number > 0, found"},
      {R"({"factor": -2.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16, "rope_type": "llama3"})",
       "expected field 'factor' to be a finite number > 0, found"},
      {R"({"factor": "8", "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16, "rope_type": "llama3"})",
       "expected field 'factor' to be a finite number > 0, found"},
      {R"({"low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16, "rope_type": "llama3"})",
       "expected field 'factor' (a number), found none"},
      {R"({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "rope_type": "llama3"})",
       "expected field 'original_max_position_embeddings' (a positive integer), found none"},
      {R"({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 0, "rope_type": "llama3"})",
       "expected field 'original_max_position_embeddings' to be a positive integer"},
      {R"({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16.5, "rope_type": "llama3"})",
       "expected field 'original_max_position_embeddings' to be a positive integer"},
      {R"({"factor": 8.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
           "rope_type": "llama3"})",
       "expected field 'low_freq_factor' (a number), found none"},
      {R"({"factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16, "rope_type": "llama3"})",
       "expected field 'high_freq_factor' to be greater than low_freq_factor"},
  };
  for (const Bad& b : llama) {
    CAPTURE(b.value);
    const ModelConfig c = llama_with(b.value);  // read as before: apply still works
    CHECK_MESSAGE(c.rope_scaling.invalid.find(b.message) != std::string::npos,
                  c.rope_scaling.invalid);
  }
  const Bad yarn[] = {
      {R"({"factor": 4.0, "type": "yarn"})",
       "expected field 'original_max_position_embeddings' (a positive integer), found none"},
      {R"({"factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 1, "beta_slow": 32,
           "type": "yarn"})",
       "expected field 'beta_fast' to be at least beta_slow"},
      {R"({"factor": 4.0, "original_max_position_embeddings": 64, "beta_slow": 0, "type": "yarn"})",
       "expected field 'beta_slow' to be a finite number > 0, found"},
      {R"({"factor": 4.0, "original_max_position_embeddings": 64, "mscale_all_dim": -1,
           "type": "yarn"})",
       "expected field 'mscale_all_dim' to be a finite number >= 0, found"},
      {R"({"factor": 4.0, "original_max_position_embeddings": 64, "mscale": "1", "type": "yarn"})",
       "expected field 'mscale' to be a finite number >= 0, found"},
  };
  for (const Bad& b : yarn) {
    CAPTURE(b.value);
    const ModelConfig c = deepseek_with(b.value);
    CHECK_MESSAGE(c.rope_scaling.invalid.find(b.message) != std::string::npos,
                  c.rope_scaling.invalid);
  }

  // The forward pass refuses it: InvalidArgument (the CLI's exit code 2) naming file and field.
  const fs::path dir = with_rope_scaling(
      "tiny-deepseek-v3-yarn",
      R"({"factor": -1, "original_max_position_embeddings": 64, "type": "yarn"})");
  const Checkpoint ckpt = Checkpoint::open(dir);
  CHECK_THROWS_WITH_AS((void)Transformer(ckpt),
                       doctest::Contains("config.json: rope_scaling: expected field 'factor' to be "
                                         "a finite number > 0, found"),
                       InvalidArgument);
  CHECK_THROWS_AS(TokenBatch({{1, 2}}, ckpt.config()), InvalidArgument);
  fs::remove_all(dir);
}

namespace {

// max over positions p and frequencies i of |cos_at(p)[i] - mag cos(p w_i)| and the same for sin.
double worst_table_error(const TokenBatch& batch, const std::vector<double>& w, double mag) {
  double worst = 0.0;
  for (const Eigen::Index p : {1, 7, 100, 1000, 4000}) {
    REQUIRE(batch.cos_at(p).size() == w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double a = static_cast<double>(p) * w[i];
      worst = std::max(worst, std::abs(batch.cos_at(p)[i] - mag * std::cos(a)));
      worst = std::max(worst, std::abs(batch.sin_at(p)[i] - mag * std::sin(a)));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("rope_scaling: rotary tables of the released Llama 3.1 and DeepSeek-V3 configs") {
  const std::vector<std::vector<std::int32_t>> tokens{std::vector<std::int32_t>(4001, 0)};
  // meta-llama/Llama-3.1-8B: head_dim 128, rope_theta 500000, llama3 factor 8, L 8192.
  const ModelConfig llama = ModelConfig::parse(R"({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "vocab_size": 128256, "rope_theta": 500000.0, "max_position_embeddings": 131072,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})",
                                               "config.json");
  std::vector<double> w(64);
  int kept = 0, divided = 0, blended = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double plain = std::pow(500000.0, -static_cast<double>(2 * i) / 128.0);
    const double wavelen = 2.0 * std::numbers::pi / plain;
    if (wavelen < 8192.0 / 4.0) {
      w[i] = plain;
      ++kept;
    } else if (wavelen > 8192.0) {
      w[i] = plain / 8.0;
      ++divided;
    } else {
      const double s = (8192.0 / wavelen - 1.0) / 3.0;
      w[i] = (1.0 - s) * plain / 8.0 + s * plain;
      ++blended;
    }
  }
  CHECK(kept > 0);
  CHECK(divided > 0);
  CHECK(blended > 0);
  const TokenBatch lb(tokens, llama);
  CHECK(lb.softmax_scale_factor() == 1.0);
  // F32 angles of up to 4000 rad: rounding errors near 4000 * 6e-8.
  CHECK(worst_table_error(lb, w, 1.0) < 1e-3);
  CHECK(llama.rope_scaling.type == RopeScaling::Type::kLlama3);

  // deepseek-ai/DeepSeek-V3: qk_rope_head_dim 64, yarn factor 40, L 4096, beta 32 / 1: the
  // correction range is [floor(10.37), ceil(22.97)] = [10, 23].
  std::string ds = test::slurp(ckpt_dir("tiny-deepseek-v3-yarn") / "config.json");
  const std::size_t key = ds.find("\"rope_scaling\":");
  REQUIRE(key != std::string::npos);
  const std::size_t begin = key + std::string("\"rope_scaling\":").size();
  ds.replace(begin, ds.find('}', begin) + 1 - begin,
             R"( {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                  "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                  "type": "yarn"})");
  const std::size_t rope_dim = ds.find("\"qk_rope_head_dim\": 4");
  REQUIRE(rope_dim != std::string::npos);
  ds.replace(rope_dim, std::string("\"qk_rope_head_dim\": 4").size(), "\"qk_rope_head_dim\": 64");
  const ModelConfig deepseek = ModelConfig::parse(ds, "config.json");
  REQUIRE(deepseek.mla.qk_rope_head_dim == 64);
  std::vector<double> v(32);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double plain = std::pow(10000.0, -static_cast<double>(2 * i) / 64.0);
    const double ramp = std::clamp((static_cast<double>(i) - 10.0) / 13.0, 0.0, 1.0);
    v[i] = (1.0 - ramp) * plain + ramp * plain / 40.0;
  }
  const TokenBatch db(tokens, deepseek);
  const double m = 0.1 * std::log(40.0) + 1.0;
  CHECK(db.softmax_scale_factor() == doctest::Approx(m * m).epsilon(1e-14));
  CHECK(worst_table_error(db, v, 1.0) < 1e-3);
  // Without the rounding of the correction range (Transformers' truncate = false) the tables
  // differ clearly: the test above tells them apart.
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double plain = std::pow(10000.0, -static_cast<double>(2 * i) / 64.0);
    const double low =
        64.0 * std::log(4096.0 / (32.0 * 2.0 * std::numbers::pi)) / (2.0 * std::log(10000.0));
    const double high =
        64.0 * std::log(4096.0 / (2.0 * std::numbers::pi)) / (2.0 * std::log(10000.0));
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    v[i] = (1.0 - ramp) * plain + ramp * plain / 40.0;
  }
  CHECK(worst_table_error(db, v, 1.0) > 1e-2);
}
