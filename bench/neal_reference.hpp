// A neal-class reference annealer for the sparse sa benchmarks: the algorithm of D-Wave's
// dwave-neal / dwave-samplers (`dwave/samplers/sa/src/cpu_sa.cpp`, Apache-2.0), written anew
// from its description, so qprune's kernels are compared with what a user of neal gets. Like neal
// it works on the Ising form (spins +-1), keeps the couplings as one adjacency list per variable
// (a vector of neighbours and a vector of J values, each row its own allocation), caches the
// energy change of flipping each spin and updates the neighbours' changes on an accepted flip,
// sweeps the variables in index order, draws from xorshift128+ (64-bit), and rejects a flip whose
// change exceeds 44.36142 / beta without drawing (no 64-bit draw could accept it: ln 2^64 =
// 44.3614). The schedule (one beta per sweep) is the caller's, so both annealers can be given the
// same one. Not part of the library; bench/ and tests/test_anneal_reference.cpp include it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune::bench {

/// xorshift128+ (Vigna), neal's generator, seeded as neal seeds it: (seed or all ones, 0).
class Xorshift128Plus {
 public:
  explicit Xorshift128Plus(std::uint64_t seed) : s0_(seed != 0 ? seed : ~std::uint64_t{0}) {}
  std::uint64_t operator()() {
    std::uint64_t a = s0_;
    const std::uint64_t b = s1_;
    s0_ = b;
    a ^= a << 23;
    s1_ = a ^ b ^ (a >> 17) ^ (b >> 26);
    return s1_ + b;
  }

 private:
  std::uint64_t s0_;
  std::uint64_t s1_ = 0;
};

class NealReference {
 public:
  struct Read {
    std::vector<std::int8_t> spins;
    double energy = 0.0;        ///< of the final state, in the QUBO's energy (same as Ising's)
    double anneal_s = 0.0;      ///< the run: initial changes and all sweeps
    std::int64_t attempts = 0;  ///< sweeps x n
    std::int64_t accepted = 0;
  };

  /// Ising form of `model` (x = (1 + s) / 2), then neal's adjacency lists.
  explicit NealReference(const QuboModel& model)
      : ising_(model.to_ising()),
        n_(model.num_variables()),
        h_(static_cast<std::size_t>(n_)),
        neighbours_(static_cast<std::size_t>(n_)),
        couplings_(static_cast<std::size_t>(n_)) {
    for (int i = 0; i < n_; ++i) h_[static_cast<std::size_t>(i)] = ising_.h[i];
    for (const Coupling& c : ising_.j) {
      neighbours_[static_cast<std::size_t>(c.i)].push_back(c.j);
      neighbours_[static_cast<std::size_t>(c.j)].push_back(c.i);
      couplings_[static_cast<std::size_t>(c.i)].push_back(c.value);
      couplings_[static_cast<std::size_t>(c.j)].push_back(c.value);
    }
  }

  [[nodiscard]] int size() const { return n_; }

  /// One read from a random state drawn from `rng`, one sweep per entry of `betas`.
  Read anneal(const std::vector<double>& betas, Xorshift128Plus& rng) const {
    const auto n = static_cast<std::size_t>(n_);
    Read read;
    std::vector<std::int8_t>& s = read.spins;
    s.resize(n);
    for (auto& v : s) v = (rng() >> 63) != 0 ? std::int8_t{1} : std::int8_t{-1};
    const auto start = std::chrono::steady_clock::now();
    // delta[i] = E(s with s_i flipped) - E(s) = -2 s_i (h_i + sum_j J_ij s_j).
    std::vector<double> delta(n);
    for (std::size_t i = 0; i < n; ++i) {
      double field = h_[i];
      for (std::size_t k = 0; k < neighbours_[i].size(); ++k)
        field += couplings_[i][k] * s[static_cast<std::size_t>(neighbours_[i][k])];
      delta[i] = -2.0 * s[i] * field;
    }
    constexpr double kMaxDraw = 18446744073709551615.0;  // 2^64 - 1, as a double
    std::int64_t accepted = 0;
    for (const double beta : betas) {
      const double threshold = 44.36142 / beta;
      for (std::size_t i = 0; i < n; ++i) {
        const double d = delta[i];
        if (d >= threshold) continue;
        if (d > 0.0 && !(std::exp(-d * beta) * kMaxDraw > static_cast<double>(rng()))) continue;
        // Flipping i moves each neighbour's change by 4 s_i J s_j (its term changes sign).
        const double four_si = 4.0 * s[i];
        const std::vector<int>& nb = neighbours_[i];
        const std::vector<double>& jv = couplings_[i];
        for (std::size_t k = 0; k < nb.size(); ++k) {
          const auto j = static_cast<std::size_t>(nb[k]);
          delta[j] += four_si * jv[k] * s[j];
        }
        s[i] = static_cast<std::int8_t>(-s[i]);
        delta[i] = -d;
        ++accepted;
      }
    }
    read.anneal_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    read.attempts = static_cast<std::int64_t>(betas.size()) * n_;
    read.accepted = accepted;
    read.energy = ising_.energy(s);
    return read;
  }

 private:
  IsingModel ising_;
  int n_;
  std::vector<double> h_;
  std::vector<std::vector<int>> neighbours_;
  std::vector<std::vector<double>> couplings_;
};

/// neal's default beta range for an Ising model, as dwave-samplers' `_default_ising_beta_range`
/// computes it: hot = ln 2 / (2 max_i sum |bias_i|), cold = ln(#variables with a nonzero bias /
/// 0.01) / (2 min nonzero |bias|), the biases of a variable being its h_i and J_ij.
inline std::pair<double, double> neal_default_range(const IsingModel& ising) {
  const auto n = static_cast<std::size_t>(ising.h.size());
  std::vector<double> sum_abs(n, 0.0);
  std::vector<double> min_abs(n, 0.0);  // 0: no nonzero bias yet
  auto take = [&](std::size_t k, double v) {
    sum_abs[k] += std::abs(v);
    if (v != 0.0 && (min_abs[k] == 0.0 || std::abs(v) < min_abs[k])) min_abs[k] = std::abs(v);
  };
  for (std::size_t i = 0; i < n; ++i) take(i, ising.h[static_cast<Eigen::Index>(i)]);
  for (const Coupling& c : ising.j) {
    take(static_cast<std::size_t>(c.i), c.value);
    take(static_cast<std::size_t>(c.j), c.value);
  }
  double max_field = 0.0;
  double min_field = 0.0;
  std::size_t with_bias = 0;
  for (std::size_t i = 0; i < n; ++i) {
    max_field = std::max(max_field, sum_abs[i]);
    if (min_abs[i] == 0.0) continue;
    ++with_bias;
    min_field = min_field == 0.0 ? min_abs[i] : std::min(min_field, min_abs[i]);
  }
  if (max_field == 0.0) return {0.1, 1.0};
  return {std::log(2.0) / (2.0 * max_field),
          std::log(static_cast<double>(with_bias) / 0.01) / (2.0 * min_field)};
}

/// The geometric schedule sa uses: beta_s = hot (cold / hot)^(s / (sweeps - 1)).
inline std::vector<double> geometric_betas(std::pair<double, double> range, int sweeps) {
  std::vector<double> betas(static_cast<std::size_t>(sweeps));
  for (int s = 0; s < sweeps; ++s) {
    const double t = sweeps == 1 ? 1.0 : static_cast<double>(s) / (sweeps - 1);
    betas[static_cast<std::size_t>(s)] = range.first * std::pow(range.second / range.first, t);
  }
  return betas;
}

}  // namespace qprune::bench
