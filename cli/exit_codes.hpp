// Exit codes of the qprune program (documented in `qprune --help` and README.md), and the one
// mapping from an error to its exit code and its stderr wording.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/exit_codes.hpp is part of the cli program; no library layer may include it"
#endif

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "qprune/error.hpp"

namespace qprune::cli {

inline constexpr int kExitOk = 0;        ///< success
inline constexpr int kExitFailure = 1;   ///< an unexpected internal error
inline constexpr int kExitBadInput = 2;  ///< bad usage, malformed file, invalid option value
inline constexpr int kExitIo = 3;        ///< a file could not be read or written
inline constexpr int kExitResource = 4;  ///< the request needs more memory/time than allowed
/// stopped by a signal: the best answer so far was written (solve, mask's finished layers), or,
/// for work without one (apply, calibrate, prune, ...), nothing
inline constexpr int kExitInterrupted = 5;

/// The exit code of an error: bad input for ParseError and InvalidArgument, kExitIo, kExitResource
/// (also for std::bad_alloc and std::length_error: memory ran out, or a container was asked for
/// more elements than it can hold, where no up-front check predicted it), kExitInterrupted for
/// Interrupted, and kExitFailure for anything that is not a documented qprune error.
[[nodiscard]] inline int exit_code_for(const std::exception& e) {
  if (dynamic_cast<const Interrupted*>(&e) != nullptr) return kExitInterrupted;
  if (dynamic_cast<const ParseError*>(&e) != nullptr) return kExitBadInput;
  if (dynamic_cast<const InvalidArgument*>(&e) != nullptr) return kExitBadInput;
  if (dynamic_cast<const IoError*>(&e) != nullptr) return kExitIo;
  if (dynamic_cast<const ResourceError*>(&e) != nullptr) return kExitResource;
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return kExitResource;
  if (dynamic_cast<const std::length_error*>(&e) != nullptr) return kExitResource;
  return kExitFailure;
}

/// "error" for documented errors, "internal error" for the rest (the word after "qprune: ").
[[nodiscard]] inline const char* error_kind(int exit_code) {
  if (exit_code == kExitInterrupted) return "interrupted";
  return exit_code == kExitFailure ? "internal error" : "error";
}

/// The stderr text of an error. Documented errors say what they say; a std::bad_alloc or
/// std::length_error that escaped every allocation boundary (they name what they allocate; see
/// allocation_context in core/memory_check.hpp) still says that memory ran out, in
/// which command, and how much memory is left under which limit.
[[nodiscard]] std::string error_message(const std::exception& e, const std::string& command);

}  // namespace qprune::cli
