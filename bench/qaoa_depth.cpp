// Depth study of the qaoa solver: INTERP + L-BFGS for p = 1..5 (one solve with layers = 5, whose
// per-depth counters give <C>, the approximation ratio and the probability of the optimum), then
// samples drawn from each depth's optimised state (init = fixed at that depth's angles, no
// optimisation, no greedy descent) and compared with the optimum of the exact solver. The shots
// per depth are max(shots, ceil(hits / P(opt))), capped at `max_shots`, so that the expected
// number of optimal samples, P(opt) x shots (printed), is about `hits` or more when the cap allows.
// Problems: the GKA instances given on the command line (n <= 24) and MLP-layer pruning problems
// of I = 16, 20, 24 neurons (a random gated MLP, hidden size 32, random tokens, keep 60 %: XY ring
// mixer from the Dicke state in the feasible subspace).
// Usage: qaoa_depth [max_evaluations = 100] [shots = 1000] [instance.sparse ...]
// Environment: QAOA_DEPTH_UNITS (MLP sizes, default "16,20,24"), QAOA_DEPTH_HITS (default 20),
// QAOA_DEPTH_MAX_SHOTS (default 4000000). OMP_WAIT_POLICY defaults to passive (qaoa_omp_env.hpp).
// Prints one markdown table row per problem and depth.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/qaoa_omp_env.hpp"
#include "qprune/exact_solver.hpp"
#include "qprune/formats.hpp"
#include "qprune/pruning.hpp"
#include "qprune/qaoa_solver.hpp"

using namespace qprune;

namespace {

constexpr int kMaxDepth = 5;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Numbers between the brackets of "gamma [..] beta [..]".
void parse_angles(const std::string& s, std::vector<double>& g, std::vector<double>& b) {
  auto read = [&](std::size_t from, std::vector<double>& out) {
    const std::size_t open = s.find('[', from), close = s.find(']', open);
    std::istringstream in(s.substr(open + 1, close - open - 1));
    for (double v; in >> v;) out.push_back(v);
    return close;
  };
  g.clear();
  b.clear();
  read(read(0, g), b);
}

/// One gated-MLP layer: x ~ N(0, I_H), a = SiLU(W_gate x) o (W_up x), W_down ~ N(0, 1/I); the
/// pruning problem from the measured Gram and mean (mean compensation on) keeping 60 %.
LayerProblem mlp_problem(int units, int hidden, int tokens, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const auto random = [&](int rows, int cols, double s) {
    Eigen::MatrixXd m(rows, cols);
    for (int j = 0; j < cols; ++j)
      for (int i = 0; i < rows; ++i) m(i, j) = s * normal(rng);
    return m;
  };
  const Eigen::MatrixXd gate = random(units, hidden, 1.0 / std::sqrt(hidden));
  const Eigen::MatrixXd up = random(units, hidden, 1.0 / std::sqrt(hidden));
  const Eigen::MatrixXd down = random(hidden, units, 1.0 / std::sqrt(units));
  const Eigen::MatrixXd x = random(hidden, tokens, 1.0);
  const Eigen::MatrixXd zg = gate * x, zu = up * x;
  Eigen::MatrixXd a(units, tokens);
  for (int t = 0; t < tokens; ++t)
    for (int i = 0; i < units; ++i) a(i, t) = zg(i, t) / (1.0 + std::exp(-zg(i, t))) * zu(i, t);
  ActivationStats stats;
  stats.gram = a * a.transpose();
  stats.mean = a.rowwise().mean();
  stats.num_tokens = tokens;
  MlpProblemOptions o;
  o.keep = keep_count(units, 0.4);
  return build_mlp_problem(down, stats, o);
}

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atof(v) : fallback;
}

