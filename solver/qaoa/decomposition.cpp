// The decomposition for problems larger than the statevector, a large-neighbourhood search with
// QAOA as the neighbourhood solver: from a warm start (the greedy solver's answer), each round
// picks a subproblem of subproblem_qubits variables by its energy impact around the incumbent,
// folds the clamped variables into the subproblem's linear terms, solves it with warm-start QAOA
// (warm_start.hpp) or the plain engine run, descends the best sample on the whole model, and
// replaces the incumbent only when the whole energy (QuboModel::energy) strictly drops. So the
// result is never above the warm start.
//
// Choosing a subproblem: flipping a set S changes the energy by sum_{i in S} d_i +
// sum_{i<j in S} q_ij u_i u_j, with d_i = flip_delta(x, i) and u_i = 1 - 2 x_i the direction of
// flip i. At a local minimum every d_i >= 0 (under groups every swap cost d_i + d_j - q_ij >= 0),
// so a multi-variable move can only pay off among variables that are cheap to flip and whose
// couplings favour flipping together (frustrated: -q_ij u_i u_j > 0, a coupling the incumbent
// pays for). The seed is the untried variable of smallest flip cost, measured within its class
// (group and value: removing a unit and adding one have costs of different signs, and what a
// group's swap pays is the sum of the two); the set grows greedily by the variable j that lowers
// that estimate most, the largest sum_{i in S} -q_ij u_i u_j - d_j, keeping a group's ones and
// zeros in balance (a subproblem of only ones of a group has a single feasible state). A variable
// counts as tried once it has seeded a subproblem since the last improvement; when all are tried,
// no seeded neighbourhood improves and the search ends.
//
// Angles: a subproblem starts from the previous one's optimised angles when it has the same
// size (angles in units of the normalised cost transfer between similar subproblems), with
// transfer_evaluations optimiser evaluations instead of max_evaluations.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>

#include "core/rng.hpp"
#include "solver/qaoa/qaoa_internal.hpp"
#include "solver/qaoa/warm_start.hpp"

