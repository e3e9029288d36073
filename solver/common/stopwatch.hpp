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
  /// kCompleted means "keep going".
  [[nodiscard]] SolveStatus check() const {
    if (interrupt_ != nullptr && interrupt_->load(std::memory_order_relaxed))
      return SolveStatus::kInterrupted;
    if (std::isfinite(time_limit_s_) && watch_.elapsed_s() >= time_limit_s_)
      return SolveStatus::kTimeLimit;
    return SolveStatus::kCompleted;
  }
  [[nodiscard]] bool should_stop() const { return check() != SolveStatus::kCompleted; }

 private:
  Stopwatch watch_;
  double time_limit_s_;
  const std::atomic<bool>* interrupt_;
};

}  // namespace qprune::detail
