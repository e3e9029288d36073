// SIGINT/SIGTERM handling for long runs. The first signal raises one flag: solvers poll it through
// SolveOptions::interrupt (they stop and keep their best answer, status `interrupted`), and the
// library's long loops poll it as the process's interrupt flag (qprune/interrupt.hpp: Gram
// products, forward passes, checkpoint writing), stopping with qprune::Interrupted (exit 5) after
// removing their temporary outputs. A second signal ends the process at once with exit 5
// (_exit: temporary `*.qprune-tmp-*` files or folders of the output being written may then remain
// beside it; the previous output is never touched).
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/interrupt.hpp is part of the cli program; no library layer may include it"
#endif

#include <atomic>

namespace qprune::cli {

/// Installs the handlers (idempotent), makes the flag the process's interrupt flag
/// (qprune::set_interrupt_flag) and returns it, to pass as SolveOptions::interrupt.
const std::atomic<bool>* install_interrupt_handler();

}  // namespace qprune::cli
