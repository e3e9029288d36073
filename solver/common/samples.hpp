// Turning the assignments a solver ended with into the result's samples: energies recomputed with
// QuboModel::energy (the reference, so no kernel's rounding ever reaches a report), feasibility
// checked, duplicates merged, best first, at most max_samples kept. SamplePool does the same one
// assignment at a time in bounded memory, for solvers whose reads are many (a million reads, or
// reads until a time limit, must not keep a million assignments).
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/samples.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "qprune/solver.hpp"

namespace qprune::detail {

void finalize_samples(const QuboModel& model, std::vector<Assignment> assignments, int max_samples,
                      SolveResult& result);

/// The best distinct assignments seen so far, in bounded memory: at most 2 max_samples entries are
/// held; when that is exceeded the pool keeps the max_samples best. The order is total (feasible
/// first, then energy, then the bytes of the assignment), so the samples taken at the end are
/// those finalize_samples would give for all the assignments added, with the same
/// num_occurrences, whatever the order of the adds: an assignment dropped once has max_samples
/// better ones and can never come back. Thread-safe.
class SamplePool {
 public:
  explicit SamplePool(int max_samples) : max_samples_(static_cast<std::size_t>(max_samples)) {}
  /// Adds x with its reference energy and feasibility (the caller computed them, outside the
  /// lock: they are the costly part).
  void add(Assignment x, double energy, bool feasible);
  /// Moves the pool's best max_samples, best first, into result.samples.
  void take(SolveResult& result);

 private:
  void shrink();  // sorts and keeps the max_samples best; caller holds the lock
  std::size_t max_samples_;
  std::mutex mutex_;
  std::vector<Sample> samples_;
};

/// How a run ended, from why it stopped (kCompleted: nothing stopped it) and its samples:
/// kTargetReached also when the best sample is feasible and meets options.target_energy.
[[nodiscard]] SolveStatus final_status(SolveStatus stopped, const SolveOptions& options,
                                       const SolveResult& result);

/// What every solve() starts with: the options validated, a result naming the solver and the seed,
/// and the model to search. With constraint groups and any mode but kPenalty the solver keeps the
/// groups itself (native moves or enumeration, native() is true) and searches `model`; with
/// kPenalty it searches the penalty form. Without groups it searches `model`, never a copy (a
/// pruning layer's model can be several GiB). The mode and weight go to result.info.
class SolveSetup {
 public:
  SolveSetup(const std::string& solver, const QuboModel& model, const SolveOptions& options);
  SolveSetup(const SolveSetup&) = delete;
  SolveSetup& operator=(const SolveSetup&) = delete;

  SolveResult result;
  [[nodiscard]] bool native() const { return native_; }
  [[nodiscard]] const QuboModel& searched() const { return penalised_ ? *penalised_ : model_; }

 private:
  const QuboModel& model_;
  std::optional<QuboModel> penalised_;
  bool native_ = false;
};

}  // namespace qprune::detail
