// Unit tests of core/parallel_for.hpp, the one parallel loop of all solvers, with 1 and 2 OpenMP
// threads: every index visited exactly once (parallel_for, both parallel_for_static overloads,
// parallel_for_local), an exception thrown in one iteration rethrown after the loop with the
// remaining iterations skipped, the reductions equal to the serial sum and identical run to run
// (the partials are folded in thread order), and the serial twin below the size threshold.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/parallel_for.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qprune {
namespace {

using detail::LoopSize;
using detail::StaticRange;

// Sets the OpenMP thread count for one scope and restores the previous one even when a check
// throws, so that later test files run with the machine's default.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) {
#ifdef _OPENMP
    saved_ = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
  }
  ~ThreadCount() {
#ifdef _OPENMP
    omp_set_num_threads(saved_);
#endif
  }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_ = 1;
};

// The thread counts to test: 1 and 2 with OpenMP, only 1 without.
std::vector<int> thread_counts() {
#ifdef _OPENMP
  return {1, 2};
#else
  return {1};
#endif
}

bool in_parallel() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// Visit counters, one per index, safe to bump from several threads.
std::vector<std::atomic<int>> counters(std::int64_t count) {
  return std::vector<std::atomic<int>>(static_cast<std::size_t>(count));
}

void check_each_once(const std::vector<std::atomic<int>>& visits) {
  for (std::size_t i = 0; i < visits.size(); ++i) {
    INFO("index " << i);
    CHECK(visits[i].load() == 1);
  }
}

int visited(const std::vector<std::atomic<int>>& visits) {
  int total = 0;
  for (const auto& v : visits) total += v.load();
  return total;
}

// A body slow enough that a loop left running after a failure would visit (nearly) all indices,
// so that "the rest is skipped" shows as far fewer visits.
void slow_iteration() { std::this_thread::sleep_for(std::chrono::microseconds(20)); }

TEST_CASE("parallel_for visits every index exactly once") {
  for (int threads : thread_counts()) {
    CAPTURE(threads);
    const ThreadCount scope(threads);
    for (std::int64_t count : {0, 1, 2, 3, 1000}) {
      CAPTURE(count);
      auto visits = counters(count);
      detail::parallel_for(count, [&](std::int64_t i) { ++visits[static_cast<std::size_t>(i)]; });
      check_each_once(visits);
    }
  }
}

TEST_CASE("parallel_for_static visits every index exactly once (both overloads)") {
  for (int threads : thread_counts()) {
    CAPTURE(threads);
    const ThreadCount scope(threads);
    for (std::int64_t count : {0, 1, 2, 3, 1000, 4099}) {
      CAPTURE(count);
      auto by_count = counters(count);
      detail::parallel_for_static(count,
                                  [&](std::int64_t i) { ++by_count[static_cast<std::size_t>(i)]; });
      check_each_once(by_count);
      auto by_size = counters(count);
      detail::parallel_for_static(
          count, [&](std::int64_t i) { ++by_size[static_cast<std::size_t>(i)]; },
          LoopSize{count * 8, 64});
      check_each_once(by_size);
    }
  }
}

TEST_CASE("parallel_for_local: one state per thread, contiguous ranges in thread order") {
  for (int threads : thread_counts()) {
    CAPTURE(threads);
    const ThreadCount scope(threads);
    for (std::int64_t count : {2, 3, 1000, 4099}) {
      CAPTURE(count);
      int made = 0;
      std::mutex made_mutex;
      const auto states = detail::parallel_for_local(
          count,
          [&] {
            const std::lock_guard<std::mutex> lock(made_mutex);
            ++made;
            return std::vector<std::int64_t>{};
          },
          [](std::int64_t i, std::vector<std::int64_t>& seen) { seen.push_back(i); },
          LoopSize::iterations(count));
      CHECK(states.size() == static_cast<std::size_t>(threads));
      CHECK(made == threads);  // make_local once per thread
      // Concatenated in thread order the states are 0, 1, ..., count - 1: each index once, each
      // thread's range contiguous and visited in order, the ranges those of StaticRange.
      std::vector<std::int64_t> all;
      for (std::size_t t = 0; t < states.size(); ++t) {
        const StaticRange range = StaticRange::of(count, static_cast<int>(t), threads);
        REQUIRE(states[t].size() == static_cast<std::size_t>(range.end - range.begin));
        if (!states[t].empty()) CHECK(states[t].front() == range.begin);
        all.insert(all.end(), states[t].begin(), states[t].end());
      }
      std::vector<std::int64_t> expected(static_cast<std::size_t>(count));
      std::iota(expected.begin(), expected.end(), std::int64_t{0});
      CHECK(all == expected);
    }
  }
}

