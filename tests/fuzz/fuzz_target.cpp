// libFuzzer entry point for one reader. Compiled once and linked into every target with a one-line
// source that defines qprune_fuzz_target, the reader's name (tests/fuzz/CMakeLists.txt). The input
// bytes are written to a per-process file and the reader runs on it: the readers take paths (they
// map or decompress files), and that path is what users run. qprune::Error is the expected way to
// reject input; anything else escapes and libFuzzer reports it.
//
// Time: libFuzzer's -timeout is wall-clock, which on a shared machine measures the load more than
// the reader. So each input also gets a CPU-time budget that grows with its size, base + per-byte
// (QPRUNE_FUZZ_CPU_BASE_MS, default 1000; QPRUNE_FUZZ_CPU_US_PER_BYTE, default 2; both 0 turn
// it off): a linear reader stays far inside it at every size (the slowest measured, the json
// reader, about 1.2 us/byte here), while a quadratic pass over a MB-sized input does not (the
// 50,000-key safetensors header: minutes of CPU for 4 MB, budget 9 s). An input over budget
// aborts with a "superlinear time" line, which libFuzzer saves as a crash.
//
// LLVMFuzzerCustomMutator hands a share of the mutations to the structure-aware mutators of
// mutators.cpp (deep nesting, repeated keys, huge declared sizes, gzip bombs, one part of a
// checkpoint input at a time); the rest, and any they decline, are libFuzzer's own (with -dict).
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <optional>
#include <string>

#include "tests/fuzz/fuzz_readers.hpp"
#include "tests/fuzz/mutators.hpp"

// Defined by each target's generated source, e.g. "qbsolv" (a name of fuzz::target_names()).
extern "C" const char qprune_fuzz_target[];

namespace {

// A file name private to this process: in $QPRUNE_FUZZ_SCRATCH (run.sh's per-target folder,
// removed after the target: a crashing process leaves its file), else $TMPDIR, else /dev/shm
// (memory), else /tmp.
std::filesystem::path input_path() {
  std::filesystem::path dir = "/tmp";
  if (const char* scratch = std::getenv("QPRUNE_FUZZ_SCRATCH");
      scratch != nullptr && *scratch != '\0') {
    dir = scratch;
  } else if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
    dir = tmp;
  } else if (std::filesystem::is_directory("/dev/shm")) {
    dir = "/dev/shm";
  }
  return dir / ("qprune_fuzz_" + std::to_string(::getpid()) + "_" + qprune_fuzz_target);
}

double env_number(const char* name, double fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtod(text, nullptr) : fallback;
}

// The CPU-time budget: an ITIMER_PROF timer (CPU time of the process, user + system) armed for
// each input; when it fires the handler writes the prepared message and aborts, so a quadratic
// pass that would run for an hour is stopped at its budget, not at its end.
char budget_message[256];
std::size_t budget_message_length = 0;

void on_budget_exceeded(int /*signal*/) {
  (void)!::write(2, budget_message, budget_message_length);
  std::abort();
}

// Arms the timer for an input of `size` bytes (no-op when the budget is off).
void arm_cpu_budget(std::size_t size) {
  static const double base_ms = env_number("QPRUNE_FUZZ_CPU_BASE_MS", 1000);
  static const double us_per_byte = env_number("QPRUNE_FUZZ_CPU_US_PER_BYTE", 2);
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_budget_exceeded;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGPROF, &action, nullptr) == 0;
  }();
  if (!installed || (base_ms <= 0 && us_per_byte <= 0)) return;
  const double budget = 1e-3 * base_ms + 1e-6 * us_per_byte * static_cast<double>(size);
  const int n = std::snprintf(budget_message, sizeof(budget_message),
                              "==qprune-fuzz== superlinear time: over %.2f s CPU for %zu bytes "
                              "(budget %.0f ms + %.2f us/byte)\n",
                              budget, size, base_ms, us_per_byte);
  budget_message_length =
      n > 0 ? std::min<std::size_t>(static_cast<std::size_t>(n), sizeof(budget_message) - 1) : 0;
  itimerval timer{};
  timer.it_value.tv_sec = static_cast<time_t>(budget);
  timer.it_value.tv_usec = static_cast<suseconds_t>(1e6 * (budget - std::floor(budget)));
  if (timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0) timer.it_value.tv_usec = 1;
  setitimer(ITIMER_PROF, &timer, nullptr);
}

void disarm_cpu_budget() {
  itimerval timer{};
  setitimer(ITIMER_PROF, &timer, nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path = [] {
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove(input_path(), ignored);
      // The checkpoint target's folder (fuzz_readers.hpp, checkpoint_folder_of).
      std::filesystem::remove_all(qprune::fuzz::detail::checkpoint_folder(), ignored);
    });
    return input_path();
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  arm_cpu_budget(size);
  try {
    qprune::fuzz::read_with(qprune_fuzz_target, path);
  } catch (const qprune::Error& e) {
    // QPRUNE_FUZZ_VERBOSE=1: say why an input was rejected (to check that seeds get deep).
    static const bool verbose = std::getenv("QPRUNE_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
  }
  disarm_cpu_budget();
  return 0;
}

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  qprune::fuzz::Rng rng(seed);
  std::optional<std::string> out;
  try {
    out = qprune::fuzz::mutate(
        qprune_fuzz_target, std::string(reinterpret_cast<const char*>(data), size), max_size, rng);
  } catch (const std::bad_alloc&) {  // a mutation too large for the malloc limit: skip it
  }
  if (!out || out->size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, out->data(), out->size());
  return out->size();
}
