// RunStatus text: the one table between the enum and the words that files and the CLI use.
#include "qprune/run_status.hpp"

#include <array>
#include <cstddef>
#include <string>

#include "qprune/error.hpp"

namespace qprune {
namespace {

// Indexed by the enumerator's value, in declaration order.
constexpr std::array<std::string_view, 10> kNames = {
    "not_run",     "optimal",  "completed",         "time_limit", "target_reached",
    "interrupted", "imported", "imported_repaired", "skipped",    "error"};
static_assert(kNames.size() == static_cast<std::size_t>(RunStatus::kError) + 1,
              "every RunStatus needs its name in kNames");

}  // namespace

std::string_view to_string(RunStatus status) {
  const auto i = static_cast<std::size_t>(status);
  return i < kNames.size() ? kNames[i] : "unknown";
}

RunStatus run_status_from_string(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<RunStatus>(i);
  std::string names;
  for (std::string_view n : kNames) names += (names.empty() ? "" : ", ") + std::string(n);
  throw InvalidArgument("unknown run status '" + std::string(name) + "'; expected one of " + names);
}

}  // namespace qprune
