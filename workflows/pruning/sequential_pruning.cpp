// The sequential pruning pass (include/qprune/sequential_pruning.hpp; maths in
// docs/pruning_math.md, section 9). Per decoder layer: run the layer's attention on both residual
// streams, prune o_proj against the original output, advance both streams; the same for the MLP
// and down_proj. Every projection goes through prune_projection(): statistics, unit choice, refit,
// compensation, the report, and the pruned output that advances the pruned stream.
#include "qprune/sequential_pruning.hpp"

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include "core/interruptible_gram.hpp"
#include "core/memory_check.hpp"
#include "qprune/atomic_output.hpp"
#include "qprune/error.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/pruning_refit.hpp"
#include "qprune/transformer.hpp"
#include "workflows/pruning/pruned_writer.hpp"

namespace qprune {
namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::MatrixXf;
using Eigen::VectorXd;
using Eigen::VectorXf;
using Clock = std::chrono::steady_clock;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool raised(const std::atomic<bool>* flag) { return flag != nullptr && flag->load(); }

// ---- statistics ---------------------------------------------------------------------------------

// Token columns per block: each block's products run in float (Eigen GEMM) and are added to the
// double sums, so rounding grows with the block, not with the number of tokens.
constexpr Index kStatsBlock = 1024;

// Sums over the calibration tokens of one projection's inputs a_t (as the pruned model produces
// them) and of its fit targets y_t. The O(n T) sums are always there; the Gram and the cross-Gram
// (O(n^2 T) work, n^2 doubles) only when `full`: the refit, the refit objective and the QUBO need
// them, the score baselines without refit do not (what lets a 7B-sized layer be pruned by scores
// in seconds instead of minutes).
struct ProjectionStats {
  bool full = false;
  MatrixXd gram;               // H = sum a a^T (n x n), when full
  MatrixXd cross;              // B = sum y a^T (out x n), when full
  VectorXd square;             // diag(H) = sum a_c^2
  VectorXd mean;               // mu = (1/T) sum a
  VectorXd target_mean;        // (1/T) sum y
  double target_energy = 0.0;  // sum ||y||^2
  double tokens = 0.0;
};

ProjectionStats projection_stats(const MatrixXf& a, const MatrixXf& y, bool full) {
  const Index n = a.rows(), out = y.rows(), t = a.cols();
  ProjectionStats st;
  st.full = full;
  if (full) {
    st.gram = MatrixXd::Zero(n, n);
    st.cross = MatrixXd::Zero(out, n);
  }
  VectorXd sum_a = VectorXd::Zero(n), sum_y = VectorXd::Zero(out);
  st.square = VectorXd::Zero(n);
  MatrixXf g(full ? n : 0, full ? n : 0);
  for (Index b = 0; b < t; b += kStatsBlock) {
    const Index w = std::min(kStatsBlock, t - b);
    const auto ab = a.middleCols(b, w);
    const auto yb = y.middleCols(b, w);
    if (full) {
      g.setZero();
      detail::add_gram_lower(g, ab, "accumulating a layer's Gram matrix");
      st.gram.triangularView<Eigen::Lower>() += g.cast<double>();
      st.cross += (yb * ab.transpose()).cast<double>();
    }
    st.square += ab.cast<double>().rowwise().squaredNorm();
    sum_a += ab.rowwise().sum().cast<double>();
    sum_y += yb.rowwise().sum().cast<double>();
    st.target_energy += yb.cast<double>().squaredNorm();
  }
  if (full) st.gram.triangularView<Eigen::StrictlyUpper>() = st.gram.transpose();
  st.tokens = static_cast<double>(t);
  st.mean = sum_a / st.tokens;
  st.target_mean = sum_y / st.tokens;
  return st;
}

// The refit objective's statistics: the Gram and cross-Gram, centred when a free output bias
// compensates the mean (C = H - T mu mu^T, B - T ybar mu^T, ||Y||^2 - T ||ybar||^2), plus the
// ridge prior towards the original weights `w` (pseudo-tokens: + lambda I, + lambda W,
// + lambda ||W||^2). Copies of the Gram are the memory that matters at full size: one here.
struct ObjectiveStats {
  MatrixXd gram, cross;
  double energy = 0.0;
};
ObjectiveStats objective_stats(const ProjectionStats& st, bool centre, double ridge,
                               const MatrixXd& w) {
  ObjectiveStats o{st.gram, st.cross, st.target_energy};
  if (centre) {
    o.gram.noalias() -= st.tokens * st.mean * st.mean.transpose();
    o.cross.noalias() -= st.tokens * st.target_mean * st.mean.transpose();
    o.energy -= st.tokens * st.target_mean.squaredNorm();
  }
  if (ridge > 0.0) {
    o.gram.diagonal().array() += ridge;
    o.cross += ridge * w;
    o.energy += ridge * w.squaredNorm();
  }
  return o;
}

// ---- units
// ---------------------------------------------------------------------------------------

// The unit layout of a projection: MLP neurons, or heads / KV groups of o_proj.
UnitLayout layout_for(const ModelConfig& cfg, UnitKind unit, double sparsity, int multiple_of = 1) {
  const int heads = static_cast<int>(cfg.num_attention_heads);
  const int kv = static_cast<int>(cfg.num_key_value_heads);
  const int hd = static_cast<int>(cfg.head_dim);
  switch (unit) {
    case UnitKind::kMlp: {
      const int n = static_cast<int>(cfg.intermediate_size);
      return {n, 1, 1, keep_count(n, sparsity, 1, multiple_of)};
    }
    case UnitKind::kHeads:
      return {heads, hd, 1, keep_count(heads, sparsity)};
    case UnitKind::kKvGroups:
      return {kv, hd * (heads / kv), 1, keep_count(kv, sparsity)};
    case UnitKind::kHeadsPerGroup:
      return {heads, hd, kv, keep_count(heads, sparsity, kv) / kv};
    case UnitKind::kExperts:
      break;
  }
  throw InvalidArgument("sequential pruning prunes MLP neurons and heads, not experts");
}

// Per-unit sums of a per-channel score.
VectorXd unit_scores(const VectorXd& channel, const UnitLayout& lay) {
  return channel.reshaped(lay.unit_width, lay.num_units).colwise().sum().transpose();
}

// Keeps, in every group, the keep_per_group units with the largest score (ties: lower index).
Assignment keep_top(const UnitLayout& lay, const VectorXd& scores) {
  Assignment keep(static_cast<std::size_t>(lay.num_units), 0);
  const int m = lay.units_per_group();
  for (int g = 0; g < lay.num_groups; ++g) {
    std::vector<int> order(static_cast<std::size_t>(m));
    for (int i = 0; i < m; ++i) order[static_cast<std::size_t>(i)] = g * m + i;
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return scores[a] > scores[b]; });
    for (int i = 0; i < lay.keep_per_group; ++i)
      keep[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;
  }
  return keep;
}