void study(const std::string& name, const QuboModel& model, int evaluations, int shots) {
  const double hits = env_number("QAOA_DEPTH_HITS", 20.0);
  const double max_shots = env_number("QAOA_DEPTH_MAX_SHOTS", 4e6);
  const double t0 = now_s();
  const SolveResult exact = ExactSolver().solve(model, SolveOptions{});
  const double optimum = exact.best().energy;
  const double tol = 1e-9 * std::max(1.0, std::abs(optimum));

  QaoaOptions o;
  o.layers = kMaxDepth;
  o.init = QaoaInit::kInterp;
  o.optimizer = QaoaOptimizer::kLbfgs;
  o.max_evaluations = evaluations;
  o.max_qubits = 24;
  o.shots = 1;
  o.greedy_descent = false;
  SolveOptions so;
  so.seed = 1;
  const double t1 = now_s();
  const SolveResult r = QaoaSolver(o).solve(model, so);
  const double t2 = now_s();
  std::fprintf(stderr,
               "%s: exact %.1f s, qaoa p=1..%d %.1f s (%.0f evaluations, layer %.4f s), "
               "dimension %.0f, restarts %.0f\n",
               name.c_str(), t1 - t0, kMaxDepth, t2 - t1, r.counters.at("evaluations"),
               r.counters.at("layer_time_s"), r.counters.at("dimension"),
               r.counters.at("interp_restarts"));
  for (int p = 1; p <= kMaxDepth; ++p) {
    const std::string key = "_p" + std::to_string(p);
    if (!r.counters.count("expected_energy" + key)) break;  // stopped early
    const double p_opt = r.counters.at("optimum_probability" + key);
    const double wanted = p_opt > 0.0 ? std::ceil(hits / p_opt) : max_shots;
    const int n_shots = static_cast<int>(std::min(max_shots, std::max<double>(shots, wanted)));
    QaoaOptions fixed = o;
    fixed.init = QaoaInit::kFixed;
    fixed.optimizer = QaoaOptimizer::kNone;
    fixed.shots = n_shots;
    parse_angles(r.info.at("angles" + key), fixed.gammas, fixed.betas);
    const double t3 = now_s();
    const SolveResult s = QaoaSolver(fixed).solve(model, so);
    std::fprintf(stderr, "%s p=%d: %d shots in %.1f s\n", name.c_str(), p, n_shots, now_s() - t3);
    const double sampled = s.best().energy;
    std::printf(
        "| %-10s | %2d | %8.0f | %d | %14.6g | %6.4f | %9.6f | %8d | %7.1f | %12.6g | "
        "%12.6g | %-3s | %4s | %s |\n",
        name.c_str(), model.num_variables(), r.counters.at("dimension"), p,
        r.counters.at("expected_energy" + key), r.counters.at("approximation_ratio" + key), p_opt,
        n_shots, p_opt * n_shots, sampled, optimum,
        std::abs(sampled - optimum) <= tol ? "yes" : "no", r.info.at("evaluations" + key).c_str(),
        r.info.count("restart" + key) ? "restart" : "");
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bench::default_passive_omp_wait(argv);
  const int evaluations = argc > 1 ? std::atoi(argv[1]) : 100;
  const int shots = argc > 2 ? std::atoi(argv[2]) : 1000;
  std::printf(
      "| problem    |  n | dimension | p | <C> | ratio | P(opt) | shots | P(opt) x shots | "
      "sampled best | exact optimum | hit | evals | note |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n");
  for (int i = 3; i < argc; ++i) {
    const std::string path = argv[i];
    std::string stem = path.substr(path.find_last_of('/') + 1);
    stem = stem.substr(0, stem.find('.'));
    study(stem, read_model(path), evaluations, shots);
  }
  const char* units_env = std::getenv("QAOA_DEPTH_UNITS");
  std::istringstream units_in(units_env != nullptr ? units_env : "16,20,24");
  for (std::string item; std::getline(units_in, item, ',');) {
    const int units = std::atoi(item.c_str());
    const LayerProblem problem =
        mlp_problem(units, 32, 256, 1000 + static_cast<std::uint64_t>(units));
    study("mlp I=" + std::to_string(units), problem.model, evaluations, shots);
  }
  return 0;
}
