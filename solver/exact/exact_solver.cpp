// PLACEHOLDER (to be replaced in this session): ExactSolver.
#include "qprune/exact_solver.hpp"
#include "qprune/error.hpp"
namespace qprune {
void ExactOptions::validate() const {}
ExactSolver::ExactSolver(ExactOptions options) : options_(options) { options_.validate(); }
SolveResult ExactSolver::solve(const QuboModel&, const SolveOptions&) const { throw Error("not yet"); }
}  // namespace qprune
