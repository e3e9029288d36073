// Sequential pruning (qprune prune) against independent references: activations captured with the
// forward hooks of the ORIGINAL checkpoint (targets) and of the WRITTEN pruned checkpoint (the
// inputs each pruned projection actually sees), and a least-squares solve by column-pivoted QR on
// them. Each written down_proj / o_proj (and bias) must be that least-squares fit, and the error
// the report states must be the error measured on those activations. Also: the value-bias
// identity behind the Qwen2 head compensation, padded global allocations, too few tokens,
// interrupts.
#include <doctest/doctest.h>

#include <Eigen/QR>
#include <atomic>
#include <cmath>
#include <random>

#include "qprune/calibration.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/sequential_pruning.hpp"
#include "qprune/transformer.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"
#include "tests/tiny_checkpoints.hpp"

using namespace qprune;
namespace fs = std::filesystem;
using Eigen::MatrixXd;
using Eigen::MatrixXf;

namespace {

using test::Model;

// Per layer, the o_proj inputs, the MLP activations and the residual stream after attention and
// after the MLP, for every token (sequences side by side).
struct Captured {
  std::vector<MatrixXd> attn, mlp, after_attn, after_mlp;
};

Captured capture(const Checkpoint& ckpt, const std::vector<std::vector<std::int32_t>>& windows) {
  const Transformer model(ckpt);
  const int layers = static_cast<int>(model.config().num_hidden_layers);
  Captured c;
  for (auto* v : {&c.attn, &c.mlp, &c.after_attn, &c.after_mlp})
    v->resize(static_cast<std::size_t>(layers));
  auto append = [](MatrixXd& all, const MatrixXf& part) {
    const Eigen::Index old = all.cols();
    all.conservativeResize(part.rows(), old + part.cols());
    all.rightCols(part.cols()) = part.cast<double>();
  };
  ForwardHooks hooks;
  hooks.attn = [&](int l, int, const MatrixXf& z) {
    append(c.attn[static_cast<std::size_t>(l)], z);
  };
  hooks.mlp = [&](int l, int, const MatrixXf& a) { append(c.mlp[static_cast<std::size_t>(l)], a); };
  hooks.stream = [&](int l, int, bool after_mlp, const MatrixXf& x) {
    append((after_mlp ? c.after_mlp : c.after_attn)[static_cast<std::size_t>(l)], x);
  };
  model.run_layers(windows, hooks);
  return c;
}

std::vector<std::vector<std::int32_t>> random_windows(int count, int length, int vocab,
                                                      std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> id(0, vocab - 1);
  std::vector<std::vector<std::int32_t>> w(static_cast<std::size_t>(count));
  for (auto& s : w)
    for (int t = 0; t < length; ++t) s.push_back(id(rng));
  return w;
}

// min over (W, b) of ||Y - W A - b 1^T||^2 (b only when `intercept`), by QR of [A; 1]^T.
struct Fit {
  MatrixXd w;
  Eigen::VectorXd b;
  double error;
};
Fit least_squares(const MatrixXd& y, const MatrixXd& a, bool intercept) {
  MatrixXd design(a.cols(), a.rows() + (intercept ? 1 : 0));
  design.leftCols(a.rows()) = a.transpose();
  if (intercept) design.col(a.rows()).setOnes();
  const MatrixXd sol = design.colPivHouseholderQr().solve(y.transpose());  // (k [+1]) x out
  Fit f;
  f.w = sol.topRows(a.rows()).transpose();
  f.b =
      intercept ? Eigen::VectorXd(sol.row(a.rows()).transpose()) : Eigen::VectorXd::Zero(y.rows());
  MatrixXd pred = f.w * a;
  pred.colwise() += f.b;
  f.error = (y - pred).squaredNorm();
  return f;
}

}  // namespace

