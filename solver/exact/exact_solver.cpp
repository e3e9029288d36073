// Exact solver: enumerates every assignment (every feasible one under native constraint groups)
// with O(n) incremental work per state, in parallel over chunks, and keeps the best.
//
// Incremental energies: with local fields f_j = c_j + sum_k q_jk x_k, flipping x_i changes E by
// (1 - 2 x_i) f_i and every f_j by +q_ij (x_i: 0 -> 1) or -q_ij (1 -> 0). The solver keeps its own
// dense copy of +Q and -Q rows (padded to a multiple of 8 doubles), so the update is one contiguous
// add of a row chosen without a branch, and it auto-vectorises (AVX2 clone picked at run time).
//
// Order of enumeration (a mixed-radix reflected Gray code made of cyclic "digits"):
//   - free variables (outside every group): the binary reflected Gray code, the flipped bit of
//     step t being countr_zero(t). Applied from any start it visits all 2^F patterns, so the
//     free part never needs to be reset between passes;
//   - each constraint group: the revolving-door order of its k-subsets (Knuth, TAOCP 7.2.1.3,
//     Algorithm R), consecutive subsets differing by one swap; the order is cyclic (last and first
//     also differ by one swap), so again a pass can start wherever the previous one ended.
//   A digit advances one step exactly when a mixed-radix counter increments it without wrapping,
//   so every step is one flip or one swap and each feasible state is visited once.
// Parallelism: the top prefix variables (free ones first, then group members) are fixed per
// chunk; the number of prefix variables depends only on the problem, never on the thread count,
// and ties are resolved by chunk index then enumeration order, so the answer is deterministic.
// Every 2^16 steps the fields and energy are recomputed from scratch (no drift over 2^32 steps)
// and the stop conditions are polled.
#include "qprune/exact_solver.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "core/binomial.hpp"
#include "core/cpu_features.hpp"
#include "core/parallel_for.hpp"
#include "qprune/error.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/progress.hpp"
#include "solver/common/read_loop.hpp"
#include "solver/common/samples.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune {
namespace {

using U64 = std::uint64_t;
constexpr int kPollLog2 = 16;             // recompute fields and poll every 2^16 steps
constexpr int kMaxPrefixVariables = 8;    // at most 256 chunks
constexpr int kMinChunkLog2 = 14;         // chunks of at least ~2^14 states
constexpr int kDenseMaxVariables = 2048;  // above: the solver's copy is sparse (CSR)
constexpr int kCalibrationLog2 = 16;      // states timed for the estimate in a ResourceError

std::size_t idx(int i) { return static_cast<std::size_t>(i); }

// The enumeration's layout of the compiled problem: linear terms and couplings as +/- rows.
struct Compiled {
  int n = 0;
  int stride = 0;  // padded row length of the dense form
  bool dense = true;
  std::vector<double> linear;
  std::vector<double> rows;           // dense: row 2i is +q_i., row 2i+1 is -q_i. (zero padded)
  std::vector<std::int64_t> offsets;  // sparse: symmetric CSR
  std::vector<int> cols;
  std::vector<double> vals;

  explicit Compiled(const detail::CompiledProblem& m) : n(m.size()) {
    linear.resize(idx(n));
    for (int i = 0; i < n; ++i) linear[idx(i)] = m.linear(i);
    dense = n <= kDenseMaxVariables;
    if (dense) {
      stride = std::max(8, (n + 7) / 8 * 8);
      rows.assign(2 * idx(n) * idx(stride), 0.0);
      for (int i = 0; i < n; ++i) {
        m.for_each_in_row(i, [&](int j, double q) {
          rows[(2 * idx(i)) * idx(stride) + idx(j)] = q;
          rows[(2 * idx(i) + 1) * idx(stride) + idx(j)] = -q;
        });
      }
    } else {
      stride = n;
      offsets.push_back(0);
      for (int i = 0; i < n; ++i) {
        m.for_each_in_row(i, [&](int j, double q) {
          cols.push_back(j);
          vals.push_back(q);
        });
        offsets.push_back(static_cast<std::int64_t>(cols.size()));
      }
    }
  }

