// Tests of the mixture-of-experts forward pass (Qwen2-MoE, Mixtral) against the independent float64
// reference of tests/data/checkpoints/make_tiny_moe.py: logits, each MoE layer's routing (chosen
// experts and weights) and block output; checkpoint validation of expert tensors. The released
// DeepSeek-V3 layout (make_tiny_fp8.py): FP8 decoding against the generator's table, dequantised
// reads, and apply on FP8 weights and the MTP layer.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/expert_pruning.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/transformer.hpp"
#include "tests/reference_tensors.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

namespace {

// tiny-deepseek-v3-fp8 (make_tiny_fp8.py): the released DeepSeek-V3 layout, block-wise FP8
// weights and an MTP layer; its reference comes from the dequantised weights.
const char* const kMoeFolders[] = {"tiny-qwen2-moe", "tiny-qwen2-moe-norm", "tiny-mixtral",
                                   "tiny-deepseek-v3", "tiny-deepseek-v3-fp8"};

std::string moe_dir(const std::string& name) { return test::data_path("checkpoints/" + name); }

using test::flat;

}  // namespace

TEST_CASE("moe: logits of Qwen2-MoE, Mixtral and DeepSeek-V3 equal the independent reference") {
  for (const std::string name : kMoeFolders) {
    CAPTURE(name);
    const Checkpoint ckpt = Checkpoint::open(moe_dir(name));
    const SafetensorsFile ref = SafetensorsFile::open(moe_dir(name) + "/reference.safetensors");
    const std::vector<std::int32_t> ids = flat<std::int32_t>(ref, "input_ids");
    const std::vector<float> expected = flat<float>(ref, "logits");  // [2, 12, vocab]
    const auto vocab = static_cast<Eigen::Index>(ckpt.config().vocab_size);
    const Transformer model(ckpt);
    const Eigen::Index len = 12;
    float worst = 0.0f;
    float scale = 0.0f;
    for (Eigen::Index s = 0; s < 2; ++s) {
      const Eigen::MatrixXf got =
          model.logits(std::span<const std::int32_t>(ids.data() + s * len, len));
      for (Eigen::Index t = 0; t < len; ++t)
        for (Eigen::Index v = 0; v < vocab; ++v) {
          const float e = expected[static_cast<std::size_t>((s * len + t) * vocab + v)];
          worst = std::max(worst, std::abs(got(v, t) - e));
          scale = std::max(scale, std::abs(e));
        }
    }
    MESSAGE(name << ": largest logit difference " << worst << " (logits up to " << scale << ")");
    CHECK(worst <= 1e-5f * std::max(1.0f, scale));
    CHECK(scale > 1.0f);  // not a trivial reference
  }
}

TEST_CASE("moe: routing and block output of every MoE layer equal the reference") {
  for (const std::string name : kMoeFolders) {
    CAPTURE(name);
    const Checkpoint ckpt = Checkpoint::open(moe_dir(name));
    const ModelConfig& c = ckpt.config();
    const SafetensorsFile ref = SafetensorsFile::open(moe_dir(name) + "/reference.safetensors");
    int moe_layers = 0;
    for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
      const std::string p = "layer." + std::to_string(layer) + ".";
      CHECK(is_moe_layer(c, layer) == ref.contains(p + "moe_input"));
      if (!is_moe_layer(c, layer)) continue;
      ++moe_layers;
      const DecoderLayerWeights w = DecoderLayerWeights::read(ckpt, layer);
      REQUIRE(w.moe.has_value());
      const Eigen::MatrixXf input = ref.read_matrix_f32(p + "moe_input").transpose();  // H x N
      const MoeRouting r = forward::moe_routing(*w.moe, input);
      const std::vector<std::int32_t> ids = flat<std::int32_t>(ref, p + "topk_ids");
      const std::vector<float> weights = flat<float>(ref, p + "topk_weights");
      const Eigen::Index k = r.chosen.rows();
      REQUIRE(k == c.moe.num_experts_per_tok);
      float weight_diff = 0.0f;
      for (Eigen::Index t = 0; t < input.cols(); ++t) {
        // The reference lists a token's experts by increasing id.
        std::vector<std::pair<int, float>> mine;
        for (Eigen::Index j = 0; j < k; ++j) mine.emplace_back(r.chosen(j, t), r.weights(j, t));
        std::sort(mine.begin(), mine.end());
        for (Eigen::Index j = 0; j < k; ++j) {
          const auto at = static_cast<std::size_t>(t * k + j);
          CHECK(mine[static_cast<std::size_t>(j)].first == ids[at]);
          weight_diff = std::max(weight_diff,
                                 std::abs(mine[static_cast<std::size_t>(j)].second - weights[at]));
        }
      }
      CHECK(weight_diff < 1e-6f);
      const Eigen::MatrixXf out = forward::moe_block(*w.moe, input, r);
      const Eigen::MatrixXf expected = ref.read_matrix_f32(p + "moe_output").transpose();
      CHECK((out - expected).cwiseAbs().maxCoeff() <=
            1e-5f * std::max(1.0f, expected.cwiseAbs().maxCoeff()));
      // The contributions add up to the routed part: the block output less the shared expert.
      Eigen::MatrixXf contributions;
      const Eigen::MatrixXf again = forward::moe_block(*w.moe, input, r, &contributions);
      Eigen::MatrixXf routed = Eigen::MatrixXf::Zero(input.rows(), input.cols());
      for (Eigen::Index t = 0; t < input.cols(); ++t)
        for (Eigen::Index j = 0; j < k; ++j) routed.col(t) += contributions.col(t * k + j);
      MoeBlockWeights no_shared = *w.moe;
      no_shared.shared = {};
      no_shared.shared_gate.resize(0);
      CHECK((forward::moe_block(no_shared, input, r) - routed).cwiseAbs().maxCoeff() < 1e-5f);
      CHECK((again - out).cwiseAbs().maxCoeff() == 0.0f);
      // Expert-major reading: each expert some token chose is read once per call, no other one.
      MoeBlockWeights counted = *w.moe;
      std::vector<int> reads(static_cast<std::size_t>(counted.num_experts), 0);
      std::mutex reads_mutex;
      counted.read_expert = [&, inner = w.moe->read_expert](int e) {
        {
          const std::lock_guard<std::mutex> lock(reads_mutex);
          ++reads[static_cast<std::size_t>(e)];
        }
        return inner(e);
      };
      CHECK(forward::moe_block(counted, input, r) == out);
      for (int e = 0; e < counted.num_experts; ++e)
        CHECK(reads[static_cast<std::size_t>(e)] == ((r.chosen.array() == e).any() ? 1 : 0));
    }
    CHECK(moe_layers >= 1);
  }
}

TEST_CASE("moe: the block's output does not depend on the thread count, at sizes Eigen splits") {
  // Experts run in parallel and their GEMMs inside that region; at these sizes Eigen would split
  // a GEMM nested in a team of one over its own threads and round differently.
  std::mt19937 rng(22);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  auto random = [&](Eigen::Index rows, Eigen::Index cols) {
    return Eigen::MatrixXf(Eigen::MatrixXf::NullaryExpr(rows, cols, [&] { return normal(rng); }));
  };
  const Eigen::Index hidden = 1536, width = 1024, tokens = 64;
  MoeBlockWeights block;
  block.router = random(4, hidden) * 20.0f;
  block.top_k = 2;
  std::vector<ExpertWeights> experts(4);
  for (ExpertWeights& e : experts) {
    e.gate = random(width, hidden);
    e.up = random(width, hidden);
    e.down = random(hidden, width);
  }
  block.hold_experts(experts);
  const Eigen::MatrixXf x = random(hidden, tokens) * 20.0f;
  const MoeRouting r = forward::moe_routing(block, x);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Eigen::MatrixXf one = forward::moe_block(block, x, r);
  omp_set_num_threads(2);
  const Eigen::MatrixXf two = forward::moe_block(block, x, r);
  omp_set_num_threads(threads);
  CHECK(one == two);
  // And it is the routed sum, computed here in double.
  Eigen::MatrixXd expected = Eigen::MatrixXd::Zero(hidden, tokens);
  for (Eigen::Index t = 0; t < tokens; ++t)
    for (Eigen::Index j = 0; j < block.top_k; ++j) {
      const ExpertWeights& e = experts[static_cast<std::size_t>(r.chosen(j, t))];
      const Eigen::VectorXd xt = x.col(t).cast<double>();
      const Eigen::ArrayXd g = (e.gate.cast<double>() * xt).array();
      const Eigen::VectorXd a =
          (g / (1.0 + (-g).exp()) * (e.up.cast<double>() * xt).array()).matrix();
      expected.col(t) += static_cast<double>(r.weights(j, t)) * (e.down.cast<double>() * a);
    }
  CHECK((one.cast<double>() - expected).cwiseAbs().maxCoeff() <=
        1e-5 * std::max(1.0, expected.cwiseAbs().maxCoeff()));
}

