// The behaviour-contrast QUBO (include/qprune/behaviour_contrast.hpp) against independent
// references: its energy equals err_B(x) - w err_A(x) measured by zeroing the removed channels of
// two activation matrices (with and without mean compensation around B's mean), exact's optimum is
// the brute-force minimum of that directly measured objective, every solver reports honest
// energies on the indefinite problem, and the provable and tuned penalties stay correct on it.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <random>

#include "qprune/behaviour_contrast.hpp"
#include "qprune/calibration_stats.hpp"
#include "qprune/error.hpp"
#include "qprune/pruning_refit.hpp"
#include "qprune/solvers.hpp"
#include "qprune/tuned_penalty.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
using qprune::test::normal_matrix;

namespace {

struct TwoSets {
  Eigen::MatrixXd w;     // H x n
  Eigen::MatrixXd a, b;  // n x T_A, n x T_B: activations of set A and set B
};

// Two sets whose activations differ in scale per channel, so the contrast is not trivial.
TwoSets random_sets(int hidden, int n, int ta, int tb, std::mt19937_64& rng) {
  TwoSets s;
  s.w = normal_matrix(hidden, n, rng, 1.0 / std::sqrt(n));
  const Eigen::MatrixXd scale_a = normal_matrix(n, 1, rng, 1.0).cwiseAbs();
  const Eigen::MatrixXd scale_b = normal_matrix(n, 1, rng, 1.0).cwiseAbs();
  s.a = scale_a.col(0).asDiagonal() * normal_matrix(n, ta, rng);
  s.b = scale_b.col(0).asDiagonal() * normal_matrix(n, tb, rng);
  s.a.colwise() += normal_matrix(n, 1, rng, 0.5).col(0);
  s.b.colwise() += normal_matrix(n, 1, rng, 0.5).col(0);
  return s;
}

ActivationStats stats_of(const Eigen::MatrixXd& act) { return statistics_of(act); }

// ||W diag(removed) (A - c 1^T)||^2: the output error when removed channels are zeroed and the
// bias W_S c_S is added (c = 0: no bias), measured on the activations.
double direct_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& act, const Assignment& keep,
                    const Eigen::VectorXd& centre) {
  Eigen::VectorXd removed(static_cast<Eigen::Index>(keep.size()));
  for (std::size_t i = 0; i < keep.size(); ++i)
    removed[static_cast<Eigen::Index>(i)] = keep[i] != 0 ? 0.0 : 1.0;
  const Eigen::MatrixXd shifted = act.colwise() - centre;
  return (w * removed.asDiagonal() * shifted).squaredNorm();
}

// The objective computed directly: err_B / N_B - lambda err_A / N_A, scaled by N_B.
double direct_objective(const TwoSets& s, const Assignment& keep, double lambda, bool centre) {
  const Eigen::Index n = s.w.cols();
  const Eigen::VectorXd c =
      centre ? Eigen::VectorXd(s.b.rowwise().mean()) : Eigen::VectorXd::Zero(n);
  const Assignment none(keep.size(), 0);
  const double nb = direct_error(s.w, s.b, none, c);
  const double na = direct_error(s.w, s.a, none, c);
  return direct_error(s.w, s.b, keep, c) - lambda * nb / na * direct_error(s.w, s.a, keep, c);
}

LayerProblem contrastive_problem(const TwoSets& s, double lambda, bool centre, int keep) {
  const ContrastiveGram g =
      contrastive_gram(s.w, stats_of(s.b), stats_of(s.a), lambda, centre, "test");
  ActivationStats combined;
  combined.gram = g.gram;
  MlpProblemOptions o;
  o.keep = keep;
  o.mean_compensation = false;
  return build_mlp_problem(s.w, combined, o);
}

}  // namespace

