// Checkpoint folders and config.json: tiny Llama (F32, one file) and Qwen2 (BF16, two shards, tied
// embeddings, q/k/v biases) checkpoints built here with an independent raw writer, opened and read
// back value for value; written copies (unchanged and pruned) checked file by file, the index and
// total_size recomputed here, the input folder hashed before and after; config errors and defaults.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/model_config.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

using test::hash_folder;
using test::slurp;
using test::spit;
using test::temp_dir;

struct RawTensor {
  std::string name;
  std::string dtype;  // "F32" or "BF16"
  std::vector<std::int64_t> shape;
  std::vector<double> values;  // row-major
};

// An independent minimal safetensors writer: header by string concatenation, not padded, data in
// reverse name order (so the reader cannot rely on either).
void write_raw(const fs::path& path, const std::vector<RawTensor>& tensors) {
  std::string header = "{", data;
  for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
    const std::size_t begin = data.size();
    for (double v : it->values) {
      const auto f = static_cast<float>(v);
      std::uint32_t bits;
      std::memcpy(&bits, &f, 4);
      if (it->dtype == "F32") {
        data.append(reinterpret_cast<const char*>(&bits), 4);
      } else {
        REQUIRE((bits & 0xFFFF) == 0);  // test values are exact in BF16
        const auto hi = static_cast<std::uint16_t>(bits >> 16);
        data.append(reinterpret_cast<const char*>(&hi), 2);
      }
    }
    std::string shape;
    for (std::int64_t d : it->shape) {
      if (!shape.empty()) shape += ',';
      shape += std::to_string(d);
    }
    header += std::string(header.size() > 1 ? "," : "") + "\"" + it->name + "\":{\"dtype\":\"" +
              it->dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  header += "}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  spit(path, file + header + data);
}

// The tensors of a config, with values exact in BF16: small multiples of 1/8.
std::vector<RawTensor> make_tensors(const ModelConfig& cfg, const std::string& dtype,
                                    std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> k(-64, 64);
  std::vector<RawTensor> out;
  for (const ExpectedTensor& t : expected_tensors(cfg)) {
    RawTensor r{t.name, dtype, t.shape, {}};
    std::int64_t n = 1;
    for (std::int64_t d : t.shape) n *= d;
    for (std::int64_t i = 0; i < n; ++i) r.values.push_back(k(rng) / 8.0);
    out.push_back(std::move(r));
  }
  return out;
}

const std::string kLlamaConfig = R"({
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_size": 8,
  "intermediate_size": 12,
  "num_hidden_layers": 2,
  "num_attention_heads": 2,
  "num_key_value_heads": 1,
  "vocab_size": 10,
  "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0,
  "torch_dtype": "float32",
  "rope_scaling": {"factor": 8.0, "rope_type": "llama3"},
  "bos_token_id": 1
})";

const std::string kQwenConfig = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "model_type": "qwen2",
  "hidden_size": 8,
  "intermediate_size": 6,
  "num_hidden_layers": 2,
  "num_attention_heads": 4,
  "num_key_value_heads": 2,
  "vocab_size": 12,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_sliding_window": false,
  "custom_key": [1, 2, 3]
})";

void add_side_files(const fs::path& dir) {
  spit(dir / "tokenizer.json", R"({"version": "1.0", "model": {"type": "BPE"}})"
                               "\n");
  spit(dir / "generation_config.json", "{\n  \"bos_token_id\": 1\n}\n");
  spit(dir / "docs/README.md", "# tiny test model\n\xff\x00 binary tail");
}

// Llama: one F32 file. Returns the tensors written.
std::vector<RawTensor> build_llama(const fs::path& dir) {
  spit(dir / "config.json", kLlamaConfig);
  const auto tensors = make_tensors(ModelConfig::parse(kLlamaConfig, "x"), "F32", 1);
  write_raw(dir / "model.safetensors", tensors);
  add_side_files(dir);
  return tensors;
}