std::vector<Index> kept_channels(const UnitLayout& lay, const Assignment& keep) {
  std::vector<Index> k;
  for (int u = 0; u < lay.num_units; ++u)
    if (keep[static_cast<std::size_t>(u)])
      for (int c = 0; c < lay.unit_width; ++c) k.push_back(Index{u} * lay.unit_width + c);
  return k;
}

// ---- one projection -----------------------------------------------------------------------------

// Where a constant output correction can go (see the header).
enum class Compensation { kNone, kOutputBias, kValueBias };

struct ProjectionTask {
  int layer = 0;
  UnitKind unit = UnitKind::kMlp;
  UnitLayout layout;
  const MatrixXf* weight = nullptr;  // W (out x n)
  const VectorXf* bias = nullptr;    // the projection's existing bias (may be empty)
  const MatrixXf* inputs = nullptr;  // A: the pruned stream's inputs (n x T)
  const MatrixXf* target = nullptr;  // Y: the output to reproduce, without the existing bias
  Compensation compensation = Compensation::kNone;
  int kv_heads = 0;         // value bias: KV heads of the layer
  int heads_per_group = 0;  // value bias: query heads per KV head
  int head_dim = 0;
  std::uint64_t seed = 0;
};

struct ProjectionOutcome {
  PrunedProjection report;
  detail::RefittedProjection written;
  MatrixXf output;  // the pruned projection's output on the pruned inputs, existing bias included
};

// The error of written weights, sum_t ||y_t - W'(a_{t,K} + d) - b||^2 with gamma = W' d + b the
// constant output offset: from the statistics when the Gram is there (O(k^2 out)), else measured
// on the activations (O(k out T), float products per block summed in double).
double written_error(const ProjectionStats& st, const MatrixXf& a, const MatrixXf& y,
                     const std::vector<Index>& k, const MatrixXd& wk, const VectorXd& gamma) {
  if (st.full) {
    const MatrixXd h_kk = st.gram(k, k);
    const MatrixXd b_k = st.cross(Eigen::all, k);
    const VectorXd mu_k = st.mean(k);
    double e =
        st.target_energy - 2.0 * wk.cwiseProduct(b_k).sum() + (wk * h_kk).cwiseProduct(wk).sum();
    if (gamma.size() != 0)
      e += st.tokens *
           (gamma.squaredNorm() - 2.0 * st.target_mean.dot(gamma) + 2.0 * (wk * mu_k).dot(gamma));
    return e;
  }
  const MatrixXf wkf = wk.cast<float>();
  const VectorXf shift = gamma.size() != 0 ? VectorXf(gamma.cast<float>()) : VectorXf();
  double e = 0.0;
  for (Index b = 0; b < a.cols(); b += kStatsBlock) {
    const Index w = std::min(kStatsBlock, a.cols() - b);
    MatrixXf r = y.middleCols(b, w);
    r.noalias() -= wkf * a(k, Eigen::seqN(b, w));
    if (shift.size() != 0) r.colwise() -= shift;
    e += r.cast<double>().squaredNorm();
  }
  return e;
}

// Least-squares kept weights for the inputs shifted by a constant d (value-bias compensation):
// H_s = sum (a + d)(a + d)^T, B_s = sum y (a + d)^T over the kept channels.
MatrixXd refit_shifted(const ProjectionStats& st, const std::vector<Index>& k, const VectorXd& d,
                       double damping, double ridge, const MatrixXd& w_k) {
  const VectorXd mu = st.mean(k);
  MatrixXd h = st.gram(k, k);
  h.noalias() += st.tokens * (mu * d.transpose() + d * mu.transpose() + d * d.transpose());
  h.diagonal().array() += damping + ridge;
  MatrixXd b = st.cross(Eigen::all, k) + st.tokens * st.target_mean * d.transpose();
  if (ridge > 0.0) b += ridge * w_k;  // the prior towards the original weights
  return h.llt().solve(b.transpose()).transpose();
}