TEST_CASE("moe: expert tensors the config does not count are refused, naming them") {
  const std::filesystem::path src = moe_dir("tiny-mixtral");
  const std::filesystem::path dir = test::temp_dir("moe_cfg");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(src / "model.safetensors", dir / "model.safetensors");
  // The config says 3 experts, the file holds 4: expert 3 is not described, the router has 4 rows.
  std::string cfg = test::slurp(src / "config.json");
  const auto at = cfg.find("\"num_local_experts\": 4");
  REQUIRE(at != std::string::npos);
  cfg.replace(at, 22, "\"num_local_experts\": 3");
  test::spit(dir / "config.json", cfg);
  CHECK_THROWS_WITH_AS((void)Checkpoint::open(dir),
                       doctest::Contains("expected experts 0 to 2 (number of experts in "
                                         "config.json) with w1.weight, w3.weight and w2.weight, "
                                         "found tensor 'model.layers.0.block_sparse_moe.experts.3"),
                       ParseError);
  // The router's 4 rows are among the other problems counted.
  CHECK_THROWS_WITH_AS((void)Checkpoint::open(dir), doctest::Contains("7 more problem(s)"),
                       ParseError);
  // Fewer experts than chosen per token: a clear config error.
  cfg.replace(cfg.find("\"num_local_experts\": 3"), 22, "\"num_local_experts\": 1");
  test::spit(dir / "config.json", cfg);
  CHECK_THROWS_WITH_AS((void)Checkpoint::open(dir),
                       doctest::Contains("'num_experts_per_tok' to be at most the number of "
                                         "experts 1, found 2"),
                       ParseError);
  std::filesystem::remove_all(dir);
}

namespace {

// config.json of tiny-deepseek-v3 with `field`'s value text replaced by `value`.
std::string deepseek_config_with(const std::string& field, const std::string& value) {
  std::string cfg = test::slurp(std::filesystem::path(moe_dir("tiny-deepseek-v3")) / "config.json");
  const std::string key = "\"" + field + "\": ";
  const auto at = cfg.find(key);
  REQUIRE(at != std::string::npos);
  const auto end = cfg.find_first_of(",\n", at + key.size());
  cfg.replace(at + key.size(), end - at - key.size(), value);
  return cfg;
}

}  // namespace

TEST_CASE("moe: DeepSeek-V3 config: routing groups, latent attention, errors naming the field") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir("tiny-deepseek-v3"));
  const ModelConfig& c = ckpt.config();
  CHECK(c.family == ModelFamily::kDeepseekV3);
  CHECK(c.moe.num_experts == 8);
  CHECK(c.moe.num_experts_per_tok == 2);
  CHECK(c.moe.n_group == 4);
  CHECK(c.moe.topk_group == 2);
  CHECK(c.moe.routed_scaling_factor == 2.5);
  CHECK(c.moe.sigmoid_scores);
  CHECK(c.moe.shared_expert_intermediate_size == 6);
  CHECK(c.mla.q_lora_rank == 12);
  CHECK(c.mla.kv_lora_rank == 8);
  CHECK(c.mla.rope_interleave);
  CHECK(c.forward_unsupported.empty());
  CHECK_FALSE(is_moe_layer(c, 0));  // first_k_dense_replace 1
  CHECK(is_moe_layer(c, 1));
  CHECK(is_moe_layer(c, 2));
  // to_json writes an edited expert count back under n_routed_experts, the rest unchanged.
  ModelConfig edited = c;
  edited.moe.num_experts = 4;
  const ModelConfig again = ModelConfig::parse(edited.to_json(), "edited");
  CHECK(again.moe.num_experts == 4);
  CHECK(again.moe.n_group == 4);
  CHECK(again.mla.qk_rope_head_dim == 4);
  CHECK(edited.to_json().find("\"n_routed_experts\": 4") != std::string::npos);

  const std::pair<std::pair<const char*, const char*>, const char*> bad[] = {
      {{"n_group", "3"}, "expected field 'n_group' to divide n_routed_experts 8"},
      {{"topk_group", "5"}, "expected field 'topk_group' to be at most n_group 4"},
      {{"num_experts_per_tok", "5"},
       "expected field 'num_experts_per_tok' to be at most the experts of topk_group 2 groups "
       "(4), found 5"},
      {{"scoring_func", "\"softmax\""}, "expected field 'scoring_func' to be \"sigmoid\""},
      {{"topk_method", "\"greedy\""}, "expected field 'topk_method' to be \"noaux_tc\""},
      {{"qk_rope_head_dim", "3"}, "expected field 'qk_rope_head_dim' to be even"},
  };
  for (const auto& [edit, message] : bad) {
    CAPTURE(edit.first);
    CHECK_THROWS_WITH_AS(
        (void)ModelConfig::parse(deepseek_config_with(edit.first, edit.second), "config.json"),
        doctest::Contains(message), ParseError);
  }
  // q_lora_rank null: one q_proj; yarn rope_scaling without original_max_position_embeddings:
  // read, but the forward pass refuses it (tests/test_rope_scaling.cpp).
  const ModelConfig no_lora =
      ModelConfig::parse(deepseek_config_with("q_lora_rank", "null"), "config.json");
  CHECK(no_lora.mla.q_lora_rank == 0);
  bool has_q_proj = false;
  for (const ExpectedTensor& t : known_layer_tensors(no_lora, 1))
    if (t.name == "self_attn.q_proj.weight")
      has_q_proj = t.shape == std::vector<std::int64_t>{32, 16};
  CHECK(has_q_proj);
  const ModelConfig yarn = ModelConfig::parse(
      deepseek_config_with("rope_scaling", "{\"type\": \"yarn\", \"factor\": 40}"), "config.json");
  CHECK(yarn.forward_unsupported.empty());
  CHECK(yarn.rope_scaling.invalid.find("original_max_position_embeddings") != std::string::npos);
}

TEST_CASE("moe: the released DeepSeek-V3 config.json: 58 MoE layers of 256 experts, yarn") {
  // deepseek-ai/DeepSeek-V3's config.json (auto_map and quantization_config details shortened).
  const std::string released = R"({
    "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1,
    "first_k_dense_replace": 3, "hidden_act": "silu", "hidden_size": 7168,
    "initializer_range": 0.02, "intermediate_size": 18432, "kv_lora_rank": 512,
    "max_position_embeddings": 163840, "model_type": "deepseek_v3", "moe_intermediate_size": 2048,
    "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1,
    "norm_topk_prob": true, "num_attention_heads": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
    "pretraining_tp": 1, "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                            "weight_block_size": [128, 128]},
    "rms_norm_eps": 1e-06,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                     "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                     "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
    "seq_aux": true, "tie_word_embeddings": false, "topk_group": 4, "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16", "transformers_version": "4.33.1", "use_cache": true,
    "v_head_dim": 128, "vocab_size": 129280})";
  const ModelConfig c = ModelConfig::parse(released, "config.json");
  int moe_layers = 0;
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) moe_layers += is_moe_layer(c, l) ? 1 : 0;
  CHECK(moe_layers == 58);
  CHECK_FALSE(is_moe_layer(c, 2));
  CHECK(is_moe_layer(c, 3));
  CHECK(c.moe.num_experts == 256);
  CHECK(c.moe.shared_expert_intermediate_size == 2048);
  CHECK(c.forward_unsupported.empty());
  CHECK(c.rope_scaling.type == RopeScaling::Type::kYarn);
  CHECK(c.rope_scaling.factor == 40.0);
  CHECK(c.rope_scaling.original_max_position_embeddings == 4096);
  CHECK(c.rope_scaling.invalid.empty());
  // Shapes of an MoE layer: MLA projections, the router with its bias, 256 experts, the shared one.
  std::map<std::string, std::vector<std::int64_t>> shape;
  for (const ExpectedTensor& t : expected_layer_tensors(c, 3)) shape[t.name] = t.shape;
  const std::string p = "model.layers.3.";
  CHECK(shape[p + "self_attn.q_b_proj.weight"] == std::vector<std::int64_t>{128 * 192, 1536});
  CHECK(shape[p + "self_attn.kv_a_proj_with_mqa.weight"] == std::vector<std::int64_t>{576, 7168});
  CHECK(shape[p + "self_attn.kv_b_proj.weight"] == std::vector<std::int64_t>{128 * 256, 512});
  CHECK(shape[p + "self_attn.o_proj.weight"] == std::vector<std::int64_t>{7168, 128 * 128});
  CHECK(shape[p + "mlp.gate.e_score_correction_bias"] == std::vector<std::int64_t>{256});
  CHECK(shape[p + "mlp.experts.255.down_proj.weight"] == std::vector<std::int64_t>{7168, 2048});
  CHECK(shape[p + "mlp.shared_experts.up_proj.weight"] == std::vector<std::int64_t>{2048, 7168});
  CHECK(shape.size() == 2 + 7 + 2 + 3 * 256 + 3);  // norms, MLA, router and bias, experts, shared
  // Keep counts: multiples of 8 groups, at least 2 per group (4 groups x 2 >= top-8).
  CHECK(expert_keep_count(c, 0.5) == 128);
  CHECK_THROWS_WITH_AS((void)expert_keep_count(c, 0.95),
                       doctest::Contains("not a multiple of n_group = 8"), InvalidArgument);
  CHECK_THROWS_WITH_AS((void)expert_keep_count(c, 1.0 - 8.0 / 256.0),
                       doctest::Contains("topk_group = 4 groups hold 4, fewer than "
                                         "num_experts_per_tok = 8"),
                       InvalidArgument);
}

