// `qprune perplexity CKPT --text FILE`: perplexity and bits per byte (per token) of a checkpoint on
// held-out text, to compare a pruned model with the original.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "cli/token_input.hpp"
#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/transformer.hpp"

namespace qprune::cli {
namespace {

struct PerplexityCliOptions {
  std::string checkpoint;
  TokenInput input;
  std::int64_t tokens = 0;
  std::int64_t context = 256;
  std::int64_t batch = 8;
  bool quiet = false;
  bool json = false;
};

int run_perplexity(const PerplexityCliOptions& opts) {
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  const Transformer model(ckpt);
  const std::vector<std::int32_t> ids = read_tokens(ckpt, opts.input);
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  PerplexityOptions po;
  po.context = opts.context;
  po.max_tokens = opts.tokens;
  po.windows_per_batch = opts.batch;
  if (!opts.quiet)
    po.progress = [&](std::int64_t done, std::int64_t total) {
      print_progress("perplexity", done, total, seconds());
    };
  const PerplexityResult res = evaluate_perplexity(model, ids, po);
  const double s = seconds();
  const bool bytes = opts.input.token_ids.empty();  // --text: one token per byte

  Report r;
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  std::int64_t parameters = 0, tensor_bytes = 0;
  for (const std::string& name : ckpt.tensor_names()) {
    const TensorInfo& t = ckpt.info(name);
    parameters += t.num_elements();
    tensor_bytes += static_cast<std::int64_t>(t.num_bytes());
  }
  r.add("Parameters", "parameters", parameters);
  r.add("Tensor bytes", "tensor_bytes", tensor_bytes);
  r.add("Input", "input", bytes ? opts.input.text : opts.input.token_ids);
  r.add("Tokens", "tokens", res.num_tokens);
  r.add("Predicted tokens", "predicted_tokens", res.num_predicted);
  r.add("Context", "context", opts.context);
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
  add_token_input(*sub, opts->input);
  sub->add_option("--tokens", opts->tokens, "use at most N tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--context", opts->context, "window length in tokens (>= 2)")
      ->check(CLI::Range(std::int64_t{2}, std::int64_t{1} << 30))
      ->capture_default_str();
  sub->add_option("--batch", opts->batch, "windows per forward call (layer weights read once)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_flag("-q,--quiet", opts->quiet, "no progress on stderr");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->footer(
      "Windows of --context tokens overlap by one token, so every token but the first is predicted\n"
      "exactly once. With --text (byte-level checkpoints) bits per token are bits per byte.");
  sub->callback([opts, &result] { result.exit_code = run_perplexity(*opts); });
}

}  // namespace qprune::cli
