// `qprune calibrate CKPT --text FILE -o STATS`: runs the checkpoint's forward pass over calibration
// text and writes the per-layer activation statistics (docs/calibration_stats.md) that
// `qprune mask` reads.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/parallel.hpp"
#include "cli/report.hpp"
#include "cli/token_input.hpp"
#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/transformer.hpp"

namespace qprune::cli {
namespace {

struct CalibrateOptions {
  std::string checkpoint;
  TokenInput input;
  std::int64_t tokens = 0;
  std::int64_t context = 256;
  std::int64_t batch = 8;
  std::int64_t chunk = 8;
  std::string output;
  bool quiet = false;
  bool json = false;
};

int run_calibrate(const CalibrateOptions& opts) {
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  const Transformer model(ckpt);
  const std::vector<std::int32_t> ids = read_tokens(ckpt, opts.input);
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  CalibrationOptions co;
  co.context = opts.context;
  co.max_tokens = opts.tokens;
  co.windows_per_batch = opts.batch;
  co.batches_per_chunk = opts.chunk;
  co.runner = &process_runner();
  if (!opts.quiet && co.runner->is_coordinator())
    co.progress = [&](std::int64_t done, std::int64_t total) {
      print_progress("calibrate", done, total, seconds());
    };
  const CalibrationStatistics stats = collect_calibration_statistics(model, ids, co);
  const double forward_s = seconds();
  if (!co.runner->is_coordinator()) return 0;  // rank 0 writes and reports
  write_calibration_statistics(stats, ckpt, opts.output);

  Report r;
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  r.add("Input", "input", opts.input.text.empty() ? opts.input.token_ids : opts.input.text);
  r.add("Tokens", "tokens", stats.num_tokens);
  r.add("Context", "context", opts.context);
  r.add("Layers", "num_layers", ckpt.config().num_hidden_layers);
  r.add("MLP channels", "mlp_channels", ckpt.config().intermediate_size);
  r.add("Attention channels", "attn_channels",
        ckpt.config().num_attention_heads * ckpt.config().head_dim);
  r.add("Seconds", "seconds", forward_s);
  r.add("Tokens per second", "tokens_per_second",
        forward_s > 0 ? static_cast<double>(stats.num_tokens) / forward_s : 0.0);
  r.add("Output", "output", opts.output);
  r.print(std::cout, opts.json);
  return 0;
}

}  // namespace

void setup_calibrate(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<CalibrateOptions>();
  CLI::App* sub = app.add_subcommand(
      "calibrate", "Run a checkpoint over text and write its calibration statistics");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder (config.json + safetensors)")
      ->required();
  add_token_input(*sub, opts->input);
  sub->add_option("--tokens", opts->tokens, "use at most N tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--context", opts->context, "window length in tokens")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch", opts->batch, "windows per forward call (layer weights read once)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--chunk", opts->chunk,
                  "batches per chunk: the unit of work spread over MPI ranks; the statistics "
                  "depend on --batch and --chunk, never on the number of ranks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("-o,--output", opts->output, "statistics file to write (.safetensors)")
      ->required();
  sub->add_flag("-q,--quiet", opts->quiet, "no progress on stderr");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->footer(
      "Byte-level checkpoints (tokenizer_config.json with \"qprune_byte_level\": true) read --text;\n"
      "for any other checkpoint tokenise the text yourself and pass the ids with --token-ids\n"
      "(whitespace-separated integers). The text is cut into consecutive windows of --context\n"
      "tokens, each run from position 0. See docs/calibration_stats.md for the file layout.");
  sub->callback([opts, &result] { result.exit_code = run_calibrate(*opts); });
}

}  // namespace qprune::cli