namespace qprune::detail::qaoa {
namespace {

/// What one round reports.
struct Round {
  int size = 0;
  double expected_energy = std::numeric_limits<double>::quiet_NaN();  // whole-model units
  double best_sampled = std::numeric_limits<double>::quiet_NaN();     // whole-model units
  bool accepted = false;
  double time_s = 0.0;
};

std::string format_log(const std::vector<Round>& rounds) {
  std::ostringstream out;
  out << std::setprecision(10);
  for (std::size_t r = 0; r < rounds.size(); ++r) {
    const Round& d = rounds[r];
    out << (r ? "; " : "") << r + 1 << ": " << d.size << " qubits, <C> " << d.expected_energy
        << ", best sampled " << d.best_sampled << (d.accepted ? ", accepted, " : ", rejected, ")
        << std::setprecision(3) << d.time_s * 1e3 << " ms" << std::setprecision(10);
  }
  return out.str();
}

/// The subproblem of `vars` (sorted) around x: c'_a = c_a + sum_{j clamped} q_aj x_j, the
/// couplings among the chosen variables, and (native) per group the chosen variables with the
/// count of ones they hold in x.
QuboModel subproblem(const QuboModel& model, bool native, const Assignment& x,
                     const std::vector<int>& vars) {
  const int n = model.num_variables();
  const int m = static_cast<int>(vars.size());
  std::vector<int> local(static_cast<std::size_t>(n), -1);
  for (int a = 0; a < m; ++a)
    local[static_cast<std::size_t>(vars[static_cast<std::size_t>(a)])] = a;
  Eigen::VectorXd c(m);
  std::vector<Coupling> couplings;
  for (int a = 0; a < m; ++a) {
    const int i = vars[static_cast<std::size_t>(a)];
    double field = model.linear()[i];
    model.for_each_in_row(i, [&](int j, double q) {
      const int b = local[static_cast<std::size_t>(j)];
      if (b < 0) {
        field += q * x[static_cast<std::size_t>(j)];
      } else if (b > a) {
        couplings.push_back({a, b, q});
      }
    });
    c[a] = field;
  }
  QuboModel sub = QuboModel::from_couplings(m, c, couplings, 0.0, Storage::kDense);
  if (native) {
    for (const auto& g : model.constraints()) {
      CardinalityConstraint sc;
      sc.name = g.name;
      for (int v : g.variables) {
        const int a = local[static_cast<std::size_t>(v)];
        if (a < 0) continue;
        sc.variables.push_back(a);
        sc.k += x[static_cast<std::size_t>(v)];
      }
      if (!sc.variables.empty()) sub.add_constraint(std::move(sc));
    }
  }
  return sub;
}

}  // namespace

void solve_decomposed(const QuboModel& model, bool native, const Assignment& start,
                      const QaoaOptions& qaoa, const SolveOptions& options,
                      const StopCondition& stop, SolveResult& result,
                      std::vector<Assignment>& out) {
  const int n = model.num_variables();
  const int size = std::min({n, qaoa.subproblem_qubits, qaoa.max_qubits});
  const bool swaps = native && model.has_constraints();
  Assignment x = start;
  out.push_back(x);
  double energy = model.energy(x);
  const double start_energy = energy;
  // Strictly lower by more than round-off of the energy sums.
  const double tol = 1e-12 * std::max(1.0, model.max_flip_change()) * std::max(1, n);

  // Classes for the seed's flip cost and the balance: 2 g + value in group g, 2 G outside (G
  // groups; none in the penalty mode, where the groups are penalty terms of the model).
  std::vector<int> group_of(static_cast<std::size_t>(n), -1);
  const int num_groups = native ? static_cast<int>(model.constraints().size()) : 0;
  for (int g = 0; g < num_groups; ++g)
    for (int v : model.constraints()[static_cast<std::size_t>(g)].variables)
      group_of[static_cast<std::size_t>(v)] = g;

  const auto& progress = options.progress;
  const auto report_round = [&](int done) {
    if (!progress) return;
    SolveProgress p;
    p.stage = "qaoa decomposition";
    p.done = done;
    p.total = qaoa.decomposition_rounds;
    p.best_energy = energy;
    progress(p);
  };

  QaoaOptions sub_qaoa = qaoa;
  sub_qaoa.max_qubits = 40;  // the subproblem is solved directly
  std::vector<Round> log;
  std::vector<char> tried(static_cast<std::size_t>(n), 0);
  std::vector<double> angles;
  int angles_size = -1;
  int accepted = 0, stall = 0, rounds = 0;
  std::string round_stage;
  std::vector<double> delta(static_cast<std::size_t>(n)), benefit(static_cast<std::size_t>(n));
  // A round that cannot fit in the time left is not started, so the run ends at the limit: a
  // warm-start round needs about what the last one took; a plain one its subproblem's state, an
  // evaluation or more and the closing work (about p + 6 layers of the last measured layer time).
  double reserve_s = 0.0;
  for (; rounds < qaoa.decomposition_rounds && stall < qaoa.stall_rounds &&
         !stop.should_stop_within(reserve_s);
       ++rounds) {
    Stopwatch watch;
    // Flip costs, then each measured from the cheapest of its class.
    for (int i = 0; i < n; ++i) delta[static_cast<std::size_t>(i)] = model.flip_delta(x, i);
    std::vector<double> class_min(static_cast<std::size_t>(2 * num_groups + 1),
                                  std::numeric_limits<double>::infinity());
    const auto class_of = [&](int i) {
      const int g = group_of[static_cast<std::size_t>(i)];
      return g < 0 ? 2 * num_groups : 2 * g + x[static_cast<std::size_t>(i)];
    };
    for (int i = 0; i < n; ++i) {
      double& lo = class_min[static_cast<std::size_t>(class_of(i))];
      lo = std::min(lo, delta[static_cast<std::size_t>(i)]);
    }
    // Free variables keep their raw cost (>= 0 at a local minimum, < 0 an improving flip).
    class_min.back() = 0.0;
    for (int i = 0; i < n; ++i)
      delta[static_cast<std::size_t>(i)] -= class_min[static_cast<std::size_t>(class_of(i))];

    int seed = -1;
    for (int i = 0; i < n; ++i) {
      if (tried[static_cast<std::size_t>(i)]) continue;
      if (seed < 0 || delta[static_cast<std::size_t>(i)] < delta[static_cast<std::size_t>(seed)])
        seed = i;
    }
    if (seed < 0) break;  // every variable seeded a subproblem that did not improve
    tried[static_cast<std::size_t>(seed)] = 1;

    // Grow by the largest co-flip benefit minus flip cost, a group's ones and zeros in balance.
    std::vector<char> chosen(static_cast<std::size_t>(n), 0);
    std::vector<int> count(static_cast<std::size_t>(2 * num_groups + 1), 0);
    std::vector<int> remaining(static_cast<std::size_t>(2 * num_groups + 1), 0);
    for (int i = 0; i < n; ++i) ++remaining[static_cast<std::size_t>(class_of(i))];
    std::fill(benefit.begin(), benefit.end(), 0.0);
    std::vector<int> vars;
    const auto direction = [&](int i) { return 1.0 - 2.0 * x[static_cast<std::size_t>(i)]; };
    const auto add = [&](int v) {
      chosen[static_cast<std::size_t>(v)] = 1;
      vars.push_back(v);
      ++count[static_cast<std::size_t>(class_of(v))];
      --remaining[static_cast<std::size_t>(class_of(v))];
      const double dv = direction(v);
      model.for_each_in_row(v, [&](int j, double q) {
        benefit[static_cast<std::size_t>(j)] -= q * dv * direction(j);
      });
    };
    add(seed);
    while (static_cast<int>(vars.size()) < size) {
      int best = -1;
      double best_score = -std::numeric_limits<double>::infinity();
      for (int strict = 1; strict >= 0 && best < 0; --strict) {
        for (int j = 0; j < n; ++j) {
          if (chosen[static_cast<std::size_t>(j)]) continue;
          const int g = group_of[static_cast<std::size_t>(j)];
          if (strict && g >= 0) {
            // Not the over-represented value of its group while the other value has candidates.
            const int v = x[static_cast<std::size_t>(j)];
            const auto mine = 2 * static_cast<std::size_t>(g) + static_cast<std::size_t>(v);
            const auto other = 2 * static_cast<std::size_t>(g) + static_cast<std::size_t>(1 - v);
            if (count[mine] > count[other] && remaining[other] > 0) continue;
          }
          const double score =
              benefit[static_cast<std::size_t>(j)] - delta[static_cast<std::size_t>(j)];
          if (score > best_score) {
            best_score = score;
            best = j;
          }
        }
      }
      add(best);
    }
    std::sort(vars.begin(), vars.end());
    const int m = static_cast<int>(vars.size());
    const QuboModel sub = subproblem(model, native, x, vars);
    Assignment x_sub(static_cast<std::size_t>(m));
    for (int a = 0; a < m; ++a)
      x_sub[static_cast<std::size_t>(a)] =
          x[static_cast<std::size_t>(vars[static_cast<std::size_t>(a)])];
    // Whole energy = subproblem energy + what the clamped variables contribute alone.
    const double constant = energy - sub.energy(x_sub);

    SolveOptions sub_options = options;
    sub_options.seed = mix64(options.seed + static_cast<std::uint64_t>(rounds) + 1);
    if (progress) {
      sub_options.progress = [&](const SolveProgress& inner) {
        round_stage = "qaoa round " + std::to_string(rounds + 1) + "/" +
                      std::to_string(qaoa.decomposition_rounds) + ": " + std::string(inner.stage);
        SolveProgress p = inner;
        p.stage = round_stage;
        p.best_energy = energy;
        p.objective = std::numeric_limits<double>::quiet_NaN();  // the subproblem's units
        progress(p);
      };
    }
    Round round;
    round.size = m;
    Assignment best;
    const bool sub_native = native && sub.has_constraints();
    if (qaoa.warm_start) {
      const bool transfer = angles_size == m;
      WarmStartRun run = run_warm_start(sub, sub_native, x_sub, sub_qaoa,
                                        transfer ? angles : std::vector<double>{},
                                        transfer ? qaoa.transfer_evaluations : qaoa.max_evaluations,
                                        sub_options.seed, options.memory_limit_bytes, stop);
      angles = std::move(run.angles);
      angles_size = m;
      if (progress) {  // one stage per round: its optimiser evaluations, all done
        const std::string stage = "warm start p=" + std::to_string(qaoa.layers);
        SolveProgress p;
        p.stage = stage;
        p.done = p.total = std::max(1, run.evaluations);
        p.objective = run.expected_energy;
        sub_options.progress(p);
      }
      round.expected_energy = run.expected_energy + constant;
      round.best_sampled = run.best_energy + constant;
      best = std::move(run.best);
    } else {
      SolveResult sub_result;
      std::vector<Assignment> sub_out;
      solve_direct(sub, sub_native, {}, sub_qaoa, sub_options, stop, sub_result, sub_out);
      round.expected_energy = sub_result.counters["expected_energy"] + constant;
      double best_e = std::numeric_limits<double>::infinity();
      for (Assignment& y : sub_out) {
        if (sub_native && !sub.is_feasible(y)) continue;
        const double e = sub.energy(y);
        if (e < best_e) {
          best_e = e;
          best = std::move(y);
        }
      }
      round.best_sampled = best_e + constant;
      reserve_s = static_cast<double>(qaoa.layers + 6) * sub_result.counters["layer_time_s"];
    }
    // The best sample (descended on the whole model, as QaoaOptions::greedy_descent asks: the
    // sample lands near a better local minimum more often than on it) replaces the incumbent only
    // when the whole model's own energy is strictly lower.
    if (!best.empty() && best != x_sub) {
      Assignment candidate = x;
      for (int a = 0; a < m; ++a)
        candidate[static_cast<std::size_t>(vars[static_cast<std::size_t>(a)])] =
            best[static_cast<std::size_t>(a)];
      if (qaoa.greedy_descent) greedy_descent(model, candidate, swaps);
      const double e = model.energy(candidate);
      if (e < energy - tol && (!native || model.is_feasible(candidate))) {
        x = std::move(candidate);
        energy = e;
        round.accepted = true;
        ++accepted;
        std::fill(tried.begin(), tried.end(), 0);
      }
    }
    stall = round.accepted ? 0 : stall + 1;
    round.time_s = watch.elapsed_s();
    if (qaoa.warm_start) reserve_s = round.time_s;
    log.push_back(round);
    if (!stop.should_stop()) report_round(rounds + 1);
  }
  out.push_back(x);
  std::ostringstream info;
  info << rounds << " rounds of " << size << "-variable subproblems ("
       << (qaoa.warm_start ? "warm-start" : "plain") << " QAOA), " << accepted
       << " accepted, warm start " << std::setprecision(12) << start_energy << " -> " << energy;
  result.info["decomposition"] = info.str();
  // Warm-start subproblems are optimised derivative-free whatever QaoaOptions::optimizer says.
  if (qaoa.warm_start && qaoa.optimizer != QaoaOptimizer::kNone)
    result.info["optimizer"] = "cobyla";
  result.info["round_log"] = format_log(log);
  result.counters["decomposition_rounds"] = rounds;
  result.counters["accepted_rounds"] = accepted;
  result.counters["subproblem_qubits"] = size;
  result.counters["start_energy"] = start_energy;
}

}  // namespace qprune::detail::qaoa