// Qwen2: BF16 over two shards (layer 0 + embeddings in shard 1, the rest in shard 2).
std::vector<RawTensor> build_qwen(const fs::path& dir) {
  spit(dir / "config.json", kQwenConfig);
  const auto tensors = make_tensors(ModelConfig::parse(kQwenConfig, "x"), "BF16", 2);
  std::vector<RawTensor> s1, s2;
  Json index = {{"metadata", {{"total_size", 12345}, {"note", "kept"}}},
                {"weight_map", Json::object()}};
  for (const RawTensor& t : tensors) {
    const bool first = t.name.find("layers.0.") != std::string::npos ||
                       t.name.find("embed_tokens") != std::string::npos;
    (first ? s1 : s2).push_back(t);
    index["weight_map"][t.name] =
        first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_raw(dir / "model-00001-of-00002.safetensors", s1);
  write_raw(dir / "model-00002-of-00002.safetensors", s2);
  spit(dir / "model.safetensors.index.json", index.dump(2));
  add_side_files(dir);
  return tensors;
}

void check_values(const Checkpoint& ckpt, const std::vector<RawTensor>& tensors) {
  CHECK(ckpt.tensor_names().size() == tensors.size());
  for (const RawTensor& t : tensors) {
    INFO(t.name);
    REQUIRE(ckpt.contains(t.name));
    CHECK(ckpt.info(t.name).shape == t.shape);
    const Eigen::MatrixXd m = ckpt.read_matrix(t.name);
    const Eigen::MatrixXf mf = ckpt.read_matrix_f32(t.name);
    const Eigen::Index cols = t.shape.size() == 2 ? t.shape[1] : 1;
    REQUIRE(m.size() == static_cast<Eigen::Index>(t.values.size()));
    for (std::size_t k = 0; k < t.values.size(); ++k) {
      const auto i = static_cast<Eigen::Index>(k) / cols, j = static_cast<Eigen::Index>(k) % cols;
      REQUIRE(m(i, j) == t.values[k]);
      REQUIRE(mf(i, j) == static_cast<float>(t.values[k]));
    }
  }
}

std::uint64_t sum_bytes(const Checkpoint& c) {
  std::uint64_t total = 0;
  for (const std::string& n : c.tensor_names()) total += c.info(n).num_bytes();
  return total;
}

}  // namespace

TEST_CASE("a Llama checkpoint (F32, one file) opens and every tensor reads back") {
  const fs::path dir = temp_dir("ck_llama");
  const auto tensors = build_llama(dir);
  const Checkpoint ckpt = Checkpoint::open(dir);
  CHECK_FALSE(ckpt.is_sharded());
  CHECK(ckpt.shard_files() == std::vector<std::string>{"model.safetensors"});
  const ModelConfig& c = ckpt.config();
  CHECK(c.family == ModelFamily::kLlama);
  CHECK(c.head_dim == 4);
  CHECK(c.num_key_value_heads == 1);
  CHECK(c.rms_norm_eps == 1e-5);
  CHECK(c.rope_theta == 500000.0);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.torch_dtype == "float32");
  ckpt.check_expected_tensors();
  CHECK(ckpt.info("model.layers.1.self_attn.k_proj.weight").shape ==
        std::vector<std::int64_t>{4, 8});  // kv heads * head_dim x hidden
  CHECK(ckpt.info("model.layers.0.mlp.down_proj.weight").shape == std::vector<std::int64_t>{8, 12});
  CHECK(ckpt.contains("lm_head.weight"));
  check_values(ckpt, tensors);
  fs::remove_all(dir);
}

