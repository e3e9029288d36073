// `qprune apply CKPT --masks M -o OUT [--refit]`: write the pruned checkpoint (library:
// apply_masks in include/qprune/prune_pipeline.hpp).
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/interrupt.hpp"
#include "cli/output_guard.hpp"
#include "cli/report.hpp"
#include "qprune/error.hpp"
#include "qprune/prune_pipeline.hpp"

namespace qprune::cli {
namespace {

struct ApplyCommandOptions {
  std::string checkpoint;
  std::string masks;
  std::string calib;
  std::string protect;
  std::string output;
  bool refit = false;
  bool overwrite = false;
  bool json = false;
};

int run_apply(const ApplyCommandOptions& opts) {
  (void)install_interrupt_handler();  // writing polls it: Ctrl-C leaves the old output as it was
  guard_outputs({},
                {{"checkpoint", opts.checkpoint},
                 {"--masks", opts.masks},
                 {"--calib", opts.calib},
                 {"--protect", opts.protect}},
                {{"--output", opts.output}});
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  const Masks masks = read_masks(opts.masks);
  masks.check_identity(ckpt);
  std::optional<CalibrationStatsFile> stats;
  const std::string calib = !opts.calib.empty()                       ? opts.calib
                            : (masks.mean_compensation || opts.refit) ? masks.calibration
                                                                      : std::string();
  if (!calib.empty()) stats.emplace(CalibrationStatsFile::open(calib));
  guard_outputs({}, {{"statistics file (from the masks)", calib}}, {{"--output", opts.output}});
  ApplyOptions ao;
  ao.refit = opts.refit;
  ao.protected_statistics = opts.protect;
  if (!opts.protect.empty() && !(opts.refit && masks.behaviour.mode == "protect"))
    throw InvalidArgument("--protect is for --refit of masks computed with `mask --protect`" +
                          std::string(masks.behaviour.mode.empty()
                                          ? " (" + opts.masks + " has no behaviour contrast)"
                                          : ""));
  const bool protected_refit = opts.refit && masks.behaviour.mode == "protect";
  if (protected_refit)
    guard_outputs({},
                  {{"protected statistics",
                    opts.protect.empty() ? masks.behaviour.statistics : opts.protect}},
                  {{"--output", opts.output}});
  ao.write.overwrite = opts.overwrite;
  const ApplyReport rep = apply_masks(ckpt, masks, stats ? &*stats : nullptr, opts.output, ao);
  for (const std::string& w : rep.warnings) std::cerr << "qprune: warning: " << w << "\n";
  Report r("apply");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  r.add("Masks", "masks", opts.masks);
  r.add("Output", "output", opts.output);
  r.add("intermediate_size", "intermediate_size", rep.config.intermediate_size);
  r.add("num_attention_heads", "num_attention_heads", rep.config.num_attention_heads);
  r.add("num_key_value_heads", "num_key_value_heads", rep.config.num_key_value_heads);
  r.add("head_dim", "head_dim", rep.config.head_dim);
  std::string allocation = "uniform";
  if (rep.padded) {
    allocation = "global allocation, padded to widest layer: ";
    allocation += std::to_string(rep.stored_parameters) + " parameters stored, ";
    allocation += std::to_string(rep.effective_parameters()) + " effective (non-zero)";
  }
  r.add("Allocation", "allocation", allocation);
  r.add("Parameters stored", "stored_parameters", rep.stored_parameters);
  r.add("Parameters effective", "effective_parameters", rep.effective_parameters());
  r.add("Mean compensation bias", "bias_written", masks.mean_compensation);
  r.add("Added tensors", "num_added_tensors", static_cast<int>(rep.added_tensors.size()));
  r.add("Refit", "refit", opts.refit);
  if (!rep.dequantised_modules.empty())
    r.add("Dequantised to BF16", "num_dequantised_modules",
          static_cast<int>(rep.dequantised_modules.size()));
  if (!rep.mtp_note.empty()) r.add("MTP layers", "mtp_layers", rep.mtp_note);
  if (protected_refit)
    r.add("Refit fits", "refit_fits",
          "the preserved and the protected set, weighted as the masks' objective (" +
              (opts.protect.empty() ? masks.behaviour.statistics : opts.protect) + ")");
  nlohmann::json layers = nlohmann::json::array();
  for (const AppliedLayer& a : rep.layers) {
    if (opts.refit)
      r.add("Layer " + std::to_string(a.layer) + " " + unit_kind_name(a.unit) + " refit",
            "refit_" + std::to_string(a.layer) + "_" + unit_kind_name(a.unit),
            "error " + format_double(a.error_without_refit) + " -> " +
                format_double(a.error_with_refit));
    layers.push_back({{"layer", a.layer},
                      {"unit", unit_kind_name(a.unit)},
                      {"kept", a.kept},
                      {"error_without_refit", a.error_without_refit},
                      {"error_with_refit", a.error_with_refit}});
  }
  r.add_json("layers", layers);
  r.add_json("added_tensors", rep.added_tensors);
  r.add_json("warnings", rep.warnings);
  r.add_json("dequantised_modules", rep.dequantised_modules);
  r.print(std::cout, opts.json);
  return kExitOk;
}

}  // namespace

void setup_apply(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<ApplyCommandOptions>();
  CLI::App* sub =
      app.add_subcommand("apply", "Write a pruned copy of a checkpoint from a masks file");
  sub->footer(
      "Slices gate/up rows and down_proj columns (MLP), q rows, k/v rows of removed KV groups and "
      "o_proj columns (heads), keeps each tensor's dtype (block-wise FP8 ones it slices become "
      "BF16 "
      "and go into quantization_config.modules_to_not_convert; FP8 experts keep their bytes and "
      "scales, and removing experts drops DeepSeek-V3's MTP layer), updates config.json "
      "(intermediate_size, "
      "num_attention_heads, num_key_value_heads, explicit head_dim) and copies every other file "
      "byte for byte. Masks computed with mean compensation get their bias written (Llama: "
      "down_proj.bias / o_proj.bias with mlp_bias / attention_bias). --refit re-fits the kept "
      "down_proj / o_proj columns by least squares on the calibration statistics (masks computed "
      "with `mask --protect A.stats`: on both sets, weighted as the masks' objective, so that the "
      "refit keeps A too; docs/pruning_math.md 11.7). MLP widths that "
      "differ per layer (mask --allocation global) are padded to the widest layer with zero "
      "units (exactly equivalent); heads need one width in every layer. The input folder is "
      "never modified. See docs/masks.md. For llama.cpp, `qprune gguf` writes the same pruning "
      "with every layer at its own width (no padding; docs/gguf.md).");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder")->required();
  sub->add_option("--masks,-m", opts->masks, "masks file from `qprune mask`")->required();
  sub->add_option("--calib", opts->calib,
                  "calibration statistics (default: the file the masks were computed with)");
  sub->add_option("--protect", opts->protect,
                  "with --refit of protect-mode masks: the protected set's statistics (default: "
                  "the file the masks were computed with)");
  sub->add_option("--output,-o", opts->output, "new checkpoint folder (must not exist or be empty)")
      ->required();
  sub->add_flag("--refit", opts->refit, "least-squares refit of the kept columns");
  sub->add_flag("--overwrite", opts->overwrite,
                "replace an existing output folder (as a whole, once the new one is complete)");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, &result] { result.exit_code = run_apply(*opts); });
}

}  // namespace qprune::cli
