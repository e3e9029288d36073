// Simulated annealing ("sa"): Metropolis single-flip sweeps under an inverse-temperature schedule,
// one independent read per SolveOptions::num_reads (or reads until the time limit), run in
// parallel. Under constraint groups the native mode starts from a random feasible assignment and
// proposes only swap moves (one unit of a group in, one out), so every state it visits is feasible;
// the penalty mode anneals QuboModel::penalized() instead. Each read ends with a greedy descent of
// its final state.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/anneal_solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <optional>
#include <utility>

#include "qprune/solver.hpp"

namespace qprune {

/// How the inverse temperature moves from beta_range.first (hot) to beta_range.second (cold).
enum class AnnealSchedule {
  kGeometric,  ///< beta_s = hot * (cold / hot)^(s / (sweeps - 1))
  kLinear,     ///< beta_s = hot + (cold - hot) * s / (sweeps - 1)
};

/// Order of the single-flip attempts within one sweep.
enum class SweepOrder {
  kSequential,  ///< variables 0, 1, ..., n-1 (cache-friendly; the usual choice)
  kRandom,      ///< n attempts at uniformly drawn variables
};

/// Arithmetic of the kernel's fields and couplings.
enum class AnnealPrecision {
  kAuto,     ///< integer, else float when safe, else double (see AnnealOptions::precision)
  kFloat,    ///< float: half the memory traffic of double on dense rows
  kDouble,   ///< double
  kInteger,  ///< int32 fields and int8/int16 couplings (dense rows or CSR), exact; needs integer
             ///< coefficients with |q_ij| <= 32767 and row sums below 2^29 (InvalidArgument if not)
};

/// Where each read starts.
enum class AnnealStart {
  /// kGreedy for dense models with constraint groups (pruning layers) above 5000 variables, where
  /// the automatic sweep count is too small for a random start to get past the greedy answer;
  /// kRandom otherwise.
  kAuto,
  kRandom,  ///< a uniformly random (feasible) assignment
  /// Greedy's answer (its read 0: the greedy construction, then steepest descent), computed once
  /// per solve. The automatic beta range then starts cold enough to keep it (hot = ln 2 / the 1 %
  /// quantile of the uphill moves sampled at that answer), and a read whose annealed and descended
  /// state is not lower returns the start: sa is never worse than greedy with it.
  kGreedy,
};

struct AnnealOptions {
  /// Sweeps per read (one sweep = about n move attempts). >= 1, or 0 for automatic_num_sweeps():
  /// 1000, fewer for dense models above 5000 variables (reported in info["sweeps"]).
  int num_sweeps = 0;
  AnnealSchedule schedule = AnnealSchedule::kGeometric;
  SweepOrder order = SweepOrder::kSequential;
  /// (hot, cold) inverse temperatures, both finite and > 0, hot <= cold. When absent it is derived
  /// from the coefficients: hot = ln 2 / (largest possible single-flip cost), cold = ln 100 /
  /// (smallest non-zero coefficient), so the costliest flip is accepted with probability 1/2 at the
  /// start and the cheapest non-zero one with probability 1/100 at the end (the idea of
  /// dwave-samplers' default_beta_range). The range used is reported in
  /// SolveResult::info["beta_range"].
  std::optional<std::pair<double, double>> beta_range;
  /// kAuto picks, in this order: the exact integer kernel when the coefficients qualify (a quarter
  /// of float's row traffic with int8 rows, and no exp per attempt); float when every field the
  /// kernel can hold is exact in float (integer coefficients whose row sums stay below 2^22), or
  /// when float rounding of a field times the cold beta stays below 1e-3; else double. The choice
  /// and its reason go to info["precision"].
  AnnealPrecision precision = AnnealPrecision::kAuto;
  /// The kernel's coupling layout, whatever the model's storage: kDense (padded rows, one
  /// vectorised row update per accepted move), kSparse (CSR, the row's non-zeros), or kAuto: the
  /// one with the smaller measured cost per accepted move for this n, density and weight type
  /// (info["kernel_choice"]). Both give the same samples for the same seed.
  Storage kernel_storage = Storage::kAuto;
  AnnealStart start = AnnealStart::kAuto;
  /// Finish each read with a greedy descent (best single flip, or best swap in the native
  /// constraint mode) until no move improves the energy.
  bool greedy_descent = true;

  /// Throws InvalidArgument naming the field and the violated bound.
  void validate() const;
};

class SimulatedAnnealing final : public Solver {
 public:
  explicit SimulatedAnnealing(AnnealOptions options = {});
  [[nodiscard]] std::string name() const override { return "sa"; }
  /// Each read is one pass of the schedule; with SolveOptions::reads_until_time_limit new reads
  /// start until the limit. The limit is checked before every sweep; a read it cuts short ends
  /// with its descent only while no read has completed (never after an interrupt), so the run
  /// ends within a few percent of the limit. kCompleted when every requested read ran all its
  /// sweeps.
  /// Counters: "flip_attempts" (attempted flips or swaps, all reads), "accepted_moves",
  /// "anneal_time_s" (time in the sweeps, summed over reads), "attempts_per_s" (flip_attempts /
  /// anneal_time_s: one thread's kernel speed), "ns_per_attempt" (its inverse, in ns),
  /// "descent_time_s" (time in the closing descents, summed over reads), "reads" (started),
  /// "reads_completed" (ran all sweeps), "start_time_s" (the greedy start, once per solve),
  /// "reads_kept_start" (reads that returned the greedy start). Info: "constraint_mode",
  /// "beta_range", "precision", "kernel", "sweeps", "start".
  [[nodiscard]] SolveResult solve(const QuboModel& model,
                                  const SolveOptions& options) const override;
  [[nodiscard]] const AnnealOptions& options() const { return options_; }

 private:
  AnnealOptions options_;
};

/// The sweep count of AnnealOptions::num_sweeps = 0. A sweep of a dense model costs about n
/// attempts x (accepted fraction) x n row entries, so up to n = 5000 it is 1000 sweeps (~2.5e10 row
/// entries), and above it the count that keeps that work, 1000 (5000 / n)^2, but at least 100: at
/// n = 18944 (an MLP layer of a 7B model) 100 sweeps, ~50 s per read on the 2-core build machine
/// instead of ~500 s. Sparse models (cost per accepted move = the row's degree) always get 1000.
[[nodiscard]] int automatic_num_sweeps(int num_variables, bool dense);

/// The automatic (hot, cold) inverse-temperature range of `model` described at
/// AnnealOptions::beta_range. A model without any non-zero coefficient gets (1, 1).
[[nodiscard]] std::pair<double, double> default_beta_range(const QuboModel& model);

}  // namespace qprune
