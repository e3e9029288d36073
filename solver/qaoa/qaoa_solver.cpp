// QaoaSolver: options, the angle schedule (linear ramp, INTERP, fixed), the NLopt optimisation
// with adjoint gradients, the final-state statistics and the sampling around the engine of
// statevector.hpp. The precision is chosen once per solve; everything below run<Real>() is
// compiled for float and double.
//
// Adjoint gradient (f = <psi_p|C|psi_p>, |psi_p> = U_p ... U_1 |psi_0>, U_l = M(beta_l) P(gamma_l),
// P(g) = exp(-i g C), M(b) = R_K(b) ... R_1(b), R_k(b) = exp(-i b G_k)):
//   df/dtheta = 2 Re <lam|d psi_p/dtheta> with lam = C psi_p. Walking back through the rotations
//   with psi_k, lam_k the states after rotation k (obtained by applying the inverse rotations to
//   psi_p and lam, so nothing is stored per layer): df/dbeta_l = sum_k 2 Im <lam_k|G_k|psi_k>,
//   and after the mixer is undone df/dgamma_l = 2 Im <lam|C|psi>, then the inverse phase.
#include "qprune/qaoa_solver.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <utility>

#include "qprune/error.hpp"
#include "qprune/greedy_solver.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"
#include "solver/common/samples.hpp"
#include "solver/qaoa/angle_search.hpp"
#include "solver/qaoa/qaoa_internal.hpp"
#include "solver/qaoa/statevector.hpp"

namespace qprune {
namespace detail::qaoa {
namespace {

std::string join(const std::vector<double>& v) {
  std::ostringstream out;
  out << std::setprecision(17);
  for (std::size_t i = 0; i < v.size(); ++i) out << (i ? " " : "") << v[i];
  return out.str();
}

std::vector<Group> engine_groups(const std::vector<CardinalityConstraint>& constraints) {
  std::vector<Group> groups;
  groups.reserve(constraints.size());
  for (const auto& c : constraints) groups.push_back({c.variables, c.k});
  return groups;
}

/// INTERP (Zhou et al. 2020): angles for p + 1 layers from optimised angles for p layers,
/// x'_i = (i - 1)/p x_{i-1} + (p - i + 1)/p x_i for i = 1..p+1 with x_0 = x_{p+1} = 0.
std::vector<double> interp(const std::vector<double>& x) {
  const int p = static_cast<int>(x.size());
  std::vector<double> out(static_cast<std::size_t>(p + 1));
  for (int i = 1; i <= p + 1; ++i) {
    const double prev = i - 1 >= 1 ? x[static_cast<std::size_t>(i - 2)] : 0.0;
    const double cur = i <= p ? x[static_cast<std::size_t>(i - 1)] : 0.0;
    out[static_cast<std::size_t>(i - 1)] =
        static_cast<double>(i - 1) / p * prev + static_cast<double>(p - i + 1) / p * cur;
  }
  return out;
}

template <class Real>
class Runner {
 public:
  using Complex = std::complex<Real>;
  /// `progress` receives each evaluation of optimise(); `scale` turns the normalised <C> into
  /// model units.
  Runner(const Engine<Real>& engine, bool gradients, const StopCondition& stop,
         const std::function<void(const SolveProgress&)>& progress, double scale)
      : engine_(engine),
        stop_(stop),
        progress_(progress),
        scale_(scale),
        psi_(engine.make_state()) {
    if (gradients) lam_ = engine.make_state();
  }