TEST_CASE("moe: DeepSeek-V3 checkpoint without the router bias or with the wrong rope layout") {
  const std::filesystem::path src = moe_dir("tiny-deepseek-v3");
  const std::filesystem::path dir = test::temp_dir("moe_deepseek");
  std::filesystem::create_directories(dir);
  {
    const SafetensorsFile f = SafetensorsFile::open(src / "model.safetensors");
    SafetensorsWriter w;
    for (const std::string& name : f.tensor_names())
      if (name != "model.layers.2.mlp.gate.e_score_correction_bias") w.add_from(f, name);
    w.write(dir / "model.safetensors");
  }
  std::filesystem::copy_file(src / "config.json", dir / "config.json");
  CHECK_THROWS_WITH_AS((void)Checkpoint::open(dir),
                       doctest::Contains("expected tensor "
                                         "'model.layers.2.mlp.gate.e_score_correction_bias' with "
                                         "shape [8]"),
                       ParseError);
  // rope_interleave false (rotate-half pairs) runs, and gives clearly other logits than the
  // reference, which the generator made to tell the layouts apart.
  std::filesystem::remove(dir / "model.safetensors");
  std::filesystem::copy_file(src / "model.safetensors", dir / "model.safetensors");
  std::filesystem::remove(dir / "config.json");
  test::spit(dir / "config.json", deepseek_config_with("rope_interleave", "false"));
  const Checkpoint half = Checkpoint::open(dir);
  const Checkpoint ref = Checkpoint::open(src);
  const SafetensorsFile r = SafetensorsFile::open(src / "reference.safetensors");
  const std::vector<std::int32_t> ids = flat<std::int32_t>(r, "input_ids");
  const std::span<const std::int32_t> first(ids.data(), 12);
  const float diff =
      (Transformer(half).logits(first) - Transformer(ref).logits(first)).cwiseAbs().maxCoeff();
  MESSAGE("rotate-half vs interleaved rope: max logit difference " << diff);
  CHECK(diff > 1e-3f);
  std::filesystem::remove_all(dir);
}

namespace {

// Calibration statistics of a tiny MoE checkpoint on random token ids, written to `dir`.
std::filesystem::path calibrate_tiny(const Checkpoint& ckpt, const std::filesystem::path& dir,
                                     std::vector<std::int32_t>& ids) {
  std::mt19937_64 rng(7);
  ids.resize(600);
  for (std::int32_t& t : ids) t = static_cast<std::int32_t>(rng() % ckpt.config().vocab_size);
  CalibrationOptions co;
  co.context = 40;
  co.moe_sample_tokens = 250;  // every 3rd token: the sampled inputs are a strided subset
  const auto path = dir / "stats.safetensors";
  write_calibration_statistics(collect_calibration_statistics(Transformer(ckpt), ids, co), ckpt,
                               path);
  return path;
}

constexpr MaskMethod kExpertMethods[] = {MaskMethod::kQubo, MaskMethod::kDiagonal,
                                         MaskMethod::kExpertFrequency, MaskMethod::kExpertWeight,
                                         MaskMethod::kExhaustive};

// Expert masks of a tiny checkpoint's two MoE layers at sparsity 0.5 (keep 4 of 8; the qubo
// method with the exact solver); `total` gets the sum of their re-routed errors.
// Options of a run masking the experts alone.
MaskRunOptions expert_mask_options(double sparsity, MaskMethod m) {
  MaskRunOptions mo;
  mo.mlp = false;
  mo.experts = true;
  mo.sparsity = sparsity;
  mo.method = m;
  return mo;
}

Masks half_expert_masks(const Checkpoint& ckpt, const CalibrationStatsFile& stats, MaskMethod m,
                        double& total) {
  MaskRunOptions mo = expert_mask_options(0.5, m);
  mo.solver = "exact";
  Masks masks = compute_masks(ckpt, &stats, mo);
  REQUIRE(masks.entries.size() == 2);
  total = 0.0;
  for (const LayerMask& e : masks.entries) {
    CHECK(e.unit == UnitKind::kExperts);
    REQUIRE(e.kept.size() == 4);
    REQUIRE(e.rerouted_error.has_value());
    total += *e.rerouted_error;
  }
  return masks;
}

// Applies expert masks to `out` and checks every pruned layer: the kept experts renumbered in
// order, and its routed block output on the sampled inputs differing from the original's by
// exactly the recorded re-routed error. Returns the pruned checkpoint.
Checkpoint apply_and_check_experts(const Checkpoint& ckpt, const CalibrationStatsFile& stats,
                                   const Masks& masks, const std::filesystem::path& out) {
  (void)apply_masks(ckpt, masks, &stats, out);
  Checkpoint pruned = Checkpoint::open(out);
  for (const LayerMask& e : masks.entries) {
    CAPTURE(e.layer);
    const ExpertStats s = stats.read_experts(e.layer);
    MoeBlockWeights before = *DecoderLayerWeights::read(ckpt, e.layer).moe;
    MoeBlockWeights after = *DecoderLayerWeights::read(pruned, e.layer).moe;
    for (std::size_t j = 0; j < e.kept.size(); ++j)
      CHECK(after.expert(static_cast<int>(j)).down == before.expert(e.kept[j]).down);
    CHECK(after.shared.down == before.shared.down);
    before.shared = after.shared = {};
    before.shared_gate.resize(0);
    after.shared_gate.resize(0);
    const Eigen::MatrixXf y =
        forward::moe_block(before, s.inputs, forward::moe_routing(before, s.inputs));
    const Eigen::MatrixXf y_k =
        forward::moe_block(after, s.inputs, forward::moe_routing(after, s.inputs));
    const double measured = (y - y_k).cast<double>().squaredNorm();
    REQUIRE(e.rerouted_error.has_value());
    CHECK(*e.rerouted_error == doctest::Approx(measured).epsilon(1e-5));
  }
  return pruned;
}

}  // namespace