TEST_CASE("contrastive QUBO energy equals err_B - w err_A measured on the activations") {
  std::mt19937_64 rng(21);
  for (const bool centre : {false, true}) {
    for (const double lambda : {0.5, 1.0, 3.0, -1.0}) {
      CAPTURE(centre);
      CAPTURE(lambda);
      const TwoSets s = random_sets(6, 10, 40, 55, rng);
      const LayerProblem p = contrastive_problem(s, lambda, centre, 6);
      for (int trial = 0; trial < 30; ++trial) {
        Assignment x(10);
        for (auto& v : x) v = static_cast<std::uint8_t>(rng() % 2);
        const double direct = direct_objective(s, x, lambda, centre);
        CHECK(p.model.energy(x) == doctest::Approx(direct).epsilon(1e-9).scale(1.0));
      }
      // The per-mask relative errors of the library equal the measured ones.
      const ContrastiveGram g =
          contrastive_gram(s.w, stats_of(s.b), stats_of(s.a), lambda, centre, "test");
      Assignment x(10, 1);
      x[1] = x[4] = x[7] = 0;
      const Eigen::VectorXd c =
          centre ? Eigen::VectorXd(s.b.rowwise().mean()) : Eigen::VectorXd::Zero(10);
      const Assignment none(10, 0);
      CHECK(gram_error(s.w, g.contrast_gram, x, 1) / g.contrast_energy ==
            doctest::Approx(direct_error(s.w, s.a, x, c) / direct_error(s.w, s.a, none, c)));
      CHECK(gram_error(s.w, g.preserve_gram, x, 1) / g.preserve_energy ==
            doctest::Approx(direct_error(s.w, s.b, x, c) / direct_error(s.w, s.b, none, c)));
    }
  }
}

TEST_CASE("suppress mode is indefinite, and exact's optimum is the brute-force minimum") {
  std::mt19937_64 rng(7);
  int indefinite = 0;
  for (int trial = 0; trial < 6; ++trial) {
    const TwoSets s = random_sets(5, 12, 30, 30, rng);
    const double lambda = trial < 3 ? 1.5 : -0.7;
    const bool centre = trial % 2 == 1;
    const LayerProblem p = contrastive_problem(s, lambda, centre, 7);
    const Eigen::MatrixXd m = error_matrix(p);
    if (Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(m).eigenvalues().minCoeff() < -1e-9)
      ++indefinite;
    double best = std::numeric_limits<double>::infinity();
    for (std::uint64_t bits = 0; bits < (1U << 12); ++bits) {
      const Assignment x = test::bits_to_assignment(bits, 12);
      int ones = 0;
      for (const auto v : x) ones += v;
      if (ones == 7) best = std::min(best, direct_objective(s, x, lambda, centre));
    }
    const SolveResult r = make_solver("exact")->solve(p.model, {});
    REQUIRE(r.has_solution());
    CHECK(r.status == SolveStatus::kOptimal);
    CHECK(r.best().energy == doctest::Approx(best).epsilon(1e-9));
  }
  CHECK(indefinite >= 3);  // every suppress problem here (lambda 1.5) has a negative eigenvalue
}

TEST_CASE("every solver on an indefinite contrastive problem: honest, feasible, exact finds it") {
  std::mt19937_64 rng(99);
  const TwoSets s = random_sets(6, 10, 25, 25, rng);
  const LayerProblem p = contrastive_problem(s, 2.0, false, 5);
  const double optimum = make_solver("exact")->solve(p.model, {}).best().energy;
  CHECK(optimum < 0.0);  // indefinite: damaging A pays
  SolverSettings settings;
  settings.qaoa.shots = 4096;
  for (const std::string& name : solver_names()) {
    CAPTURE(name);
    for (const bool penalty : {false, true}) {
      CAPTURE(penalty);
      SolveOptions o;
      o.seed = 3;
      o.num_reads = name == "qaoa" ? 1 : 16;
      o.constraint_mode = penalty ? ConstraintMode::kPenalty : ConstraintMode::kAuto;
      const SolveResult r = make_solver(name, settings)->solve(p.model, o);
      REQUIRE(r.has_solution());
      for (const Sample& x : r.samples) {
        CHECK(x.energy == p.model.energy(x.x));
        CHECK(x.feasible == p.model.is_feasible(x.x));
        if (x.feasible) CHECK(x.energy >= optimum - 1e-9 * std::abs(optimum));
      }
      if (!penalty) CHECK(r.best().feasible);
    }
  }
}

