// Token input shared by `qprune calibrate` and `qprune perplexity`: text through the checkpoint's
// tokenizer.json (qprune/tokenizer.hpp) or the byte tokenizer of byte-level checkpoints, or
// whitespace-separated token ids (--token-ids) for any checkpoint;
// the token-window options (--tokens, --context, --batch, -q) both commands take; their
// progress line on stderr; and --expert-masks, the model as expert masks prune it.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/token_input.hpp is part of the cli program; no library layer may include it"
#endif

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cli/progress_line.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/transformer.hpp"

namespace qprune::cli {

struct TokenInput {
  std::string text;       ///< --text FILE (tokenizer.json or byte-level checkpoints)
  std::string token_ids;  ///< --token-ids FILE (any checkpoint)
};

/// The token ids the options name. --text goes through the byte tokenizer of a byte-level
/// checkpoint, else through the folder's tokenizer.json (bos first when the tokenizer adds one).
/// Throws InvalidArgument when the folder has neither (tokenise and pass --token-ids instead) or
/// an id is outside the model's vocab_size, ParseError for a bad tokenizer.json.
[[nodiscard]] std::vector<std::int32_t> read_tokens(const Checkpoint& checkpoint,
                                                    const TokenInput& input);

/// The token input and how it is cut into windows (the library's CalibrationOptions and
/// PerplexityOptions take the same three numbers).
struct TokenWindows {
  TokenInput input;
  std::int64_t tokens = 0;     ///< --tokens: at most this many tokens, 0 = all
  std::int64_t context = 256;  ///< --context: window length in tokens
  std::int64_t batch = 8;      ///< --batch: windows per forward call
  bool quiet = false;          ///< -q: no progress on stderr
};

/// Adds --text/--token-ids (one of them is required, read_tokens checks), --tokens, --context (at
/// least `min_context`), --batch and -q.
void add_token_windows(CLI::App& sub, TokenWindows& windows, std::int64_t min_context);

/// A callback showing "done/total tokens (p%), s s, r tok/s" on `line` (which must outlive it),
/// or an empty one when `quiet`.
[[nodiscard]] std::function<void(std::int64_t, std::int64_t)> token_progress(ProgressLine& line,
                                                                             bool quiet);

/// Copies the window numbers and the progress callback into a library options struct
/// (CalibrationOptions or PerplexityOptions).
template <class Options>
void set_window_options(const TokenWindows& windows, ProgressLine& progress, Options& options) {
  options.context = windows.context;
  options.max_tokens = windows.tokens;
  options.windows_per_batch = windows.batch;
  options.progress = token_progress(progress, windows.quiet);
}

/// Adds --expert-masks FILE: run the model as those expert masks (`mask --unit experts`) prune
/// it, the removed experts never routed to, without writing it (sequential expert calibration:
/// calibrate layer L on the inputs that the pruned layers before it produce).
void add_expert_masks_option(CLI::App& sub, std::string& path);

/// Routes `model` around the experts `path` removes (nothing when `path` is empty). Throws
/// InvalidArgument naming the file for masks of another checkpoint or entries that are not
/// experts (MLP neurons and heads: apply those masks first).
void route_by_expert_masks(Transformer& model, const Checkpoint& checkpoint,
                           const std::string& path);

}  // namespace qprune::cli
