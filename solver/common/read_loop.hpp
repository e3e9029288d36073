// The read loop every sampling solver shares: reads run in parallel, read r drawing from the
// stream make_rng(seed, r) (so samples do not depend on the thread count), the time limit, the
// interrupt flag and the target energy turned into one run status, progress after each read, and
// the finished reads kept as the result's samples (reference energies, merged duplicates, best
// first) in a bounded pool. Either options.num_reads reads, or (reads_until_time_limit) new reads
// until the time limit. A read is set up only when it starts, so a million requested reads cost
// nothing until they run. A solver hands run_reads its move rule: what one read does from its
// random stream to its final assignment.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/read_loop.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
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

/// Reads run on this many slots, one read after another per slot (a slot is one thread of the
/// loop), so per-slot counters need no lock. At least 1.
[[nodiscard]] inline int read_slots(const SolveOptions& options) {
  const int threads = std::max(1, max_threads());
  return options.reads_until_time_limit ? threads : std::clamp(options.num_reads, 1, threads);
}

/// Why the reads of one solve stop, shared by them all. Thread-safe.
class ReadControl {
 public:
  ReadControl(const QuboModel& model, const SolveOptions& options, const StopCondition& stop)
      : model_(model),
        target_(options.target_energy),
        stop_(stop),
        time_limit_s_(options.time_limit_s),
        num_reads_(options.reads_until_time_limit ? 0 : options.num_reads),
        slots_(read_slots(options)) {}

  /// True once any read has stopped the run (the reads still running should end soon).
  [[nodiscard]] bool stopped() const { return reason_.load(std::memory_order_relaxed) != kRunning; }
  /// Asks the time limit and the interrupt flag; returns kCompleted to go on, else why to stop
  /// (recorded for the whole run). Costs one clock read: fine every few microseconds of work.
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
  /// Seconds since the solve started.
  [[nodiscard]] double elapsed_s() const { return stop_.elapsed_s(); }
  /// For a read with no natural end (tabu without an iteration count): when read `read`, starting
  /// now, should end so that the reads not yet started get an equal share of the time left. With
  /// num_reads reads on S slots, the reads from `read` on fill ceil((num_reads - read) / S) more
  /// rounds; this read gets one round's share. Infinity without a time limit; the time limit
  /// itself when reads repeat until it.
  [[nodiscard]] double read_deadline_s(std::int64_t read) const {
    if (!std::isfinite(time_limit_s_) || num_reads_ == 0) return time_limit_s_;
    const std::int64_t left = std::max<std::int64_t>(1, num_reads_ - read);
    const std::int64_t rounds = (left + slots_ - 1) / slots_;
    const double now = elapsed_s();
    return now + std::max(0.0, time_limit_s_ - now) / static_cast<double>(rounds);
  }
  /// A read ended at its share of the time limit (read_deadline_s): the run goes on, but its
  /// status will say kTimeLimit, since the limit, not the requested work, ended that read.
  void note_time_share_used() { share_used_.store(true, std::memory_order_relaxed); }
  /// kCompleted when nothing stopped the run (and no read ended at its time share), else the first
  /// reason.
  [[nodiscard]] SolveStatus status() const {
    const int reason = reason_.load();
    if (reason != kRunning) return static_cast<SolveStatus>(reason);
    return share_used_.load() ? SolveStatus::kTimeLimit : SolveStatus::kCompleted;
  }

 private:
  static constexpr int kRunning = -1;
  const QuboModel& model_;
  std::optional<double> target_;
  const StopCondition& stop_;
  double time_limit_s_;
  std::int64_t num_reads_;  // 0: reads until the time limit
  std::int64_t slots_;
  std::atomic<int> reason_{kRunning};
  std::atomic<bool> share_used_{false};
};

/// What a read gets: its index, its own random stream, the shared stop control and its slot
/// (in [0, read_slots(options)); no two reads on the same slot run at once).
struct ReadContext {
  std::int64_t read = 0;
  pcg32 rng;
  ReadControl& control;
  int slot = 0;
};

/// How the reads of a solve went (the samples are already in the result).
struct ReadsSummary {
  std::int64_t reads_run = 0;  ///< reads that started (none starts after a stop)
  SolveStatus status = SolveStatus::kCompleted;
};

/// Runs the reads of `read` (signature: Assignment(ReadContext&)) in parallel: reads 0, 1, 2, ...
/// handed out in order to read_slots(options) slots, options.num_reads of them, or, with
/// options.reads_until_time_limit, until the run stops. Read 0 always runs; a later read starts
/// only while nothing (time limit, interrupt, target) has stopped the run. Each finished read's
/// assignment gets its reference energy and feasibility once: they decide the target (feasible,
/// energy <= target: the run stops with kTargetReached), the progress of `stage` and its place in
/// the bounded sample pool. Fills result.samples, result.status (the first stop reason;
/// kTargetReached also when the best sample meets the target) and result.wall_time_s. `model` is
/// the user's model (energies, feasibility).
template <class Read>
ReadsSummary run_reads(const QuboModel& model, const SolveOptions& options,
                       const StopCondition& stop, const std::string& stage, SolveResult& result,
                       Read&& read) {
  ReadControl control(model, options, stop);
  const bool until_limit = options.reads_until_time_limit;
  const std::int64_t last = until_limit ? std::numeric_limits<std::int64_t>::max()
                                        : static_cast<std::int64_t>(options.num_reads);
  SamplePool pool(options.max_samples);
  UnitProgress progress(model, options, stage, until_limit ? 0 : options.num_reads);
  std::atomic<std::int64_t> next{0}, started{0};
  std::atomic<bool> failed{false};  // a read threw: the other slots start no new read
  parallel_for(read_slots(options), [&](std::int64_t slot) {
    try {
      for (;;) {
        if (failed.load(std::memory_order_relaxed)) return;
        const std::int64_t r = next.fetch_add(1, std::memory_order_relaxed);
        if (r >= last) return;
        // A read that never starts leaves no trace: no state, no sample.
        if (r > 0 && control.poll() != SolveStatus::kCompleted) return;
        started.fetch_add(1, std::memory_order_relaxed);
        ReadContext ctx{r, make_rng(options.seed, static_cast<std::uint64_t>(r)), control,
                        static_cast<int>(slot)};
        Assignment x = read(ctx);
        const double energy = model.energy(x);
        const bool feasible = model.is_feasible(x);
        if (control.target() && feasible && energy <= *control.target()) {
          control.stop(SolveStatus::kTargetReached);
        }
        progress.unit_done(energy, feasible);
        pool.add(std::move(x), energy, feasible);
      }
    } catch (...) {
      failed.store(true, std::memory_order_relaxed);
      throw;
    }
  });

  ReadsSummary summary;
  summary.reads_run = started.load();
  pool.take(result);
  summary.status = final_status(control.status(), options, result);
  result.status = summary.status;
  result.wall_time_s = stop.elapsed_s();
  return summary;
}

}  // namespace qprune::detail