  // f = c + Q x; returns E(x) - offset = sum_i x_i (c_i + f_i) / 2.
  double fields(const std::uint8_t* x, double* f) const {
    std::fill(f, f + stride, 0.0);
    for (int i = 0; i < n; ++i) f[i] = linear[idx(i)];
    for (int k = 0; k < n; ++k) {
      if (!x[k]) continue;
      if (dense) {
        const double* row = rows.data() + 2 * idx(k) * idx(stride);
        for (int j = 0; j < stride; ++j) f[j] += row[j];
      } else {
        for (auto p = offsets[idx(k)]; p < offsets[idx(k) + 1]; ++p) {
          f[cols[static_cast<std::size_t>(p)]] += vals[static_cast<std::size_t>(p)];
        }
      }
    }
    double e = 0.0;
    for (int i = 0; i < n; ++i)
      if (x[i]) e += linear[idx(i)] + f[i];
    return 0.5 * e;
  }
};

// Row updates, chosen once per solve. W > 0: compile-time row length (n <= 64), fully unrolled.
template <int W>
struct DenseKernel {
  const double* rows;
  int stride;
  [[gnu::always_inline]] void apply(double* __restrict f, int i, unsigned xi) const {
    const double* __restrict row = rows + (2 * idx(i) + xi) * idx(stride);
    if constexpr (W > 0) {
      for (int j = 0; j < W; ++j) f[j] += row[j];
    } else {
      for (int j = 0; j < stride; ++j) f[j] += row[j];
    }
  }
};

struct SparseKernel {
  const std::int64_t* offsets;
  const int* cols;
  const double* vals;
  [[gnu::always_inline]] void apply(double* __restrict f, int i, unsigned xi) const {
    const double s = xi ? -1.0 : 1.0;
    for (auto p = offsets[i]; p < offsets[i + 1]; ++p) f[cols[p]] += s * vals[p];
  }
};

// Cyclic revolving-door order of the t-subsets of {0..n-1} (0 < t < n), Knuth's Algorithm R
// (c_1 < ... < c_t, 1-based, c_{t+1} = n as a sentinel); after the last subset {0..t-2, n-1} the
// closing swap n-1 -> t-1 returns to the first, {0..t-1}.
class RevolvingDoor {
 public:
  RevolvingDoor(int n, int t) : n_(n), t_(t), c_(idx(t) + 2) { reset(); }
  /// Moves to the next subset of the cycle; `out` leaves it and `in` enters.
  void next(int& out, int& in) {
    int* c = c_.data();
    if (t_ == 1) {
      out = c[1];
      in = c[1] + 1 == n_ ? 0 : c[1] + 1;
      c[1] = in;
      return;
    }
    int j = 2;
    bool decrease;  // true: step R4 (try to decrease c_j), false: step R5 (try to increase c_j)
    if (t_ % 2 == 1) {
      if (c[1] + 1 < c[2]) {
        out = c[1];
        in = ++c[1];
        return;
      }
      decrease = true;
    } else {
      if (c[1] > 0) {
        out = c[1];
        in = --c[1];
        return;
      }
      decrease = false;
    }
    while (j <= t_) {
      if (decrease) {  // here c_j = c_{j-1} + 1
        if (c[j] >= j) {
          out = c[j];
          in = j - 2;
          c[j] = c[j - 1];
          c[j - 1] = j - 2;
          return;
        }
        ++j;
        decrease = false;
        if (j > t_) break;
      }
      // R5: here c_{j-1} = j - 2
      if (c[j] + 1 < c[j + 1]) {
        out = j - 2;
        in = c[j] + 1;
        c[j - 1] = c[j];
        c[j] = c[j] + 1;
        return;
      }
      ++j;
      decrease = true;
    }
    out = n_ - 1;  // end of the list: close the cycle
    in = t_ - 1;
    reset();
  }

