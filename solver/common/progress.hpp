// Progress reports of the solvers whose work comes in independent units (reads, enumeration
// chunks) finished by parallel_for threads: one lock serialises the SolveOptions::progress calls,
// counts the finished units and keeps the best finished assignment, ranked as SolveResult ranks
// samples (feasible first, then energy). Without a callback every call is a cheap no-op.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/progress.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>

#include "qprune/solver.hpp"

namespace qprune::detail {

class UnitProgress {
 public:
  /// `model`: the user's model (the reference energy); `total`: units in the stage, 0 when
  /// open-ended (reads until the time limit).
  UnitProgress(const QuboModel& model, const SolveOptions& options, std::string stage,
               std::int64_t total)
      : model_(model), callback_(options.progress), stage_(std::move(stage)), total_(total) {}

  /// One unit finished, with the assignment it ended in (nullptr: none, e.g. an empty chunk).
  /// Thread-safe.
  void unit_done(const Assignment* x) {
    if (!callback_) return;
    // The reference energy is computed outside the lock: it is the costly part.
    const double energy = x != nullptr ? model_.energy(*x) : 0.0;
    const bool feasible = x != nullptr && model_.is_feasible(*x);
    report(x != nullptr, energy, feasible);
  }
  /// One unit finished with an assignment whose reference energy and feasibility the caller has
  /// already computed. Thread-safe.
  void unit_done(double energy, bool feasible) {
    if (callback_) report(true, energy, feasible);
  }

 private:
  void report(bool has_assignment, double energy, bool feasible) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (has_assignment && (std::isnan(best_energy_) || (feasible && !best_feasible_) ||
                           (feasible == best_feasible_ && energy < best_energy_))) {
      best_energy_ = energy;
      best_feasible_ = feasible;
    }
    if (total_ == 0 || done_ < total_) ++done_;
    SolveProgress p;
    p.stage = stage_;
    p.done = done_;
    p.total = total_;
    p.best_energy = best_energy_;
    callback_(p);
  }

  const QuboModel& model_;
  const std::function<void(const SolveProgress&)>& callback_;
  std::string stage_;
  std::int64_t total_;
  std::mutex mutex_;
  std::int64_t done_ = 0;
  double best_energy_ = std::numeric_limits<double>::quiet_NaN();
  bool best_feasible_ = false;
};

}  // namespace qprune::detail
