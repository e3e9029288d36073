// Tests of the mixture-of-experts forward pass (Qwen2-MoE, Mixtral) against the independent float64
// reference of tests/data/checkpoints/make_tiny_moe.py: logits, each MoE layer's routing (chosen
// experts and weights) and block output; checkpoint validation of expert tensors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/transformer.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

namespace {

const char* const kMoeFolders[] = {"tiny-qwen2-moe", "tiny-qwen2-moe-norm", "tiny-mixtral"};

std::string moe_dir(const std::string& name) { return test::data_path("checkpoints/" + name); }

// A rank-n F32 / I32 tensor as a flat vector in file (row-major) order.
template <class T>
std::vector<T> flat(const SafetensorsFile& f, const std::string& name) {
  const auto bytes = f.raw_bytes(name);
  REQUIRE(bytes.size() % sizeof(T) == 0);
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

}  // namespace

TEST_CASE("moe: logits of Qwen2-MoE and Mixtral equal the independent reference") {
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
    }
    CHECK(moe_layers >= 1);
  }
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