TEST_CASE("moe: expert statistics equal sums over the forward pass's own traces") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir("tiny-qwen2-moe-norm"));
  const std::filesystem::path dir = test::temp_dir("moe_stats");
  std::vector<std::int32_t> ids;
  const CalibrationStatsFile stats = CalibrationStatsFile::open(calibrate_tiny(ckpt, dir, ids));
  stats.check_against(ckpt.config(), checkpoint_config_hash(ckpt));
  CHECK(stats.num_experts() == 8);
  CHECK_FALSE(stats.has_experts(0));  // mlp_only_layers [0]
  CHECK(stats.has(StatsKind::kMlp));  // layer 0's dense MLP
  // Reference: the same windows run one at a time, contributions summed directly in double.
  const int k = 3;
  std::map<int, Eigen::MatrixXd> gram;
  std::map<int, Eigen::VectorXd> count, weight;
  std::map<int, std::vector<Eigen::VectorXf>> inputs;
  std::int64_t batch_first = 0;
  ForwardHooks hooks;
  hooks.moe = [&](int layer, int sequence, const MoeTrace& tr) {
    const std::int64_t offset = batch_first + 40 * sequence;
    if (!gram.count(layer)) {
      gram[layer] = Eigen::MatrixXd::Zero(8, 8);
      count[layer] = weight[layer] = Eigen::VectorXd::Zero(8);
    }
    for (Eigen::Index t = 0; t < tr.routing->chosen.cols(); ++t) {
      Eigen::MatrixXd c = Eigen::MatrixXd::Zero(ckpt.config().hidden_size, 8);
      for (int j = 0; j < k; ++j) {
        const int e = tr.routing->chosen(j, t);
        c.col(e) = tr.contributions->col(t * k + j).cast<double>();
        count[layer][e] += 1;
        weight[layer][e] += tr.routing->weights(j, t);
      }
      gram[layer] += c.transpose() * c;
      if ((offset + t) % 3 == 0) inputs[layer].push_back(tr.input->col(t));
    }
  };
  // The windows in calibration's batches of 8 (the same columns side by side, the same rounding).
  for (std::size_t b = 0; b < ids.size(); b += 8 * 40) {
    std::vector<std::vector<std::int32_t>> batch;
    for (std::size_t w = b; w < std::min(ids.size(), b + 8 * 40); w += 40)
      batch.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(w),
                         ids.begin() + static_cast<std::ptrdiff_t>(w + 40));
    batch_first = static_cast<std::int64_t>(b);
    Transformer(ckpt).run_layers(batch, hooks);
  }
  for (const int layer : {1, 2}) {
    CAPTURE(layer);
    const ExpertStats s = stats.read_experts(layer);
    CHECK((s.gram - gram[layer]).cwiseAbs().maxCoeff() <= 1e-9 * gram[layer].cwiseAbs().maxCoeff());
    CHECK(s.tokens == count[layer]);
    CHECK(s.tokens.sum() == doctest::Approx(600.0 * k));
    CHECK((s.weight - weight[layer]).cwiseAbs().maxCoeff() < 1e-9);
    REQUIRE(s.inputs.cols() == static_cast<Eigen::Index>(inputs[layer].size()));
    for (std::size_t i = 0; i < inputs[layer].size(); ++i)
      CHECK((s.inputs.col(static_cast<Eigen::Index>(i)) - inputs[layer][i]).cwiseAbs().maxCoeff() ==
            0.0f);
  }
  // One batch per chunk (the same batches of 8 windows, so the same rounding): each sampled input
  // (F32, two to a double of the running sums) comes from one of the 2 chunks and passes through
  // the other's zeros unchanged.
  CalibrationOptions one_per_chunk;
  one_per_chunk.context = 40;
  one_per_chunk.moe_sample_tokens = 250;
  one_per_chunk.batches_per_chunk = 1;
  const CalibrationStatistics split =
      collect_calibration_statistics(Transformer(ckpt), ids, one_per_chunk);
  for (const auto& [layer, list] : inputs) {
    CAPTURE(layer);
    const Eigen::MatrixXf& got = split.experts[static_cast<std::size_t>(layer)].inputs;
    REQUIRE(got.cols() == static_cast<Eigen::Index>(list.size()));
    for (std::size_t i = 0; i < list.size(); ++i)
      CHECK(got.col(static_cast<Eigen::Index>(i)) == list[i]);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("moe: expert masks through mask and apply; the re-routed error is the applied model's") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir("tiny-qwen2-moe-norm"));
  const std::filesystem::path dir = test::temp_dir("moe_apply");
  std::vector<std::int32_t> ids;
  const CalibrationStatsFile stats = CalibrationStatsFile::open(calibrate_tiny(ckpt, dir, ids));

  // The QUBO's energy is the error without re-routing: brute force over every kept set of 4.
  const ExpertStats s1 = stats.read_experts(1);
  const LayerProblem problem = build_expert_problem(s1, 1, 4);
  for (std::uint32_t bits = 0; bits < 256; ++bits) {
    if (__builtin_popcount(bits) != 4) continue;
    const Assignment x = test::bits_to_assignment(bits, 8);
    Eigen::VectorXd removed(8);
    for (int e = 0; e < 8; ++e) removed[e] = 1.0 - x[static_cast<std::size_t>(e)];
    CHECK(problem.model.energy(x) ==
          doctest::Approx(removed.dot(s1.gram * removed)).epsilon(1e-12));
  }

  std::map<std::string, double> rerouted;
  for (const MaskMethod m : kExpertMethods) {
    double total = 0.0;
    const Masks masks = half_expert_masks(ckpt, stats, m, total);
    for (const LayerMask& e : masks.entries) {
      // The qubo method records its best sample's own error; re-scoring and swaps only lower it.
      CHECK(e.qubo_rerouted_error.has_value() == (m == MaskMethod::kQubo));
      if (e.qubo_rerouted_error) CHECK(*e.rerouted_error <= *e.qubo_rerouted_error);
    }
    rerouted[mask_method_name(m)] = total;
    if (m != MaskMethod::kQubo) continue;
    // Apply, then run the pruned layers' blocks on the sampled inputs: their routed output differs
    // from the original's by exactly the recorded re-routed error.
    const Checkpoint pruned = apply_and_check_experts(ckpt, stats, masks, dir / "pruned");
    CHECK(pruned.config().moe.num_experts == 4);
    CHECK(pruned.config().moe.num_experts_per_tok == 3);
    // Perplexity-level sanity: the pruned model still runs.
    CHECK(Transformer(pruned).logits(std::span<const std::int32_t>(ids.data(), 20)).allFinite());
  }
  // The exhaustive search is a lower bound for every method on the measured error.
  for (const auto& [name, total] : rerouted) {
    CAPTURE(name);
    CHECK(rerouted["exhaustive"] <= total + 1e-12);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("moe: clear errors for expert pruning that cannot work") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir("tiny-qwen2-moe-norm"));  // top-3 of 8
  MaskRunOptions mo;
  mo.mlp = false;
  mo.experts = true;
  mo.sparsity = 0.75;  // keeps 2 < 3
  CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, nullptr, mo),
                       doctest::Contains("fewer than num_experts_per_tok = 3"), InvalidArgument);
  mo.sparsity = 0.5;
  CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, nullptr, mo),
                       doctest::Contains("expert pruning needs the expert statistics"),
                       InvalidArgument);
  const Checkpoint dense = Checkpoint::open(test::data_path("checkpoints/tiny-llama-gqa"));
  CHECK_THROWS_WITH_AS((void)compute_masks(dense, nullptr, mo), doctest::Contains("has no experts"),
                       InvalidArgument);
  mo.experts = false;
  mo.mlp = true;
  mo.sparsity = 0.5;
  // MLP neurons of a MoE layer are not a unit this version prunes: only the dense layer 0 is.
  const Masks m = compute_masks(ckpt, nullptr, mo);
  REQUIRE(m.entries.size() == 1);
  CHECK(m.entries[0].layer == 0);
}

TEST_CASE("moe: the example MoE model's logits and perplexity equal its torch reference") {
  const Checkpoint ckpt = Checkpoint::open(test::data_path("../../examples/model_moe/checkpoint"));
  const SafetensorsFile ref =
      SafetensorsFile::open(test::data_path("model_moe/reference.safetensors"));
  const Transformer model(ckpt);
  const std::vector<std::int32_t> ids = flat<std::int32_t>(ref, "logits_input_ids");
  const Eigen::MatrixXf expected = ref.read_matrix_f32("logits");  // tokens x vocab
  const Eigen::MatrixXf got = model.logits(ids);
  const float diff = (got - expected.transpose()).cwiseAbs().maxCoeff();
  MESSAGE("max |logit - torch logit| = " << diff);
  CHECK(diff < 1e-3f);
  const std::vector<std::int32_t> text = flat<std::int32_t>(ref, "ppl_input_ids");
  const Eigen::VectorXd lp = ref.read_vector("ppl_logprobs");
  PerplexityOptions opts;
  opts.context = std::stoll(ref.metadata().at("ppl_context"));
  const PerplexityResult r = evaluate_perplexity(model, text, opts);
  CHECK(r.num_predicted == lp.size());
  const double torch = std::exp(-lp.mean());
  MESSAGE("perplexity " << r.perplexity << " vs torch " << torch);
  CHECK(std::abs(r.perplexity - torch) / torch < 1e-4);
}

TEST_CASE("moe: Mixtral experts removed by apply: num_local_experts, w1/w2/w3 renumbered") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir("tiny-mixtral"));  // 4 experts, top-2
  const std::filesystem::path dir = test::temp_dir("moe_mixtral");
  std::vector<std::int32_t> ids;
  const CalibrationStatsFile stats = CalibrationStatsFile::open(calibrate_tiny(ckpt, dir, ids));
  const Masks masks =
      compute_masks(ckpt, &stats, expert_mask_options(0.5, MaskMethod::kExhaustive));
  REQUIRE(masks.entries.size() == 2);
  (void)apply_masks(ckpt, masks, &stats, dir / "pruned");
  const Checkpoint pruned = Checkpoint::open(dir / "pruned");
  CHECK(pruned.config().moe.num_experts == 2);
  CHECK(test::slurp(dir / "pruned" / "config.json").find("\"num_local_experts\": 2") !=
        std::string::npos);
  for (const LayerMask& e : masks.entries) {
    const std::string p = "model.layers." + std::to_string(e.layer) + ".block_sparse_moe.";
    for (std::size_t j = 0; j < 2; ++j)
      CHECK(pruned.read_matrix(p + "experts." + std::to_string(j) + ".w2.weight") ==
            ckpt.read_matrix(p + "experts." + std::to_string(e.kept[j]) + ".w2.weight"));
    CHECK_FALSE(pruned.contains(p + "experts.2.w1.weight"));
    const Eigen::MatrixXd router = ckpt.read_matrix(p + "gate.weight");
    const Eigen::MatrixXd kept_router = pruned.read_matrix(p + "gate.weight");
    for (Eigen::Index j = 0; j < 2; ++j) CHECK(kept_router.row(j) == router.row(e.kept[j]));
  }
  CHECK(Transformer(pruned).logits(std::span<const std::int32_t>(ids.data(), 16)).allFinite());
  std::filesystem::remove_all(dir);
}

