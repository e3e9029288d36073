// A user's program against the installed library (tests/consumer/run.sh): builds a small QUBO with
// one "exactly k" group, solves it with two solvers chosen by name, writes and reads it back in a
// file format, and checks the answers against its own brute force. Exit 0 only when all agree.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "qprune/qprune.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer SCRATCH_DIR\n");
    return 2;
  }
  const int n = 10;
  Eigen::VectorXd linear(n);
  Eigen::MatrixXd couplings = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i) {
    linear(i) = std::sin(1.0 + i);
    for (int j = i + 1; j < n; ++j) couplings(i, j) = couplings(j, i) = std::cos(0.7 * i + 1.3 * j);
  }
  qprune::QuboModel model = qprune::QuboModel::from_dense(linear, couplings);
  qprune::CardinalityConstraint group{"four", {}, 4};
  for (int i = 0; i < n; ++i) group.variables.push_back(i);
  model.add_constraint(group);

  // Brute force over the feasible assignments: the reference.
  double best = std::numeric_limits<double>::infinity();
  for (unsigned mask = 0; mask < (1u << n); ++mask) {
    if (__builtin_popcount(mask) != 4) continue;
    qprune::Assignment x(n);
    for (int i = 0; i < n; ++i) x[i] = (mask >> i) & 1u;
    best = std::min(best, model.energy(x));
  }

  const std::filesystem::path file = std::filesystem::path(argv[1]) / "consumer.json";
  qprune::write_model(model, file.string());
  const qprune::QuboModel read_back = qprune::read_model(file.string());

  int failures = 0;
  for (const char* name : {"exact", "tabu"}) {
    qprune::SolveOptions options;
    options.seed = 7;
    const qprune::SolveResult result = qprune::make_solver(name)->solve(read_back, options);
    const double got = result.best().energy;
    std::printf("%-6s best %.9g  brute force %.9g\n", name, got, best);
    if (std::abs(got - best) > 1e-9 * (1.0 + std::abs(best))) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
