// Limits up front: before a solver or a problem builder allocates a structure that grows with the
// square of the problem (a dense coupling matrix, a solver's compiled copy, a statevector), it asks
// whether the bytes fit, and refuses with a ResourceError that says what it needs, what is
// available, which limit applied and what to change, instead of failing later in the allocator or
// the OOM killer. The default budget is the smallest of three limits read at the time of the call:
// MemAvailable of /proc/meminfo, the address-space limit (`ulimit -v`, RLIMIT_AS) minus the
// process's current VmSize, and the cgroup memory limit (v2 memory.max minus memory.current, v1
// memory.limit_in_bytes minus memory.usage_in_bytes). A caller may give its own budget, which is
// also how tests exercise the refusal without allocating.
//
// What no check predicts (an allocation outside the checked structures, fragmentation) still ends
// in std::bad_alloc; `allocation_context` turns it into a ResourceError naming what was being
// allocated, at the few boundaries where the big buffers are made.
#pragma once

#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "qprune/error.hpp"

namespace qprune::detail {

/// The raw readings behind the memory budget; std::nullopt where a source is absent or unlimited.
struct MemoryReadings {
  std::optional<std::uint64_t> mem_available;  ///< MemAvailable of /proc/meminfo
  std::optional<std::uint64_t> address_limit;  ///< RLIMIT_AS soft limit (ulimit -v), bytes
  std::optional<std::uint64_t> vm_size;        ///< VmSize of /proc/self/status, bytes
  std::optional<std::uint64_t> cgroup_limit;   ///< cgroup memory.max / memory.limit_in_bytes
  std::optional<std::uint64_t> cgroup_usage;   ///< cgroup memory.current / memory.usage_in_bytes
};

/// The budget: the bytes a new allocation may take, and which limit set it ("" when none known).
struct MemoryBudget {
  std::optional<std::uint64_t> bytes;
  std::string source;
};

/// The readings of this process now (each source read independently; unreadable -> nullopt).
[[nodiscard]] MemoryReadings read_memory_readings();

/// The smallest of MemAvailable, address limit - VmSize and cgroup limit - usage (each clamped at
/// 0); `source` names the one that applied. Pure: tests inject readings.
[[nodiscard]] MemoryBudget memory_budget(const MemoryReadings& readings);

/// memory_budget(read_memory_readings()).
[[nodiscard]] MemoryBudget current_memory_budget();

/// "memory available now: X GiB (N bytes) (<which limit>)", or "" when no limit is known.
[[nodiscard]] std::string describe_current_budget();

/// The current budget in bytes; 0 when no limit is known (kept for callers that size caches).
[[nodiscard]] std::uint64_t available_memory_bytes();

/// Bytes as GiB rounded to 2 decimals, for messages.
[[nodiscard]] double bytes_to_gib(double bytes);

/// Bytes of an n x n matrix of `element_bytes`-byte entries (as double: no overflow for any int n).
[[nodiscard]] inline double square_bytes(std::int64_t n, double element_bytes) {
  return static_cast<double>(n) * static_cast<double>(n) * element_bytes;
}

/// Throws ResourceError when `bytes` exceed `limit_bytes` (default: current_memory_budget(); no
/// check when no limit is known). The message reads "<what> needs X GiB but only Y GiB are
/// available (<which limit applied>); <advice>".
void check_memory(double bytes, const std::string& what, const std::string& advice,
                  std::optional<std::uint64_t> limit_bytes = std::nullopt);

/// The ResourceError for a std::bad_alloc raised while allocating `what` (`bytes` when known, else
/// < 0): "out of memory while allocating <what> (X GiB); budget now: ... (<limit>)".
[[nodiscard]] ResourceError out_of_memory(const std::string& what, double bytes = -1.0);

/// Runs `f`; a std::bad_alloc (or std::length_error from a container size) escaping it becomes
/// out_of_memory(what, bytes). Used where the big buffers are made, so the CLI's exit 4 message
/// says what was being allocated.
template <class F>
decltype(auto) allocation_context(const std::string& what, double bytes, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const std::bad_alloc&) {
    throw out_of_memory(what, bytes);
  } catch (const std::length_error&) {
    throw out_of_memory(what, bytes);
  }
}

}  // namespace qprune::detail
