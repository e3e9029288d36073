// Coupling-graph algorithms on Boost.Graph: union-find components, smallest-last greedy colouring,
// strongly coupled neighbourhoods. See coupling_graph.hpp for what each is for.
#include "solver/graph/coupling_graph.hpp"

#include <algorithm>
#include <boost/graph/compressed_sparse_row_graph.hpp>
#include <boost/graph/sequential_vertex_coloring.hpp>
#include <boost/graph/smallest_last_ordering.hpp>
#include <boost/pending/disjoint_sets.hpp>
#include <boost/property_map/property_map.hpp>
#include <boost/property_map/shared_array_property_map.hpp>
#include <cmath>
#include <limits>
#include <utility>

#include "qprune/error.hpp"

namespace qprune::detail::graph {
namespace {

using Csr = boost::compressed_sparse_row_graph<boost::directedS>;

/// Each pair in both directions, sorted by source: the symmetric adjacency as a directed CSR
/// graph (out-edges = neighbours), which is what the colouring algorithms walk.
Csr make_csr(const QuboModel& model) {
  std::vector<std::pair<std::size_t, std::size_t>> edges;
  edges.reserve(static_cast<std::size_t>(2 * model.num_couplings()));
  for (int i = 0; i < model.num_variables(); ++i) {
    model.for_each_in_row(i, [&](int j, double) {
      edges.emplace_back(static_cast<std::size_t>(i), static_cast<std::size_t>(j));
    });
  }
  return Csr(boost::edges_are_sorted, edges.begin(), edges.end(),
             static_cast<std::size_t>(model.num_variables()));
}

}  // namespace

Components connected_components(const QuboModel& model) {
  const int n = model.num_variables();
  const auto size = static_cast<std::size_t>(n);
  std::vector<int> rank(size, 0), parent(size, 0);
  using IndexMap =
      boost::iterator_property_map<std::vector<int>::iterator, boost::identity_property_map>;
  boost::disjoint_sets<IndexMap, IndexMap> sets(IndexMap(rank.begin()), IndexMap(parent.begin()));
  for (int v = 0; v < n; ++v) sets.make_set(v);
  int left = n;
  const auto join = [&](int a, int b) {
    const int ra = sets.find_set(a), rb = sets.find_set(b);
    if (ra == rb) return;
    sets.link(ra, rb);
    --left;
  };
  for (const CardinalityConstraint& g : model.constraints())
    for (std::size_t t = 1; t < g.variables.size(); ++t) join(g.variables[0], g.variables[t]);
  if (model.storage() == Storage::kDense) {
    const Eigen::MatrixXd& q = model.dense_couplings();
    for (int i = 0; i < n && left > 1; ++i) {
      const double* column = q.col(i).data();  // symmetric: column i is row i, contiguous
      for (int j = i + 1; j < n && left > 1; ++j)
        if (column[j] != 0.0) join(i, j);
    }
  } else {
    const auto& offsets = model.row_offsets();
    const auto& columns = model.columns();
    for (int i = 0; i < n && left > 1; ++i) {
      for (std::int64_t p = offsets[static_cast<std::size_t>(i)];
           p < offsets[static_cast<std::size_t>(i) + 1]; ++p) {
        const int j = columns[static_cast<std::size_t>(p)];
        if (j > i) join(i, j);
      }
    }
  }
  Components out;
  out.component_of.assign(size, -1);
  std::vector<int> id_of_root(size, -1);
  for (int v = 0; v < n; ++v) {
    const auto root = static_cast<std::size_t>(sets.find_set(v));
    if (id_of_root[root] < 0) {
      id_of_root[root] = static_cast<int>(out.members.size());
      out.members.emplace_back();
    }
    const int id = id_of_root[root];
    out.component_of[static_cast<std::size_t>(v)] = id;
    out.members[static_cast<std::size_t>(id)].push_back(v);
  }
  return out;
}

Colouring colour_couplings(const QuboModel& model) {
  const int n = model.num_variables();
  Colouring out;
  if (n == 0) return out;
  const Csr g = make_csr(model);
  const auto index = boost::get(boost::vertex_index, g);
  const std::vector<std::size_t> order = boost::smallest_last_vertex_ordering(g);
  std::vector<std::size_t> colour(static_cast<std::size_t>(n), 0);
  const std::size_t count = boost::sequential_vertex_coloring(
      g, boost::make_iterator_property_map(order.begin(), boost::identity_property_map()),
      boost::make_iterator_property_map(colour.begin(), index));
  out.classes.resize(count);
  out.colour_of.resize(static_cast<std::size_t>(n));
  for (int v = 0; v < n; ++v) {
    const std::size_t c = colour[static_cast<std::size_t>(v)];
    out.colour_of[static_cast<std::size_t>(v)] = static_cast<int>(c);
    out.classes[c].push_back(v);
  }
  return out;
}

bool is_proper_colouring(const QuboModel& model, const Colouring& colouring) {
  const int n = model.num_variables();
  if (static_cast<int>(colouring.colour_of.size()) != n) return false;
  bool proper = true;
  for (int i = 0; i < n; ++i) {
    const int c = colouring.colour_of[static_cast<std::size_t>(i)];
    if (c < 0 || c >= colouring.count()) return false;
    model.for_each_in_row(i, [&](int j, double) {
      if (colouring.colour_of[static_cast<std::size_t>(j)] == c) proper = false;
    });
  }
  return proper;
}

std::vector<int> strong_neighbourhood(const QuboModel& model, int seed, int size,
                                      const std::vector<int>& tie_rank) {
  const int n = model.num_variables();
  if (seed < 0 || seed >= n) {
    throw InvalidArgument("strong_neighbourhood: seed " + std::to_string(seed) +
                          " out of range [0, " + std::to_string(n) + ")");
  }
  if (!tie_rank.empty() && static_cast<int>(tie_rank.size()) != n) {
    throw InvalidArgument("strong_neighbourhood: tie_rank needs one entry per variable");
  }
  const auto rank = [&](int v) {
    return tie_rank.empty() ? v : tie_rank[static_cast<std::size_t>(v)];
  };
  size = std::clamp(size, 0, n);
  std::vector<double> strength(static_cast<std::size_t>(n), 0.0);
  std::vector<char> taken(static_cast<std::size_t>(n), 0);
  std::vector<int> out;
  out.reserve(static_cast<std::size_t>(size));
  int next = seed;
  while (static_cast<int>(out.size()) < size) {
    taken[static_cast<std::size_t>(next)] = 1;
    out.push_back(next);
    model.for_each_in_row(
        next, [&](int j, double q) { strength[static_cast<std::size_t>(j)] += std::abs(q); });
    // The strongest untaken variable; ties (and the all-zero case: a new seed) by rank.
    next = -1;
    for (int v = 0; v < n; ++v) {
      if (taken[static_cast<std::size_t>(v)]) continue;
      if (next < 0) {
        next = v;
        continue;
      }
      const double sv = strength[static_cast<std::size_t>(v)];
      const double sb = strength[static_cast<std::size_t>(next)];
      if (sv > sb || (sv == sb && rank(v) < rank(next))) next = v;
    }
    if (next < 0) break;
  }
  return out;
}

}  // namespace qprune::detail::graph
