// qbsolv-style decomposition for problems larger than the statevector: start from a greedy
// solution, then repeatedly pick a subproblem of at most max_qubits variables (round 0: the
// largest potential gains -flip_delta; later rounds: half the best-ranked after a rotating offset,
// half drawn at random from the seed), fold the clamped variables into the subproblem's linear
// terms, solve it with QAOA and keep the result when the whole energy improves. Within each group
// the chosen variables keep their count of ones (a subproblem group with that k, solved with the
// XY mixer from a Dicke state), so every accepted assignment stays feasible.
#include <algorithm>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>

#include "core/rng.hpp"
#include "solver/qaoa/qaoa_internal.hpp"

namespace qprune::detail::qaoa {
namespace {

/// Feasible greedy start: per group the k variables with the smallest linear terms set, the rest
/// 0; then the descent.
Assignment greedy_start(const QuboModel& model, bool native) {
  Assignment x(static_cast<std::size_t>(model.num_variables()), 0);
  if (native) {
    for (const auto& g : model.constraints()) {
      std::vector<int> v = g.variables;
      std::stable_sort(v.begin(), v.end(),
                       [&](int a, int b) { return model.linear()[a] < model.linear()[b]; });
      for (int t = 0; t < g.k; ++t) x[static_cast<std::size_t>(v[static_cast<std::size_t>(t)])] = 1;
    }
  }
  greedy_descent(model, x, native && model.has_constraints());
  return x;
}

}  // namespace

void solve_decomposed(const QuboModel& model, bool native, const QaoaOptions& qaoa,
                      const SolveOptions& options, const StopCondition& stop, SolveResult& result,
                      std::vector<Assignment>& out) {
  const int n = model.num_variables();
  const int size = std::min(n, qaoa.max_qubits);
  Assignment x = greedy_start(model, native);
  out.push_back(x);
  double energy = model.energy(x);
  const double start_energy = energy;
  std::vector<int> group_of(static_cast<std::size_t>(n), -1);
  for (std::size_t g = 0; g < model.constraints().size(); ++g)
    for (int v : model.constraints()[g].variables)
      group_of[static_cast<std::size_t>(v)] = static_cast<int>(g);

  // Each round's QAOA stages are reported under the round's name, with the energy of the whole
  // current assignment (in kPenalty mode that of the penalised model being searched).
  const auto& progress = options.progress;
  std::string round_stage;
  const auto report_round = [&](int done) {
    if (!progress) return;
    SolveProgress p;
    p.stage = "qaoa decomposition";
    p.done = done;
    p.total = qaoa.decomposition_rounds;
    p.best_energy = energy;
    progress(p);
  };

  QaoaOptions sub = qaoa;
  sub.max_qubits = 40;  // the subproblem is solved directly
  int rounds = 0, accepted = 0;
  double layer_time = 0.0;
  // A round needs its subproblem's state built, an evaluation or more and the closing work
  // (about p + 6 layers of the last round's measured layer time): a round that cannot fit in the
  // time left is not started, and the run ends at the limit.
  const auto round_reserve_s = [&] { return static_cast<double>(qaoa.layers + 6) * layer_time; };
  for (; rounds < qaoa.decomposition_rounds && !stop.should_stop_within(round_reserve_s());
       ++rounds) {
    // Rank by potential gain (most negative flip delta first).
    std::vector<double> delta(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) delta[static_cast<std::size_t>(i)] = model.flip_delta(x, i);
    std::vector<int> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return delta[static_cast<std::size_t>(a)] < delta[static_cast<std::size_t>(b)];
    });
    std::vector<char> chosen(static_cast<std::size_t>(n), 0);
    std::vector<int> vars;
    const int ranked = rounds == 0 ? size : size / 2;
    const int offset = rounds == 0 ? 0 : (rounds * ranked) % std::max(1, n - ranked + 1);
    for (int t = 0; t < ranked; ++t) {
      const int v = order[static_cast<std::size_t>((offset + t) % n)];
      if (!chosen[static_cast<std::size_t>(v)]) {
        chosen[static_cast<std::size_t>(v)] = 1;
        vars.push_back(v);
      }
    }
    pcg32 rng = make_rng(options.seed, 0xdec0000ULL + static_cast<std::uint64_t>(rounds));
    while (static_cast<int>(vars.size()) < size) {
      const int v = static_cast<int>(uniform_below(rng, static_cast<std::uint32_t>(n)));
      if (!chosen[static_cast<std::size_t>(v)]) {
        chosen[static_cast<std::size_t>(v)] = 1;
        vars.push_back(v);
      }
    }
    std::sort(vars.begin(), vars.end());
    const int m = static_cast<int>(vars.size());
    std::vector<int> local(static_cast<std::size_t>(n), -1);
    for (int a = 0; a < m; ++a)
      local[static_cast<std::size_t>(vars[static_cast<std::size_t>(a)])] = a;

    // Subproblem: c'_a = c_a + sum_{j clamped} q_aj x_j; couplings among the chosen variables.
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
    QuboModel sub_model = QuboModel::from_couplings(m, c, couplings, 0.0, Storage::kDense);
    if (native) {
      for (std::size_t g = 0; g < model.constraints().size(); ++g) {
        CardinalityConstraint sc;
        sc.name = model.constraints()[g].name;
        for (int v : model.constraints()[g].variables) {
          const int a = local[static_cast<std::size_t>(v)];
          if (a < 0) continue;
          sc.variables.push_back(a);
          sc.k += x[static_cast<std::size_t>(v)];
        }
        if (!sc.variables.empty()) sub_model.add_constraint(std::move(sc));
      }
    }
    SolveResult sub_result;
    std::vector<Assignment> sub_out;
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
    solve_direct(sub_model, native && sub_model.has_constraints(), {}, sub, sub_options, stop,
                 sub_result, sub_out);
    layer_time = sub_result.counters["layer_time_s"];
    // Best candidate of the subproblem by the whole model's energy.
    Assignment best = x;
    double best_e = energy;
    for (const Assignment& y : sub_out) {
      Assignment cand = x;
      for (int a = 0; a < m; ++a)
        cand[static_cast<std::size_t>(vars[static_cast<std::size_t>(a)])] =
            y[static_cast<std::size_t>(a)];
      if (native && !model.is_feasible(cand)) continue;
      const double e = model.energy(cand);
      if (e < best_e) {
        best_e = e;
        best = std::move(cand);
      }
    }
    if (best_e < energy) {
      x = std::move(best);
      energy = best_e;
      ++accepted;
    }
    if (!stop.should_stop()) report_round(rounds + 1);
  }
  out.push_back(x);
  std::ostringstream info;
  info << rounds << " rounds of " << size << "-variable subproblems, " << accepted
       << " accepted, greedy start " << start_energy << " -> " << energy;
  result.info["decomposition"] = info.str();
  result.counters["decomposition_rounds"] = rounds;
  result.counters["layer_time_s"] = layer_time;
  result.counters["start_energy"] = start_energy;
}

}  // namespace qprune::detail::qaoa
