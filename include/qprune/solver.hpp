// The solver interface: every solver (exact, greedy, random, sa, tabu, qaoa, ...) is chosen by name
// at run time through make_solver() and answers with the same SolveResult. Options common to all
// solvers live in SolveOptions; each solver's own options are a plain struct in its header,
// gathered in SolverSettings.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/solver.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qprune/qubo_model.hpp"
#include "qprune/run_status.hpp"

namespace qprune {

/// The solver layer's name for RunStatus (qprune/run_status.hpp): how a search ended. A solver
/// ends with kOptimal, kCompleted, kTimeLimit, kTargetReached or kInterrupted (kNotRun only in a
/// default-constructed result); the other values belong to the workflows. Whether the call worked
/// at all is separate: failures throw qprune::Error.
using SolveStatus = RunStatus;

/// How a solver treats the model's constraint groups.
enum class ConstraintMode {
  kAuto,     ///< the solver's native feasible moves when it has them, else the penalty form
  kNative,   ///< only feasible assignments (swap moves, feasible enumeration); error if unsupported
  kPenalty,  ///< solve QuboModel::penalized(); samples may be infeasible and say so
};
[[nodiscard]] std::string_view to_string(ConstraintMode mode);

/// One progress report of a running solve (see SolveOptions::progress).
struct SolveProgress {
  /// What is running, e.g. "sa reads", "exact chunks", "qaoa p=2", "qaoa decomposition". Valid
  /// only during the call: copy it to keep it.
  std::string_view stage;
  std::int64_t done = 0;  ///< units of work finished in this stage; non-decreasing within it
  /// Units of work of this stage, done <= total; 0 when the stage is open-ended (reads until the
  /// time limit, SolveOptions::reads_until_time_limit).
  std::int64_t total = 0;
  /// Energy (QuboModel::energy) of the best assignment the solver has finished so far, ranked as
  /// SolveResult ranks its samples (feasible first); NaN when there is none yet. The result's best
  /// sample is never worse than it. (qaoa decomposition: its current assignment, with the penalty
  /// terms in ConstraintMode::kPenalty.)
  double best_energy = std::numeric_limits<double>::quiet_NaN();
  /// The optimiser's best objective so far where the stage optimises something other than one
  /// assignment's energy (QAOA: the expected energy <C> in model units); NaN otherwise.
  double objective = std::numeric_limits<double>::quiet_NaN();
};

/// Options every solver understands.
struct SolveOptions {
  std::uint64_t seed = 0;  ///< run seed; read r uses a stream derived from (seed, r)
  /// Wall-clock limit of the search, > 0, measured from the start of solve() and checked inside
  /// the reads (between sweeps, tabu iterations, descent moves, enumeration blocks, QAOA
  /// evaluations), so a run ends within a few percent of it; reads that have not started by then
  /// never start. A run the limit ended has status kTimeLimit.
  double time_limit_s = std::numeric_limits<double>::infinity();
  int num_reads = 1;  ///< independent reads / restarts, >= 1 (see reads_until_time_limit)
  /// Reads keep starting, one after another on every thread, until time_limit_s (or an interrupt
  /// or the target) ends the run; num_reads is then ignored. This is the "use the budget"
  /// semantics of MQLib's -r and what `qprune solve --time-limit` without --reads does for sa and
  /// tabu. Read r still draws from (seed, r), but how many reads run depends on the machine.
  /// Needs a finite time_limit_s.
  bool reads_until_time_limit = false;
  std::optional<double> target_energy;  ///< stop as soon as a sample has energy <= this
  ConstraintMode constraint_mode = ConstraintMode::kAuto;
  std::optional<double>
      penalty_weight;     ///< for kPenalty; default QuboModel::default_penalty_weight
  int max_samples = 100;  ///< distinct samples kept in the result, >= 1
  const std::atomic<bool>* interrupt = nullptr;  ///< polled; true stops the search (kInterrupted)
  /// Bytes the solver's own copies of the problem (a penalised model, a dense compiled matrix, a
  /// statevector) may take; checked before allocating, ResourceError when exceeded. Default: the
  /// MemAvailable of /proc/meminfo at the time of the call (no check where that is unknown).
  std::optional<std::uint64_t> memory_limit_bytes;
  /// Called at the solver's natural points: after each read (sa, tabu, greedy, random), each
  /// enumeration chunk (exact), each objective evaluation and each decomposition round (qaoa).
  /// May be empty. The solver serialises the calls (never two at once, though possibly from
  /// different threads), so the callback needs no lock of its own; it runs inside the search, so
  /// it must be cheap (throttle any printing) and must not throw. A stage that completes ends with
  /// done == total; a stopped search (time limit, interrupt, target) may end a stage early.
  std::function<void(const SolveProgress&)> progress;
  /// Solve each connected component of the coupling graph (a constraint group counts as
  /// connected) on its own: components of at most 24 variables exactly, the others with the
  /// chosen solver, each with a seed derived from (seed, component); the result joins the parts'
  /// samples, its status is the weakest of the parts' (optimal when every part is proven) and
  /// info["components"] says how it was split. Honoured by the solvers make_solver() builds. Off
  /// by default: a connected model (every pruning layer) gains nothing, and on split models the
  /// parts' solvers change which samples come back (BENCHMARKS.md, "Issue 16: Boost.Graph uses").
  bool split_components = false;
  /// Throws InvalidArgument naming the field and the violated bound.
  void validate() const;
};

/// One assignment with its energy (always recomputed with QuboModel::energy) and feasibility.
struct Sample {
  Assignment x;
  double energy = std::numeric_limits<double>::quiet_NaN();
  bool feasible = true;
  int num_occurrences = 1;  ///< reads that ended in this assignment
};

/// What a solve returned. Samples are sorted best first: feasible before infeasible, then by
/// energy.
struct SolveResult {
  std::string solver;
  SolveStatus status = SolveStatus::kNotRun;
  std::string message = "no solver has run";
  std::vector<Sample> samples;
  std::uint64_t seed = 0;
  double wall_time_s = 0.0;
  /// Counters with units in their names: "flip_attempts", "anneal_time_s", "attempts_per_s",
  /// "states_enumerated". A rate divides by the time counter it names (sa: attempts_per_s =
  /// flip_attempts / anneal_time_s; tabu: iterations_per_s = iterations / search_time_s), and such
  /// times are summed over the reads, so with parallel reads they exceed wall_time_s. Solvers with
  /// reads report "reads" (started) and "reads_completed" (ran their whole work: all sweeps, all
  /// iterations).
  std::map<std::string, double> counters;
  /// Facts about the run as text: "constraint_mode", "beta_range", "penalty_weight".
  std::map<std::string, std::string> info;

  [[nodiscard]] bool has_solution() const { return !samples.empty(); }
  /// The best sample; throws Error when there is none.
  [[nodiscard]] const Sample& best() const;
  /// One line: solver, status, best energy, feasibility, time.
  [[nodiscard]] std::string brief_report() const;
  /// Stable `Key : value` lines of the whole result, for library users' logs (the CLI builds its
  /// own report in cli/, with progress and file details).
  [[nodiscard]] std::string full_report() const;
};

class Solver {
 public:
  virtual ~Solver() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  /// Solves `model`. Throws InvalidArgument for bad options, ResourceError when the problem is too
  /// large for this solver (with what it would need).
  [[nodiscard]] virtual SolveResult solve(const QuboModel& model,
                                          const SolveOptions& options) const = 0;
};

}  // namespace qprune