TEST_CASE("moe: DeepSeek-V3 experts: one keep constraint per routing group, re-routed as grouped") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir("tiny-deepseek-v3"));  // 8 experts, 4 groups
  const std::filesystem::path dir = test::temp_dir("moe_deepseek_apply");
  std::vector<std::int32_t> ids;
  const CalibrationStatsFile stats = CalibrationStatsFile::open(calibrate_tiny(ckpt, dir, ids));
  CHECK_FALSE(stats.has_experts(0));         // first_k_dense_replace 1
  CHECK(stats.has(StatsKind::kMlp));         // the dense layer 0's MLP
  CHECK_FALSE(stats.has(StatsKind::kAttn));  // latent attention: no head statistics

  // The QUBO: "keep 1 of each group of 2"; its energy is the unrouted error of the removed set.
  const ExpertStats s1 = stats.read_experts(1);
  const LayerProblem problem = build_expert_problem(s1, 1, 4, 4);
  REQUIRE(problem.model.constraints().size() == 4);
  for (int g = 0; g < 4; ++g) {
    CHECK(problem.model.constraints()[static_cast<std::size_t>(g)].k == 1);
    CHECK(problem.model.constraints()[static_cast<std::size_t>(g)].variables ==
          std::vector<int>{2 * g, 2 * g + 1});
  }
  int feasible = 0;
  for (std::uint32_t bits = 0; bits < 256; ++bits) {
    const Assignment x = test::bits_to_assignment(bits, 8);
    bool balanced = true;
    for (int g = 0; g < 4; ++g) balanced = balanced && (x[2 * g] + x[2 * g + 1] == 1);
    CHECK(problem.model.is_feasible(x) == balanced);
    feasible += balanced ? 1 : 0;
  }
  CHECK(feasible == 16);

  // The re-routed error of a kept set is that of the block whose router lost the other experts'
  // rows and bias entries (forward::moe_routing's own grouped choice over 4 groups of 1).
  const MoeBlockWeights block = *DecoderLayerWeights::read(ckpt, 1).moe;
  const ExpertRerouting scorer(block, s1.inputs);
  CHECK(scorer.num_groups() == 4);
  const std::vector<int> some = {1, 2, 4, 7};
  MoeBlockWeights sub = block;
  sub.shared = {};
  std::vector<ExpertWeights> kept_experts;
  sub.router.resize(4, block.router.cols());
  sub.score_bias.resize(4);
  for (std::size_t j = 0; j < some.size(); ++j) {
    kept_experts.push_back(block.expert(some[j]));
    sub.router.row(static_cast<Eigen::Index>(j)) = block.router.row(some[j]);
    sub.score_bias[static_cast<Eigen::Index>(j)] = block.score_bias[some[j]];
  }
  sub.hold_experts(std::move(kept_experts));
  MoeBlockWeights full = block;
  full.shared = {};
  const Eigen::MatrixXf y =
      forward::moe_block(full, s1.inputs, forward::moe_routing(full, s1.inputs));
  const Eigen::MatrixXf y_k =
      forward::moe_block(sub, s1.inputs, forward::moe_routing(sub, s1.inputs));
  CHECK(scorer.error(some) ==
        doctest::Approx((y - y_k).cast<double>().squaredNorm()).epsilon(1e-5));
  CHECK_THROWS_WITH_AS((void)scorer.error({0, 2, 4}), doctest::Contains("do not form 4 groups"),
                       InvalidArgument);
  // Exhaustive search: the least error over the 16 balanced sets, found by listing them here.
  double least = 1e300;
  for (std::uint32_t bits = 0; bits < 16; ++bits) {
    std::vector<int> kept;
    for (int g = 0; g < 4; ++g) kept.push_back(2 * g + static_cast<int>((bits >> g) & 1U));
    least = std::min(least, scorer.error(kept));
  }
  CHECK(subset_count(8, 4, 4) == 16);
  CHECK(scorer.error(best_rerouted_subset(scorer, 4)) == least);

  std::map<std::string, double> rerouted;
  for (const MaskMethod m : kExpertMethods) {
    CAPTURE(std::string(mask_method_name(m)));
    double total = 0.0;
    const Masks masks = half_expert_masks(ckpt, stats, m, total);
    for (const LayerMask& e : masks.entries)  // one expert of each routing group of 2
      for (int g = 0; g < 4; ++g) CHECK(e.kept[static_cast<std::size_t>(g)] / 2 == g);
    rerouted[mask_method_name(m)] = total;
    MESSAGE("DeepSeek-V3 " << std::string(mask_method_name(m)) << ": re-routed error " << total);
    if (m != MaskMethod::kQubo) continue;
    // Apply: the router's rows and bias entries sliced, the experts renumbered, and the pruned
    // blocks' routed output differs from the original's by the recorded re-routed error.
    const Checkpoint pruned = apply_and_check_experts(ckpt, stats, masks, dir / "pruned");
    CHECK(pruned.config().moe.num_experts == 4);
    CHECK(pruned.config().moe.n_group == 4);
    CHECK(test::slurp(dir / "pruned" / "config.json").find("\"n_routed_experts\": 4") !=
          std::string::npos);
    for (const LayerMask& e : masks.entries) {
      const std::string p = "model.layers." + std::to_string(e.layer) + ".mlp.gate.";
      const Eigen::MatrixXd bias = ckpt.read_matrix(p + "e_score_correction_bias");
      const Eigen::MatrixXd kept_bias = pruned.read_matrix(p + "e_score_correction_bias");
      REQUIRE(kept_bias.rows() == 4);
      for (Eigen::Index j = 0; j < 4; ++j) CHECK(kept_bias(j, 0) == bias(e.kept[j], 0));
      const Eigen::MatrixXd router = ckpt.read_matrix(p + "weight");
      const Eigen::MatrixXd kept_router = pruned.read_matrix(p + "weight");
      for (Eigen::Index j = 0; j < 4; ++j) CHECK(kept_router.row(j) == router.row(e.kept[j]));
    }
    CHECK(Transformer(pruned).logits(std::span<const std::int32_t>(ids.data(), 20)).allFinite());
    // Masks that keep unequal numbers per routing group are refused by apply.
    Masks uneven = masks;
    uneven.entries[0].kept = {0, 1, 2, 4};
    CHECK_THROWS_WITH_AS((void)apply_masks(ckpt, uneven, &stats, dir / "uneven"),
                         doctest::Contains("needs the same number in every group"),
                         InvalidArgument);
  }
  for (const auto& [name, total] : rerouted) {
    CAPTURE(name);
    CHECK(rerouted["exhaustive"] <= total + 1e-12);
  }

  // Keep counts grouped routing cannot use, and heads of latent attention: clear errors.
  MaskRunOptions mo;
  mo.mlp = false;
  mo.experts = true;
  mo.sparsity = 0.25;  // keeps 6, not a multiple of 4 groups
  CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, &stats, mo),
                       doctest::Contains("keeps 6 of 8 experts, not a multiple of n_group = 4"),
                       InvalidArgument);
  const ModelConfig top3 =
      ModelConfig::parse(deepseek_config_with("num_experts_per_tok", "3"), "config.json");
  CHECK_THROWS_WITH_AS((void)expert_keep_count(top3, 0.5),
                       doctest::Contains("topk_group = 2 groups hold 2, fewer than "
                                         "num_experts_per_tok = 3"),
                       InvalidArgument);
  mo.experts = false;
  mo.heads = true;
  mo.sparsity = 0.5;
  CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, &stats, mo),
                       doctest::Contains("multi-head latent attention"), InvalidArgument);
  std::filesystem::remove_all(dir);
}

