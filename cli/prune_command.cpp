// `qprune prune CKPT --text FILE --sparsity S -o OUT`: the whole job in one command (library:
// prune_model in include/qprune/sequential_pruning.hpp): calibrate, choose, re-fit and write one
// layer at a time, sequentially (each layer calibrated on the pruned model's inputs and fitted to
// the original model's outputs), then optionally measure the result on held-out text (--eval).
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/interrupt.hpp"
#include "cli/output_guard.hpp"
#include "cli/progress_line.hpp"
#include "cli/report.hpp"
#include "cli/rounding_report.hpp"
#include "cli/solver_options.hpp"
#include "cli/token_input.hpp"
#include "cli/validators.hpp"
#include "qprune/calibration.hpp"
#include "qprune/error.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/sequential_pruning.hpp"
#include "qprune/transformer.hpp"

namespace qprune::cli {
namespace {

struct PruneCommandOptions {
  std::string checkpoint;
  TokenWindows windows;
  std::uint64_t calib_seed = 0;
  std::string unit = "both";
  double sparsity = 0.4;
  std::optional<double> head_sparsity;
  std::string head_shape = "heads_per_group";
  std::string method = "obs";
  std::string objective;  // empty: from --no-refit
  bool no_refit = false;
  bool one_shot = false;
  std::string target = "residual";
  bool no_compensation = false;
  std::string allocation = "global";
  std::string allocation_scale = "stream";
  double max_layer_sparsity = 0.8;
  int multiple_of = 1;
  double damping = 1e-8;
  double ridge = 0.0;
  RefitSearchOptions search;
  SolverChoice choice;
  std::vector<std::string> eval;
  std::string masks;
  std::string output;
  bool json = false;
};

int run_prune(const PruneCommandOptions& opts) {
  (void)install_interrupt_handler();  // calibration, selection and writing poll it
  std::vector<NamedPath> inputs = {{"checkpoint", opts.checkpoint},
                                   {"--text", opts.windows.input.text},
                                   {"--token-ids", opts.windows.input.token_ids}};
  for (const std::string& file : opts.eval) inputs.push_back({"--eval", file});
  check_outputs_outside_inputs(std::vector<NamedPath>{{"--masks", opts.masks}}, inputs,
                               std::vector<NamedPath>{{"--output", opts.output}});
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  const std::vector<std::int32_t> ids = read_tokens(ckpt, opts.windows.input);
  const auto windows =
      calibration_windows(ids, opts.windows.context, opts.windows.tokens, opts.calib_seed);
  PruneOptions po;
  po.mlp = opts.unit == "mlp" || opts.unit == "both";
  po.heads = opts.unit == "heads" || opts.unit == "both";
  po.sparsity = opts.sparsity;
  po.head_sparsity = opts.head_sparsity;
  po.head_shape = unit_kind_from_name(opts.head_shape);
  po.method = opts.method;
  if (!opts.objective.empty())
    po.objective = opts.objective == "refit" ? PruneObjective::kRefit : PruneObjective::kNoRefit;
  po.refit = !opts.no_refit;
  po.sequential = !opts.one_shot;
  po.target = opts.target == "residual" ? RefitTarget::kResidual : RefitTarget::kLayerOutput;
  po.mean_compensation = !opts.no_compensation;
  po.allocation = mask_allocation_from_name(opts.allocation);
  po.max_layer_sparsity = opts.max_layer_sparsity;
  po.multiple_of = opts.multiple_of;
  po.allocation_scale = opts.allocation_scale == "output"     ? AllocationScale::kLayerOutput
                        : opts.allocation_scale == "absolute" ? AllocationScale::kAbsolute
                                                              : AllocationScale::kResidualStream;
  po.damping_rel = opts.damping;
  po.ridge_rel = opts.ridge;
  po.search = opts.search;
  po.solve = opts.choice.options;
  po.settings = opts.choice.settings;
  po.interrupt = install_interrupt_handler();
  po.search.interrupt = po.interrupt;
  if (!opts.windows.quiet) po.progress = [](const std::string& line) { std::cerr << line << "\n"; };
  // Heads go in whole steps: say so when the head sparsity is rounded, before the long run. A
  // value no step fits is left to the library, which reports it after its own checks.
  if (po.heads && po.allocation == MaskAllocation::kUniform) {
    try {
      const AppliedHeadSparsity hs = applied_head_sparsity(ckpt.config(), po.head_shape,
                                                           po.head_sparsity.value_or(po.sparsity));
      notice_head_sparsity(std::cerr, po.head_sparsity ? "--head-sparsity" : "--sparsity",
                           hs.requested, hs.applied, hs.kept, hs.units,
                           hs.unit == UnitKind::kKvGroups ? "KV groups" : "heads");
    } catch (const InvalidArgument&) {
    }
  }
  const PruneReport rep = prune_model(ckpt, windows, po, opts.output);
  if (rep.interrupted) {
    std::cerr << "qprune: interrupted; nothing was written\n";
    return kExitInterrupted;
  }
  if (!opts.masks.empty()) write_masks(rep.masks, opts.masks);

  Report r("prune");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  r.add("Output", "output", opts.output);
  const TokenInput& in = opts.windows.input;
  r.add("Calibration", "calibration", in.text.empty() ? in.token_ids : in.text);
  r.add("Calibration tokens", "calibration_tokens", rep.tokens);
  r.add("Calibration seed", "calibration_seed", opts.calib_seed);
  r.add("Mode", "mode", po.sequential ? "sequential" : "one-shot");
  r.add("Method", "method", po.method);
  const PruneObjective objective =
      po.objective.value_or(po.refit ? PruneObjective::kRefit : PruneObjective::kNoRefit);
  r.add("Objective", "objective", prune_objective_name(objective));
  r.add("Refit", "refit", po.refit);
  r.add("Refit target", "refit_target", refit_target_name(po.target));
  r.add("Allocation", "allocation",
        std::string(mask_allocation_name(po.allocation)) +
            (po.allocation == MaskAllocation::kGlobal
                 ? std::string(" (") + allocation_scale_name(po.allocation_scale) + ")"
                 : ""));
  r.add("Sparsity", "sparsity", po.sparsity);
  r.add("Head sparsity", "head_sparsity", po.head_sparsity.value_or(po.sparsity));
  double refit = 0.0, obs = 0.0, diagonal = 0.0, written = 0.0, target = 0.0;
  bool all_obs = true;
  nlohmann::json layers = nlohmann::json::array();
  for (const PrunedProjection& p : rep.projections) {
    refit += std::isnan(p.refit_error) ? p.no_refit_error : p.refit_error;
    diagonal += p.diagonal_refit_error;
    written += p.error_written;
    target += p.target_energy;
    all_obs = all_obs && !std::isnan(p.obs_refit_error);
    if (!std::isnan(p.obs_refit_error)) obs += p.obs_refit_error;
    const std::string key = "Layer " + std::to_string(p.layer) + " " + unit_kind_name(p.unit);
    // The run's objective: the refit error, or without the refit objective the no-refit one.
    const bool has_refit = !std::isnan(p.refit_error);
    std::string line = "kept " + std::to_string(p.kept.size()) + "/" + std::to_string(p.num_units) +
                       (has_refit ? " refit error " + format_double(p.refit_error)
                                  : " no-refit error " + format_double(p.no_refit_error));
    if (!std::isnan(p.obs_refit_error)) line += " obs " + format_double(p.obs_refit_error);
    line += " diagonal " + format_double(p.diagonal_refit_error) + " written " +
            format_double(p.error_written) + " of " + format_double(p.target_energy);
    r.add(key, "", line);
    layers.push_back(
        {{"layer", p.layer},
         {"unit", unit_kind_name(p.unit)},
         {"kept", p.kept.size()},
         {"num_units", p.num_units},
         {"refit_error",
          std::isnan(p.refit_error) ? nlohmann::json(nullptr) : nlohmann::json(p.refit_error)},
         {"obs_refit_error", std::isnan(p.obs_refit_error) ? nlohmann::json(nullptr)
                                                           : nlohmann::json(p.obs_refit_error)},
         {"diagonal_refit_error", p.diagonal_refit_error},
         {"no_refit_error", p.no_refit_error},
         {"error_written", p.error_written},
         {"target_energy", p.target_energy},
         {"damping", p.damping},
         {"select_s", p.select_s},
         {"status", std::string(to_string(p.status))}});
  }
  if (rep.masks.run.multiple_of > 1)
    add_rounding_report(
        r, rep.masks, po.sparsity,
        objective == PruneObjective::kRefit
            ? "OBS greedy removal-path costs (refit error) at the rounded minus the unrounded "
              "counts, on the original model (predicted; not pruned again)"
            : "diagonal removal costs at the rounded minus the unrounded counts, on the original "
              "model (predicted; not pruned again)");
  // With the no-refit objective the total is of the no-refit errors (what was minimised).
  r.add(objective == PruneObjective::kRefit ? "Refit error total" : "No-refit error total",
        "objective_total", refit);
  if (all_obs && !rep.projections.empty()) r.add("OBS greedy total", "obs_total", obs);
  r.add("Diagonal total", "diagonal_total", diagonal);
  r.add("Written error total", "written_error_total", written);
  r.add("Target energy total", "target_energy_total", target);
  r.add("Parameters original", "parameters_original", rep.original_parameters);
  r.add("Parameters stored", "parameters_stored", rep.stored_parameters);
  r.add("Parameters effective", "parameters_effective", rep.effective_parameters());
  r.add("Forward seconds", "forward_seconds", rep.forward_s);
  r.add("Select seconds", "select_seconds", rep.select_s);
  r.add("Write seconds", "write_seconds", rep.write_s);
  for (const std::string& w : rep.warnings) std::cerr << "qprune: warning: " << w << "\n";

  if (!opts.eval.empty()) {
    const Checkpoint pruned = Checkpoint::open(opts.output);
    const Transformer model(pruned);
    nlohmann::json evals = nlohmann::json::array();
    for (const std::string& file : opts.eval) {
      TokenInput ti;
      ti.text = file;
      const std::vector<std::int32_t> eval_ids = read_tokens(pruned, ti);
      PerplexityOptions pe;
      pe.context = std::max<std::int64_t>(2, opts.windows.context);
      pe.windows_per_batch = opts.windows.batch;
      const PerplexityResult res = evaluate_perplexity(model, eval_ids, pe);
      // Bits per byte only where a token is a byte (the byte-level tokenizer); per token otherwise.
      const bool bytes = is_byte_level(pruned);
      const char* unit = bytes ? "bits_per_byte" : "bits_per_token";
      r.add("Perplexity " + file, "", res.perplexity);
      r.add(std::string(bytes ? "Bits per byte " : "Bits per token ") + file, "",
            res.bits_per_token);
      evals.push_back({{"file", file},
                       {"tokens", res.num_tokens},
                       {"perplexity", res.perplexity},
                       {unit, res.bits_per_token}});
    }
    r.add_json("eval", evals);
  }
  r.add_json("layers", layers);
  r.print(std::cout, opts.json);
  return kExitOk;
}

}  // namespace

void setup_prune(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<PruneCommandOptions>();
  opts->windows.context = 128;
  opts->windows.tokens = 20000;
  CLI::App* sub = app.add_subcommand(
      "prune",
      "Prune a checkpoint end to end: calibrate, choose, re-fit and write, layer by layer");
  sub->footer(
      "One pass over the model on the calibration text. Sequential (default): every layer is "
      "calibrated on the inputs the already-pruned layers produce, and its kept down_proj / "
      "o_proj columns are re-fitted by least squares to reproduce the ORIGINAL model's output "
      "there, so each layer corrects what the earlier cuts did (--one-shot: every layer on the "
      "original model's statistics, like calibrate + mask + apply --refit). The units are chosen "
      "on the error the refit leaves (--objective refit, the default with refit): obs is the "
      "OBS/ZipLM greedy, sa and tabu anneal / tabu-search swaps on that exact objective from the "
      "greedy answer (never worse than it), exact enumerates small layers, and any other solver "
      "(qaoa, greedy, ...) works on its pairwise quadratic surrogate. magnitude, diagonal "
      "(Wanda-sp) and flap (fluctuation) are the baselines, run through the same pipeline. Mean "
      "compensation goes where the architecture holds it: Llama down_proj/o_proj biases, Qwen2 "
      "v_proj biases (exact for heads: softmax rows sum to 1). Memory: one layer at a time plus "
      "two residual streams of hidden x tokens floats. --eval FILE measures the written "
      "checkpoint's perplexity on held-out text (repeatable). SIGINT stops the run with nothing "
      "written (exit 5). See docs/pruning_math.md, section 9.");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder (config.json + safetensors)")
      ->required();
  add_token_windows(*sub, opts->windows, 2);
  sub->get_option("--tokens")->capture_default_str();
  sub->add_option("--calib-seed", opts->calib_seed,
                  "0: consecutive windows from the start of the text; otherwise windows at "
                  "random positions drawn with this seed (another calibration sample), "
                  "0..2^64-1")
      ->check(uint64_value())
      ->capture_default_str();
  sub->add_option("--unit", opts->unit, "units to prune")
      ->transform(CLI::IsMember({"mlp", "heads", "both"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--sparsity", opts->sparsity, "fraction of MLP neurons removed, [0, 1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--head-sparsity", opts->head_sparsity,
                  "fraction of attention heads removed (default: --sparsity); heads go in whole "
                  "steps (a head, a KV group, or one head per group), so the value may be "
                  "rounded: a notice on stderr then names the applied value")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--head-shape", opts->head_shape,
                  "GQA models: remove whole KV groups, or the same number of heads in every group")
      ->transform(CLI::IsMember({"kv_groups", "heads_per_group"}, CLI::ignore_case))
      ->capture_default_str();
  std::string methods =
      "how units are chosen: magnitude, diagonal (Wanda-sp), flap (baselines); obs (OBS/ZipLM "
      "greedy), sa, tabu, exact (on the refit objective; with --no-refit sa, tabu and exact are "
      "the QUBO solvers on the no-refit QUBO); or another QUBO solver on the refit objective's "
      "pairwise surrogate:";
  for (const std::string& s : solver_names())
    if (s != "sa" && s != "tabu" && s != "exact") methods += " " + s;
  sub->add_option("--method", opts->method, methods)->capture_default_str();
  sub->add_option("--objective", opts->objective,
                  "refit: the error left after the least-squares refit (default with refit); "
                  "no-refit: the error of dropping the units (the layer QUBO)")
      ->transform(CLI::IsMember({"refit", "no-refit"}, CLI::ignore_case));
  sub->add_flag("--no-refit", opts->no_refit, "keep the original columns of the kept units");
  sub->add_flag("--one-shot", opts->one_shot,
                "calibrate every layer on the original model instead of the pruned one");
  sub->add_option("--target", opts->target,
                  "what each projection is fitted to: layer (the original output) or residual "
                  "(also the difference of the two residual streams at its input)")
      ->transform(CLI::IsMember({"layer", "residual"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_flag("--no-compensation", opts->no_compensation, "no mean-compensation bias");
  sub->add_option("--allocation", opts->allocation,
                  "uniform: the sparsities in every layer; global: --sparsity of all MLP neurons "
                  "and --head-sparsity of all heads, the per-layer counts from the layers' removal "
                  "costs (OBS greedy paths; diagonal costs with --no-refit) on the original model "
                  "(the checkpoint is padded to the widest layer: parameters stored and "
                  "effective are reported)")
      ->transform(CLI::IsMember({"uniform", "global"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--allocation-scale", opts->allocation_scale,
                  "global: compare removal costs relative to the residual stream they perturb "
                  "(stream), to the projection's own output (output), or as they are (absolute)")
      ->transform(CLI::IsMember({"stream", "output", "absolute"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--max-layer-sparsity", opts->max_layer_sparsity,
                  "global: most of one layer's neurons that may go, [0, 1]")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--multiple-of", opts->multiple_of,
                  "every layer keeps a multiple of N MLP neurons (32 for quantised blocks, 256 "
                  "for K-quants, 8/64 for GPU tiles); 1: no rounding. Uniform: each count rounded "
                  "to the nearest multiple (a tie keeps more; never 0; at most the largest "
                  "multiple <= n); global: the allocation moves blocks of N neurons, the total as "
                  "near the budget as blocks allow, and the report gives the rounding's predicted "
                  "cost. Heads are not rounded (a kept head already brings head_dim channels). "
                  "N in [1, intermediate_size]")
      ->capture_default_str();
  sub->add_option("--damping", opts->damping,
                  "ridge added to a singular Gram, relative to its mean diagonal")
      ->check(positive())
      ->capture_default_str();
  sub->add_option("--ridge", opts->ridge,
                  "prior towards the original weights, lambda ||W' - W||^2 with lambda = RIDGE x "
                  "the Gram's mean diagonal, in the objective and the refit (needed when there "
                  "are fewer calibration tokens than kept channels)")
      ->check(non_negative())
      ->capture_default_str();
  CLI::Option_group* rs =
      sub->add_option_group("refit search", "obs / sa / tabu on the refit objective");
  rs->add_option("--search-iterations", opts->search.iterations,
                 "tabu iterations (0: max(50, units / 4))")
      ->check(non_negative())
      ->capture_default_str();
  rs->add_option("--search-sweeps", opts->search.sweeps, "sa temperature steps (0: 20)")
      ->check(non_negative())
      ->capture_default_str();
  add_solver_options(*sub, opts->choice, /*with_solver_flag=*/false);
  sub->add_option("--eval", opts->eval,
                  "held-out text to measure the pruned checkpoint's perplexity on (repeatable; "
                  "windows of --context)");
  sub->add_option("--masks", opts->masks, "also write the chosen masks (JSON, docs/masks.md)");
  sub->add_option("--output,-o", opts->output, "folder of the pruned checkpoint")->required();
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, &result] { result.exit_code = run_prune(*opts); });
}

}  // namespace qprune::cli