TEST_CASE("provable and tuned penalties stay correct on indefinite contrastive problems") {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 4; ++trial) {
    CAPTURE(trial);
    const TwoSets s = random_sets(5, 12, 30, 30, rng);
    const LayerProblem p = contrastive_problem(s, 1.0 + trial, trial % 2 == 1, 6);
    const double optimum = test::brute_force_minimum(p.model, true);
    // Provable: every minimiser of the penalised form at the default weight is feasible and
    // optimal (docs/pruning_math.md section 10 makes no assumption on the sign of Q).
    const QuboModel pen = p.model.penalized();
    double best_feasible = std::numeric_limits<double>::infinity();
    double best_infeasible = std::numeric_limits<double>::infinity();
    for (std::uint64_t bits = 0; bits < (1U << 12); ++bits) {
      const Assignment x = test::bits_to_assignment(bits, 12);
      (p.model.is_feasible(x) ? best_feasible : best_infeasible) =
          std::min(p.model.is_feasible(x) ? best_feasible : best_infeasible, pen.energy(x));
    }
    CHECK(best_feasible == doctest::Approx(optimum).epsilon(1e-9));
    CHECK(best_infeasible > best_feasible);
    // Tuned: the answer it reports is the constrained optimum here, and its weight is finite.
    TunedPenaltyOptions to;
    to.seed = static_cast<std::uint64_t>(trial) + 1;
    const TunedPenalty t = tuned_penalty(p.model, to);
    CHECK(std::isfinite(t.weight));
    CHECK(t.weight >= 0.0);
    CHECK(t.best_energy == doctest::Approx(optimum).epsilon(1e-9));
    CHECK(p.model.energy(t.best) == t.best_energy);
    // Not a proof (docs/pruning_math.md section 10), but on these instances the verified tuned
    // form's exact minimiser is the constrained optimum.
    CHECK(t.verified);
    const QuboModel tp = p.model.penalized(t.weight, t.shifts);
    const SolveResult r = make_solver("exact")->solve(tp, {});
    CHECK(p.model.is_feasible(r.best().x));
    CHECK(r.best().energy == doctest::Approx(optimum).epsilon(1e-9));
  }
}

TEST_CASE("saturation weight: above it the single-removal scores pick the most A-active units") {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    const Eigen::VectorXd b = normal_matrix(15, 1, rng).col(0).cwiseAbs();
    const Eigen::VectorXd a = normal_matrix(15, 1, rng).col(0).cwiseAbs();
    const double nb = 3.0, na = 2.0;
    const int remove = 5;
    const double sat = saturation_weight(b, a, nb, na, remove);
    auto removed_by = [&](double lambda) {
      std::vector<int> idx(15);
      for (int i = 0; i < 15; ++i) idx[static_cast<std::size_t>(i)] = i;
      std::sort(idx.begin(), idx.end(), [&](int x, int y) {
        return b[x] / nb - lambda * a[x] / na < b[y] / nb - lambda * a[y] / na;
      });
      return std::set<int>(idx.begin(), idx.begin() + remove);
    };
    std::vector<int> by_a(15);
    for (int i = 0; i < 15; ++i) by_a[static_cast<std::size_t>(i)] = i;
    std::sort(by_a.begin(), by_a.end(), [&](int x, int y) { return a[x] > a[y]; });
    const std::set<int> a_only(by_a.begin(), by_a.begin() + remove);
    CHECK(removed_by(sat * 1.001 + 1e-12) == a_only);
    if (sat > 1e-9) CHECK(removed_by(sat * 0.999) != a_only);
  }
}

