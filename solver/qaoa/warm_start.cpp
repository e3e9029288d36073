// Warm-start QAOA on a subproblem (the maths is in warm_start.hpp): the factored state space, the
// warm initial state, the layers, COBYLA over the angles and the sampling.
#include "solver/qaoa/warm_start.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <complex>
#include <string>

#include "core/memory_check.hpp"
#include "core/rng.hpp"
#include "qprune/error.hpp"
#include "solver/qaoa/angle_search.hpp"

namespace qprune::detail::qaoa {
namespace {

using Complex = std::complex<double>;

/// One factor of the state: its local configurations (as masks of subproblem variables) and the
/// warm state's real amplitudes on them. Index of a basis state = sum_f r_f stride_f.
struct Factor {
  std::vector<std::uint32_t> masks;
  std::vector<double> phi;
  std::size_t stride = 1;
};

/// The k-subsets of `vars` as masks, in lexicographic order of the chosen positions.
std::vector<std::uint32_t> subsets(const std::vector<int>& vars, int k) {
  std::vector<std::uint32_t> out;
  const int m = static_cast<int>(vars.size());
  std::vector<int> pick(static_cast<std::size_t>(k));
  for (int t = 0; t < k; ++t) pick[static_cast<std::size_t>(t)] = t;
  while (true) {
    std::uint32_t mask = 0;
    for (int t : pick) mask |= 1U << vars[static_cast<std::size_t>(t)];
    out.push_back(mask);
    int t = k - 1;
    while (t >= 0 && pick[static_cast<std::size_t>(t)] == m - k + t) --t;
    if (t < 0) break;
    ++pick[static_cast<std::size_t>(t)];
    for (int u = t + 1; u < k; ++u)
      pick[static_cast<std::size_t>(u)] = pick[static_cast<std::size_t>(u - 1)] + 1;
  }
  return out;
}

class WarmStartState {
 public:
  WarmStartState(const QuboModel& model, bool native, const Assignment& start, double epsilon,
                 std::optional<std::uint64_t> memory_limit_bytes) {
    const int n = model.num_variables();
    // c_i = eps or 1 - eps; amplitude of |1> = sqrt(c_i) = sin(theta_i / 2), of |0> = cos.
    const auto amplitude = [&](int i, bool one) {
      const double c = start[static_cast<std::size_t>(i)] ? 1.0 - epsilon : epsilon;
      return std::sqrt(one ? c : 1.0 - c);
    };
    std::vector<char> grouped(static_cast<std::size_t>(n), 0);
    std::vector<Factor> groups;
    if (native) {
      for (const auto& g : model.constraints()) {
        Factor f;
        f.masks = subsets(g.variables, g.k);
        for (std::uint32_t mask : f.masks) {
          double a = 1.0;
          for (int v : g.variables) a *= amplitude(v, ((mask >> v) & 1U) != 0);
          f.phi.push_back(a);
        }
        double norm = 0.0;
        for (double a : f.phi) norm += a * a;
        for (double& a : f.phi) a /= std::sqrt(norm);
        for (int v : g.variables) grouped[static_cast<std::size_t>(v)] = 1;
        groups.push_back(std::move(f));
      }
    }
    for (int i = 0; i < n; ++i) {
      if (grouped[static_cast<std::size_t>(i)]) continue;
      factors_.push_back({{0U, 1U << i}, {amplitude(i, false), amplitude(i, true)}, 1});
    }
    for (Factor& f : groups) factors_.push_back(std::move(f));
    double dim = 1.0;
    for (const Factor& f : factors_) dim *= static_cast<double>(f.masks.size());
    // The masks, the diagonal and two states (the initial one is kept).
    check_memory(dim * (4.0 + 8.0 + 2.0 * sizeof(Complex)),
                 "qaoa warm-start statevector (" + std::to_string(static_cast<std::uint64_t>(dim)) +
                     " amplitudes x 2 states + diagonal)",
                 "use smaller subproblems (QaoaOptions::subproblem_qubits)", memory_limit_bytes);
    // Mixed radix, the first factor fastest.
    std::vector<std::uint32_t> masks{0U};
    std::vector<double> amp{1.0};
    for (Factor& f : factors_) {
      f.stride = masks.size();
      std::vector<std::uint32_t> next_masks;
      std::vector<double> next_amp;
      next_masks.reserve(masks.size() * f.masks.size());
      next_amp.reserve(masks.size() * f.masks.size());
      for (std::size_t r = 0; r < f.masks.size(); ++r) {
        for (std::size_t t = 0; t < masks.size(); ++t) {
          next_masks.push_back(masks[t] | f.masks[r]);
          next_amp.push_back(amp[t] * f.phi[r]);
        }
      }
      masks = std::move(next_masks);
      amp = std::move(next_amp);
    }
    masks_ = std::move(masks);
    initial_.assign(amp.begin(), amp.end());
    // Energies over set bits from a dense copy of the (at most 30-variable) subproblem.
    const auto size = static_cast<std::size_t>(n);
    std::vector<double> q(size * size, 0.0);
    for (int i = 0; i < n; ++i) {
      model.for_each_in_row(i, [&](int j, double v) {
        q[static_cast<std::size_t>(i) * size + static_cast<std::size_t>(j)] = v;
      });
    }
    diagonal_.resize(masks_.size());
    for (std::size_t s = 0; s < masks_.size(); ++s) {
      double e = model.offset();
      for (std::uint32_t rest = masks_[s]; rest != 0; rest &= rest - 1) {
        const int i = std::countr_zero(rest);
        e += model.linear()[i];
        for (std::uint32_t lower = masks_[s] & ((1U << i) - 1U); lower != 0; lower &= lower - 1)
          e += q[static_cast<std::size_t>(i) * size +
                 static_cast<std::size_t>(std::countr_zero(lower))];
      }
      diagonal_[s] = e;
    }
  }

