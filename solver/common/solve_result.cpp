// SolveResult, SolveOptions and the shared sample bookkeeping of all solvers.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <string_view>

#include "core/memory_check.hpp"
#include "qprune/error.hpp"
#include "qprune/solver.hpp"
#include "solver/common/samples.hpp"

namespace qprune {

std::string_view to_string(ConstraintMode mode) {
  switch (mode) {
    case ConstraintMode::kAuto:
      return "auto";
    case ConstraintMode::kNative:
      return "native";
    case ConstraintMode::kPenalty:
      return "penalty";
  }
  return "unknown";
}

void SolveOptions::validate() const {
  if (!(time_limit_s > 0.0)) {
    throw InvalidArgument("SolveOptions::time_limit_s must be > 0, got " +
                          std::to_string(time_limit_s));
  }
  if (num_reads < 1) {
    throw InvalidArgument("SolveOptions::num_reads must be >= 1, got " + std::to_string(num_reads));
  }
  if (reads_until_time_limit && !std::isfinite(time_limit_s)) {
    throw InvalidArgument("SolveOptions::reads_until_time_limit needs a finite time_limit_s");
  }
  if (max_samples < 1) {
    throw InvalidArgument("SolveOptions::max_samples must be >= 1, got " +
                          std::to_string(max_samples));
  }
  if (target_energy && std::isnan(*target_energy)) {
    throw InvalidArgument("SolveOptions::target_energy must not be NaN");
  }
  if (penalty_weight && !(std::isfinite(*penalty_weight) && *penalty_weight >= 0.0)) {
    throw InvalidArgument("SolveOptions::penalty_weight must be finite and >= 0");
  }
  if (memory_limit_bytes && *memory_limit_bytes == 0) {
    throw InvalidArgument("SolveOptions::memory_limit_bytes must be > 0 when given");
  }
}

const Sample& SolveResult::best() const {
  if (samples.empty()) throw Error("SolveResult::best: the result has no sample (" + message + ")");
  return samples.front();
}

namespace {
// An integer-valued double as its exact integer ("-1117170", never "-1.11717e+06"), any other one
// as the shortest text that reads back to the same value.
std::string format_number(double v) {
  char buf[64];
  if (std::isfinite(v) && v == std::nearbyint(v) && std::abs(v) < 1e18) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
}  // namespace

std::string SolveResult::brief_report() const {
  std::ostringstream out;
  out << solver << ": " << to_string(status);
  if (has_solution()) {
    out << ", best energy " << format_number(best().energy)
        << (best().feasible ? "" : " (infeasible)");
  }
  out << ", " << std::setprecision(3) << wall_time_s << " s";
  return out.str();
}

std::string SolveResult::full_report() const {
  std::ostringstream out;
  auto line = [&](const std::string& key, const std::string& value) {
    out << std::left << std::setw(20) << key << " : " << value << "\n";
  };
  line("Solver", solver);
  line("Status", std::string(to_string(status)));
  line("Message", message);
  line("Seed", std::to_string(seed));
  line("Wall time (s)", format_number(wall_time_s));
  if (has_solution()) {
    line("Best energy", format_number(best().energy));
    line("Feasible", best().feasible ? "yes" : "no");
    line("Samples", std::to_string(samples.size()));
  }
  for (const auto& [key, value] : info) line(key, value);
  for (const auto& [key, value] : counters) line(key, format_number(value));
  return out.str();
}

namespace detail {

namespace {

// Byte-wise order through string_view: the same order as vector's operator<, without the spurious
// -Wstringop-overread GCC 12 reports for that operator inside std::sort.
std::string_view bytes(const Assignment& x) {
  return std::string_view(reinterpret_cast<const char*>(x.data()), x.size());
}

// The ranking of samples: feasible first, then lower energy, then the assignment's bytes (a total
// order, so which samples are kept does not depend on the order they came in).
bool better(const Sample& l, const Sample& r) {
  if (l.feasible != r.feasible) return l.feasible;
  if (l.energy != r.energy) return l.energy < r.energy;
  return bytes(l.x) < bytes(r.x);
}

}  // namespace

void finalize_samples(const QuboModel& model, std::vector<Assignment> assignments, int max_samples,
                      SolveResult& result) {
  std::sort(assignments.begin(), assignments.end(),
            [&](const Assignment& l, const Assignment& r) { return bytes(l) < bytes(r); });
  std::vector<Sample> samples;
  for (std::size_t a = 0; a < assignments.size();) {
    std::size_t b = a;
    while (b < assignments.size() && assignments[b] == assignments[a]) ++b;
    Sample s;
    s.x = std::move(assignments[a]);
    s.energy = model.energy(s.x);
    s.feasible = model.is_feasible(s.x);
    s.num_occurrences = static_cast<int>(b - a);
    samples.push_back(std::move(s));
    a = b;
  }
  std::sort(samples.begin(), samples.end(), better);
  if (samples.size() > static_cast<std::size_t>(max_samples)) {
    samples.resize(static_cast<std::size_t>(max_samples));
  }
  result.samples = std::move(samples);
}

void SamplePool::add(Assignment x, double energy, bool feasible) {
  const std::lock_guard<std::mutex> lock(mutex_);
  for (Sample& s : samples_) {
    if (s.energy == energy && s.x == x) {
      ++s.num_occurrences;
      return;
    }
  }
  Sample s;
  s.x = std::move(x);
  s.energy = energy;
  s.feasible = feasible;
  samples_.push_back(std::move(s));
  if (samples_.size() > 2 * max_samples_) shrink();
}

void SamplePool::shrink() {
  std::sort(samples_.begin(), samples_.end(), better);
  if (samples_.size() > max_samples_) samples_.resize(max_samples_);
}

void SamplePool::take(SolveResult& result) {
  const std::lock_guard<std::mutex> lock(mutex_);
  shrink();
  result.samples = std::move(samples_);
  samples_.clear();
}

SolveStatus final_status(SolveStatus stopped, const SolveOptions& options,
                         const SolveResult& result) {
  if (options.target_energy && result.has_solution() && result.best().feasible &&
      result.best().energy <= *options.target_energy) {
    return SolveStatus::kTargetReached;
  }
  return stopped;
}

SolveSetup::SolveSetup(const std::string& solver, const QuboModel& model,
                       const SolveOptions& options)
    : model_(model) {
  options.validate();
  result.solver = solver;
  result.seed = options.seed;
  if (!model.has_constraints()) {
    result.info["constraint_mode"] = "none";
  } else if (options.constraint_mode != ConstraintMode::kPenalty) {
    native_ = true;
    result.info["constraint_mode"] = "native";
  } else {
    // QuboModel::penalized lists every coupling plus one clique per group (16-byte triples),
    // then builds the new model from them: dense n x n doubles or CSR (about 24 bytes per pair).
    // The smaller of the two is counted, so this refuses only what certainly cannot fit.
    double pairs = static_cast<double>(model.num_couplings());
    for (const CardinalityConstraint& g : model.constraints()) {
      const double size = static_cast<double>(g.variables.size());
      pairs += size * (size - 1.0) / 2.0;
    }
    check_memory(
        pairs * 16.0 + std::min(square_bytes(model.num_variables(), sizeof(double)), pairs * 24.0),
        solver + ": the penalised copy of a model of " + std::to_string(model.num_variables()) +
            " variables",
        "use the native constraint mode (ConstraintMode::kAuto) or a smaller problem",
        options.memory_limit_bytes);
    penalised_ = model.penalized(options.penalty_weight);
    result.info["constraint_mode"] = "penalty";
    result.info["penalty_weight"] = penalised_->metadata["penalty_weight"];
  }
}

}  // namespace detail
}  // namespace qprune
