// `qprune perplexity CKPT --text FILE`: perplexity and bits per byte (per token) of a checkpoint on
// held-out text, to compare a pruned model with the original.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/interrupt.hpp"
#include "cli/report.hpp"
#include "cli/token_input.hpp"
#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/transformer.hpp"

namespace qprune::cli {
namespace {

struct PerplexityCliOptions {
  std::string checkpoint;
  TokenWindows windows;
  std::string suppress_text;  ///< behaviour measurement: held-out text of the suppressed set A
  std::string preserve_text;  ///< ... and of the preserved set B
  std::string reference;      ///< the original checkpoint, for increases and selectivity
  std::string expert_masks;   ///< --expert-masks: the model as these expert masks prune it
  bool json = false;
};

// One text's figure on one checkpoint: bits per byte for byte-level text, else bits per token.
double bits_on(const Checkpoint& ckpt, const std::string& text, const TokenWindows& windows,
               const std::string& expert_masks, ProgressLine& progress) {
  Transformer model(ckpt);
  route_by_expert_masks(model, ckpt, expert_masks);
  TokenInput in;
  in.text = text;
  const std::vector<std::int32_t> ids = read_tokens(ckpt, in);
  if (ids.size() < 2)
    throw InvalidArgument(text + ": " + std::to_string(ids.size()) +
                          " tokens; at least 2 are needed to measure anything");
  PerplexityOptions po;
  set_window_options(windows, progress, po);
  return evaluate_perplexity(model, ids, po).bits_per_token;
}

// `perplexity CKPT --suppress-text A --preserve-text B [--reference ORIGINAL]`: the behaviour
// measurement of docs/pruning_math.md section 11.5 (issue 21's "freedom index" analogue).
int run_behaviour_perplexity(const PerplexityCliOptions& opts) {
  if (opts.suppress_text.empty() || opts.preserve_text.empty())
    throw InvalidArgument("give both --suppress-text A and --preserve-text B");
  if (!opts.windows.input.text.empty() || !opts.windows.input.token_ids.empty())
    throw InvalidArgument("--suppress-text/--preserve-text replace --text/--token-ids");
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  const bool bytes = is_byte_level(ckpt);
  const std::string unit = bytes ? "bits_per_byte" : "bits_per_token";
  const std::string unit_text = bytes ? "bits per byte" : "bits per token";
  ProgressLine progress("perplexity");
  const double a = bits_on(ckpt, opts.suppress_text, opts.windows, opts.expert_masks, progress);
  const double b = bits_on(ckpt, opts.preserve_text, opts.windows, opts.expert_masks, progress);
  Report r("perplexity");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  r.add("Suppressed text", "suppress_text", opts.suppress_text);
  r.add("Preserved text", "preserve_text", opts.preserve_text);
  r.add("Context", "context", opts.windows.context);
  r.add("Suppressed " + unit_text, "suppress_" + unit, a);
  r.add("Preserved " + unit_text, "preserve_" + unit, b);
  if (!opts.reference.empty()) {
    const Checkpoint ref = Checkpoint::open(opts.reference);
    if (is_byte_level(ref) != bytes)
      throw InvalidArgument("--reference " + opts.reference + " and " + opts.checkpoint +
                            " do not share a tokenizer kind (byte-level or not)");
    const double ra = bits_on(ref, opts.suppress_text, opts.windows, "", progress);
    const double rb = bits_on(ref, opts.preserve_text, opts.windows, "", progress);
    r.add("Reference", "reference", opts.reference);
    r.add("Reference suppressed " + unit_text, "reference_suppress_" + unit, ra);
    r.add("Reference preserved " + unit_text, "reference_preserve_" + unit, rb);
    r.add("Suppressed increase", "suppress_increase", a - ra);
    r.add("Preserved increase", "preserve_increase", b - rb);
    r.add("Suppressed relative increase", "suppress_relative_increase", (a - ra) / ra);
    r.add("Preserved relative increase", "preserve_relative_increase", (b - rb) / rb);
    // Increase on A over increase on B; undefined when B did not rise (then say so).
    if (b - rb > 0.0) {
      r.add("Selectivity", "selectivity", (a - ra) / (b - rb));
    } else {
      r.add("Selectivity", "selectivity", "undefined (no increase on the preserved text)");
    }
  }
  r.add("Seconds", "seconds", progress.seconds());
  r.print(std::cout, opts.json);
  return 0;
}

int run_perplexity(const PerplexityCliOptions& opts) {
  if (!opts.suppress_text.empty() || !opts.preserve_text.empty())
    return run_behaviour_perplexity(opts);
  if (!opts.reference.empty())
    throw InvalidArgument("--reference goes with --suppress-text and --preserve-text");
  (void)install_interrupt_handler();  // the forward pass polls it (exit 5, nothing printed)
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  Transformer model(ckpt);
  route_by_expert_masks(model, ckpt, opts.expert_masks);
  const TokenInput& in = opts.windows.input;
  const std::vector<std::int32_t> ids = read_tokens(ckpt, in);
  ProgressLine progress("perplexity");
  PerplexityOptions po;
  set_window_options(opts.windows, progress, po);
  const PerplexityResult res = evaluate_perplexity(model, ids, po);
  const double s = progress.seconds();
  // --text on a byte-level checkpoint: one token per byte (tokenizer.json: real tokens).
  const bool bytes = in.token_ids.empty() && is_byte_level(ckpt);

  Report r("perplexity");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  std::int64_t parameters = 0, tensor_bytes = 0;
  for (const std::string& name : ckpt.tensor_names()) {
    const TensorInfo& t = ckpt.info(name);
    parameters += t.num_elements();
    tensor_bytes += static_cast<std::int64_t>(t.num_bytes());
  }
  r.add("Parameters", "parameters", parameters);
  r.add("Tensor bytes", "tensor_bytes", tensor_bytes);
  r.add("Input", "input", in.token_ids.empty() ? in.text : in.token_ids);
  r.add("Tokens", "tokens", res.num_tokens);
  r.add("Predicted tokens", "predicted_tokens", res.num_predicted);
  r.add("Context", "context", opts.windows.context);
  r.add("Mean NLL (nats/token)", "mean_nll", res.mean_nll);
  r.add("Perplexity", "perplexity", res.perplexity);
  if (bytes)
    r.add("Bits per byte", "bits_per_byte", res.bits_per_token);
  else
    r.add("Bits per token", "bits_per_token", res.bits_per_token);
  r.add("Seconds", "seconds", s);
  r.print(std::cout, opts.json);
  return 0;
}

}  // namespace

void setup_perplexity(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<PerplexityCliOptions>();
  CLI::App* sub =
      app.add_subcommand("perplexity", "Perplexity and bits per byte of a checkpoint on text");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder (config.json + safetensors)")
      ->required();
  add_token_windows(*sub, opts->windows, 2);  // a window of one token predicts nothing
  add_expert_masks_option(*sub, opts->expert_masks);
  sub->add_option("--suppress-text", opts->suppress_text,
                  "behaviour measurement: held-out text of the set A a contrast suppresses (with "
                  "--preserve-text, instead of --text)");
  sub->add_option("--preserve-text", opts->preserve_text,
                  "behaviour measurement: held-out text of the set B it preserves");
  sub->add_option("--reference", opts->reference,
                  "the original checkpoint: report the increase on A and on B and the "
                  "selectivity = increase on A / increase on B");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->footer(
      "Windows of --context tokens overlap by one token, so every token but the first is "
      "predicted\n"
      "exactly once. With --text on a byte-level checkpoint bits per token are bits per byte;\n"
      "on a checkpoint with tokenizer.json the text is tokenised with it (docs/formats.md).");
  sub->callback([opts, &result] { result.exit_code = run_perplexity(*opts); });
}

}  // namespace qprune::cli
