// Greedy, swap descent, tabu, annealing and enumeration on the refit objective
// (include/qprune/refit_search.hpp). Every move goes through RefitSearchState, whose deltas are
// O(1) per candidate for single-channel units (O(w^3) for heads) and whose updates are O(n^2);
// the state is rebuilt from the statistics every `rebuild_every` moves so that rounding never
// builds up, and every reported error is recomputed by RefitObjective::error.
#include "qprune/refit_search.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>
#include <vector>

#include "core/binomial.hpp"
#include "core/rng.hpp"
#include "qprune/error.hpp"
#include "solver/common/stopwatch.hpp"

namespace qprune {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

detail::StopCondition stop_condition(const RefitSearchOptions& o) {
  SolveOptions so;
  so.time_limit_s = o.time_limit_s;
  so.interrupt = o.interrupt;
  return detail::StopCondition(so);
}

int rebuild_every(const RefitSearchOptions& o, const RefitObjective& obj) {
  return o.rebuild_every > 0 ? o.rebuild_every : std::max(64, obj.num_channels());
}

void maybe_rebuild(RefitSearchState& st, int every) {
  if (st.moves_since_rebuild() >= every) st.rebuild();
}

RefitSearchResult finish(RefitSearchResult r, const RefitObjective& obj,
                         const detail::StopCondition& stop, SolveStatus status) {
  r.error = obj.error(r.keep);
  r.status = status;
  r.wall_time_s = stop.elapsed_s();
  return r;
}

void check_start(const RefitObjective& obj, const Assignment& start, const char* who) {
  if (!feasible_for(obj.layout(), start))
    throw InvalidArgument(std::string(who) + ": the start mask does not keep " +
                          std::to_string(obj.layout().keep_per_group) + " units in every group");
}

struct Swap {
  int out = -1;
  int in = -1;
  double delta = kInf;
};

// The best swap (same group) allowed by `allowed(out, in, delta)`.
template <class Allowed>
Swap best_swap(const RefitSearchState& st, std::int64_t& evaluations, Allowed allowed) {
  const UnitLayout& lay = st.objective().layout();
  const std::vector<int> k = st.kept_units();
  const std::vector<int> s = st.removed_units();
  Swap best;
  if (lay.unit_width == 1 && lay.num_groups == 1) {
    Eigen::MatrixXd d;
    st.all_swap_deltas(d);
    evaluations += d.size();
    for (Eigen::Index jj = 0; jj < d.cols(); ++jj)
      for (Eigen::Index ii = 0; ii < d.rows(); ++ii) {
        const double v = d(ii, jj);
        if (v < best.delta &&
            allowed(k[static_cast<std::size_t>(ii)], s[static_cast<std::size_t>(jj)], v))
          best = {k[static_cast<std::size_t>(ii)], s[static_cast<std::size_t>(jj)], v};
      }
    return best;
  }
  for (const int i : k)
    for (const int j : s) {
      if (lay.group_of(i) != lay.group_of(j)) continue;
      const double v = st.swap_delta(i, j);
      ++evaluations;
      if (v < best.delta && allowed(i, j, v)) best = {i, j, v};
    }
  return best;
}

// Steepest swap descent on `st` until no swap improves by more than the tolerance.
SolveStatus descend(RefitSearchState& st, const RefitSearchOptions& o,
                    const detail::StopCondition& stop, RefitSearchResult& r) {
  const int every = rebuild_every(o, st.objective());
  for (;;) {
    if (const SolveStatus s = stop.check(); s != SolveStatus::kCompleted) return s;
    const double tol = o.tolerance_rel * std::max(std::abs(st.error()), 1e-300);
    const Swap sw = best_swap(st, r.evaluations, [](int, int, double) { return true; });
    if (sw.out < 0 || !(sw.delta < -tol)) return SolveStatus::kCompleted;
    st.swap(sw.out, sw.in);
    ++r.moves;
    maybe_rebuild(st, every);
  }
}

// What every local search from a start mask shares: the checks, the state, the best mask seen,
// and the end: a steepest descent from the best mask (unless stopped) and the result, never
// worse than the start (rounding in the incremental errors could otherwise rank a worse mask
// first).
struct LocalSearch {
  LocalSearch(const RefitObjective& obj, const Assignment& start, const RefitSearchOptions& opts,
              const char* method)
      : objective(obj),
        options((opts.validate(), check_start(obj, start, method), opts)),
        stop(stop_condition(opts)),
        state(obj, start),
        start_keep(start),
        best_keep(start),
        best_error(state.error()),
        every(rebuild_every(opts, obj)) {
    result.method = method;
    result.start_error = state.error();
  }
  // True once the time limit or interrupt says stop (and remembers why).
  bool stopped() {
    if (status == SolveStatus::kCompleted) status = stop.check();
    return status != SolveStatus::kCompleted;
  }
  void swap(int out, int in) {
    state.swap(out, in);
    ++result.moves;
    maybe_rebuild(state, every);
    if (state.error() < best_error) {
      best_error = state.error();
      best_keep = state.keep();
    }
  }
  RefitSearchResult finish() && {
    if (!stopped()) {
      RefitSearchState polish(objective, best_keep);
      status = descend(polish, options, stop, result);
      best_keep = polish.keep();
    }
    result.keep = best_keep;
    RefitSearchResult r = qprune::finish(std::move(result), objective, stop, status);
    if (r.error > r.start_error) {
      r.keep = start_keep;
      r.error = objective.error(start_keep);
    }
    return r;
  }