namespace {

// The swap descent as it was before ExpertSwapState: every swap scored by a full
// ExpertRerouting::error over all samples. The reference for improve_by_swaps.
std::vector<int> improve_by_full_rescoring(const ExpertRerouting& scorer, std::vector<int> kept,
                                           int max_rounds = 1000) {
  const int n = scorer.num_experts();
  const int per_group = n / scorer.num_groups();
  std::sort(kept.begin(), kept.end());
  double current = scorer.error(kept);
  for (int round = 0; round < max_rounds; ++round) {
    std::vector<char> in(static_cast<std::size_t>(n), 0);
    for (const int e : kept) in[static_cast<std::size_t>(e)] = 1;
    double best = current;
    std::pair<std::size_t, int> move{0, -1};
    for (std::size_t slot = 0; slot < kept.size(); ++slot)
      for (int e = 0; e < n; ++e) {
        if (in[static_cast<std::size_t>(e)] || e / per_group != kept[slot] / per_group) continue;
        std::vector<int> next = kept;
        next[slot] = e;
        const double err = scorer.error(next);
        if (err < best) {
          best = err;
          move = {slot, e};
        }
      }
    if (move.second < 0) break;
    kept[move.first] = move.second;
    current = best;
    std::sort(kept.begin(), kept.end());
  }
  return kept;
}

// A random kept set of `keep` experts, keep / groups from each routing group.
std::vector<int> random_kept(int n, int keep, int groups, std::mt19937& rng) {
  const int per = n / groups;
  std::vector<int> kept;
  for (int g = 0; g < groups; ++g) {
    std::vector<int> ids(static_cast<std::size_t>(per));
    std::iota(ids.begin(), ids.end(), g * per);
    std::shuffle(ids.begin(), ids.end(), rng);
    kept.insert(kept.end(), ids.begin(), ids.begin() + keep / groups);
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

// Random swaps within routing groups: each incremental delta equals the difference of two full
// re-computations; some are applied, after which the cached error is the full one, bit for bit.
// Then improve_by_swaps ends where the full re-scoring descent does. Returns the mean fraction of
// the samples a swap re-evaluates.
double check_incremental_swaps(const ExpertRerouting& scorer, int keep, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const int n = scorer.num_experts();
  const int per_group = n / scorer.num_groups();
  ExpertSwapState state(scorer, random_kept(n, keep, scorer.num_groups(), rng));
  CHECK(state.error() == scorer.error(state.kept()));
  double affected = 0.0;
  int swaps = 0;
  for (int i = 0; i < 60; ++i) {
    const std::vector<int> kept = state.kept();
    const int out = kept[std::uniform_int_distribution<std::size_t>(0, kept.size() - 1)(rng)];
    std::vector<int> removed;
    for (int e = out / per_group * per_group; e < (out / per_group + 1) * per_group; ++e)
      if (!std::binary_search(kept.begin(), kept.end(), e)) removed.push_back(e);
    if (removed.empty()) continue;
    const int in = removed[std::uniform_int_distribution<std::size_t>(0, removed.size() - 1)(rng)];
    std::vector<int> next = kept;
    *std::find(next.begin(), next.end(), out) = in;
    const double before = scorer.error(kept);
    const double diff = scorer.error(next) - before;
    const double delta = state.swap_delta(out, in);
    CAPTURE(i);
    CAPTURE(out);
    CAPTURE(in);
    CHECK(std::abs(delta - diff) <= 1e-9 * std::max(before, std::abs(diff)));
    affected += static_cast<double>(state.affected_count(out, in)) /
                static_cast<double>(scorer.num_samples());
    ++swaps;
    if (i % 4 == 0) {
      state.apply_swap(out, in);
      std::sort(next.begin(), next.end());
      CHECK(state.kept() == next);
      CHECK(state.error() == scorer.error(next));
    }
  }
  CHECK_THROWS_AS((void)state.swap_delta(state.kept()[0], state.kept()[1]), InvalidArgument);
  for (int start = 0; start < 3; ++start) {
    const std::vector<int> from = random_kept(n, keep, scorer.num_groups(), rng);
    const std::vector<int> fast = improve_by_swaps(scorer, from);
    const std::vector<int> full = improve_by_full_rescoring(scorer, from);
    CHECK(fast == full);
    CHECK(scorer.error(fast) == scorer.error(full));
    // The bounds: one round at most, and no round once the time limit has passed.
    CHECK(improve_by_swaps(scorer, from, 1) == improve_by_full_rescoring(scorer, from, 1));
    CHECK(improve_by_swaps(scorer, from, 1000, 0.0) == from);
  }
  return swaps > 0 ? affected / swaps : 1.0;
}

// A synthetic MoE block: `n` experts of random weights, random router (and bias for sigmoid).
MoeBlockWeights synthetic_block(int n, int groups, int topk_groups, int top_k, bool sigmoid,
                                bool norm, Eigen::Index hidden, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](Eigen::Index rows, Eigen::Index cols, float scale) {
    return Eigen::MatrixXf(
        Eigen::MatrixXf::NullaryExpr(rows, cols, [&] { return scale * normal(rng); }));
  };
  const Eigen::Index width = 8;
  MoeBlockWeights block;
  block.router = random(n, hidden, 1.0f / std::sqrt(static_cast<float>(hidden)));
  block.top_k = top_k;
  block.norm_topk_prob = norm;
  block.sigmoid_scores = sigmoid;
  block.num_groups = groups;
  block.topk_groups = topk_groups;
  if (sigmoid) {
    block.score_bias = random(n, 1, 0.1f);
    block.routed_scaling_factor = 2.5f;
  }
  std::vector<ExpertWeights> experts(static_cast<std::size_t>(n));
  const float s = 1.0f / std::sqrt(static_cast<float>(hidden));
  for (ExpertWeights& e : experts) {
    e.gate = random(width, hidden, s);
    e.up = random(width, hidden, s);
    e.down = random(hidden, width, 0.35f);
  }
  block.hold_experts(std::move(experts));
  return block;
}

}  // namespace

TEST_CASE("moe: incremental swap scores equal full re-computation on the tiny checkpoints") {
  std::uint32_t seed = 1;
  for (const std::string name : kMoeFolders) {
    CAPTURE(name);
    const Checkpoint ckpt = Checkpoint::open(moe_dir(name));
    int layer = 0;
    while (!DecoderLayerWeights::read(ckpt, layer).moe) ++layer;
    const MoeBlockWeights block = *DecoderLayerWeights::read(ckpt, layer).moe;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const Eigen::MatrixXf inputs =
        Eigen::MatrixXf::NullaryExpr(block.router.cols(), 200, [&] { return normal(rng); });
    const ExpertRerouting scorer(block, inputs);
    const int groups = scorer.num_groups();
    const int keep = std::max(block.top_k, scorer.num_experts() / 2) / groups * groups;
    (void)check_incremental_swaps(scorer, keep, seed++);
  }
}

TEST_CASE("moe: incremental swap scores on random grouped and softmax routers of 32 experts") {
  std::mt19937 rng(2022);
  struct Case {
    int groups, topk_groups, top_k, keep;
    bool sigmoid, norm;
  };
  // Grouped as DeepSeek-V3 (1, 2 and 3 kept per group), sigmoid ungrouped, softmax both ways.
  const Case cases[] = {{8, 4, 4, 16, true, true},  {8, 3, 4, 24, true, true},
                        {8, 4, 4, 8, true, true},   {8, 8, 4, 16, true, false},
                        {1, 1, 4, 16, true, true},  {1, 1, 4, 16, false, true},
                        {1, 1, 4, 16, false, false}};
  for (const Case& c : cases) {
    CAPTURE(c.groups);
    CAPTURE(c.topk_groups);
    CAPTURE(c.keep);
    CAPTURE(c.sigmoid);
    CAPTURE(c.norm);
    const MoeBlockWeights block =
        synthetic_block(32, c.groups, c.topk_groups, c.top_k, c.sigmoid, c.norm, 24, rng);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const Eigen::MatrixXf inputs =
        Eigen::MatrixXf::NullaryExpr(24, 300, [&] { return normal(rng); });
    const ExpertRerouting scorer(block, inputs);
    const double fraction =
        check_incremental_swaps(scorer, c.keep, static_cast<std::uint32_t>(rng()));
    MESSAGE("mean fraction of samples a swap re-evaluates: " << fraction);
    // Only softmax without norm_topk_prob renormalises every sample over the kept mass.
    if (c.sigmoid || c.norm) CHECK(fraction < 1.0);
  }
}

TEST_CASE(
    "moe: re-routed errors from per-sample Grams, built in chunks, equal the forward pass's") {
  // The reference: the block whose router lost the removed experts' rows (and bias entries), run
  // by forward::moe_block, against the full block. Small chunks force several reads per expert.
  std::mt19937 rng(77);
  struct Case {
    int groups, topk_groups;
    bool sigmoid, norm;
  };
  const Case cases[] = {{8, 4, true, true}, {1, 1, false, true}, {1, 1, false, false}};
  for (const Case& c : cases) {
    CAPTURE(c.sigmoid);
    CAPTURE(c.norm);
    const int n = 32;
    const Eigen::Index hidden = 24;
    const Eigen::Index samples = 300;
    const MoeBlockWeights block =
        synthetic_block(n, c.groups, c.topk_groups, 4, c.sigmoid, c.norm, hidden, rng);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const Eigen::MatrixXf inputs =
        Eigen::MatrixXf::NullaryExpr(hidden, samples, [&] { return normal(rng); });
    const ExpertRerouting whole(block, inputs);
    const std::size_t seven_samples = 7 * n * hidden * sizeof(float);
    const ExpertRerouting chunked(block, inputs, seven_samples);
    CHECK(whole.num_chunks() == 1);
    CHECK(chunked.num_chunks() == (samples + 6) / 7);
    const Eigen::MatrixXf y =
        forward::moe_block(block, inputs, forward::moe_routing(block, inputs));
    CHECK(whole.routed_energy() == doctest::Approx(y.cast<double>().squaredNorm()).epsilon(1e-6));
    std::vector<int> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    CHECK(whole.error(all) == 0.0);
    for (int trial = 0; trial < 6; ++trial) {
      const std::vector<int> kept = random_kept(n, 16, c.groups, rng);
      MoeBlockWeights sub = block;
      std::vector<ExpertWeights> experts;
      sub.router.resize(16, hidden);
      if (c.sigmoid) sub.score_bias.resize(16);
      for (std::size_t j = 0; j < kept.size(); ++j) {
        experts.push_back(block.expert(kept[j]));
        sub.router.row(static_cast<Eigen::Index>(j)) = block.router.row(kept[j]);
        if (c.sigmoid) sub.score_bias[static_cast<Eigen::Index>(j)] = block.score_bias[kept[j]];
      }
      sub.hold_experts(std::move(experts));
      const Eigen::MatrixXf y_k =
          forward::moe_block(sub, inputs, forward::moe_routing(sub, inputs));
      const double reference = (y - y_k).cast<double>().squaredNorm();
      CHECK(reference > 1e-3 * whole.routed_energy());  // the removal matters
      CHECK(whole.error(kept) == doctest::Approx(reference).epsilon(1e-5));
      CHECK(chunked.error(kept) == doctest::Approx(whole.error(kept)).epsilon(1e-12));
    }
  }
}

TEST_CASE("moe: a model routed around masked experts computes what the applied checkpoint does") {
  // Transformer::set_expert_keep (calibrate/perplexity --expert-masks) against apply's output,
  // which drops the experts' tensors and router rows (and DeepSeek-V3's bias entries).
  for (const std::string name : kMoeFolders) {
    CAPTURE(name);
    const Checkpoint ckpt = Checkpoint::open(moe_dir(name));
    const std::filesystem::path dir = test::temp_dir("moe_keep");
    std::vector<std::int32_t> ids;
    const CalibrationStatsFile stats = CalibrationStatsFile::open(calibrate_tiny(ckpt, dir, ids));
    const Masks masks =
        compute_masks(ckpt, &stats, expert_mask_options(0.5, MaskMethod::kExpertWeight));
    REQUIRE_FALSE(masks.entries.empty());
    (void)apply_masks(ckpt, masks, &stats, dir / "pruned");
    const Checkpoint pruned = Checkpoint::open(dir / "pruned");
    Transformer routed(ckpt);
    for (const LayerMask& e : masks.entries) {
      std::vector<char> keep(static_cast<std::size_t>(e.num_units), 0);
      for (const int u : e.kept) keep[static_cast<std::size_t>(u)] = 1;
      routed.set_expert_keep(e.layer, keep);
    }
    const std::span<const std::int32_t> seq(ids.data(), 40);
    const Eigen::MatrixXf want = Transformer(pruned).logits(seq);
    const Eigen::MatrixXf got = routed.logits(seq);
    const Eigen::MatrixXf full = Transformer(ckpt).logits(seq);
    CHECK((got - want).cwiseAbs().maxCoeff() < 1e-5f * (1.0f + want.cwiseAbs().maxCoeff()));
    CHECK((full - want).cwiseAbs().maxCoeff() > 1e-3f);  // the masks change the model

    // Bad masks: a dense layer, a wrong count, fewer than top-k kept, unbalanced groups.
    const ModelConfig& c = ckpt.config();
    const int moe = masks.entries.front().layer;
    const auto n = static_cast<std::size_t>(c.moe.num_experts);
    int dense = 0;
    while (dense < c.num_hidden_layers && is_moe_layer(c, dense)) ++dense;
    if (dense < c.num_hidden_layers)
      CHECK_THROWS_WITH_AS(routed.set_expert_keep(dense, std::vector<char>(n, 1)),
                           doctest::Contains("not a MoE layer"), InvalidArgument);
    CHECK_THROWS_WITH_AS(routed.set_expert_keep(moe, std::vector<char>(n + 1, 1)),
                         doctest::Contains("flags for"), InvalidArgument);
    std::vector<char> one(n, 0);
    one[0] = 1;
    CHECK_THROWS_WITH_AS(routed.set_expert_keep(moe, one), doctest::Contains("fewer than"),
                         InvalidArgument);
    if (c.moe.n_group > 1) {
      std::vector<char> first_half(n, 0);
      for (std::size_t e = 0; e < n / 2; ++e) first_half[e] = 1;
      CHECK_THROWS_WITH_AS(routed.set_expert_keep(moe, first_half),
                           doctest::Contains("as many in every group"), InvalidArgument);
    }
    std::filesystem::remove_all(dir);
  }
}

namespace {

const char* const kFp8Folder = "tiny-deepseek-v3-fp8";

// The tensor's bytes, as read from the file without any conversion.
std::vector<std::byte> raw(const Checkpoint& ckpt, const std::string& name) {
  return ckpt.file_of(name).raw_bytes(name);
}

}  // namespace

TEST_CASE("moe: F8_E4M3 decodes exactly for all 256 bytes (the generator's table)") {
  const SafetensorsFile ref = SafetensorsFile::open(moe_dir(kFp8Folder) + "/reference.safetensors");
  const std::vector<float> table = flat<float>(ref, "fp8_e4m3_values");  // by the formula
  REQUIRE(table.size() == 256);
  int nan = 0;
  for (int b = 0; b < 256; ++b) {
    CAPTURE(b);
    const float got = f8_e4m3_to_float(static_cast<std::uint8_t>(b));
    if (std::isnan(table[static_cast<std::size_t>(b)])) {
      CHECK(std::isnan(got));
      ++nan;
      continue;
    }
    CHECK(got == table[static_cast<std::size_t>(b)]);
    CHECK(std::signbit(got) == (b >= 0x80));  // -0 at 0x80
  }
  CHECK(nan == 2);
  CHECK(f8_e4m3_to_float(0x7E) == 448.0f);
  CHECK(f8_e4m3_to_float(0x01) == std::ldexp(1.0f, -9));
}

TEST_CASE("moe: FP8 weights are dequantised by their blocks when read") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir(kFp8Folder));
  const ModelConfig& c = ckpt.config();
  REQUIRE(c.fp8.has_value());
  CHECK(c.fp8->block_rows == 8);
  CHECK(c.fp8->block_cols == 4);
  CHECK(c.num_nextn_predict_layers == 1);
  const SafetensorsFile ref = SafetensorsFile::open(moe_dir(kFp8Folder) + "/reference.safetensors");
  const std::vector<float> table = flat<float>(ref, "fp8_e4m3_values");
  int fp8 = 0, partial = 0;
  for (const std::string& name : ckpt.tensor_names()) {
    if (ckpt.info(name).dtype != Dtype::kF8E4M3) continue;
    CAPTURE(name);
    REQUIRE(ckpt.is_fp8(name));
    ++fp8;
    // Independently: each code through the generator's table times its block's F32 scale.
    const std::vector<std::int64_t>& shape = ckpt.info(name).shape;
    const std::vector<std::byte> codes = raw(ckpt, name);
    const std::vector<float> scale =
        flat<float>(ckpt.file_of(name + "_scale_inv"), name + "_scale_inv");
    const std::int64_t scale_cols = (shape[1] + 3) / 4;
    partial += (shape[0] % 8 != 0 || shape[1] % 4 != 0) ? 1 : 0;
    const Eigen::MatrixXd got = ckpt.read_matrix(name);
    const Eigen::MatrixXf got_f32 = ckpt.read_matrix_f32(name);
    REQUIRE(got.rows() == shape[0]);
    REQUIRE(got.cols() == shape[1]);
    bool same = true, same_f32 = true;
    for (std::int64_t i = 0; i < shape[0]; ++i)
      for (std::int64_t j = 0; j < shape[1]; ++j) {
        const double want =
            static_cast<double>(table[static_cast<std::size_t>(
                codes[static_cast<std::size_t>(i * shape[1] + j)])]) *
            static_cast<double>(scale[static_cast<std::size_t>((i / 8) * scale_cols + j / 4)]);
        same = same && got(i, j) == want;
        same_f32 = same_f32 && got_f32(i, j) == static_cast<float>(want);
      }
    CHECK(same);
    CHECK(same_f32);
  }
  CHECK(fp8 == 105);
  CHECK(partial > 0);
  CHECK_FALSE(ckpt.is_fp8("model.layers.1.mlp.gate.weight"));  // the router stays F32
  CHECK_FALSE(ckpt.is_fp8("lm_head.weight"));
  // The MTP layer's tensors are accepted and carried, not run.
  CHECK(ckpt.contains("model.layers.3.eh_proj.weight"));
  CHECK(ckpt.contains("model.layers.3.mlp.experts.7.down_proj.weight_scale_inv"));
}

