// The process's interrupt flag (qprune/interrupt.hpp): one atomic pointer, read by every thread.
#include "qprune/interrupt.hpp"

#include <string>

#include "qprune/error.hpp"

namespace qprune {
namespace {

std::atomic<const std::atomic<bool>*> g_flag{nullptr};

}  // namespace

void set_interrupt_flag(const std::atomic<bool>* flag) { g_flag.store(flag); }

const std::atomic<bool>* interrupt_flag() { return g_flag.load(); }

bool interrupt_requested() {
  const std::atomic<bool>* flag = g_flag.load(std::memory_order_relaxed);
  return flag != nullptr && flag->load(std::memory_order_relaxed);
}

void throw_if_interrupted(const char* what) {
  if (interrupt_requested()) throw Interrupted(std::string("stopped while ") + what);
}

}  // namespace qprune
