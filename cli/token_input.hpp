// Token input shared by `qprune calibrate` and `qprune perplexity`: text through the byte tokenizer
// of byte-level checkpoints, or whitespace-separated token ids (--token-ids) for any checkpoint;
// and a progress line on stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "qprune/checkpoint.hpp"

namespace qprune::cli {

struct TokenInput {
  std::string text;       ///< --text FILE (byte-level checkpoints)
  std::string token_ids;  ///< --token-ids FILE (any checkpoint)
};

/// Adds --text and --token-ids (exactly one of them is required).
void add_token_input(CLI::App& sub, TokenInput& input);

/// The token ids the options name. Throws InvalidArgument when --text is given for a checkpoint
/// whose tokenizer is not byte-level (pre-tokenise and pass --token-ids instead).
[[nodiscard]] std::vector<std::int32_t> read_tokens(const Checkpoint& checkpoint,
                                                    const TokenInput& input);

/// Prints "`what`: done/total tokens (p%), s s, r tok/s" on stderr, overwriting the line.
void print_progress(const char* what, std::int64_t done, std::int64_t total, double seconds);

}  // namespace qprune::cli