 private:
  void reset() {
    for (int j = 1; j <= t_; ++j) c_[idx(j)] = j - 1;
    c_[idx(t_) + 1] = n_;
  }
  int n_, t_;
  std::vector<int> c_;
};

using detail::binomial;
using detail::log2_binomial;

// What the enumeration covers: the groups to respect (none in penalty mode) and the chunk prefix.
struct Plan {
  int n = 0;
  std::vector<CardinalityConstraint> groups;
  std::vector<int> group_of;  // -1: free variable
  std::vector<int> prefix;    // variable fixed by bit b of the chunk index
  double log2_states = 0.0;   // log2 of the number of states enumerated
  U64 states = 0;             // exact, when log2_states < 63
};

Plan make_plan(const QuboModel& m, bool native) {
  Plan plan;
  plan.n = m.num_variables();
  plan.group_of.assign(idx(plan.n), -1);
  if (native) plan.groups = m.constraints();
  int num_free = plan.n;
  for (std::size_t g = 0; g < plan.groups.size(); ++g) {
    const auto& grp = plan.groups[g];
    for (int v : grp.variables) plan.group_of[idx(v)] = static_cast<int>(g);
    num_free -= static_cast<int>(grp.variables.size());
    plan.log2_states += log2_binomial(static_cast<int>(grp.variables.size()), grp.k);
  }
  plan.log2_states += num_free;
  if (plan.log2_states < 63.0) {
    U64 s = U64{1} << num_free;
    for (const auto& grp : plan.groups) {
      if (__builtin_mul_overflow(s, binomial(static_cast<int>(grp.variables.size()), grp.k), &s)) {
        s = std::numeric_limits<U64>::max();
      }
    }
    plan.states = s;
  } else {
    plan.states = std::numeric_limits<U64>::max();
  }
  // Prefix: free variables from the top, then members of groups that are not fixed (0 < k < n_g).
  std::vector<int> candidates;
  for (int v = plan.n - 1; v >= 0; --v)
    if (plan.group_of[idx(v)] < 0) candidates.push_back(v);
  for (const auto& grp : plan.groups) {
    if (grp.k == 0 || grp.k == static_cast<int>(grp.variables.size())) continue;
    for (int v : grp.variables) candidates.push_back(v);
  }
  const int p = std::clamp(static_cast<int>(std::floor(plan.log2_states)) - kMinChunkLog2, 0,
                           std::min(kMaxPrefixVariables, static_cast<int>(candidates.size())));
  plan.prefix.assign(candidates.begin(), candidates.begin() + p);
  return plan;
}

// One chunk: its start state and the digits of its Gray code.
struct Digit {
  std::vector<int> vars;  // the group's members outside the prefix
  RevolvingDoor door;
  U64 count;  // C(vars.size(), k)
  U64 counter = 0;
};

struct Chunk {
  bool empty = false;
  Assignment x;
  std::vector<int> free_vars;  // free variables outside the prefix (inner Gray code)
  std::vector<Digit> digits;
};

Chunk make_chunk(const Plan& plan, U64 index) {
  Chunk chunk;
  chunk.x.assign(idx(plan.n), 0);
  std::vector<bool> fixed(idx(plan.n), false);
  for (std::size_t b = 0; b < plan.prefix.size(); ++b) {
    fixed[idx(plan.prefix[b])] = true;
    chunk.x[idx(plan.prefix[b])] = static_cast<std::uint8_t>((index >> b) & 1U);
  }
  for (int v = 0; v < plan.n; ++v)
    if (plan.group_of[idx(v)] < 0 && !fixed[idx(v)]) chunk.free_vars.push_back(v);
  for (const auto& grp : plan.groups) {
    std::vector<int> rest;
    int k = grp.k;
    for (int v : grp.variables) {
      if (fixed[idx(v)]) {
        k -= chunk.x[idx(v)];
      } else {
        rest.push_back(v);
      }
    }
    const int size = static_cast<int>(rest.size());
    if (k < 0 || k > size) {
      chunk.empty = true;
      return chunk;
    }
    for (int a = 0; a < k; ++a) chunk.x[idx(rest[idx(a)])] = 1;
    if (k > 0 && k < size) {
      chunk.digits.push_back(Digit{rest, RevolvingDoor(size, k), binomial(size, k)});
    }
  }
  return chunk;
}

struct ChunkResult {
  bool found = false;
  double energy = 0.0;  // kernel energy (offset excluded), for the within-chunk comparison
  Assignment best;
  U64 states = 0;  // states visited (the start included)
};

// Shared between the chunks of one solve: why the search stopped (the shared stop control of
// read_loop.hpp: time limit, interrupt, target), the target in kernel units, a state budget.
struct Control {
  detail::ReadControl& stops;
  std::optional<double> target;                      // kernel energy at or below which to stop
  U64 max_states = std::numeric_limits<U64>::max();  // calibration: stop after this many
};

// x ^ (sign bit when s == 1): -x when s is 1, x when 0, without a branch (s is unpredictable).
[[gnu::always_inline]] inline double negate_if(double x, unsigned s) {
  return std::bit_cast<double>(std::bit_cast<U64>(x) ^ (static_cast<U64>(s) << 63));
}

// Gray steps t in [t, end) of the free variables (bit b of `bits` is free_vars[b]); stops right
// after a step whose energy is below best_e (the caller records it). Returns the next t.
template <class Kernel>
[[gnu::always_inline]] inline U64 gray_run(const Kernel& kernel_ref, double* __restrict f,
                                           const int* __restrict free_vars, U64 t, U64 end,
                                           U64& bits_io, double& e_io, double best_e) {
  const Kernel kernel = kernel_ref;  // a local copy: its pointers stay in registers
  U64 bits = bits_io;
  double e = e_io;
  while (t < end) {
    const int b = std::countr_zero(t);
    const int i = free_vars[b];
    const auto xi = static_cast<unsigned>((bits >> b) & 1U);
    e += negate_if(f[i], xi);
    kernel.apply(f, i, xi);
    bits ^= U64{1} << b;
    ++t;
    if (e < best_e) [[unlikely]]
      break;
  }
  bits_io = bits;
  e_io = e;
  return t;
}

// Up to `steps` revolving-door swaps of one group digit (out: 1 -> 0, then in: 0 -> 1, so no
// sign is needed); stops right after a swap whose energy is below best_e. Returns the swaps done.
template <class Kernel>
[[gnu::always_inline]] inline U64 door_run(const Kernel& kernel_ref, double* __restrict f,
                                           std::uint8_t* __restrict x, Digit& digit, U64 steps,
                                           double& e_io, double best_e) {
  const Kernel kernel = kernel_ref;
  const int* __restrict vars = digit.vars.data();
  double e = e_io;
  U64 done = 0;
  while (done < steps) {
    int out_pos = 0, in_pos = 0;
    digit.door.next(out_pos, in_pos);
    const int o = vars[out_pos], i = vars[in_pos];
    e -= f[o];
    kernel.apply(f, o, 1U);
    x[o] = 0;
    e += f[i];
    kernel.apply(f, i, 0U);
    x[i] = 1;
    ++done;
    if (e < best_e) [[unlikely]]
      break;
  }
  e_io = e;
  return done;
}

template <class Kernel>
[[gnu::always_inline]] inline void enumerate_body(const Compiled& cm, const Kernel& kernel,
                                                  Chunk& chunk, Control& control,
                                                  ChunkResult& out) {
  std::vector<double> field_store(idx(cm.stride) + 8, 0.0);
  double* __restrict f = field_store.data();
  Assignment& x = chunk.x;
  double e = cm.fields(x.data(), f);
  out.found = true;
  out.energy = e;
  out.best = x;
  out.states = 1;
  const int num_free = static_cast<int>(chunk.free_vars.size());
  const int* free_vars = chunk.free_vars.data();
  const U64 pass = num_free >= 64 ? 0 : (U64{1} << num_free);  // 0: never (refused before)
  U64 bits = 0;  // free variables' values, bit b <-> free_vars[b] (x is synced at poll points)
  U64 next_poll = U64{1} << kPollLog2;
  double best_e = e;

  auto sync_free = [&](Assignment& y) {
    for (int b = 0; b < num_free; ++b)
      y[idx(free_vars[b])] = static_cast<std::uint8_t>((bits >> b) & 1U);
  };
  auto record = [&]() {
    best_e = e;
    out.best = x;
    sync_free(out.best);
  };
  // Recomputes the fields (no drift) and says whether to stop.
  auto poll = [&]() -> bool {
    next_poll += U64{1} << kPollLog2;
    sync_free(x);
    e = cm.fields(x.data(), f);
    if (control.stops.poll() != SolveStatus::kCompleted) return true;
    if (control.target && best_e <= *control.target) {
      control.stops.stop(SolveStatus::kTargetReached);
      return true;
    }
    return out.states >= control.max_states;
  };
  auto flip = [&](int i) {
    const unsigned xi = x[idx(i)];
    e += negate_if(f[i], xi);
    kernel.apply(f, i, xi);
    x[idx(i)] = static_cast<std::uint8_t>(xi ^ 1U);
  };

  bool stopped = false;
  while (!stopped) {
    // Free variables: one pass of the reflected Gray code, in blocks between polls; gray_run
    // returns early at each improvement so that its loop holds no call and nothing escapes.
    for (U64 t = 1; t < pass && !stopped;) {
      const U64 block_end = std::min(pass, t + (next_poll - out.states));
      const U64 t0 = t;
      while (t < block_end) {
        t = gray_run(kernel, f, free_vars, t, block_end, bits, e, best_e);
        if (e < best_e) record();
      }
      out.states += t - t0;
      if (out.states >= next_poll) stopped = poll();
    }
    if (stopped) break;
    // No free variables: the innermost group digit runs alone in a tight loop until it would wrap.
    if (num_free == 0 && !chunk.digits.empty()) {
      Digit& d0 = chunk.digits.front();
      while (d0.counter + 1 < d0.count && !stopped) {
        const U64 budget = std::min(d0.count - 1 - d0.counter, next_poll - out.states);
        const U64 done = door_run(kernel, f, x.data(), d0, budget, e, best_e);
        d0.counter += done;
        out.states += done;
        if (e < best_e) record();
        if (out.states >= next_poll) stopped = poll();
      }
      if (stopped) break;
    }
    // Group digits: the lowest one that increments without wrapping takes one swap.
    std::size_t d = 0;
    while (d < chunk.digits.size() && ++chunk.digits[d].counter == chunk.digits[d].count) {
      chunk.digits[d].counter = 0;
      ++d;
    }
    if (d == chunk.digits.size()) break;
    Digit& digit = chunk.digits[d];
    int out_pos = 0, in_pos = 0;
    digit.door.next(out_pos, in_pos);
    flip(digit.vars[idx(out_pos)]);
    flip(digit.vars[idx(in_pos)]);
    if (e < best_e) record();
    if (++out.states >= next_poll) stopped = poll();
  }
  out.energy = best_e;
}

template <class Kernel>
QPRUNE_TARGET_AVX2 void enumerate_avx2(const Compiled& cm, const Kernel& kernel, Chunk& chunk,
                                       Control& control, ChunkResult& out) {
  enumerate_body(cm, kernel, chunk, control, out);
}

template <class Kernel>
void enumerate_generic(const Compiled& cm, const Kernel& kernel, Chunk& chunk, Control& control,
                       ChunkResult& out) {
  enumerate_body(cm, kernel, chunk, control, out);
}

template <class Kernel>
void enumerate(const Compiled& cm, const Kernel& kernel, Chunk& chunk, Control& control,
               ChunkResult& out) {
  if (detail::cpu_has_avx2()) {
    enumerate_avx2(cm, kernel, chunk, control, out);
  } else {
    enumerate_generic(cm, kernel, chunk, control, out);
  }
}

// Calls body(kernel) with the kernel for this compiled form (dispatch once, then templates):
// sparse, a fully unrolled dense row of one of the widths kWidths, or a dense row of any width.
template <class Body, int... kWidths>
void with_dense_kernel(const Compiled& cm, Body&& body, std::integer_sequence<int, kWidths...>) {
  const double* rows = cm.rows.data();
  const bool fixed =
      ((cm.stride == kWidths && (body(DenseKernel<kWidths>{rows, kWidths}), true)) || ...);
  if (!fixed) body(DenseKernel<0>{rows, cm.stride});
}

template <class Body>
void with_kernel(const Compiled& cm, Body&& body) {
  if (!cm.dense) {
    body(SparseKernel{cm.offsets.data(), cm.cols.data(), cm.vals.data()});
    return;
  }
  with_dense_kernel(cm, body, std::integer_sequence<int, 8, 16, 24, 32, 40, 48, 56, 64>{});
}

std::string format_duration(double s) {
  std::ostringstream out;
  out.precision(3);
  if (s < 120)
    out << s << " s";
  else if (s < 7200)
    out << s / 60 << " min";
  else if (s < 2 * 86400)
    out << s / 3600 << " h";
  else if (s < 2 * 365.25 * 86400)
    out << s / 86400 << " days";
  else
    out << s / (365.25 * 86400) << " years";
  return out.str();
}

// States per second of this kernel on this machine, all threads: a short timed run.
double calibrate(const QuboModel& model, const Compiled& cm, const Plan& plan) {
  Chunk chunk;
  chunk.x.assign(idx(plan.n), 0);
  for (int v = 0; v < std::min(plan.n, 24); ++v) chunk.free_vars.push_back(v);
  SolveOptions unlimited;
  detail::StopCondition stop(unlimited);
  detail::ReadControl stops(model, unlimited, stop);
  Control control{stops, std::nullopt};
  control.max_states = U64{1} << kCalibrationLog2;
  ChunkResult out;
  const detail::Stopwatch watch;
  with_kernel(cm, [&](const auto& kernel) { enumerate(cm, kernel, chunk, control, out); });
  const double t = std::max(watch.elapsed_s(), 1e-6);
  return static_cast<double>(out.states) / t * detail::max_threads();
}

}  // namespace

