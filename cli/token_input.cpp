// Token input and progress output of the model subcommands (see token_input.hpp).
#include "cli/token_input.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/validators.hpp"
#include "core/input_file.hpp"
#include "qprune/calibration.hpp"
#include "qprune/error.hpp"
#include "qprune/masks.hpp"

namespace qprune::cli {
namespace {

void add_token_input(CLI::App& sub, TokenInput& input) {
  auto* text = sub.add_option("--text", input.text,
                              "text file, tokenised with the checkpoint's tokenizer.json (BPE: "
                              "Llama 2/3, Qwen2, GPT-2 style) or, for a byte-level checkpoint, "
                              "one token per byte")
                   ->check(CLI::ExistingFile);
  auto* ids = sub.add_option("--token-ids", input.token_ids,
                             "file of whitespace-separated integer token ids (any checkpoint)")
                  ->check(CLI::ExistingFile);
  text->excludes(ids);
  ids->excludes(text);
}

}  // namespace

std::vector<std::int32_t> read_tokens(const Checkpoint& checkpoint, const TokenInput& input) {
  if (!input.token_ids.empty())
    return read_token_ids(input.token_ids, checkpoint.config().vocab_size);
  if (input.text.empty()) throw InvalidArgument("one of --text or --token-ids is required");
  return checkpoint_tokens(checkpoint, qprune::detail::read_input_file(input.text));
}

void add_token_windows(CLI::App& sub, TokenWindows& w, std::int64_t min_context) {
  add_token_input(sub, w.input);
  sub.add_option("--tokens", w.tokens, "use at most N tokens (0: all)")->check(non_negative());
  sub.add_option("--context", w.context,
                 "window length in tokens (>= " + std::to_string(min_context) + ")")
      ->check(CLI::Range(min_context, std::int64_t{1} << 30))
      ->capture_default_str();
  sub.add_option("--batch", w.batch, "windows per forward call (layer weights read once)")
      ->check(positive())
      ->capture_default_str();
  sub.add_flag("-q,--quiet", w.quiet, "no progress on stderr");
}

std::function<void(std::int64_t, std::int64_t)> token_progress(ProgressLine& line, bool quiet) {
  if (quiet) return {};
  return [&line](std::int64_t done, std::int64_t total) {
    const double s = line.seconds();
    const double pct =
        total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 0.0;
    const double rate = s > 0 ? static_cast<double>(done) / s : 0.0;
    char text[128];
    std::snprintf(text, sizeof text, "%lld/%lld tokens (%.0f%%), %.1f s, %.0f tok/s",
                  static_cast<long long>(done), static_cast<long long>(total), pct, s, rate);
    // The last line always shows: the totals are the command's record of what it read.
    line.show(text, done >= total);
    if (done >= total) line.finish();
  };
}

void add_expert_masks_option(CLI::App& sub, std::string& path) {
  sub.add_option("--expert-masks", path,
                 "run the model as these expert masks prune it (removed experts never routed "
                 "to), without writing it: calibrate a MoE layer on the inputs the pruned layers "
                 "before it produce")
      ->check(CLI::ExistingFile);
}

void route_by_expert_masks(Transformer& model, const Checkpoint& checkpoint,
                           const std::string& path) {
  if (path.empty()) return;
  const Masks masks = read_masks(path);
  masks.check_identity(checkpoint);
  for (const LayerMask& e : masks.entries) {
    if (e.unit != UnitKind::kExperts)
      throw InvalidArgument(path + ": --expert-masks routes around removed experts only; its " +
                            unit_kind_name(e.unit) + " entry of layer " + std::to_string(e.layer) +
                            " needs `qprune apply` first");
    std::vector<char> keep(static_cast<std::size_t>(e.num_units), 0);
    for (const int u : e.kept) keep[static_cast<std::size_t>(u)] = 1;
    try {
      model.set_expert_keep(e.layer, std::move(keep));
    } catch (const InvalidArgument& err) {
      throw InvalidArgument(path + ": " + err.what());
    }
  }
}

}  // namespace qprune::cli