TEST_CASE("moe: FP8 quantization_config and num_nextn_predict_layers in config.json") {
  std::string cfg = test::slurp(std::filesystem::path(moe_dir(kFp8Folder)) / "config.json");
  const ModelConfig c = ModelConfig::parse(cfg, "config.json");
  // Kept through to_json, with a changed MTP count written back.
  ModelConfig next = c;
  next.num_nextn_predict_layers = 0;
  const std::string text = next.to_json();
  CHECK(text.find("\"num_nextn_predict_layers\": 0") != std::string::npos);
  CHECK(text.find("\"weight_block_size\": [\n      8,\n      4\n    ]") != std::string::npos);
  const ModelConfig back = ModelConfig::parse(text, "config.json");
  CHECK(back.num_nextn_predict_layers == 0);
  REQUIRE(back.fp8.has_value());
  CHECK(back.fp8->block_rows == 8);
  next.num_nextn_predict_layers = -1;
  CHECK_THROWS_WITH_AS(next.validate(), doctest::Contains("num_nextn_predict_layers must be >= 0"),
                       InvalidArgument);
  next.num_nextn_predict_layers = 1;
  next.fp8->block_cols = 0;
  CHECK_THROWS_WITH_AS(next.validate(), doctest::Contains("weight_block_size[1]) must be > 0"),
                       InvalidArgument);
  // Other quantization methods are not read; weight_block_size absent: 128 x 128.
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = cfg;
    const auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    return t.replace(at, from.size(), to);
  };
  CHECK_FALSE(ModelConfig::parse(with("\"fp8\"", "\"gptq\""), "c").fp8.has_value());
  const ModelConfig dflt = ModelConfig::parse(
      with("\"weight_block_size\": [\n      8,\n      4\n    ]", "\"weight_block_size\": null"),
      "c");
  REQUIRE(dflt.fp8.has_value());
  CHECK(dflt.fp8->block_rows == 128);
  CHECK(dflt.fp8->block_cols == 128);
  for (const char* bad : {"[8]", "[8, 0]", "[8, -4]", "[8.5, 4]", "\"8x4\"", "[8, 4, 1]"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(
        (void)ModelConfig::parse(with("[\n      8,\n      4\n    ]", bad), "c"),
        doctest::Contains("expected field 'quantization_config.weight_block_size' to be two "
                          "positive integers [rows, cols]"),
        ParseError);
  }
  CHECK_THROWS_WITH_AS((void)ModelConfig::parse(with("\"e4m3\"", "\"e5m2\""), "c"),
                       doctest::Contains("'quantization_config.fmt' to be \"e4m3\""), ParseError);
}

