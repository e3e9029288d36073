// Connected components of the coupling graph by union-find (Boost.Graph's disjoint_sets); see
// coupling_graph.hpp.
#include "solver/graph/coupling_graph.hpp"

#include <algorithm>
#include <boost/pending/disjoint_sets.hpp>
#include <boost/property_map/property_map.hpp>

namespace qprune::detail::graph {

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

}  // namespace qprune::detail::graph