TEST_CASE(
    "sequential prune: every written projection is the least-squares fit of the original "
    "output on the pruned model's own inputs") {
  struct Case {
    Model m;
    UnitKind head_shape;
    const char* method;
    RefitTarget target;
  };
  // Llama: output biases (centred refit); Qwen2: value-bias compensation of the heads, no MLP
  // bias. hidden 16, 24 neurons, 4 heads of 4 in 2 KV groups, 3 layers.
  const Case cases[] = {
      {{16, 24, 3, 4, 2, 4, false, "llama"},
       UnitKind::kHeadsPerGroup,
       "obs",
       RefitTarget::kLayerOutput},
      {{16, 24, 3, 4, 2, 4, true, "qwen2"},
       UnitKind::kHeadsPerGroup,
       "tabu",
       RefitTarget::kLayerOutput},
      {{16, 24, 3, 4, 2, 4, true, "qwen2"},
       UnitKind::kKvGroups,
       "diagonal",
       RefitTarget::kLayerOutput},
      {{16, 24, 3, 4, 2, 4, false, "llama"},
       UnitKind::kHeadsPerGroup,
       "sa",
       RefitTarget::kResidual},
      {{16, 24, 3, 4, 2, 4, true, "qwen2"},
       UnitKind::kHeadsPerGroup,
       "obs",
       RefitTarget::kResidual},
  };
  for (const Case& c : cases) {
    CAPTURE(c.m.family);
    CAPTURE(c.method);
    const fs::path root = test::temp_dir("sequential");
    (void)test::make_checkpoint(root / "in", c.m, "F32", false, 5);
    const Checkpoint ckpt = Checkpoint::open(root / "in");
    const auto windows = random_windows(8, 40, 16, 9);  // 320 tokens
    PruneOptions o;
    o.sparsity = 0.5;
    o.head_sparsity = 0.5;
    o.head_shape = c.head_shape;
    o.method = c.method;
    o.target = c.target;
    o.allocation = MaskAllocation::kUniform;
    const PruneReport rep = prune_model(ckpt, windows, o, root / "out");
    REQUIRE_FALSE(rep.interrupted);
    const Checkpoint pruned = Checkpoint::open(root / "out");
    const Captured orig = capture(ckpt, windows);
    const Captured now = capture(pruned, windows);
    const bool llama = c.m.family == "llama";
    for (const PrunedProjection& p : rep.projections) {
      const bool mlp = p.unit == UnitKind::kMlp;
      CAPTURE(p.layer);
      CAPTURE(mlp);
      const std::string pre = "model.layers." + std::to_string(p.layer) + ".";
      const std::string wname = pre + (mlp ? "mlp.down_proj" : "self_attn.o_proj");
      const MatrixXd w0 = ckpt.read_matrix(wname + ".weight");
      const auto l = static_cast<std::size_t>(p.layer);
      MatrixXd y = w0 * (mlp ? orig.mlp[l] : orig.attn[l]);  // the original output
      if (c.target == RefitTarget::kResidual) {
        // ... plus the gap between the two residual streams at the projection's input (zero before
        // the first layer's attention: both streams start as the embeddings).
        if (mlp) {
          y += orig.after_attn[l] - now.after_attn[l];
        } else if (l > 0) {
          y += orig.after_mlp[l - 1] - now.after_mlp[l - 1];
        }
      }
      // The pruned model's inputs to this projection; for heads only the kept heads' channels
      // (padding none here: uniform).
      const MatrixXd a = mlp ? now.mlp[l] : now.attn[l];
      const Fit ls = least_squares(y, a, llama);
      MatrixXd pred = pruned.read_matrix(wname + ".weight") * a;
      if (pruned.contains(wname + ".bias")) pred.colwise() += pruned.read_vector(wname + ".bias");
      const double written = (y - pred).squaredNorm();
      CAPTURE(written);
      const double scale = y.squaredNorm();
      // The written weights reach the least-squares optimum on the activations they see ...
      CHECK(written == doctest::Approx(ls.error).epsilon(1e-4).scale(scale));
      MatrixXd ls_pred = ls.w * a;
      ls_pred.colwise() += ls.b;
      CHECK((pred - ls_pred).norm() <= 1e-3 * std::sqrt(scale));
      // ... and the report states that error.
      CHECK(p.error_written == doctest::Approx(written).epsilon(1e-4).scale(scale));
      CHECK(p.refit_error >= 0.0);
      CHECK(p.refit_error <= p.no_refit_error * (1 + 1e-9) + 1e-9 * scale);
    }
    fs::remove_all(root);
  }
}