TEST_CASE("a sharded Qwen2 checkpoint (BF16, tied, q/k/v biases) opens and reads back") {
  const fs::path dir = temp_dir("ck_qwen");
  const auto tensors = build_qwen(dir);
  const Checkpoint ckpt = Checkpoint::open(dir);
  CHECK(ckpt.is_sharded());
  CHECK(ckpt.shard_files().size() == 2);
  CHECK(ckpt.config().family == ModelFamily::kQwen2);
  CHECK(ckpt.config().attention_bias);
  CHECK_FALSE(ckpt.config().o_proj_bias);
  CHECK(ckpt.config().max_position_embeddings == 32768);
  CHECK_FALSE(ckpt.contains("lm_head.weight"));
  CHECK(ckpt.contains("model.layers.1.self_attn.v_proj.bias"));
  CHECK(ckpt.shard_of("model.layers.0.mlp.up_proj.weight") == "model-00001-of-00002.safetensors");
  CHECK(ckpt.shard_of("model.norm.weight") == "model-00002-of-00002.safetensors");
  ckpt.check_expected_tensors();
  check_values(ckpt, tensors);
  fs::remove_all(dir);
}

TEST_CASE("an unchanged copy: shards, index, config and side files match, input untouched") {
  for (const bool sharded : {false, true}) {
    INFO("sharded = " << sharded);
    const fs::path root = temp_dir("ck_copy");
    const fs::path in = root / "in", out = root / "out";
    const auto tensors = sharded ? build_qwen(in) : build_llama(in);
    const std::uint64_t before = hash_folder(in);
    const Checkpoint src = Checkpoint::open(in);
    write_checkpoint(src, out);
    CHECK(hash_folder(in) == before);
    for (const char* f :
         {"tokenizer.json", "generation_config.json", "docs/README.md", "config.json"})
      CHECK(slurp(out / f) == slurp(in / f));
    const Checkpoint copy = Checkpoint::open(out);
    CHECK(copy.tensor_names() == src.tensor_names());
    for (const std::string& n : src.tensor_names()) {
      CHECK(copy.shard_of(n) == src.shard_of(n));
      const auto a = src.file_of(n).raw_bytes(n), b = copy.file_of(n).raw_bytes(n);
      CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));
      CHECK(copy.info(n).dtype_text == src.info(n).dtype_text);
    }
    check_values(copy, tensors);
    if (sharded) {
      const Json index = Json::parse(slurp(out / "model.safetensors.index.json"));
      CHECK(index["metadata"]["total_size"] == sum_bytes(src));
      CHECK(index["metadata"]["note"] == "kept");
      CHECK(index["weight_map"] ==
            Json::parse(slurp(in / "model.safetensors.index.json"))["weight_map"]);
    }
    // Nothing but the expected files (no temporaries left behind).
    std::size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(out)) files += e.is_regular_file();
    CHECK(files == (sharded ? 7U : 5U));
    fs::remove_all(root);
  }
}

TEST_CASE("a pruned copy: MLP neurons removed, config updated, other keys kept") {
  const fs::path root = temp_dir("ck_prune");
  const fs::path in = root / "in", out = root / "out";
  (void)build_qwen(in);
  const std::uint64_t before = hash_folder(in);
  const Checkpoint src = Checkpoint::open(in);
  const std::vector<Eigen::Index> keep = {0, 2, 5};
  CheckpointEdits edits;
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".mlp.";
    const Eigen::MatrixXd gate = src.read_matrix(p + "gate_proj.weight");  // [I, H]
    const Eigen::MatrixXd up = src.read_matrix(p + "up_proj.weight");      // [I, H]
    const Eigen::MatrixXd down = src.read_matrix(p + "down_proj.weight");  // [H, I]
    edits.replace[p + "gate_proj.weight"] = gate(keep, Eigen::all);
    edits.replace[p + "up_proj.weight"] = up(keep, Eigen::all);
    edits.replace[p + "down_proj.weight"] = down(Eigen::all, keep);
  }
  ModelConfig cfg = src.config();
  cfg.intermediate_size = 3;
  edits.config = cfg;
  write_checkpoint(src, out, edits);
  CHECK(hash_folder(in) == before);

  const Checkpoint pruned = Checkpoint::open(out);
  CHECK(pruned.config().intermediate_size == 3);
  pruned.check_expected_tensors();
  for (const auto& [name, values] : edits.replace) {
    CHECK(pruned.info(name).dtype == Dtype::kBF16);
    CHECK(pruned.read_matrix(name) == values);  // exact: the values came from BF16
    CHECK(pruned.shard_of(name) == src.shard_of(name));
  }
  const Json config = Json::parse(slurp(out / "config.json"));
  CHECK(config["intermediate_size"] == 3);
  CHECK(config["custom_key"] == Json::array({1, 2, 3}));
  CHECK(config["use_sliding_window"] == false);
  CHECK_FALSE(config.contains("head_dim"));  // unchanged default stays implicit
  const Json index = Json::parse(slurp(out / "model.safetensors.index.json"));
  CHECK(index["metadata"]["total_size"] == sum_bytes(pruned));
  CHECK(sum_bytes(pruned) == sum_bytes(src) - 2 * 3 * 8 * 3 * 2);  // 3 neurons x H x 3 mats x 2 B
  fs::remove_all(root);
}

