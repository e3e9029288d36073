// `qprune gguf CKPT [--masks M] -o model.gguf`: the checkpoint, pruned or not, as one llama.cpp
// model file (library: write_gguf in include/qprune/prune_pipeline.hpp).
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/interrupt.hpp"
#include "cli/output_guard.hpp"
#include "cli/progress_line.hpp"
#include "cli/report.hpp"
#include "qprune/prune_pipeline.hpp"

namespace qprune::cli {
namespace {

struct GgufCommandOptions {
  std::string checkpoint;
  std::string masks;
  std::string calib;
  std::string output;
  std::string dtype = "keep";
  bool refit = false;
  bool keep_zero_units = false;
  bool quiet = false;
  bool json = false;
};

std::string widths_text(const std::vector<std::int64_t>& v) {
  std::string s;
  for (const std::int64_t x : v) s += (s.empty() ? "" : " ") + std::to_string(x);
  return s;
}

int run_gguf(const GgufCommandOptions& opts) {
  (void)install_interrupt_handler();  // writing polls it: Ctrl-C leaves the old output as it was
  guard_outputs(
      {{"--output", opts.output}},
      {{"checkpoint", opts.checkpoint}, {"--masks", opts.masks}, {"--calib", opts.calib}});
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  std::optional<Masks> masks;
  if (!opts.masks.empty()) masks.emplace(read_masks(opts.masks));
  std::optional<CalibrationStatsFile> stats;
  const bool need_stats = masks && (masks->mean_compensation || opts.refit);
  if (opts.refit && !masks) throw InvalidArgument("--refit needs --masks");
  const std::string calib = !opts.calib.empty() ? opts.calib
                            : need_stats        ? masks->calibration
                                                : std::string();
  if (!calib.empty()) stats.emplace(CalibrationStatsFile::open(calib));
  guard_outputs({{"--output", opts.output}}, {{"statistics file (from the masks)", calib}});
  ApplyOptions ao;
  ao.refit = opts.refit;
  GgufOptions go;
  go.drop_zero_units = !opts.keep_zero_units;
  if (opts.dtype != "keep")
    go.dtype = dtype_from_name(opts.dtype == "f32" ? "F32" : opts.dtype == "f16" ? "F16" : "BF16");
  ProgressLine line("gguf");
  if (!opts.quiet)
    go.progress = [&](std::size_t done, std::size_t total) {
      if (line.due())
        line.show("writing tensor " + std::to_string(done) + "/" + std::to_string(total));
    };
  const GgufReport rep =
      write_gguf(ckpt, masks ? &*masks : nullptr, stats ? &*stats : nullptr, opts.output, ao, go);
  line.finish();
  for (const std::string& w : rep.warnings) std::cerr << "qprune: warning: " << w << "\n";
  Report r("gguf");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  r.add("Masks", "masks", opts.masks);
  r.add("Output", "output", opts.output);
  r.add("Architecture", "architecture", rep.architecture);
  r.add("MLP width per layer", "", widths_text(rep.mlp_widths));
  r.add("Heads per layer", "", widths_text(rep.heads));
  r.add("KV heads per layer", "", widths_text(rep.kv_heads));
  r.add("Tokenizer", "tokenizer", rep.tokenizer);
  r.add("Zero units left out", "zero_units_dropped", rep.zero_units_dropped);
  r.add("Parameters stored", "stored_parameters", rep.stored_parameters);
  r.add("File bytes", "file_bytes", static_cast<std::int64_t>(rep.file_bytes));
  r.add("Refit", "refit", opts.refit);
  r.add_json("mlp_widths", rep.mlp_widths);
  r.add_json("heads", rep.heads);
  r.add_json("kv_heads", rep.kv_heads);
  r.add_json("warnings", rep.warnings);
  r.print(std::cout, opts.json);
  return kExitOk;
}

}  // namespace

void setup_gguf(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<GgufCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "gguf", "Write a checkpoint, pruned by a masks file or not, as a llama.cpp GGUF model");
  sub->footer(
      "Every layer is written at its own widths: a global allocation (mask --allocation global) "
      "stores only the units it keeps, where `qprune apply` pads a Hugging Face folder to the "
      "widest layer. Architecture: the model's own (qwen2, llama) when all layers have the same "
      "widths, else llama.cpp's `deci`, which reads per-layer feed_forward_length, head_count and "
      "head_count_kv arrays. Without --masks, units that contribute exactly nothing are left out "
      "(the zero padding of a global allocation written by `apply` or `prune`), so a padded "
      "folder converts to the unpadded model. Slicing, mean compensation and --refit are those of "
      "`qprune apply`. "
      "Matrices keep their dtype (F32/F16/BF16) unless --dtype says otherwise; norms and biases "
      "are F32. The byte-level example model gets a 256-token byte vocabulary; a model without a "
      "tokenizer qprune reads gets none (give llama.cpp token ids). Example:\n"
      "  qprune gguf examples/model/checkpoint --masks masks.json -o pruned.gguf");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder")->required();
  sub->add_option("--masks,-m", opts->masks, "masks file from `qprune mask` (default: no pruning)");
  sub->add_option("--calib", opts->calib,
                  "calibration statistics (default: the file the masks were computed with)");
  sub->add_option("--output,-o", opts->output, "GGUF file to write (replaced atomically)")
      ->required();
  sub->add_option("--dtype", opts->dtype, "matrix element type: keep (default), f32, f16, bf16")
      ->check(CLI::IsMember({"keep", "f32", "f16", "bf16"}));
  sub->add_flag("--refit", opts->refit, "least-squares refit of the kept columns (needs --masks)");
  sub->add_flag("--keep-zero-units", opts->keep_zero_units,
                "without --masks: write units that contribute nothing (zero down_proj columns, "
                "zero o_proj head blocks) instead of leaving them out");
  sub->add_flag("-q,--quiet", opts->quiet, "no progress on stderr");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, &result] { result.exit_code = run_gguf(*opts); });
}

}  // namespace qprune::cli
