// The random dense QUBO both qaoa engine benchmarks time: linear terms and couplings uniform in
// [-1, 1], couplings divided by n so that the energy scale stays O(n) as n grows; seed 42.
#pragma once

#include <random>

#include "solver/qaoa/statevector.hpp"

namespace qprune::bench {

inline detail::qaoa::CostTerms dense_cost(int n) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  detail::qaoa::CostTerms c;
  c.n = n;
  c.linear = Eigen::VectorXd(n);
  c.couplings = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i) {
    c.linear[i] = u(rng);
    for (int j = i + 1; j < n; ++j) c.couplings(i, j) = c.couplings(j, i) = u(rng) / n;
  }
  return c;
}

}  // namespace qprune::bench