TEST_CASE("write_checkpoint refuses the input folder, a folder inside it, and bad edits") {
  const fs::path root = temp_dir("ck_refuse");
  const fs::path in = root / "in";
  (void)build_llama(in);
  const std::uint64_t before = hash_folder(in);
  const Checkpoint src = Checkpoint::open(in);
  CHECK_THROWS_AS(write_checkpoint(src, in), InvalidArgument);
  CHECK_THROWS_AS(write_checkpoint(src, in / "."), InvalidArgument);
  CHECK_THROWS_AS(write_checkpoint(src, in / "sub"), InvalidArgument);
  CHECK_THROWS_AS(write_checkpoint(src, in / ".." / "in"), InvalidArgument);
  CheckpointEdits unknown;
  unknown.remove.insert("model.layers.9.mlp.up_proj.weight");
  CHECK_THROWS_AS(write_checkpoint(src, root / "o1", unknown), InvalidArgument);
  CheckpointEdits rank;
  rank.replace["model.norm.weight"] = Eigen::MatrixXd::Ones(8, 2);
  CHECK_THROWS_AS(write_checkpoint(src, root / "o2", rank), InvalidArgument);
  spit(root / "busy/file.txt", "x");
  CHECK_THROWS_AS(write_checkpoint(src, root / "busy"), InvalidArgument);
  write_checkpoint(src, root / "busy", {}, {.overwrite = true, .before_commit = {}});
  // Replaced as a whole: nothing of the old folder survives (a stale file could shadow a shard).
  CHECK(!fs::exists(root / "busy/file.txt"));
  CHECK(fs::exists(root / "busy/config.json"));
  // A folder that holds the input would be replaced with it: refused even with overwrite.
  CHECK_THROWS_AS(write_checkpoint(src, root, {}, {.overwrite = true, .before_commit = {}}),
                  InvalidArgument);
  CHECK(hash_folder(in) == before);
  fs::remove_all(root);
}

