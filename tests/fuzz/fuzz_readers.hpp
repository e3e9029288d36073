// The readers the fuzz targets exercise, by target name, as one function each: read a file the way
// qprune does and touch everything it returns. Shared by the libFuzzer entry point
// (fuzz_target.cpp, one executable per target) and by the regression test that replays every
// saved crashing input through the ordinary build (tests/test_fuzz_regressions.cpp).
//
// Contract checked: a reader either returns or throws qprune::Error. Any other exception, a
// sanitizer report, a crash or a hang is a finding.
//
// Two targets are fuzz-only (fuzz_only_target_names(): no known-good fixture case, but their saved
// inputs replay):
// `checkpoint` (one input = config.json + index + shards, split_checkpoint_input) and `gzip` (the
// qbsolv reader on gzip input; its findings replay as qbsolv inputs).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/masks.hpp"
#include "qprune/model_config.hpp"
#include "qprune/pruning.hpp"
#include "qprune/transformer.hpp"

namespace qprune::fuzz {

/// The QUBO formats of the registry that can be read, each a fuzz target of the same name.
inline const std::vector<std::string>& qubo_format_targets() {
  static const std::vector<std::string> names = {"qbsolv",  "coo",    "json",  "mqlib", "maxcut",
                                                 "beasley", "biqmac", "qplib", "mtx"};
  return names;
}

/// Every fuzz target name: the QUBO formats, then the checkpoint-side readers.
inline std::vector<std::string> target_names() {
  std::vector<std::string> names = qubo_format_targets();
  for (const char* n : {"safetensors", "index", "config", "masks", "solution", "calibration"})
    names.emplace_back(n);
  return names;
}

/// Targets only the fuzzer runs: the checkpoint loader as a whole, and the qbsolv reader fed gzip
/// (the mutator of tests/fuzz/mutators.cpp keeps the input gzip). Not in target_names() because
/// the known-good fixture case of tests/test_fuzz_regressions.cpp is for files of tests/data; their
/// saved inputs (fuzz_regressions/checkpoint/) are replayed like the others.
inline const std::vector<std::string>& fuzz_only_target_names() {
  static const std::vector<std::string> names = {"checkpoint", "gzip"};
  return names;
}

/// Separator of the files inside one `checkpoint` input: config.json, then
/// model.safetensors.index.json (empty: not sharded), then one or two shards. Text, so that a
/// mutation that changes a part's length keeps the framing (a length prefix would not).
inline constexpr std::string_view kCheckpointPartSeparator = "\n@@qprune-file@@\n";

/// The parts of a `checkpoint` input, at most 4 (anything after the 4th separator stays in the
/// last part).
inline std::vector<std::string> split_checkpoint_input(std::string_view input) {
  std::vector<std::string> parts;
  while (parts.size() < 3) {
    const std::size_t cut = input.find(kCheckpointPartSeparator);
    if (cut == std::string_view::npos) break;
    parts.emplace_back(input.substr(0, cut));
    input.remove_prefix(cut + kCheckpointPartSeparator.size());
  }
  parts.emplace_back(input);
  return parts;
}

/// Memory limit the readers get here (ReadOptions::memory_limit_bytes, the layer problems'
/// memory_limit_bytes): a small file that declares a huge model must be refused up front. run.sh
/// sets libFuzzer's -malloc_limit_mb to twice this, so one allocation beyond it is a finding: a
/// reader that allocates from a declared size its memory check does not cover (such as a reserve
/// for the declared number of entries) is caught even when the pages are never touched.
inline constexpr std::uint64_t kReaderMemoryLimitBytes = std::uint64_t{64} << 20;

namespace detail {

// Reads every tensor of an open safetensors file in each way the library offers; a tensor the
// accessors refuse (non-float dtype, rank > 2) must be refused with qprune::Error.
inline void touch_tensors(const SafetensorsFile& file) {
  (void)file.metadata();
  const TensorReadOptions zero{NonFinitePolicy::kZero};
  for (const std::string& name : file.tensor_names()) {
    (void)file.info(name);
    (void)file.raw_bytes(name);
    try {
      std::int64_t non_finite = 0;
      (void)file.read_matrix(name, zero, &non_finite);
      (void)file.read_matrix_f32(name);
    } catch (const Error&) {
    }
    try {
      (void)file.read_vector(name);
    } catch (const Error&) {
    }
  }
}

// Writes `text` to `path` (binary).
inline void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

// The folder the checkpoint target lays its inputs out in, private to this process: under
// $QPRUNE_FUZZ_SCRATCH (run.sh gives each target one and removes it after; a crashing process
// cannot clean up), else /dev/shm (memory, not disk), else the temp folder.
inline std::filesystem::path checkpoint_folder() {
  namespace fs = std::filesystem;
  fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  if (const char* dir = std::getenv("QPRUNE_FUZZ_SCRATCH"); dir != nullptr && *dir != '\0')
    base = dir;
  return base / ("qprune_fuzz_checkpoint_" + std::to_string(::getpid()));
}

// Lays the parts of a `checkpoint` input out as checkpoint_folder() and returns it. With an index
// the shards are model-0000i-of-0000N.safetensors (the names the seeds' index uses); without,
// the first shard is model.safetensors.
inline std::filesystem::path checkpoint_folder_of(const std::filesystem::path& input) {
  namespace fs = std::filesystem;
  std::ifstream in(input, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<std::string> parts = split_checkpoint_input(bytes);
  const fs::path folder = checkpoint_folder();
  std::error_code ignored;
  fs::remove_all(folder, ignored);
  fs::create_directories(folder);
  write_file(folder / "config.json", parts[0]);
  const bool sharded = parts.size() > 1 && !parts[1].empty();
  if (sharded) write_file(folder / "model.safetensors.index.json", parts[1]);
  const std::size_t num_shards = parts.size() > 2 ? parts.size() - 2 : 0;
  for (std::size_t i = 0; i < num_shards; ++i) {
    const std::string name = sharded ? "model-0000" + std::to_string(i + 1) + "-of-0000" +
                                           std::to_string(num_shards) + ".safetensors"
                                     : (i == 0 ? "model.safetensors" : "extra.safetensors");
    write_file(folder / name, parts[i + 2]);
  }
  return folder;
}

// The contract of a loaded checkpoint: what a layer reader returns has the shapes the config
// implies (expected_layer_tensors). A checkpoint whose tensors contradict its config must be
// refused with qprune::Error, not read into views that index by the config; a breach throws
// std::logic_error, which the fuzzer reports as a crash and the regression test as a failure.
inline void require_shape(bool ok, const std::string& what) {
  if (!ok)
    throw std::logic_error("accepted a checkpoint whose tensors contradict its config: " + what);
}

inline void check_layer_shapes(const ModelConfig& c, int layer, const DecoderLayerWeights& w) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const auto matrix_of = [&](const std::string& suffix) -> const Eigen::MatrixXf* {
    if (suffix == "self_attn.q_proj.weight") return &w.q;
    if (suffix == "self_attn.k_proj.weight") return &w.k;
    if (suffix == "self_attn.v_proj.weight") return &w.v;
    if (suffix == "self_attn.o_proj.weight") return &w.o;
    if (suffix == "mlp.gate_proj.weight") return &w.gate;
    if (suffix == "mlp.up_proj.weight") return &w.up;
    if (suffix == "mlp.down_proj.weight") return &w.down;
    return nullptr;
  };
  const auto vector_of = [&](const std::string& suffix) -> const Eigen::VectorXf* {
    if (suffix == "input_layernorm.weight") return &w.input_norm;
    if (suffix == "post_attention_layernorm.weight") return &w.post_attention_norm;
    if (suffix == "self_attn.q_proj.bias") return &w.q_bias;
    if (suffix == "self_attn.k_proj.bias") return &w.k_bias;
    if (suffix == "self_attn.v_proj.bias") return &w.v_bias;
    if (suffix == "self_attn.o_proj.bias") return &w.o_bias;
    if (suffix == "mlp.gate_proj.bias") return &w.gate_bias;
    if (suffix == "mlp.up_proj.bias") return &w.up_bias;
    if (suffix == "mlp.down_proj.bias") return &w.down_bias;
    return nullptr;
  };
  for (const ExpectedTensor& t : expected_layer_tensors(c, layer)) {
    if (t.name.rfind(p, 0) != 0) continue;
    const std::string suffix = t.name.substr(p.size());
    std::string shape;
    for (const std::int64_t d : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    if (const Eigen::MatrixXf* m = matrix_of(suffix); m != nullptr && t.shape.size() == 2) {
      require_shape(m->rows() == t.shape[0] && m->cols() == t.shape[1],
                    t.name + " read as " + std::to_string(m->rows()) + " x " +
                        std::to_string(m->cols()) + ", config implies [" + shape + "]");
    } else if (const Eigen::VectorXf* v = vector_of(suffix); v != nullptr && t.shape.size() == 1) {
      require_shape(v->size() == t.shape[0], t.name + " read with " + std::to_string(v->size()) +
                                                 " entries, config implies [" + shape + "]");
    }
  }
  require_shape(w.num_heads == c.num_attention_heads && w.num_kv_heads == c.num_key_value_heads &&
                    w.head_dim == c.head_dim,
                "head counts of layer " + std::to_string(layer) + " differ from the config");
}

// What the mask and apply commands build from an open checkpoint, data-free: every decoder
// layer's weights as the forward pass reads them (head counts from the config) and the layer
// problems of build_layer_problem's magnitude path (shapes from the config and the tensors),
// each checked against the config. Each step is tried on its own so that one rejection does not
// hide the next.
inline void touch_layers(const Checkpoint& checkpoint) {
  const ModelConfig& c = checkpoint.config();
  (void)checkpoint.num_parameters();
  (void)CheckpointIdentity::of(checkpoint);
  // The global tensors (embeddings, final norm, lm_head) are indexed by the config's vocab_size
  // and hidden_size in the forward pass: present ones must have the implied shapes.
  for (const ExpectedTensor& t : expected_tensors(c)) {
    if (t.name.rfind("model.layers.", 0) == 0 || !checkpoint.contains(t.name)) continue;
    require_shape(checkpoint.info(t.name).shape == t.shape,
                  t.name + " has another shape than the config implies");
  }
  const auto layers = static_cast<int>(std::min<std::int64_t>(c.num_hidden_layers, 8));
  for (int layer = 0; layer < layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    try {
      check_layer_shapes(c, layer, DecoderLayerWeights::read(checkpoint, layer));
    } catch (const Error&) {
    }
    try {
      MlpProblemOptions o;
      o.layer = layer;
      o.memory_limit_bytes = kReaderMemoryLimitBytes;
      o.keep = keep_count(static_cast<int>(c.intermediate_size), 0.5);
      const LayerProblem problem =
          build_mlp_problem_magnitude(checkpoint.read_matrix(p + "mlp.down_proj.weight"), o);
      require_shape(problem.num_units() == c.intermediate_size,
                    "layer " + std::to_string(layer) + " MLP problem has " +
                        std::to_string(problem.num_units()) + " units, intermediate_size is " +
                        std::to_string(c.intermediate_size));
    } catch (const Error&) {
    }
    try {
      HeadProblemOptions o;
      o.layer = layer;
      o.memory_limit_bytes = kReaderMemoryLimitBytes;
      o.shape = {static_cast<int>(c.num_attention_heads), static_cast<int>(c.num_key_value_heads),
                 static_cast<int>(c.head_dim)};
      const bool mha = c.num_attention_heads == c.num_key_value_heads;
      o.units = mha ? UnitKind::kHeads : UnitKind::kHeadsPerGroup;
      o.keep = mha ? keep_count(o.shape.num_heads, 0.5)
                   : keep_count(o.shape.num_heads, 0.5, o.shape.num_kv_heads);
      const LayerProblem problem =
          build_head_problem_magnitude(checkpoint.read_matrix(p + "self_attn.o_proj.weight"), o);
      require_shape(
          problem.num_channels() == c.num_attention_heads * c.head_dim,
          "layer " + std::to_string(layer) + " head problem covers " +
              std::to_string(problem.num_channels()) + " o_proj channels, config " +
              "implies heads x head_dim = " + std::to_string(c.num_attention_heads * c.head_dim));
    } catch (const Error&) {
    }
  }
}

}  // namespace detail

/// Runs the reader of `target` on the file at `path`. Throws qprune::Error for rejected input
/// (and InvalidArgument for an unknown target); anything else escaping is a bug in a reader.
inline void read_with(const std::string& target, const std::filesystem::path& path) {
  const std::vector<std::string>& qubo = qubo_format_targets();
  if (std::find(qubo.begin(), qubo.end(), target) != qubo.end() || target == "gzip") {
    ReadOptions options;
    options.format = target == "gzip" ? "qbsolv" : target;
    options.memory_limit_bytes = kReaderMemoryLimitBytes;
    const QuboModel model = read_model(path.string(), options);
    (void)model.energy(Assignment(static_cast<std::size_t>(model.num_variables()), 0));
  } else if (target == "safetensors") {
    detail::touch_tensors(SafetensorsFile::open(path));
  } else if (target == "index") {
    // model.safetensors.index.json of a sharded checkpoint: the input becomes the index of a
    // per-process folder that holds the tiny test checkpoint's config.json and its weights as the
    // one shard the seed index names; the folder is opened and every tensor it maps is read.
    namespace fs = std::filesystem;
    const fs::path folder =
        fs::temp_directory_path() / ("qprune_fuzz_index_" + std::to_string(::getpid()));
    if (!fs::exists(folder / "config.json")) {
      const fs::path tiny = fs::path(QPRUNE_TEST_DATA) / "checkpoints" / "tiny-llama-gqa";
      fs::create_directories(folder);
      fs::copy_file(tiny / "model.safetensors", folder / "model-00001-of-00001.safetensors",
                    fs::copy_options::overwrite_existing);
      fs::copy_file(tiny / "config.json", folder / "config.json",
                    fs::copy_options::overwrite_existing);
    }
    fs::copy_file(path, folder / "model.safetensors.index.json",
                  fs::copy_options::overwrite_existing);
    const Checkpoint checkpoint = Checkpoint::open(folder);
    std::vector<std::string> shards_read;
    for (const std::string& name : checkpoint.tensor_names()) {
      const std::string& shard = checkpoint.shard_of(name);
      if (std::find(shards_read.begin(), shards_read.end(), shard) != shards_read.end()) continue;
      shards_read.push_back(shard);
      detail::touch_tensors(checkpoint.file_of(name));
    }
  } else if (target == "checkpoint") {
    // The loader as the commands use it: one folder from the input, opened, every tensor of every
    // shard read, then the per-layer views of mask/apply built from config and tensors together.
    const Checkpoint checkpoint = Checkpoint::open(detail::checkpoint_folder_of(path));
    for (const std::string& shard : checkpoint.shard_files()) {
      for (const std::string& name : checkpoint.tensor_names()) {
        if (checkpoint.shard_of(name) != shard) continue;
        detail::touch_tensors(checkpoint.file_of(name));
        break;
      }
    }
    detail::touch_layers(checkpoint);
  } else if (target == "config") {
    const ModelConfig config = ModelConfig::load(path.string());
    (void)expected_tensors(config);
    // What was accepted must write back to text that is accepted again.
    (void)ModelConfig::parse(config.to_json(), path.string() + " (written back)");
  } else if (target == "masks") {
    (void)read_masks(path);
  } else if (target == "solution") {
    // Sizes that reach every branch (empty, one value, lists, 0/1 strings) and the 100 of the
    // bqp100 solution fixtures; rejected only when no size accepts the file.
    std::optional<ParseError> last;
    for (const int n : {0, 1, 4, 16, 100}) {
      try {
        (void)read_solution(path.string(), n);
        return;
      } catch (const ParseError& e) {
        last = e;
      }
    }
    throw *last;
  } else if (target == "calibration") {
    const CalibrationStatsFile stats = CalibrationStatsFile::open(path);
    for (const StatsKind kind : {StatsKind::kMlp, StatsKind::kAttn}) {
      if (!stats.has(kind)) continue;
      for (int layer = 0; layer < std::min(stats.num_layers(), 64); ++layer)
        (void)stats.read(kind, layer);
    }
  } else {
    throw InvalidArgument("unknown fuzz target '" + target + "'");
  }
}

}  // namespace qprune::fuzz
