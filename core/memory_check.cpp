// The memory budget shared by the solvers and the pruning problem builders (memory_check.hpp):
// readings of /proc, getrlimit and the cgroup files, the pure budget rule, and the messages.
#include "core/memory_check.hpp"

#include <sys/resource.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace qprune::detail {

namespace {

// The value of `key` (e.g. "MemAvailable:") in a /proc file of "Key: value kB" lines, in bytes.
std::optional<std::uint64_t> proc_kb_field(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    std::uint64_t kb = 0;
    if (fields >> kb) return kb * 1024;
    return std::nullopt;
  }
  return std::nullopt;
}

// A cgroup file holding one number of bytes; nullopt when absent, unreadable or "max".
std::optional<std::uint64_t> cgroup_number(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  try {
    std::size_t used = 0;
    const unsigned long long v = std::stoull(text, &used);
    if (used != text.size()) return std::nullopt;
    // cgroup v1 reports "no limit" as a huge page-rounded number (about 2^63).
    if (v >= (1ULL << 62)) return std::nullopt;
    return static_cast<std::uint64_t>(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string gib_text(double bytes) {
  std::ostringstream s;
  s << bytes_to_gib(bytes) << " GiB (" << std::llround(bytes) << " bytes)";
  return s.str();
}

}  // namespace

MemoryReadings read_memory_readings() {
  MemoryReadings r;
  r.mem_available = proc_kb_field("/proc/meminfo", "MemAvailable:");
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    r.address_limit = static_cast<std::uint64_t>(limit.rlim_cur);
    r.vm_size = proc_kb_field("/proc/self/status", "VmSize:");
  }
  // cgroup v2 (unified hierarchy) first; the process's own group is the root of the namespace in
  // a container, which is the usual case, so /sys/fs/cgroup itself is read.
  r.cgroup_limit = cgroup_number("/sys/fs/cgroup/memory.max");
  if (r.cgroup_limit) {
    r.cgroup_usage = cgroup_number("/sys/fs/cgroup/memory.current");
  } else {
    r.cgroup_limit = cgroup_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    if (r.cgroup_limit)
      r.cgroup_usage = cgroup_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  return r;
}

MemoryBudget memory_budget(const MemoryReadings& r) {
  MemoryBudget best;
  const auto consider = [&best](std::uint64_t bytes, std::string source) {
    if (!best.bytes || bytes < *best.bytes) {
      best.bytes = bytes;
      best.source = std::move(source);
    }
  };
  const auto minus = [](std::uint64_t a, std::optional<std::uint64_t> b) {
    return b && *b < a ? a - *b : (b ? 0 : a);
  };
  if (r.mem_available) consider(*r.mem_available, "MemAvailable of /proc/meminfo");
  if (r.address_limit) {
    consider(minus(*r.address_limit, r.vm_size),
             "address-space limit (ulimit -v) of " + gib_text(double(*r.address_limit)) +
                 " minus VmSize " + gib_text(double(r.vm_size.value_or(0))));
  }
  if (r.cgroup_limit) {
    consider(minus(*r.cgroup_limit, r.cgroup_usage),
             "cgroup memory limit of " + gib_text(double(*r.cgroup_limit)) + " minus usage " +
                 gib_text(double(r.cgroup_usage.value_or(0))));
  }
  return best;
}

MemoryBudget current_memory_budget() { return memory_budget(read_memory_readings()); }

std::string describe_current_budget() {
  const MemoryBudget budget = current_memory_budget();
  if (!budget.bytes) return "";
  return "memory available now: " + gib_text(static_cast<double>(*budget.bytes)) + " (" +
         budget.source + ")";
}

std::uint64_t available_memory_bytes() { return current_memory_budget().bytes.value_or(0); }

double bytes_to_gib(double bytes) { return std::round(bytes / double(1 << 30) * 100.0) / 100.0; }

void check_memory(double bytes, const std::string& what, const std::string& advice,
                  std::optional<std::uint64_t> limit_bytes) {
  MemoryBudget budget;
  if (limit_bytes) {
    budget = {limit_bytes, "the memory limit given"};
  } else {
    budget = current_memory_budget();
  }
  if (!budget.bytes || bytes <= static_cast<double>(*budget.bytes)) return;
  std::ostringstream msg;
  msg << what << " needs " << gib_text(bytes) << " but only "
      << gib_text(static_cast<double>(*budget.bytes)) << " are available (" << budget.source
      << "); " << advice;
  throw ResourceError(msg.str());
}

ResourceError out_of_memory(const std::string& what, double bytes) {
  std::string msg = "out of memory while allocating " + what;
  if (bytes >= 0.0) msg += " (" + gib_text(bytes) + ")";
  const std::string budget = describe_current_budget();
  if (!budget.empty()) msg += "; " + budget;
  return ResourceError(msg);
}

}  // namespace qprune::detail
