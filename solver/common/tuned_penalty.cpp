// tuned_penalty (include/qprune/tuned_penalty.hpp): the shifts from the prices of a unit at the
// best answer found, the weight from a penalty-mode search.
#include "qprune/tuned_penalty.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"
#include "qprune/solvers.hpp"

namespace qprune {

void TunedPenaltyOptions::validate() const {
  if (!(search_time_s > 0.0) || !std::isfinite(search_time_s))
    throw InvalidArgument("TunedPenaltyOptions::search_time_s must be finite and > 0");
  if (verify_rounds < 1) throw InvalidArgument("TunedPenaltyOptions::verify_rounds must be >= 1");
}

namespace {

/// sa on `model` with 8 reads (fewer if the budget ends first), native moves where it has groups.
SolveResult anneal(const QuboModel& model, const TunedPenaltyOptions& o, std::uint64_t seed) {
  SolveOptions so;
  so.seed = seed;
  so.num_reads = 8;
  so.time_limit_s = o.search_time_s;
  so.interrupt = o.interrupt;
  SolveResult r = make_solver("sa")->solve(model, so);
  // A stopped search would tune the penalty to a half-found answer: stop the whole call instead.
  throw_if_interrupted("tuning the penalty");
  if (r.status == SolveStatus::kInterrupted) throw Interrupted("stopped while tuning the penalty");
  return r;
}

/// sum over groups of (ones - k)^2.
double squared_violation(const QuboModel& model, const Assignment& x) {
  double total = 0.0;
  for (const CardinalityConstraint& g : model.constraints()) {
    int ones = 0;
    for (const int v : g.variables) ones += x[static_cast<std::size_t>(v)];
    total += static_cast<double>((ones - g.k) * (ones - g.k));
  }
  return total;
}

}  // namespace

TunedPenalty tuned_penalty(const QuboModel& model, const TunedPenaltyOptions& options) {
  options.validate();
  if (!model.has_constraints())
    throw InvalidArgument("tuned_penalty: the model has no constraint groups to penalise");
  TunedPenalty out;
  const SolveResult found = anneal(model, options, options.seed);
  if (!found.has_solution() || !found.best().feasible)
    throw Error("tuned_penalty: the constrained search found no feasible answer (" + found.message +
                ")");
  out.best = found.best().x;
  out.best_energy = found.best().energy;

  // The shift of a two-sided group is the price of one unit: with F(m) the best energy keeping m
  // units of the group (the other groups unchanged), lambda = (F(k-1) - F(k+1)) / 2, the middle
  // of the slopes on either side, found by the same constrained search at k - 1 and k + 1. The
  // states one unit off then cost F(k+1) + lambda + w and F(k-1) - lambda + w, both at least F(k)
  // once w >= F(k) - (F(k-1) + F(k+1)) / 2 (0 or less where F is convex, as pruning errors
  // are). And x* must stay a single-flip local minimum: a switch-off changes the penalised energy
  // by -f_i - lambda + w, a switch-on by f_j + lambda + w (f = c + Q x*). One-sided groups (k = 0
  // or k = size) keep the provable shift, which needs no weight.
  const QuboModel::PenaltyTerms provable = model.penalty_terms();
  out.shifts = provable.shifts;
  double weight_needed = 0.0, largest_shift = 0.0;
  const std::vector<CardinalityConstraint>& groups = model.constraints();
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const int size = static_cast<int>(groups[gi].variables.size());
    if (groups[gi].k == 0 || groups[gi].k == size) continue;
    double neighbour[2];  // F(k - 1), F(k + 1)
    for (int side = 0; side < 2; ++side) {
      QuboModel moved = model;
      moved.clear_constraints();
      for (std::size_t gj = 0; gj < groups.size(); ++gj) {
        CardinalityConstraint c = groups[gj];
        if (gj == gi) c.k += side == 0 ? -1 : 1;
        moved.add_constraint(std::move(c));
      }
      const SolveResult r =
          anneal(moved, options, options.seed + 1000 + 2 * gi + static_cast<std::uint64_t>(side));
      neighbour[side] = r.has_solution() && r.best().feasible
                            ? r.best().energy
                            : std::numeric_limits<double>::quiet_NaN();
    }
    if (std::isnan(neighbour[0]) || std::isnan(neighbour[1])) continue;
    const double lambda = 0.5 * (neighbour[0] - neighbour[1]);
    double off_min = std::numeric_limits<double>::infinity();
    double on_min = std::numeric_limits<double>::infinity();
    for (const int v : groups[gi].variables) {
      const double f = model.local_field(out.best, v);
      if (out.best[static_cast<std::size_t>(v)] != 0)
        off_min = std::min(off_min, -f);
      else
        on_min = std::min(on_min, f);
    }
    out.shifts[gi] = lambda;
    weight_needed = std::max({weight_needed, out.best_energy - 0.5 * (neighbour[0] + neighbour[1]),
                              lambda - off_min, -lambda - on_min});
    largest_shift = std::max(largest_shift, std::abs(lambda));
  }
  const double floor = 1e-6 * provable.scale + 1e-9;
  out.weight = weight_needed + std::max(0.01 * largest_shift, floor);

  // Verification: sa on the penalised form; an infeasible end state y below E(x*) shows the
  // weight is too small. Its penalised energy is E'(y) + w D(y), D the squared violation, so the
  // weight that lifts it to E(x*) is (E(x*) - E'(y)) / D; a quarter more keeps it clear.
  for (int round = 0; round < options.verify_rounds; ++round) {
    const QuboModel penalised = model.penalized(out.weight, out.shifts);
    const SolveResult check =
        anneal(penalised, options, options.seed + 1 + static_cast<std::uint64_t>(round));
    ++out.rounds;
    double raise_to = 0.0;
    for (const Sample& s : check.samples) {
      if (model.is_feasible(s.x)) {
        if (s.energy < out.best_energy) {  // a better answer: the new reference point
          out.best = s.x;
          out.best_energy = s.energy;
        }
        continue;
      }
      if (s.energy >= out.best_energy) continue;
      const double violation = squared_violation(model, s.x);
      const double unpenalised = s.energy - out.weight * violation;
      raise_to = std::max(raise_to, 1.25 * (out.best_energy - unpenalised) / violation);
      ++out.raises;
    }
    if (raise_to <= out.weight) {
      out.verified = check.status != SolveStatus::kInterrupted;
      break;
    }
    out.weight = raise_to;
  }

  // The schedule hint: the single-flip changes at x* in the penalised form.
  const QuboModel penalised = model.penalized(out.weight, out.shifts);
  double largest = 0.0, smallest = std::numeric_limits<double>::infinity();
  for (int i = 0; i < penalised.num_variables(); ++i) {
    const double change = std::abs(penalised.flip_delta(out.best, i));
    largest = std::max(largest, change);
    if (change > 0.0) smallest = std::min(smallest, change);
  }
  if (largest > 0.0) {
    out.beta_range = {std::log(2.0) / largest,
                      std::log(100.0 * penalised.num_variables()) / smallest};
  }
  return out;
}

}  // namespace qprune
