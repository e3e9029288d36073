// Behaviour-targeted pruning (include/qprune/behaviour_contrast.hpp): the combined Gram of two
// calibration sets, the contrastive layer problem built from it by the ordinary builders, the
// checks on the two files, the saturation weight and the contrastive diagonal baseline.
// docs/pruning_math.md, section 11.
#include "qprune/behaviour_contrast.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <vector>

#include "qprune/error.hpp"

namespace qprune {
namespace {

std::string num(double v) {
  std::ostringstream o;
  o.precision(6);
  o << v;
  return o.str();
}

// tr(W G W^T): the layer's output energy on a set (the error of removing every unit).
double output_energy(const Eigen::MatrixXd& w, const Eigen::MatrixXd& g) {
  return (w * g).cwiseProduct(w).sum();
}

std::vector<Eigen::Index> removed_channels(const Assignment& keep, int unit_width) {
  std::vector<Eigen::Index> s;
  for (std::size_t u = 0; u < keep.size(); ++u)
    if (keep[u] == 0)
      for (int c = 0; c < unit_width; ++c)
        s.push_back(static_cast<Eigen::Index>(u) * unit_width + c);
  return s;
}

std::string weight_name(int layer, bool mlp) {
  return "model.layers." + std::to_string(layer) +
         (mlp ? ".mlp.down_proj.weight" : ".self_attn.o_proj.weight");
}

}  // namespace

ContrastiveGram contrastive_gram(const Eigen::MatrixXd& w, const ActivationStats& preserve,
                                 const ActivationStats& contrast, double lambda, bool centre,
                                 const std::string& what) {
  preserve.validate();
  contrast.validate();
  if (!std::isfinite(lambda) || std::abs(lambda) > kMaxBehaviourWeight)
    throw InvalidArgument(what + ": the behaviour weight must be finite and in [-" +
                          num(kMaxBehaviourWeight) + ", " + num(kMaxBehaviourWeight) + "], is " +
                          num(lambda) + " (docs/pruning_math.md 11.4)");
  const Eigen::Index n = w.cols();
  if (preserve.gram.rows() != n || contrast.gram.rows() != n)
    throw InvalidArgument(what + ": the Grams are " + std::to_string(preserve.gram.rows()) +
                          " and " + std::to_string(contrast.gram.rows()) +
                          " square, the weight has " + std::to_string(n) + " input channels");
  ContrastiveGram out;
  if (centre) {
    if (preserve.mean.size() == 0 || contrast.mean.size() == 0)
      throw InvalidArgument(what + ": mean compensation needs both statistics' means");
    const Eigen::VectorXd& mb = preserve.mean;
    const Eigen::VectorXd& ma = contrast.mean;
    const auto tb = static_cast<double>(preserve.num_tokens);
    const auto ta = static_cast<double>(contrast.num_tokens);
    out.preserve_gram = preserve.gram - tb * mb * mb.transpose();
    // A's scatter around B's mean: the error A sees after the bias written from B's mean.
    out.contrast_gram =
        contrast.gram - ta * (ma * mb.transpose() + mb * ma.transpose()) + ta * mb * mb.transpose();
  } else {
    out.preserve_gram = preserve.gram;
    out.contrast_gram = contrast.gram;
  }
  out.preserve_energy = output_energy(w, out.preserve_gram);
  out.contrast_energy = output_energy(w, out.contrast_gram);
  if (!(out.preserve_energy > 0.0) || !(out.contrast_energy > 0.0))
    throw InvalidArgument(what + ": the layer's output energy is " + num(out.preserve_energy) +
                          " on the preserved set and " + num(out.contrast_energy) +
                          " on the contrasted set; both must be > 0 to compare relative errors");
  out.raw_weight = lambda * out.preserve_energy / out.contrast_energy;
  out.gram = out.preserve_gram - out.raw_weight * out.contrast_gram;
  return out;
}

ActivationStats protected_refit_statistics(const Eigen::MatrixXd& w,
                                           const ActivationStats& preserve,
                                           const ActivationStats& contrast, double lambda,
                                           bool centre, const std::string& what) {
  if (!(lambda < 0.0))
    throw InvalidArgument(what + ": a refit serves a protect objective (lambda < 0), not " +
                          num(lambda) + ": err_B - w err_A has no least-squares minimum");
  // Only the weight w = |lambda| N_B / N_A is wanted: the energies from tr(W G W^T) and the means,
  // without forming the centred n x n Grams (contrastive_gram's, 3 x 2.9 GB at n = 18944).
  preserve.validate();
  contrast.validate();
  if (!std::isfinite(lambda) || lambda < -kMaxBehaviourWeight)
    throw InvalidArgument(what + ": the behaviour weight must be in [-" + num(kMaxBehaviourWeight) +
                          ", 0), is " + num(lambda));
  if (preserve.gram.rows() != w.cols() || contrast.gram.rows() != w.cols())
    throw InvalidArgument(what + ": the Grams are " + std::to_string(preserve.gram.rows()) +
                          " and " + std::to_string(contrast.gram.rows()) +
                          " square, the weight has " + std::to_string(w.cols()) +
                          " input channels");
  double nb = output_energy(w, preserve.gram), na = output_energy(w, contrast.gram);
  if (centre) {  // as contrastive_gram: B around its mean, A around B's mean
    if (preserve.mean.size() == 0 || contrast.mean.size() == 0)
      throw InvalidArgument(what + ": mean compensation needs both statistics' means");
    const Eigen::VectorXd wb = w * preserve.mean, wa = w * contrast.mean;
    const auto tb = static_cast<double>(preserve.num_tokens);
    const auto ta = static_cast<double>(contrast.num_tokens);
    nb -= tb * wb.squaredNorm();
    na += ta * (wb.squaredNorm() - 2.0 * wa.dot(wb));
  }
  if (!(nb > 0.0) || !(na > 0.0))
    throw InvalidArgument(what + ": the layer's output energy is " + num(nb) +
                          " on the preserved set and " + num(na) +
                          " on the contrasted set; both must be > 0 to compare relative errors");
  const double weight = -lambda * nb / na;
  const auto tb = static_cast<double>(preserve.num_tokens);
  const double ta = weight * static_cast<double>(contrast.num_tokens);
  const double tokens = tb + ta;
  ActivationStats out;
  out.num_tokens = std::max<std::int64_t>(1, std::llround(tokens));
  out.gram =
      (preserve.gram + weight * contrast.gram) * (static_cast<double>(out.num_tokens) / tokens);
  if (preserve.mean.size() != 0 && contrast.mean.size() != 0)
    out.mean = (tb * preserve.mean + ta * contrast.mean) / tokens;
  out.approximate = preserve.approximate || contrast.approximate;
  return out;
}

double gram_error(const Eigen::MatrixXd& w, const Eigen::MatrixXd& gram, const Assignment& keep,
                  int unit_width) {
  const std::vector<Eigen::Index> s = removed_channels(keep, unit_width);
  if (s.empty()) return 0.0;
  const Eigen::MatrixXd ws = w(Eigen::all, s);
  const Eigen::MatrixXd gs = gram(s, s);
  return (ws * gs).cwiseProduct(ws).sum();
}

Eigen::VectorXd unit_removal_costs(const Eigen::MatrixXd& w, const Eigen::MatrixXd& gram,
                                   int unit_width) {
  const Eigen::Index units = w.cols() / unit_width;
  Eigen::VectorXd c(units);
  for (Eigen::Index u = 0; u < units; ++u) {
    const Eigen::MatrixXd wu = w.middleCols(u * unit_width, unit_width);
    const Eigen::MatrixXd wtw = wu.transpose() * wu;
    c[u] =
        gram.block(u * unit_width, u * unit_width, unit_width, unit_width).cwiseProduct(wtw).sum();
  }
  return c;
}

double saturation_weight(const Eigen::VectorXd& preserve_cost, const Eigen::VectorXd& contrast_cost,
                         double preserve_energy, double contrast_energy, int remove) {
  const Eigen::Index n = preserve_cost.size();
  if (remove <= 0 || remove >= n) return 0.0;
  const Eigen::VectorXd b = preserve_cost / preserve_energy;
  const Eigen::VectorXd a = contrast_cost / contrast_energy;
  std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](Eigen::Index x, Eigen::Index y) { return a[x] > a[y]; });
  // d_u(lambda) = b_u - lambda a_u. The `remove` smallest d are the A-only choice S_A once
  // d_i < d_j for every i in S_A, j outside: lambda (a_i - a_j) > b_i - b_j.
  double worst = 0.0;
  const auto r = static_cast<std::size_t>(remove);
  for (std::size_t p = 0; p < r; ++p) {
    const Eigen::Index i = order[p];
    for (std::size_t q = r; q < order.size(); ++q) {
      const Eigen::Index j = order[q];
      const double da = a[i] - a[j];
      if (da > 0.0) worst = std::max(worst, (b[i] - b[j]) / da);
    }
  }
  return worst;
}