// A folder with kLlamaConfig edited by `edit_config` (a JSON patch applied to the config) and
// the tensors of the unedited config changed by `edit_tensors`; returns the open() error text
// (empty when it opened). The tensors are checked against config.json once, in Checkpoint::open,
// which every command (calibrate, mask, apply, export, prune, perplexity) goes through.
template <class EditTensors>
std::string open_error(const fs::path& dir, const Json& config_patch, EditTensors edit_tensors) {
  Json config = Json::parse(kLlamaConfig);
  config.merge_patch(config_patch);
  spit(dir / "config.json", config.dump(2));
  auto tensors = make_tensors(ModelConfig::parse(kLlamaConfig, "x"), "F32", 4);
  edit_tensors(tensors);
  write_raw(dir / "model.safetensors", tensors);
  try {
    (void)Checkpoint::open(dir);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}

RawTensor* find_tensor(std::vector<RawTensor>& tensors, const std::string& name) {
  for (RawTensor& t : tensors)
    if (t.name == name) return &t;
  FAIL("no tensor " << name);
  return nullptr;
}

TEST_CASE("open refuses tensors that disagree with config.json, naming shard, tensor and shapes") {
  const fs::path dir = temp_dir("ck_validate");
  const std::string shard = (dir / "model.safetensors").string();
  const auto none = [](std::vector<RawTensor>&) {};
  auto rename = [](const std::string& from, const std::string& to) {
    return [=](std::vector<RawTensor>& t) { find_tensor(t, from)->name = to; };
  };
  // Each case: the whole message up to the summary; the byte is where the tensor's key starts.
  auto key_byte = [&](const std::string& name) {
    const std::string bytes = slurp(shard);
    return std::to_string(bytes.find("\"" + name + "\""));
  };

  SUBCASE("num_hidden_layers smaller than the layers present") {
    const std::string e = open_error(dir, {{"num_hidden_layers", 1}}, none);
    CHECK(e == shard + ": byte " + key_byte("model.layers.1.input_layernorm.weight") +
                   ": expected layer numbers below num_hidden_layers = 1 (config.json), found "
                   "layer 1 in tensor 'model.layers.1.input_layernorm.weight'; 8 more problem(s) "
                   "with the tensors");
  }
  SUBCASE("GQA checkpoint without num_key_value_heads (defaults to num_attention_heads)") {
    const std::string e = open_error(dir, {{"num_key_value_heads", nullptr}}, none);
    CHECK(e == shard + ": byte " + key_byte("model.layers.0.self_attn.k_proj.weight") +
                   ": expected tensor 'model.layers.0.self_attn.k_proj.weight' to have shape "
                   "[8, 8] ([num_key_value_heads * head_dim, hidden_size] from config.json), found "
                   "[4, 8]; 3 more problem(s) with the tensors");
  }
  SUBCASE("down_proj transposed: same byte count, other shape") {
    const std::string e = open_error(dir, Json::object(), [](std::vector<RawTensor>& t) {
      find_tensor(t, "model.layers.1.mlp.down_proj.weight")->shape = {12, 8};
    });
    CHECK(e == shard + ": byte " + key_byte("model.layers.1.mlp.down_proj.weight") +
                   ": expected tensor 'model.layers.1.mlp.down_proj.weight' to have shape [8, 12] "
                   "([hidden_size, intermediate_size] from config.json), found [12, 8]");
  }
  SUBCASE("a layer name without a number") {
    const std::string e = open_error(
        dir, Json::object(), rename("model.layers.1.input_layernorm.weight", "model.layers.abc.x"));
    CHECK(e == shard + ": byte " + key_byte("model.layers.abc.x") +
                   ": expected a layer tensor named model.layers.N.<name> with N a layer number in "
                   "decimal (0 to 1), found 'model.layers.abc.x'; layer 1 of 2 lacks required "
                   "tensors; 1 more problem(s) with the tensors");
  }
  SUBCASE("a 12-digit layer number") {
    const std::string name = "model.layers.123456789012.input_layernorm.weight";
    const std::string e =
        open_error(dir, Json::object(), rename("model.layers.1.input_layernorm.weight", name));
    CHECK(e.starts_with(shard + ": byte " + key_byte(name) +
                        ": expected a layer tensor named model.layers.N.<name> with N a layer "
                        "number in decimal (0 to 1), found '" +
                        name + "'"));
  }
  SUBCASE("a missing projection") {
    const std::string e = open_error(dir, Json::object(), [](std::vector<RawTensor>& t) {
      std::erase_if(
          t, [](const RawTensor& r) { return r.name == "model.layers.1.mlp.up_proj.weight"; });
    });
    CHECK(e == dir.string() +
                   ":0: expected tensor 'model.layers.1.mlp.up_proj.weight' with shape "
                   "[12, 8] ([intermediate_size, hidden_size] from config.json), found "
                   "none; layer 1 of 2 lacks required tensors");
  }
  SUBCASE("config with more layers than present: every incomplete layer named") {
    const std::string e = open_error(dir, {{"num_hidden_layers", 4}}, none);
    CHECK(e == dir.string() +
                   ":0: expected tensor 'model.layers.2.input_layernorm.weight' with "
                   "shape [8] ([hidden_size] from config.json), found none; layers 2, 3 "
                   "of 4 lack required tensors; 17 more problem(s) with the tensors");
  }
  SUBCASE("a wrong norm, embedding and an integer weight") {
    CHECK(open_error(dir, Json::object(),
                     [](std::vector<RawTensor>& t) {
                       RawTensor* n =
                           find_tensor(t, "model.layers.0.post_attention_layernorm.weight");
                       n->shape = {7};
                       n->values.resize(7);
                     })
              .find("to have shape [8] ([hidden_size] from config.json), found [7]") !=
          std::string::npos);
    CHECK(open_error(dir, {{"vocab_size", 11}}, none)
              .find("expected tensor 'lm_head.weight' to have shape [11, 8] ([vocab_size, "
                    "hidden_size] from config.json), found [10, 8]") != std::string::npos);
  }
  SUBCASE("an undeclared bias is checked too (a Llama without attention_bias)") {
    CHECK(open_error(
              dir, Json::object(),
              [](std::vector<RawTensor>& t) {
                t.push_back(
                    {"model.layers.0.self_attn.k_proj.bias", "F32", {8}, std::vector<double>(8)});
              })
              .find("expected tensor 'model.layers.0.self_attn.k_proj.bias' to have shape [4] "
                    "([num_key_value_heads * head_dim] from config.json), found [8]") !=
          std::string::npos);
    CHECK(
        open_error(dir, Json::object(), [](std::vector<RawTensor>& t) {
          t.push_back({"model.layers.0.self_attn.k_proj.bias", "F32", {4}, std::vector<double>(4)});
        }) == "");
  }
  SUBCASE("unknown tensors are allowed, also under model.layers.N") {
    CHECK(open_error(dir, Json::object(), [](std::vector<RawTensor>& t) {
            t.push_back({"model.layers.1.self_attn.rotary_emb.inv_freq", "F32", {2}, {1, 2}});
            t.push_back({"extra.table", "F32", {3}, {1, 2, 3}});
          }) == "");
    const Checkpoint ckpt = Checkpoint::open(dir);
    CHECK(ckpt.contains("model.layers.1.self_attn.rotary_emb.inv_freq"));
    ckpt.check_expected_tensors();  // the same validation again: passes
  }
  fs::remove_all(dir);
}

TEST_CASE("open names the shard holding a tensor of the wrong shape (sharded Qwen2, biases)") {
  const fs::path dir = temp_dir("ck_validate_shard");
  (void)build_qwen(dir);
  // Shard 2 holds layer 1: make its k_proj.bias one element short, keeping the file consistent.
  std::vector<RawTensor> s2;
  for (RawTensor t : make_tensors(ModelConfig::parse(kQwenConfig, "x"), "BF16", 2)) {
    if (t.name.find("layers.0.") != std::string::npos ||
        t.name.find("embed_tokens") != std::string::npos)
      continue;
    if (t.name == "model.layers.1.self_attn.k_proj.bias") {
      t.shape = {3};
      t.values.resize(3);
    }
    s2.push_back(t);
  }
  write_raw(dir / "model-00002-of-00002.safetensors", s2);
  CHECK_THROWS_WITH_AS(
      (void)Checkpoint::open(dir),
      doctest::Contains(((dir / "model-00002-of-00002.safetensors").string() + ": byte ").c_str()),
      ParseError);
  CHECK_THROWS_WITH_AS(
      (void)Checkpoint::open(dir),
      doctest::Contains("expected tensor 'model.layers.1.self_attn.k_proj.bias' to "
                        "have shape [4] ([num_key_value_heads * head_dim] from "
                        "config.json), found [3]"),
      ParseError);
  fs::remove_all(dir);
}

TEST_CASE("tensor_layer_index: decimal layer numbers only, never an exception") {
  CHECK(tensor_layer_index("model.layers.0.mlp.up_proj.weight") == 0);
  CHECK(tensor_layer_index("model.layers.17.x") == 17);
  CHECK(tensor_layer_index("model.layers.999999999.x") == 999999999);
  CHECK_FALSE(tensor_layer_index("model.layers.1234567890.x"));  // 10 digits
  CHECK_FALSE(tensor_layer_index("model.layers.123456789012.x"));
  CHECK_FALSE(tensor_layer_index("model.layers.abc.x"));
  CHECK_FALSE(tensor_layer_index("model.layers.01.x"));
  CHECK_FALSE(tensor_layer_index("model.layers.-1.x"));
  CHECK_FALSE(tensor_layer_index("model.layers.+1.x"));
  CHECK_FALSE(tensor_layer_index("model.layers.1"));
  CHECK_FALSE(tensor_layer_index("model.layers.1."));
  CHECK_FALSE(tensor_layer_index("model.layers..x"));
  CHECK_FALSE(tensor_layer_index("model.norm.weight"));
  CHECK_FALSE(tensor_layer_index("lm_head.weight"));
  CHECK(layer_tensor_prefix(3) == "model.layers.3.");
}

TEST_CASE("a tensor read after its shard was truncated is an IoError naming shard and tensor") {
  const fs::path dir = temp_dir("ck_truncated");
  (void)build_qwen(dir);
  const Checkpoint ckpt = Checkpoint::open(dir);
  const fs::path shard = dir / "model-00002-of-00002.safetensors";
  const std::string name = "model.layers.1.mlp.down_proj.weight";
  REQUIRE(ckpt.shard_of(name) == shard.filename().string());
  // Cut the shard in the middle of the tensor, as another process might during a run.
  fs::resize_file(shard, ckpt.info(name).file_offset + 4);
  const std::string want =
      shard.string() + ": cannot read tensor '" + name + "' (bytes " +
      std::to_string(ckpt.info(name).file_offset) + " to " +
      std::to_string(ckpt.info(name).file_offset + ckpt.info(name).num_bytes()) +
      "): the file is " + std::to_string(ckpt.info(name).file_offset + 4) + " bytes now";
  CHECK_THROWS_WITH_AS((void)ckpt.read_matrix(name), doctest::Contains(want.c_str()), IoError);
  CHECK_THROWS_AS((void)ckpt.read_matrix_f32(name), IoError);
  CHECK_THROWS_AS((void)ckpt.file_of(name).raw_bytes(name), IoError);
  // A tensor of the other shard still reads; copying the checkpoint fails cleanly.
  CHECK(ckpt.read_matrix("model.layers.0.mlp.down_proj.weight").size() == 8 * 6);
  CHECK_THROWS_AS(write_checkpoint(ckpt, dir.parent_path() / (dir.filename().string() + "_out")),
                  IoError);
  // The whole file gone to zero bytes: the same.
  fs::resize_file(shard, 0);
  CHECK_THROWS_AS((void)ckpt.read_vector("model.norm.weight"), IoError);
  // Opened again, the short shard is refused up front (its header no longer fits).
  CHECK_THROWS_AS((void)Checkpoint::open(dir), ParseError);
  fs::remove_all(dir);
  fs::remove_all(dir.parent_path() / (dir.filename().string() + "_out"));
}

TEST_CASE("an index that disagrees with its shards is refused") {
  const fs::path dir = temp_dir("ck_index");
  (void)build_qwen(dir);
  Json index = Json::parse(slurp(dir / "model.safetensors.index.json"));
  index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";  // wrong shard
  spit(dir / "model.safetensors.index.json", index.dump());
  CHECK_THROWS_WITH_AS((void)Checkpoint::open(dir),
                       doctest::Contains("expected tensor 'model.norm.weight' in "
                                         "model-00001-of-00002.safetensors"),
                       ParseError);
  index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  spit(dir / "model.safetensors.index.json", index.dump());
  CHECK_THROWS_AS((void)Checkpoint::open(dir), ParseError);
  fs::remove_all(dir);
}

TEST_CASE("config.json: bad fixtures name the path and field") {
  const std::string missing = test::data_path("bad/config_missing_field.json");
  CHECK_THROWS_WITH_AS(
      (void)ModelConfig::load(missing),
      doctest::Contains((missing + ":0: expected field 'intermediate_size'").c_str()), ParseError);
  const std::string unknown = test::data_path("bad/config_unknown_architecture.json");
  CHECK_THROWS_WITH_AS((void)ModelConfig::load(unknown),
                       doctest::Contains("found 'GPT2LMHeadModel' (unknown architecture)"),
                       ParseError);
  CHECK_THROWS_WITH_AS(
      (void)ModelConfig::parse(R"({"model_type": "llama", "hidden_size": 8,)", "c.json"),
      doctest::Contains("c.json: byte"), ParseError);
  CHECK_THROWS_WITH_AS(
      (void)ModelConfig::parse(R"({"architectures": ["LlamaForCausalLM"], "model_type": "qwen2"})",
                               "c.json"),
      doctest::Contains("'model_type' to match"), ParseError);
  CHECK_THROWS_WITH_AS((void)ModelConfig::parse(R"({"model_type": "mistral", "hidden_size": 8,
        "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
        "vocab_size": "ten"})",
                                                "c.json"),
                       doctest::Contains("'vocab_size' to be a positive integer"), ParseError);
}

