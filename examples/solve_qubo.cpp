// Example: use the qprune library the way a user would: read a QUBO file, solve it with two
// solvers, compare their answers. Run: solve_qubo FILE [solver...]
#include <iostream>

#include "qprune/qprune.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: solve_qubo FILE [solver...]\n";
    return 2;
  }
  try {
    const qprune::QuboModel model = qprune::read_model(argv[1]);
    std::cout << argv[1] << ": " << model.num_variables() << " variables, " << model.num_couplings()
              << " couplings\n";
    std::vector<std::string> names;
    for (int a = 2; a < argc; ++a) names.emplace_back(argv[a]);
    if (names.empty()) names = {"exact", "greedy", "random"};
    qprune::SolveOptions options;
    options.seed = 1;
    options.num_reads = 8;
    for (const std::string& name : names) {
      const qprune::SolveResult result = qprune::make_solver(name)->solve(model, options);
      std::cout << "  " << result.brief_report() << "\n";
    }
  } catch (const qprune::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
