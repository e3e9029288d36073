// How good is the pairwise quadratic surrogate of the refit objective (what QAOA and `export
// --objective refit` work on) against the exact set function, on a real model's layers?
//
//   refit_surrogate CHECKPOINT STATS [SPARSITY] [HEAD_SPARSITY]
//
// Per layer and unit kind (one-shot statistics from `qprune calibrate`), on three sets of masks:
// 200 random feasible masks, the 200 single swaps around the OBS greedy mask, and the masks
// each method chooses, it prints the surrogate's relative error (median and worst), the Spearman
// rank correlation between surrogate and exact values within a set, and the exact error of the
// mask the surrogate ranks best (tabu on the surrogate QUBO) against the greedy mask's.
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/refit_search.hpp"
#include "qprune/solvers.hpp"

using namespace qprune;

namespace {

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < idx.size(); ++i) r[idx[i]] = static_cast<double>(i);
  return r;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  double d2 = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) d2 += (ra[i] - rb[i]) * (ra[i] - rb[i]);
  return 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
}

struct Errors {
  double median = 0.0, worst = 0.0, rho = 0.0;
};

Errors compare(const RefitObjective& obj, const LayerProblem& surrogate,
               const std::vector<Assignment>& masks) {
  std::vector<double> exact, approx, rel;
  for (const Assignment& x : masks) {
    exact.push_back(obj.error(x));
    approx.push_back(surrogate.model.energy(x));
    rel.push_back(std::abs(approx.back() - exact.back()) / std::max(exact.back(), 1e-300));
  }
  std::vector<double> sorted = rel;
  std::sort(sorted.begin(), sorted.end());
  return {sorted[sorted.size() / 2], sorted.back(), spearman(exact, approx)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: refit_surrogate CHECKPOINT STATS [SPARSITY] [HEAD_SPARSITY]\n");
    return 2;
  }
  const Checkpoint ckpt = Checkpoint::open(argv[1]);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(argv[2]);
  const double sparsity = argc > 3 ? std::atof(argv[3]) : 0.4;
  const double head_sparsity = argc > 4 ? std::atof(argv[4]) : 0.5;
  std::printf(
      "| layer | unit | random: median / worst rel. error, rank corr. | greedy swaps: "
      "median / worst, rank corr. | exact error of surrogate-optimal mask vs greedy |\n");
  std::printf("|---|---|---|---|---|\n");
  std::mt19937_64 rng(1);
  for (int layer = 0; layer < ckpt.config().num_hidden_layers; ++layer)
    for (const UnitKind unit : {UnitKind::kMlp, UnitKind::kHeadsPerGroup}) {
      LayerProblemSpec spec;
      spec.layer = layer;
      spec.unit = unit;
      spec.sparsity = unit == UnitKind::kMlp ? sparsity : head_sparsity;
      spec.objective = PruneObjective::kRefit;
      const RefitObjective obj = build_refit_objective(ckpt, stats, spec);
      const LayerProblem surrogate = build_layer_problem(ckpt, &stats, spec);
      const UnitLayout& lay = obj.layout();
      std::vector<Assignment> random;
      for (int t = 0; t < 200; ++t) {
        Assignment x(static_cast<std::size_t>(lay.num_units), 0);
        for (int g = 0; g < lay.num_groups; ++g) {
          std::vector<int> idx(static_cast<std::size_t>(lay.units_per_group()));
          std::iota(idx.begin(), idx.end(), g * lay.units_per_group());
          std::shuffle(idx.begin(), idx.end(), rng);
          for (int i = 0; i < lay.keep_per_group; ++i)
            x[static_cast<std::size_t>(idx[static_cast<std::size_t>(i)])] = 1;
        }
        random.push_back(x);
      }
      const RefitSearchResult greedy = obs_greedy(obj);
      std::vector<Assignment> swaps;
      RefitSearchState st(obj, greedy.keep);
      const std::vector<int> k = st.kept_units(), s = st.removed_units();
      for (int t = 0; t < 200; ++t) {
        const int i = k[rng() % k.size()], j = s[rng() % s.size()];
        if (lay.group_of(i) != lay.group_of(j)) continue;
        Assignment x = greedy.keep;
        x[static_cast<std::size_t>(i)] = 0;
        x[static_cast<std::size_t>(j)] = 1;
        swaps.push_back(x);
      }
      const Errors er = compare(obj, surrogate, random);
      const Errors es = swaps.size() > 2 ? compare(obj, surrogate, swaps) : Errors{};
      SolveOptions so;
      so.seed = 1;
      const SolveResult r = make_solver("tabu")->solve(surrogate.model, so);
      const double surrogate_best = obj.error(r.best().x);
      std::printf("| %d | %s | %.2f %% / %.2f %%, %.3f | %.2f %% / %.2f %%, %.3f | %+.2f %% |\n",
                  layer, unit_kind_name(unit), 100 * er.median, 100 * er.worst, er.rho,
                  100 * es.median, 100 * es.worst, es.rho,
                  100 * (surrogate_best - greedy.error) / greedy.error);
    }
  return 0;
}
