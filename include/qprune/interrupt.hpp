// The process's interrupt flag, seen by long library loops that have no options struct to carry
// it (Gram products, forward passes, checkpoint writing). The qprune program points it at the flag
// its SIGINT/SIGTERM handler raises; a library user may point it at their own. Solvers keep taking
// SolveOptions::interrupt and end with status `interrupted`; work without a best-so-far answer
// calls throw_if_interrupted() at block granularity (a column block of a Gram product, one
// forward layer, one tensor written) and stops with qprune::Interrupted.
#pragma once

#include <atomic>

namespace qprune {

/// Makes `flag` the process's interrupt flag (nullptr: none, the default). Not owned; it must
/// outlive every call that may poll it.
void set_interrupt_flag(const std::atomic<bool>* flag);

/// The flag set by set_interrupt_flag, or nullptr.
[[nodiscard]] const std::atomic<bool>* interrupt_flag();

/// True when the process's interrupt flag is set and raised (a relaxed load: cheap enough to call
/// between blocks of a few milliseconds of work).
[[nodiscard]] bool interrupt_requested();

/// Throws qprune::Interrupted("stopped while <what>") when interrupt_requested().
void throw_if_interrupted(const char* what);

}  // namespace qprune
