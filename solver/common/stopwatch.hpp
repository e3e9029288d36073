// Wall-clock time and the stop conditions every solver polls: time limit and interrupt flag.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/stopwatch.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <atomic>
#include <chrono>
#include <cmath>

#include "qprune/solver.hpp"

namespace qprune::detail {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double elapsed_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Why a search should stop now, if it should. Thread-safe; cheap enough to poll every few
/// thousand moves.
class StopCondition {
 public:
  explicit StopCondition(const SolveOptions& options)
      : time_limit_s_(options.time_limit_s), interrupt_(options.interrupt) {}
  [[nodiscard]] double elapsed_s() const { return watch_.elapsed_s(); }
  /// kCompleted means "keep going". The first other answer is remembered (first_stop()) and
  /// final: every later check() gives it again.
  [[nodiscard]] SolveStatus check() const {
    const int first = first_.load(std::memory_order_relaxed);
    if (first != kNone) return static_cast<SolveStatus>(first);
    SolveStatus s = SolveStatus::kCompleted;
    if (interrupt_ != nullptr && interrupt_->load(std::memory_order_relaxed)) {
      s = SolveStatus::kInterrupted;
    } else if (std::isfinite(time_limit_s_) && watch_.elapsed_s() >= time_limit_s_) {
      s = SolveStatus::kTimeLimit;
    } else {
      return s;
    }
    int expected = kNone;
    first_.compare_exchange_strong(expected, static_cast<int>(s));
    return s;
  }
  [[nodiscard]] bool should_stop() const { return check() != SolveStatus::kCompleted; }
  /// should_stop(), or less than reserve_s left before the time limit, for a search that must
  /// keep time for its closing work (QAOA: the final state and its sampling). Stopping for the
  /// reserve counts as stopping at the time limit: check() says kTimeLimit from then on.
  [[nodiscard]] bool should_stop_within(double reserve_s) const {
    if (should_stop()) return true;
    if (!(std::isfinite(time_limit_s_) && watch_.elapsed_s() + reserve_s >= time_limit_s_)) {
      return false;
    }
    int expected = kNone;
    first_.compare_exchange_strong(expected, static_cast<int>(SolveStatus::kTimeLimit));
    return true;
  }
  /// The first stop check() has answered, kCompleted if none: whether a stop cut any work short,
  /// unlike a check() after the work, which would also call a run that finished just after the
  /// limit stopped.
  [[nodiscard]] SolveStatus first_stop() const {
    const int first = first_.load();
    return first == kNone ? SolveStatus::kCompleted : static_cast<SolveStatus>(first);
  }
  [[nodiscard]] double time_limit_s() const { return time_limit_s_; }

 private:
  static constexpr int kNone = -1;
  Stopwatch watch_;
  double time_limit_s_;
  const std::atomic<bool>* interrupt_;
  mutable std::atomic<int> first_{kNone};
};

}  // namespace qprune::detail
