// SimulatedAnnealing: options, the automatic beta range and precision choice, the greedy start,
// and the move rule of one read (sweeps of anneal_kernel.hpp, then the shared descent) handed to
// run_reads. The form
// (dense/sparse) and the precision (float/double/int) are chosen once per solve; everything below
// anneal_reads<Form>() is compiled per combination.
#include "qprune/anneal_solver.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>

#include "core/memory_check.hpp"
#include "core/rng.hpp"
#include "qprune/error.hpp"
#include "solver/anneal/anneal_kernel.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"
#include "solver/common/feasible_start.hpp"
#include "solver/common/read_loop.hpp"

namespace qprune {
namespace {

using detail::GroupLayout;
using detail::anneal::DenseForm;
using detail::anneal::Metropolis;
using detail::anneal::SparseForm;

std::string format_number(double v) {
  std::ostringstream out;
  out << std::setprecision(6) << v;
  return out.str();
}

/// 17 significant digits: reads back to the same double.
std::string exact_number(double v) {
  std::ostringstream out;
  out << std::setprecision(17) << v;
  return out.str();
}

/// What the beta range and the precision choice need to know about the coefficients.
struct CoefficientStats {
  double max_flip_cost = 0.0;                                    // max_i |c_i| + sum_j |q_ij|
  double min_nonzero = std::numeric_limits<double>::infinity();  // smallest non-zero |coefficient|
  double max_abs_coupling = 0.0;
  double max_abs_linear = 0.0;
  bool all_integer = true;
};

CoefficientStats coefficient_stats(const QuboModel& model) {
  CoefficientStats s;
  auto see = [&](double v) {
    const double a = std::abs(v);
    if (a > 0.0) s.min_nonzero = std::min(s.min_nonzero, a);
    if (v != std::nearbyint(v)) s.all_integer = false;
  };
  for (int i = 0; i < model.num_variables(); ++i) {
    double row = std::abs(model.linear()[i]);
    see(model.linear()[i]);
    s.max_abs_linear = std::max(s.max_abs_linear, row);
    model.for_each_in_row(i, [&](int, double q) {
      row += std::abs(q);
      see(q);
      s.max_abs_coupling = std::max(s.max_abs_coupling, std::abs(q));
    });
    s.max_flip_cost = std::max(s.max_flip_cost, row);
  }
  return s;
}

std::pair<double, double> beta_range_from(const CoefficientStats& s) {
  if (!(s.max_flip_cost > 0.0) || !std::isfinite(s.min_nonzero)) return {1.0, 1.0};
  const double hot = std::log(2.0) / s.max_flip_cost;
  const double cold = std::log(100.0) / s.min_nonzero;
  return {hot, std::max(hot, cold)};
}

enum class Arithmetic { kDouble, kFloat, kInt8, kInt16 };

struct PrecisionChoice {
  Arithmetic arithmetic = Arithmetic::kDouble;
  std::string reason;
};

/// The integer kernel holds fields in int32: every field, and every swap delta (|delta| <= 3 B),
/// must stay far from 2^31.
std::optional<Arithmetic> integer_arithmetic(const CoefficientStats& s) {
  if (!s.all_integer || !(4.0 * s.max_flip_cost < 0x1p29)) return std::nullopt;
  if (s.max_abs_coupling <= 127.0) return Arithmetic::kInt8;
  if (s.max_abs_coupling <= 32767.0) return Arithmetic::kInt16;
  return std::nullopt;
}

PrecisionChoice choose_precision(AnnealPrecision requested, const CoefficientStats& s,
                                 double beta_cold) {
  const std::optional<Arithmetic> integer = integer_arithmetic(s);
  const auto integer_reason = [&](const char* why) {
    return std::string(*integer == Arithmetic::kInt8 ? "int8" : "int16") + " rows, int32 fields (" +
           why + ")";
  };
  if (requested == AnnealPrecision::kInteger) {
    if (!integer) {
      throw InvalidArgument(
          "AnnealOptions::precision = integer needs integer coefficients, |q_ij| <= 32767 and "
          "4 max_i (|c_i| + sum_j |q_ij|) < 2^29");
    }
    return {*integer, integer_reason("requested")};
  }
  if (requested == AnnealPrecision::kFloat) return {Arithmetic::kFloat, "float (requested)"};
  if (requested == AnnealPrecision::kDouble) return {Arithmetic::kDouble, "double (requested)"};
  if (integer) return {*integer, integer_reason("integer coefficients, exact")};
  // Swap deltas combine two fields and a coupling: |delta| <= 3 B. Integers below 2^24 are exact
  // in float, so with 4 B < 2^24 every float field, sum and delta is exact.
  if (s.all_integer && 4.0 * s.max_flip_cost < 0x1p24) {
    return {Arithmetic::kFloat, "float (integer coefficients, exact in float)"};
  }
  // Else a field carries a rounding error of about B 2^-24 per update; allow 16 ulps of drift and
  // require it to shift the cold acceptance exponent beta delta by at most 1e-3.
  const double error = 16.0 * s.max_flip_cost * 0x1p-24;
  if (error * beta_cold <= 1e-3) {
    return {Arithmetic::kFloat, "float (rounding below 1e-3 / beta_cold)"};
  }
  return {Arithmetic::kDouble,
          "double (float rounding " + format_number(error) + " would exceed 1e-3 / beta_cold)"};
}

/// Bytes of one stored coupling in the kernel's weight type.
double weight_bytes(Arithmetic a) {
  switch (a) {
    case Arithmetic::kInt8:
      return 1.0;
    case Arithmetic::kInt16:
      return 2.0;
    case Arithmetic::kFloat:
      return 4.0;
    case Arithmetic::kDouble:
      return 8.0;
  }
  return 8.0;
}

struct KernelChoice {
  bool dense = false;
  std::string reason;
};

/// Dense rows or CSR for the kernel, whatever the model's own storage. Both give the same samples
/// (same arithmetic, same draws); they differ only in the cost of an accepted move, which updates
/// a whole padded row (stride entries, vectorised) or the row's non-zeros (scattered). Cost model,
/// in units of one scattered CSR entry: a dense entry costs kDenseEntry (by weight type: widening
/// int8 to the int32 fields costs about as much per entry as streaming more bytes), times
/// 1 + (dense bytes) / 16 MiB, at most 2, as the rows fall out of the caches. Fitted to the
/// crossovers measured by `bench/sparse_anneal_bench --mode crossover` at n = 1000, 2000, 4000
/// (BENCHMARKS.md, "Issue 17: sparse kernels"): e.g. int8 rows win at n = 1000 from ~60 non-zeros
/// per row, at n = 4000 from ~500. A sparse model gets dense rows only up to kMaxDenseBytes: a
/// solver should not turn a sparse file into gigabytes.
KernelChoice choose_kernel(Storage requested, const QuboModel& searched, Arithmetic arithmetic) {
  if (requested == Storage::kDense) return {true, "dense (requested)"};
  if (requested == Storage::kSparse) return {false, "sparse (requested)"};
  const double n = searched.num_variables();
  const double stride = std::ceil(n / 64.0) * 64.0;
  const double bytes = n * stride * weight_bytes(arithmetic);
  const double row_entries = n > 0.0 ? 2.0 * static_cast<double>(searched.num_couplings()) / n : 0;
  double dense_entry = 0.0;
  switch (arithmetic) {
    case Arithmetic::kInt8:
      dense_entry = 0.06;
      break;
    case Arithmetic::kInt16:
      dense_entry = 0.08;
      break;
    case Arithmetic::kFloat:
      dense_entry = 0.10;
      break;
    case Arithmetic::kDouble:
      dense_entry = 0.15;
      break;
  }
  constexpr double kCacheBytes = 16.0 * 1024 * 1024;
  constexpr double kMaxDenseBytes = 256.0 * 1024 * 1024;
  const double dense_cost = dense_entry * std::min(2.0, 1.0 + bytes / kCacheBytes) * stride;
  const bool dense = dense_cost < row_entries &&
                     (searched.storage() == Storage::kDense || bytes <= kMaxDenseBytes);
  return {dense, std::string(dense ? "dense" : "sparse") + " (auto: a dense row costs about " +
                     format_number(dense_cost) + " CSR entries, a row has " +
                     format_number(row_entries) + ")"};
}

/// beta of sweep s, computed on the fly (a run may ask for more sweeps than fit in memory).
class Schedule {
 public:
  Schedule(const AnnealOptions& o, std::int64_t sweeps, std::pair<double, double> range)
      : geometric_(o.schedule == AnnealSchedule::kGeometric),
        sweeps_(sweeps),
        hot_(range.first),
        cold_(range.second) {}
  [[nodiscard]] std::int64_t size() const { return sweeps_; }
  [[nodiscard]] double beta(std::int64_t s) const {
    const double t = sweeps_ == 1 ? 1.0 : static_cast<double>(s) / static_cast<double>(sweeps_ - 1);
    return geometric_ ? hot_ * std::pow(cold_ / hot_, t) : hot_ + (cold_ - hot_) * t;
  }