  /// <C> at angles x = (gamma_0..gamma_{p-1}, beta_0..beta_{p-1}); fills grad when non-null.
  /// `abortable`: a stop seen between two layers (stop_soon) abandons the evaluation and returns
  /// NaN, leaving the state invalid: one layer of a 20-qubit state takes tens of milliseconds, an
  /// evaluation with its gradient several times p of them.
  double evaluate(const double* x, int p, double* grad, bool abortable = false) {
    Stopwatch watch;
    Complex* psi = psi_.data();
    const auto stopped = [&] { return abortable && stop_soon(p); };
    engine_.initial_state(psi);
    for (int l = 0; l < p; ++l) {
      if (stopped()) return std::numeric_limits<double>::quiet_NaN();
      engine_.layer(psi, x[l], x[p + l]);
    }
    const double forward_s = watch.elapsed_s();
    layer_time_s_ += forward_s;
    layers_ += p;
    fastest_layer_s_ = std::min(fastest_layer_s_, forward_s / p);
    ++evaluations_;
    if (grad == nullptr) return engine_.moments(psi).mean;
    Complex* lam = lam_.data();
    engine_.apply_cost(psi, lam);
    const double f = engine_.real_inner(psi, lam);
    for (int l = p - 1; l >= 0; --l) {
      if (stopped()) return std::numeric_limits<double>::quiet_NaN();
      grad[p + l] = engine_.mixer_adjoint(psi, lam, x[p + l]);
      grad[l] = engine_.phase_adjoint(psi, lam, x[l]);
    }
    return f;
  }

  /// Whether to stop optimising at depth p: a stop, or too little time left for the closing work
  /// after the optimisation (the final state's p layers, its statistics and sampling: about four
  /// more layers' worth, by the layer time measured so far), so that the whole solve ends at the
  /// time limit rather than that much after it.
  [[nodiscard]] bool stop_soon(int p) const {
    // The fastest layer seen, not the mean: the first evaluation pays the state's page faults.
    const double layer_s = std::isfinite(fastest_layer_s_) ? fastest_layer_s_ : 0.0;
    return stop_.should_stop_within(static_cast<double>(p + 4) * layer_s);
  }

  /// Optimises angles in place and leaves them at the best point evaluated (the start point
  /// included: NLopt may return a worse one after a round-off stop); returns evaluations used.
  /// Each evaluation is reported as progress of `stage` out of the o.max_evaluations budget.
  int optimise(std::vector<double>& x, QaoaOptimizer optimizer, const QaoaOptions& o,
               const std::string& stage) {
    const int p = static_cast<int>(x.size() / 2);
    const int before = evaluations_;
    double best = std::numeric_limits<double>::infinity();
    AngleSearch search;
    search.optimizer = optimizer;
    search.max_evaluations = o.max_evaluations;
    search.xtol_rel = o.xtol_rel;
    search.ftol_rel = o.ftol_rel;
    // A stop ends the optimisation without another evaluation (or in the middle of one).
    search.objective = [&](const double* a, double* g) {
      return stop_soon(p) ? std::numeric_limits<double>::quiet_NaN() : evaluate(a, p, g, true);
    };
    search.stop_after = [&](double best_so_far) {
      best = best_so_far;
      report(stage, evaluations_ - before, o.max_evaluations, best);
      return stop_.should_stop();
    };
    (void)minimise_angles(x, search);
    // Converged before the budget: the stage is complete all the same.
    const int used = evaluations_ - before;
    if (optimizer != QaoaOptimizer::kNone && used < o.max_evaluations && !stop_.should_stop()) {
      report(stage, o.max_evaluations, o.max_evaluations, best);
    }
    return used;
  }

  [[nodiscard]] Complex* state() { return psi_.data(); }
  [[nodiscard]] double layer_time_s() const {
    return layers_ ? layer_time_s_ / static_cast<double>(layers_) : 0.0;
  }
  [[nodiscard]] int evaluations() const { return evaluations_; }

 private:
  const Engine<Real>& engine_;
  void report(const std::string& stage, int done, int total, double best) const {
    if (!progress_) return;
    SolveProgress p;
    p.stage = stage;
    p.done = std::min(done, total);
    p.total = total;
    if (std::isfinite(best)) p.objective = best * scale_;
    progress_(p);
  }