TEST_CASE("StaticRange splits like OpenMP's schedule(static)") {
  for (std::int64_t count : {0, 1, 5, 7, 64, 1001}) {
    for (int threads : {1, 2, 3, 8}) {
      CAPTURE(count);
      CAPTURE(threads);
      std::int64_t next = 0;
      for (int t = 0; t < threads; ++t) {
        const StaticRange range = StaticRange::of(count, t, threads);
        CHECK(range.begin == next);
        // The first count % threads ranges are one longer than the rest.
        CHECK(range.end - range.begin == count / threads + (t < count % threads ? 1 : 0));
        next = range.end;
      }
      CHECK(next == count);
    }
  }
}

TEST_CASE("below the size threshold the serial twin runs, in index order, on the calling thread") {
  for (int threads : thread_counts()) {
    CAPTURE(threads);
    const ThreadCount scope(threads);
    const std::int64_t count = 100;
    std::vector<std::int64_t> order;
    bool parallel_seen = false;
    const auto serial_body = [&](std::int64_t i) {
      order.push_back(i);  // no lock: the serial twin is single-threaded
      parallel_seen = parallel_seen || in_parallel();
    };
    std::vector<std::int64_t> expected(static_cast<std::size_t>(count));
    std::iota(expected.begin(), expected.end(), std::int64_t{0});

    detail::parallel_for(count, serial_body, /*min_parallel=*/count + 1);
    CHECK(order == expected);
    order.clear();
    detail::parallel_for_static(count, serial_body, /*min_parallel=*/count + 1);
    CHECK(order == expected);
    order.clear();
    detail::parallel_for_static(count, serial_body, LoopSize{/*work=*/1000, /*min_work=*/1001});
    CHECK(order == expected);
    CHECK_FALSE(parallel_seen);

    const auto states = detail::parallel_for_local(
        count, [] { return 0; }, [](std::int64_t, int& n) { ++n; }, LoopSize{10, 11});
    REQUIRE(states.size() == 1);  // one state: the loop ran serially even with 2 threads
    CHECK(states[0] == count);
    // Zero iterations: still one state, the identity of the reductions.
    const auto empty = detail::parallel_for_local(
        0, [] { return 7; }, [](std::int64_t, int& n) { ++n; }, LoopSize::iterations(0));
    REQUIRE(empty.size() == 1);
    CHECK(empty[0] == 7);
    CHECK(detail::parallel_sum(
              0, [](std::int64_t) { return 1.0; }, LoopSize::iterations(0)) == 0.0);

#ifdef _OPENMP
    if (threads > 1) {  // above the threshold the loops do run on the team
      std::atomic<bool> team{false};
      detail::parallel_for(count, [&](std::int64_t) {
        if (in_parallel()) team = true;
      });
      CHECK(team.load());
      team = false;
      detail::parallel_for_static(count, [&](std::int64_t) {
        if (in_parallel()) team = true;
      });
      CHECK(team.load());
    }
#endif
  }
}

