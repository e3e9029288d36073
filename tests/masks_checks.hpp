// Doctest checks on masks shared by the tests that compare two runs of compute_masks (resumed vs
// uninterrupted, multi-process runner vs serial): every field of every entry but the wall time.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>

#include "qprune/masks.hpp"

namespace qprune::test {

/// Entries equal in every field but the solver's wall time, and the same header summary.
inline void check_same_entries(const Masks& got, const Masks& want) {
  REQUIRE(got.entries.size() == want.entries.size());
  for (std::size_t i = 0; i < got.entries.size(); ++i) {
    const LayerMask &g = got.entries[i], &w = want.entries[i];
    CAPTURE(i);
    CHECK(g.layer == w.layer);
    CHECK(g.unit == w.unit);
    CHECK(g.num_units == w.num_units);
    CHECK(g.kept == w.kept);
    CHECK(g.keep == w.keep);
    CHECK(g.objective == w.objective);
    CHECK(g.baseline_objective == w.baseline_objective);
    CHECK(g.feasible == w.feasible);
    CHECK(g.status == w.status);
    CHECK(g.seed == w.seed);
  }
  CHECK(got.objective_source == want.objective_source);
  CHECK(got.approximate == want.approximate);
  CHECK(got.mean_compensation == want.mean_compensation);
}

}  // namespace qprune::test