TEST_CASE("contrastive Gram refuses a weight beyond the bound and a set with no output energy") {
  std::mt19937_64 rng(1);
  const TwoSets s = random_sets(4, 6, 10, 10, rng);
  CHECK_THROWS_AS((void)contrastive_gram(s.w, stats_of(s.b), stats_of(s.a), 101.0, false, "t"),
                  InvalidArgument);
  CHECK_THROWS_AS((void)contrastive_gram(s.w, stats_of(s.b), stats_of(s.a), NAN, false, "t"),
                  InvalidArgument);
  ActivationStats zero = stats_of(s.a);
  zero.gram.setZero();
  CHECK_THROWS_WITH_AS((void)contrastive_gram(s.w, stats_of(s.b), zero, 1.0, false, "layer 0"),
                       doctest::Contains("output energy"), InvalidArgument);
}

TEST_CASE("protect-mode refit is the weighted least squares over both sets' activations") {
  std::mt19937_64 rng(11);
  const TwoSets s = random_sets(5, 8, 37, 29, rng);
  const double lambda = 0.7;  // protect: stored as -0.7
  Assignment keep(8, 1);
  keep[1] = keep[4] = keep[6] = 0;
  std::vector<Eigen::Index> kept;
  for (Eigen::Index i = 0; i < 8; ++i)
    if (keep[static_cast<std::size_t>(i)] != 0) kept.push_back(i);
  for (const bool centre : {false, true}) {
    CAPTURE(centre);
    // The reference: w from the energies measured on the activations (A around B's mean when
    // centred, as the masks' objective), then least squares on the stacked tokens, A's rows
    // scaled by sqrt(w), with a free bias column when centred.
    const Eigen::VectorXd c =
        centre ? Eigen::VectorXd(s.b.rowwise().mean()) : Eigen::VectorXd::Zero(8);
    const Assignment none(8, 0);
    const double w = lambda * direct_error(s.w, s.b, none, c) / direct_error(s.w, s.a, none, c);
    const Eigen::Index tb = s.b.cols(), ta = s.a.cols(), k = 5;
    Eigen::MatrixXd design(tb + ta, k + (centre ? 1 : 0));
    Eigen::MatrixXd target(tb + ta, s.w.rows());
    design.topLeftCorner(tb, k) = s.b(kept, Eigen::all).transpose();
    design.bottomLeftCorner(ta, k) = std::sqrt(w) * s.a(kept, Eigen::all).transpose();
    if (centre) {
      design.col(k).head(tb).setOnes();
      design.col(k).tail(ta).setConstant(std::sqrt(w));
    }
    target.topRows(tb) = (s.w * s.b).transpose();
    target.bottomRows(ta) = std::sqrt(w) * (s.w * s.a).transpose();
    const Eigen::MatrixXd solution = design.colPivHouseholderQr().solve(target);

    const ActivationStats joint =
        protected_refit_statistics(s.w, stats_of(s.b), stats_of(s.a), -lambda, centre, "layer 0");
    RefitOptions o;
    o.mean_compensation = centre;
    const RefitResult r = refit_columns(s.w, joint, keep, o);
    CHECK((r.kept_columns - solution.topRows(k).transpose()).cwiseAbs().maxCoeff() < 1e-9);
    if (centre) CHECK((r.bias - solution.row(k).transpose()).cwiseAbs().maxCoeff() < 1e-9);
  }
  // A suppress objective has no least-squares minimum: refused.
  CHECK_THROWS_WITH_AS(
      (void)protected_refit_statistics(s.w, stats_of(s.b), stats_of(s.a), 0.7, false, "layer 3"),
      doctest::Contains("layer 3"), InvalidArgument);
}
