// libFuzzer entry point for one reader. Compiled once and linked into every target with a one-line
// source that defines qprune_fuzz_target, the reader's name (tests/fuzz/CMakeLists.txt). The input
// bytes are written to a per-process file and the reader runs on it: the readers take paths (they
// map or decompress files), and that path is what users run. qprune::Error is the expected way to
// reject input; anything else escapes and libFuzzer reports it.
//
// LLVMFuzzerCustomMutator hands a share of the mutations to the structure-aware mutators of
// mutators.cpp (deep nesting, repeated keys, huge declared sizes, gzip bombs, one part of a
// checkpoint input at a time); the rest, and any they decline, are libFuzzer's own (with -dict).
#include <unistd.h>

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

// A file name private to this process: in $TMPDIR, else /dev/shm (memory), else /tmp.
std::filesystem::path input_path() {
  std::filesystem::path dir = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
    dir = tmp;
  } else if (std::filesystem::is_directory("/dev/shm")) {
    dir = "/dev/shm";
  }
  return dir / ("qprune_fuzz_" + std::to_string(::getpid()) + "_" + qprune_fuzz_target);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path = [] {
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove(input_path(), ignored);
      // The checkpoint target's folder (fuzz_readers.hpp, checkpoint_folder_of).
      std::filesystem::remove_all(
          "/dev/shm/qprune_fuzz_checkpoint_" + std::to_string(::getpid()), ignored);
    });
    return input_path();
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  try {
    qprune::fuzz::read_with(qprune_fuzz_target, path);
  } catch (const qprune::Error& e) {
    // QPRUNE_FUZZ_VERBOSE=1: say why an input was rejected (to check that seeds get deep).
    static const bool verbose = std::getenv("QPRUNE_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
  }
  return 0;
}

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  qprune::fuzz::Rng rng(seed);
  std::optional<std::string> out;
  try {
    out = qprune::fuzz::mutate(qprune_fuzz_target,
                               std::string(reinterpret_cast<const char*>(data), size), max_size, rng);
  } catch (const std::bad_alloc&) {  // a mutation too large for the malloc limit: skip it
  }
  if (!out || out->size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, out->data(), out->size());
  return out->size();
}
