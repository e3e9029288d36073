// Running a checkpoint over text: tokenising (byte-level models, or given token ids), collecting
// the calibration statistics the pruning QUBO needs (per layer the Gram matrix and mean of the MLP
// activations and of the o_proj input, accumulated in double while streaming over windows of
// text), and measuring perplexity on held-out text.
//
// The statistics file layout is the one of docs/calibration_stats.md (layers.L.mlp.gram, ...).
//
// Example:
//   Checkpoint ckpt = Checkpoint::open("examples/model/checkpoint");
//   Transformer model(ckpt);
//   std::vector<std::int32_t> ids = byte_tokens(read_text("examples/model/calibration.txt"));
//   CalibrationStatistics stats = collect_calibration_statistics(model, ids, {});
//   write_calibration_statistics(stats, ckpt, "calib.safetensors");
//   PerplexityResult ppl = evaluate_perplexity(model, byte_tokens(heldout), {});
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/calibration.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/job_runner.hpp"
#include "qprune/pruning.hpp"
#include "qprune/transformer.hpp"

namespace qprune {

class Checkpoint;

/// True when the checkpoint's tokenizer is byte-level (token id = byte value): its
/// tokenizer_config.json says `"qprune_byte_level": true`, or names `"tokenizer_class":
/// "ByteLevel"`, and vocab_size is 256. Anything else (or no tokenizer file) is false.
[[nodiscard]] bool is_byte_level(const Checkpoint& checkpoint);

/// The bytes of `text` as token ids 0..255.
[[nodiscard]] std::vector<std::int32_t> byte_tokens(const std::string& text);

/// `text` as the checkpoint's model reads it: one token per byte for a byte-level checkpoint, else
/// its tokenizer.json (with the BOS token where the tokenizer adds one). Throws InvalidArgument
/// naming the folder when it has neither, or naming tokenizer.json when it gives an id outside
/// vocab_size.
[[nodiscard]] std::vector<std::int32_t> checkpoint_tokens(const Checkpoint& checkpoint,
                                                          const std::string& text);

/// Whitespace-separated decimal token ids from a file. Throws IoError if it cannot be read,
/// ParseError (`path:line: expected a token id in [0, vocab_size), found ...`) otherwise.
[[nodiscard]] std::vector<std::int32_t> read_token_ids(const std::filesystem::path& path,
                                                       std::int64_t vocab_size);

/// Progress callback: tokens done so far, tokens in all.
using ProgressFn = std::function<void(std::int64_t done, std::int64_t total)>;

struct CalibrationOptions {
  std::int64_t context = 256;          ///< window length in tokens (>= 1); default 256
  std::int64_t max_tokens = 0;         ///< use at most this many tokens; 0 (default): all
  std::int64_t windows_per_batch = 8;  ///< windows per forward call (layer weights read once per
                                       ///< call); >= 1, default 8
  /// Batches per chunk, >= 1, default 8: each chunk's sums start from zero and the chunks are
  /// added in order, so the statistics depend on this (and windows_per_batch) but never on how
  /// many processes computed the chunks.
  std::int64_t batches_per_chunk = 8;
  /// Where the chunks run (not owned); null: this process, one chunk after another.
  JobRunner* runner = nullptr;
  bool mlp = true;   ///< collect the MLP statistics (default true)
  bool attn = true;  ///< collect the o_proj input statistics (default true)
  /// MoE layers: block inputs of this many evenly spaced tokens are kept for measuring a mask's
  /// exact re-routed error (ExpertStats::inputs); 0: none. Default 4096.
  std::int64_t moe_sample_tokens = 4096;
  ProgressFn progress;  ///< called after each chunk (on the coordinator); may be empty
  /// Throws InvalidArgument naming the field and its bound.
  void validate() const;
};

/// Per layer statistics (Gram = sum a a^T, mean, T) for the MLP activations and the o_proj input;
/// a vector is empty when that kind was not collected.
struct CalibrationStatistics {
  std::vector<ActivationStats> mlp;  ///< empty statistics (gram of size 0) for a MoE layer
  std::vector<ActivationStats> attn;
  std::vector<ExpertStats> experts;  ///< per layer; empty statistics for a dense layer
  std::int64_t num_tokens = 0;
};

/// Runs the model over `tokens` cut into consecutive windows of `context` tokens (the last may be
/// shorter; each window is an independent sequence starting at position 0) and accumulates the
/// statistics in double. Memory: the Grams twice (the total and one chunk's sums) plus one batch
/// of activations, never all of them. With a multi-process runner every process calls this and
/// only the coordinator's result holds the statistics.
/// Throws InvalidArgument for an empty token list or a bad option.
[[nodiscard]] CalibrationStatistics collect_calibration_statistics(
    const Transformer& model, std::span<const std::int32_t> tokens,
    const CalibrationOptions& options);

/// Writes the statistics file (docs/calibration_stats.md): F64 tensors (F32 when `compact`: half
/// the size) layers.L.{mlp,attn}.{gram,
/// mean}, metadata qprune_format, version, tokens, num_layers and model (the fnv1a64 hash of the
/// checkpoint's config.json). Through a temporary file and a rename; IoError on failure.
void write_calibration_statistics(const CalibrationStatistics& stats, const Checkpoint& checkpoint,
                                  const std::filesystem::path& path, bool compact = false);

struct PerplexityOptions {
  std::int64_t context = 256;          ///< window length (>= 2); default 256
  std::int64_t max_tokens = 0;         ///< use at most this many tokens; 0 (default): all
  std::int64_t windows_per_batch = 8;  ///< windows per forward call, >= 1; default 8
  ProgressFn progress;                 ///< may be empty
  void validate() const;
};

/// Perplexity over a token sequence. Windows of `context` tokens overlap by one token (window k
/// starts at k * (context - 1)), so every token but the first is predicted exactly once, from at
/// most context - 1 preceding tokens of its window.
struct PerplexityResult {
  std::int64_t num_tokens = 0;     ///< tokens read
  std::int64_t num_predicted = 0;  ///< tokens scored (num_tokens - 1)
  double total_nll = 0.0;          ///< sum of -log p over the scored tokens (nats)
  double mean_nll = 0.0;           ///< total_nll / num_predicted (nats per token)
  double perplexity = 0.0;         ///< exp(mean_nll)
  double bits_per_token = 0.0;     ///< mean_nll / ln 2 (bits per byte for byte-level models)
};

/// Throws InvalidArgument when fewer than 2 tokens are given or an option is out of range.
[[nodiscard]] PerplexityResult evaluate_perplexity(const Transformer& model,
                                                   std::span<const std::int32_t> tokens,
                                                   const PerplexityOptions& options);

}  // namespace qprune
