// minimise_angles: NLopt (COBYLA, Nelder-Mead or L-BFGS) over the QAOA angles.
#include "solver/qaoa/angle_search.hpp"

#include <cmath>
#include <limits>
#include <nlopt.hpp>

namespace qprune::detail::qaoa {

int minimise_angles(std::vector<double>& angles, const AngleSearch& search) {
  if (search.optimizer == QaoaOptimizer::kNone || angles.empty()) return 0;
  const nlopt::algorithm algorithm = search.optimizer == QaoaOptimizer::kCobyla ? nlopt::LN_COBYLA
                                     : search.optimizer == QaoaOptimizer::kNelderMead
                                         ? nlopt::LN_NELDERMEAD
                                         : nlopt::LD_LBFGS;
  nlopt::opt opt(algorithm, static_cast<unsigned>(angles.size()));
  struct Data {
    const AngleSearch* search;
    nlopt::opt* opt;
    double best;
    std::vector<double> best_x;
    int evaluations;
  } data{&search, &opt, std::numeric_limits<double>::infinity(), angles, 0};
  opt.set_min_objective(
      [](unsigned n, const double* a, double* g, void* d) -> double {
        auto* st = static_cast<Data*>(d);
        const double f = st->search->objective(a, g);
        if (std::isnan(f)) {
          st->opt->force_stop();
          return std::numeric_limits<double>::max();
        }
        ++st->evaluations;
        if (f < st->best) {
          st->best = f;
          st->best_x.assign(a, a + n);
        }
        if (st->search->stop_after && st->search->stop_after(st->best)) st->opt->force_stop();
        return f;
      },
      &data);
  opt.set_maxeval(std::max(1, search.max_evaluations));
  opt.set_xtol_rel(search.xtol_rel);
  if (search.ftol_rel > 0.0) opt.set_ftol_rel(search.ftol_rel);
  // Derivative-free searches start with steps of 0.1 rad: they explore around the start angles
  // (transferred or ramped) instead of walking away from them.
  if (algorithm != nlopt::LD_LBFGS) opt.set_initial_step(0.1);
  double minf = 0.0;
  std::vector<double> work = angles;
  try {
    (void)opt.optimize(work, minf);
  } catch (const std::exception&) {
    // Round-off limits and forced stops end the search; the best point seen is kept below.
  }
  if (std::isfinite(data.best)) angles = data.best_x;
  return data.evaluations;
}

}  // namespace qprune::detail::qaoa
