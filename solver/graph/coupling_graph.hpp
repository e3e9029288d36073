// The coupling graph of a QuboModel: one vertex per variable, an edge per non-zero coupling q_ij,
// and every constraint group one connected block (its members interact through the constraint
// even where no q_ij joins them). Three uses, each measured in BENCHMARKS.md ("Issue 16:
// Boost.Graph uses, measured"): connected components (independent parts solved separately), a
// vertex colouring (variables of one colour share no coupling, so a chromatic sweep may try them
// in parallel), and the neighbourhood of strongly coupled variables around a seed. Boost stays
// inside the .cpp: nothing of it reaches include/qprune/.
#pragma once

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

/// A proper vertex colouring of the couplings (constraint groups are not coloured: a colour class
/// is independent in the coupling graph only). Greedy colouring (boost::sequential_vertex_coloring)
/// in smallest-last order (boost::smallest_last_vertex_ordering), which needs at most
/// degeneracy + 1 colours. Builds a compressed_sparse_row_graph: O(nnz) memory, meant for sparse
/// models.
struct Colouring {
  std::vector<int> colour_of;             ///< per variable, in [0, classes.size())
  std::vector<std::vector<int>> classes;  ///< variables of each colour, ascending
  [[nodiscard]] int count() const { return static_cast<int>(classes.size()); }
};
[[nodiscard]] Colouring colour_couplings(const QuboModel& model);

/// True when no coupling joins two variables of the same colour and every variable has one.
[[nodiscard]] bool is_proper_colouring(const QuboModel& model, const Colouring& colouring);

/// Up to `size` variables grown from `seed` (included first): each step adds the variable not yet
/// taken whose coupling strength sum_{j taken} |q_ij| to the taken set is largest (ties: lower
/// `tie_rank`, then lower index); when nothing taken couples to any other variable, the best
/// tie_rank among the rest. `tie_rank` has one entry per variable (e.g. its rank by potential
/// gain) or is empty (index order). O(size * (n + row lengths)).
[[nodiscard]] std::vector<int> strong_neighbourhood(const QuboModel& model, int seed, int size,
                                                    const std::vector<int>& tie_rank = {});

}  // namespace qprune::detail::graph
