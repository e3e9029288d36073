// Tests of the machinery every solver shares (solver/common/): the compiled problem form, feasible
// starts, the descents and the run_reads driver, each against brute force or a direct computation.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/binomial.hpp"
#include "qprune/error.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"
#include "solver/common/feasible_start.hpp"
#include "solver/common/read_loop.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

/// 11 variables: a group of 5 choose 2, a group of 3 choose 3 (fixed ones), a group of 1 choose 0
/// (fixed zero), two free variables.
QuboModel grouped_model(std::uint64_t seed, Storage storage) {
  QuboModel m = test::random_model(11, 0.6, seed, 10, storage);
  m.add_constraint({"a", {0, 2, 4, 6, 8}, 2});
  m.add_constraint({"b", {1, 3, 5}, 3});
  m.add_constraint({"c", {7}, 0});
  return m;  // 9 and 10 are free
}

/// An assignment as a set key (std::set<std::string> trips GCC 12's -Wstringop-overread).
std::string key(const Assignment& x) { return std::string(x.begin(), x.end()); }

}  // namespace

TEST_CASE("the compiled problem gives the model's fields and energies, dense and sparse") {
  for (const Storage storage : {Storage::kDense, Storage::kSparse}) {
    const QuboModel m = grouped_model(3, storage);
    const detail::CompiledProblem p(m, true);
    CHECK(p.dense() == (storage == Storage::kDense));
    const Assignment x = test::bits_to_assignment(0x5a3, 11);
    std::vector<double> f;
    p.fields(x.data(), f);
    for (int i = 0; i < 11; ++i) {
      // flip_delta = (1 - 2 x_i) f_i
      CHECK(f[static_cast<std::size_t>(i)] * (x[static_cast<std::size_t>(i)] ? -1.0 : 1.0) ==
            doctest::Approx(m.flip_delta(x, i)));
    }
    const detail::GroupLayout& layout = p.layout();
    CHECK(layout.groups.size() == 1);
    CHECK(layout.free_vars == std::vector<int>{9, 10});
    CHECK(layout.fixed_ones == std::vector<int>{1, 3, 5});
    CHECK(layout.fixed_zeros == std::vector<int>{7});
    CHECK(layout.group_of[4] == 0);
    CHECK(layout.group_of[1] == -1);
    CHECK_FALSE(detail::CompiledProblem(m, false).layout().has_groups());
  }
}

TEST_CASE("feasible starts are feasible and reach every feasible assignment (brute force)") {
  const QuboModel m = grouped_model(5, Storage::kSparse);
  std::set<std::string> feasible;
  for (std::uint64_t bits = 0; bits < (1U << 11); ++bits) {
    const Assignment x = test::bits_to_assignment(bits, 11);
    if (m.is_feasible(x)) feasible.insert(key(x));
  }
  CHECK(feasible.size() == detail::binomial(5, 2) * 4);  // 10 subsets times 2 free bits
  const detail::GroupLayout layout(m, true);
  for (const auto draws : {detail::StartDraws::kEveryVariable, detail::StartDraws::kFreeVariables,
                           detail::StartDraws::kMovableOnly}) {
    std::set<std::string> seen;
    for (std::uint64_t read = 0; read < 2000; ++read) {
      pcg32 rng = detail::make_rng(11, read);
      Assignment x(11);
      std::vector<int> slots;
      detail::feasible_start(layout, draws, rng, x.data(), &slots);
      REQUIRE(m.is_feasible(x));
      // slots: each movable group's ones first
      for (const auto& g : layout.groups)
        for (int t = 0; t < g.size; ++t)
          CHECK(x[static_cast<std::size_t>(slots[static_cast<std::size_t>(g.begin + t)])] ==
                (t < g.k ? 1 : 0));
      seen.insert(key(x));
    }
    CHECK(seen == feasible);
  }
  // Without groups every assignment of 3 variables appears.
  const QuboModel free = test::random_model(3, 1.0, 2);
  const detail::GroupLayout none(free, true);
  std::set<std::string> seen;
  for (std::uint64_t read = 0; read < 200; ++read) {
    pcg32 rng = detail::make_rng(1, read);
    Assignment x(3);
    detail::feasible_start(none, detail::StartDraws::kMovableOnly, rng, x.data());
    seen.insert(key(x));
  }
  CHECK(seen.size() == 8);
}

