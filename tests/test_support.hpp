// Helpers shared by the unit tests: random models, an independent brute-force minimiser, paths.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune::test {

/// A rows x cols matrix of independent N(0, std^2) entries.
inline Eigen::MatrixXd normal_matrix(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& rng,
                                     double std = 1.0) {
  std::normal_distribution<double> d(0.0, std);
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = d(rng);
  return m;
}

inline std::string data_path(const std::string& name) {
  return std::string(QPRUNE_TEST_DATA) + "/" + name;
}

/// The angles of a QAOA result's info string "gamma [g1 g2 ..] beta [b1 b2 ..]".
inline std::pair<std::vector<double>, std::vector<double>> parse_angles(const std::string& s) {
  std::vector<double> g, b;
  auto read = [&](std::size_t from, std::vector<double>& out) {
    const std::size_t open = s.find('[', from), close = s.find(']', open);
    std::istringstream in(s.substr(open + 1, close - open - 1));
    for (double v; in >> v;) out.push_back(v);
    return close;
  };
  read(read(0, g), b);
  return {g, b};
}

/// A random model with integer-valued coefficients in [-range, range] and the given density.
inline QuboModel random_model(int n, double density, std::uint64_t seed, int range = 10,
                              Storage storage = Storage::kAuto) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> coef(-range, range);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Eigen::VectorXd c(n);
  for (int i = 0; i < n; ++i) c[i] = coef(rng);
  std::vector<Coupling> q;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j)
      if (u(rng) < density) q.push_back({i, j, static_cast<double>(coef(rng))});
  return QuboModel::from_couplings(n, c, q, coef(rng), storage);
}

/// Bit b of `bits` as an assignment of n variables.
inline Assignment bits_to_assignment(std::uint64_t bits, int n) {
  Assignment x(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    x[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((bits >> i) & 1U);
  return x;
}

/// Independent brute force: the minimum energy over all (feasible, if asked) assignments,
/// computed term by term from coupling(i, j), not through any solver code.
inline double brute_force_minimum(const QuboModel& m, bool feasible_only) {
  const int n = m.num_variables();
  double best = 1e300;
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << n); ++bits) {
    const Assignment x = bits_to_assignment(bits, n);
    if (feasible_only && !m.is_feasible(x)) continue;
    double e = m.offset();
    for (int i = 0; i < n; ++i) {
      if (!x[static_cast<std::size_t>(i)]) continue;
      e += m.linear()[i];
      for (int j = i + 1; j < n; ++j) e += x[static_cast<std::size_t>(j)] ? m.coupling(i, j) : 0.0;
    }
    best = std::min(best, e);
  }
  return best;
}

/// No flip of a free variable and no swap inside a group lowers QuboModel::energy.
inline bool is_local_minimum(const QuboModel& m, const Assignment& x) {
  const double e = m.energy(x);
  std::vector<char> grouped(x.size(), 0);
  for (const CardinalityConstraint& g : m.constraints()) {
    for (int v : g.variables) grouped[static_cast<std::size_t>(v)] = 1;
    for (int a : g.variables)
      for (int b : g.variables) {
        if (x[static_cast<std::size_t>(a)] != 0 || x[static_cast<std::size_t>(b)] != 1) continue;
        Assignment y = x;
        y[static_cast<std::size_t>(a)] = 1;
        y[static_cast<std::size_t>(b)] = 0;
        if (m.energy(y) < e) return false;
      }
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (grouped[i]) continue;
    Assignment y = x;
    y[i] ^= 1;
    if (m.energy(y) < e) return false;
  }
  return true;
}

}  // namespace qprune::test
