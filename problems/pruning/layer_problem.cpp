// Builders of the per-layer pruning QUBO: the error matrix M = G o (W^T W) (block-summed over the
// channels of a unit for attention heads), built in place inside the coupling matrix the QuboModel
// takes, and its keep-variable form. Maths: docs/pruning_math.md.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/gram_kernels.hpp"
#include "core/interruptible_gram.hpp"
#include "core/memory_check.hpp"
#include "core/parallel_for.hpp"
#include "qprune/error.hpp"
#include "qprune/expert_pruning.hpp"
#include "qprune/pruning.hpp"

namespace qprune {
namespace {

using Index = Eigen::Index;

std::string layer_prefix(int layer) { return std::to_string(layer); }

// M = G o (W^T W) (G centred on the fly when `centered`), exactly symmetric, in one n x n matrix.
// W^T W is a symmetric rank-H update of the lower triangle (half the flops of a GEMM); the
// Hadamard product and the centring touch the lower triangle only, then it is mirrored.
// The matrix is checked against the memory budget first (`what` names the layer in the message).
Eigen::MatrixXd hadamard_error_matrix(const Eigen::MatrixXd& w, const ActivationStats& stats,
                                      bool centered, const std::string& what,
                                      std::optional<std::uint64_t> memory_limit_bytes) {
  const Index n = w.cols();
  detail::check_memory(
      detail::square_bytes(n, sizeof(double)),
      what + ": the " + std::to_string(n) + " x " + std::to_string(n) + " error matrix",
      "prune this layer on a machine with more memory, or split its units", memory_limit_bytes);
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(n, n);
  // w (H x n) holds unit j in column j: M's Gram is the Gram of w's columns.
  detail::add_column_gram_lower(m, w, "building the layer error matrix");
  const Eigen::MatrixXd& g = stats.gram;
  const double t = static_cast<double>(stats.num_tokens);
  detail::parallel_for(
      n,
      [&](std::int64_t jj) {
        const Index j = static_cast<Index>(jj);
        if (centered) {
          // C = G - T mu mu^T (docs/pruning_math.md).
          const double tmj = t * stats.mean[j];
          for (Index i = j; i < n; ++i) m(i, j) *= g(i, j) - tmj * stats.mean[i];
        } else {
          for (Index i = j; i < n; ++i) m(i, j) *= g(i, j);
        }
      },
      64);
  detail::mirror_lower(m);
  return m;
}

// Keep-variable QUBO of an error matrix M (moved in; its storage becomes the couplings 2M):
// E(x) = (1-x)^T M (1-x) => c = diag(M) - 2 M 1, q_ij = 2 M_ij, offset = 1^T M 1.
// With a removal linear term l (sum_u l_u (1 - x_u)) and a constant: c -= l, offset += 1^T l +
// constant, and the cost of removing u alone is M_uu + l_u.
void finish_dense(LayerProblem& p, Eigen::MatrixXd&& m, Storage storage,
                  const Eigen::VectorXd& removal_linear = {}, double constant = 0.0) {
  if (removal_linear.size() != 0 && removal_linear.size() != m.rows())
    throw InvalidArgument("layer problem: " + std::to_string(removal_linear.size()) +
                          " linear terms for " + std::to_string(m.rows()) + " units");
  p.unit_cost = m.diagonal();
  const Eigen::VectorXd row_sums = m.colwise().sum().transpose();  // M symmetric: M 1
  double offset = row_sums.sum() + constant;
  Eigen::VectorXd linear = p.unit_cost - 2.0 * row_sums;
  if (removal_linear.size() != 0) {
    linear -= removal_linear;
    offset += removal_linear.sum();
    p.unit_cost += removal_linear;
  }
  m *= 2.0;
  m.diagonal().setZero();
  p.model = QuboModel::from_dense(std::move(linear), std::move(m), offset, storage);
}

// The same for a diagonal M (data-free magnitude): no n x n matrix at all.
void finish_diagonal(LayerProblem& p, const Eigen::VectorXd& diag) {
  p.unit_cost = diag;
  p.model = QuboModel::from_couplings(static_cast<int>(diag.size()), -diag, {}, diag.sum(),
                                      Storage::kSparse);
}

void check_stats_size(const ActivationStats& stats, Index n, const char* who) {
  stats.validate();
  if (stats.gram.rows() != n) {
    throw InvalidArgument(std::string(who) + ": stats.gram is " +
                          std::to_string(stats.gram.rows()) + " x " +
                          std::to_string(stats.gram.cols()) + ", the weight has " +
                          std::to_string(n) + " input channels");
  }
}

std::vector<std::string> make_labels(int layer, const char* kind, int n) {
  std::vector<std::string> labels;
  labels.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    labels.push_back(layer_prefix(layer) + "." + kind + "." + std::to_string(i));
  return labels;
}

void setup_mlp(LayerProblem& p, const MlpProblemOptions& options) {
  p.unit = UnitKind::kMlp;
  p.layer = options.layer;
  p.unit_width = 1;
  p.num_groups = 1;
  p.name = "layer." + layer_prefix(options.layer) + ".mlp";
  p.model.set_labels(make_labels(options.layer, "mlp", p.model.num_variables()));
  if (options.keep) set_keep(p, *options.keep);
}

LayerProblem mlp_from_double(const Eigen::MatrixXd& w_down, const ActivationStats& stats,
                             const MlpProblemOptions& options) {
  options.validate();
  check_stats_size(stats, w_down.cols(), "build_mlp_problem");
  LayerProblem p;
  p.source = stats.approximate ? GramSource::kIsserlis : GramSource::kCalibration;
  p.approximate = stats.approximate;
  p.centered = options.mean_compensation && stats.mean.size() > 0;
  finish_dense(p,
               hadamard_error_matrix(w_down, stats, p.centered,
                                     "layer " + std::to_string(options.layer) + " mlp",
                                     options.memory_limit_bytes),
               options.storage);
  setup_mlp(p, options);
  return p;
}

// Unit layout of a head problem: unit width in channels and number of units.
struct HeadLayout {
  UnitKind kind;
  int width;
  int units;
  int groups;
  const char* label;
  const char* name;
};

HeadLayout head_layout(const HeadProblemOptions& o) {
  const AttentionShape& s = o.shape;
  switch (o.units) {
    case UnitKind::kHeads:
      return {UnitKind::kHeads, s.head_dim, s.num_heads, 1, "attn", "attn"};
    case UnitKind::kKvGroups:
      return {UnitKind::kKvGroups, s.head_dim * s.heads_per_group(), s.num_kv_heads, 1, "kv", "kv"};
    case UnitKind::kHeadsPerGroup:
      return {UnitKind::kHeadsPerGroup, s.head_dim, s.num_heads, s.num_kv_heads, "attn", "attn"};
    case UnitKind::kMlp:
    case UnitKind::kExperts:
      break;  // refused by validate()
  }
  throw InvalidArgument("HeadProblemOptions: unknown units");
}

void setup_heads(LayerProblem& p, const HeadProblemOptions& options, const HeadLayout& layout) {
  p.unit = layout.kind;
  p.layer = options.layer;
  p.unit_width = layout.width;
  p.num_groups = layout.groups;
  p.name = "layer." + layer_prefix(options.layer) + "." + layout.name;
  p.model.set_labels(make_labels(options.layer, layout.label, layout.units));
  if (options.keep) set_keep(p, *options.keep);
}

void check_head_weight(const Eigen::MatrixXd& w_o, const HeadProblemOptions& options) {
  options.validate();
  if (w_o.cols() != options.shape.num_channels()) {
    throw InvalidArgument("build_head_problem: w_o has " + std::to_string(w_o.cols()) +
                          " columns, expected num_heads * head_dim = " +
                          std::to_string(options.shape.num_channels()));
  }
}

LayerProblem heads_from_double(const Eigen::MatrixXd& w_o, const ActivationStats& stats,
                               const HeadProblemOptions& options) {
  check_head_weight(w_o, options);
  check_stats_size(stats, w_o.cols(), "build_head_problem");
  const HeadLayout layout = head_layout(options);
  LayerProblem p;
  p.source = stats.approximate ? GramSource::kIsserlis : GramSource::kCalibration;
  p.approximate = stats.approximate;
  p.centered = options.mean_compensation && stats.mean.size() > 0;
  const Eigen::MatrixXd mc = hadamard_error_matrix(
      w_o, stats, p.centered, "layer " + std::to_string(options.layer) + " attention",
      options.memory_limit_bytes);
  // Block sums: M_uv = sum_{c in u, c' in v} Mc(c, c'); exact per layer (docs/pruning_math.md
  // section 1).
  const Index w = layout.width;
  Eigen::MatrixXd m(layout.units, layout.units);
  for (Index v = 0; v < layout.units; ++v)
    for (Index u = v; u < layout.units; ++u) m(u, v) = m(v, u) = mc.block(u * w, v * w, w, w).sum();
  finish_dense(p, std::move(m), options.storage);
  setup_heads(p, options, layout);
  return p;
}

}  // namespace

void ActivationStats::validate() const {
  if (gram.rows() != gram.cols()) {
    throw InvalidArgument("ActivationStats::gram must be square, is " +
                          std::to_string(gram.rows()) + " x " + std::to_string(gram.cols()));
  }
  if (!gram.allFinite()) throw InvalidArgument("ActivationStats::gram has a non-finite entry");
  if (mean.size() != 0) {
    if (mean.size() != gram.rows()) {
      throw InvalidArgument("ActivationStats::mean has " + std::to_string(mean.size()) +
                            " entries, gram is " + std::to_string(gram.rows()) + " square");
    }
    if (!mean.allFinite()) throw InvalidArgument("ActivationStats::mean has a non-finite entry");
    if (num_tokens <= 0) {
      throw InvalidArgument("ActivationStats::num_tokens must be > 0 when a mean is given, is " +
                            std::to_string(num_tokens));
    }
  }
}

void AttentionShape::validate() const {
  if (num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0) {
    throw InvalidArgument("AttentionShape: num_heads, num_kv_heads and head_dim must be > 0, are " +
                          std::to_string(num_heads) + ", " + std::to_string(num_kv_heads) + ", " +
                          std::to_string(head_dim));
  }
  if (num_heads % num_kv_heads != 0) {
    throw InvalidArgument("AttentionShape: num_kv_heads = " + std::to_string(num_kv_heads) +
                          " must divide num_heads = " + std::to_string(num_heads));
  }
}

void MlpProblemOptions::validate() const {
  if (layer < 0) throw InvalidArgument("MlpProblemOptions::layer must be >= 0");
  if (memory_limit_bytes && *memory_limit_bytes == 0)
    throw InvalidArgument("MlpProblemOptions::memory_limit_bytes must be > 0 when given");
  if (keep && *keep < 1) {
    throw InvalidArgument("MlpProblemOptions::keep must be >= 1, is " + std::to_string(*keep));
  }
}

void HeadProblemOptions::validate() const {
  if (layer < 0) throw InvalidArgument("HeadProblemOptions::layer must be >= 0");
  if (memory_limit_bytes && *memory_limit_bytes == 0)
    throw InvalidArgument("HeadProblemOptions::memory_limit_bytes must be > 0 when given");
  shape.validate();
  if (!is_attention(units))
    throw InvalidArgument(
        "HeadProblemOptions::units must be an attention kind (heads, kv_groups "
        "or heads_per_group), is mlp");
  if (units == UnitKind::kHeads && shape.num_kv_heads != shape.num_heads) {
    throw InvalidArgument(
        "HeadProblemOptions::units = heads needs MHA (num_kv_heads == num_heads); with GQA only "
        "whole KV groups or the same number of heads per group give a valid checkpoint");
  }
  if (units == UnitKind::kHeadsPerGroup && shape.heads_per_group() < 2) {
    throw InvalidArgument(
        "HeadProblemOptions::units = heads per group needs GQA (num_heads > num_kv_heads)");
  }
  if (keep && *keep < 1) {
    throw InvalidArgument("HeadProblemOptions::keep must be >= 1, is " + std::to_string(*keep));
  }
}

LayerProblem build_mlp_problem(const Eigen::MatrixXd& w_down, const ActivationStats& stats,
                               const MlpProblemOptions& options) {
  return mlp_from_double(w_down, stats, options);
}

LayerProblem build_mlp_problem(const Eigen::MatrixXf& w_down, const ActivationStats& stats,
                               const MlpProblemOptions& options) {
  return mlp_from_double(w_down.cast<double>(), stats, options);
}

LayerProblem build_mlp_problem_magnitude(const Eigen::MatrixXd& w_down,
                                         const MlpProblemOptions& options) {
  options.validate();
  LayerProblem p;
  p.source = GramSource::kIdentity;
  p.approximate = true;
  finish_diagonal(p, w_down.colwise().squaredNorm().transpose());
  setup_mlp(p, options);
  return p;
}

ActivationStats isserlis_statistics(const Eigen::MatrixXd& w_gate, const Eigen::MatrixXd& w_up,
                                    double input_std) {
  if (w_gate.rows() != w_up.rows() || w_gate.cols() != w_up.cols()) {
    throw InvalidArgument("isserlis_statistics: w_gate and w_up must have the same shape");
  }
  if (!(input_std > 0.0) || !std::isfinite(input_std)) {
    throw InvalidArgument("isserlis_statistics: input_std must be > 0");
  }
  const Index n = w_gate.rows();
  const double s2 = input_std * input_std;
  const Eigen::VectorXd d = w_gate.cwiseProduct(w_up).rowwise().sum();  // g_i . u_i
  ActivationStats stats;
  stats.gram.resize(n, n);
  // E[a_i a_j] = (s^4 / 4) (d_i d_j + (g_i.g_j)(u_i.u_j) + (g_i.u_j)(u_i.g_j)): four products of
  // n x H by H x n, computed on the lower triangle's tiles only (it is symmetric) and mirrored.
  //
  // The four dot products of the off-diagonal entries run in float (twice the GEMM rate of
  // double, on half the bytes), with the weights rounded to float (exact for the BF16/F16/F32
  // checkpoints they come from) and everything else in double. Error bound, with u = 2^-24 and
  // gamma_H = H u / (1 - H u): each float dot product p' of two rounded H-vectors x, y has
  // |p' - x.y| <= e ||x|| ||y|| with e = gamma_H + 2u (accumulation, in any order, plus the
  // rounding of both inputs), so an entry's error is at most
  //   (s^4 / 4) 2 (2e + e^2) ||g_i|| ||g_j|| ||u_i|| ||u_j||
  // (4e-4 of that scale at H = 3584 in the worst case; ~1e-5 for rounding errors of random sign).
  // The statistics are themselves a model (Gaussian inputs, SiLU ~ z / 2), far coarser than this.
  // The diagonal, which sets each unit's own removal cost, is computed in double:
  // E[a_i^2] = (s^4 / 4) (2 d_i^2 + ||g_i||^2 ||u_i||^2). tests/test_gram_kernels.cpp holds the
  // float statistics to this bound against a double reference.
  const double c = 0.25 * s2 * s2;
  const Eigen::MatrixXf g = w_gate.transpose().cast<float>();  // H x n: unit i in column i
  const Eigen::MatrixXf u = w_up.transpose().cast<float>();
  const detail::GramKernels& kernels = detail::gram_kernels();
  detail::for_each_lower_tile(
      n, detail::gram_tile_size(g.rows()), "building the Isserlis statistics",
      [&](Index i0, Index rows, Index j0, Index cols) {
        kernels.isserlis_float(g.data(), u.data(), g.rows(), g.rows(), d.data(), c,
                               detail::GramTile{i0, rows, j0, cols}, stats.gram.data(), n);
      });
  const Eigen::VectorXd gn = w_gate.rowwise().squaredNorm(), un = w_up.rowwise().squaredNorm();
  stats.gram.diagonal() = c * (2.0 * d.cwiseAbs2() + gn.cwiseProduct(un));
  detail::mirror_lower(stats.gram);
  stats.mean = (0.5 * s2) * d;
  stats.num_tokens = 1;
  stats.approximate = true;
  return stats;
}

LayerProblem build_head_problem(const Eigen::MatrixXd& w_o, const ActivationStats& stats,
                                const HeadProblemOptions& options) {
  return heads_from_double(w_o, stats, options);
}

LayerProblem build_head_problem(const Eigen::MatrixXf& w_o, const ActivationStats& stats,
                                const HeadProblemOptions& options) {
  return heads_from_double(w_o.cast<double>(), stats, options);
}

LayerProblem build_head_problem_magnitude(const Eigen::MatrixXd& w_o,
                                          const HeadProblemOptions& options) {
  check_head_weight(w_o, options);
  const HeadLayout layout = head_layout(options);
  LayerProblem p;
  p.source = GramSource::kIdentity;
  p.approximate = true;
  finish_diagonal(p, magnitude_scores(w_o, layout.width));
  setup_heads(p, options, layout);
  return p;
}

LayerProblem mlp_problem_from_matrix(Eigen::MatrixXd m, const Eigen::VectorXd& removal_linear,
                                     double offset, const MlpProblemOptions& options) {
  options.validate();
  LayerProblem p;
  p.source = GramSource::kCalibration;
  finish_dense(p, std::move(m), options.storage, removal_linear, offset);
  setup_mlp(p, options);
  return p;
}

LayerProblem head_problem_from_matrix(Eigen::MatrixXd m, const Eigen::VectorXd& removal_linear,
                                      double offset, const HeadProblemOptions& options) {
  options.validate();
  const HeadLayout layout = head_layout(options);
  if (m.rows() != layout.units)
    throw InvalidArgument("head_problem_from_matrix: " + std::to_string(m.rows()) +
                          " units, the options give " + std::to_string(layout.units));
  LayerProblem p;
  p.source = GramSource::kCalibration;
  finish_dense(p, std::move(m), options.storage, removal_linear, offset);
  setup_heads(p, options, layout);
  return p;
}

void set_keep(LayerProblem& problem, int keep) {
  const int n = problem.num_units();
  const int groups = problem.num_groups;
  if (keep < 1 || keep > n) {
    throw InvalidArgument(problem.name + ": keep = " + std::to_string(keep) + " is outside [1, " +
                          std::to_string(n) + "]");
  }
  const bool experts = problem.unit == UnitKind::kExperts;
  if (keep % groups != 0) {
    throw InvalidArgument(problem.name + ": keep = " + std::to_string(keep) +
                          " is not a multiple of the " + std::to_string(groups) +
                          (experts
                               ? " routing groups (n_group; every group must keep the same "
                                 "number of experts)"
                               : " KV groups (every group must keep the same number of heads)"));
  }
  problem.model.clear_constraints();
  const int per_group = n / groups;
  for (int g = 0; g < groups; ++g) {
    CardinalityConstraint c;
    c.name = groups == 1 ? problem.name
                         : problem.name + (experts ? ".group." : ".kv.") + std::to_string(g);
    c.k = keep / groups;
    for (int i = g * per_group; i < (g + 1) * per_group; ++i) c.variables.push_back(i);
    problem.model.add_constraint(std::move(c));
  }
}

Eigen::MatrixXd error_matrix(const LayerProblem& problem) {
  const int n = problem.num_units();
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(n, n);
  problem.model.for_each_coupling([&](int i, int j, double q) { m(i, j) = m(j, i) = 0.5 * q; });
  m.diagonal() = problem.unit_cost;
  return m;
}

Assignment channel_mask(const LayerProblem& problem, const Assignment& keep_units) {
  if (keep_units.size() != static_cast<std::size_t>(problem.num_units())) {
    throw InvalidArgument("channel_mask: mask has " + std::to_string(keep_units.size()) +
                          " entries, problem has " + std::to_string(problem.num_units()) +
                          " units");
  }
  Assignment channels;
  channels.reserve(keep_units.size() * static_cast<std::size_t>(problem.unit_width));
  for (std::uint8_t v : keep_units)
    channels.insert(channels.end(), static_cast<std::size_t>(problem.unit_width), v);
  return channels;
}

Eigen::MatrixXd centered_gram(const ActivationStats& stats) {
  stats.validate();
  if (stats.mean.size() == 0) throw InvalidArgument("centered_gram: the statistics have no mean");
  return stats.gram - static_cast<double>(stats.num_tokens) * stats.mean * stats.mean.transpose();
}

LayerProblem build_expert_problem(const ExpertStats& stats, int layer, int keep, int groups) {
  if (stats.gram.rows() == 0 || stats.gram.rows() != stats.gram.cols())
    throw InvalidArgument("build_expert_problem: layer " + std::to_string(layer) +
                          " has no square expert Gram");
  LayerProblem p;
  p.source = GramSource::kCalibration;
  finish_dense(p, Eigen::MatrixXd(stats.gram), Storage::kAuto);
  p.unit = UnitKind::kExperts;
  p.layer = layer;
  p.unit_width = 1;
  if (groups < 1 || p.model.num_variables() % groups != 0)
    throw InvalidArgument("build_expert_problem: layer " + std::to_string(layer) + " has " +
                          std::to_string(p.model.num_variables()) +
                          " experts, not a multiple of the " + std::to_string(groups) +
                          " routing groups (n_group)");
  p.num_groups = groups;  // DeepSeek-V3's routing groups: each keeps keep / groups
  p.name = "layer." + layer_prefix(layer) + ".experts";
  p.model.set_labels(make_labels(layer, "experts", p.model.num_variables()));
  set_keep(p, keep);
  return p;
}

}  // namespace qprune