  const StopCondition& stop_;
  const std::function<void(const SolveProgress&)>& progress_;
  double scale_;
  AlignedArray<Complex> psi_;
  AlignedArray<Complex> lam_;
  double layer_time_s_ = 0.0;
  double fastest_layer_s_ = std::numeric_limits<double>::infinity();
  long layers_ = 0;
  int evaluations_ = 0;
};

template <class Real>
void run(const QuboModel& model, bool native, const std::vector<CardinalityConstraint>& feasibility,
         const QaoaOptions& o, const SolveOptions& options, const StopCondition& stop,
         SolveResult& result, std::vector<Assignment>& out) {
  const int n = model.num_variables();
  const double b = model.max_flip_change();
  const double scale = b > 0.0 ? b : 1.0;
  const CostTerms cost = CostTerms::from_model(model, scale);
  const std::vector<Group> groups = engine_groups(native ? model.constraints() : feasibility);
  const MixerKind mixer = !native || groups.empty()       ? MixerKind::kX
                          : o.mixer == QaoaMixer::kXyRing ? MixerKind::kXyRing
                                                          : MixerKind::kXyComplete;
  const SpaceKind space = mixer != MixerKind::kX && o.space != QaoaSpace::kFull
                              ? SpaceKind::kSubspace
                              : SpaceKind::kFull;
  const bool gradients = o.optimizer == QaoaOptimizer::kLbfgs;
  // L-BFGS keeps a second state for the adjoint gradient pass.
  const Engine<Real> engine(cost, groups, mixer, space, gradients ? 2 : 1, DiagonalStorage::kStored,
                            options.memory_limit_bytes);
  Runner<Real> runner(engine, gradients, stop, options.progress, scale);

  result.info["mixer"] = mixer == MixerKind::kX        ? "x"
                         : mixer == MixerKind::kXyRing ? "xy_ring"
                                                       : "xy_complete";
  result.info["space"] = space == SpaceKind::kFull ? "full" : "subspace";
  result.counters["qubits"] = n;
  result.counters["dimension"] = static_cast<double>(engine.dimension());
  result.counters["diagonal_time_s"] = engine.diagonal_time_s();
  result.counters["state_gib"] = engine.state_bytes() / double(1 << 30);

  // Angles.
  std::vector<double> gammas, betas;
  const auto ramp = [&](int p) {
    gammas.assign(static_cast<std::size_t>(p), 0.0);
    betas.assign(static_cast<std::size_t>(p), 0.0);
    for (int l = 0; l < p; ++l) {
      const double t = (l + 0.5) / p;
      gammas[static_cast<std::size_t>(l)] = t * o.ramp_dt;
      betas[static_cast<std::size_t>(l)] = (1.0 - t) * o.ramp_dt;
    }
  };
  // Plain variables, not a structured binding: the lambdas below capture them (C++20 allows a
  // captured binding, clang 14, which clang-tidy runs on, does not).
  const std::pair<double, double> range = engine.diagonal_range();
  const double cmin = range.first, cmax = range.second;
  const double optimum_tol = 1e-9 * std::max(1.0, std::abs(cmin));
  const auto angles = [&] {
    std::vector<double> x(gammas);
    x.insert(x.end(), betas.begin(), betas.end());
    return x;
  };
  int evaluations_used = 0;
  // Stage names are unique per optimisation, so done restarts from 0 only in a new stage.
  const auto optimise = [&](int p, const char* suffix = "") {
    std::vector<double> x = angles();
    const std::string stage = "qaoa p=" + std::to_string(p) + suffix;
    evaluations_used += runner.optimise(x, o.optimizer, o, stage);
    gammas.assign(x.begin(), x.begin() + p);
    betas.assign(x.begin() + p, x.end());
  };
  // Statistics of the state at the current angles, recorded per depth; returns <C> (normalised).
  // Not after a stop: it costs an evaluation, and the final state below is evaluated anyway
  // (NaN then, which ends the depth loop without a restart).
  const auto record = [&](int p) {
    if (stop.should_stop()) return std::numeric_limits<double>::quiet_NaN();
    const std::vector<double> x = angles();
    (void)runner.evaluate(x.data(), p, nullptr);
    const auto m = engine.moments(runner.state());
    const std::string key = "_p" + std::to_string(p);
    result.info["angles" + key] = "gamma [" + join(gammas) + "] beta [" + join(betas) + "]";
    result.info["evaluations" + key] = std::to_string(evaluations_used);
    result.counters["expected_energy" + key] = m.mean * scale;
    result.counters["optimum_probability" + key] =
        engine.probability_at(runner.state(), cmin, optimum_tol);
    result.counters["approximation_ratio" + key] =
        cmax > cmin ? (m.mean - cmax) / (cmin - cmax) : 1.0;
    evaluations_used = 0;
    return m.mean;
  };
  if (o.init == QaoaInit::kFixed) {
    gammas = o.gammas;
    betas = o.betas;
    optimise(static_cast<int>(gammas.size()));
    (void)record(static_cast<int>(gammas.size()));
  } else if (o.init == QaoaInit::kLinearRamp) {
    ramp(o.layers);
    optimise(o.layers);
    (void)record(o.layers);
  } else {
    ramp(1);
    optimise(1);
    double previous = record(1);
    int restarts = 0;
    // Round-off of <C> between two evaluations of the same angles (float sums lose ~1e-7).
    const double noise = (sizeof(Real) == 4 ? 1e-5 : 1e-11) * std::max(1.0, std::abs(cmin));
    for (int p = 2; p <= o.layers && !stop.should_stop(); ++p) {
      const std::vector<double> previous_gammas = gammas, previous_betas = betas;
      gammas = interp(previous_gammas);
      betas = interp(previous_betas);
      optimise(p);
      const std::vector<double> interp_gammas = gammas, interp_betas = betas;
      const int interp_evaluations = evaluations_used;
      double current = record(p);
      if (o.optimizer != QaoaOptimizer::kNone && current > previous + noise) {
        // The search from the INTERP point ended above the p - 1 optimum (a worse basin). The
        // p - 1 angles with an identity layer appended (gamma = beta = 0) reproduce that optimum
        // exactly, and the optimiser keeps the best point it saw, so restarting there makes
        // <C> non-increasing in p.
        ++restarts;
        gammas = previous_gammas;
        betas = previous_betas;
        gammas.push_back(0.0);
        betas.push_back(0.0);
        optimise(p, " restart");
        evaluations_used += interp_evaluations;
        const int total_evaluations = evaluations_used;
        const double restarted = record(p);
        if (restarted > current) {  // only by round-off: keep the better of the two searches
          gammas = interp_gammas;
          betas = interp_betas;
          evaluations_used = total_evaluations;
          (void)record(p);
        }
        current = std::min(current, restarted);
        result.info["restart_p" + std::to_string(p)] = "zero_padded";
      }
      previous = current;
    }
    result.counters["interp_restarts"] = restarts;
  }
  const int p = static_cast<int>(gammas.size());

  // Final state and its statistics (energies back in model units).
  const std::vector<double> x = angles();
  (void)runner.evaluate(x.data(), p, nullptr);
  const auto* psi = runner.state();
  const auto m = engine.moments(psi);
  result.counters["expected_energy"] = m.mean * scale;
  result.counters["energy_std"] = std::sqrt(std::max(0.0, m.second - m.mean * m.mean)) * scale;
  result.counters["optimum_probability"] = engine.probability_at(psi, cmin, optimum_tol);
  result.counters["optimum_energy"] = cmin * scale;
  result.counters["feasible_probability"] = groups.empty() ? 1.0 : engine.feasible_probability(psi);
  result.counters["approximation_ratio"] = cmax > cmin ? (m.mean - cmax) / (cmin - cmax) : 1.0;
  result.counters["layer_time_s"] = runner.layer_time_s();
  result.counters["evaluations"] = runner.evaluations();
  result.counters["layers"] = p;
  result.info["angles"] = "gamma [" + join(gammas) + "] beta [" + join(betas) + "]";

  const std::vector<std::uint64_t> shots = engine.sample(psi, o.shots, options.seed);
  std::vector<std::uint64_t> distinct(shots);
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  Assignment best;
  double best_e = std::numeric_limits<double>::infinity();
  for (std::uint64_t idx : shots) {
    const std::uint64_t z = engine.decode(idx);
    Assignment a(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      a[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((z >> i) & 1U);
    out.push_back(a);
  }
  // Only the distinct ones are scored for the descent start (cheap: at most `shots` energies).
  for (std::uint64_t idx : distinct) {
    const std::uint64_t z = engine.decode(idx);
    Assignment a(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      a[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((z >> i) & 1U);
    const double e = model.energy(a);
    if (e < best_e) {
      best_e = e;
      best = std::move(a);
    }
  }
  result.counters["distinct_shots"] = static_cast<double>(distinct.size());
  if (o.greedy_descent && !best.empty()) {
    greedy_descent(model, best, native && model.has_constraints());
    out.push_back(best);
  }
}

}  // namespace

double direct_dimension(const QuboModel& model, bool native, const QaoaOptions& qaoa) {
  const bool xy = native && model.has_constraints();
  const SpaceKind space =
      xy && qaoa.space != QaoaSpace::kFull ? SpaceKind::kSubspace : SpaceKind::kFull;
  return space_dimension(model.num_variables(), engine_groups(model.constraints()), space);
}

void solve_direct(const QuboModel& model, bool native,
                  const std::vector<CardinalityConstraint>& feasibility, const QaoaOptions& qaoa,
                  const SolveOptions& options, const StopCondition& stop, SolveResult& result,
                  std::vector<Assignment>& out) {
  if (qaoa.precision == QaoaPrecision::kFloat) {
    run<float>(model, native, feasibility, qaoa, options, stop, result, out);
  } else {
    run<double>(model, native, feasibility, qaoa, options, stop, result, out);
  }
}

void greedy_descent(const QuboModel& model, Assignment& x, bool swaps) {
  const CompiledProblem problem(model, swaps);
  const SteepestDescent descent(problem, 1e-12 * std::max(1.0, model.max_flip_change()));
  std::vector<double> f;
  problem.fields(x.data(), f);
  (void)descent.run(x.data(), f.data(), 100 * std::int64_t{model.num_variables()} + 100);
}

}  // namespace detail::qaoa

void QaoaOptions::validate() const {
  const auto fail = [](const std::string& what) { throw InvalidArgument("QaoaOptions::" + what); };
  if (init != QaoaInit::kFixed && layers < 1)
    fail("layers must be >= 1, got " + std::to_string(layers));
  if (!(std::isfinite(ramp_dt) && ramp_dt > 0.0)) fail("ramp_dt must be finite and > 0");
  if (init == QaoaInit::kFixed) {
    if (gammas.empty() || gammas.size() != betas.size())
      fail("gammas and betas must have the same length >= 1 with init = fixed, got " +
           std::to_string(gammas.size()) + " and " + std::to_string(betas.size()));
    for (double v : gammas)
      if (!std::isfinite(v)) fail("gammas must be finite");
    for (double v : betas)
      if (!std::isfinite(v)) fail("betas must be finite");
  }
  if (max_evaluations < 1)
    fail("max_evaluations must be >= 1, got " + std::to_string(max_evaluations));
  if (!(xtol_rel >= 0.0)) fail("xtol_rel must be >= 0");
  if (!(ftol_rel >= 0.0)) fail("ftol_rel must be >= 0");
  if (shots < 1) fail("shots must be >= 1, got " + std::to_string(shots));
  if (max_qubits < 1 || max_qubits > 40)
    fail("max_qubits must be in [1, 40], got " + std::to_string(max_qubits));
  if (decomposition_rounds < 1)
    fail("decomposition_rounds must be >= 1, got " + std::to_string(decomposition_rounds));
  if (subproblem_qubits < 2 || subproblem_qubits > 30)
    fail("subproblem_qubits must be in [2, 30], got " + std::to_string(subproblem_qubits));
  if (!(warm_epsilon > 0.0 && warm_epsilon <= 0.5))
    fail("warm_epsilon must be in (0, 0.5], got " + std::to_string(warm_epsilon));
  if (transfer_evaluations < 1)
    fail("transfer_evaluations must be >= 1, got " + std::to_string(transfer_evaluations));
  if (stall_rounds < 1) fail("stall_rounds must be >= 1, got " + std::to_string(stall_rounds));
}

QaoaSolver::QaoaSolver(QaoaOptions options) : options_(std::move(options)) { options_.validate(); }

SolveResult QaoaSolver::solve(const QuboModel& model, const SolveOptions& options) const {
  detail::SolveSetup setup(name(), model, options);
  SolveResult& result = setup.result;
  const detail::StopCondition stop(options);
  const bool native = setup.native();
  const QuboModel& searched = setup.searched();
  result.info["precision"] = options_.precision == QaoaPrecision::kFloat ? "float" : "double";
  result.info["optimizer"] = options_.optimizer == QaoaOptimizer::kCobyla       ? "cobyla"
                             : options_.optimizer == QaoaOptimizer::kNelderMead ? "nelder_mead"
                             : options_.optimizer == QaoaOptimizer::kLbfgs      ? "lbfgs"
                                                                                : "none";
  std::vector<Assignment> finals;
  if (searched.num_variables() == 0) {
    finals.push_back(Assignment{});
  } else if (detail::qaoa::direct_dimension(searched, native, options_) >
             std::ldexp(1.0, options_.max_qubits)) {
    // The warm start: the greedy solver's answer with the same options (seed, reads), so the
    // decomposition, which only accepts improvements, never ends above greedy.
    SolveOptions greedy_options = options;
    greedy_options.progress = nullptr;
    greedy_options.split_components = false;
    greedy_options.reads_until_time_limit = false;
    const SolveResult greedy = GreedySolver().solve(model, greedy_options);
    if (!greedy.has_solution()) {  // stopped before its first read
      result.status = detail::final_status(stop.first_stop(), options, result);
      result.message = "stopped before the warm start";
      result.wall_time_s = stop.elapsed_s();
      return std::move(result);
    }
    detail::qaoa::solve_decomposed(searched, native, greedy.best().x, options_, options, stop,
                                   result, finals);
  } else {
    result.info["decomposition"] = "none";
    detail::qaoa::solve_direct(searched, native, model.constraints(), options_, options, stop,
                               result, finals);
  }
  const std::size_t shots = finals.size();
  detail::finalize_samples(model, std::move(finals), options.max_samples, result);
  // A stop that cut the optimisation or the rounds short, not a check after the work: a run that
  // finished just after the limit did all it was asked.
  result.status = detail::final_status(stop.first_stop(), options, result);
  result.wall_time_s = stop.elapsed_s();
  std::ostringstream msg;
  msg << shots << " assignments sampled/returned, p = "
      << (result.counters.count("layers") ? static_cast<int>(result.counters["layers"]) : 0);
  result.message = msg.str();
  return std::move(result);  // a reference into setup: move, do not copy
}

QaoaAngles optimised_qaoa_angles(const QuboModel& model, const QaoaOptions& options,
                                 std::uint64_t seed) {
  if (model.has_constraints())
    throw InvalidArgument(
        "optimised QAOA angles: the model has constraint groups; give its penalised form (X "
        "mixer)");
  if (model.num_variables() > options.max_qubits)
    throw InvalidArgument("optimised QAOA angles: " + std::to_string(model.num_variables()) +
                          " variables, above the " + std::to_string(options.max_qubits) +
                          " qubits simulated directly; give the angles, or write a subproblem");
  QaoaOptions o = options;
  o.shots = 1;
  o.greedy_descent = false;
  SolveOptions so;
  so.seed = seed;
  const SolveResult r = QaoaSolver(o).solve(model, so);
  // info["angles"] is "gamma [g1 g2 ...] beta [b1 b2 ...]", 17 significant digits.
  const std::string& text = r.info.at("angles");
  QaoaAngles angles;
  const auto read_list = [&](const std::string& key, std::vector<double>& out) {
    const std::size_t open = text.find(key + " [");
    const std::size_t close = text.find(']', open);
    std::istringstream list(text.substr(open + key.size() + 2, close - open - key.size() - 2));
    for (double v = 0.0; list >> v;) out.push_back(v);
  };
  read_list("gamma", angles.gammas);
  read_list("beta", angles.betas);
  if (angles.gammas.empty() || angles.gammas.size() != angles.betas.size())
    throw Error("optimised QAOA angles: could not read the solver's angles from '" + text + "'");
  return angles;
}

}  // namespace qprune
