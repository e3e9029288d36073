// Writes synthetic inputs for the memory and scale benchmarks (bench/mask_memory.sh,
// bench/scale.sh): a Hugging Face checkpoint folder of any Llama / Qwen2 shape with random weights,
// and a calibration statistics file for it. Both are written streaming: the library's
// SafetensorsWriter keeps every tensor in memory until write(), which a 15 GB checkpoint cannot
// afford, so this program writes the safetensors header first (every tensor's size follows from
// its shape) and then generates and writes the data in chunks of kChunk elements. The generator
// therefore never holds more than one chunk of weights (statistics: one layer's Gram), whatever
// the model size, and its own peak memory does not depend on the layer count.
//
// Weights: approximately N(0, 1/fan_in) (standard deviation 1/sqrt(fan_in), fan_in = the last
// dimension, as a trained or freshly initialised Linear layer), drawn as the Irwin-Hall sum of four
// 16-bit uniforms scaled to unit variance (close to Gaussian, and ~10x faster than
// std::normal_distribution; the shape of the tails does not matter for these benchmarks). Norm
// weights are 1, biases N(0, 0.02^2).
//
//   make_synthetic_checkpoint ckpt --arch qwen2 --layers 2 --hidden 2048 --intermediate 8192
//       --heads 16 --kv-heads 4 --vocab 32000 --dtype bf16 --shards 1 --seed 1 -o DIR
//   make_synthetic_checkpoint ckpt --arch qwen2_moe --experts 256 --top-k 8 --expert-width 2048 ...
//     (a Qwen2-MoE layout, every layer sparse, no shared expert: DeepSeek-V3's expert shapes)
//   make_synthetic_checkpoint expert-masks --checkpoint DIR --keep K --seed 1 -o masks.json
//     (masks keeping K random experts in every MoE layer: input for `qprune apply`'s memory test)
//   make_synthetic_checkpoint stats --checkpoint DIR --tokens 256 --seed 1 -o stats.safetensors
//     (per layer: Gram = X X^T + 1e-3 T I of a random X [I, T] ~ |N(0, 1)| (post-SwiGLU
//      activations are not centred), mean = row means of X; mlp kind only)
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <pcg_random.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/masks.hpp"
#include "qprune/model_config.hpp"

namespace {

namespace fs = std::filesystem;
using qprune::Dtype;

constexpr std::int64_t kChunk = 1 << 20;  // elements generated and written at a time

/// One tensor of a streamed safetensors file: its shape and a filler that writes `count`
/// elements starting at element `first` into `out` as doubles.
struct StreamTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  Dtype dtype = Dtype::kF32;
  double stddev = 0.0;  // > 0: random normal; == 0: constant `value`
  double value = 0.0;
  std::uint64_t stream = 0;  // pcg stream of this tensor (reproducible per name)
  // When set, fills the whole tensor itself (used for statistics).
  std::vector<double>* explicit_values = nullptr;

  [[nodiscard]] std::int64_t elements() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }
  [[nodiscard]] std::uint64_t bytes() const {
    return static_cast<std::uint64_t>(elements()) * qprune::dtype_size(dtype);
  }
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

/// The header JSON (metadata first, tensors in the given order, offsets tiling the data area),
/// padded with spaces to a multiple of 8 bytes as the reference writer does.
std::string header_json(const std::vector<const StreamTensor*>& tensors,
                        const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::string h = "{\"__metadata__\":{\"format\":\"pt\"";
  for (const auto& [k, v] : metadata) h += ",\"" + json_escape(k) + "\":\"" + json_escape(v) + "\"";
  h += "}";
  std::uint64_t offset = 0;
  for (const StreamTensor* t : tensors) {
    h += ",\"" + json_escape(t->name) + "\":{\"dtype\":\"" + qprune::dtype_name(t->dtype) +
         "\",\"shape\":" + shape_text(t->shape) + ",\"data_offsets\":[" + std::to_string(offset) +
         "," + std::to_string(offset + t->bytes()) + "]}";
    offset += t->bytes();
  }
  h += "}";
  while (h.size() % 8 != 0) h += ' ';
  return h;
}

/// Approximately standard normal: Irwin-Hall sum of four 16-bit uniforms, centred and scaled to
/// unit variance (variance of one U(0,1) is 1/12; of the sum, 1/3).
inline double approx_normal(pcg64& rng) {
  const std::uint64_t r = rng();
  double s = 0.0;
  for (int i = 0; i < 4; ++i) s += static_cast<double>((r >> (16 * i)) & 0xFFFF) + 0.5;
  return (s / 65536.0 - 2.0) * std::sqrt(3.0);
}

