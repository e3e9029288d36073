// `qprune export CKPT --layer L --unit U --sparsity S -o FILE` (or `--all -o FOLDER`): one layer's
// pruning problem as a QUBO file for an external solver, with the keep-k constraint as LP
// equalities / JSON groups, or as a penalty in formats without constraints; and
// `qprune import-solution`: the external solver's 0/1 answer back into a masks file.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/behaviour_options.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/interrupt.hpp"
#include "cli/model_input.hpp"
#include "cli/output_guard.hpp"
#include "cli/report.hpp"
#include "cli/validators.hpp"
#include "qprune/error.hpp"
#include "qprune/prune_pipeline.hpp"

namespace qprune::cli {
namespace {

struct ExportCommandOptions {
  std::string checkpoint;
  std::string calib;
  BehaviourChoice behaviour;
  int layer = -1;
  bool all = false;
  std::string unit = "mlp";
  std::string head_shape = "heads_per_group";
  double sparsity = 0.5;
  bool no_compensation = false;
  std::string data_free = "magnitude";
  std::string objective = "no-refit";
  std::string format;
  std::optional<double> penalty_weight;
  std::string penalty = "tuned";
  bool ising = false;
  int subproblem = 0;
  int qaoa_layers = 3;
  std::optional<double> scale_to;
  std::vector<double> qaoa_gammas;
  std::vector<double> qaoa_betas;
  std::uint64_t seed = 0;
  double tuning_time = 1.0;
  std::string output;
  bool json = false;
};

/// The penalty's line of the report and its JSON object.
std::string penalty_text(const ExportedProblemInfo::Penalty& p) {
  std::string shifts;
  for (const double v : p.shifts) shifts += (shifts.empty() ? "" : ",") + format_double(v);
  std::string text = p.rule + ": w " + format_double(p.weight) + ", shift " + shifts;
  if (p.best_known_energy)
    text += ", best known " + format_double(*p.best_known_energy) +
            (p.verified ? "" : " (weight not verified)");
  if (p.beta_range)
    text +=
        ", beta " + format_double(p.beta_range->first) + ".." + format_double(p.beta_range->second);
  return text + ", dynamic range " + format_double(p.dynamic_range) + ", " +
         std::to_string(p.precision_bits) + " bits";
}

nlohmann::json penalty_json(const ExportedProblemInfo::Penalty& p) {
  nlohmann::json j = {{"rule", p.rule},
                      {"weight", json_number(p.weight)},
                      {"shifts", p.shifts},
                      {"dynamic_range", json_number(p.dynamic_range)},
                      {"precision_bits", p.precision_bits}};
  if (p.best_known_energy) {
    j["best_known_energy"] = json_number(*p.best_known_energy);
    j["verified"] = p.verified;
  }
  if (p.beta_range) j["beta_range"] = {p.beta_range->first, p.beta_range->second};
  return j;
}

bool is_layer_file(const std::string& name) { return name.starts_with("layer_"); }

// A layer's masks hold one entry per family: MLP neurons, heads (of any shape), experts.
int unit_family(UnitKind unit) {
  return unit == UnitKind::kMlp ? 0 : unit == UnitKind::kExperts ? 2 : 1;
}

int run_export(const ExportCommandOptions& opts) {
  const std::atomic<bool>* interrupt = install_interrupt_handler();  // building and tuning poll it
  opts.behaviour.check(opts.calib);
  const std::vector<NamedPath> inputs = {{"checkpoint", opts.checkpoint},
                                         {"--calib", opts.calib},
                                         {"--preserve", opts.behaviour.preserve},
                                         {"--suppress", opts.behaviour.suppress},
                                         {"--protect", opts.behaviour.protect}};
  if (opts.all) {
    guard_outputs({}, inputs, {{"--output", opts.output}});
    check_replaceable_folder(opts.output, is_layer_file);
  } else {
    guard_outputs({{"--output", opts.output}}, inputs);
  }
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  std::optional<CalibrationStatsFile> stats, contrast;
  const std::string& preserved = opts.behaviour.active() ? opts.behaviour.preserve : opts.calib;
  if (!preserved.empty()) stats.emplace(CalibrationStatsFile::open(preserved));
  if (opts.behaviour.active()) {
    contrast.emplace(CalibrationStatsFile::open(opts.behaviour.contrast()));
    check_contrast_files(ckpt, *stats, *contrast);
  }
  if (opts.all == (opts.layer >= 0))
    throw InvalidArgument("give either --layer L (one file) or --all (one file per layer)");
  LayerProblemSpec spec;
  spec.unit =
      opts.unit == "heads" ? unit_kind_from_name(opts.head_shape) : unit_kind_from_name(opts.unit);
  spec.sparsity = opts.sparsity;
  spec.mean_compensation = !opts.no_compensation;
  spec.data_free =
      opts.data_free == "isserlis" ? DataFreeModel::kIsserlis : DataFreeModel::kMagnitude;
  spec.objective = opts.objective == "refit" ? PruneObjective::kRefit : PruneObjective::kNoRefit;
  spec.contrast = contrast ? &*contrast : nullptr;
  spec.behaviour_weight = opts.behaviour.signed_weight();
  ExportOptions eo;
  eo.write.format = opts.format;
  eo.write.penalty_weight = opts.penalty_weight;
  eo.write.spin = opts.ising;
  eo.subproblem = opts.subproblem;
  eo.scale_to = opts.scale_to;
  eo.write.qaoa_gammas = opts.qaoa_gammas;
  eo.write.qaoa_betas = opts.qaoa_betas;
  eo.qaoa.layers = opts.qaoa_layers;
  if (opts.qaoa_gammas.size() != opts.qaoa_betas.size())
    throw InvalidArgument("--qaoa-gammas and --qaoa-betas need one value each per layer");
  eo.penalty_rule = opts.penalty == "provable" ? ExportOptions::PenaltyRule::kProvable
                                               : ExportOptions::PenaltyRule::kTuned;
  eo.seed = opts.seed;
  eo.tuning_time_s = opts.tuning_time;
  eo.interrupt = interrupt;
  std::vector<int> layers;
  // --all: the files go into a fresh folder beside -o, moved into place (replacing an old export)
  // once every layer is written.
  std::optional<AtomicFolder> folder;
  if (opts.all) {
    // MoE models: experts come from the MoE layers, MLP neurons from the dense ones.
    const ModelConfig& cfg = ckpt.config();
    for (int l = 0; l < cfg.num_hidden_layers; ++l)
      if (spec.unit == UnitKind::kExperts ? is_moe_layer(cfg, l)
                                          : spec.unit != UnitKind::kMlp || !is_moe_layer(cfg, l))
        layers.push_back(l);
    const std::filesystem::path target(opts.output);
    if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
    folder.emplace(target, /*replace=*/true);
  } else {
    layers.push_back(opts.layer);
  }
  std::string extension = ".json";
  if (!opts.format.empty()) {
    const FormatInfo& f = format_by_name(opts.format);
    if (!f.extensions.empty()) extension = f.extensions.front();
  }
  Report r("export");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  nlohmann::json files = nlohmann::json::array();
  for (int l : layers) {
    spec.layer = l;
    const std::string name = "layer_" + std::to_string(l) + "." + opts.unit + extension;
    const std::string path =
        opts.all ? (std::filesystem::path(opts.output) / name).string() : opts.output;
    const ExportedProblemInfo info =
        export_layer_problem(ckpt, stats ? &*stats : nullptr, spec,
                             opts.all ? (folder->path() / name).string() : path, eo);
    r.add("Layer " + std::to_string(l), "",  // text only: the JSON has the "files" array
          path + " (" + unit_kind_name(info.unit) + ", keep " + std::to_string(info.keep) + " of " +
              std::to_string(info.num_units) + ", " + info.source +
              (info.centered ? ", centred" : "") + ")");
    nlohmann::json file = {{"layer", l},
                           {"path", path},
                           {"unit", unit_kind_name(info.unit)},
                           {"keep", info.keep},
                           {"num_units", info.num_units},
                           {"source", info.source},
                           {"centered", info.centered}};
    if (!info.subproblem_variables.empty()) {
      r.add("Subproblem " + std::to_string(l), "",
            std::to_string(info.subproblem_variables.size()) + " of " +
                std::to_string(info.num_units) +
                " units free, the others fixed at an answer of "
                "energy " +
                format_double(info.subproblem_reference_energy));
      file["subproblem"] = {{"variables", info.subproblem_variables},
                            {"reference_energy", json_number(info.subproblem_reference_energy)}};
    }
    if (info.penalty) {
      r.add("Penalty " + std::to_string(l), "", penalty_text(*info.penalty));
      file["penalty"] = penalty_json(*info.penalty);
    }
    files.push_back(std::move(file));
  }
  if (folder) folder->commit();
  r.add("Files", "num_files", static_cast<int>(layers.size()));
  r.add_json("files", files);
  r.print(std::cout, opts.json);
  return kExitOk;
}

struct ImportCommandOptions {
  std::string checkpoint;
  std::string calib;
  std::string preserve, suppress, protect;  // a contrastive file's sets (default: its metadata's)
  std::string qubo;
  std::string solution;
  std::string base;
  std::string output;
  bool repair = false;
  std::optional<int> layer;
  std::string unit;
  std::optional<double> sparsity;
  std::string from;
  bool json = false;
};

std::string list_text(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += (s.empty() ? "" : " ") + std::to_string(i);
  return s.empty() ? "none" : s;
}

int run_import(const ImportCommandOptions& opts) {
  // (--base may be -o: the masks file is then updated in place, atomically, like mask --resume.)
  guard_outputs({{"--output", opts.output}}, {{"checkpoint", opts.checkpoint},
                                              {"--calib", opts.calib},
                                              {"--preserve", opts.preserve},
                                              {"--suppress", opts.suppress},
                                              {"--protect", opts.protect},
                                              {"--qubo", opts.qubo},
                                              {"--solution", opts.solution}});
  if (!opts.suppress.empty() && !opts.protect.empty())
    throw InvalidArgument("give --suppress or --protect, not both");
  if (!opts.calib.empty() && !opts.preserve.empty())
    throw InvalidArgument(
        "give --calib (a single-set problem) or --preserve (a contrastive one), not both");
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  std::optional<CalibrationStatsFile> stats, contrast;
  const std::string& preserve = opts.calib.empty() ? opts.preserve : opts.calib;
  if (!preserve.empty()) stats.emplace(CalibrationStatsFile::open(preserve));
  const std::string& contrasted = opts.suppress.empty() ? opts.protect : opts.suppress;
  if (!contrasted.empty()) contrast.emplace(CalibrationStatsFile::open(contrasted));
  ImportOptions io;
  io.contrast = contrast ? &*contrast : nullptr;
  io.repair = opts.repair;
  io.layer = opts.layer;
  if (!opts.unit.empty()) io.unit = unit_kind_from_name(opts.unit);
  io.sparsity = opts.sparsity;
  io.solution_format = opts.from;
  const ImportResult res =
      import_solution(ckpt, stats ? &*stats : nullptr, opts.qubo, opts.solution, io);
  // A contrastive answer's masks record the contrast like `mask --suppress/--protect` does.
  BehaviourRecord behaviour;
  if (res.info.behaviour_weight) {
    behaviour.mode = *res.info.behaviour_weight > 0.0 ? "suppress" : "protect";
    behaviour.statistics = res.info.contrast_statistics;
    behaviour.weight = *res.info.behaviour_weight;
    const std::string given = !opts.suppress.empty() ? "suppress" : "protect";
    if (!contrasted.empty() && given != behaviour.mode)
      throw InvalidArgument("--" + given + " given, but " + opts.qubo + " is a " + behaviour.mode +
                            " problem (qprune.behaviour_weight " +
                            json_number(behaviour.weight).dump() + ")");
  }
  Masks masks;
  if (!opts.base.empty()) {
    masks = read_masks(opts.base);
    masks.check_identity(ckpt);
    if (masks.mean_compensation != res.info.centered)
      throw InvalidArgument(opts.base + " was computed " +
                            (masks.mean_compensation ? "with" : "without") +
                            " mean compensation, the exported problem " +
                            (res.info.centered ? "with" : "without") + " it; they cannot be mixed");
    if (masks.behaviour.mode != behaviour.mode ||
        (behaviour.active() && (masks.behaviour.weight != behaviour.weight ||
                                masks.behaviour.statistics != behaviour.statistics)))
      throw InvalidArgument(opts.base + " and " + opts.qubo + " have different objectives: " +
                            (masks.behaviour.active()
                                 ? masks.behaviour.mode + " " + masks.behaviour.statistics
                                 : std::string("no behaviour contrast")) +
                            " vs " +
                            (behaviour.active() ? behaviour.mode + " " + behaviour.statistics
                                                : std::string("no behaviour contrast")) +
                            " (lambda " + json_number(masks.behaviour.weight).dump() + " vs " +
                            json_number(behaviour.weight).dump() + "); they cannot be mixed");
    std::erase_if(masks.entries, [&](const LayerMask& e) {
      return e.layer == res.mask.layer && unit_family(e.unit) == unit_family(res.mask.unit);
    });
  } else {
    masks.checkpoint = CheckpointIdentity::of(ckpt);
    masks.solver = "external";
    masks.sparsity = res.info.sparsity;
    masks.objective_source = behaviour.active() ? "calibration" : res.info.source;
    masks.approximate = masks.objective_source != "calibration";
    masks.mean_compensation = res.info.centered;
    if (behaviour.active())
      masks.calibration = res.info.preserve_statistics;
    else if (stats)
      masks.calibration = std::filesystem::absolute(stats->path()).lexically_normal().string();
    masks.behaviour = behaviour;
  }
  masks.entries.push_back(res.mask);
  std::sort(masks.entries.begin(), masks.entries.end(), [](const LayerMask& a, const LayerMask& b) {
    const int af = unit_family(a.unit), bf = unit_family(b.unit);
    return af != bf ? af < bf : a.layer < b.layer;
  });
  write_masks(masks, opts.output);
  Report r("import-solution");
  r.add("Layer", "layer", res.mask.layer);
  r.add("Unit", "unit", unit_kind_name(res.mask.unit));
  r.add("Units", "num_units", res.mask.num_units);
  r.add("Kept", "kept", static_cast<int>(res.mask.kept.size()));
  r.add("Solution feasible", "solution_feasible", res.was_feasible);
  r.add("Repaired", "repaired", res.was_feasible ? "no" : "yes");
  r.add("Repair removed", "repair_removed", list_text(res.repair.removed));
  r.add("Repair added", "repair_added", list_text(res.repair.added));
  if (res.file_energy)
    r.add("File energy", "file_energy", json_number(*res.file_energy));
  else
    r.add("File energy", "file_energy", "not computed (" + opts.qubo + " is write-only: lp/mps)");
  r.add("Objective", "objective", json_number(res.mask.objective));
  r.add("Baseline objective", "baseline_objective", json_number(res.mask.baseline_objective));
  r.add("Masks", "masks", opts.output);
  r.print(std::cout, opts.json);
  return kExitOk;
}

}  // namespace

void setup_export(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<ExportCommandOptions>();
  CLI::App* sub = app.add_subcommand("export",
                                     "Write one layer's pruning problem (or every layer's) "
                                     "as a QUBO file for an external solver");
  sub->footer(
      "json, lp, lp-linear and mps keep the keep-k constraint (JSON groups, LP/MPS equalities); "
      "other formats carry it as the penalty w (s - k)^2 + shift (s - k), s the units kept, zero "
      "on every answer that keeps k. --penalty tuned (default): the shift is the price of a unit "
      "at the best answer qprune finds (a short sa search), w the smallest that a search on the "
      "penalised form cannot beat by leaving the constraint, so that single-flip annealers "
      "(neal, qbsolv, hardware) reach the constrained optimum; the header carries that answer's "
      "energy (qprune.best_known_energy) and a schedule hint (qprune.beta_range, hot,cold). "
      "--penalty provable: the weight proven to keep every minimiser feasible "
      "(docs/pruning_math.md section 10), which annealers solve far worse. --penalty-weight sets "
      "w by hand. Each file also says its dynamic range and the bits a fixed-point encoding "
      "needs (qprune.dynamic_range, qprune.precision_bits). Variables are labelled L.mlp.i, "
      "L.attn.h, L.kv.g or L.experts.e (json, lp); --unit experts (MoE layers, needs --calib) has "
      "one keep constraint per routing group (DeepSeek-V3). The layer, unit, sparsity and model "
      "hash go into the JSON metadata or header comments "
      "(qprune.key=value) so that import-solution can map an answer back. See docs/masks.md.");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder")->required();
  sub->add_option("--calib", opts->calib, "calibration statistics file");
  add_behaviour_options(*sub, opts->behaviour);
  sub->add_option("--layer", opts->layer, "layer index")->check(non_negative());
  sub->add_flag("--all", opts->all, "every layer; -o is then a folder (layer_L.UNIT.EXT files)");
  sub->add_option("--unit", opts->unit, "units")
      ->transform(CLI::IsMember({"mlp", "heads", "experts"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--head-shape", opts->head_shape, "GQA models: kv_groups or heads_per_group")
      ->transform(CLI::IsMember({"kv_groups", "heads_per_group"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--sparsity", opts->sparsity, "fraction of units removed, [0, 1)")
      ->required()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_flag("--no-compensation", opts->no_compensation, "uncentred problem");
  sub->add_option("--objective", opts->objective,
                  "no-refit: the layer's exact error when the units are dropped (the QUBO); "
                  "refit: the pairwise quadratic surrogate of the error left after the "
                  "least-squares refit (exact for one or two removed units; docs/pruning_math.md "
                  "section 9), needs --calib")
      ->transform(CLI::IsMember({"no-refit", "refit"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--data-free", opts->data_free, "statistics model without --calib")
      ->transform(CLI::IsMember({"magnitude", "isserlis"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--format,-f", opts->format, "output format (default: from the extension)");
  sub->add_option("--penalty", opts->penalty,
                  "formats without groups: tuned (annealer-ready, see below) or provable")
      ->transform(CLI::IsMember({"tuned", "provable"}, CLI::ignore_case))
      ->capture_default_str();
  sub->add_option("--penalty-weight", opts->penalty_weight,
                  "penalty weight w (overrides --penalty)")
      ->check(non_negative());
  sub->add_flag("--ising", opts->ising,
                "write the Ising (SPIN) form, s = 2x - 1, same energies (coo: '# vartype=SPIN')");
  sub->add_option("--subproblem", opts->subproblem,
                  "write an N-unit sub-instance (QPUs, QAOA): the other units fixed at a good "
                  "answer, the N nearest the keep/remove boundary free; same energies as the "
                  "layer; import-solution maps its answers back")
      ->check(CLI::PositiveNumber);
  sub->add_option("--scale-to", opts->scale_to,
                  "scale the file so that its largest |coefficient| is this (e.g. 1 for a "
                  "hardware annealer's range); energies, best known energy and beta hint follow "
                  "(qprune.energy_scale)")
      ->check(CLI::PositiveNumber);
  add_qaoa_angle_options(*sub, opts->qaoa_layers, opts->qaoa_gammas, opts->qaoa_betas);
  sub->add_option("--seed", opts->seed, "seed of the searches of --penalty tuned and --subproblem")
      ->capture_default_str();
  sub->add_option(
         "--tuning-time", opts->tuning_time,
         "seconds for each search of --penalty tuned (1 + 2 per group + up to 4) and --subproblem")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--output,-o", opts->output, "output file (or folder with --all)")->required();
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, &result] { result.exit_code = run_export(*opts); });
}

void setup_import_solution(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<ImportCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "import-solution", "Turn an external solver's 0/1 answer to an exported problem into masks");
  sub->footer(
      "The answer may be a 0/1 list or a solver's own output (CBC, GLPK -w, HiGHS, Gurobi, CPLEX, "
      "qbsolv, MQLib -ps, dimod JSON; told from the content, or --from; docs/formats.md). Its "
      "variables are matched by name (the file's labels or the LP/MPS writers' names) or "
      "position. Layer, unit and sparsity come from the file's qprune metadata; for a file "
      "without it give all of --layer, --unit and --sparsity (nothing is assumed). The "
      "answer must keep exactly k units (per KV group for heads_per_group); --repair fixes it: "
      "while too many are kept, drop the kept unit whose removal raises the layer error least; "
      "while too few, add the removed unit that lowers it most (exact marginal costs). The "
      "objective is recomputed on the problem rebuilt from the checkpoint. --base merges the "
      "entry into an existing masks file (e.g. from `qprune mask`). A behaviour-contrast problem "
      "(export --suppress/--protect) is rebuilt from the two statistics files its metadata "
      "names, or from --preserve and --suppress/--protect, and its masks record the contrast "
      "as `mask` does (docs/pruning_math.md section 11).");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder")->required();
  sub->add_option("--calib", opts->calib, "calibration statistics file (as for export)");
  sub->add_option("--preserve", opts->preserve,
                  "a behaviour-contrast file's preserved set B (default: the file its metadata "
                  "names)");
  sub->add_option("--suppress", opts->suppress,
                  "a suppress file's set A (default: the file its metadata names)");
  sub->add_option("--protect", opts->protect,
                  "a protect file's set A (default: the file its metadata names)");
  sub->add_option("--qubo", opts->qubo, "the exported problem file")->required();
  sub->add_option("--solution", opts->solution, "the solver's answer file")->required();
  sub->add_option("--from", opts->from, "answer format (default: told from the content)")
      ->transform(CLI::IsMember(solution_format_names(), CLI::ignore_case));
  sub->add_option("--base", opts->base, "masks file to merge the entry into");
  sub->add_option("--output,-o", opts->output, "masks file to write")->required();
  sub->add_flag("--repair", opts->repair, "repair an infeasible answer (see below)");
  sub->add_option("--layer", opts->layer, "layer (files without qprune metadata)");
  sub->add_option("--unit", opts->unit, "mlp, heads, kv_groups, heads_per_group, experts (idem)");
  sub->add_option("--sparsity", opts->sparsity, "sparsity (idem)");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, &result] { result.exit_code = run_import(*opts); });
}

}  // namespace qprune::cli
