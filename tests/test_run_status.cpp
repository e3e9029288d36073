// RunStatus (qprune/run_status.hpp): the text of every value is what masks files and comparison
// outputs hold, so it is pinned here; reading it back gives the value, and an unknown name is an
// InvalidArgument that lists the names.
#include <doctest/doctest.h>

#include <string>
#include <type_traits>

#include "qprune/error.hpp"
#include "qprune/run_status.hpp"
#include "qprune/solver.hpp"

using namespace qprune;

static_assert(std::is_same_v<SolveStatus, RunStatus>, "the solver layer's name for RunStatus");

TEST_CASE("RunStatus: the file text of each value, and back") {
  const std::pair<RunStatus, const char*> names[] = {
      {RunStatus::kNotRun, "not_run"},
      {RunStatus::kOptimal, "optimal"},
      {RunStatus::kCompleted, "completed"},
      {RunStatus::kTimeLimit, "time_limit"},
      {RunStatus::kTargetReached, "target_reached"},
      {RunStatus::kInterrupted, "interrupted"},
      {RunStatus::kImported, "imported"},
      {RunStatus::kImportedRepaired, "imported_repaired"},
      {RunStatus::kSkipped, "skipped"},
      {RunStatus::kError, "error"},
  };
  for (const auto& [status, name] : names) {
    CAPTURE(name);
    CHECK(to_string(status) == name);
    CHECK(run_status_from_string(name) == status);
  }
}

TEST_CASE("RunStatus: an unknown name throws InvalidArgument listing the names") {
  for (const char* bad : {"banana", "", "Completed", "time-limit", "completed "}) {
    CAPTURE(bad);
    try {
      (void)run_status_from_string(bad);
      FAIL("no exception");
    } catch (const InvalidArgument& e) {
      const std::string what = e.what();
      CHECK(what.find("'" + std::string(bad) + "'") != std::string::npos);
      CHECK(what.find("not_run, optimal, completed, time_limit, target_reached, interrupted, "
                      "imported, imported_repaired, skipped, error") != std::string::npos);
    }
  }
}