void encode(const std::vector<double>& values, std::size_t count, Dtype dtype,
            std::vector<unsigned char>& out) {
  const std::size_t size = qprune::dtype_size(dtype);
  out.resize(count * size);
  for (std::size_t i = 0; i < count; ++i) {
    const double v = values[i];
    switch (dtype) {
      case Dtype::kBF16: {
        const std::uint16_t b = qprune::float_to_bf16(v);
        std::memcpy(&out[2 * i], &b, 2);
        break;
      }
      case Dtype::kF16: {
        const std::uint16_t b = qprune::float_to_f16(v);
        std::memcpy(&out[2 * i], &b, 2);
        break;
      }
      case Dtype::kF32: {
        const float f = static_cast<float>(v);
        std::memcpy(&out[4 * i], &f, 4);
        break;
      }
      case Dtype::kF64:
        std::memcpy(&out[8 * i], &v, 8);
        break;
      default:
        throw std::runtime_error("unsupported dtype");
    }
  }
}

/// Writes one safetensors file through a temporary file and a rename, streaming the data.
void write_stream(const fs::path& path, const std::vector<const StreamTensor*>& tensors,
                  const std::vector<std::pair<std::string, std::string>>& metadata,
                  std::uint64_t seed) {
  const std::string header = header_json(tensors, metadata);
  const fs::path tmp = path.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot open " + tmp.string());
  const std::uint64_t n = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xFF);
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(header.data(), 1, n, f) == n;
  std::vector<double> values(kChunk);
  std::vector<unsigned char> bytes;
  for (const StreamTensor* t : tensors) {
    const std::int64_t total = t->elements();
    pcg64 rng(seed, t->stream);
    for (std::int64_t first = 0; first < total && ok; first += kChunk) {
      const auto count = static_cast<std::size_t>(std::min<std::int64_t>(kChunk, total - first));
      for (std::size_t i = 0; i < count; ++i) {
        if (t->explicit_values != nullptr)
          values[i] = (*t->explicit_values)[static_cast<std::size_t>(first) + i];
        else
          values[i] = t->stddev > 0.0 ? t->stddev * approx_normal(rng) : t->value;
      }
      encode(values, count, t->dtype, bytes);
      ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    }
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw std::runtime_error("write failed: " + tmp.string());
  fs::rename(tmp, path);
}

std::uint64_t name_stream(const std::string& name) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a: a per-name pcg stream
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  return h;
}

struct Args {
  std::vector<std::string> v;
  std::string get(const std::string& key, const std::string& fallback) const {
    for (std::size_t i = 0; i + 1 < v.size(); ++i)
      if (v[i] == key) return v[i + 1];
    if (fallback == "\x01") throw std::runtime_error("missing option " + key);
    return fallback;
  }
  long num(const std::string& key, long fallback) const {
    const std::string s = get(key, "");
    return s.empty() ? fallback : std::stol(s);
  }
};

