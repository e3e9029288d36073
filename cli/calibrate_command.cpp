// `qprune calibrate CKPT --text FILE -o STATS`: runs the checkpoint's forward pass over calibration
// text and writes the per-layer activation statistics (docs/calibration_stats.md) that
// `qprune mask` reads.
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.hpp"
#include "cli/interrupt.hpp"
#include "cli/output_guard.hpp"
#include "cli/parallel.hpp"
#include "cli/report.hpp"
#include "cli/token_input.hpp"
#include "cli/validators.hpp"
#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/transformer.hpp"

namespace qprune::cli {
namespace {

struct CalibrateOptions {
  std::string checkpoint;
  TokenWindows windows;
  std::int64_t chunk = 8;
  std::string expert_masks;
  std::string output;
  bool compact = false;
  bool json = false;
};

int run_calibrate(const CalibrateOptions& opts) {
  (void)install_interrupt_handler();  // the forward pass and the write poll it
  guard_outputs({{"--output", opts.output}}, {{"checkpoint", opts.checkpoint},
                                              {"--text", opts.windows.input.text},
                                              {"--token-ids", opts.windows.input.token_ids},
                                              {"--expert-masks", opts.expert_masks}});
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  Transformer model(ckpt);
  route_by_expert_masks(model, ckpt, opts.expert_masks);
  const std::vector<std::int32_t> ids = read_tokens(ckpt, opts.windows.input);
  ProgressLine progress("calibrate");
  CalibrationOptions co;
  set_window_options(opts.windows, progress, co);
  co.batches_per_chunk = opts.chunk;
  co.runner = &process_runner();
  if (!co.runner->is_coordinator()) co.progress = nullptr;  // rank 0 reports
  const CalibrationStatistics stats = collect_calibration_statistics(model, ids, co);
  const double forward_s = progress.seconds();
  if (!co.runner->is_coordinator()) return 0;  // rank 0 writes and reports
  write_calibration_statistics(stats, ckpt, opts.output, opts.compact);

  Report r("calibrate");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  const TokenInput& in = opts.windows.input;
  r.add("Input", "input", in.text.empty() ? in.token_ids : in.text);
  r.add("Tokens", "tokens", stats.num_tokens);
  r.add("Context", "context", opts.windows.context);
  r.add("Layers", "num_layers", ckpt.config().num_hidden_layers);
  if (const std::int64_t mtp = ckpt.config().num_nextn_predict_layers; mtp > 0)
    r.add("MTP layers", "mtp_layers",
          std::to_string(mtp) + " (model.layers." +
              std::to_string(ckpt.config().num_hidden_layers) + (mtp > 1 ? " onwards" : "") +
              ", not run by the forward pass)");
  if (const std::optional<Fp8Quantization>& q = ckpt.config().fp8)
    r.add("Weights", "weights",
          "FP8 e4m3, " + std::to_string(q->block_rows) + " x " + std::to_string(q->block_cols) +
              " blocks, dequantised when read");
  r.add("MLP channels", "mlp_channels", ckpt.config().intermediate_size);
  // Latent attention (DeepSeek-V3) has no head statistics: 0 channels collected.
  r.add("Attention channels", "attn_channels",
        ckpt.config().mla.kv_lora_rank > 0
            ? std::int64_t{0}
            : ckpt.config().num_attention_heads * ckpt.config().head_dim);
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
  add_token_windows(*sub, opts->windows, 1);
  add_expert_masks_option(*sub, opts->expert_masks);
  sub->add_option("--chunk", opts->chunk,
                  "batches per chunk: the unit of work spread over MPI ranks; the statistics "
                  "depend on --batch and --chunk, never on the number of ranks")
      ->check(positive())
      ->capture_default_str();
  sub->add_option("-o,--output", opts->output, "statistics file to write (.safetensors)")
      ->required();
  sub->add_flag("--compact", opts->compact,
                "store the statistics as F32 instead of F64: half the file (a 7B-sized model's 28 "
                "MLP Grams: 40 GB instead of 80 GB), 7 significant digits");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->footer(
      "--text is tokenised with the checkpoint's tokenizer.json (Hugging Face BPE: Llama 2/3,\n"
      "Qwen2, GPT-2 style; docs/formats.md) or, for a byte-level checkpoint\n"
      "(tokenizer_config.json with \"qprune_byte_level\": true), one token per byte; otherwise\n"
      "tokenise the text yourself and pass the ids with --token-ids (whitespace-separated\n"
      "integers). The text is cut into consecutive windows of --context\n"
      "tokens, each run from position 0. See docs/calibration_stats.md for the file layout.");
  sub->callback([opts, &result] { result.exit_code = run_calibrate(*opts); });
}

}  // namespace qprune::cli
