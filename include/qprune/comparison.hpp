// Comparing solvers: every solver on every instance for every seed, then per (solver, instance)
// metrics against a reference value (a published optimum or best-known value, else a proven
// optimum from this run, else the best energy any solver found), success probability and time to
// solution with 99% confidence. The CLI's `qprune compare` is a thin shell over this header; the
// CSV and SVG writers live here too so that benchmarks can produce the same files.
//
// Energies follow the one qprune convention (minimise E(x), see qubo_model.hpp); published
// maximisation values are converted on read of the reference table (energy = -value).
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 4
#error \
    "include/qprune/comparison.hpp is in the workflows layer; a lower layer (core, problems, solver) may not include it"
#endif

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qprune/job_runner.hpp"
#include "qprune/run_status.hpp"
#include "qprune/solvers.hpp"

namespace qprune {

// ---------------------------------------------------------------------------------------------
// Instances

/// One problem of a comparison. `load` builds the model on demand, so a loader for other kinds of
/// instance (e.g. a checkpoint layer `CKPT:...`) only has to fill this struct.
struct Instance {
  std::string spec;  ///< what the user wrote: `bqp50.txt#1`, `gka1b.sparse`, ...
  std::string name;  ///< the name matched against the reference table (see instance_name)
  std::function<QuboModel()> load;
};

/// Turns a spec into an Instance, or returns nullopt when the spec is not of its kind.
using InstanceLoader = std::function<std::optional<Instance>(const std::string& spec)>;

/// Registers a loader tried (in registration order) before the QUBO-file loader. Specs such as
/// `CKPT:layer=5:unit=mlp:sparsity=0.4` are meant to be served this way.
void register_instance_loader(InstanceLoader loader);

/// The Instance for `spec`: the first registered loader that accepts it, else a QUBO file in any
/// readable format (`file#k` for instance k of a multi-instance file). Does not read the file.
[[nodiscard]] Instance make_instance(const std::string& spec);

/// The reference-table name of a QUBO-file spec: the file name without a trailing `.gz` and
/// without its last extension when that is a format's extension (formats()) or `.txt`, then `.k`
/// appended when the spec ends in `#k`. `dir/bqp50.txt#1` -> `bqp50.1`, `gka1b.sparse` ->
/// `gka1b`, `be100.1.sparse` -> `be100.1`, `bqp500.gz#2` -> `bqp500.2`, `G1.txt` -> `G1`,
/// `g05_60.0` -> `g05_60.0`.
[[nodiscard]] std::string instance_name(const std::string& spec);

// ---------------------------------------------------------------------------------------------
// Reference values

/// One row of a known-values table (`family,instance,n,sense,value,status,source`).
struct KnownValue {
  std::string family;
  std::string instance;
  int num_variables = 0;
  bool maximise = false;  ///< sense `max`: the model's energy is -value
  double value = 0.0;     ///< as published
  bool optimal = false;   ///< status `optimal` (else `best-known`)
  std::string source;
  /// The value in qprune's minimisation convention.
  [[nodiscard]] double energy() const { return maximise ? -value : value; }
};

/// Reads a known-values CSV keyed by instance name. The header must be exactly
/// `family,instance,n,sense,value,status,source`; the source field may contain commas (it is the
/// rest of the line). Throws IoError, or ParseError (`path:line: expected ..., found ...`) for a
/// bad header, sense other than min/max, status other than optimal/best-known, a bad number or a
/// duplicate instance name.
[[nodiscard]] std::map<std::string, KnownValue> read_known_values(const std::string& path);

enum class ReferenceKind {
  kNone,          ///< no run found a solution and no value is known
  kKnownOptimal,  ///< from the table, status optimal
  kKnownBest,     ///< from the table, status best-known
  kExact,         ///< a run of this comparison proved it optimal (status kOptimal)
  kBestFound,     ///< the best feasible energy any run found
};
/// "none", "known_optimal", "known_best", "exact", "best_found".
[[nodiscard]] std::string_view to_string(ReferenceKind kind);

struct Reference {
  ReferenceKind kind = ReferenceKind::kNone;
  double energy = std::numeric_limits<double>::quiet_NaN();
  std::string source;  ///< table source, or the solver and seed that found it
};

// ---------------------------------------------------------------------------------------------
// Runs and metrics

/// One run: one solver on one instance with one seed. Enough to replay it (with the options the
/// comparison was given) and to compute every metric.
struct RunRecord {
  int index = 0;              ///< position in the comparison (0-based), the `--run K` of a replay
  std::string solver;         ///< label as listed: `sa`, `qaoa:p2`, ...
  std::string solver_name;    ///< make_solver name: `sa`, `qaoa`
  std::string instance;       ///< Instance::name
  std::string instance_spec;  ///< Instance::spec
  int num_variables = 0;
  bool has_constraints = false;
  std::uint64_t seed = 0;
  /// The solver's status, or kSkipped (ResourceError, or over max_variables) / kError (the
  /// solver threw); kNotRun for a run an interrupt kept from starting.
  RunStatus status = RunStatus::kNotRun;
  std::string message;
  bool has_solution = false;
  double energy = std::numeric_limits<double>::quiet_NaN();  ///< best sample's energy
  bool feasible = false;
  double wall_time_s = 0.0;
  int threads = 1;  ///< OpenMP threads the run could use
  std::map<std::string, double> counters;
  std::map<std::string, std::string> info;
  Assignment best_x;  ///< the best sample (empty without a solution)
  /// Best-so-far trace for time-to-target plots: each time the solver's progress reports a lower
  /// best energy, the seconds since the run started and that energy.
  std::vector<double> trace_time_s;
  std::vector<double> trace_energy;
};

/// Success tolerance: a run succeeds when it is feasible and E <= ref + absolute + relative |ref|.
struct Tolerance {
  double relative = 1e-9;
  double absolute = 1e-9;
  [[nodiscard]] double of(double reference) const;
};

/// Metrics of one (solver, instance) cell.
struct CellSummary {
  std::string solver;
  std::string instance;
  int num_variables = 0;
  int runs = 0;           ///< runs attempted (skipped/error included)
  int runs_solved = 0;    ///< runs that returned a solution
  int runs_feasible = 0;  ///< runs whose best sample is feasible
  double best = std::numeric_limits<double>::quiet_NaN();    ///< over feasible runs
  double median = std::numeric_limits<double>::quiet_NaN();  ///< mean of the middle two if even
  double worst = std::numeric_limits<double>::quiet_NaN();
  Reference reference;
  double best_gap_abs = std::numeric_limits<double>::quiet_NaN();    ///< best - reference
  double best_gap_rel = std::numeric_limits<double>::quiet_NaN();    ///< / |reference|
  double median_gap_rel = std::numeric_limits<double>::quiet_NaN();  ///< (median - ref) / |ref|
  double success_probability = 0.0;  ///< successful runs / runs that ran (not skipped)
  double median_time_s = std::numeric_limits<double>::quiet_NaN();
  double tts99_s = std::numeric_limits<double>::infinity();
  double feasibility_rate = std::numeric_limits<double>::quiet_NaN();  ///< feasible / solved
  int threads = 1;
  /// Means over runs of the QAOA counters (only runs simulated directly, without decomposition):
  /// "layers", "expected_energy", "approximation_ratio", "optimum_probability". Empty otherwise.
  std::map<std::string, double> qaoa;
  std::string note;  ///< e.g. "skipped: ..." when no run ran
};

/// Median of `values` (mean of the middle two for an even count); NaN when empty.
[[nodiscard]] double median(std::vector<double> values);

/// Time to reach the target with 99% confidence from one run's time t and success probability p:
/// t * R with R = ln(0.01) / ln(1 - p), at least one run (R = 1 for p >= 0.99, p = 1 included),
/// and infinity for p = 0. Throws InvalidArgument for p outside [0, 1] or t < 0.
[[nodiscard]] double tts99(double time_s, double success_probability);

/// The reference of one instance, in this order: the table's value (optimal, then best-known)
/// when `known` is given, else the energy of a run with status `optimal`, else the best feasible
/// energy of any run. `runs` are the runs of that instance (any solver).
[[nodiscard]] Reference select_reference(const std::vector<RunRecord>& runs,
                                         const std::optional<KnownValue>& known);

/// Relative gap (E - ref) / |ref|; NaN when ref is 0 or not finite.
[[nodiscard]] double relative_gap(double energy, double reference);

/// Whether a run counts as a success against `reference`.
[[nodiscard]] bool is_success(const RunRecord& run, const Reference& reference,
                              const Tolerance& tolerance);

/// Metrics of the runs of one cell (all the same solver and instance) against `reference`.
[[nodiscard]] CellSummary summarize_cell(const std::vector<RunRecord>& runs,
                                         const Reference& reference, const Tolerance& tolerance);

// ---------------------------------------------------------------------------------------------
// Running a comparison

/// One entry of the solver list: `NAME` or, for QAOA at a given depth, `qaoa:pK` (layers = K).
struct SolverSpec {
  std::string label;  ///< as written (lower case)
  std::string name;   ///< make_solver name
  std::optional<int> qaoa_layers;
};
/// Parses a spec; throws InvalidArgument listing the solver names for an unknown one.
[[nodiscard]] SolverSpec parse_solver_spec(const std::string& text);

struct ComparisonOptions {
  std::vector<SolverSpec> solvers;
  SolverSettings settings;  ///< each solver's options (qaoa layers overridden by a `qaoa:pK` spec)
  SolveOptions solve;  ///< common options; `seed` is the first seed, run k of a cell uses seed+k
  int num_seeds = 5;   ///< runs per (solver, instance), >= 1
  /// Cells (one solver, instance and seed) run at once, >= 0; 0: every core (one thread each).
  int jobs = 0;
  /// OpenMP threads of each run, >= 0; 0: cores / jobs (at least 1). jobs * threads_per_run is
  /// at most the number of cores, so runs never compete for cores within the comparison: with the
  /// default every run is single-threaded, and `jobs = 1` gives each run every core.
  int threads_per_run = 0;
  /// Skip (status `skipped`) a solver on instances with more variables than this; keyed by label
  /// (`qaoa:p2`) or by solver name (`qaoa`, then every QAOA depth), the label winning.
  std::map<std::string, int> max_variables;
  Tolerance tolerance;
  /// Called after each run (from the worker thread, serialised by a mutex): done, total, run.
  std::function<void(int, int, const RunRecord&)> progress;
  /// Not owned. When it has more than one process, the cells are spread over its processes
  /// (largest instances first) instead of `jobs` threads: each process runs one cell at a time
  /// with `threads_per_run` threads (0: all its threads), and only the coordinator gets the runs
  /// (the others get an empty report). Null or one process: the threads above.
  JobRunner* runner = nullptr;
  /// Throws InvalidArgument naming the field and the bound.
  void validate() const;
};

struct ComparisonReport {
  std::vector<RunRecord> runs;                  ///< instance-major, then solver, then seed
  std::vector<CellSummary> summaries;           ///< instance-major, then solver
  std::map<std::string, Reference> references;  ///< by instance name
  int jobs = 1;
  int threads_per_run = 1;
  bool interrupted = false;
};

/// Runs the comparison. Models are loaded once, sequentially, before any run; load errors
/// propagate (IoError, ParseError). A run whose solver throws ResourceError is recorded as
/// `skipped`, any other qprune::Error as `error`; the comparison goes on. When
/// `options.solve.interrupt` becomes true the runs not started yet stay `not_run`.
[[nodiscard]] ComparisonReport run_comparison(const std::vector<Instance>& instances,
                                              const ComparisonOptions& options,
                                              const std::map<std::string, KnownValue>& known = {});

/// Runs one run of a comparison again, in the calling thread: the solver `spec` with `settings`
/// and `solve` (whose seed is the run's) on `model`. Never throws for solver errors: they end in
/// the record's status as in run_comparison.
[[nodiscard]] RunRecord run_one(const QuboModel& model, const SolverSpec& spec,
                                const SolverSettings& settings, const SolveOptions& solve);

/// Recomputes summaries and references from the runs (after editing runs, or for tests).
void summarize(ComparisonReport& report, const std::map<std::string, KnownValue>& known,
               const Tolerance& tolerance);

// ---------------------------------------------------------------------------------------------
// Output files (the JSON record lives in the CLI, which knows the command line)

/// runs.csv: one row per run. Columns: run,instance,instance_spec,n,solver,seed,status,energy,
/// feasible,wall_time_s,threads,gap_abs,gap_rel,success,message.
[[nodiscard]] std::string runs_csv(const ComparisonReport& report, const Tolerance& tolerance);
/// summary.csv: one row per (solver, instance). Columns: solver,instance,n,runs,runs_solved,
/// best,median,worst,reference,reference_kind,best_gap_abs,best_gap_rel,median_gap_rel,
/// success_probability,median_time_s,tts99_s,feasibility_rate,threads,qaoa_layers,
/// qaoa_expected_energy,qaoa_approximation_ratio,qaoa_optimum_probability,note.
[[nodiscard]] std::string summary_csv(const ComparisonReport& report);
/// SVG scatter of every run: wall time (log x) against relative gap to the reference, by solver.
[[nodiscard]] std::string gap_vs_time_svg(const ComparisonReport& report);
/// SVG grouped bars: success probability per instance, one bar per solver.
[[nodiscard]] std::string success_svg(const ComparisonReport& report);
/// SVG grouped bars on a log axis: TTS99 per instance and solver (infinite ones marked).
[[nodiscard]] std::string tts_svg(const ComparisonReport& report);

}  // namespace qprune
