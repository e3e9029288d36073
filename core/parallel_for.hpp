// One parallel loop for all solvers: OpenMP when it is there and the loop is large enough, a
// plain loop otherwise (the serial twin), and no exception ever escapes the parallel region: the
// first one is captured and rethrown after it, the iterations not yet started being skipped (qsim's
// parfor does the same). Two schedules: dynamic (parallel_for: uneven work such as reads or
// prefixes) and static (parallel_for_static and the reductions built on it: uniform loops over a
// statevector or a tensor, where a per-iteration hand-out costs more than it balances).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

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

/// Whether the caller runs inside an active OpenMP parallel region (a nested loop there runs on
/// one thread; Eigen, seeing a team of one, would split its GEMM blocking for the outer thread
/// count and round differently).
[[nodiscard]] inline bool in_parallel() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
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

/// The size threshold of a static loop: it runs on threads when work >= min_work. The work is
/// counted in whatever unit the caller's threshold is in (iterations, amplitudes, bytes), so that
/// loops over blocks, tiles or single entries of the same data share one threshold.
struct LoopSize {
  std::int64_t work = 0;
  std::int64_t min_work = 2;
  /// A loop of `count` iterations, parallel from `min_parallel` iterations on.
  [[nodiscard]] static LoopSize iterations(std::int64_t count, std::int64_t min_parallel = 2) {
    return {count, min_parallel};
  }
};

/// Iterations [begin, end) of one thread of a static loop: OpenMP's schedule(static) split
/// (`threads` contiguous ranges, the first count % threads of them one longer), so per-thread
/// partial sums are those of an OpenMP static reduction.
struct StaticRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  [[nodiscard]] static StaticRange of(std::int64_t count, int thread, int threads) {
    const std::int64_t q = count / threads, r = count % threads;
    const std::int64_t t = thread;
    return t < r ? StaticRange{t * (q + 1), t * (q + 1) + q + 1}
                 : StaticRange{t * q + r, t * q + r + q};
  }
};

/// The static loop with per-thread state: each thread makes its own state once with make_local()
/// (scratch buffers, partial sums), calls body(i, local) for its contiguous range of [0, count)
/// in order, and the states come back in thread order (one state when the loop ran serially:
/// count < 2, size.work < size.min_work or one thread). States live on their thread's stack
/// while it runs, so partial sums do not share cache lines. An exception from make_local or body
/// stops the other threads at their next check (every kCheckEvery iterations) and is rethrown
/// after the region; the first one wins.
template <class MakeLocal, class Body>
[[nodiscard]] auto parallel_for_local(std::int64_t count, MakeLocal&& make_local, Body&& body,
                                      LoopSize size) {
  using Local = decltype(make_local());
  std::vector<Local> out;
  const bool serial = count < 2 || size.work < size.min_work || max_threads() == 1;
  if (serial) {
    Local local = make_local();  // on the stack, not in `out`: sums stay in registers
    for (std::int64_t i = 0; i < count; ++i) body(i, local);
    out.push_back(std::move(local));
    return out;
  }
#ifdef _OPENMP
  // Threads look at the failure flag between runs of this many iterations: rarely enough that
  // the inner loop is a plain loop the compiler vectorises, often enough to stop early.
  constexpr std::int64_t kCheckEvery = 256;
  const int threads = max_threads();
  std::vector<std::optional<Local>> locals(static_cast<std::size_t>(threads));
  std::exception_ptr error;
  std::mutex error_mutex;
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(threads)
  {
    try {
      const StaticRange range = StaticRange::of(count, omp_get_thread_num(), omp_get_num_threads());
      Local local = make_local();
      for (std::int64_t b = range.begin; b < range.end; b += kCheckEvery) {
        if (failed.load(std::memory_order_relaxed)) break;
        const std::int64_t e = std::min(range.end, b + kCheckEvery);
        for (std::int64_t i = b; i < e; ++i) body(i, local);
      }
      locals[static_cast<std::size_t>(omp_get_thread_num())].emplace(std::move(local));
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
    }
  }
  if (error) std::rethrow_exception(error);
  for (auto& local : locals)
    if (local) out.push_back(std::move(*local));
#endif
  return out;
}

/// Calls body(i) for i in [0, count) with a static schedule (uniform iterations), in parallel
/// when size says the loop is large enough; errors as in parallel_for_local.
template <class Body>
void parallel_for_static(std::int64_t count, Body&& body, LoopSize size) {
  struct None {};
  (void)parallel_for_local(
      count, [] { return None{}; }, [&](std::int64_t i, None&) { body(i); }, size);
}
template <class Body>
void parallel_for_static(std::int64_t count, Body&& body, std::int64_t min_parallel = 2) {
  parallel_for_static(count, std::forward<Body>(body), LoopSize::iterations(count, min_parallel));
}

/// Static reduction: each thread starts from `identity` and calls body(i, acc) over its range;
/// the partials are then folded into `identity` with combine(total, partial) in thread order, so
/// the result depends on the thread count only (not on which thread finishes first).
template <class T, class Body, class Combine>
[[nodiscard]] T parallel_reduce(std::int64_t count, const T& identity, Body&& body,
                                Combine&& combine, LoopSize size) {
  std::vector<T> partials = parallel_for_local(
      count, [&] { return identity; }, std::forward<Body>(body), size);
  T total = identity;
  for (const T& partial : partials) combine(total, partial);
  return total;
}

/// Sum of body(i) over [0, count) (T: double, std::complex<double>, ...), added in index order
/// within each thread's range; see parallel_reduce.
template <class T = double, class Body>
[[nodiscard]] T parallel_sum(std::int64_t count, Body&& body, LoopSize size) {
  return parallel_reduce(
      count, T{}, [&](std::int64_t i, T& acc) { acc += body(i); },
      [](T& total, const T& partial) { total += partial; }, size);
}

}  // namespace qprune::detail