ProjectionOutcome prune_projection(const ProjectionTask& task, const PruneOptions& o,
                                   const PruneObjective objective) {
  const UnitLayout& lay = task.layout;
  const std::string where =
      "layer " + std::to_string(task.layer) + " " + (task.unit == UnitKind::kMlp ? "mlp" : "heads");
  const auto t = static_cast<Index>(task.inputs->cols());
  const MatrixXd w = task.weight->cast<double>();
  ProjectionOutcome out;
  PrunedProjection& rep = out.report;
  rep.layer = task.layer;
  rep.unit = task.unit;
  rep.num_units = lay.num_units;
  rep.method = o.method;

  // The Gram is needed by the refit, the refit objective and the QUBO solvers; the score
  // baselines without refit use only its diagonal.
  const bool score_method = o.method == "magnitude" || o.method == "diagonal" || o.method == "flap";
  const bool need_gram = o.refit || objective == PruneObjective::kRefit || !score_method;
  const Index n_in = task.inputs->rows();
  const ProjectionStats raw = detail::allocation_context(
      "the " + std::to_string(n_in) + " x " + std::to_string(n_in) + " Gram and cross-Gram of " +
          where,
      // F64 Gram and cross-Gram plus the F32 block Gram they are summed from
      need_gram ? static_cast<double>(n_in) * (12.0 * static_cast<double>(n_in) +
                                               8.0 * static_cast<double>(task.target->rows()))
                : 0.0,
      [&] { return projection_stats(*task.inputs, *task.target, need_gram); });
  const bool centre = task.compensation == Compensation::kOutputBias;
  rep.target_energy =
      raw.target_energy - (centre ? raw.tokens * raw.target_mean.squaredNorm() : 0.0);
  const double max_diag = raw.square.cwiseAbs().maxCoeff();
  if (!raw.square.allFinite() || raw.square.minCoeff() < -1e-9 * max_diag ||
      !std::isfinite(raw.target_energy))
    throw InvalidArgument(where + ": the calibration activations are not finite");
  // The ridge is a prior towards the ORIGINAL weights: lambda ||W' - W_K||^2, i.e. n pseudo-tokens
  // sqrt(lambda) e_c with targets sqrt(lambda) W[:, c] (objective_stats). It makes the refit well
  // posed with fewer tokens than kept channels and is part of the objective the units are chosen
  // on; errors reported as written are measured without it.
  const double ridge = o.ridge_rel * raw.square.mean();

  // The refit objective (an n x n factorisation) only where something uses it: without refit
  // the choice and the report use the no-refit error, which large layers can afford.
  std::optional<RefitObjective> obj;
  if (o.refit || objective == PruneObjective::kRefit) {
    ObjectiveStats os = objective_stats(raw, centre, ridge, w);
    try {
      obj.emplace(std::move(os.gram), std::move(os.cross), os.energy, lay, o.damping_rel);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(where + ": " + e.what());
    }
    rep.damping = obj->damping() + ridge;
  }

  // ---- choose the units
  const auto t0 = Clock::now();
  const VectorXd w_norm2 = w.colwise().squaredNorm().transpose();
  const Assignment diagonal = keep_top(lay, unit_scores(raw.square.cwiseProduct(w_norm2), lay));
  Assignment keep;
  RefitSearchOptions so = o.search;
  so.seed = task.seed;
  so.interrupt = o.interrupt;
  const std::string& m = o.method;
  rep.obs_refit_error = kNaN;
  rep.status = RunStatus::kCompleted;
  if (lay.keep_per_group == lay.units_per_group()) {
    // Nothing to remove here (a global allocation kept the whole layer): no choice to make.
    keep.assign(static_cast<std::size_t>(lay.num_units), 1);
  } else if (m == "magnitude") {
    keep = keep_top(lay, unit_scores(w_norm2, lay));
  } else if (m == "diagonal") {
    keep = diagonal;
  } else if (m == "flap") {
    // Per channel: sum_t (a_c - mu_c)^2 = sum_t a_c^2 - T mu_c^2.
    const VectorXd var = raw.square - raw.tokens * raw.mean.cwiseAbs2();
    keep = keep_top(lay, unit_scores(var.cwiseProduct(w_norm2), lay));
  } else if (objective == PruneObjective::kRefit && (m == "obs" || m == "sa" || m == "tabu")) {
    const RefitSearchResult greedy = obs_greedy(*obj, so);
    rep.obs_refit_error = greedy.error;
    RefitSearchResult r = greedy;
    if (m == "sa") r = swap_anneal(*obj, greedy.keep, so);
    if (m == "tabu") r = swap_tabu(*obj, greedy.keep, so);
    keep = r.keep;
    rep.status = r.status;
  } else if (objective == PruneObjective::kRefit && m == "exact") {
    const RefitSearchResult r = exhaustive_refit(*obj, so);
    keep = r.keep;
    rep.status = r.status;
  } else {
    // A QUBO solver: on the refit objective's pairwise surrogate, or on the no-refit QUBO
    // E(s) = ||Y - W diag(1 - s) A||^2 = const + sum_c l_c s_c + s^T (H o W^T W) s with
    // l = 2 diag(W^T B - W^T W H) (zero in the one-shot case, where B = W H).
    MatrixXd mu;
    VectorXd lin;
    double offset = 0.0;
    if (objective == PruneObjective::kRefit) {
      mu = obj->pairwise_surrogate();
      offset = obj->error_all_kept();
    } else {
      const ObjectiveStats st = objective_stats(raw, centre, 0.0, w);
      const MatrixXd wtw = w.transpose() * w;
      const MatrixXd mc = st.gram.cwiseProduct(wtw);
      const VectorXd lc =
          2.0 * ((w.transpose() * st.cross).diagonal() - (wtw * st.gram).diagonal());
      offset =
          st.energy - 2.0 * w.cwiseProduct(st.cross).sum() + (w * st.gram).cwiseProduct(w).sum();
      const Index wd = lay.unit_width;
      mu.resize(lay.num_units, lay.num_units);
      for (Index v = 0; v < lay.num_units; ++v)
        for (Index u = v; u < lay.num_units; ++u)
          mu(u, v) = mu(v, u) = mc.block(u * wd, v * wd, wd, wd).sum();
      lin = unit_scores(lc, lay);
    }
    LayerProblem problem;
    if (task.unit == UnitKind::kMlp) {
      MlpProblemOptions po;
      po.layer = task.layer;
      po.keep = lay.keep();
      problem = mlp_problem_from_matrix(std::move(mu), lin, offset, po);
    } else {
      HeadProblemOptions po;
      po.layer = task.layer;
      po.shape = {
          task.unit == UnitKind::kKvGroups ? lay.num_units * task.heads_per_group : lay.num_units,
          task.kv_heads, task.head_dim};
      po.units = task.unit;
      po.keep = lay.keep();
      problem = head_problem_from_matrix(std::move(mu), lin, offset, po);
    }
    SolveOptions sopt = o.solve;
    sopt.seed = task.seed;
    sopt.interrupt = o.interrupt;
    const SolveResult r = make_solver(m, o.settings)->solve(problem.model, sopt);
    if (!r.has_solution() || !r.best().feasible)
      throw InvalidArgument(where + ": solver " + m + " found no feasible mask (" + r.message +
                            ")");
    keep = r.best().x;
    rep.status = r.status;
  }
  rep.select_s = seconds_since(t0);
  for (int u = 0; u < lay.num_units; ++u)
    if (keep[static_cast<std::size_t>(u)]) rep.kept.push_back(u);
  // ---- the written weights: refit (or the kept columns) and the compensation
  const std::vector<Index> k = kept_channels(lay, keep);
  const auto kc = static_cast<Index>(k.size());
  if (o.refit)
    (void)check_refit_tokens(t, kc, where, ridge > 0.0,
                             "use more calibration text, --ridge, or --no-refit");
  const MatrixXd w_k = w(Eigen::all, k);
  const MatrixXf& a_all = *task.inputs;
  const MatrixXf& y_all = *task.target;
  // With a free output bias (centred) the no-refit error is the one after the optimal constant.
  const VectorXd no_refit_offset =
      centre ? VectorXd(raw.target_mean - w_k * raw.mean(k)) : VectorXd();
  rep.no_refit_error = written_error(raw, a_all, y_all, k, w_k, no_refit_offset);
  if (obj) {
    rep.refit_error = obj->error(keep);
    rep.diagonal_refit_error = obj->error(diagonal);
  } else {
    const std::vector<Index> kd = kept_channels(lay, diagonal);
    rep.refit_error = kNaN;
    const MatrixXd w_kd = w(Eigen::all, kd);
    rep.diagonal_refit_error =
        written_error(raw, a_all, y_all, kd, w_kd,
                      centre ? VectorXd(raw.target_mean - w_kd * raw.mean(kd)) : VectorXd());
  }
  MatrixXd wk = o.refit ? obj->refit(keep) : w_k;
  VectorXd out_bias;  // added to the projection's bias
  VectorXd d;         // input shift of the kept channels (value bias)
  VectorXd value_bias;
  if (task.compensation == Compensation::kOutputBias) {
    out_bias = raw.target_mean - wk * raw.mean(k);
  } else if (task.compensation == Compensation::kValueBias) {
    // Value-bias compensation: the constant c_g added to KV head g's values appears in every kept
    // query head of group g, so the kept channels move by d = E c. Alternate the exact
    // minimisation over c (given W') and, with refit, over W' (given c); each step can only lower
    // the error, and the start (c = 0) is the uncompensated fit.
    const int hd = task.head_dim;
    const int group = task.heads_per_group;
    // Kept KV heads in order and, for each kept channel, the row of c it reads.
    std::vector<int> kv_kept;
    std::vector<Index> row_of(static_cast<std::size_t>(kc));
    for (Index i = 0; i < kc; ++i) {
      const int head = static_cast<int>(k[static_cast<std::size_t>(i)] / hd);
      const int g = head / group;
      if (std::find(kv_kept.begin(), kv_kept.end(), g) == kv_kept.end()) kv_kept.push_back(g);
      const auto pos = std::find(kv_kept.begin(), kv_kept.end(), g) - kv_kept.begin();
      row_of[static_cast<std::size_t>(i)] = pos * hd + k[static_cast<std::size_t>(i)] % hd;
    }
    const Index rows = static_cast<Index>(kv_kept.size()) * hd;
    VectorXd c = VectorXd::Zero(rows);
    d = VectorXd::Zero(kc);
    double best = written_error(raw, a_all, y_all, k, wk, VectorXd());
    MatrixXd best_wk = wk;
    VectorXd best_c = c;
    for (int it = 0; it < 8; ++it) {
      MatrixXd me = MatrixXd::Zero(wk.rows(), rows);  // W' E
      for (Index i = 0; i < kc; ++i) me.col(row_of[static_cast<std::size_t>(i)]) += wk.col(i);
      const VectorXd r = raw.target_mean - wk * raw.mean(k);
      c = me.colPivHouseholderQr().solve(r);
      for (Index i = 0; i < kc; ++i) d[i] = c[row_of[static_cast<std::size_t>(i)]];
      if (o.refit) wk = refit_shifted(raw, k, d, obj->damping(), ridge, w_k);
      const double e = written_error(raw, a_all, y_all, k, wk, wk * d);
      if (!(e < best * (1.0 - 1e-9))) break;
      best = e;
      best_wk = wk;
      best_c = c;
    }
    wk = best_wk;
    c = best_c;
    for (Index i = 0; i < kc; ++i) d[i] = c[row_of[static_cast<std::size_t>(i)]];
    if (c.squaredNorm() > 0.0) value_bias = c;
  }
  const VectorXd gamma =
      d.size() != 0 ? VectorXd(wk * d + (out_bias.size() ? out_bias : VectorXd::Zero(wk.rows())))
                    : out_bias;
  rep.error_written = written_error(raw, a_all, y_all, k, wk, gamma);

  // The pruned output that advances the pruned stream.
  const MatrixXf wkf = wk.cast<float>();
  VectorXf shift = VectorXf::Zero(wk.rows());
  if (gamma.size() != 0) shift = gamma.cast<float>();
  if (task.bias->size() != 0) shift += *task.bias;
  const MatrixXf a_k = (*task.inputs)(k, Eigen::all);
  out.output = forward::project(wkf, shift, a_k);

  if (o.refit) out.written.kept_columns = std::move(wk);  // else: the original columns
  out.written.output_bias = std::move(out_bias);
  out.written.value_bias = std::move(value_bias);
  out.written.error_without_refit = rep.no_refit_error;
  out.written.error_with_refit = rep.error_written;
  return out;
}