int make_checkpoint(const Args& a) {
  const std::string arch = a.get("--arch", "qwen2");
  if (arch != "qwen2" && arch != "llama" && arch != "qwen2_moe")
    throw std::runtime_error("--arch qwen2|llama|qwen2_moe");
  const bool moe = arch == "qwen2_moe";
  const long layers = a.num("--layers", 2), hidden = a.num("--hidden", 2048),
             inter = a.num("--intermediate", 8192), heads = a.num("--heads", 16),
             kv = a.num("--kv-heads", heads), vocab = a.num("--vocab", 32000),
             shards = a.num("--shards", 1);
  const auto seed = static_cast<std::uint64_t>(a.num("--seed", 1));
  const std::string dtype_text = a.get("--dtype", "bf16");
  const Dtype dtype = dtype_text == "bf16"  ? Dtype::kBF16
                      : dtype_text == "f16" ? Dtype::kF16
                      : dtype_text == "f32" ? Dtype::kF32
                                            : throw std::runtime_error("--dtype bf16|f16|f32");
  const fs::path out = a.get("-o", "\x01");
  if (shards < 1) throw std::runtime_error("--shards must be >= 1");
  fs::create_directories(out);

  const bool qwen = arch != "llama";
  const std::string torch_dtype = dtype == Dtype::kBF16  ? "bfloat16"
                                  : dtype == Dtype::kF16 ? "float16"
                                                         : "float32";
  std::string config =
      "{\n  \"architectures\": [\"" +
      std::string(moe    ? "Qwen2MoeForCausalLM"
                  : qwen ? "Qwen2ForCausalLM"
                         : "LlamaForCausalLM") +
      "\"],\n  \"model_type\": \"" + arch + "\",\n" + "  \"hidden_act\": \"silu\",\n" +
      "  \"hidden_size\": " + std::to_string(hidden) + ",\n" +
      "  \"intermediate_size\": " + std::to_string(inter) + ",\n" +
      "  \"num_hidden_layers\": " + std::to_string(layers) + ",\n" +
      "  \"num_attention_heads\": " + std::to_string(heads) + ",\n" +
      "  \"num_key_value_heads\": " + std::to_string(kv) + ",\n" +
      "  \"vocab_size\": " + std::to_string(vocab) + ",\n" +
      "  \"max_position_embeddings\": " + (qwen ? "131072" : "4096") + ",\n" +
      "  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": 10000.0,\n" +
      "  \"tie_word_embeddings\": false,\n" +
      (moe ? "  \"num_experts\": " + std::to_string(a.num("--experts", 256)) +
                 ",\n  \"num_experts_per_tok\": " + std::to_string(a.num("--top-k", 8)) +
                 ",\n  \"moe_intermediate_size\": " +
                 std::to_string(a.num("--expert-width", 2048)) +
                 ",\n  \"shared_expert_intermediate_size\": 0,\n  \"norm_topk_prob\": true,\n"
           : std::string()) +
      "  \"torch_dtype\": \"" + torch_dtype + "\"\n}\n";
  const qprune::ModelConfig cfg =
      qprune::ModelConfig::parse(config, (out / "config.json").string());
  {
    std::ofstream c(out / "config.json", std::ios::binary);
    c << config;
    if (!c) throw std::runtime_error("cannot write config.json");
  }

  std::vector<StreamTensor> tensors;
  std::uint64_t total = 0;
  for (const qprune::ExpectedTensor& e : qprune::expected_tensors(cfg)) {
    StreamTensor t;
    t.name = e.name;
    t.shape = e.shape;
    t.dtype = dtype;
    t.stream = name_stream(e.name);
    const bool norm = e.name.find("norm") != std::string::npos;
    if (e.shape.size() == 2) {
      t.stddev = 1.0 / std::sqrt(static_cast<double>(e.shape[1]));
    } else if (norm) {
      t.value = 1.0;
    } else {
      t.stddev = 0.02;  // a bias
    }
    total += t.bytes();
    tensors.push_back(std::move(t));
  }

  // Shards: consecutive tensors (layer order) cut at ~total/shards bytes.
  const std::uint64_t per_shard =
      (total + static_cast<std::uint64_t>(shards) - 1) / static_cast<std::uint64_t>(shards);
  std::vector<std::vector<const StreamTensor*>> parts(static_cast<std::size_t>(shards));
  std::uint64_t acc = 0;
  for (const StreamTensor& t : tensors) {
    auto s = static_cast<std::size_t>(acc / std::max<std::uint64_t>(per_shard, 1));
    s = std::min(s, parts.size() - 1);
    parts[s].push_back(&t);
    acc += t.bytes();
  }
  parts.erase(std::remove_if(parts.begin(), parts.end(), [](const auto& p) { return p.empty(); }),
              parts.end());
  const std::size_t n_shards = parts.size();
  auto shard_name = [&](std::size_t i) {
    if (n_shards == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n_shards);
    return std::string(buf);
  };
  std::string index =
      "{\n  \"metadata\": {\"total_size\": " + std::to_string(total) + "},\n  \"weight_map\": {";
  bool first = true;
  for (std::size_t i = 0; i < n_shards; ++i) {
    write_stream(out / shard_name(i), parts[i], {}, seed);
    for (const StreamTensor* t : parts[i]) {
      index +=
          std::string(first ? "\n" : ",\n") + "    \"" + t->name + "\": \"" + shard_name(i) + "\"";
      first = false;
    }
    std::cerr << "wrote " << (out / shard_name(i)).string() << "\n";
  }
  index += "\n  }\n}\n";
  if (n_shards > 1) {
    std::ofstream idx(out / "model.safetensors.index.json", std::ios::binary);
    idx << index;
    if (!idx) throw std::runtime_error("cannot write index");
  }
  std::printf("checkpoint %s: %ld layers, %zu tensors, %zu shard(s), %.3f GB of weights\n",
              out.c_str(), layers, tensors.size(), n_shards, static_cast<double>(total) / 1e9);
  return 0;
}