  const RefitObjective& objective;
  const RefitSearchOptions& options;
  detail::StopCondition stop;
  RefitSearchState state;
  RefitSearchResult result;
  Assignment start_keep;
  Assignment best_keep;
  double best_error;
  int every;
  SolveStatus status = SolveStatus::kCompleted;
};

}  // namespace

void RefitSearchOptions::validate() const {
  if (!(time_limit_s > 0.0)) throw InvalidArgument("RefitSearchOptions::time_limit_s must be > 0");
  if (iterations < 0) throw InvalidArgument("RefitSearchOptions::iterations must be >= 0");
  if (tenure < 0) throw InvalidArgument("RefitSearchOptions::tenure must be >= 0");
  if (sweeps < 0) throw InvalidArgument("RefitSearchOptions::sweeps must be >= 0");
  if (!(tolerance_rel >= 0.0))
    throw InvalidArgument("RefitSearchOptions::tolerance_rel must be >= 0");
  if (rebuild_every < 0) throw InvalidArgument("RefitSearchOptions::rebuild_every must be >= 0");
  if (max_enumerated < 1) throw InvalidArgument("RefitSearchOptions::max_enumerated must be >= 1");
}

bool feasible_for(const UnitLayout& layout, const Assignment& keep) {
  if (keep.size() != static_cast<std::size_t>(layout.num_units)) return false;
  std::vector<int> per(static_cast<std::size_t>(layout.num_groups), 0);
  for (int u = 0; u < layout.num_units; ++u) {
    const auto v = keep[static_cast<std::size_t>(u)];
    if (v > 1) return false;
    per[static_cast<std::size_t>(layout.group_of(u))] += v;
  }
  return std::all_of(per.begin(), per.end(), [&](int c) { return c == layout.keep_per_group; });
}

