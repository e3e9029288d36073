// Solvers for the refit objective (include/qprune/refit_objective.hpp): which units to keep when
// the kept columns are re-fitted afterwards. The objective is not quadratic in the mask, so these
// work on it directly with the sweep state's O(1) move evaluations:
//   obs_greedy     OBS / ZipLM backward elimination: from all kept, remove the unit whose removal
//                  raises the refit error least, until every group keeps its count.
//   swap_descent   steepest descent over swaps (one kept unit out, one removed unit in, same
//   group). swap_tabu      tabu search over the same swaps (recently moved units may not move back
//   for
//                  `tenure` iterations unless that gives a new best), then swap descent.
//   swap_anneal    simulated annealing over random swaps (Metropolis), then swap descent.
//   exhaustive     every feasible mask (small layers; the tests' oracle).
// The local searches start from a given mask (the greedy answer in the pipeline) and return the
// best mask they saw, so they are never worse than their start.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/refit_search.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "qprune/refit_objective.hpp"
#include "qprune/solver.hpp"

namespace qprune {

struct RefitSearchOptions {
  std::uint64_t seed = 0;  ///< anneal: proposal and acceptance stream
  double time_limit_s = std::numeric_limits<double>::infinity();  ///< > 0
  const std::atomic<bool>* interrupt = nullptr;  ///< polled; true stops with kInterrupted
  /// tabu: iterations (each carries out the best allowed swap); 0: automatic, max(50, units / 4)
  /// (on the example model's layers more iterations lowered the objective by < 0.01 %).
  int iterations = 0;
  /// tabu: iterations a moved unit may not move back; 0: automatic, min(10, removed / 4 + 1).
  int tenure = 0;
  /// anneal: temperature steps, each with `units` swap proposals; 0: automatic, 20.
  int sweeps = 0;
  /// An improvement smaller than this fraction of the error is not one (stops descent cycling on
  /// rounding); >= 0.
  double tolerance_rel = 1e-10;
  /// Rebuild the state from H and B after this many moves (rounding); 0: automatic, max(64, n).
  int rebuild_every = 0;
  /// exhaustive: refuse above this many feasible masks.
  std::int64_t max_enumerated = 5'000'000;
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

struct RefitSearchResult {
  std::string method;
  Assignment keep;                                                ///< the best feasible mask found
  double error = std::numeric_limits<double>::quiet_NaN();        ///< objective.error(keep)
  double start_error = std::numeric_limits<double>::quiet_NaN();  ///< of the start mask
  SolveStatus status = SolveStatus::kNotRun;
  std::int64_t moves = 0;        ///< removals or swaps carried out
  std::int64_t evaluations = 0;  ///< candidate moves evaluated
  double wall_time_s = 0.0;
  /// obs_greedy: the error after each removal, in removal order (its increments are the marginal
  /// costs a global allocation compares across layers).
  std::vector<double> greedy_path;
  std::vector<int> removal_order;  ///< obs_greedy: the unit removed at each step
};

/// OBS / ZipLM greedy from every unit kept; start_error is E(all kept).
[[nodiscard]] RefitSearchResult obs_greedy(const RefitObjective& objective,
                                           const RefitSearchOptions& options = {});
/// `start` must be feasible for the objective's layout (InvalidArgument otherwise).
[[nodiscard]] RefitSearchResult swap_descent(const RefitObjective& objective,
                                             const Assignment& start,
                                             const RefitSearchOptions& options = {});
[[nodiscard]] RefitSearchResult swap_tabu(const RefitObjective& objective, const Assignment& start,
                                          const RefitSearchOptions& options = {});
[[nodiscard]] RefitSearchResult swap_anneal(const RefitObjective& objective,
                                            const Assignment& start,
                                            const RefitSearchOptions& options = {});
/// Every feasible mask; status kOptimal. ResourceError above options.max_enumerated masks.
[[nodiscard]] RefitSearchResult exhaustive_refit(const RefitObjective& objective,
                                                 const RefitSearchOptions& options = {});

/// True when `keep` keeps exactly keep_per_group units in every group of the layout.
[[nodiscard]] bool feasible_for(const UnitLayout& layout, const Assignment& keep);

}  // namespace qprune