// The written columns of finished layers wait on disk, not in memory, until the checkpoint is
// written (at 7B size 28 layers of refitted down_proj columns are ~9 GB as doubles): a fresh
// folder beside the output (an AtomicFolder that is never committed: a random name that did not
// exist), one safetensors file per projection in the weight's precision (F32 unless the
// checkpoint stores F64), removed at the end whatever happens (error, interrupt).
class Spill {
 public:
  Spill(const std::filesystem::path& out_folder, Dtype dtype)
      : folder_(out_folder, /*replace=*/false), dir_(folder_.path()), dtype_(dtype) {}
  Spill(const Spill&) = delete;
  Spill& operator=(const Spill&) = delete;
  void put(int layer, bool mlp, const detail::RefittedProjection& r) {
    if (r.kept_columns.size() == 0 && r.output_bias.size() == 0 && r.value_bias.size() == 0)
      return;  // the original columns, nothing added: the writer takes them from the checkpoint
    SafetensorsWriter w;
    auto add = [&](const char* name, const Eigen::MatrixXd& m) {
      if (m.size() != 0) w.add_matrix(name, dtype_, m, {m.rows(), m.cols()});
    };
    add("kept_columns", r.kept_columns);
    add("output_bias", r.output_bias);
    add("value_bias", r.value_bias);
    w.write(file(layer, mlp));
  }
  [[nodiscard]] std::optional<detail::RefittedProjection> get(int layer, bool mlp) const {
    const std::filesystem::path f = file(layer, mlp);
    if (!std::filesystem::exists(f)) return std::nullopt;
    const SafetensorsFile st = SafetensorsFile::open(f);
    detail::RefittedProjection r;
    if (st.contains("kept_columns")) r.kept_columns = st.read_matrix("kept_columns");
    if (st.contains("output_bias")) r.output_bias = st.read_matrix("output_bias").col(0);
    if (st.contains("value_bias")) r.value_bias = st.read_matrix("value_bias").col(0);
    return r;
  }