TEST_CASE(
    "sequential prune without refit: the kept columns are written as they were, and the "
    "reported error is the one measured on the pruned model's own inputs") {
  const fs::path root = test::temp_dir("sequential_norefit");
  const Model m{16, 24, 3, 4, 2, 4, false, "llama"};
  (void)test::make_checkpoint(root / "in", m, "F32", false, 8);
  const Checkpoint ckpt = Checkpoint::open(root / "in");
  const auto windows = random_windows(8, 40, 16, 10);
  PruneOptions o;
  o.sparsity = 0.5;
  o.head_sparsity = 0.5;
  o.method = "diagonal";
  o.refit = false;
  o.allocation = MaskAllocation::kUniform;
  const PruneReport rep = prune_model(ckpt, windows, o, root / "out");
  const Checkpoint pruned = Checkpoint::open(root / "out");
  const Captured orig = capture(ckpt, windows);
  const Captured now = capture(pruned, windows);
  for (const PrunedProjection& p : rep.projections) {
    const bool mlp = p.unit == UnitKind::kMlp;
    CAPTURE(p.layer);
    CAPTURE(mlp);
    CHECK(std::isnan(p.refit_error));  // no refit objective was formed
    const std::string wname = "model.layers." + std::to_string(p.layer) + "." +
                              (mlp ? "mlp.down_proj" : "self_attn.o_proj");
    const MatrixXd w0 = ckpt.read_matrix(wname + ".weight");
    const MatrixXd w1 = pruned.read_matrix(wname + ".weight");
    const int width = mlp ? 1 : m.hd;
    for (std::size_t i = 0; i < p.kept.size(); ++i)
      CHECK((w1.middleCols(static_cast<Eigen::Index>(i) * width, width) -
             w0.middleCols(Eigen::Index{p.kept[i]} * width, width))
                .cwiseAbs()
                .maxCoeff() == 0.0);
    const auto l = static_cast<std::size_t>(p.layer);
    MatrixXd y = w0 * (mlp ? orig.mlp[l] : orig.attn[l]);
    MatrixXd pred = w1 * (mlp ? now.mlp[l] : now.attn[l]);
    if (pruned.contains(wname + ".bias")) pred.colwise() += pruned.read_vector(wname + ".bias");
    // The residual target (the default) adds the stream gap to y; the error is of the written
    // layer against that target.
    if (mlp) {
      y += orig.after_attn[l] - now.after_attn[l];
    } else if (l > 0) {
      y += orig.after_mlp[l - 1] - now.after_mlp[l - 1];
    }
    CHECK(p.error_written == doctest::Approx((y - pred).squaredNorm()).epsilon(1e-4));
  }
  fs::remove_all(root);
}

TEST_CASE(
    "value bias: a constant added to a KV head's values shifts each of its query heads' "
    "outputs by that constant (softmax rows sum to 1)") {
  const Checkpoint ckpt = Checkpoint::open(test::data_path("../../examples/model/checkpoint"));
  DecoderLayerWeights w = DecoderLayerWeights::read(ckpt, 1);
  const auto windows = random_windows(2, 30, 256, 3);
  const TokenBatch batch(windows, ckpt.config());
  const MatrixXf h = forward::rms_norm(batch.embed(ckpt), w.input_norm, 1e-6);
  const MatrixXf before = forward::attention_heads(w, h, batch);
  std::mt19937_64 rng(4);
  const Eigen::VectorXf c = test::normal_matrix(w.head_dim, 1, rng).col(0).cast<float>();
  w.v_bias.segment(w.head_dim, w.head_dim) += c;  // KV head 1
  const MatrixXf after = forward::attention_heads(w, h, batch);
  const int group = w.num_heads / w.num_kv_heads;
  for (int head = 0; head < w.num_heads; ++head) {
    const MatrixXf diff = after.middleRows(head * w.head_dim, w.head_dim) -
                          before.middleRows(head * w.head_dim, w.head_dim);
    const Eigen::VectorXf want = head / group == 1 ? c : Eigen::VectorXf::Zero(w.head_dim);
    CHECK((diff.colwise() - want).cwiseAbs().maxCoeff() <= 1e-5f);
  }
}

