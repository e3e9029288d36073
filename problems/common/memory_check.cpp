// The memory budget check shared by the solvers and the pruning problem builders
// (memory_check.hpp).
#include "problems/common/memory_check.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "qprune/error.hpp"

namespace qprune::detail {

std::uint64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

double bytes_to_gib(double bytes) { return std::round(bytes / double(1 << 30) * 100.0) / 100.0; }

void check_memory(double bytes, const std::string& what, const std::string& advice,
                  std::optional<std::uint64_t> limit_bytes) {
  const std::uint64_t limit = limit_bytes ? *limit_bytes : available_memory_bytes();
  if ((limit == 0 && !limit_bytes) || bytes <= static_cast<double>(limit)) return;
  std::ostringstream msg;
  msg << what << " needs " << bytes_to_gib(bytes) << " GiB (" << std::llround(bytes)
      << " bytes) but only " << bytes_to_gib(static_cast<double>(limit)) << " GiB (" << limit
      << " bytes) are available ("
      << (limit_bytes ? "the memory limit given" : "MemAvailable of /proc/meminfo") << "); "
      << advice;
  throw ResourceError(msg.str());
}

}  // namespace qprune::detail