TEST_CASE("steepest descent and swap descent end in local minima with exact fields") {
  for (const Storage storage : {Storage::kDense, Storage::kSparse}) {
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      const QuboModel m = grouped_model(100 + seed, storage);
      const detail::CompiledProblem p(m, true);
      pcg32 rng = detail::make_rng(seed, 0);
      Assignment x(11);
      std::vector<int> slots;
      detail::feasible_start(p.layout(), detail::StartDraws::kMovableOnly, rng, x.data(), &slots);
      Assignment y = x;

      std::vector<double> f;
      p.fields(x.data(), f);
      (void)detail::SteepestDescent(p, 0.0).run(x.data(), f.data(), 1000);
      CHECK(m.is_feasible(x));
      CHECK(qprune::test::is_local_minimum(m, x));
      std::vector<double> fresh;
      p.fields(x.data(), fresh);
      for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == doctest::Approx(fresh[i]));

      p.fields(y.data(), f);
      (void)detail::swap_descent(p, p.layout(), detail::positive_row_bounds(p), slots, y.data(),
                                 f.data(), 0.0, 1000);
      CHECK(m.is_feasible(y));
      CHECK(qprune::test::is_local_minimum(m, y));
    }
  }
  // Unconstrained: a flip local minimum.
  const QuboModel m = test::random_model(12, 0.5, 9);
  const detail::CompiledProblem p(m, false);
  Assignment x(12, 0);
  std::vector<double> f;
  p.fields(x.data(), f);
  CHECK(detail::SteepestDescent(p, 0.0).run(x.data(), f.data(), 1000) > 0);
  CHECK(qprune::test::is_local_minimum(m, x));
}

TEST_CASE("fix_group_counts follows the import repair rule (exact marginal costs)") {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const QuboModel m = grouped_model(200 + seed, seed % 2 ? Storage::kDense : Storage::kSparse);
    const Assignment start = test::bits_to_assignment(seed * 2654435761ULL, 11);
    // The rule, written directly with QuboModel::flip_delta.
    Assignment expected = start;
    std::vector<int> expected_removed, expected_added;
    for (const CardinalityConstraint& g : m.constraints()) {
      for (;;) {
        int ones = 0;
        for (int v : g.variables) ones += expected[static_cast<std::size_t>(v)];
        if (ones == g.k) break;
        const bool drop = ones > g.k;
        int best = -1;
        double best_delta = std::numeric_limits<double>::infinity();
        for (int v : g.variables) {
          if ((expected[static_cast<std::size_t>(v)] != 0) != drop) continue;
          const double d = m.flip_delta(expected, v);
          if (d < best_delta) {
            best_delta = d;
            best = v;
          }
        }
        expected[static_cast<std::size_t>(best)] = drop ? 0 : 1;
        (drop ? expected_removed : expected_added).push_back(best);
      }
    }
    const detail::CompiledProblem p(m, true);
    Assignment x = start;
    std::vector<double> f;
    p.fields(x.data(), f);
    std::vector<int> removed, added;
    detail::fix_group_counts(p, x.data(), f.data(), removed, added);
    CHECK(x == expected);
    CHECK(removed == expected_removed);
    CHECK(added == expected_added);
    CHECK(m.is_feasible(x));
  }
}

