// How a unit of work ended: a solve, one layer's mask, a sequential-pruning selection, one run of a
// solver comparison. One enum from the solver up to the files, so the code decides by value
// (`status == RunStatus::kInterrupted`) and the text is written and read in one place
// (to_string / run_status_from_string). Whether a call worked at all is separate: failures throw
// qprune::Error; only a comparison records a run that threw, as kError, and goes on.
#pragma once

#include <string_view>

namespace qprune {

/// How a unit of work ended. The text of each value (to_string) is what masks files, comparison
/// CSV/JSON and the CLI write; it equals the enumerator's name in snake case.
enum class RunStatus {
  kNotRun,            ///< nothing ran (a default-constructed result; a run an interrupt kept out)
  kOptimal,           ///< the answer is proven optimal (exact enumeration)
  kCompleted,         ///< did all the work it was asked to do; no optimality claim
  kTimeLimit,         ///< stopped at the time limit
  kTargetReached,     ///< stopped because a sample reached the target energy
  kInterrupted,       ///< stopped by the interrupt flag (e.g. SIGINT); best so far kept
  kImported,          ///< a mask taken from an external solver's solution as it was
  kImportedRepaired,  ///< a mask taken from an external solution, repaired to be feasible
  kSkipped,  ///< comparison: not run on purpose (ResourceError, or over the variable limit)
  kError,    ///< comparison: the solver threw a qprune::Error; the record's message says what
};

/// "not_run", "optimal", "completed", "time_limit", "target_reached", "interrupted", "imported",
/// "imported_repaired", "skipped", "error".
[[nodiscard]] std::string_view to_string(RunStatus status);

/// The status whose to_string is `name` (exact, lower case). Throws InvalidArgument listing the
/// names.
[[nodiscard]] RunStatus run_status_from_string(std::string_view name);

}  // namespace qprune
