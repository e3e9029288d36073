// Small Llama / Qwen2 checkpoints with random weights, written by an independent raw safetensors
// writer (F32 or BF16, one file or two shards): the fixtures of the pruning pipeline tests.
#pragma once

#include <doctest/doctest.h>

#include <Eigen/Core>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/test_files.hpp"

namespace qprune::test {

struct Raw {
  std::string name;
  std::vector<std::int64_t> shape;
  Eigen::MatrixXd values;  // rows x cols as in the file (1-D: n x 1)
};

// Minimal independent safetensors writer (F32 or BF16; values must be exact in BF16).
inline void write_raw(const std::filesystem::path& path, const std::vector<Raw>& tensors,
                      const std::string& dtype) {
  std::string header = "{", data;
  for (const Raw& t : tensors) {
    const std::size_t begin = data.size();
    for (Eigen::Index i = 0; i < t.values.rows(); ++i)
      for (Eigen::Index j = 0; j < t.values.cols(); ++j) {
        const auto f = static_cast<float>(t.values(i, j));
        std::uint32_t bits;
        std::memcpy(&bits, &f, 4);
        if (dtype == "F32") {
          data.append(reinterpret_cast<const char*>(&bits), 4);
        } else {
          REQUIRE((bits & 0xFFFF) == 0);
          const auto hi = static_cast<std::uint16_t>(bits >> 16);
          data.append(reinterpret_cast<const char*>(&hi), 2);
        }
      }
    std::string shape;
    for (std::int64_t d : t.shape) {
      if (!shape.empty()) shape += ',';
      shape += std::to_string(d);
    }
    header += std::string(header.size() > 1 ? "," : "") + "\"" + t.name + "\":{\"dtype\":\"" +
              dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" + std::to_string(begin) +
              "," + std::to_string(data.size()) + "]}";
  }
  header += "}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  test::spit(path, file + header + data);
}

struct Model {
  int hidden, inter, layers, heads, kv, hd;
  bool qkv_bias;
  std::string family;  // "llama" or "qwen2"
};

inline std::string config_json(const Model& m) {
  nlohmann::json j;
  j["architectures"] = {m.family == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"};
  j["model_type"] = m.family;
  j["hidden_size"] = m.hidden;
  j["intermediate_size"] = m.inter;
  j["num_hidden_layers"] = m.layers;
  j["num_attention_heads"] = m.heads;
  j["num_key_value_heads"] = m.kv;
  if (m.hidden % m.heads != 0 || m.hidden / m.heads != m.hd) j["head_dim"] = m.hd;
  j["vocab_size"] = 16;
  j["tie_word_embeddings"] = false;
  j["custom_key"] = "kept";
  return j.dump(2);
}

// Weights: multiples of 1/64 in [-1, 1] (exact in BF16).
inline Eigen::MatrixXd weights(std::mt19937_64& rng, int rows, int cols) {
  std::uniform_int_distribution<int> k(-64, 64);
  Eigen::MatrixXd w(rows, cols);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = k(rng) / 64.0;
  return w;
}

// Builds the checkpoint folder; returns every tensor by name.
inline std::map<std::string, Eigen::MatrixXd> make_checkpoint(const std::filesystem::path& dir,
                                                              const Model& m,
                                                              const std::string& dtype,
                                                              bool sharded, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<std::string, Eigen::MatrixXd> all;
  std::vector<Raw> shard[2];
  auto add = [&](int s, const std::string& name, Eigen::MatrixXd v, bool vector) {
    std::vector<std::int64_t> shape = {v.rows()};
    if (!vector) shape.push_back(v.cols());
    shard[s].push_back({name, shape, v});
    all[name] = v;
  };
  add(0, "model.embed_tokens.weight", weights(rng, 16, m.hidden), false);
  for (int l = 0; l < m.layers; ++l) {
    const int s = sharded ? l % 2 : 0;
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(s, p + "input_layernorm.weight", weights(rng, m.hidden, 1), true);
    add(s, p + "post_attention_layernorm.weight", weights(rng, m.hidden, 1), true);
    add(s, p + "self_attn.q_proj.weight", weights(rng, m.heads * m.hd, m.hidden), false);
    add(s, p + "self_attn.k_proj.weight", weights(rng, m.kv * m.hd, m.hidden), false);
    add(s, p + "self_attn.v_proj.weight", weights(rng, m.kv * m.hd, m.hidden), false);
    add(s, p + "self_attn.o_proj.weight", weights(rng, m.hidden, m.heads * m.hd), false);
    if (m.qkv_bias) {
      add(s, p + "self_attn.q_proj.bias", weights(rng, m.heads * m.hd, 1), true);
      add(s, p + "self_attn.k_proj.bias", weights(rng, m.kv * m.hd, 1), true);
      add(s, p + "self_attn.v_proj.bias", weights(rng, m.kv * m.hd, 1), true);
    }
    add(s, p + "mlp.gate_proj.weight", weights(rng, m.inter, m.hidden), false);
    add(s, p + "mlp.up_proj.weight", weights(rng, m.inter, m.hidden), false);
    add(s, p + "mlp.down_proj.weight", weights(rng, m.hidden, m.inter), false);
  }
  add(sharded ? 1 : 0, "model.norm.weight", weights(rng, m.hidden, 1), true);
  add(sharded ? 1 : 0, "lm_head.weight", weights(rng, 16, m.hidden), false);
  test::spit(dir / "config.json", config_json(m));
  test::spit(dir / "tokenizer.json", "{\"tokenizer\": true}\n");
  test::spit(dir / "extra" / "notes.txt", "kept byte for byte\n");
  if (!sharded) {
    write_raw(dir / "model.safetensors", shard[0], dtype);
  } else {
    nlohmann::json index;
    index["metadata"] = {{"total_size", 0}};
    for (int s = 0; s < 2; ++s) {
      const std::string file = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
      write_raw(dir / file, shard[s], dtype);
      for (const Raw& r : shard[s]) index["weight_map"][r.name] = file;
    }
    test::spit(dir / "model.safetensors.index.json", index.dump(2));
  }
  return all;
}

}  // namespace qprune::test
