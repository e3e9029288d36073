// Signal handlers: only async-signal-safe work (an atomic store, _exit).
#include "cli/interrupt.hpp"

#include <unistd.h>

#include <csignal>

#include "cli/exit_codes.hpp"
#include "qprune/interrupt.hpp"

namespace qprune::cli {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the handler needs a lock-free flag");

extern "C" void on_signal(int) {
  // Second signal: end now, with the same exit code as an orderly interrupt.
  if (g_interrupted.exchange(true)) _exit(kExitInterrupted);
}

}  // namespace

const std::atomic<bool>* install_interrupt_handler() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // a read or write in progress continues
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    set_interrupt_flag(&g_interrupted);
    return true;
  }();
  (void)installed;
  return &g_interrupted;
}

}  // namespace qprune::cli
