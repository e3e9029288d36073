// A penalty form that single-flip annealers can solve (issue 18 point 1): the constraint groups of
// a model written for a solver without groups (qbsolv, COO, MQLib, a quantum annealer), with the
// shift of each group set to the marginal price of a unit at the best answer qprune finds, and the
// weight raised only as far as a penalty-mode search shows it must be. docs/pruning_math.md,
// "Penalty weight", gives the provable form this replaces by default in `qprune export`, and why.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "include/qprune/tuned_penalty.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune {

struct TunedPenaltyOptions {
  std::uint64_t seed = 0;
  /// Wall-clock budget of each search (8 sa reads, usually done well before it): the constrained
  /// ones (native swap moves) for x* and for each group's k - 1 and k + 1, and each verification
  /// round on the penalised form; > 0.
  double search_time_s = 1.0;
  int verify_rounds = 4;  ///< verification rounds at most, >= 1
  const std::atomic<bool>* interrupt = nullptr;
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

struct TunedPenalty {
  double weight = 0.0;
  std::vector<double> shifts;  ///< one per group (QuboModel::penalized)
  Assignment best;             ///< the best feasible answer found (the shifts' reference point)
  double best_energy = 0.0;    ///< its energy, equal in the model and in the penalised form
  /// The geometric schedule hint for a single-flip annealer, in the penalised form's energy
  /// units: beta_hot = ln 2 / the largest single-flip change at `best` (every move accepted half
  /// the time), beta_cold = ln(100 n) / the smallest (a sweep leaves `best` with probability
  /// about 1 %).
  std::pair<double, double> beta_range;
  /// Penalty-mode reads that ended infeasible below best_energy and raised the weight.
  int raises = 0;
  /// Rounds run; the last one found no infeasible state below best_energy unless `verified` is
  /// false (rounds exhausted, time or interrupt).
  int rounds = 0;
  bool verified = false;
};

/// For a model with constraint groups. Finds a good feasible answer x* (sa, native moves) and, by
/// the same search with one group's k moved by -1 and +1, the best energies F(k-1), F(k+1); sets
/// the group's shift to the price of a unit, (F(k-1) - F(k+1)) / 2, and the weight to the least
/// that keeps both neighbours' best states at or above E(x*) and x* a single-flip local minimum,
/// plus 1 % of the largest |shift|. Then raises the weight while sa on the penalised form ends in
/// an infeasible state below E(x*): to 1.25 times the weight that would lift that state to E(x*).
/// Not a proof (QuboModel::penalty_terms() gives the provable form): a state no search met may
/// still lie below. Throws InvalidArgument for a model without groups.
[[nodiscard]] TunedPenalty tuned_penalty(const QuboModel& model,
                                         const TunedPenaltyOptions& options = {});

}  // namespace qprune