double ContrastiveLayer::preserve_relative_error(const Assignment& keep) const {
  return gram_error(weight, preserve_gram, keep, problem.unit_width) / preserve_energy;
}

double ContrastiveLayer::contrast_relative_error(const Assignment& keep) const {
  return gram_error(weight, contrast_gram, keep, problem.unit_width) / contrast_energy;
}

void check_contrast_files(const Checkpoint& checkpoint, const CalibrationStatsFile& preserve,
                          const CalibrationStatsFile& contrast) {
  const std::string p = preserve.path().string(), c = contrast.path().string();
  if (preserve.model() != contrast.model())
    throw InvalidArgument("the two statistics files are of different checkpoints: " + p +
                          " has model " + preserve.model() + ", " + c + " has " + contrast.model());
  const std::string hash = checkpoint_config_hash(checkpoint);
  for (const CalibrationStatsFile* f : {&preserve, &contrast}) {
    try {
      f->check_against(checkpoint.config(), hash);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(f->path().string() + ": " + e.what());
    }
  }
  std::error_code ec;
  if (std::filesystem::equivalent(preserve.path(), contrast.path(), ec))
    throw InvalidArgument("the preserved and the contrasted statistics are the same file: " + p +
                          " (a contrast needs two different text sets)");
  for (const StatsKind kind : {StatsKind::kMlp, StatsKind::kAttn}) {
    if (preserve.has(kind) != contrast.has(kind))
      throw InvalidArgument(std::string("only one of the statistics files holds ") +
                            stats_kind_name(kind) + " statistics: " + p + " " +
                            (preserve.has(kind) ? "does" : "does not") + ", " + c + " " +
                            (contrast.has(kind) ? "does" : "does not"));
  }
  for (const CalibrationStatsFile* f : {&preserve, &contrast})
    for (const StatsKind kind : {StatsKind::kMlp, StatsKind::kAttn})
      if (f->has(kind) && f->num_tokens() < f->size(kind))
        throw InvalidArgument(
            f->path().string() + ": " + std::to_string(f->num_tokens()) + " tokens for " +
            std::to_string(f->size(kind)) + " " + stats_kind_name(kind) +
            " channels: the Gram has rank at most " + std::to_string(f->num_tokens()) + " < " +
            std::to_string(f->size(kind)) +
            ", so the contrast would be fitted to that many directions; calibrate on at least " +
            std::to_string(f->size(kind)) + " tokens");
  if (preserve.num_tokens() == contrast.num_tokens()) {
    const StatsKind kind = preserve.has(StatsKind::kMlp) ? StatsKind::kMlp : StatsKind::kAttn;
    if (preserve.read(kind, 0).gram == contrast.read(kind, 0).gram)
      throw InvalidArgument("the statistics files " + p + " and " + c + " are identical (same " +
                            std::to_string(preserve.num_tokens()) + " tokens, same layer 0 " +
                            stats_kind_name(kind) +
                            " Gram): a contrast needs two different text sets");
  }
}