  [[nodiscard]] std::size_t dimension() const { return masks_.size(); }

  /// <C> after p layers at x = (gammas, betas), gammas on the cost divided by `scale`; the
  /// state stays in psi_.
  double evaluate(const double* x, int p, double scale) {
    psi_ = initial_;
    const std::size_t dim = psi_.size();
    for (int l = 0; l < p; ++l) {
      const double gamma = x[l] / scale;
      for (std::size_t s = 0; s < dim; ++s) psi_[s] *= std::polar(1.0, -gamma * diagonal_[s]);
      const Complex a = std::polar(1.0, -2.0 * x[p + l]) - 1.0;
      for (const Factor& f : factors_) mix(f, a);
    }
    double mean = 0.0;
    for (std::size_t s = 0; s < dim; ++s) mean += std::norm(psi_[s]) * diagonal_[s];
    return mean;
  }

  /// `shots` basis indices drawn from |psi|^2: sorted uniforms swept once over the cumulative sum.
  [[nodiscard]] std::vector<std::size_t> sample(int shots, std::uint64_t seed) const {
    pcg32 rng = make_rng(seed, 0x3a3a5eedULL);
    std::vector<double> u(static_cast<std::size_t>(shots));
    double total = 0.0;
    for (const Complex& z : psi_) total += std::norm(z);
    for (double& v : u) v = uniform01(rng) * total;
    std::sort(u.begin(), u.end());
    std::vector<std::size_t> out;
    out.reserve(u.size());
    double cumulative = 0.0;
    std::size_t s = 0;
    for (double v : u) {
      while (s + 1 < psi_.size() && cumulative + std::norm(psi_[s]) <= v)
        cumulative += std::norm(psi_[s++]);
      out.push_back(s);
    }
    return out;
  }

  [[nodiscard]] std::uint32_t mask(std::size_t s) const { return masks_[s]; }
  [[nodiscard]] double energy(std::size_t s) const { return diagonal_[s]; }

 private:
  /// psi -> psi + a |phi_f><phi_f|psi> on factor f (phi_f real).
  void mix(const Factor& f, Complex a) {
    const std::size_t d = f.masks.size(), stride = f.stride, block = d * stride;
    for (std::size_t base = 0; base < psi_.size(); base += block) {
      for (std::size_t t = 0; t < stride; ++t) {
        Complex w = 0.0;
        for (std::size_t r = 0; r < d; ++r) w += f.phi[r] * psi_[base + r * stride + t];
        w *= a;
        for (std::size_t r = 0; r < d; ++r) psi_[base + r * stride + t] += f.phi[r] * w;
      }
    }
  }

  std::vector<Factor> factors_;
  std::vector<std::uint32_t> masks_;
  std::vector<double> diagonal_;
  std::vector<Complex> initial_;
  std::vector<Complex> psi_;
};

}  // namespace

WarmStartRun run_warm_start(const QuboModel& model, bool native, const Assignment& start,
                            const QaoaOptions& qaoa, const std::vector<double>& initial_angles,
                            int max_evaluations, std::uint64_t seed,
                            std::optional<std::uint64_t> memory_limit_bytes,
                            const StopCondition& stop) {
  const int n = model.num_variables();
  if (n > 30) {
    throw InvalidArgument("warm-start QAOA takes at most 30 variables, got " + std::to_string(n));
  }
  WarmStartState state(model, native, start, qaoa.warm_epsilon, memory_limit_bytes);
  const double b = model.max_flip_change();
  const double scale = b > 0.0 ? b : 1.0;
  const int p = qaoa.layers;
  std::vector<double> x = initial_angles;
  const auto num_angles = 2 * static_cast<std::size_t>(p);
  if (x.size() != num_angles) {
    x.assign(num_angles, 0.0);
    for (int l = 0; l < p; ++l) {
      const double t = (l + 0.5) / p;
      x[static_cast<std::size_t>(l)] = t * qaoa.ramp_dt;
      x[static_cast<std::size_t>(p) + static_cast<std::size_t>(l)] = (1.0 - t) * qaoa.ramp_dt;
    }
  }
  WarmStartRun run;
  run.dimension = state.dimension();
  // Derivative-free (COBYLA whatever qaoa.optimizer names, unless kNone): a subproblem's
  // evaluation costs microseconds.
  AngleSearch search;
  search.optimizer =
      qaoa.optimizer == QaoaOptimizer::kNone ? QaoaOptimizer::kNone : QaoaOptimizer::kCobyla;
  search.max_evaluations = max_evaluations;
  search.xtol_rel = qaoa.xtol_rel;
  search.ftol_rel = qaoa.ftol_rel;
  search.objective = [&](const double* a, double*) { return state.evaluate(a, p, scale); };
  search.stop_after = [&](double) { return stop.should_stop(); };
  run.evaluations = minimise_angles(x, search);
  run.expected_energy = state.evaluate(x.data(), p, scale);
  ++run.evaluations;
  run.angles = x;
  for (std::size_t s : state.sample(qaoa.shots, seed)) {
    if (state.energy(s) < run.best_energy) {
      run.best_energy = state.energy(s);
      const std::uint32_t mask = state.mask(s);
      run.best.assign(static_cast<std::size_t>(n), 0);
      for (int i = 0; i < n; ++i)
        run.best[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((mask >> i) & 1U);
    }
  }
  return run;
}

}  // namespace qprune::detail::qaoa