 private:
  [[nodiscard]] std::filesystem::path file(int layer, bool mlp) const {
    return dir_ / ("layer" + std::to_string(layer) + (mlp ? ".mlp" : ".attn") + ".safetensors");
  }
  AtomicFolder folder_;
  std::filesystem::path dir_;
  Dtype dtype_;
};

// The shortest text that reads back to v: integers without exponent or point (1119030, not the
// stream's default 1.11903e+06), short decimals as written (0.4).
std::string exact_text(double v) {
  char text[64];
  const auto written = std::to_chars(text, text + sizeof(text), v);
  return {text, written.ptr};
}

std::string describe(const PrunedProjection& p) {
  std::ostringstream s;
  s << "layer " << p.layer << " " << unit_kind_name(p.unit) << ": kept " << p.kept.size() << "/"
    << p.num_units << " " << p.method;
  if (std::isnan(p.refit_error)) {
    s << " no-refit error " << exact_text(p.no_refit_error);
  } else {
    s << " refit error " << exact_text(p.refit_error);
  }
  if (!std::isnan(p.obs_refit_error)) s << " (obs " << exact_text(p.obs_refit_error) << ")";
  s << " diagonal " << exact_text(p.diagonal_refit_error) << " written "
    << exact_text(p.error_written) << " of " << exact_text(p.target_energy) << ", " << p.select_s
    << " s";
  return s.str();
}

}  // namespace

const char* allocation_scale_name(AllocationScale scale) {
  switch (scale) {
    case AllocationScale::kResidualStream:
      return "stream";
    case AllocationScale::kLayerOutput:
      return "output";
    case AllocationScale::kAbsolute:
      return "absolute";
  }
  return "?";
}

const char* refit_target_name(RefitTarget target) {
  return target == RefitTarget::kLayerOutput ? "layer" : "residual";
}

std::vector<std::string> prune_method_names() {
  return {"magnitude", "diagonal", "flap", "obs", "sa", "tabu", "exact"};
}

void PruneOptions::validate() const {
  if (!mlp && !heads) throw InvalidArgument("--unit: choose mlp, heads or both");
  if (!(sparsity >= 0.0 && sparsity < 1.0))
    throw InvalidArgument("--sparsity must be in [0, 1), is " + std::to_string(sparsity));
  if (head_sparsity && !(*head_sparsity >= 0.0 && *head_sparsity < 1.0))
    throw InvalidArgument("--head-sparsity must be in [0, 1), is " +
                          std::to_string(*head_sparsity));
  if (head_shape != UnitKind::kKvGroups && head_shape != UnitKind::kHeadsPerGroup)
    throw InvalidArgument("--head-shape must be kv_groups or heads_per_group");
  if (objective == PruneObjective::kRefit && !refit)
    throw InvalidArgument("--objective refit needs the refit (drop --no-refit)");
  const PruneObjective obj =
      objective.value_or(refit ? PruneObjective::kRefit : PruneObjective::kNoRefit);
  const std::vector<std::string> own = prune_method_names();
  const std::vector<std::string> solvers = solver_names();
  const bool known = std::find(own.begin(), own.end(), method) != own.end() ||
                     std::find(solvers.begin(), solvers.end(), method) != solvers.end();
  if (!known) {
    std::string list;
    for (const auto& v : {own, solvers})
      for (const std::string& s : v)
        if (list.find(s) == std::string::npos) list += (list.empty() ? "" : ", ") + s;
    throw InvalidArgument("--method '" + method + "' is unknown; choose one of " + list);
  }
  if (method == "obs" && obj != PruneObjective::kRefit)
    throw InvalidArgument("--method obs is the greedy of the refit objective; it needs --refit");
  if (!(max_layer_sparsity >= 0.0 && max_layer_sparsity <= 1.0))
    throw InvalidArgument("--max-layer-sparsity must be in [0, 1]");
  if (multiple_of < 1)
    throw InvalidArgument("--multiple-of must be >= 1, is " + std::to_string(multiple_of));
  if (!(damping_rel > 0.0) || !std::isfinite(damping_rel))
    throw InvalidArgument("--damping must be > 0");
  if (!(ridge_rel >= 0.0) || !std::isfinite(ridge_rel))
    throw InvalidArgument("--ridge must be >= 0");
  search.validate();
  solve.validate();
}

std::vector<std::vector<std::int32_t>> calibration_windows(std::span<const std::int32_t> tokens,
                                                           std::int64_t context,
                                                           std::int64_t max_tokens,
                                                           std::uint64_t seed) {
  if (context < 1) throw InvalidArgument("--context must be >= 1");
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n == 0) throw InvalidArgument("no calibration tokens");
  const std::int64_t want = max_tokens > 0 ? std::min(max_tokens, n) : n;
  std::vector<std::vector<std::int32_t>> out;
  if (seed == 0) {
    for (std::int64_t b = 0; b < want; b += context) {
      const std::int64_t len = std::min(context, want - b);
      out.emplace_back(tokens.begin() + b, tokens.begin() + b + len);
    }
    return out;
  }
  // Random windows (with replacement): different seeds give different calibration samples.
  std::mt19937_64 rng(seed);
  const std::int64_t len = std::min(context, n);
  std::uniform_int_distribution<std::int64_t> start(0, n - len);
  for (std::int64_t got = 0; got < want; got += len) {
    const std::int64_t b = start(rng);
    out.emplace_back(tokens.begin() + b, tokens.begin() + b + std::min(len, want - got));
  }
  return out;
}

