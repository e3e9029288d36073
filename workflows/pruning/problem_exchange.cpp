// Single-layer problems for external solvers (include/qprune/prune_pipeline.hpp): export with the
// qprune.* metadata, import of their answers back to masks, with the documented repair rule.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>
#include <optional>

#include "core/byte_codec.hpp"
#include "core/input_file.hpp"
#include "qprune/error.hpp"
#include "qprune/prune_pipeline.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"

namespace qprune {

namespace {

std::map<std::string, std::string> info_to_metadata(const ExportedProblemInfo& i) {
  // The shortest text that reads back to the same double: 0.4, not 0.40000000000000002.
  char sparsity[64];
  const auto written = std::to_chars(sparsity, sparsity + sizeof(sparsity), i.sparsity);
  return {{"qprune.layer", std::to_string(i.layer)},
          {"qprune.unit", unit_kind_name(i.unit)},
          {"qprune.sparsity", std::string(sparsity, written.ptr)},
          {"qprune.keep", std::to_string(i.keep)},
          {"qprune.num_units", std::to_string(i.num_units)},
          {"qprune.source", i.source},
          {"qprune.centered", i.centered ? "true" : "false"},
          {"qprune.config_hash", i.config_hash},
          {"qprune.objective", prune_objective_name(i.objective)}};
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
  i.source = get("qprune.source");
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

}  // namespace

ExportedProblemInfo export_layer_problem(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                                         const LayerProblemSpec& spec, const std::string& path,
                                         const WriteOptions& write_options) {
  if (stats != nullptr) stats->check_against(ckpt.config(), checkpoint_config_hash(ckpt));
  LayerProblem problem = build_layer_problem(ckpt, stats, spec);
  ExportedProblemInfo info;
  info.layer = spec.layer;
  info.unit =
      spec.unit == UnitKind::kMlp ? UnitKind::kMlp : head_unit_for(ckpt.config(), spec.unit);
  info.sparsity = spec.sparsity;
  info.keep = 0;
  for (const CardinalityConstraint& c : problem.model.constraints()) info.keep += c.k;
  info.num_units = problem.num_units();
  info.source = gram_source_name(problem.source);
  info.centered = problem.centered;
  info.config_hash = checkpoint_config_hash(ckpt);
  info.objective = spec.objective;
  for (const auto& [k, v] : info_to_metadata(info)) problem.model.metadata[k] = v;

  // write_model puts the qprune.* metadata into the JSON metadata object or the header comments.
  write_model(problem.model, path, write_options);
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
  const LayerProblem problem =
      build_layer_problem(ckpt, info->source == "calibration" ? stats : nullptr, spec);
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
  const int file_n = file_model ? file_model->num_variables() : n;
  if (file_n != n)
    throw InvalidArgument(qubo_path + " has " + std::to_string(file_n) + " variables, layer " +
                          std::to_string(info->layer) + " has " + std::to_string(n) + " units");
  SolutionReadOptions solution_options;
  solution_options.format = options.solution_format;
  const Assignment file_x =
      read_solution(solution_path, file_model ? *file_model : problem.model, solution_options);
  if (file_model) out.file_energy = file_model->energy(file_x);
  Assignment x(static_cast<std::size_t>(n), 0);
  for (int p = 0; p < n; ++p) {
    int unit = p;
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
  out.mask.unit =
      spec.unit == UnitKind::kMlp ? UnitKind::kMlp : head_unit_for(ckpt.config(), spec.unit);
  out.mask.num_units = n;
  out.mask.kept = kept_indices(x);
  out.mask.objective = problem.model.energy(x);
  out.mask.baseline_objective = problem.model.energy(diagonal_top_k(problem));
  out.mask.feasible = problem.model.is_feasible(x);
  out.mask.status = out.was_feasible ? RunStatus::kImported : RunStatus::kImportedRepaired;
  return out;
}

}  // namespace qprune
