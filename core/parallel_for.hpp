// One parallel loop for all solvers: OpenMP when it is there and the loop is large enough, a
// plain loop otherwise (the serial twin), and no exception ever escapes the parallel region: the
// first one is captured and rethrown after it, the iterations not yet started being skipped (qsim's
// parfor does the same).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qprune::detail {

/// Number of threads a parallel_for will use.
[[nodiscard]] inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Calls body(i) for i in [0, count), in parallel when count >= min_parallel.
/// Iterations must be independent; dynamic scheduling balances uneven work (reads, prefixes).
template <class Body>
void parallel_for(std::int64_t count, Body&& body, std::int64_t min_parallel = 2) {
  if (count < min_parallel || max_threads() == 1) {
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  std::atomic<bool> failed{false};  // after a failure (e.g. Interrupted) the rest is skipped
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t i = 0; i < count; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace qprune::detail