TEST_CASE("config.json: defaults, Mistral, Llama biases, and head_dim written when heads change") {
  const ModelConfig m = ModelConfig::parse(R"({"model_type": "mistral", "hidden_size": 12,
      "intermediate_size": 4, "num_hidden_layers": 3, "num_attention_heads": 3,
      "vocab_size": 5})",
                                           "m.json");
  CHECK(m.architecture == "MistralForCausalLM");
  CHECK(m.num_key_value_heads == 3);
  CHECK(m.head_dim == 4);
  CHECK(m.max_position_embeddings == 131072);
  CHECK(expected_tensors(m).size() == 3 * 9 + 3);

  ModelConfig l = ModelConfig::parse(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8,
      "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
      "vocab_size": 5, "attention_bias": true, "mlp_bias": true, "tie_word_embeddings": true})",
                                     "l.json");
  const auto t = expected_layer_tensors(l, 0);
  auto shape_of = [&](const std::string& n) {
    for (const auto& e : t)
      if (e.name == n) return e.shape;
    return std::vector<std::int64_t>{-1};
  };
  CHECK(shape_of("model.layers.0.self_attn.o_proj.bias") == std::vector<std::int64_t>{8});
  CHECK(shape_of("model.layers.0.mlp.down_proj.bias") == std::vector<std::int64_t>{8});
  CHECK(shape_of("model.layers.0.mlp.gate_proj.bias") == std::vector<std::int64_t>{4});
  CHECK(t.size() == 16);

  // Pruning a head keeps head_dim = 4, which is no longer hidden / heads: it must be written.
  l.num_attention_heads = 1;
  l.num_key_value_heads = 1;
  const Json j = Json::parse(l.to_json());
  CHECK(j["head_dim"] == 4);
  CHECK(j["num_attention_heads"] == 1);
  CHECK_FALSE(j.contains("num_key_value_heads"));  // equals its default (= heads) again
  CHECK(j["attention_bias"] == true);
  const ModelConfig again = ModelConfig::parse(l.to_json(), "again");
  CHECK(again.head_dim == 4);
  CHECK(again.num_key_value_heads == 1);
  CHECK(again.num_attention_heads == 1);
  l.num_key_value_heads = 3;
  CHECK_THROWS_AS((void)l.to_json(), InvalidArgument);
}
