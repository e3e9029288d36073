// The readers the fuzz targets exercise, by target name, as one function each: read a file the way
// qprune does and touch everything it returns. Shared by the libFuzzer entry point
// (fuzz_target.cpp, one executable per target) and by the regression test that replays every
// saved crashing input through the ordinary build (tests/test_fuzz_regressions.cpp).
//
// Contract checked: a reader either returns or throws qprune::Error. Any other exception, a
// sanitizer report, a crash or a hang is a finding.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/masks.hpp"
#include "qprune/model_config.hpp"

#include <unistd.h>

namespace qprune::fuzz {

/// The QUBO formats of the registry that can be read, each a fuzz target of the same name.
inline const std::vector<std::string>& qubo_format_targets() {
  static const std::vector<std::string> names = {"qbsolv", "coo",     "json",   "mqlib",
                                                 "maxcut", "beasley", "biqmac", "qplib"};
  return names;
}

/// Every fuzz target name: the QUBO formats, then the checkpoint-side readers.
inline std::vector<std::string> target_names() {
  std::vector<std::string> names = qubo_format_targets();
  for (const char* n : {"safetensors", "index", "config", "masks", "solution", "calibration"})
    names.emplace_back(n);
  return names;
}

/// Memory limit the QUBO readers get here (ReadOptions::memory_limit_bytes): far below the
/// fuzzer's 2 GiB RSS limit, so a small file that declares a huge model must be refused up front.
inline constexpr std::uint64_t kReaderMemoryLimitBytes = std::uint64_t{256} << 20;

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

}  // namespace detail

/// Runs the reader of `target` on the file at `path`. Throws qprune::Error for rejected input
/// (and InvalidArgument for an unknown target); anything else escaping is a bug in a reader.
inline void read_with(const std::string& target, const std::filesystem::path& path) {
  const std::vector<std::string>& qubo = qubo_format_targets();
  if (std::find(qubo.begin(), qubo.end(), target) != qubo.end()) {
    ReadOptions options;
    options.format = target;
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
