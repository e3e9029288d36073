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
#include "qprune/transformer.hpp"

namespace qprune::cli {
namespace {

struct PerplexityCliOptions {
  std::string checkpoint;
  TokenWindows windows;
  bool json = false;
};

int run_perplexity(const PerplexityCliOptions& opts) {
  (void)install_interrupt_handler();  // the forward pass polls it (exit 5, nothing printed)
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  const Transformer model(ckpt);
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
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->footer(
      "Windows of --context tokens overlap by one token, so every token but the first is "
      "predicted\n"
      "exactly once. With --text on a byte-level checkpoint bits per token are bits per byte;\n"
      "on a checkpoint with tokenizer.json the text is tokenised with it (docs/formats.md).");
  sub->callback([opts, &result] { result.exit_code = run_perplexity(*opts); });
}

}  // namespace qprune::cli