ContrastiveLayer build_contrastive_layer(const Checkpoint& checkpoint,
                                         const CalibrationStatsFile& preserve,
                                         const CalibrationStatsFile& contrast,
                                         const LayerProblemSpec& spec, double behaviour_weight) {
  const ModelConfig& cfg = checkpoint.config();
  if (spec.layer < 0 || spec.layer >= cfg.num_hidden_layers)
    throw InvalidArgument("layer " + std::to_string(spec.layer) + " out of range [0, " +
                          std::to_string(cfg.num_hidden_layers) + ")");
  if (spec.objective == PruneObjective::kRefit)
    throw InvalidArgument(
        "a behaviour contrast is built on the layer error (no refit objective): leave out "
        "--objective refit");
  const bool mlp = spec.unit == UnitKind::kMlp;
  const StatsKind kind = mlp ? StatsKind::kMlp : StatsKind::kAttn;
  for (const CalibrationStatsFile* f : {&preserve, &contrast})
    if (!f->has(kind))
      throw InvalidArgument(f->path().string() + " holds no " + stats_kind_name(kind) +
                            " statistics, needed for the " + (mlp ? "MLP" : "head") + " contrast");
  const ActivationStats b = preserve.read(kind, spec.layer);
  const ActivationStats a = contrast.read(kind, spec.layer);
  const bool centre = spec.mean_compensation && bias_compensation_supported(cfg) &&
                      b.mean.size() != 0 && a.mean.size() != 0;
  ContrastiveLayer out;
  out.weight = checkpoint.read_matrix(weight_name(spec.layer, mlp));
  const std::string what = "layer " + std::to_string(spec.layer) + " " + (mlp ? "mlp" : "attn") +
                           " (" + preserve.path().string() + " vs " + contrast.path().string() +
                           ")";
  ContrastiveGram cg = contrastive_gram(out.weight, b, a, behaviour_weight, centre, what);
  out.preserve_energy = cg.preserve_energy;
  out.contrast_energy = cg.contrast_energy;
  out.raw_weight = cg.raw_weight;
  ActivationStats combined;
  combined.gram = std::move(cg.gram);
  combined.num_tokens = b.num_tokens;
  if (mlp) {
    MlpProblemOptions o;
    o.layer = spec.layer;
    o.keep = layer_keep_count(cfg, UnitKind::kMlp, spec.sparsity, spec.multiple_of);
    o.mean_compensation = false;  // the centring is in the combined Gram already
    out.problem = build_mlp_problem(out.weight, combined, o);
  } else {
    HeadProblemOptions o;
    o.layer = spec.layer;
    o.shape = {static_cast<int>(cfg.num_attention_heads), static_cast<int>(cfg.num_key_value_heads),
               static_cast<int>(cfg.head_dim)};
    o.mean_compensation = false;
    o.units = head_unit_for(cfg, spec.unit);
    o.keep = layer_keep_count(cfg, o.units, spec.sparsity);
    out.problem = build_head_problem(out.weight, combined, o);
  }
  out.problem.centered = centre;
  out.preserve_gram = std::move(cg.preserve_gram);
  out.contrast_gram = std::move(cg.contrast_gram);
  if (behaviour_weight > 0.0) {
    int keep = 0;
    for (const CardinalityConstraint& g : out.problem.model.constraints()) keep += g.k;
    const int w = out.problem.unit_width;
    out.saturation =
        saturation_weight(unit_removal_costs(out.weight, out.preserve_gram, w),
                          unit_removal_costs(out.weight, out.contrast_gram, w), out.preserve_energy,
                          out.contrast_energy, out.problem.num_units() - keep);
  }
  return out;
}

Assignment contrastive_diagonal_top_k(const LayerProblem& problem, const Eigen::MatrixXd& weight,
                                      const ActivationStats& preserve,
                                      const ActivationStats& contrast) {
  const int w = problem.unit_width;
  const Eigen::VectorXd diff =
      unit_removal_costs(weight, contrast.gram, w) / static_cast<double>(contrast.num_tokens) -
      unit_removal_costs(weight, preserve.gram, w) / static_cast<double>(preserve.num_tokens);
  // keep_top_scores keeps the largest: keep the units least active on A relative to B.
  return keep_top_scores(problem, -diff);
}

}  // namespace qprune