void ExactOptions::validate() const {
  if (max_variables < 1 || max_variables > 48) {
    throw InvalidArgument("ExactOptions::max_variables must be in [1, 48], got " +
                          std::to_string(max_variables));
  }
}

ExactSolver::ExactSolver(ExactOptions options) : options_(options) { options_.validate(); }

SolveResult ExactSolver::solve(const QuboModel& model, const SolveOptions& options) const {
  detail::SolveSetup setup(name(), model, options);
  SolveResult& result = setup.result;
  const detail::StopCondition stop(options);
  const bool native = setup.native();
  const QuboModel& search = setup.searched();

  const Plan plan = make_plan(search, native);
  const Compiled cm(detail::CompiledProblem(search, false));
  const bool too_large =
      plan.log2_states > 62.0 || plan.states > (U64{1} << options_.max_variables);
  if (too_large) {
    std::ostringstream msg;
    msg << "exact: " << (native && model.has_constraints() ? "the feasible set has " : "");
    if (plan.log2_states <= 62.0) {
      msg << plan.states;
    } else {
      msg << std::setprecision(3) << std::pow(2.0, plan.log2_states);
    }
    const double rate = calibrate(search, cm, plan);
    msg.precision(3);
    msg << " states (2^" << std::fixed << plan.log2_states << std::defaultfloat
        << ") to enumerate, more than 2^" << options_.max_variables
        << " (ExactOptions::max_variables); at the measured " << rate << " states/s ("
        << detail::max_threads() << " threads) that would take about "
        << format_duration(std::pow(2.0, plan.log2_states) / rate)
        << "; use a heuristic solver (sa, tabu, greedy) instead";
    throw ResourceError(msg.str());
  }

  const U64 num_chunks = U64{1} << plan.prefix.size();
  detail::ReadControl stops(model, options, stop);
  Control control{stops, std::nullopt};
  if (options.target_energy) control.target = *options.target_energy - search.offset();
  std::vector<ChunkResult> results(num_chunks);
  detail::UnitProgress progress(model, options, "exact chunks",
                                static_cast<std::int64_t>(num_chunks));
  const double enumeration_start_s = stop.elapsed_s();
  with_kernel(cm, [&](const auto& kernel) {
    detail::parallel_for(static_cast<std::int64_t>(num_chunks), [&](std::int64_t c) {
      if (stops.stopped()) return;
      Chunk chunk = make_chunk(plan, static_cast<U64>(c));
      ChunkResult& r = results[static_cast<std::size_t>(c)];
      if (!chunk.empty) enumerate(cm, kernel, chunk, control, r);
      // A chunk cut short by a stop is not done.
      if (!stops.stopped()) {
        progress.unit_done(r.found ? &r.best : nullptr);
      }
    });
  });
  const double enumeration_s = stop.elapsed_s() - enumeration_start_s;

  // Reduce in chunk order with the reference energy; strict < keeps the first of equal ones.
  U64 states = 0;
  const ChunkResult* best = nullptr;
  double best_energy = std::numeric_limits<double>::infinity();
  for (const ChunkResult& r : results) {
    states += r.states;
    if (!r.found) continue;
    const double energy = search.energy(r.best);
    if (best == nullptr || energy < best_energy) {
      best = &r;
      best_energy = energy;
    }
  }
  std::vector<Assignment> assignments;
  if (best != nullptr) assignments.push_back(best->best);
  detail::finalize_samples(model, std::move(assignments), options.max_samples, result);

  const SolveStatus reason = stops.status();
  result.wall_time_s = stop.elapsed_s();
  result.counters["states_enumerated"] = static_cast<double>(states);
  // All threads together, over the enumeration's wall time (the rate the ResourceError's
  // estimate uses).
  result.counters["enumeration_time_s"] = enumeration_s;
  result.counters["states_per_s"] = static_cast<double>(states) / std::max(enumeration_s, 1e-9);
  result.counters["chunks"] = static_cast<double>(num_chunks);
  result.info["kernel"] =
      std::string(cm.dense ? "dense" : "sparse") + (detail::cpu_has_avx2() ? "-avx2" : "");
  const std::string what = native && model.has_constraints() ? "feasible states" : "states";
  if (reason == SolveStatus::kCompleted) {
    result.status = SolveStatus::kOptimal;
    result.message = "enumerated all " + std::to_string(states) + " " + what +
                     "; the best is optimal" +
                     (native ? "" : (model.has_constraints() ? " for the penalised model" : ""));
  } else {
    result.status = reason;
    result.message = "stopped (" + std::string(to_string(result.status)) + ") after " +
                     std::to_string(states) + " of " + std::to_string(plan.states) + " " + what +
                     "; best so far kept, optimality not proven";
  }
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
