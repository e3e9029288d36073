// Exit codes of the qprune program (documented in `qprune --help` and README.md).
#pragma once

namespace qprune::cli {

inline constexpr int kExitOk = 0;           ///< success
inline constexpr int kExitFailure = 1;      ///< an unexpected internal error
inline constexpr int kExitBadInput = 2;     ///< bad usage, malformed file, invalid option value
inline constexpr int kExitIo = 3;           ///< a file could not be read or written
inline constexpr int kExitResource = 4;     ///< the request needs more memory/time than allowed
inline constexpr int kExitInterrupted = 5;  ///< stopped by a signal; the best answer so far was written

}  // namespace qprune::cli