TEST_CASE("moe: FP8 expert apply copies the kept experts' bytes and drops the MTP layer") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir(kFp8Folder));
  const std::filesystem::path dir = test::temp_dir("moe_fp8_experts");
  std::vector<std::int32_t> ids;
  const CalibrationStatsFile stats = CalibrationStatsFile::open(calibrate_tiny(ckpt, dir, ids));
  double total = 0.0;
  const Masks masks = half_expert_masks(ckpt, stats, MaskMethod::kQubo, total);
  const ApplyReport rep = apply_masks(ckpt, masks, &stats, dir / "pruned");
  CHECK(rep.mtp_note.find("dropped 1 MTP layer (model.layers.3.*)") != std::string::npos);
  CHECK(rep.dequantised_modules.empty());
  const Checkpoint pruned = Checkpoint::open(dir / "pruned");
  CHECK(pruned.config().moe.num_experts == 4);
  CHECK(pruned.config().num_nextn_predict_layers == 0);
  CHECK(pruned.config().fp8.has_value());
  const MoeTensorNames n = moe_tensor_names(ckpt.config());
  for (const LayerMask& e : masks.entries) {
    const std::string p = "model.layers." + std::to_string(e.layer) + ".";
    for (std::size_t j = 0; j < e.kept.size(); ++j)
      for (const std::string& proj : {n.gate, n.up, n.down})
        for (const std::string& suffix : {std::string(), std::string("_scale_inv")}) {
          const std::string to = p + n.expert(static_cast<int>(j), proj) + suffix;
          const std::string from = p + n.expert(e.kept[j], proj) + suffix;
          CAPTURE(to);
          CHECK(pruned.info(to).dtype == ckpt.info(from).dtype);
          CHECK(raw(pruned, to) == raw(ckpt, from));
        }
  }
  int scales = 0;
  for (const std::string& name : pruned.tensor_names()) {
    CAPTURE(name);
    const std::optional<std::int64_t> layer = tensor_layer_index(name);
    CHECK((!layer || *layer < 3));  // no MTP tensor left
    if (name.find(".mlp.experts.") != std::string::npos && name.ends_with("_scale_inv")) ++scales;
  }
  CHECK(scales == 2 * 4 * 3);  // two MoE layers, 4 experts, 3 projections: no removed one's
  // The pruned model runs.
  PerplexityOptions po;
  po.context = 40;
  const PerplexityResult ppl = evaluate_perplexity(Transformer(pruned), ids, po);
  CHECK(std::isfinite(ppl.perplexity));
  CHECK(ppl.perplexity > 1.0);
  // Without expert pruning the MTP layer is copied through unchanged (below: dense masks).
  std::filesystem::remove_all(dir);
}

TEST_CASE("moe: FP8 dense MLP apply writes the sliced projections as BF16") {
  const Checkpoint ckpt = Checkpoint::open(moe_dir(kFp8Folder));
  const std::filesystem::path dir = test::temp_dir("moe_fp8_dense");
  const std::string m = "model.layers.0.mlp.";
  for (const bool all : {true, false}) {
    CAPTURE(all);
    Masks masks;
    masks.checkpoint = CheckpointIdentity::of(ckpt);
    LayerMask e;
    e.layer = 0;
    e.unit = UnitKind::kMlp;
    e.num_units = 12;
    e.kept = all ? std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
                 : std::vector<int>{0, 2, 3, 5, 7, 8, 9, 11};
    masks.entries.push_back(e);
    const std::filesystem::path out = dir / (all ? "all" : "some");
    const ApplyReport rep = apply_masks(ckpt, masks, nullptr, out);
    CHECK(rep.mtp_note.empty());
    CHECK(rep.dequantised_modules ==
          std::vector<std::string>{m + "down_proj", m + "gate_proj", m + "up_proj"});
    const Checkpoint pruned = Checkpoint::open(out);
    const nlohmann::json cfg = nlohmann::json::parse(test::slurp(out / "config.json"));
    CHECK(cfg["quantization_config"]["modules_to_not_convert"] ==
          nlohmann::json({m + "down_proj", m + "gate_proj", m + "up_proj"}));
    CHECK(cfg["quantization_config"]["weight_block_size"] == nlohmann::json({8, 4}));
    CHECK(cfg["num_nextn_predict_layers"] == 1);
    for (const char* proj : {"gate_proj.weight", "up_proj.weight", "down_proj.weight"}) {
      CAPTURE(proj);
      CHECK(pruned.info(m + proj).dtype == Dtype::kBF16);
      CHECK_FALSE(pruned.contains(m + proj + std::string("_scale_inv")));
    }
    // Power-of-two scales (make_tiny_fp8.py): the dequantised values are exact in BF16.
    const Eigen::MatrixXd gate = ckpt.read_matrix(m + "gate_proj.weight");
    const Eigen::MatrixXd down = ckpt.read_matrix(m + "down_proj.weight");
    const Eigen::MatrixXd new_gate = pruned.read_matrix(m + "gate_proj.weight");
    const Eigen::MatrixXd new_down = pruned.read_matrix(m + "down_proj.weight");
    REQUIRE(new_gate.rows() == static_cast<Eigen::Index>(e.kept.size()));
    for (std::size_t k = 0; k < e.kept.size(); ++k) {
      CHECK(new_gate.row(static_cast<Eigen::Index>(k)) == gate.row(e.kept[k]));
      CHECK(new_down.col(static_cast<Eigen::Index>(k)) == down.col(e.kept[k]));
    }
    // Everything else carried byte for byte: the other FP8 weights with their scales, the MTP.
    for (const std::string& name : ckpt.tensor_names()) {
      if (name.starts_with(m)) continue;
      CAPTURE(name);
      REQUIRE(pruned.contains(name));
      CHECK(raw(pruned, name) == raw(ckpt, name));
    }
    if (!all) continue;
    // Every unit kept: the model computes what the original does.
    const SafetensorsFile ref =
        SafetensorsFile::open(moe_dir(kFp8Folder) + "/reference.safetensors");
    const std::vector<std::int32_t> ids = flat<std::int32_t>(ref, "input_ids");
    const std::span<const std::int32_t> seq(ids.data(), 12);
    const Eigen::MatrixXf before = Transformer(ckpt).logits(seq);
    const Eigen::MatrixXf after = Transformer(pruned).logits(seq);
    CHECK((before - after).cwiseAbs().maxCoeff() <=
          1e-5f * std::max(1.0f, before.cwiseAbs().maxCoeff()));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("moe: an FP8 NaN code follows the read's non-finite policy") {
  const std::filesystem::path src = moe_dir(kFp8Folder);
  const std::filesystem::path dir = test::temp_dir("moe_fp8_nan");
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(src / f, dir / f);
  const std::string name = "model.layers.1.self_attn.o_proj.weight";  // [16, 16]
  std::uint64_t at = 0;
  {
    const Checkpoint ckpt = Checkpoint::open(dir);
    at = ckpt.info(name).file_offset + 16 * 9 + 5;  // element [9, 5]
  }
  {
    std::fstream file(dir / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(at));
    file.put(static_cast<char>(0xFF));  // -NaN
  }
  const Checkpoint ckpt = Checkpoint::open(dir);
  const std::string what = "expected finite values in tensor '" + name +
                           "', found nan (F8_E4M3 byte 0xff times its scale) at element [9, 5]";
  CHECK_THROWS_WITH_AS((void)ckpt.read_matrix_f32(name), doctest::Contains(what.c_str()),
                       ParseError);
  TensorReadOptions zero;
  zero.non_finite = NonFinitePolicy::kZero;
  std::int64_t zeroed = -1;
  const Eigen::MatrixXd w = ckpt.read_matrix(name, zero, &zeroed);
  CHECK(zeroed == 1);
  CHECK(w(9, 5) == 0.0);
  CHECK(w.allFinite());
  std::filesystem::remove_all(dir);
}
