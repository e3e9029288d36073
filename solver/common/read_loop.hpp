// The read loop every sampling solver shares: num_reads independent reads run in parallel, read r
// drawing from the stream make_rng(seed, r) (so samples do not depend on the thread count), the
// time limit, the interrupt flag and the target energy turned into one run status, progress after
// each read, and the finished reads turned into the result's samples (recomputed energies, merged
// duplicates, best first). A solver hands run_reads its move rule: what one read does from its
// random stream to its final assignment.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/read_loop.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/parallel_for.hpp"
#include "core/rng.hpp"
#include "qprune/solver.hpp"
#include "solver/common/progress.hpp"
#include "solver/common/samples.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune::detail {

/// Why the reads of one solve stop, shared by them all. Thread-safe.
class ReadControl {
 public:
  ReadControl(const QuboModel& model, const SolveOptions& options, const StopCondition& stop)
      : model_(model), target_(options.target_energy), stop_(stop) {}

  /// True once any read has stopped the run (the reads still running should end soon).
  [[nodiscard]] bool stopped() const { return reason_.load(std::memory_order_relaxed) != kRunning; }
  /// Asks the time limit and the interrupt flag; returns kCompleted to go on, else why to stop
  /// (recorded for the whole run). Cheap enough for every few thousand moves.
  SolveStatus poll() {
    const int reason = reason_.load(std::memory_order_relaxed);
    if (reason != kRunning) return static_cast<SolveStatus>(reason);
    const SolveStatus s = stop_.check();
    if (s != SolveStatus::kCompleted) stop(s);
    return s;
  }
  /// Stops the run; the first reason given wins.
  void stop(SolveStatus why) {
    int expected = kRunning;
    reason_.compare_exchange_strong(expected, static_cast<int>(why));
  }
  [[nodiscard]] const std::optional<double>& target() const { return target_; }
  /// Whether x is feasible for the user's model and reaches the target energy there (the model
  /// decides, never a kernel's running energy). False without a target.
  [[nodiscard]] bool meets_target(const Assignment& x) const {
    return target_ && model_.is_feasible(x) && model_.energy(x) <= *target_;
  }
  /// Stops the run with kTargetReached when x meets the target; returns whether it did.
  bool check_target(const Assignment& x) {
    if (!meets_target(x)) return false;
    stop(SolveStatus::kTargetReached);
    return true;
  }
  /// kCompleted when nothing stopped the run, else the first reason.
  [[nodiscard]] SolveStatus status() const {
    const int reason = reason_.load();
    return reason == kRunning ? SolveStatus::kCompleted : static_cast<SolveStatus>(reason);
  }

 private:
  static constexpr int kRunning = -1;
  const QuboModel& model_;
  std::optional<double> target_;
  const StopCondition& stop_;
  std::atomic<int> reason_{kRunning};
};

/// What a read gets: its index, its own random stream, and the shared stop control.
struct ReadContext {
  std::int64_t read = 0;
  pcg32 rng;
  ReadControl& control;
};

/// How the reads of a solve went (the samples are already in the result).
struct ReadsSummary {
  int reads_run = 0;  ///< reads that started (a read starting after a stop is skipped)
  SolveStatus status = SolveStatus::kCompleted;
};

/// Runs options.num_reads reads of `read` (signature: Assignment(ReadContext&)) in parallel.
/// Read 0 always runs; a later read is skipped once the run has stopped. After each read its
/// assignment is checked against the target (feasible, model energy <= target: the run stops with
/// kTargetReached) and reported as progress of `stage`. Fills result.samples, result.status (the
/// first stop reason; kTargetReached also when the best sample meets the target) and
/// result.wall_time_s. `model` is the user's model (energies, feasibility).
template <class Read>
ReadsSummary run_reads(const QuboModel& model, const SolveOptions& options,
                       const StopCondition& stop, const std::string& stage, SolveResult& result,
                       Read&& read) {
  ReadControl control(model, options, stop);
  const auto num_reads = static_cast<std::size_t>(options.num_reads);
  std::vector<Assignment> finals(num_reads);
  std::vector<std::uint8_t> ran(num_reads, 0);  // not vector<bool>: written concurrently
  UnitProgress progress(model, options, stage, options.num_reads);
  parallel_for(options.num_reads, [&](std::int64_t r) {
    if (r > 0 && control.stopped()) return;  // a read that never started leaves no sample
    ReadContext ctx{r, make_rng(options.seed, static_cast<std::uint64_t>(r)), control};
    Assignment x = read(ctx);
    if (control.target()) (void)control.check_target(x);
    progress.unit_done(&x);
    finals[static_cast<std::size_t>(r)] = std::move(x);
    ran[static_cast<std::size_t>(r)] = 1;
  });

  ReadsSummary summary;
  std::vector<Assignment> assignments;
  for (std::size_t r = 0; r < num_reads; ++r)
    if (ran[r]) assignments.push_back(std::move(finals[r]));
  summary.reads_run = static_cast<int>(assignments.size());
  finalize_samples(model, std::move(assignments), options.max_samples, result);
  summary.status = final_status(control.status(), options, result);
  result.status = summary.status;
  result.wall_time_s = stop.elapsed_s();
  return summary;
}

}  // namespace qprune::detail