/// A calibration statistics file for a checkpoint (mlp kind). Written streaming: the Gram of one
/// layer is computed when the writer reaches it, so memory holds one layer's Gram.
int make_stats(const Args& a) {
  const qprune::Checkpoint ckpt = qprune::Checkpoint::open(a.get("--checkpoint", "\x01"));
  const long tokens = a.num("--tokens", 256);
  const auto seed = static_cast<std::uint64_t>(a.num("--seed", 1));
  const fs::path out = a.get("-o", "\x01");
  const qprune::ModelConfig& cfg = ckpt.config();
  const std::int64_t n = cfg.intermediate_size;
  const auto layers = static_cast<int>(cfg.num_hidden_layers);

  // Tensor order by name (the reader does not care, but the reference writer sorts).
  std::vector<StreamTensor> tensors;
  for (int l = 0; l < layers; ++l) {
    for (const char* part : {"gram", "mean"}) {
      StreamTensor t;
      t.name = "layers." + std::to_string(l) + ".mlp." + part;
      t.shape = part == std::string("gram") ? std::vector<std::int64_t>{n, n}
                                            : std::vector<std::int64_t>{n};
      t.dtype = Dtype::kF64;
      tensors.push_back(std::move(t));
    }
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const StreamTensor& x, const StreamTensor& y) { return x.name < y.name; });
  std::vector<const StreamTensor*> order;
  for (const StreamTensor& t : tensors) order.push_back(&t);
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"qprune_format", qprune::CalibrationStatsFile::kFormat},
      {"version", std::to_string(qprune::CalibrationStatsFile::kVersion)},
      {"tokens", std::to_string(tokens)},
      {"num_layers", std::to_string(layers)},
      {"model", qprune::checkpoint_config_hash(ckpt)}};

  // Writes header, then per tensor computes its values (one layer's Gram at a time).
  const std::string header = header_json(order, meta);
  const fs::path tmp = out.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot open " + tmp.string());
  const std::uint64_t hn = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((hn >> (8 * i)) & 0xFF);
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(header.data(), 1, hn, f) == hn;
  for (const StreamTensor* t : order) {
    const int layer = std::stoi(t->name.substr(7));
    pcg64 rng(seed, static_cast<std::uint64_t>(layer));
    Eigen::MatrixXd x(n, tokens);
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index i = 0; i < x.rows(); ++i) x(i, j) = std::abs(approx_normal(rng));
    Eigen::MatrixXd values;
    if (t->shape.size() == 2) {
      values = Eigen::MatrixXd::Identity(n, n) * (1e-3 * static_cast<double>(tokens));
      values.selfadjointView<Eigen::Lower>().rankUpdate(x);
      values.triangularView<Eigen::StrictlyUpper>() = values.transpose();
    } else {
      values = x.rowwise().mean();
    }
    x.resize(0, 0);
    // Row-major bytes; the Gram is symmetric so Eigen's column order is the same.
    ok = ok && std::fwrite(values.data(), sizeof(double), static_cast<std::size_t>(values.size()),
                           f) == static_cast<std::size_t>(values.size());
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw std::runtime_error("write failed: " + tmp.string());
  fs::rename(tmp, out);
  std::printf("statistics %s: %d layers, n = %ld, %ld tokens\n", out.c_str(), layers,
              static_cast<long>(n), tokens);
  return 0;
}

int make_expert_masks(const Args& a) {
  const qprune::Checkpoint ckpt = qprune::Checkpoint::open(a.get("--checkpoint", "\x01"));
  const qprune::ModelConfig& cfg = ckpt.config();
  const int experts = static_cast<int>(cfg.moe.num_experts);
  const long keep = a.num("--keep", experts / 2);
  if (experts == 0 || keep < 1 || keep > experts)
    throw std::runtime_error("--keep must be in [1, experts] of a MoE checkpoint");
  pcg64 rng(static_cast<std::uint64_t>(a.num("--seed", 1)));
  qprune::Masks masks;
  masks.checkpoint = qprune::CheckpointIdentity::of(ckpt);
  masks.solver = "random";
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    if (!qprune::is_moe_layer(cfg, l)) continue;
    std::vector<int> ids(static_cast<std::size_t>(experts));
    for (int e = 0; e < experts; ++e) ids[static_cast<std::size_t>(e)] = e;
    std::shuffle(ids.begin(), ids.end(), rng);
    ids.resize(static_cast<std::size_t>(keep));
    std::sort(ids.begin(), ids.end());
    qprune::LayerMask e;
    e.layer = l;
    e.unit = qprune::UnitKind::kExperts;
    e.num_units = experts;
    e.kept = ids;
    e.keep = static_cast<int>(keep);
    e.status = qprune::RunStatus::kCompleted;
    masks.entries.push_back(e);
  }
  qprune::write_masks(masks, a.get("-o", "\x01"));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a;
    for (int i = 2; i < argc; ++i) a.v.emplace_back(argv[i]);
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "ckpt") return make_checkpoint(a);
    if (cmd == "stats") return make_stats(a);
    if (cmd == "expert-masks") return make_expert_masks(a);
    std::cerr << "usage: make_synthetic_checkpoint ckpt|stats [options] -o OUT "
                 "(see the comment at the top of bench/make_synthetic_checkpoint.cpp)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "make_synthetic_checkpoint: " << e.what() << "\n";
    return 1;
  }
}