PruneReport prune_model(const Checkpoint& ckpt,
                        const std::vector<std::vector<std::int32_t>>& windows,
                        const PruneOptions& o, const std::filesystem::path& out_folder) {
  o.validate();
  const auto t_start = Clock::now();
  const Transformer model(ckpt);  // refuses what the forward pass cannot run, up front
  const ModelConfig& cfg = model.config();
  const PruneObjective objective =
      o.objective.value_or(o.refit ? PruneObjective::kRefit : PruneObjective::kNoRefit);
  const UnitKind head_unit = head_unit_for(cfg, o.head_shape);
  const double head_sparsity = o.head_sparsity.value_or(o.sparsity);
  const int layers = static_cast<int>(cfg.num_hidden_layers);
  const bool llama = bias_compensation_supported(cfg);
  const TokenBatch batch(windows, cfg);
  const Index tokens = batch.num_tokens();
  if (tokens == 0) throw InvalidArgument("no calibration tokens");

  PruneReport report;
  report.tokens = tokens;
  // Memory: two residual streams, one sublayer's activations for both streams and its target,
  // and the statistics and search state of the widest projection (H, A, G: 3 n^2 doubles).
  const Index hidden = cfg.hidden_size;
  const Index widest =
      std::max<Index>(o.mlp ? cfg.intermediate_size : 0, cfg.num_attention_heads * cfg.head_dim);
  detail::check_memory(
      4.0 * static_cast<double>(tokens) * static_cast<double>(2 * hidden + 3 * widest) +
          detail::square_bytes(widest, 3 * sizeof(double)),
      "sequential pruning over " + std::to_string(tokens) + " calibration tokens",
      "use fewer calibration tokens (--tokens)", o.memory_limit_bytes);

  // Layouts and a first check that the sparsities are expressible.
  const UnitLayout mlp_layout =
      o.mlp ? layout_for(cfg, UnitKind::kMlp, o.sparsity, o.multiple_of) : UnitLayout{};
  const UnitLayout head_layout = o.heads ? layout_for(cfg, head_unit, head_sparsity) : UnitLayout{};

  Masks& masks = report.masks;
  masks.checkpoint = CheckpointIdentity::of(ckpt);
  masks.solver = o.method;
  masks.seed = o.solve.seed;
  masks.sparsity = o.sparsity;
  masks.mean_compensation = llama && o.mean_compensation;
  masks.run.recorded = true;
  if (o.mlp) masks.run.units.push_back(UnitKind::kMlp);
  if (o.heads) masks.run.units.push_back(head_unit);
  masks.run.head_sparsity = o.head_sparsity;
  masks.run.allocation = o.allocation;
  masks.run.mean_compensation_requested = o.mean_compensation;
  masks.run.data_free = "magnitude";
  masks.run.multiple_of = o.mlp ? o.multiple_of : 1;

  auto progress = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  // Polled between layers (the searches poll it inside): an interrupted run writes nothing.
  auto interrupted = [&] { return report.interrupted = raised(o.interrupt); };

  // Global allocation: per-layer keep counts from one-shot statistics (a first pass over the
  // original model). Each layer's OBS greedy removal path gives the marginal refit cost of every
  // unit it removes (in the order it removes them); allocate_global_costs compares the costs
  // across layers, MLP neurons and heads each within their own budget. The default scale divides
  // by the energy of the residual stream the projection adds to: the next RMSNorm sees the
  // stream's direction, so an error matters relative to the stream, and early layers, whose
  // stream is small, weigh more (on the example model 6.35 -> 5.91 perplexity against the
  // layer-output scale; docs/pruning_math.md, section 9).
  std::vector<int> mlp_keep(static_cast<std::size_t>(layers), mlp_layout.keep());
  std::vector<int> head_keep(static_cast<std::size_t>(layers), head_layout.keep());
  // --multiple-of, global: each MLP layer's count at multiple 1 and the rounding's predicted cost
  // (empty when not rounded, or uniform, where no removal costs are computed).
  std::vector<int> mlp_unrounded;
  std::vector<double> mlp_rounding_cost;
  MatrixXf x = batch.embed(ckpt);
  // The allocation pass runs the original model; in sequential mode the main pass needs only the
  // original sublayer outputs (targets), so they are kept when they fit instead of running the
  // original model a second time.
  std::vector<MatrixXf> original_att, original_mlp;
  const double cache_bytes =
      8.0 * static_cast<double>(layers) * static_cast<double>(hidden) * static_cast<double>(tokens);
  const bool cache_outputs = o.allocation == MaskAllocation::kGlobal && o.sequential &&
                             cache_bytes < 0.25 * static_cast<double>(o.memory_limit_bytes.value_or(
                                                      detail::available_memory_bytes()));
  if (o.allocation == MaskAllocation::kGlobal) {
    progress(std::string("global allocation: ") +
             (objective == PruneObjective::kRefit ? "OBS greedy removal costs"
                                                  : "diagonal removal costs") +
             " of every layer on the original model");
    auto path_costs = [&](const MatrixXf& a, const MatrixXf& y, const MatrixXf& weight,
                          UnitLayout lay, double cap, double stream_energy) {
      const bool centre = llama && o.mean_compensation;
      const ProjectionStats st = projection_stats(a, y, objective == PruneObjective::kRefit);
      const double target_energy =
          st.target_energy - (centre ? st.tokens * st.target_mean.squaredNorm() : 0.0);
      LayerUnitCosts c;
      c.num_groups = lay.num_groups;
      c.total_cost =
          o.allocation_scale == AllocationScale::kResidualStream ? stream_energy : target_energy;
      if (objective == PruneObjective::kNoRefit) {
        // Without refit: each unit's removal cost alone, H_ii ||W[:, i]||^2 (the QUBO's
        // diagonal; centred: C_ii), as `mask --allocation global` does; no n x n matrix.
        const VectorXd diag =
            centre ? VectorXd(st.square - st.tokens * st.mean.cwiseAbs2()) : st.square;
        c.unit_cost = unit_scores(
            diag.cwiseProduct(weight.cast<double>().colwise().squaredNorm().transpose()), lay);
        return c;
      }
      const int per_group = lay.units_per_group();
      const int max_removed = static_cast<int>(std::floor(cap * per_group + 1e-9));
      lay.keep_per_group = std::max(1, per_group - max_removed);
      ObjectiveStats os = objective_stats(st, centre, 0.0, weight.cast<double>());
      const RefitObjective obj(std::move(os.gram), std::move(os.cross), os.energy, lay,
                               o.damping_rel);
      const RefitSearchResult path = obs_greedy(obj, o.search);
      c.unit_cost = VectorXd::Constant(lay.num_units, std::numeric_limits<double>::infinity());
      double before = path.start_error;
      for (std::size_t i = 0; i < path.greedy_path.size(); ++i) {
        const int u = path.removal_order[i];
        c.unit_cost[u] = path.greedy_path[i] - before;
        before = path.greedy_path[i];
      }
      return c;
    };
    std::vector<LayerUnitCosts> mlp_costs, head_costs;
    MatrixXf xs = x;
    auto energy = [](const MatrixXf& m) { return m.cast<double>().squaredNorm(); };
    for (int l = 0; l < layers; ++l) {
      if (interrupted()) return report;
      const DecoderLayerWeights w = DecoderLayerWeights::read(ckpt, l);
      const MatrixXf heads_out =
          forward::attention_heads(w, forward::rms_norm(xs, w.input_norm, cfg.rms_norm_eps), batch);
      const MatrixXf y_att = forward::project(w.o, VectorXf(), heads_out);
      if (o.heads)
        head_costs.push_back(
            path_costs(heads_out, y_att, w.o, head_layout, o.max_layer_sparsity, energy(xs)));
      xs += y_att;
      if (w.o_bias.size() != 0) xs.colwise() += w.o_bias;
      if (cache_outputs)
        original_att.push_back(w.o_bias.size() != 0 ? MatrixXf(y_att.colwise() + w.o_bias) : y_att);
      const MatrixXf a = forward::mlp_activations(
          w, forward::rms_norm(xs, w.post_attention_norm, cfg.rms_norm_eps));
      const MatrixXf y = forward::project(w.down, VectorXf(), a);
      if (o.mlp)
        mlp_costs.push_back(path_costs(a, y, w.down, mlp_layout, o.max_layer_sparsity, energy(xs)));
      xs += y;
      if (w.down_bias.size() != 0) xs.colwise() += w.down_bias;
      if (cache_outputs)
        original_mlp.push_back(w.down_bias.size() != 0 ? MatrixXf(y.colwise() + w.down_bias) : y);
    }
    GlobalAllocationOptions go;
    go.scale = o.allocation_scale == AllocationScale::kAbsolute ? CostScale::kAbsolute
                                                                : CostScale::kRelativeToLayerOutput;
    go.max_layer_sparsity = o.max_layer_sparsity;
    if (o.mlp) {
      go.sparsity = o.sparsity;
      go.multiple_of = o.multiple_of;
      mlp_keep = allocate_global_costs(mlp_costs, go).keep;
      if (o.multiple_of > 1) {
        go.multiple_of = 1;
        try {
          mlp_unrounded = allocate_global_costs(mlp_costs, go).keep;
          for (std::size_t l = 0; l < mlp_costs.size(); ++l)
            mlp_rounding_cost.push_back(removal_cost(mlp_costs[l], mlp_keep[l]) -
                                        removal_cost(mlp_costs[l], mlp_unrounded[l]));
        } catch (const InvalidArgument&) {
          mlp_unrounded.clear();  // blocks reach budgets single units cannot: no comparison
          mlp_rounding_cost.clear();
        }
      }
      go.multiple_of = 1;
    }
    if (o.heads) {
      go.sparsity = head_sparsity;
      head_keep = allocate_global_costs(head_costs, go).keep;
    }
    std::string line = "global allocation: MLP keeps";
    for (const int k : mlp_keep) line += " " + std::to_string(k);
    line += ", heads keep";
    for (const int k : head_keep) line += " " + std::to_string(k);
    progress(line);
  }

  // The two streams: x (original) and xp (pruned); one-shot mode runs the original only.
  MatrixXf xp;
  if (o.sequential) xp = x;
  // Where the written columns wait (created only now: every check above passed).
  Spill spill(out_folder, ckpt.info("model.layers.0.mlp.down_proj.weight").dtype == Dtype::kF64
                              ? Dtype::kF64
                              : Dtype::kF32);
  double select_s = 0.0;
  bool warned_tokens = false;
  for (int l = 0; l < layers; ++l) {
    if (interrupted()) return report;
    const DecoderLayerWeights w = DecoderLayerWeights::read(ckpt, l);
    auto run_projection = [&](UnitKind unit, const UnitLayout& lay, const MatrixXf& weight,
                              const VectorXf& bias, const MatrixXf& a_p, const MatrixXf& y_orig,
                              const MatrixXf* stream_gap) {
      ProjectionTask task;
      task.layer = l;
      task.unit = unit;
      task.layout = lay;
      task.weight = &weight;
      task.bias = &bias;
      task.inputs = &a_p;
      MatrixXf target = bias.size() != 0 ? MatrixXf(y_orig.colwise() - bias) : y_orig;
      if (stream_gap != nullptr) target += *stream_gap;
      task.target = &target;
      const bool mlp = unit == UnitKind::kMlp;
      task.compensation = !o.mean_compensation                          ? Compensation::kNone
                          : llama                                       ? Compensation::kOutputBias
                          : (!mlp && cfg.family == ModelFamily::kQwen2) ? Compensation::kValueBias
                                                                        : Compensation::kNone;
      task.kv_heads = static_cast<int>(cfg.num_key_value_heads);
      task.heads_per_group = static_cast<int>(cfg.num_attention_heads / cfg.num_key_value_heads);
      task.head_dim = static_cast<int>(cfg.head_dim);
      task.seed = layer_seed(o.solve.seed, l, unit);
      const int kept_channels = lay.keep() * lay.unit_width;
      // The refusal (T < kept without --ridge) comes from the same rule in prune_projection.
      if (o.refit && !warned_tokens) {
        const std::string msg =
            check_refit_tokens(tokens, kept_channels,
                               "layer " + std::to_string(l) + " " + unit_kind_name(unit), true, "");
        if (!msg.empty()) {
          warned_tokens = true;
          report.warnings.push_back(msg);
          progress("warning: " + msg);
        }
      }
      ProjectionOutcome r = prune_projection(task, o, objective);
      select_s += r.report.select_s;
      progress(describe(r.report));
      LayerMask e;
      e.layer = l;
      e.unit = unit;
      e.num_units = lay.num_units;
      e.kept = r.report.kept;
      // The objective the run minimised, for this mask and for the diagonal mask (with the
      // no-refit objective diagonal_refit_error holds the diagonal mask's no-refit error).
      e.objective =
          objective == PruneObjective::kRefit ? r.report.refit_error : r.report.no_refit_error;
      e.baseline_objective = r.report.diagonal_refit_error;
      e.time_s = r.report.select_s;
      e.status = r.report.status;
      e.seed = task.seed;
      e.keep = lay.keep();
      if (mlp && !mlp_unrounded.empty()) {
        e.unrounded_keep = mlp_unrounded[static_cast<std::size_t>(l)];
        e.rounding_cost = mlp_rounding_cost[static_cast<std::size_t>(l)];
      }
      masks.entries.push_back(std::move(e));
      spill.put(l, mlp, r.written);
      report.projections.push_back(std::move(r.report));
      return std::move(r.output);
    };

    // Attention. The original model's heads are needed as inputs in one-shot mode and for the
    // target unless the allocation pass kept the outputs.
    UnitLayout layer_heads = head_layout;
    if (o.heads)
      layer_heads.keep_per_group = head_keep[static_cast<std::size_t>(l)] / head_layout.num_groups;
    const bool cached = !original_att.empty();
    const MatrixXf o_orig =
        cached ? MatrixXf()
               : forward::attention_heads(w, forward::rms_norm(x, w.input_norm, cfg.rms_norm_eps),
                                          batch);
    const MatrixXf y_orig = cached ? std::move(original_att[static_cast<std::size_t>(l)])
                                   : forward::project(w.o, w.o_bias, o_orig);
    if (o.sequential) {
      const MatrixXf o_p =
          forward::attention_heads(w, forward::rms_norm(xp, w.input_norm, cfg.rms_norm_eps), batch);
      if (o.heads) {
        const MatrixXf gap = x - xp;
        xp += run_projection(head_unit, layer_heads, w.o, w.o_bias, o_p, y_orig,
                             o.target == RefitTarget::kResidual ? &gap : nullptr);
      } else {
        xp += forward::project(w.o, w.o_bias, o_p);
      }
      x += y_orig;
    } else {
      if (o.heads)
        (void)run_projection(head_unit, layer_heads, w.o, w.o_bias, o_orig, y_orig, nullptr);
      x += y_orig;
    }
    // MLP.
    const MatrixXf a_orig =
        cached ? MatrixXf()
               : forward::mlp_activations(
                     w, forward::rms_norm(x, w.post_attention_norm, cfg.rms_norm_eps));
    const MatrixXf m_orig = cached ? std::move(original_mlp[static_cast<std::size_t>(l)])
                                   : forward::project(w.down, w.down_bias, a_orig);
    UnitLayout lay = mlp_layout;
    lay.keep_per_group = mlp_keep[static_cast<std::size_t>(l)];
    if (o.sequential) {
      const MatrixXf a_p = forward::mlp_activations(
          w, forward::rms_norm(xp, w.post_attention_norm, cfg.rms_norm_eps));
      if (o.mlp) {
        const MatrixXf gap = x - xp;
        xp += run_projection(UnitKind::kMlp, lay, w.down, w.down_bias, a_p, m_orig,
                             o.target == RefitTarget::kResidual ? &gap : nullptr);
      } else {
        xp += forward::project(w.down, w.down_bias, a_p);
      }
    } else if (o.mlp) {
      (void)run_projection(UnitKind::kMlp, lay, w.down, w.down_bias, a_orig, m_orig, nullptr);
    }
    x += m_orig;
  }
  report.select_s = select_s;
  report.forward_s = seconds_since(t_start) - select_s;
  std::sort(masks.entries.begin(), masks.entries.end(), [](const LayerMask& a, const LayerMask& b) {
    return std::pair(a.unit != UnitKind::kMlp, a.layer) <
           std::pair(b.unit != UnitKind::kMlp, b.layer);
  });
  if (masks.run.multiple_of > 1) {
    double removed = 0.0, units = 0.0;
    for (const LayerMask& e : masks.entries) {
      if (e.unit != UnitKind::kMlp) continue;
      units += e.num_units;
      removed += e.num_units - e.keep;
      masks.run.rounding_cost += e.rounding_cost;
    }
    masks.run.effective_sparsity = units > 0.0 ? removed / units : 0.0;
  }
  if (interrupted()) return report;

  const auto t_write = Clock::now();
  const detail::RefitProvider provider = [&](int l, bool mlp) { return spill.get(l, mlp); };
  const ApplyReport applied =
      detail::write_pruned_checkpoint(ckpt, masks, provider, out_folder, {});
  report.write_s = seconds_since(t_write);
  report.config = applied.config;
  report.stored_parameters = applied.stored_parameters;
  report.padding_parameters = applied.padding_parameters;
  report.original_parameters = ckpt.num_parameters();
  // Block-wise FP8: what apply changed beyond the masks, said as apply says it.
  if (!applied.dequantised_modules.empty())
    report.warnings.push_back(std::to_string(applied.dequantised_modules.size()) +
                              " sliced FP8 projections written as BF16 and listed in "
                              "quantization_config.modules_to_not_convert");
  if (!applied.mtp_note.empty()) report.warnings.push_back(applied.mtp_note);
  return report;
}

}  // namespace qprune
