// SIGINT/SIGTERM handling for long runs: the first signal sets a flag that solvers poll (they stop
// and keep their best answer, status `interrupted`); a second signal ends the process at once.
#pragma once

#include <atomic>

namespace qprune::cli {

/// Installs the handlers (idempotent) and returns the flag to pass as SolveOptions::interrupt.
const std::atomic<bool>* install_interrupt_handler();

}  // namespace qprune::cli