RefitSearchResult obs_greedy(const RefitObjective& obj, const RefitSearchOptions& o) {
  o.validate();
  const detail::StopCondition stop = stop_condition(o);
  const UnitLayout& lay = obj.layout();
  RefitSearchResult r;
  r.method = "obs";
  RefitSearchState st(obj, Assignment(static_cast<std::size_t>(lay.num_units), 1));
  r.start_error = st.error();
  const int every = rebuild_every(o, obj);
  std::vector<int> kept_in(static_cast<std::size_t>(lay.num_groups), lay.units_per_group());
  const int removals = lay.num_units - lay.keep();
  SolveStatus status = SolveStatus::kCompleted;
  for (int step = 0; step < removals; ++step) {
    // A greedy stopped half-way is no mask: it finishes, and only a stop request is reported.
    if (status == SolveStatus::kCompleted) status = stop.check();
    int best = -1;
    double best_delta = kInf;
    for (int u = 0; u < lay.num_units; ++u) {
      if (!st.kept(u) || kept_in[static_cast<std::size_t>(lay.group_of(u))] <= lay.keep_per_group)
        continue;
      const double d = st.remove_delta(u);
      ++r.evaluations;
      if (d < best_delta) {
        best_delta = d;
        best = u;
      }
    }
    st.remove(best);
    --kept_in[static_cast<std::size_t>(lay.group_of(best))];
    ++r.moves;
    maybe_rebuild(st, every);
    r.greedy_path.push_back(st.error());
    r.removal_order.push_back(best);
  }
  r.keep = st.keep();
  return finish(std::move(r), obj, stop, status);
}

RefitSearchResult swap_descent(const RefitObjective& obj, const Assignment& start,
                               const RefitSearchOptions& o) {
  LocalSearch ls(obj, start, o, "descent");
  return std::move(ls).finish();
}

RefitSearchResult swap_tabu(const RefitObjective& obj, const Assignment& start,
                            const RefitSearchOptions& o) {
  LocalSearch ls(obj, start, o, "tabu");
  const UnitLayout& lay = obj.layout();
  RefitSearchState& st = ls.state;
  const int removed = lay.num_units - lay.keep();
  const int iterations = o.iterations > 0 ? o.iterations : std::max(50, lay.num_units / 4);
  const int tenure = o.tenure > 0 ? o.tenure : std::min(10, removed / 4 + 1);
  std::vector<int> tabu_until(static_cast<std::size_t>(lay.num_units), -1);
  for (int it = 0; it < iterations && removed > 0 && !ls.stopped(); ++it) {
    const double current = st.error();
    const double tol = o.tolerance_rel * std::max(std::abs(ls.best_error), 1e-300);
    const Swap sw = best_swap(st, ls.result.evaluations, [&](int out, int in, double delta) {
      const bool is_tabu = tabu_until[static_cast<std::size_t>(out)] > it ||
                           tabu_until[static_cast<std::size_t>(in)] > it;
      return !is_tabu || current + delta < ls.best_error - tol;  // aspiration
    });
    if (sw.out < 0) break;  // every swap tabu
    ls.swap(sw.out, sw.in);
    tabu_until[static_cast<std::size_t>(sw.out)] = it + tenure;
    tabu_until[static_cast<std::size_t>(sw.in)] = it + tenure;
  }
  return std::move(ls).finish();
}

RefitSearchResult swap_anneal(const RefitObjective& obj, const Assignment& start,
                              const RefitSearchOptions& o) {
  LocalSearch ls(obj, start, o, "sa");
  const UnitLayout& lay = obj.layout();
  RefitSearchState& st = ls.state;
  pcg32 rng = detail::make_rng(o.seed, 0);
  // The kept units as a list (a swap replaces one entry in place): proposals draw from it.
  std::vector<int> kept_list = st.kept_units();
  // A random swap inside one group: a kept and a removed unit of the same group.
  auto propose = [&](int& out, int& in, std::size_t& slot) {
    slot = detail::uniform_below(rng, static_cast<std::uint32_t>(kept_list.size()));
    out = kept_list[slot];
    const int base = lay.group_of(out) * lay.units_per_group();
    do {
      in = base + static_cast<int>(detail::uniform_below(
                      rng, static_cast<std::uint32_t>(lay.units_per_group())));
    } while (st.kept(in));
    return st.swap_delta(out, in);
  };
  if (lay.keep_per_group < lay.units_per_group()) {
    // Temperatures from the start's landscape: the hottest accepts the median uphill swap with
    // probability 1/e, the coldest a thousandth of it; geometric in between.
    std::vector<double> uphill;
    for (int t = 0; t < 64; ++t) {
      int out = 0, in = 0;
      std::size_t slot = 0;
      const double d = propose(out, in, slot);
      ++ls.result.evaluations;
      if (d > 0.0) uphill.push_back(d);
    }
    double t_hot = 0.0;
    if (!uphill.empty()) {
      std::nth_element(uphill.begin(), uphill.begin() + static_cast<long>(uphill.size() / 2),
                       uphill.end());
      t_hot = uphill[uphill.size() / 2];
    }
    const int sweeps = o.sweeps > 0 ? o.sweeps : 20;
    const double t_cold = t_hot * 1e-3;
    for (int sweep = 0; sweep < sweeps && t_hot > 0.0 && !ls.stopped(); ++sweep) {
      const double frac = sweeps > 1 ? static_cast<double>(sweep) / (sweeps - 1) : 1.0;
      const double temp = t_hot * std::pow(t_cold / t_hot, frac);
      for (int p = 0; p < lay.num_units; ++p) {
        int out = 0, in = 0;
        std::size_t slot = 0;
        const double d = propose(out, in, slot);
        ++ls.result.evaluations;
        if (d <= 0.0 || detail::uniform01(rng) < std::exp(-d / temp)) {
          ls.swap(out, in);
          kept_list[slot] = in;
        }
      }
    }
  }
  return std::move(ls).finish();
}