TEST_CASE("run_reads: one stream per read, independent of threads; stops and targets") {
  const QuboModel m = test::random_model(8, 0.5, 4);
  SolveOptions o;
  o.seed = 42;
  o.num_reads = 16;
  const auto draw = [&](detail::ReadContext& r) {
    Assignment x(8);
    for (auto& v : x) v = static_cast<std::uint8_t>(r.rng(2));
    return x;
  };
  const auto run = [&](const SolveOptions& options) {
    SolveResult result;
    const detail::StopCondition stop(options);
    const detail::ReadsSummary s = detail::run_reads(m, options, stop, "test reads", result, draw);
    return std::make_pair(s, result);
  };
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto [one_summary, one] = run(o);
  omp_set_num_threads(2);
  const auto [two_summary, two] = run(o);
  omp_set_num_threads(saved);
  CHECK(one_summary.reads_run == 16);
  CHECK(one.status == SolveStatus::kCompleted);
  REQUIRE(one.samples.size() == two.samples.size());
  int occurrences = 0;
  for (std::size_t s = 0; s < one.samples.size(); ++s) {
    CHECK(one.samples[s].x == two.samples[s].x);
    CHECK(one.samples[s].energy == m.energy(one.samples[s].x));
    if (s > 0) CHECK(one.samples[s - 1].energy <= one.samples[s].energy);
    occurrences += one.samples[s].num_occurrences;
  }
  CHECK(occurrences == 16);
  // Read r draws from make_rng(seed, r).
  pcg32 rng3 = detail::make_rng(42, 3);
  Assignment third(8);
  for (auto& v : third) v = static_cast<std::uint8_t>(rng3(2));
  bool found = false;
  for (const Sample& s : one.samples) found = found || s.x == third;
  CHECK(found);

  // A target every assignment meets: the run stops; read 0 always runs.
  SolveOptions t = o;
  t.target_energy = 1e300;
  const auto [ts, tr] = run(t);
  CHECK(tr.status == SolveStatus::kTargetReached);
  CHECK(ts.reads_run >= 1);

  // An interrupt seen by a read's poll stops the run; progress counts the finished reads.
  std::atomic<bool> flag{true};
  SolveOptions i = o;
  i.interrupt = &flag;
  std::int64_t last_done = 0;
  i.progress = [&](const SolveProgress& p) { last_done = p.done; };
  SolveResult ir;
  const detail::StopCondition istop(i);
  const detail::ReadsSummary is =
      detail::run_reads(m, i, istop, "test reads", ir, [&](detail::ReadContext& r) {
        CHECK(r.control.poll() == SolveStatus::kInterrupted);
        return draw(r);
      });
  CHECK(ir.status == SolveStatus::kInterrupted);
  CHECK(last_done == is.reads_run);
  CHECK(ir.has_solution());
}

TEST_CASE("run_reads: reads until the time limit; a million reads cost nothing up front") {
  const QuboModel m = test::random_model(8, 0.5, 4);
  const auto draw = [](detail::ReadContext& r) {
    Assignment x(8);
    for (auto& v : x) v = static_cast<std::uint8_t>(r.rng(2));
    return x;
  };
  // New reads start until something stops the run: here an interrupt raised by the progress
  // callback after 40 reads (a time limit would make the count depend on the machine). The
  // stage is open-ended (total 0); every read that ran is in the samples' occurrences.
  std::atomic<bool> flag{false};
  SolveOptions o;
  o.seed = 3;
  o.reads_until_time_limit = true;
  o.time_limit_s = 1e9;
  o.interrupt = &flag;
  std::int64_t last_done = 0, last_total = -1;
  o.progress = [&](const SolveProgress& p) {
    last_done = p.done;
    last_total = p.total;
    if (p.done >= 40) flag = true;
  };
  SolveResult result;
  const detail::StopCondition stop(o);
  const detail::ReadsSummary s = detail::run_reads(m, o, stop, "test reads", result, draw);
  CHECK(result.status == SolveStatus::kInterrupted);
  CHECK(s.reads_run >= 40);
  CHECK(last_total == 0);
  CHECK(last_done == s.reads_run);
  int occurrences = 0;
  for (const Sample& sample : result.samples) occurrences += sample.num_occurrences;
  CHECK(occurrences == s.reads_run);
  // Reads until the limit need a limit.
  SolveOptions unlimited;
  unlimited.reads_until_time_limit = true;
  CHECK_THROWS_AS(unlimited.validate(), InvalidArgument);

  // A million requested reads and a target the first read meets: only the reads that started
  // (at most one per slot) were ever set up or kept, and the status says why the run ended.
  SolveOptions many;
  many.num_reads = 1'000'000;
  many.target_energy = 1e300;
  std::atomic<std::int64_t> set_up{0};
  std::atomic<int> bad_slots{0};  // doctest's CHECK is not for threads: count here, check after
  SolveResult mr;
  const detail::StopCondition mstop(many);
  const detail::ReadsSummary ms =
      detail::run_reads(m, many, mstop, "test reads", mr, [&](detail::ReadContext& r) {
        ++set_up;
        if (r.slot < 0 || r.slot >= detail::read_slots(many)) ++bad_slots;
        return draw(r);
      });
  CHECK(bad_slots == 0);
  CHECK(mr.status == SolveStatus::kTargetReached);
  CHECK(ms.reads_run == set_up.load());
  CHECK(ms.reads_run <= detail::read_slots(many));
}

