// Signal handlers: only async-signal-safe work (an atomic store, signal(), _exit).
#include "cli/interrupt.hpp"

#include <unistd.h>

#include <csignal>

#include "cli/exit_codes.hpp"

namespace qprune::cli {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_signal(int) {
  if (g_interrupted.exchange(true)) _exit(128 + SIGINT);  // second signal: abort now
}

}  // namespace

const std::atomic<bool>* install_interrupt_handler() {
  static const bool installed = [] {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    return true;
  }();
  (void)installed;
  return &g_interrupted;
}

}  // namespace qprune::cli