TEST_CASE("an exception in one iteration is rethrown after the loop and the rest is skipped") {
  for (int threads : thread_counts()) {
    CAPTURE(threads);
    const ThreadCount scope(threads);
    const std::int64_t count = 4000;

    SUBCASE("parallel_for (dynamic)") {
      auto visits = counters(count);
      CHECK_THROWS_WITH_AS(detail::parallel_for(count,
                                                [&](std::int64_t i) {
                                                  if (i == 0) throw std::runtime_error("stop");
                                                  ++visits[static_cast<std::size_t>(i)];
                                                  slow_iteration();
                                                }),
                           "stop", std::runtime_error);
      if (threads == 1) {
        CHECK(visited(visits) == 0);  // the serial twin stops at the throw
      } else {
        CHECK(visited(visits) < count / 2);
      }
    }
    SUBCASE("parallel_for_static") {
      // Index 0 is the first of thread 0's range; thread 1 stops at its next check.
      auto visits = counters(count);
      CHECK_THROWS_WITH_AS(detail::parallel_for_static(count,
                                                       [&](std::int64_t i) {
                                                         if (i == 0)
                                                           throw std::runtime_error("stop");
                                                         ++visits[static_cast<std::size_t>(i)];
                                                         slow_iteration();
                                                       }),
                           "stop", std::runtime_error);
      if (threads == 1) {
        CHECK(visited(visits) == 0);
      } else {
        CHECK(visited(visits) < count / 2);
      }
    }
    SUBCASE("parallel_for_local, thrown by make_local") {
      std::atomic<int> calls{0};
      CHECK_THROWS_AS((void)detail::parallel_for_local(
                          count,
                          [&] {
                            if (calls++ == 0) throw std::runtime_error("no scratch");
                            return 0;
                          },
                          [](std::int64_t, int& n) { ++n; }, LoopSize::iterations(count)),
                      std::runtime_error);
    }
    SUBCASE("parallel_sum") {
      CHECK_THROWS_WITH_AS((void)detail::parallel_sum(
                               count,
                               [](std::int64_t i) -> double {
                                 if (i == count - 1) throw std::runtime_error("last");
                                 return 1.0;
                               },
                               LoopSize::iterations(count)),
                           "last", std::runtime_error);
    }
    SUBCASE("the serial twin stops at the throwing index") {
      auto visits = counters(count);
      CHECK_THROWS_AS(detail::parallel_for(
                          count,
                          [&](std::int64_t i) {
                            if (i == 10) throw std::runtime_error("stop");
                            ++visits[static_cast<std::size_t>(i)];
                          },
                          /*min_parallel=*/count + 1),
                      std::runtime_error);
      CHECK(visited(visits) == 10);
    }
  }
}

TEST_CASE("reductions equal the serial sum and are identical run to run") {
  const std::int64_t count = 100003;
  // Terms of very different sizes, so that a different summation order would change the bits.
  const auto term = [](std::int64_t i) {
    return 1.0 / static_cast<double>(i + 1) + 1e8 * static_cast<double>(i % 7);
  };
  double serial = 0.0;
  for (std::int64_t i = 0; i < count; ++i) serial += term(i);

  for (int threads : thread_counts()) {
    CAPTURE(threads);
    const ThreadCount scope(threads);
    // The ordered combine: each thread's range summed in index order from 0, the partials then
    // added to 0 in thread order - exactly, not approximately.
    double expected = 0.0;
    for (int t = 0; t < threads; ++t) {
      const StaticRange range = StaticRange::of(count, t, threads);
      double partial = 0.0;
      for (std::int64_t i = range.begin; i < range.end; ++i) partial += term(i);
      expected += partial;
    }
    const double first = detail::parallel_sum(count, term, LoopSize::iterations(count));
    CHECK(first == expected);
    CHECK(first == doctest::Approx(serial).epsilon(1e-12));
    if (threads == 1) CHECK(first == serial);
    for (int run = 0; run < 5; ++run)
      CHECK(detail::parallel_sum(count, term, LoopSize::iterations(count)) == first);

    // A combine that is not commutative (concatenation) shows the thread order of the fold.
    const auto indices = detail::parallel_reduce(
        count, std::vector<std::int64_t>{},
        [](std::int64_t i, std::vector<std::int64_t>& acc) { acc.push_back(i); },
        [](std::vector<std::int64_t>& total, const std::vector<std::int64_t>& partial) {
          total.insert(total.end(), partial.begin(), partial.end());
        },
        LoopSize::iterations(count));
    std::vector<std::int64_t> all(static_cast<std::size_t>(count));
    std::iota(all.begin(), all.end(), std::int64_t{0});
    CHECK(indices == all);

    // Integer sums are exact whatever the order.
    CHECK(detail::parallel_sum<std::int64_t>(
              count, [](std::int64_t i) { return i; }, LoopSize::iterations(count)) ==
          count * (count - 1) / 2);
  }
}

}  // namespace
}  // namespace qprune
