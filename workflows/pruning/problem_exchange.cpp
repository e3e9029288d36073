// Single-layer problems for external solvers (include/qprune/prune_pipeline.hpp): export with the
// qprune.* metadata, import of their answers back to masks, with the documented repair rule.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/byte_codec.hpp"
#include "core/input_file.hpp"
#include "qprune/behaviour_contrast.hpp"
#include "qprune/error.hpp"
#include "qprune/expert_pruning.hpp"
#include "qprune/interrupt.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/tuned_penalty.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"

namespace qprune {

namespace {

/// The shortest text that reads back to the same double.
std::string number_text(double v) {
  char text[64];
  const auto written = std::to_chars(text, text + sizeof(text), v);
  return {text, written.ptr};
}

std::map<std::string, std::string> info_to_metadata(const ExportedProblemInfo& i) {
  std::map<std::string, std::string> m = {
      {"qprune.layer", std::to_string(i.layer)},
      {"qprune.unit", unit_kind_name(i.unit)},
      {"qprune.sparsity", number_text(i.sparsity)},  // 0.4, not 0.40000000000000002
      {"qprune.keep", std::to_string(i.keep)},
      {"qprune.num_units", std::to_string(i.num_units)},
      {"qprune.source", i.source},
      {"qprune.centered", i.centered ? "true" : "false"},
      {"qprune.config_hash", i.config_hash},
      {"qprune.objective", prune_objective_name(i.objective)}};
  if (i.behaviour_weight) {  // the preserved set B is the calibration; A and lambda here
    m["qprune.behaviour_weight"] = number_text(*i.behaviour_weight);
    m["qprune.contrast_statistics"] = i.contrast_statistics;
    m["qprune.preserve_statistics"] = i.preserve_statistics;
  }
  return m;
}

/// The subproblem's fields (none for a whole layer).
std::map<std::string, std::string> subproblem_metadata(const ExportedProblemInfo& i, double scale) {
  if (i.subproblem_variables.empty()) return {};
  std::string variables, reference;
  for (const int v : i.subproblem_variables) {
    if (!variables.empty()) variables.push_back(',');
    variables.append(std::to_string(v));
  }
  for (const std::uint8_t b : i.subproblem_reference) reference.push_back(b != 0 ? '1' : '0');
  return {{"qprune.subproblem_variables", variables},
          {"qprune.subproblem_reference", reference},
          {"qprune.best_known_energy", number_text(scale * i.subproblem_reference_energy)}};
}

std::optional<ExportedProblemInfo> info_from_metadata(const std::map<std::string, std::string>& m,
                                                      const std::string& path) {
  if (!m.count("qprune.layer")) return std::nullopt;
  auto get = [&](const char* key) {
    const auto it = m.find(key);
    if (it == m.end())
      throw ParseError(path, 0, std::string("expected qprune metadata '") + key + "', found none");
    return it->second;
  };
  ExportedProblemInfo i;
  try {
    i.layer = std::stoi(get("qprune.layer"));
    i.unit = unit_kind_from_name(get("qprune.unit"));
    i.sparsity = std::stod(get("qprune.sparsity"));
    i.keep = std::stoi(get("qprune.keep"));
    i.num_units = std::stoi(get("qprune.num_units"));
  } catch (const ParseError&) {
    throw;
  } catch (const std::exception& e) {
    throw ParseError(path, 0, std::string("expected numeric qprune metadata, found: ") + e.what());
  }
  const auto variables = m.find("qprune.subproblem_variables");
  if (variables != m.end()) {
    for (const char b : get("qprune.subproblem_reference")) {
      if (b != '0' && b != '1')
        throw ParseError(path, 0, "expected qprune.subproblem_reference of 0s and 1s");
      i.subproblem_reference.push_back(b == '1' ? 1 : 0);
    }
    const std::string& text = variables->second;
    for (std::size_t start = 0; start <= text.size();) {
      const std::size_t comma = std::min(text.find(',', start), text.size());
      int v = -1;
      const char* last = text.data() + comma;
      if (std::from_chars(text.data() + start, last, v).ptr != last || v < 0 ||
          v >= static_cast<int>(i.subproblem_reference.size()))
        throw ParseError(path, 0,
                         "expected qprune.subproblem_variables as unit indices below " +
                             std::to_string(i.subproblem_reference.size()));
      i.subproblem_variables.push_back(v);
      start = comma + 1;
    }
  }
  i.source = get("qprune.source");
  if (i.source == "contrastive") {
    const std::string weight = get("qprune.behaviour_weight");
    double lambda = 0.0;
    const char* last = weight.data() + weight.size();
    if (std::from_chars(weight.data(), last, lambda).ptr != last || !std::isfinite(lambda) ||
        lambda == 0.0 || std::abs(lambda) > kMaxBehaviourWeight)
      throw ParseError(path, 0,
                       "expected qprune.behaviour_weight a nonzero number in [-100, 100], found '" +
                           weight.substr(0, 40) + "'");
    i.behaviour_weight = lambda;
    i.contrast_statistics = get("qprune.contrast_statistics");
    i.preserve_statistics = get("qprune.preserve_statistics");
  }
  i.centered = get("qprune.centered") == "true";
  i.config_hash = get("qprune.config_hash");
  // Files written before the refit surrogate existed carry no objective: the no-refit QUBO.
  const auto objective = m.find("qprune.objective");
  if (objective != m.end()) {
    if (objective->second == "refit") {
      i.objective = PruneObjective::kRefit;
    } else if (objective->second != "no-refit") {
      throw ParseError(path, 0,
                       "expected qprune.objective refit or no-refit, found '" +
                           objective->second.substr(0, 40) + "'");
    }
  }
  return i;
}

/// Sets write.penalty_weight / penalty_shifts by the export's rule and reports the form written.
ExportedProblemInfo::Penalty choose_penalty(const QuboModel& model, const ExportOptions& options,
                                            WriteOptions& write) {
  ExportedProblemInfo::Penalty p;
  if (write.penalty_weight) {
    p.rule = "given";
  } else if (options.penalty_rule == ExportOptions::PenaltyRule::kProvable) {
    p.rule = "provable";
  } else {
    p.rule = "tuned";
    TunedPenaltyOptions tuning;
    tuning.seed = options.seed;
    tuning.search_time_s = options.tuning_time_s;
    tuning.interrupt = options.interrupt;
    const TunedPenalty t = tuned_penalty(model, tuning);
    write.penalty_weight = t.weight;
    write.penalty_shifts = t.shifts;
    p.best_known_energy = t.best_energy;
    p.beta_range = t.beta_range;
    p.verified = t.verified;
  }
  const QuboModel written = model.penalized(write.penalty_weight, write.penalty_shifts);
  p.weight = write.penalty_weight.value_or(model.default_penalty_weight());
  p.shifts = write.penalty_shifts.empty() ? model.penalty_terms().shifts : write.penalty_shifts;

  // Dynamic range of what is written, and the bits that keep the objective's own median coupling.
  double largest = 0.0, smallest = std::numeric_limits<double>::infinity();
  auto take = [&](double v) {
    if (v == 0.0) return;
    largest = std::max(largest, std::abs(v));
    smallest = std::min(smallest, std::abs(v));
  };
  for (int i = 0; i < written.num_variables(); ++i) {
    take(written.linear()[i]);
    written.for_each_in_row(i, [&](int j, double q) {
      if (j > i) take(q);
    });
  }
  std::vector<double> own;
  for (int i = 0; i < model.num_variables(); ++i)
    model.for_each_in_row(i, [&](int j, double q) {
      if (j > i && q != 0.0) own.push_back(std::abs(q));
    });
  p.largest_coefficient = largest;
  if (largest > 0.0) p.dynamic_range = largest / smallest;
  if (!own.empty() && largest > 0.0) {
    const auto mid = own.begin() + static_cast<std::ptrdiff_t>(own.size() / 2);
    std::nth_element(own.begin(), mid, own.end());
    p.precision_bits = static_cast<int>(std::ceil(std::log2(largest / (0.01 * *mid))));
  }
  return p;
}

std::map<std::string, std::string> penalty_metadata(const ExportedProblemInfo::Penalty& p,
                                                    double scale) {
  std::string shifts;
  for (const double s : p.shifts) {
    if (!shifts.empty()) shifts.push_back(',');
    shifts.append(number_text(s));
  }
  std::map<std::string, std::string> m = {
      {"qprune.penalty_rule", p.rule},
      {"qprune.penalty_weight", number_text(p.weight)},
      {"qprune.penalty_shifts", shifts},
      {"qprune.dynamic_range", number_text(p.dynamic_range)},
      {"qprune.precision_bits", std::to_string(p.precision_bits)}};
  if (p.best_known_energy) {
    m["qprune.best_known_energy"] = number_text(scale * *p.best_known_energy);
    m["qprune.penalty_verified"] = p.verified ? "true" : "false";
  }
  if (p.beta_range)
    m["qprune.beta_range"] =
        number_text(p.beta_range->first / scale) + "," + number_text(p.beta_range->second / scale);
  return m;
}

/// The ExportOptions::subproblem sub-instance of `model`; fills info's subproblem fields.
QuboModel subproblem_of(const QuboModel& model, const ExportOptions& options,
                        ExportedProblemInfo& info) {
  const int n = model.num_variables();
  if (options.subproblem >= n)
    throw InvalidArgument("--subproblem " + std::to_string(options.subproblem) +
                          ": the layer problem has only " + std::to_string(n) + " units");
  SolveOptions so;
  so.seed = options.seed;
  so.num_reads = 8;
  so.time_limit_s = options.tuning_time_s;
  so.interrupt = options.interrupt;
  const SolveResult r = make_solver("sa")->solve(model, so);
  throw_if_interrupted("searching the subproblem's reference answer");
  if (r.status == SolveStatus::kInterrupted)
    throw Interrupted("stopped while searching the subproblem's reference answer");
  if (!r.has_solution() || !r.best().feasible)
    throw Error("--subproblem: the search for a reference answer found none (" + r.message + ")");
  const Assignment& ref = r.best().x;
  // The boundary: kept units by removal cost (-f), removed units by addition cost (f), cheapest
  // first; half of each, the rest from the other side when one runs out.
  std::vector<std::pair<double, int>> kept, removed;
  for (int v = 0; v < n; ++v) {
    const double f = model.local_field(ref, v);
    if (ref[static_cast<std::size_t>(v)] != 0)
      kept.emplace_back(-f, v);
    else
      removed.emplace_back(f, v);
  }
  std::sort(kept.begin(), kept.end());
  std::sort(removed.begin(), removed.end());
  const int want = options.subproblem;
  const int from_removed = std::min(static_cast<int>(removed.size()),
                                    want - std::min(static_cast<int>(kept.size()), (want + 1) / 2));
  const int from_kept = want - from_removed;
  std::vector<int> free;
  free.reserve(static_cast<std::size_t>(want));
  for (int a = 0; a < from_kept; ++a) free.push_back(kept[static_cast<std::size_t>(a)].second);
  for (int a = 0; a < from_removed; ++a)
    free.push_back(removed[static_cast<std::size_t>(a)].second);
  std::sort(free.begin(), free.end());
  info.subproblem_variables = free;
  info.subproblem_reference = ref;
  info.subproblem_reference_energy = r.best().energy;
  return model.restricted(free, ref);
}

// The unit a layer's entry records: head shapes resolved for the model (GQA or not).
UnitKind exported_unit(const ModelConfig& config, UnitKind unit) {
  return unit == UnitKind::kMlp || unit == UnitKind::kExperts ? unit : head_unit_for(config, unit);
}

}  // namespace

ExportedProblemInfo export_layer_problem(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                                         const LayerProblemSpec& spec, const std::string& path,
                                         const ExportOptions& options) {
  if (stats != nullptr) stats->check_against(ckpt.config(), checkpoint_config_hash(ckpt));
  LayerProblem problem = build_layer_problem(ckpt, stats, spec);
  ExportedProblemInfo info;
  info.layer = spec.layer;
  info.unit = exported_unit(ckpt.config(), spec.unit);
  info.sparsity = spec.sparsity;
  info.keep = 0;
  for (const CardinalityConstraint& c : problem.model.constraints()) info.keep += c.k;
  info.num_units = problem.num_units();
  info.source = gram_source_name(problem.source);
  info.centered = problem.centered;
  info.config_hash = checkpoint_config_hash(ckpt);
  info.objective = spec.objective;
  if (spec.contrast != nullptr) {
    if (stats == nullptr)  // build_layer_problem refuses this too; the metadata names B's file
      throw InvalidArgument("a behaviour contrast needs the preserved set's statistics");
    info.source = "contrastive";
    info.behaviour_weight = spec.behaviour_weight;
    info.contrast_statistics =
        std::filesystem::absolute(spec.contrast->path()).lexically_normal().string();
    info.preserve_statistics = std::filesystem::absolute(stats->path()).lexically_normal().string();
  }
  for (const auto& [k, v] : info_to_metadata(info)) problem.model.metadata[k] = v;
  if (options.subproblem > 0) problem.model = subproblem_of(problem.model, options, info);

  WriteOptions write = options.write;
  const std::string format = write_format_for(path, write.format);
  const bool penalised = problem.model.has_constraints() && !format_holds_constraints(format);
  if (penalised) info.penalty = choose_penalty(problem.model, options, write);
  if (options.scale_to) {  // the largest |coefficient| of what is written becomes scale_to
    if (!std::isfinite(*options.scale_to) || *options.scale_to <= 0.0)
      throw InvalidArgument("ExportOptions::scale_to must be finite and > 0");
    // The penalised form's largest coefficient was found while choosing the penalty (building it
    // once more would cost a copy of a dense layer, 2.9 GB at n = 18944).
    double largest = 0.0;
    if (penalised) {
      largest = info.penalty->largest_coefficient;
    } else {
      const QuboModel& m = problem.model;
      largest = m.linear().size() > 0 ? m.linear().cwiseAbs().maxCoeff() : 0.0;
      m.for_each_coupling([&](int, int, double q) { largest = std::max(largest, std::abs(q)); });
    }
    if (largest > 0.0) write.scale = *options.scale_to / largest;
  }
  for (const auto& [k, v] : subproblem_metadata(info, write.scale)) problem.model.metadata[k] = v;
  if (info.penalty)
    for (const auto& [k, v] : penalty_metadata(*info.penalty, write.scale))
      problem.model.metadata[k] = v;
  if (format == "qasm" && write.qaoa_gammas.empty()) {  // the circuit of the written problem
    const QuboModel searched =
        problem.model.has_constraints()
            ? problem.model.penalized(write.penalty_weight, write.penalty_shifts)
            : problem.model;
    QaoaAngles angles = optimised_qaoa_angles(searched, options.qaoa, options.seed);
    write.qaoa_gammas = std::move(angles.gammas);
    write.qaoa_betas = std::move(angles.betas);
  }
  // write_model puts the qprune.* metadata into the JSON metadata object or the header comments.
  write_model(problem.model, path, write);
  return info;
}

std::optional<ExportedProblemInfo> read_exported_info(const std::string& path) {
  { const detail::InputFile check(path); }  // refuses a FIFO or device (the read would block)
  return info_from_metadata(read_file_metadata(path), path);
}

RepairResult repair_assignment(const QuboModel& model, Assignment x) {
  // The per-group fix rule is the solvers' one (solver/common/descent.hpp), so an imported
  // solution is repaired exactly as a solver's start is.
  RepairResult r;
  const detail::CompiledProblem p(model, true);
  std::vector<double> f;
  p.fields(x.data(), f);
  detail::fix_group_counts(p, x.data(), f.data(), r.removed, r.added);
  r.x = std::move(x);
  return r;
}

namespace {

// A statistics file a contrastive export names: opened, or an error saying where the name came
// from and how to give another.
CalibrationStatsFile open_named(const std::string& path) {
  try {
    return CalibrationStatsFile::open(path);
  } catch (const IoError& e) {
    throw IoError(std::string(e.what()) +
                  " (named in the exported file's metadata; give the statistics by hand)");
  }
}

}  // namespace

ImportResult import_solution(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                             const std::string& qubo_path, const std::string& solution_path,
                             const ImportOptions& options) {
  ImportResult out;
  std::optional<ExportedProblemInfo> info = read_exported_info(qubo_path);
  // Without the file's metadata nothing is assumed: a guessed sparsity would rebuild another
  // problem and silently repair the answer to it.
  if (!info && (!options.layer || !options.unit || !options.sparsity))
    throw InvalidArgument(qubo_path +
                          " carries no qprune metadata (qprune.layer, qprune.unit, "
                          "qprune.sparsity): give --layer, --unit and --sparsity as they were "
                          "given to export");
  if (!info) {
    info.emplace();
    info->sparsity = *options.sparsity;
    info->source = stats != nullptr ? "calibration" : "magnitude";
    info->centered = true;
  }
  if (options.layer) info->layer = *options.layer;
  if (options.unit) info->unit = *options.unit;
  if (options.sparsity) info->sparsity = *options.sparsity;
  const std::string hash = checkpoint_config_hash(ckpt);
  if (!info->config_hash.empty() && info->config_hash != hash)
    throw InvalidArgument(qubo_path + " was exported from another model (config " +
                          info->config_hash + "), not from " + ckpt.folder().string() + " (" +
                          hash + ")");
  // A contrastive problem is rebuilt from both sets: the ones given, else the files it names.
  const bool contrastive = info->source == "contrastive";
  std::optional<CalibrationStatsFile> named_preserve, named_contrast;
  const CalibrationStatsFile* contrast = nullptr;
  if (contrastive) {
    if (stats == nullptr) stats = &named_preserve.emplace(open_named(info->preserve_statistics));
    contrast = options.contrast != nullptr
                   ? options.contrast
                   : &named_contrast.emplace(open_named(info->contrast_statistics));
    check_contrast_files(ckpt, *stats, *contrast);
    info->preserve_statistics = std::filesystem::absolute(stats->path()).lexically_normal();
    info->contrast_statistics = std::filesystem::absolute(contrast->path()).lexically_normal();
  } else if (options.contrast != nullptr) {
    throw InvalidArgument(qubo_path + " holds a single-set problem (qprune.source=" + info->source +
                          "), not a behaviour contrast: leave out its set A");
  }
  if (info->source == "calibration" && stats == nullptr)
    throw InvalidArgument(qubo_path + " was built from calibration statistics: give --calib");
  if (stats != nullptr) stats->check_against(ckpt.config(), hash);
  LayerProblemSpec spec;
  spec.layer = info->layer;
  spec.unit = info->unit;
  spec.sparsity = info->sparsity;
  spec.mean_compensation = info->centered;
  spec.data_free =
      info->source == "isserlis" ? DataFreeModel::kIsserlis : DataFreeModel::kMagnitude;
  spec.objective = info->objective;
  if (contrastive) {
    spec.contrast = contrast;
    spec.behaviour_weight = *info->behaviour_weight;
  }
  const LayerProblem problem = build_layer_problem(
      ckpt, info->source == "calibration" || contrastive ? stats : nullptr, spec);
  const int n = problem.num_units();
  if (info->num_units != 0 && info->num_units != n)
    throw InvalidArgument(qubo_path + ": " + std::to_string(info->num_units) +
                          " units in the file, the rebuilt layer problem has " + std::to_string(n));

  // The file's model (for labels and its own energy). The LP and MPS formats cannot be read
  // back: then the variables are the rebuilt problem's, in the export order and with the names
  // the writer gave them, and the file's energy is not known.
  std::optional<QuboModel> file_model;
  const FormatInfo& file_format = format_by_name(detect_format(qubo_path));
  if (file_format.can_read) file_model = read_model(qubo_path);
  // A subproblem file (export --subproblem) holds some units; the others are its reference's.
  const bool sub = !info->subproblem_variables.empty();
  if (sub && static_cast<int>(info->subproblem_reference.size()) != n)
    throw InvalidArgument(qubo_path + ": its subproblem reference has " +
                          std::to_string(info->subproblem_reference.size()) +
                          " units, the rebuilt layer problem " + std::to_string(n));
  const int expected_n = sub ? static_cast<int>(info->subproblem_variables.size()) : n;
  const int file_n = file_model ? file_model->num_variables() : expected_n;
  if (file_n != expected_n)
    throw InvalidArgument(
        qubo_path + " has " + std::to_string(file_n) + " variables, " +
        (sub ? "its metadata names " + std::to_string(expected_n)
             : "layer " + std::to_string(info->layer) + " has " + std::to_string(n) + " units"));
  SolutionReadOptions solution_options;
  solution_options.format = options.solution_format;
  const Assignment file_x =
      read_solution(solution_path, file_model ? *file_model : problem.model, solution_options);
  if (file_model) out.file_energy = file_model->energy(file_x);
  Assignment x = sub ? info->subproblem_reference : Assignment(static_cast<std::size_t>(n), 0);
  for (int p = 0; p < file_n; ++p) {
    int unit = sub ? info->subproblem_variables[static_cast<std::size_t>(p)] : p;
    if (file_model && !file_model->labels().empty()) {
      // Labels "L.kind.i": the unit index is after the last dot, the layer before the first.
      const std::string& label = file_model->labels()[static_cast<std::size_t>(p)];
      const std::size_t first = label.find('.'), last = label.rfind('.');
      try {
        if (first == std::string::npos || std::stoi(label.substr(0, first)) != info->layer)
          throw std::invalid_argument("layer");
        unit = std::stoi(label.substr(last + 1));
      } catch (const std::exception&) {
        throw ParseError(qubo_path, 0,
                         "expected labels 'L.kind.i' of layer " + std::to_string(info->layer) +
                             ", found '" + label + "'");
      }
      if (unit < 0 || unit >= n)
        throw ParseError(
            qubo_path, 0,
            "expected unit index < " + std::to_string(n) + " in label '" + label + "'");
    }
    x[static_cast<std::size_t>(unit)] = file_x[static_cast<std::size_t>(p)];
  }
  out.was_feasible = problem.model.is_feasible(x);
  if (!out.was_feasible) {
    if (!options.repair) {
      std::string counts;
      for (const CardinalityConstraint& g : problem.model.constraints()) {
        int ones = 0;
        for (int v : g.variables) ones += x[static_cast<std::size_t>(v)];
        counts += (counts.empty() ? "" : ", ") + g.name + " keeps " + std::to_string(ones) +
                  " (needs " + std::to_string(g.k) + ")";
      }
      throw InvalidArgument(solution_path + ": infeasible mask: " + counts +
                            "; use --repair to fix it by exact marginal cost");
    }
    out.repair = repair_assignment(problem.model, x);
    x = out.repair.x;
  }
  out.info = *info;
  out.mask.layer = info->layer;
  out.mask.unit = exported_unit(ckpt.config(), spec.unit);
  out.mask.num_units = n;
  out.mask.kept = kept_indices(x);
  out.mask.objective = problem.model.energy(x);
  out.mask.baseline_objective = problem.model.energy(diagonal_top_k(problem));
  out.mask.feasible = problem.model.is_feasible(x);
  out.mask.status = out.was_feasible ? RunStatus::kImported : RunStatus::kImportedRepaired;
  if (spec.unit == UnitKind::kExperts) {
    // The answer of the QUBO (no re-routing in it) scored by the exact re-routed error, as `mask`
    // records it; no swaps: the masks are the external solver's answer.
    const ExpertRerouting rerouting(*DecoderLayerWeights::read(ckpt, spec.layer).moe,
                                    stats->read_experts(spec.layer).inputs);
    out.mask.rerouted_error = rerouting.error(out.mask.kept);
    out.mask.qubo_rerouted_error = out.mask.rerouted_error;
    out.mask.rerouted_relative_error = rerouting.routed_energy() > 0.0
                                           ? *out.mask.rerouted_error / rerouting.routed_energy()
                                           : 0.0;
  }
  return out;
}

}  // namespace qprune
