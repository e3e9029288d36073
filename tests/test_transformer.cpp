// Tests of the forward pass, calibration statistics and perplexity on the example model
// (examples/model/checkpoint, a byte-level Qwen2), against the torch references that
// examples/model/train.py stored in tests/data/model/reference.safetensors, against statistics
// computed directly from captured activations, and against a zero-masked copy for pruned widths.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/transformer.hpp"
#include "tests/test_support.hpp"
#include "tests/tiny_checkpoints.hpp"

namespace fs = std::filesystem;
using namespace qprune;

namespace {

std::string model_dir() { return test::data_path("../../examples/model/checkpoint"); }

std::vector<std::int32_t> read_i32(const SafetensorsFile& f, const std::string& name) {
  const auto bytes = f.raw_bytes(name);
  REQUIRE(f.info(name).dtype == Dtype::kI32);
  std::vector<std::int32_t> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path temp_dir(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("qprune_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

}  // namespace

TEST_CASE("transformer: logits of the example model equal the torch reference") {
  const Checkpoint ckpt = Checkpoint::open(model_dir());
  const SafetensorsFile ref = SafetensorsFile::open(test::data_path("model/reference.safetensors"));
  const std::vector<std::int32_t> ids = read_i32(ref, "logits_input_ids");
  const Eigen::MatrixXf expected = ref.read_matrix_f32("logits");  // tokens x vocab
  const Transformer model(ckpt);
  const Eigen::MatrixXf got = model.logits(ids);  // vocab x tokens
  REQUIRE(got.rows() == expected.cols());
  REQUIRE(got.cols() == expected.rows());
  const float diff = (got - expected.transpose()).cwiseAbs().maxCoeff();
  MESSAGE("max |logit - torch logit| = " << diff);
  CHECK(diff < 1e-3f);
  // The reference is not trivial: the logits spread over several units.
  CHECK(expected.maxCoeff() - expected.minCoeff() > 5.0f);
}

TEST_CASE("transformer: perplexity equals the torch per-token log-probs") {
  const Checkpoint ckpt = Checkpoint::open(model_dir());
  REQUIRE(is_byte_level(ckpt));
  const SafetensorsFile ref = SafetensorsFile::open(test::data_path("model/reference.safetensors"));
  const std::vector<std::int32_t> ids = read_i32(ref, "ppl_input_ids");
  const Eigen::VectorXd lp = ref.read_vector("ppl_logprobs");
  REQUIRE(lp.size() == static_cast<Eigen::Index>(ids.size()) - 1);
  const double expected = std::exp(-lp.mean());

  PerplexityOptions opts;
  opts.context = std::stoll(ref.metadata().at("ppl_context"));
  opts.windows_per_batch = 3;  // several batches, the last one partial
  const Transformer model(ckpt);
  const PerplexityResult r = evaluate_perplexity(model, ids, opts);
  CHECK(r.num_predicted == lp.size());
  MESSAGE("perplexity " << r.perplexity << " vs torch " << expected);
  CHECK(std::abs(r.perplexity - expected) / expected < 1e-3);
  CHECK(r.bits_per_token == doctest::Approx(std::log2(r.perplexity)).epsilon(1e-12));
}

TEST_CASE("calibration: streamed statistics equal a direct computation on captured activations") {
  const Checkpoint ckpt = Checkpoint::open(model_dir());
  const Transformer model(ckpt);
  const std::string text = read_file(test::data_path("../../examples/model/calibration.txt"));
  const std::vector<std::int32_t> ids = byte_tokens(text.substr(0, 300));
  const std::int64_t context = 128;  // windows 128, 128, 44
  const int layers = static_cast<int>(ckpt.config().num_hidden_layers);

  // Direct: run each window alone, keep every activation column, then A A^T and the mean.
  std::vector<Eigen::MatrixXd> mlp(static_cast<std::size_t>(layers)),
      attn(static_cast<std::size_t>(layers));
  ForwardHooks hooks;
  auto append = [](Eigen::MatrixXd& all, const Eigen::MatrixXf& a) {
    Eigen::MatrixXd grown(a.rows(), all.cols() + a.cols());
    if (all.cols() > 0) grown.leftCols(all.cols()) = all;
    grown.rightCols(a.cols()) = a.cast<double>();
    all = std::move(grown);
  };
  hooks.mlp = [&](int l, int, const Eigen::MatrixXf& a) {
    append(mlp[static_cast<std::size_t>(l)], a);
  };
  hooks.attn = [&](int l, int, const Eigen::MatrixXf& a) {
    append(attn[static_cast<std::size_t>(l)], a);
  };
  for (std::size_t b = 0; b < ids.size(); b += context) {
    const std::size_t len = std::min<std::size_t>(context, ids.size() - b);
    (void)model.logits(std::span<const std::int32_t>(ids.data() + b, len), &hooks);
  }

  CalibrationOptions opts;
  opts.context = context;
  opts.windows_per_batch = 2;
  const CalibrationStatistics stats = collect_calibration_statistics(model, ids, opts);
  REQUIRE(stats.num_tokens == 300);
  REQUIRE(stats.mlp.size() == static_cast<std::size_t>(layers));
  REQUIRE(stats.attn.size() == static_cast<std::size_t>(layers));
  for (int l = 0; l < layers; ++l) {
    const auto ul = static_cast<std::size_t>(l);
    for (const auto& [got, acts] :
         {std::pair{&stats.mlp[ul], &mlp[ul]}, std::pair{&stats.attn[ul], &attn[ul]}}) {
      REQUIRE(acts->cols() == 300);
      const Eigen::MatrixXd gram = (*acts) * acts->transpose();
      const Eigen::VectorXd mean = acts->rowwise().mean();
      CHECK(got->num_tokens == 300);
      CHECK((got->gram - gram).cwiseAbs().maxCoeff() <= 1e-9 * gram.cwiseAbs().maxCoeff());
      CHECK((got->mean - mean).cwiseAbs().maxCoeff() <= 1e-9 * mean.cwiseAbs().maxCoeff() + 1e-12);
      CHECK(gram.cwiseAbs().maxCoeff() > 0.0);
    }
  }
  CHECK(stats.mlp[0].gram.rows() == ckpt.config().intermediate_size);
  CHECK(stats.attn[0].gram.rows() == ckpt.config().num_attention_heads * ckpt.config().head_dim);

  // The file holds the same numbers in the documented layout.
  const fs::path dir = temp_dir("calib");
  fs::create_directories(dir);
  write_calibration_statistics(stats, ckpt, dir / "stats.safetensors");
  const SafetensorsFile f = SafetensorsFile::open(dir / "stats.safetensors");
  CHECK(f.metadata().at("qprune_format") == "qprune-calibration");
  CHECK(f.metadata().at("tokens") == "300");
  CHECK(f.metadata().at("num_layers") == std::to_string(layers));
  CHECK(f.metadata().at("model").rfind("fnv1a64:", 0) == 0);
  CHECK(f.info("layers.1.mlp.gram").dtype == Dtype::kF64);
  CHECK(f.read_matrix("layers.1.mlp.gram") == stats.mlp[1].gram);
  CHECK(f.read_vector("layers.3.attn.mean") == stats.attn[3].mean);
  fs::remove_all(dir);
}

TEST_CASE("transformer: a checkpoint with pruned widths equals the original with zeroed units") {
  // Drop MLP neurons (every third) and query heads 1, 3, 5, 7 in all layers; the reference is the
  // unpruned model whose down_proj columns / o_proj columns of those units are zero.
  const Checkpoint ckpt = Checkpoint::open(model_dir());
  const ModelConfig& c = ckpt.config();
  const Eigen::Index hd = c.head_dim;
  std::vector<Eigen::Index> keep_n, keep_c;
  for (Eigen::Index i = 0; i < c.intermediate_size; ++i)
    if (i % 3 != 0) keep_n.push_back(i);
  for (Eigen::Index h = 0; h < c.num_attention_heads; h += 2)
    for (Eigen::Index d = 0; d < hd; ++d) keep_c.push_back(h * hd + d);

  CheckpointEdits pruned, zeroed;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* n : {"mlp.gate_proj.weight", "mlp.up_proj.weight"})
      pruned.replace[p + n] = ckpt.read_matrix(p + n)(keep_n, Eigen::all);
    const Eigen::MatrixXd down = ckpt.read_matrix(p + "mlp.down_proj.weight");
    pruned.replace[p + "mlp.down_proj.weight"] = down(Eigen::all, keep_n);
    Eigen::MatrixXd down_z = Eigen::MatrixXd::Zero(down.rows(), down.cols());
    down_z(Eigen::all, keep_n) = down(Eigen::all, keep_n);
    zeroed.replace[p + "mlp.down_proj.weight"] = down_z;

    pruned.replace[p + "self_attn.q_proj.weight"] =
        ckpt.read_matrix(p + "self_attn.q_proj.weight")(keep_c, Eigen::all);
    pruned.replace[p + "self_attn.q_proj.bias"] =
        ckpt.read_matrix(p + "self_attn.q_proj.bias")(keep_c, Eigen::all);
    const Eigen::MatrixXd o = ckpt.read_matrix(p + "self_attn.o_proj.weight");
    pruned.replace[p + "self_attn.o_proj.weight"] = o(Eigen::all, keep_c);
    Eigen::MatrixXd o_z = Eigen::MatrixXd::Zero(o.rows(), o.cols());
    o_z(Eigen::all, keep_c) = o(Eigen::all, keep_c);
    zeroed.replace[p + "self_attn.o_proj.weight"] = o_z;
  }
  ModelConfig pc = c;
  pc.intermediate_size = static_cast<std::int64_t>(keep_n.size());
  pc.num_attention_heads = c.num_attention_heads / 2;
  pc.head_dim = hd;
  pruned.config = pc;

  const fs::path dir = temp_dir("pruned");
  write_checkpoint(ckpt, dir / "pruned", pruned);
  write_checkpoint(ckpt, dir / "zeroed", zeroed);
  const Checkpoint a = Checkpoint::open(dir / "pruned");
  const Checkpoint b = Checkpoint::open(dir / "zeroed");
  REQUIRE(a.config().num_attention_heads == 4);
  REQUIRE(a.config().head_dim == hd);

  const std::vector<std::int32_t> ids = byte_tokens("The quick brown fox jumps over the dog.\n%\n");
  const Eigen::MatrixXf la = Transformer(a).logits(ids);
  const Eigen::MatrixXf lb = Transformer(b).logits(ids);
  const Eigen::MatrixXf lo = Transformer(ckpt).logits(ids);
  CHECK((la - lb).cwiseAbs().maxCoeff() < 1e-4f);
  CHECK((la - lo).cwiseAbs().maxCoeff() > 1e-2f);  // the pruning did change the model
  fs::remove_all(dir);
}

TEST_CASE("transformer: finite but huge weights are an error naming the layer, never NaN") {
  // gate_proj and up_proj of layer 1 set to +-1e20 (alternating rows, so some row's gate is
  // positive for every token): silu(g) * u ~ 1e40 overflows F32 in the MLP of layer 1, while
  // layer 0 and the attention of layer 1 stay finite.
  const test::Model m{8, 12, 2, 4, 2, 2, false, "llama"};
  const std::filesystem::path dir = temp_dir("huge_weights");
  auto w = test::make_checkpoint(dir, m, "F32", false, 5);
  std::vector<test::Raw> raws;
  for (auto& [name, v] : w) {
    if (name == "model.layers.1.mlp.gate_proj.weight" ||
        name == "model.layers.1.mlp.up_proj.weight")
      for (Eigen::Index i = 0; i < v.rows(); ++i) v.row(i).setConstant(i % 2 == 0 ? 1e20 : -1e20);
    const bool vector = name.find("norm.weight") != std::string::npos;
    std::vector<std::int64_t> shape = {v.rows()};
    if (!vector) shape.push_back(v.cols());
    raws.push_back({name, shape, v});
  }
  test::write_raw(dir / "model.safetensors", raws, "F32");
  const Checkpoint ckpt = Checkpoint::open(dir);
  const Transformer model(ckpt);
  const std::vector<std::int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_THROWS_WITH_AS((void)model.logits(ids), doctest::Contains("layer 1 MLP (down_proj input)"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS((void)model.next_token_log_probs({ids}), doctest::Contains("non-finite"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS((void)model.logits(ids),
                       doctest::Contains("model.layers.1.mlp.{gate,up}_proj"), InvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST_CASE("perplexity: finite log-probabilities whose exp overflows are an error, never inf") {
  // lm_head rows of +-1e30: logits ~1e30 are finite in F32, so are the log-probabilities
  // (about -1e30), but exp(mean NLL) is not.
  const test::Model m{8, 12, 2, 4, 2, 2, false, "llama"};
  const std::filesystem::path dir = temp_dir("huge_head");
  auto w = test::make_checkpoint(dir, m, "F32", false, 6);
  std::vector<test::Raw> raws;
  for (auto& [name, v] : w) {
    if (name == "lm_head.weight")
      for (Eigen::Index i = 0; i < v.rows(); ++i) v.row(i).setConstant(i % 2 == 0 ? 1e30 : -1e30);
    const bool vector = name.find("norm.weight") != std::string::npos;
    std::vector<std::int64_t> shape = {v.rows()};
    if (!vector) shape.push_back(v.cols());
    raws.push_back({name, shape, v});
  }
  test::write_raw(dir / "model.safetensors", raws, "F32");
  const Checkpoint ckpt = Checkpoint::open(dir);
  const Transformer model(ckpt);
  const std::vector<std::int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  PerplexityOptions o;
  o.context = 10;
  CHECK_THROWS_WITH_AS((void)evaluate_perplexity(model, ids, o),
                       doctest::Contains("beyond the double range"), InvalidArgument);
  std::filesystem::remove_all(dir);
}
