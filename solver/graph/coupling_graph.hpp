// The coupling graph of a QuboModel: one vertex per variable, an edge per non-zero coupling q_ij,
// and every constraint group one connected block (its members interact through the constraint
// even where no q_ij joins them). Its connected components let a solve split a model into
// independent parts (solver/graph/component_solve.hpp). Two other uses were measured and dropped
// (BENCHMARKS.md, "Issue 16: Boost.Graph uses, measured"): a colouring for chromatic sa sweeps
// (slower at 1 and 2 threads on sparse Gset instances) and strongly coupled neighbourhoods as
// qaoa decomposition subproblems (the same final energy as the current choice in every case).
// Boost stays inside the .cpp: nothing of it reaches include/qprune/.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/graph/coupling_graph.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <cstdint>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune::detail::graph {

/// Variables partitioned into connected components of the coupling graph.
struct Components {
  std::vector<int> component_of;          ///< per variable, in [0, members.size())
  std::vector<std::vector<int>> members;  ///< ascending; components ordered by smallest member
  [[nodiscard]] int count() const { return static_cast<int>(members.size()); }
};

/// The connected components of `model`'s couplings, with each constraint group joined into one
/// block. Union-find (boost::disjoint_sets) over the coupling stream, stopping as soon as one
/// component is left: a dense connected layer is decided after about its first row instead of
/// n^2 / 2 entries, and no graph is stored (a dense 18944-variable layer as a graph would take
/// gigabytes).
[[nodiscard]] Components connected_components(const QuboModel& model);

}  // namespace qprune::detail::graph