TEST_CASE("sequential prune: global allocation pads the narrow layers; parameters add up") {
  const fs::path root = test::temp_dir("sequential_global");
  const Model m{16, 24, 3, 4, 2, 4, true, "qwen2"};
  (void)test::make_checkpoint(root / "in", m, "F32", false, 6);
  const Checkpoint ckpt = Checkpoint::open(root / "in");
  PruneOptions o;
  o.sparsity = 0.5;
  o.head_sparsity = 0.5;
  o.method = "obs";
  o.allocation = MaskAllocation::kGlobal;
  o.max_layer_sparsity = 0.75;
  const PruneReport rep = prune_model(ckpt, random_windows(8, 40, 16, 9), o, root / "out");
  int neurons = 0, heads = 0, widest = 0, widest_heads = 0;
  for (const PrunedProjection& p : rep.projections) {
    const int k = static_cast<int>(p.kept.size());
    (p.unit == UnitKind::kMlp ? neurons : heads) += k;
    if (p.unit == UnitKind::kMlp) {
      widest = std::max(widest, k);
      CHECK(k >= 6);  // at most 75 % of a layer goes
    } else {
      widest_heads = std::max(widest_heads, k);
    }
  }
  CHECK(neurons == 36);  // half of 3 x 24
  CHECK(heads == 6);     // half of 3 x 4
  const Checkpoint out = Checkpoint::open(root / "out");
  CHECK(out.config().intermediate_size == widest);
  CHECK(out.config().num_attention_heads == widest_heads);
  CHECK(rep.stored_parameters == out.num_parameters());
  // Effective parameters: what the kept units hold, counted here from the masks.
  std::int64_t effective = ckpt.num_parameters();
  const std::int64_t per_neuron = 3 * m.hidden;
  const std::int64_t per_head = m.hd * (2 * m.hidden + 1);  // q rows + bias, o_proj columns
  for (const PrunedProjection& p : rep.projections)
    effective -= (p.num_units - static_cast<std::int64_t>(p.kept.size())) *
                 (p.unit == UnitKind::kMlp ? per_neuron : per_head);
  CHECK(rep.effective_parameters() == effective);
  fs::remove_all(root);
}

TEST_CASE("sequential prune: too few tokens, bad options and interrupts") {
  const fs::path root = test::temp_dir("sequential_bad");
  const Model m{16, 24, 2, 4, 2, 4, true, "qwen2"};
  (void)test::make_checkpoint(root / "in", m, "F32", false, 7);
  const Checkpoint ckpt = Checkpoint::open(root / "in");
  PruneOptions o;
  o.sparsity = 0.5;
  o.head_sparsity = 0.5;
  o.method = "obs";
  o.allocation = MaskAllocation::kUniform;
  // 10 tokens for 12 kept neurons: refused, naming both numbers.
  CHECK_THROWS_WITH_AS((void)prune_model(ckpt, random_windows(1, 10, 16, 1), o, root / "a"),
                       doctest::Contains("10 calibration tokens for 12 kept channels"),
                       InvalidArgument);
  CHECK_FALSE(fs::exists(root / "a"));
  // 40 tokens: fewer than 4x the kept channels: written, with a warning that says so.
  const PruneReport few = prune_model(ckpt, random_windows(1, 40, 16, 1), o, root / "b");
  REQUIRE_FALSE(few.warnings.empty());
  CHECK(few.warnings[0].find("only 40 calibration tokens") != std::string::npos);
  // Unknown method and an inexpressible head sparsity (4 heads in 2 groups: steps of 50 %).
  o.method = "annealing";
  CHECK_THROWS_WITH_AS((void)prune_model(ckpt, random_windows(4, 40, 16, 1), o, root / "c"),
                       doctest::Contains("--method 'annealing' is unknown"), InvalidArgument);
  o.method = "obs";
  o.head_sparsity = 0.25;
  CHECK_THROWS_WITH_AS((void)prune_model(ckpt, random_windows(4, 40, 16, 1), o, root / "c"),
                       doctest::Contains("nearest expressible"), InvalidArgument);
  o.head_sparsity = 0.5;
  // Interrupted: nothing written.
  std::atomic<bool> stop{true};
  o.interrupt = &stop;
  const PruneReport r = prune_model(ckpt, random_windows(4, 40, 16, 1), o, root / "d");
  CHECK(r.interrupted);
  CHECK_FALSE(fs::exists(root / "d"));
  fs::remove_all(root);
}
