// Metrics of a comparison: reference selection, gaps, success probability, time to solution with
// 99% confidence, and the per-(solver, instance) summary.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "qprune/comparison.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Statuses of runs that never searched: they count in `runs` but not in the probabilities.
bool did_run(const RunRecord& r) {
  return r.status != RunStatus::kSkipped && r.status != RunStatus::kError &&
         r.status != RunStatus::kNotRun;
}

std::string shortest(double v) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

std::string_view to_string(ReferenceKind kind) {
  switch (kind) {
    case ReferenceKind::kNone:
      return "none";
    case ReferenceKind::kKnownOptimal:
      return "known_optimal";
    case ReferenceKind::kKnownBest:
      return "known_best";
    case ReferenceKind::kExact:
      return "exact";
    case ReferenceKind::kBestFound:
      return "best_found";
  }
  return "unknown";
}

double Tolerance::of(double reference) const { return absolute + relative * std::abs(reference); }

double median(std::vector<double> values) {
  if (values.empty()) return kNaN;
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lower + upper);
}

double tts99(double time_s, double success_probability) {
  const double p = success_probability;
  if (!(p >= 0.0 && p <= 1.0)) {
    throw InvalidArgument("tts99: success probability must be in [0, 1], got " + shortest(p));
  }
  if (!(time_s >= 0.0)) throw InvalidArgument("tts99: time must be >= 0, got " + shortest(time_s));
  if (p == 0.0) return std::numeric_limits<double>::infinity();
  if (p >= 0.99) return time_s;  // one run already reaches 99% (p = 1: ln(1 - p) is -inf)
  return time_s * std::log(0.01) / std::log1p(-p);
}

double relative_gap(double energy, double reference) {
  if (!std::isfinite(reference) || reference == 0.0) return kNaN;
  return (energy - reference) / std::abs(reference);
}

Reference select_reference(const std::vector<RunRecord>& runs,
                           const std::optional<KnownValue>& known) {
  Reference ref;
  if (known) {
    ref.kind = known->optimal ? ReferenceKind::kKnownOptimal : ReferenceKind::kKnownBest;
    ref.energy = known->energy();
    ref.source = known->source;
    return ref;
  }
  for (const RunRecord& r : runs) {
    if (r.status == RunStatus::kOptimal && r.has_solution && r.feasible) {
      ref.kind = ReferenceKind::kExact;
      ref.energy = r.energy;
      ref.source = r.solver + " seed " + std::to_string(r.seed) + " (proven optimal)";
      return ref;
    }
  }
  for (const RunRecord& r : runs) {
    if (r.has_solution && r.feasible &&
        (ref.kind == ReferenceKind::kNone || r.energy < ref.energy)) {
      ref.kind = ReferenceKind::kBestFound;
      ref.energy = r.energy;
      ref.source = r.solver + " seed " + std::to_string(r.seed);
    }
  }
  return ref;
}

bool is_success(const RunRecord& run, const Reference& reference, const Tolerance& tolerance) {
  if (!run.has_solution || !run.feasible || reference.kind == ReferenceKind::kNone) return false;
  return run.energy <= reference.energy + tolerance.of(reference.energy);
}

CellSummary summarize_cell(const std::vector<RunRecord>& runs, const Reference& reference,
                           const Tolerance& tolerance) {
  CellSummary s;
  s.reference = reference;
  if (runs.empty()) return s;
  s.solver = runs.front().solver;
  s.instance = runs.front().instance;
  s.num_variables = runs.front().num_variables;
  s.runs = static_cast<int>(runs.size());
  std::vector<double> energies, times;
  int ran = 0, successes = 0;
  std::map<std::string, std::pair<double, int>> qaoa;  // sum, count
  for (const RunRecord& r : runs) {
    s.threads = std::max(s.threads, r.threads);
    if (!did_run(r)) {
      if (s.note.empty()) s.note = std::string(to_string(r.status)) + ": " + r.message;
      continue;
    }
    ++ran;
    times.push_back(r.wall_time_s);
    if (r.has_solution) ++s.runs_solved;
    if (r.has_solution && r.feasible) {
      ++s.runs_feasible;
      energies.push_back(r.energy);
    }
    if (is_success(r, reference, tolerance)) ++successes;
    const auto decomposition = r.info.find("decomposition");
    if (r.solver_name == "qaoa" && decomposition != r.info.end() &&
        decomposition->second == "none") {
      for (const char* key :
           {"layers", "expected_energy", "approximation_ratio", "optimum_probability"}) {
        const auto c = r.counters.find(key);
        if (c == r.counters.end()) continue;
        qaoa[key].first += c->second;
        qaoa[key].second += 1;
      }
    }
  }
  for (const auto& [key, sum] : qaoa) s.qaoa[key] = sum.first / sum.second;
  if (!energies.empty()) {
    s.best = *std::min_element(energies.begin(), energies.end());
    s.worst = *std::max_element(energies.begin(), energies.end());
    s.median = median(energies);
  }
  if (s.runs_solved > 0) s.feasibility_rate = double(s.runs_feasible) / s.runs_solved;
  if (ran > 0) {
    s.success_probability = double(successes) / ran;
    s.median_time_s = median(times);
    s.tts99_s = tts99(s.median_time_s, s.success_probability);
  }
  if (reference.kind != ReferenceKind::kNone && !energies.empty()) {
    s.best_gap_abs = s.best - reference.energy;
    s.best_gap_rel = relative_gap(s.best, reference.energy);
    s.median_gap_rel = relative_gap(s.median, reference.energy);
  }
  return s;
}

void summarize(ComparisonReport& report, const std::map<std::string, KnownValue>& known,
               const Tolerance& tolerance) {
  report.summaries.clear();
  report.references.clear();
  // Instances and solver labels in order of first appearance.
  std::vector<std::string> instances, solvers;
  for (const RunRecord& r : report.runs) {
    if (std::find(instances.begin(), instances.end(), r.instance) == instances.end())
      instances.push_back(r.instance);
    if (std::find(solvers.begin(), solvers.end(), r.solver) == solvers.end())
      solvers.push_back(r.solver);
  }
  for (const std::string& instance : instances) {
    std::vector<RunRecord> of_instance;
    for (const RunRecord& r : report.runs)
      if (r.instance == instance) of_instance.push_back(r);
    std::optional<KnownValue> value;
    const auto it = known.find(instance);
    // A row only counts for a model of the same size: a name clash must not give a wrong target.
    if (it != known.end() && (it->second.num_variables == 0 ||
                              it->second.num_variables == of_instance.front().num_variables)) {
      value = it->second;
    }
    const Reference ref = select_reference(of_instance, value);
    report.references[instance] = ref;
    for (const std::string& solver : solvers) {
      std::vector<RunRecord> cell;
      for (const RunRecord& r : of_instance)
        if (r.solver == solver) cell.push_back(r);
      if (!cell.empty()) report.summaries.push_back(summarize_cell(cell, ref, tolerance));
    }
  }
}

}  // namespace qprune
