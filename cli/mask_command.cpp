// `qprune mask CKPT --sparsity S -o MASKS`: solve every layer's pruning problem of a checkpoint and
// write the masks (library: compute_masks in include/qprune/prune_pipeline.hpp). One layer at a
// time: a layer's weights and statistics are read, its problem built and solved, then freed.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "cli/behaviour_options.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/interrupt.hpp"
#include "cli/output_guard.hpp"
#include "cli/parallel.hpp"
#include "cli/report.hpp"
#include "cli/rounding_report.hpp"
#include "cli/solver_options.hpp"
#include "qprune/error.hpp"
#include "qprune/prune_pipeline.hpp"

namespace qprune::cli {
namespace {

const std::map<std::string, MaskMethod> kMethods = {
    {"qubo", MaskMethod::kQubo},
    {"diagonal", MaskMethod::kDiagonal},
    {"magnitude", MaskMethod::kMagnitude},
    {"contrastive-diagonal", MaskMethod::kContrastiveDiagonal},
    {"frequency", MaskMethod::kExpertFrequency},
    {"routed-weight", MaskMethod::kExpertWeight},
    {"exhaustive", MaskMethod::kExhaustive}};

struct MaskCommandOptions {
  std::string checkpoint;
  MaskMethod method = MaskMethod::kQubo;
  std::string calib;
  BehaviourChoice behaviour;
  std::string unit = "mlp";
  double sparsity = 0.5;
  std::optional<double> head_sparsity;
  std::string head_shape = "heads_per_group";
  bool no_compensation = false;
  std::string data_free = "magnitude";
  SolverChoice choice;
  std::string allocation = "uniform";
  double max_layer_sparsity = 0.8;
  std::string cost_scale = "relative";
  int multiple_of = 1;
  bool resume = false;
  std::string output;
  bool json = false;
};

int run_mask(MaskCommandOptions opts) {
  (void)install_interrupt_handler();  // problem building polls it too (below: the solvers)
  // (-o is also read with --resume: that is the file being updated, not an input to protect.)
  guard_outputs({{"--output", opts.output}}, {{"checkpoint", opts.checkpoint},
                                              {"--calib", opts.calib},
                                              {"--preserve", opts.behaviour.preserve},
                                              {"--suppress", opts.behaviour.suppress},
                                              {"--protect", opts.behaviour.protect}});
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  std::optional<CalibrationStatsFile> stats, contrast;
  const std::string& preserved = opts.behaviour.active() ? opts.behaviour.preserve : opts.calib;
  if (!preserved.empty()) stats.emplace(CalibrationStatsFile::open(preserved));
  if (opts.behaviour.active())
    contrast.emplace(CalibrationStatsFile::open(opts.behaviour.contrast()));
  MaskRunOptions mo;
  mo.contrast = contrast ? &*contrast : nullptr;
  mo.behaviour_weight = opts.behaviour.signed_weight();
  mo.method = opts.method;
  mo.mlp = opts.unit == "mlp" || opts.unit == "both";
  mo.heads = opts.unit == "heads" || opts.unit == "both";
  mo.experts = opts.unit == "experts";
  mo.sparsity = opts.sparsity;
  mo.head_sparsity = opts.head_sparsity;
  mo.head_shape = unit_kind_from_name(opts.head_shape);
  mo.mean_compensation = !opts.no_compensation;
  mo.data_free =
      opts.data_free == "isserlis" ? DataFreeModel::kIsserlis : DataFreeModel::kMagnitude;
  mo.solver = opts.choice.solver;
  mo.solve = opts.choice.options;
  mo.solve.interrupt = install_interrupt_handler();
  mo.settings = opts.choice.settings;
  mo.allocation = mask_allocation_from_name(opts.allocation);
  mo.max_layer_sparsity = opts.max_layer_sparsity;
  mo.multiple_of = opts.multiple_of;
  mo.cost_scale =
      opts.cost_scale == "absolute" ? CostScale::kAbsolute : CostScale::kRelativeToLayerOutput;
  // --resume: the finished entries of an existing output file are kept (same checkpoint and
  // options, checked field by field); without the file it is an ordinary run.
  std::optional<Masks> previous;
  if (opts.resume && std::filesystem::exists(opts.output))
    previous.emplace(read_masks(opts.output));
  mo.resume = previous ? &*previous : nullptr;
  mo.progress = [lambda = mo.behaviour_weight](const LayerMask& e) {
    char line[256];
    // A contrastive objective may be negative: the gain is relative to |baseline|.
    const double gain = e.baseline_objective != 0.0
                            ? (e.baseline_objective - e.objective) / std::abs(e.baseline_objective)
                            : 0.0;
    if (e.behaviour && e.behaviour->saturation_weight > 0.0 &&
        lambda > e.behaviour->saturation_weight)
      std::cerr << "qprune: warning: layer " << e.layer << " " << unit_kind_name(e.unit)
                << ": --behaviour-weight " << lambda << " is above "
                << format_double(e.behaviour->saturation_weight)
                << ", where the units' single-removal scores remove the most A-active units "
                   "whatever B says (docs/pruning_math.md 11.4)\n";
    // Full-size dense layers gain parts per million over the top-k: "+0.00%" would hide them.
    char gain_text[32];
    if (gain != 0.0 && std::abs(gain) < 1e-4) {
      std::snprintf(gain_text, sizeof gain_text, "%+.2f ppm", 1e6 * gain);
    } else {
      std::snprintf(gain_text, sizeof gain_text, "%+.2f%%", 100.0 * gain);
    }
    std::snprintf(
        line, sizeof line, "layer %d %s: kept %zu/%d objective %.6g baseline %.6g (%s) %s %.3fs",
        e.layer, unit_kind_name(e.unit), e.kept.size(), e.num_units, e.objective,
        e.baseline_objective, gain_text, e.feasible ? "feasible" : "INFEASIBLE", e.time_s);
    std::cerr << line;
    if (e.rerouted_relative_error) {
      char rel[32];
      std::snprintf(rel, sizeof rel, " re-routed error %.3g%%", 100.0 * *e.rerouted_relative_error);
      std::cerr << rel;
      if (e.qubo_rerouted_error && *e.rerouted_error > 0.0) {
        std::snprintf(
            rel, sizeof rel, " (QUBO's best alone %.3g%%)",
            100.0 * *e.rerouted_relative_error * *e.qubo_rerouted_error / *e.rerouted_error);
        std::cerr << rel;
      }
    }
    std::cerr << "\n" << std::flush;
  };
  // Heads go in whole steps: say so when the head sparsity is rounded, before the long run. A
  // value no step fits is left to the library, which reports it after its own checks.
  if (mo.heads) {
    try {
      const AppliedHeadSparsity hs = applied_head_sparsity(ckpt.config(), mo.head_shape,
                                                           mo.head_sparsity.value_or(mo.sparsity));
      if (process_rank() == 0)
        notice_head_sparsity(std::cerr, mo.head_sparsity ? "--head-sparsity" : "--sparsity",
                             hs.requested, hs.applied, hs.kept, hs.units,
                             hs.unit == UnitKind::kKvGroups ? "KV groups" : "heads");
    } catch (const InvalidArgument&) {
    }
  }
  mo.runner = &process_runner();
  // A layer that fails (e.g. a shard truncated during the run: IoError) stops the run, but the
  // layers finished before it are written first, as after an interrupt; --resume continues.
  std::exception_ptr layer_error;
  mo.layer_error = &layer_error;
  const Masks masks = compute_masks(ckpt, stats ? &*stats : nullptr, mo);
  if (!mo.runner->is_coordinator()) return kExitOk;  // rank 0 writes and reports
  if (layer_error && masks.entries.empty()) std::rethrow_exception(layer_error);
  write_masks(masks, opts.output);
  if (layer_error) {
    std::cerr << "qprune: " << masks.entries.size() << " layer entries finished before the error "
              << "were written to " << opts.output << " (finish with --resume)\n";
    std::rethrow_exception(layer_error);
  }

  double objective = 0.0, baseline = 0.0, time_s = 0.0;
  double preserve_rel = 0.0, contrast_rel = 0.0;
  int behaviour_layers = 0;
  int feasible = 0;
  // Interrupted: a layer stopped mid-solve, or the flag was raised between layers (none started).
  bool interrupted = mo.solve.interrupt->load();
  nlohmann::json layers = nlohmann::json::array();
  Report r("mask");
  r.add("Checkpoint", "checkpoint", masks.checkpoint.path);
  r.add("Calibration", "calibration", masks.calibration.empty() ? "none" : masks.calibration);
  if (masks.behaviour.active()) {
    r.add("Behaviour", "behaviour_mode", masks.behaviour.mode);
    r.add("Contrasted statistics", "contrast_statistics", masks.behaviour.statistics);
    r.add("Behaviour weight", "behaviour_weight", masks.behaviour.weight);
  }
  r.add("Objective source", "objective_source",
        masks.objective_source + (masks.approximate ? " (approximate)" : " (exact layer error)"));
  r.add("Mean compensation", "mean_compensation", masks.mean_compensation);
  r.add("Unit", "unit", opts.unit);
  r.add("Sparsity", "sparsity", masks.sparsity);
  r.add("Method", "method", mask_method_name(opts.method));
  r.add("Allocation", "allocation", mask_allocation_name(masks.run.allocation));
  r.add("Solver", "solver", opts.method == MaskMethod::kQubo ? masks.solver : "none");
  r.add("Seed", "seed", masks.seed);
  for (const LayerMask& e : masks.entries) {
    objective += e.objective;
    baseline += e.baseline_objective;
    time_s += e.time_s;
    feasible += e.feasible ? 1 : 0;
    interrupted = interrupted || !e.complete();
    const std::string key = "Layer " + std::to_string(e.layer) + " " + unit_kind_name(e.unit);
    r.add(key, "",  // text only: the JSON has the "layers" array
          "kept " + std::to_string(e.kept.size()) + "/" + std::to_string(e.num_units) +
              " objective " + format_double(e.objective) + " baseline " +
              format_double(e.baseline_objective) + (e.feasible ? " feasible" : " INFEASIBLE") +
              (e.rerouted_error ? " re-routed error " + format_double(*e.rerouted_error) + " (" +
                                      format_double(100.0 * *e.rerouted_relative_error) + "%)"
                                : std::string()));
    layers.push_back({{"layer", e.layer},
                      {"unit", unit_kind_name(e.unit)},
                      {"kept", e.kept.size()},
                      {"num_units", e.num_units},
                      {"objective", e.objective},
                      {"baseline_objective", e.baseline_objective},
                      {"feasible", e.feasible},
                      {"time_s", e.time_s},
                      {"status", std::string(to_string(e.status))}});
    if (e.unrounded_keep > 0) {
      layers.back()["unrounded_keep"] = e.unrounded_keep;
      layers.back()["rounding_cost"] = e.rounding_cost;
    }
    if (e.rerouted_error) {
      layers.back()["rerouted_error"] = *e.rerouted_error;
      layers.back()["rerouted_relative_error"] = *e.rerouted_relative_error;
      if (e.qubo_rerouted_error) layers.back()["qubo_rerouted_error"] = *e.qubo_rerouted_error;
    }
    if (e.behaviour) {
      layers.back()["preserve_relative_error"] = e.behaviour->preserve_relative_error;
      layers.back()["contrast_relative_error"] = e.behaviour->contrast_relative_error;
      layers.back()["saturation_weight"] = e.behaviour->saturation_weight;
      preserve_rel += e.behaviour->preserve_relative_error;
      contrast_rel += e.behaviour->contrast_relative_error;
      ++behaviour_layers;
      r.add(key + " relative errors", "",
            "preserved " + format_double(e.behaviour->preserve_relative_error) + " contrasted " +
                format_double(e.behaviour->contrast_relative_error));
    }
  }
  if (behaviour_layers > 0) {
    r.add("Mean preserved relative error", "mean_preserve_relative_error",
          preserve_rel / behaviour_layers);
    r.add("Mean contrasted relative error", "mean_contrast_relative_error",
          contrast_rel / behaviour_layers);
  }
  if (masks.run.multiple_of > 1)
    add_rounding_report(r, masks, masks.sparsity,
                        "diagonal removal costs M_ii at the rounded minus the unrounded counts "
                        "(predicted; not solved again)");
  r.add("Entries", "num_entries", static_cast<int>(masks.entries.size()));
  if (opts.resume) r.add("Resumed entries", "num_resumed", masks.resumed_entries);
  r.add("Feasible entries", "num_feasible", feasible);
  r.add("Objective total", "objective_total", objective);
  r.add("Baseline total", "baseline_total", baseline);
  r.add("Gain over baseline", "gain_over_baseline",
        baseline != 0.0 ? (baseline - objective) / std::abs(baseline) : 0.0);
  r.add("Solver time s", "solver_time_s", time_s);
  r.add("Masks", "masks", opts.output);
  r.add_json("layers", layers);
  r.print(std::cout, opts.json);
  if (feasible != static_cast<int>(masks.entries.size()))
    std::cerr << "qprune: warning: " << masks.entries.size() - static_cast<std::size_t>(feasible)
              << " infeasible entries (apply refuses them; use --constraints native or "
                 "import-solution --repair)\n";
  return interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

void setup_mask(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<MaskCommandOptions>();
  opts->choice.solver = "sa";
  CLI::App* sub = app.add_subcommand(
      "mask", "Choose the units to prune in every layer of a checkpoint and write a masks file");
  sub->footer(
      "Per layer (one layer in memory at a time: its down_proj/o_proj weights, its statistics and "
      "its n x n problem; never the whole model), builds the pruning QUBO, solves it, and reports "
      "on stderr the objective (the layer's calibration output error for the mask) against the "
      "diagonal-score baseline (Wanda/FLAP-like top-k). With --calib the objective is exact and, "
      "for Llama, centred with mean compensation (apply writes the bias); Qwen2/Mistral cannot "
      "hold the bias, so their problem is uncentred. Without --calib: --data-free magnitude "
      "(G = I) or isserlis (Gaussian-input model, MLP only), labelled approximate. Each layer's "
      "seed is derived from --seed and the layer index only, so --resume gives the masks of an "
      "uninterrupted run. SIGINT stops the current layer; the layers finished so far are written "
      "(the current one with status interrupted). Under mpirun (MPI build) the layers are spread "
      "over the ranks, largest first, and rank 0 writes the same masks. --method diagonal or "
      "magnitude chooses "
      "the masks by a baseline score instead of a solver (--solver and its options do not "
      "apply); the report is the same, so the objectives compare. See docs/masks.md.");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder (config.json + safetensors)")
      ->required();
  sub->add_option_function<std::string>(
         "--method", [opts](const std::string& name) { opts->method = kMethods.at(name); },
         "how each layer's mask is chosen:\n"
         "  qubo: solve the layer's pruning QUBO with --solver (default)\n"
         "  diagonal: keep the units whose removal alone costs most, M_ii (Wanda/FLAP-like "
         "top-k; a calibration score with --calib)\n"
         "  magnitude: keep the units with the largest ||W[:, unit]||^2 of down_proj / o_proj "
         "(data-free top-k)\n"
         "  contrastive-diagonal: with --suppress/--protect, remove the units whose mean "
         "per-token output energy is largest on A relative to B (a diagonal contrast score)\n"
         "  frequency, routed-weight (--unit experts): keep the experts that most tokens chose, "
         "or with the largest routing weight summed over the tokens\n"
         "  exhaustive (--unit experts): try every subset of experts, keep the least exact "
         "re-routed error on the calibration's sampled inputs (small expert counts only)")
      ->transform(CLI::IsMember(kMethods, CLI::ignore_case));
  sub->add_option("--calib", opts->calib,
                  "calibration statistics file (docs/calibration_stats.md)");
  add_behaviour_options(*sub, opts->behaviour);
  sub->add_option("--unit", opts->unit,
                  "units to prune: mlp (neurons of the dense layers), heads, both, or experts "
                  "(the routed experts of a MoE model's MoE layers; with the qubo method the "
                  "solver's feasible samples are re-scored by their exact re-routed error)")
      ->transform(CLI::IsMember({"mlp", "heads", "both", "experts"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--sparsity", opts->sparsity, "fraction of units removed in every layer, [0, 1)")
      ->required()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--head-sparsity", opts->head_sparsity,
                  "sparsity of the attention heads when it must differ from --sparsity; heads go "
                  "in whole steps (a head, a KV group, or one head per group), so the value may "
                  "be rounded: a notice on stderr then names the applied value")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--head-shape", opts->head_shape,
                  "GQA models: remove whole KV groups, or the same number of heads in every group")
      ->transform(CLI::IsMember({"kv_groups", "heads_per_group"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_flag("--no-compensation", opts->no_compensation,
                "uncentred problem, no bias written by apply");
  sub->add_option("--data-free", opts->data_free, "statistics model without --calib (approximate)")
      ->transform(CLI::IsMember({"magnitude", "isserlis"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--allocation", opts->allocation,
                  "uniform: --sparsity in every layer; global (MLP only): --sparsity of all "
                  "neurons, per-layer counts from the layers' diagonal costs (apply pads every "
                  "layer to the widest)")
      ->transform(CLI::IsMember({"uniform", "global"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--max-layer-sparsity", opts->max_layer_sparsity,
                  "global: most of one layer's units that may go, [0, 1]")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--cost-scale", opts->cost_scale,
                  "global: compare removal costs across layers as absolute output errors or "
                  "relative to each layer's output energy")
      ->transform(CLI::IsMember({"relative", "absolute"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option(
         "--multiple-of", opts->multiple_of,
         "every layer keeps a multiple of N MLP neurons (32 for quantised blocks, 256 "
         "for K-quants, 8/64 for GPU tiles); 1: no rounding. Uniform: each count rounded "
         "to the nearest multiple (a tie keeps more; never 0; at most the largest "
         "multiple <= n); global: the allocation moves blocks of N neurons, the total "
         "as near the budget as blocks allow. Heads are not rounded: a kept head "
         "already brings head_dim channels (64 or 128 in real models: a multiple of 32). The "
         "report gives the sparsity reached and the rounding's predicted cost (diagonal "
         "costs M_ii of the neurons it adds or removes); N must be in [1, "
         "intermediate_size]")
      ->capture_default_str();
  sub->add_flag("--resume", opts->resume,
                "keep the finished layers of an existing -o file (e.g. an interrupted run; same "
                "checkpoint and options required) and solve the rest");
  add_solver_options(*sub, opts->choice);
  sub->add_option("--output,-o", opts->output, "masks file to write (JSON)")->required();
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, sub, &result] {
    opts->behaviour.check(opts->calib);
    if (opts->behaviour.active() && opts->behaviour.weight > 1.0 &&
        !opts->behaviour.protect_mode() && process_rank() == 0)
      std::cerr << "qprune: note: --behaviour-weight " << opts->behaviour.weight
                << " > 1: removing a whole layer scores below keeping it (E = N_B (1 - lambda)); "
                   "only the keep count holds the removal (docs/pruning_math.md 11.4)\n";
    if (opts->multiple_of < 1)
      throw InvalidArgument("--multiple-of must be >= 1, is " + std::to_string(opts->multiple_of));
    if (opts->method != MaskMethod::kQubo && sub->count("--solver") > 0)
      throw InvalidArgument(std::string("--solver applies to --method qubo, not ") +
                            mask_method_name(opts->method) + " (a baseline, not a solver)");
    // The baselines draw no random numbers: say so rather than let a user compare "seeds" that
    // cannot differ. Rank 0 only, so that mpirun prints it once.
    if (opts->method != MaskMethod::kQubo && sub->count("--seed") > 0 && process_rank() == 0)
      std::cerr << "qprune: warning: --seed has no effect with --method "
                << mask_method_name(opts->method) << ": the baseline is deterministic\n";
    result.exit_code = run_mask(*opts);
  });
}

}  // namespace qprune::cli