RefitSearchResult exhaustive_refit(const RefitObjective& obj, const RefitSearchOptions& o) {
  o.validate();
  const detail::StopCondition stop = stop_condition(o);
  const UnitLayout& lay = obj.layout();
  const int m = lay.units_per_group(), k = lay.keep_per_group, groups = lay.num_groups;
  // Feasible masks: C(m, k)^groups.
  const std::uint64_t exact = detail::binomial(m, k);
  const double per = exact == std::numeric_limits<std::uint64_t>::max()
                         ? std::exp2(detail::log2_binomial(m, k))
                         : static_cast<double>(exact);
  const double total = std::pow(per, groups);
  if (total > static_cast<double>(o.max_enumerated)) {
    std::ostringstream msg;
    msg << std::setprecision(3) << "exhaustive refit search: " << total << " feasible masks ("
        << groups << " group(s) choosing " << k << " of " << m << "), above the limit of "
        << o.max_enumerated << "; use obs, sa or tabu for this layer";
    throw ResourceError(msg.str());
  }
  // The combinations of one group, each as a list of kept offsets.
  std::vector<std::vector<int>> combos;
  std::vector<int> c(static_cast<std::size_t>(k));
  std::iota(c.begin(), c.end(), 0);
  for (;;) {
    combos.push_back(c);
    int i = k - 1;
    while (i >= 0 && c[static_cast<std::size_t>(i)] == m - k + i) --i;
    if (i < 0) break;
    ++c[static_cast<std::size_t>(i)];
    for (int j = i + 1; j < k; ++j)
      c[static_cast<std::size_t>(j)] = c[static_cast<std::size_t>(j - 1)] + 1;
  }
  RefitSearchResult r;
  r.method = "exhaustive";
  double best = kInf;
  std::vector<std::size_t> pick(static_cast<std::size_t>(groups), 0);
  SolveStatus status = SolveStatus::kOptimal;
  for (;;) {
    Assignment x(static_cast<std::size_t>(lay.num_units), 0);
    for (int g = 0; g < groups; ++g)
      for (const int off : combos[pick[static_cast<std::size_t>(g)]])
        x[static_cast<std::size_t>(g) * static_cast<std::size_t>(m) +
          static_cast<std::size_t>(off)] = 1;
    const double e = obj.error(x);
    ++r.evaluations;
    if (e < best) {
      best = e;
      r.keep = x;
    }
    int g = 0;
    while (g < groups && ++pick[static_cast<std::size_t>(g)] == combos.size()) {
      pick[static_cast<std::size_t>(g)] = 0;
      ++g;
    }
    if (g == groups) break;
    if ((r.evaluations & 255) == 0 && stop.should_stop()) {
      status = stop.check();
      break;
    }
  }
  r.start_error = best;
  return finish(std::move(r), obj, stop, status);
}

}  // namespace qprune
