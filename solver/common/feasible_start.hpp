// Starts: a uniform assignment, or under "exactly k of these" groups a uniformly random feasible
// one (a uniform k-subset of every group by partial Fisher-Yates, the variables outside the groups
// uniform); and the greedy construction (greedy's read 0, sa's greedy start). Every solver's starts
// come from here.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/feasible_start.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "solver/common/compiled_problem.hpp"

namespace qprune::detail {

/// Which draws a start takes from the read's stream. All three give the same distribution; they
/// differ only in the draws spent, and each solver keeps the one it has always used so that a seed
/// gives the samples it gave before. A new solver uses kMovableOnly (fewest draws).
enum class StartDraws {
  kEveryVariable,  ///< a bit for every variable, then every group shuffled (random, tabu)
  kFreeVariables,  ///< a bit for each free variable, then every group shuffled (greedy)
  kMovableOnly,    ///< fixed groups set, free bits, movable groups shuffled (sa)
};

/// Writes a random start into x[0..n). With a layout without groups every bit is uniform. `slots`
/// (may be null) receives layout.slots with each movable group's ones first (the k-subset drawn),
/// for kernels that keep a group's ones and zeros apart.
inline void feasible_start(const GroupLayout& layout, StartDraws draws, pcg32& rng, std::uint8_t* x,
                           std::vector<int>* slots = nullptr) {
  const auto n = static_cast<int>(layout.group_of.size());
  if (!layout.has_groups() || draws == StartDraws::kEveryVariable) {
    for (int i = 0; i < n; ++i) x[i] = static_cast<std::uint8_t>(rng(2));
  } else {
    for (int v : layout.free_vars) x[v] = static_cast<std::uint8_t>(rng(2));
  }
  if (!layout.has_groups()) {
    if (slots != nullptr) slots->clear();
    return;
  }
  // Partial Fisher-Yates: position a takes a uniform pick of the rest; the first k are the ones.
  const auto shuffle = [&](int* s, int size, int k) {
    for (int a = 0; a < size; ++a) {
      const int b = a + static_cast<int>(rng(static_cast<std::uint32_t>(size - a)));
      std::swap(s[a], s[b]);
      x[s[a]] = a < k ? 1 : 0;
    }
  };
  if (draws == StartDraws::kMovableOnly) {
    for (int v : layout.fixed_ones) x[v] = 1;
    for (int v : layout.fixed_zeros) x[v] = 0;
    std::vector<int> local;
    std::vector<int>& s = slots != nullptr ? *slots : local;
    s = layout.slots;
    for (const GroupLayout::Group& g : layout.groups) shuffle(s.data() + g.begin, g.size, g.k);
    return;
  }
  std::vector<int> vars;
  for (const CardinalityConstraint& g : *layout.constraints) {
    vars = g.variables;
    shuffle(vars.data(), static_cast<int>(vars.size()), g.k);
  }
  if (slots != nullptr) {  // the same subsets, in slot form
    *slots = layout.slots;
    for (const GroupLayout::Group& g : layout.groups) {
      int* s = slots->data() + g.begin;
      std::stable_partition(s, s + g.size, [&](int v) { return x[v] != 0; });
    }
  }
}

/// Greedy construction: groups with k == size full, the others empty, then the unit of best
/// marginal gain f_j among the groups still short of k, one at a time (ties: lowest index); the
/// free variables stay 0. x (size n, all 0) receives the assignment, f its fields.
inline void greedy_construction(const CompiledProblem& p, std::vector<std::uint8_t>& x,
                                std::vector<double>& f) {
  const GroupLayout& layout = p.layout();
  for (int v : layout.fixed_ones) x[static_cast<std::size_t>(v)] = 1;
  p.fields(x.data(), f);
  std::vector<int> ones(layout.groups.size(), 0);
  for (;;) {
    int best_v = -1;
    std::size_t best_g = 0;
    for (std::size_t gi = 0; gi < layout.groups.size(); ++gi) {
      const GroupLayout::Group& g = layout.groups[gi];
      if (ones[gi] == g.k) continue;
      const int* vars = layout.members(g);
      for (int t = 0; t < g.size; ++t) {
        const int v = vars[t];
        if (!x[static_cast<std::size_t>(v)] &&
            (best_v < 0 || f[static_cast<std::size_t>(v)] < f[static_cast<std::size_t>(best_v)])) {
          best_v = v;
          best_g = gi;
        }
      }
    }
    if (best_v < 0) break;
    p.add_row(f.data(), best_v, 1.0);
    x[static_cast<std::size_t>(best_v)] = 1;
    ++ones[best_g];
  }
}

}  // namespace qprune::detail
