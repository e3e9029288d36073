// Limits up front: before a solver or a problem builder allocates a structure that grows with the
// square of the problem (a dense coupling matrix, a solver's compiled copy, a statevector), it asks
// whether the bytes fit, and refuses with a ResourceError that says what it needs, what is
// available and what to change, instead of failing later in the allocator or the OOM killer.
// The default budget is MemAvailable of /proc/meminfo at the time of the call; a caller may give
// a smaller (or larger) one, which is also how tests exercise the refusal without allocating.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace qprune::detail {

/// MemAvailable of /proc/meminfo in bytes; 0 when unknown (no /proc, or no such line).
[[nodiscard]] std::uint64_t available_memory_bytes();

/// Bytes as GiB rounded to 2 decimals, for messages.
[[nodiscard]] double bytes_to_gib(double bytes);

/// Bytes of an n x n matrix of `element_bytes`-byte entries (as double: no overflow for any int n).
[[nodiscard]] inline double square_bytes(std::int64_t n, double element_bytes) {
  return static_cast<double>(n) * static_cast<double>(n) * element_bytes;
}

/// Throws ResourceError when `bytes` exceed `limit_bytes` (default: available_memory_bytes(); no
/// check when that is unknown). The message reads "<what> needs X GiB but only Y GiB are available
/// (<where the limit came from>); <advice>".
void check_memory(double bytes, const std::string& what, const std::string& advice,
                  std::optional<std::uint64_t> limit_bytes = std::nullopt);

}  // namespace qprune::detail