 private:
  bool geometric_;
  std::int64_t sweeps_;
  double hot_;
  double cold_;
};

/// The greedy start (AnnealStart::kGreedy), computed once per solve and shared by the reads.
struct GreedyStart {
  Assignment x;       // greedy's answer
  double energy = 0;  // its energy in the searched model
  double uphill = 0;  // 1 % quantile of the uphill moves sampled at x (0: none found)
};

bool wants_greedy_start(AnnealStart start, const QuboModel& searched, const GroupLayout& layout) {
  constexpr int kAutoVariables = 5000;  // where automatic_num_sweeps starts cutting the sweeps
  switch (start) {
    case AnnealStart::kGreedy:
      return true;
    case AnnealStart::kRandom:
      return false;
    case AnnealStart::kAuto:
      break;
  }
  return !layout.groups.empty() && searched.storage() == Storage::kDense &&
         searched.num_variables() > kAutoVariables;
}

/// Greedy's read-0 answer (the construction, then its steepest descent), and the cost of the
/// moves that leave it: the 1 % quantile of kSamples uphill swap (and free flip) deltas drawn
/// uniformly at that answer sets the hot end of the schedule, so that annealing explores the
/// cheapest ways out of greedy's local minimum instead of first melting it into a random state
/// that 100 sweeps of n = 18944 cannot bring back to the greedy level.
GreedyStart greedy_start(const detail::CompiledProblem& problem, const detail::StopCondition& stop,
                         std::uint64_t seed) {
  GreedyStart s;
  const int n = problem.size();
  s.x.assign(static_cast<std::size_t>(n), 0);
  std::vector<double> f;
  detail::greedy_construction(problem, s.x, f);
  const detail::SteepestDescent descent(problem, 1e-12 * std::max(1.0, problem.max_flip_change()));
  (void)descent.run(s.x.data(), f.data(), std::int64_t{1} << 40,
                    [&] { return stop.should_stop(); });
  s.energy = problem.model().energy(s.x);

  constexpr int kSamples = 4096;
  pcg32 rng = detail::make_rng(seed, 0x67726565647374ULL);  // a stream of its own ("greedst")
  std::vector<double> uphill;
  const GroupLayout& layout = problem.layout();
  std::vector<int> ones, zeros;
  for (const GroupLayout::Group& g : layout.groups) {
    ones.clear();
    zeros.clear();
    const int* vars = layout.members(g);
    for (int t = 0; t < g.size; ++t)
      (s.x[static_cast<std::size_t>(vars[t])] ? ones : zeros).push_back(vars[t]);
    const int draws = std::max(1, kSamples / static_cast<int>(layout.groups.size()));
    for (int t = 0; t < draws; ++t) {
      const int a = zeros[detail::uniform_below(rng, static_cast<std::uint32_t>(zeros.size()))];
      const int b = ones[detail::uniform_below(rng, static_cast<std::uint32_t>(ones.size()))];
      const double delta =
          f[static_cast<std::size_t>(a)] - f[static_cast<std::size_t>(b)] - problem.coupling(a, b);
      if (delta > 0.0) uphill.push_back(delta);
    }
  }
  for (int i : layout.free_vars) {
    const double delta = s.x[static_cast<std::size_t>(i)] ? -f[static_cast<std::size_t>(i)]
                                                          : f[static_cast<std::size_t>(i)];
    if (delta > 0.0) uphill.push_back(delta);
  }
  if (!uphill.empty()) {
    const auto q = uphill.begin() + static_cast<std::ptrdiff_t>(uphill.size() / 100);
    std::nth_element(uphill.begin(), q, uphill.end());
    s.uphill = *q;
  }
  return s;
}

/// Everything a read needs that is shared by all reads of a solve.
struct RunContext {
  const AnnealOptions& anneal;
  const Schedule& schedule;
  const GroupLayout* layout;  // non-null in the native (swap) constraint mode
  double tolerance;           // descent: a move must improve by more than this
  const GreedyStart* start;   // non-null with the greedy start
  const QuboModel& searched;  // the model the reads anneal (their energies, against the start's)
};

/// Counters summed over the reads, one entry per read slot (detail::read_slots: the reads of a
/// slot run one after another, so no locks), never one per read: a million reads cost nothing.
struct RunOutput {
  explicit RunOutput(int slots)
      : attempts(static_cast<std::size_t>(slots), 0),
        accepted(static_cast<std::size_t>(slots), 0),
        anneal_s(static_cast<std::size_t>(slots), 0.0),
        descent_s(static_cast<std::size_t>(slots), 0.0),
        completed(static_cast<std::size_t>(slots), 0),
        kept_start(static_cast<std::size_t>(slots), 0) {}
  std::vector<std::int64_t> attempts;
  std::vector<std::int64_t> accepted;
  std::vector<double> anneal_s;   // time in the sweeps
  std::vector<double> descent_s;  // time in the closing descents
  std::vector<std::int64_t> completed;
  std::vector<std::int64_t> kept_start;    // reads that returned the greedy start
  std::atomic<bool> any_completed{false};  // some read has run all its sweeps
};

/// One read: a random (feasible) start or the greedy one, the sweeps of the schedule, then the
/// descent; from the greedy start, the start itself when the read found nothing lower.
template <class Form>
Assignment anneal_read(const Form& form, const std::vector<typename Form::RealType>& bound,
                       const RunContext& ctx, detail::ReadContext& read, RunOutput& out) {
  using Real = typename Form::RealType;
  const auto r = static_cast<std::size_t>(read.slot);
  detail::ReadControl& control = read.control;
  pcg32& rng = read.rng;
  const int n = form.size();
  std::vector<std::uint8_t> x(static_cast<std::size_t>(n));
  detail::anneal::AlignedVector<Real> h(static_cast<std::size_t>(n));
  std::vector<int> slots;
  if (ctx.start != nullptr) {
    std::copy(ctx.start->x.begin(), ctx.start->x.end(), x.begin());
    if (ctx.layout != nullptr) {  // the slots with each group's ones first, as the sweeps keep them
      slots = ctx.layout->slots;
      for (const GroupLayout::Group& g : ctx.layout->groups) {
        int* s = slots.data() + g.begin;
        std::stable_partition(s, s + g.size,
                              [&](int v) { return x[static_cast<std::size_t>(v)] != 0; });
      }
    }
  } else if (ctx.layout != nullptr) {
    detail::feasible_start(*ctx.layout, detail::StartDraws::kMovableOnly, rng, x.data(), &slots);
  } else {
    for (auto& v : x) v = static_cast<std::uint8_t>(rng(2));
  }
  detail::anneal::compute_fields(form, x.data(), h.data());
  double energy = detail::anneal::energy_from_fields(form, x.data(), h.data());
  const std::int64_t attempts_per_sweep = ctx.layout != nullptr ? ctx.layout->movable_count() : n;
  // The kernel's running energy may carry rounding; a target hit is confirmed with the model.
  const double target_slack = ctx.tolerance + 1e-9 * std::abs(energy);
  const auto meets_target = [&] { return control.meets_target(Assignment(x.begin(), x.end())); };

  detail::anneal::MetropolisTests<Real> tests(n);
  detail::Stopwatch watch;
  std::int64_t sweeps_done = 0;
  bool interrupted = false;
  for (std::int64_t sweep = 0; sweep < ctx.schedule.size(); ++sweep) {
    if (control.stopped()) break;
    const SolveStatus status = control.poll();
    if (status != SolveStatus::kCompleted) {
      interrupted = status == SolveStatus::kInterrupted;
      break;
    }
    const Metropolis<Real> metropolis = tests.at(ctx.schedule.beta(sweep));
    if (ctx.layout != nullptr) {
      out.accepted[r] += detail::anneal::swap_sweep(form, *ctx.layout, slots, x.data(), h.data(),
                                                    metropolis, rng, energy);
    } else if (ctx.anneal.order == SweepOrder::kRandom) {
      out.accepted[r] +=
          detail::anneal::flip_sweep<true>(form, x.data(), h.data(), metropolis, rng, energy);
    } else {
      out.accepted[r] +=
          detail::anneal::flip_sweep<false>(form, x.data(), h.data(), metropolis, rng, energy);
    }
    ++sweeps_done;
    if (control.target() && energy <= *control.target() + target_slack && meets_target()) {
      control.stop(SolveStatus::kTargetReached);
      break;
    }
  }
  out.anneal_s[r] += watch.elapsed_s();
  out.attempts[r] += sweeps_done * attempts_per_sweep;
  const bool complete = sweeps_done == ctx.schedule.size();
  out.completed[r] += complete ? 1 : 0;
  if (complete) out.any_completed.store(true, std::memory_order_relaxed);
  // A read the time limit cut short ends hot; once another read has completed, its descent (up to
  // n moves of O(n) from a hot state: 0.1 s at n = 10^4) would only carry the run past the limit
  // for a sample that rarely wins. Without a completed read it is the run's answer: descend.
  const bool cut_by_limit = !complete && control.status() == SolveStatus::kTimeLimit;
  const bool descend = ctx.anneal.greedy_descent && !interrupted &&
                       !(cut_by_limit && out.any_completed.load(std::memory_order_relaxed));

  const detail::Stopwatch descent_watch;
  if (descend) {
    detail::anneal::compute_fields(form, x.data(), h.data());  // drop any accumulated rounding
    constexpr std::int64_t kMaxMoves = std::int64_t{1} << 40;
    if (ctx.layout != nullptr) {
      (void)detail::swap_descent(form, *ctx.layout, bound, slots, x.data(), h.data(), ctx.tolerance,
                                 kMaxMoves);
    } else {
      (void)detail::flip_descent(form, x.data(), h.data(), ctx.tolerance, kMaxMoves);
    }
  }
  out.descent_s[r] += descent_watch.elapsed_s();
  Assignment answer(x.begin(), x.end());
  if (ctx.start != nullptr && !(ctx.searched.energy(answer) < ctx.start->energy)) {
    ++out.kept_start[r];
    return ctx.start->x;
  }
  return answer;  // run_reads checks the target on it
}

template <class Form>
detail::ReadsSummary anneal_reads(const detail::CompiledProblem& problem, const QuboModel& model,
                                  const SolveOptions& options, const detail::StopCondition& stop,
                                  const RunContext& ctx, SolveResult& result, RunOutput& out) {
  const Form form(problem);
  // Only the swap descent needs the coupling bounds; one O(n^2) pass for a dense form, per solve.
  const bool bounds = ctx.layout != nullptr && ctx.anneal.greedy_descent;
  const auto bound =
      bounds ? detail::positive_row_bounds(form) : std::vector<typename Form::RealType>{};
  return detail::run_reads(model, options, stop, "sa reads", result, [&](detail::ReadContext& r) {
    return anneal_read(form, bound, ctx, r, out);
  });
}

}  // namespace

void AnnealOptions::validate() const {
  if (num_sweeps < 0) {
    throw InvalidArgument("AnnealOptions::num_sweeps must be >= 1, or 0 for automatic, got " +
                          std::to_string(num_sweeps));
  }
  if (beta_range) {
    const auto [hot, cold] = *beta_range;
    if (!(std::isfinite(hot) && hot > 0.0) || !(std::isfinite(cold) && cold > 0.0)) {
      throw InvalidArgument("AnnealOptions::beta_range values must be finite and > 0, got (" +
                            format_number(hot) + ", " + format_number(cold) + ")");
    }
    // Annealing cools: the inverse temperature grows from hot to cold. A reversed pair would heat
    // the system up and end at random states.
    if (hot > cold) {
      throw InvalidArgument(
          "AnnealOptions::beta_range must be (hot, cold) with hot <= cold "
          "(inverse temperatures grow as it cools), got (" +
          format_number(hot) + ", " + format_number(cold) + ")");
    }
  }
}

int automatic_num_sweeps(int num_variables, bool dense) {
  constexpr int kSweeps = 1000, kMinSweeps = 100;
  constexpr double kFullSize = 5000.0;  // largest dense n that gets all kSweeps
  if (!dense || num_variables <= kFullSize) return kSweeps;
  const double ratio = kFullSize / static_cast<double>(num_variables);
  return std::max(kMinSweeps, static_cast<int>(std::lround(kSweeps * ratio * ratio)));
}

std::pair<double, double> default_beta_range(const QuboModel& model) {
  return beta_range_from(coefficient_stats(model));
}

SimulatedAnnealing::SimulatedAnnealing(AnnealOptions options) : options_(std::move(options)) {
  options_.validate();
}

SolveResult SimulatedAnnealing::solve(const QuboModel& model, const SolveOptions& options) const {
  detail::SolveSetup setup(name(), model, options);
  SolveResult& result = setup.result;
  const detail::StopCondition stop(options);

  // The native mode anneals the model itself with swap moves; otherwise the (penalised) QUBO.
  const bool native = setup.native();
  const QuboModel& searched = setup.searched();
  const detail::CompiledProblem problem(searched, native);
  const GroupLayout* layout = native ? &problem.layout() : nullptr;

  const CoefficientStats stats = coefficient_stats(searched);
  const detail::Stopwatch start_watch;
  std::optional<GreedyStart> start;
  if (searched.num_variables() > 0 &&
      wants_greedy_start(options_.start, searched, problem.layout()))
    start = greedy_start(problem, stop, options.seed);
  const double start_s = start_watch.elapsed_s();
  std::pair<double, double> range = options_.beta_range.value_or(beta_range_from(stats));
  if (start && !options_.beta_range && start->uphill > 0.0) {
    // Hot enough to take the cheapest 1 % of the ways out of greedy's minimum half the time.
    range.first = std::max(range.first, std::log(2.0) / start->uphill);
    range.second = std::max(range.first, range.second);
  }
  const bool dense_storage = searched.storage() == Storage::kDense;
  const PrecisionChoice precision = choose_precision(options_.precision, stats, range.second);
  const KernelChoice kernel =
      choose_kernel(options_.kernel_storage, searched, precision.arithmetic);
  const bool dense = kernel.dense;
  const bool use_float = precision.arithmetic == Arithmetic::kFloat;
  const int sweeps = options_.num_sweeps > 0
                         ? options_.num_sweeps
                         : automatic_num_sweeps(searched.num_variables(), dense_storage);
  const Schedule schedule(options_, sweeps, range);
  // Descent tolerance: zero when float arithmetic is exact, else a few ulps of the largest field.
  const bool exact =
      precision.arithmetic == Arithmetic::kInt8 || precision.arithmetic == Arithmetic::kInt16 ||
      (stats.all_integer && 4.0 * stats.max_flip_cost < (use_float ? 0x1p24 : 0x1p52));
  const double tolerance = exact ? 0.0 : (use_float ? 0x1p-18 : 0x1p-45) * stats.max_flip_cost;

  // 17 significant digits: the range reads back exactly (a JSON report types it as two numbers).
  result.info["beta_range"] =
      "[" + exact_number(range.first) + ", " + exact_number(range.second) + "]";
  result.info["precision"] = precision.reason;
  result.info["kernel"] =
      std::string(dense ? "dense" : "sparse") + (native ? ", swap moves" : ", single flips") +
      (options_.order == SweepOrder::kRandom && !native ? ", random order" : "");
  result.info["kernel_choice"] = kernel.reason;
  result.info["sweeps"] = std::to_string(sweeps);
  result.info["sweeps_automatic"] = options_.num_sweeps > 0 ? "false" : "true";
  result.info["schedule"] =
      options_.schedule == AnnealSchedule::kGeometric ? "geometric" : "linear";
  result.info["start"] =
      start ? "greedy (energy " + format_number(start->energy) +
                  (options_.start == AnnealStart::kAuto ? "; automatic: dense groups, n > 5000)"
                                                        : ")")
            : std::string("random");

  if (dense) {
    // DenseForm holds n rows padded to a multiple of 64 entries, one copy shared by all reads.
    const int n = searched.num_variables();
    const double entry_bytes = weight_bytes(precision.arithmetic);
    const double stride = std::ceil(n / 64.0) * 64.0;
    detail::check_memory(static_cast<double>(n) * stride * entry_bytes,
                         "sa: the dense coupling rows of " + std::to_string(n) + " variables (" +
                             std::to_string(static_cast<int>(entry_bytes)) + " bytes per entry)",
                         "use AnnealOptions::precision = float or integer, sparse model storage "
                         "for sparse problems, or a smaller problem",
                         options.memory_limit_bytes);
  }
  const RunContext ctx{options_, schedule, layout, tolerance, start ? &*start : nullptr, searched};
  RunOutput out(detail::read_slots(options));
  detail::ReadsSummary summary;
  if (searched.num_variables() == 0) {
    summary = detail::run_reads(model, options, stop, "sa reads", result,
                                [](detail::ReadContext&) { return Assignment{}; });
  } else if (dense && precision.arithmetic == Arithmetic::kInt8) {
    summary = anneal_reads<DenseForm<std::int32_t, std::int8_t>>(problem, model, options, stop, ctx,
                                                                 result, out);
  } else if (dense && precision.arithmetic == Arithmetic::kInt16) {
    summary = anneal_reads<DenseForm<std::int32_t, std::int16_t>>(problem, model, options, stop,
                                                                  ctx, result, out);
  } else if (dense && use_float) {
    summary = anneal_reads<DenseForm<float>>(problem, model, options, stop, ctx, result, out);
  } else if (dense) {
    summary = anneal_reads<DenseForm<double>>(problem, model, options, stop, ctx, result, out);
  } else if (precision.arithmetic == Arithmetic::kInt8) {
    summary = anneal_reads<SparseForm<std::int32_t, std::int8_t>>(problem, model, options, stop,
                                                                  ctx, result, out);
  } else if (precision.arithmetic == Arithmetic::kInt16) {
    summary = anneal_reads<SparseForm<std::int32_t, std::int16_t>>(problem, model, options, stop,
                                                                   ctx, result, out);
  } else if (use_float) {
    summary = anneal_reads<SparseForm<float>>(problem, model, options, stop, ctx, result, out);
  } else {
    summary = anneal_reads<SparseForm<double>>(problem, model, options, stop, ctx, result, out);
  }

  std::int64_t attempts = 0, accepted = 0, completed = 0, kept_start = 0;
  double anneal_s = 0.0, descent_s = 0.0;
  for (std::size_t r = 0; r < out.attempts.size(); ++r) {
    attempts += out.attempts[r];
    accepted += out.accepted[r];
    anneal_s += out.anneal_s[r];
    descent_s += out.descent_s[r];
    completed += out.completed[r];
    kept_start += out.kept_start[r];
  }
  // Both rates describe the sweeps alone (anneal_time_s, summed over reads): the speed of the
  // kernel on one thread. Setup (compiling the problem) and the descents are not in them; the
  // descents have their own time, and wall_time_s holds everything.
  result.counters["flip_attempts"] = static_cast<double>(attempts);
  result.counters["accepted_moves"] = static_cast<double>(accepted);
  result.counters["anneal_time_s"] = anneal_s;
  result.counters["attempts_per_s"] =
      anneal_s > 0.0 ? static_cast<double>(attempts) / anneal_s : 0.0;
  result.counters["ns_per_attempt"] =
      attempts > 0 ? 1e9 * anneal_s / static_cast<double>(attempts) : 0.0;
  result.counters["descent_time_s"] = descent_s;
  result.counters["reads"] = static_cast<double>(summary.reads_run);
  result.counters["reads_completed"] = static_cast<double>(completed);
  result.counters["start_time_s"] = start_s;
  result.counters["reads_kept_start"] = static_cast<double>(kept_start);
  std::ostringstream msg;
  msg << summary.reads_run;
  if (options.reads_until_time_limit) {
    msg << " reads (new reads until the time limit)";
  } else {
    msg << " of " << options.num_reads << " reads";
  }
  msg << ", " << sweeps << " sweeps each";
  if (result.status != SolveStatus::kCompleted)
    msg << " (stopped: " << to_string(result.status) << ")";
  result.message = msg.str();
  return std::move(result);  // a reference into setup: move, do not copy
}

}  // namespace qprune
