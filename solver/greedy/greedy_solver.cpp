// PLACEHOLDER (to be replaced in this session): GreedySolver.
#include "qprune/greedy_solver.hpp"
#include "qprune/error.hpp"
namespace qprune {
void GreedyOptions::validate() const {}
GreedySolver::GreedySolver(GreedyOptions options) : options_(options) { options_.validate(); }
SolveResult GreedySolver::solve(const QuboModel&, const SolveOptions&) const { throw Error("not yet"); }
}  // namespace qprune