TEST_CASE("SamplePool keeps what finalize_samples keeps, whatever the order, in bounded memory") {
  const QuboModel m = test::random_model(5, 0.8, 12);
  std::mt19937_64 rng(7);
  // 400 draws from 32 assignments: many duplicates and many equal-energy ties.
  std::vector<Assignment> draws;
  for (int t = 0; t < 400; ++t) draws.push_back(test::bits_to_assignment(rng() % 32, 5));
  for (int max_samples : {1, 3, 10, 100}) {
    SolveResult want;
    detail::finalize_samples(m, draws, max_samples, want);
    for (int order = 0; order < 3; ++order) {
      std::vector<Assignment> shuffled = draws;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      detail::SamplePool pool(max_samples);
      for (Assignment& x : shuffled) {
        const double e = m.energy(x);
        const bool f = m.is_feasible(x);
        pool.add(std::move(x), e, f);
      }
      SolveResult got;
      pool.take(got);
      REQUIRE(got.samples.size() == want.samples.size());
      for (std::size_t i = 0; i < got.samples.size(); ++i) {
        CHECK(got.samples[i].x == want.samples[i].x);
        CHECK(got.samples[i].energy == want.samples[i].energy);
        CHECK(got.samples[i].num_occurrences == want.samples[i].num_occurrences);
      }
    }
  }
}

TEST_CASE("a read's share of the time limit") {
  const QuboModel m = test::random_model(4, 0.5, 1);
  SolveOptions o;
  o.time_limit_s = 100.0;
  o.num_reads = 1;
  const detail::StopCondition stop(o);
  detail::ReadControl one(m, o, stop);
  CHECK(one.read_deadline_s(0) == doctest::Approx(100.0).epsilon(1e-3));  // all of it
  o.num_reads = 4 * std::max(1, detail::max_threads());                   // 4 rounds on the slots
  const detail::StopCondition stop4(o);
  detail::ReadControl four(m, o, stop4);
  CHECK(four.read_deadline_s(0) == doctest::Approx(25.0).epsilon(1e-3));  // 4 rounds left
  CHECK(four.read_deadline_s(o.num_reads - 1) == doctest::Approx(100.0).epsilon(1e-3));
  CHECK(four.status() == SolveStatus::kCompleted);
  four.note_time_share_used();
  CHECK(four.status() == SolveStatus::kTimeLimit);
  o.time_limit_s = std::numeric_limits<double>::infinity();
  const detail::StopCondition forever(o);
  detail::ReadControl endless(m, o, forever);
  CHECK(std::isinf(endless.read_deadline_s(0)));
}

TEST_CASE("binomial is exact and saturates") {
  CHECK(detail::binomial(5, 2) == 10);
  CHECK(detail::binomial(62, 31) == 465428353255261088ULL);
  CHECK(detail::binomial(4, 5) == 0);
  CHECK(detail::binomial(200, 100) == std::numeric_limits<std::uint64_t>::max());
  CHECK(detail::log2_binomial(62, 31) == doctest::Approx(std::log2(465428353255261088.0)));
}

}  // namespace qprune
