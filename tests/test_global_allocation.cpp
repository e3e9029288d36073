// Global sparsity allocation and resumable mask runs (issue #4, #8) on a small 3-layer Llama built
// here: the cost-vector allocate_global against an independent sorted-order walk over costs
// computed from the activations; compute_masks --allocation global (budget met, keep counts from
// those costs); apply of a ragged allocation padded to the widest layer (zeros, the same layer
// outputs as zeroing the removed neurons computed here, the same logits as a zeroed checkpoint,
// parameter counts); and resume (an interrupted run finished equals an uninterrupted one, option
// mismatches refused naming the field, interrupted entries refused by apply).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/masks.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/transformer.hpp"
#include "tests/masks_checks.hpp"
#include "tests/test_files.hpp"

using namespace qprune;
namespace fs = std::filesystem;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

constexpr int kHidden = 8, kInter = 12, kLayers = 3, kHeads = 4, kKv = 2, kHeadDim = 2;
constexpr int kVocab = 16, kTokens = 40;

MatrixXd silu(const MatrixXd& z) { return z.array() / (1.0 + (-z.array()).exp()); }

// Values exact in F32, so the checkpoint holds exactly what the test computes with.
MatrixXd float_matrix(std::mt19937_64& rng, int rows, int cols, double scale) {
  std::normal_distribution<double> g(0.0, scale);
  MatrixXd w(rows, cols);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = static_cast<float>(g(rng));
  return w;
}

struct Tiny {
  fs::path root, ckpt_dir, stats_path;
  std::map<std::string, MatrixXd> w;
  std::vector<MatrixXd> x, a;  // per layer: inputs (hidden x T), MLP activations (inter x T)
};

std::string mlp_name(int l, const char* t) {
  return "model.layers." + std::to_string(l) + ".mlp." + t;
}

// A Llama checkpoint (F32) whose layer l has its down_proj scaled by 1 + 2l (so absolute costs
// differ between layers) and statistics of random inputs.
Tiny make_tiny(const std::string& name, std::uint64_t seed) {
  Tiny t{test::temp_dir(name), {}, {}, {}, {}, {}};
  t.ckpt_dir = t.root / "in";
  std::mt19937_64 rng(seed);
  SafetensorsWriter writer;
  auto add = [&](const std::string& n, const MatrixXd& v, bool vector = false) {
    t.w[n] = v;
    writer.add_matrix(n, Dtype::kF32, v,
                      vector ? std::vector<std::int64_t>{v.rows()} : std::vector<std::int64_t>{});
  };
  add("model.embed_tokens.weight", float_matrix(rng, kVocab, kHidden, 1.0));
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", MatrixXd::Ones(kHidden, 1), true);
    add(p + "post_attention_layernorm.weight", MatrixXd::Ones(kHidden, 1), true);
    add(p + "self_attn.q_proj.weight", float_matrix(rng, kHeads * kHeadDim, kHidden, 0.3));
    add(p + "self_attn.k_proj.weight", float_matrix(rng, kKv * kHeadDim, kHidden, 0.3));
    add(p + "self_attn.v_proj.weight", float_matrix(rng, kKv * kHeadDim, kHidden, 0.3));
    add(p + "self_attn.o_proj.weight", float_matrix(rng, kHidden, kHeads * kHeadDim, 0.3));
    add(p + "mlp.gate_proj.weight", float_matrix(rng, kInter, kHidden, 0.5));
    add(p + "mlp.up_proj.weight", float_matrix(rng, kInter, kHidden, 0.5));
    add(p + "mlp.down_proj.weight", float_matrix(rng, kHidden, kInter, 0.3 * (1 + 2 * l)));
  }
  add("model.norm.weight", MatrixXd::Ones(kHidden, 1), true);
  add("lm_head.weight", float_matrix(rng, kVocab, kHidden, 1.0));
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}},
                        {"model_type", "llama"},
                        {"hidden_size", kHidden},
                        {"intermediate_size", kInter},
                        {"num_hidden_layers", kLayers},
                        {"num_attention_heads", kHeads},
                        {"num_key_value_heads", kKv},
                        {"vocab_size", kVocab},
                        {"tie_word_embeddings", false}};
  test::spit(t.ckpt_dir / "config.json", cfg.dump(2));
  writer.write(t.ckpt_dir / "model.safetensors");
  const Checkpoint ckpt = Checkpoint::open(t.ckpt_dir);
  CalibrationStatsWriter stats(checkpoint_config_hash(ckpt), kLayers, kTokens);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int l = 0; l < kLayers; ++l) {
    MatrixXd x(kHidden, kTokens);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng);
    t.x.push_back(x);
    t.a.push_back(silu(t.w[mlp_name(l, "gate_proj.weight")] * x)
                      .cwiseProduct(t.w[mlp_name(l, "up_proj.weight")] * x));
    const ActivationStats s = statistics_of(t.a.back());
    stats.add(StatsKind::kMlp, l, s.gram, s.mean);
  }
  t.stats_path = t.root / "stats.safetensors";
  stats.write(t.stats_path);
  return t;
}

// Diagonal costs computed from the activations: removing neuron i alone costs
// ||W[:, i]||^2 sum_t (a_it - mu_i)^2 (centred, as Llama with compensation), and removing all of
// them ||W (A - mu 1^T)||_F^2.
LayerUnitCosts direct_costs(const Tiny& t, int l) {
  MatrixXd c = t.a[static_cast<std::size_t>(l)];
  c.colwise() -= c.rowwise().mean();
  const MatrixXd& w = t.w.at(mlp_name(l, "down_proj.weight"));
  LayerUnitCosts out;
  out.unit_cost = w.colwise().squaredNorm().transpose().cwiseProduct(c.rowwise().squaredNorm());
  out.total_cost = (w * c).squaredNorm();
  return out;
}

// The allocation rule written independently: all units of all layers in increasing order of
// (scaled) cost; take each unless its layer is at its cap, until the budget is met.
std::vector<int> sorted_order_keep(const std::vector<LayerUnitCosts>& layers, double sparsity,
                                   bool relative, double max_layer_sparsity) {
  std::vector<std::tuple<double, int>> all;
  int total = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const double s = relative ? 1.0 / layers[l].total_cost : 1.0;
    for (Eigen::Index i = 0; i < layers[l].unit_cost.size(); ++i)
      all.emplace_back(s * layers[l].unit_cost[i], static_cast<int>(l));
    total += static_cast<int>(layers[l].unit_cost.size());
  }
  std::sort(all.begin(), all.end());
  int budget = static_cast<int>(std::lround(sparsity * total));
  std::vector<int> keep;
  std::vector<int> cap;
  for (const LayerUnitCosts& c : layers) {
    const auto n = static_cast<int>(c.unit_cost.size());
    keep.push_back(n);
    cap.push_back(std::max(1, static_cast<int>(std::ceil((1.0 - max_layer_sparsity) * n - 1e-9))));
  }
  for (const auto& [cost, l] : all) {
    if (budget == 0) break;
    if (keep[static_cast<std::size_t>(l)] == cap[static_cast<std::size_t>(l)]) continue;
    --keep[static_cast<std::size_t>(l)];
    --budget;
  }
  return keep;
}

MaskRunOptions global_options(CostScale scale) {
  MaskRunOptions o;
  o.sparsity = 0.4;
  o.allocation = MaskAllocation::kGlobal;
  o.cost_scale = scale;
  o.solver = "sa";
  o.solve.seed = 5;
  o.solve.num_reads = 4;
  o.settings.anneal.num_sweeps = 200;
  return o;
}

}  // namespace

TEST_CASE("allocate_global on cost vectors: the cheapest units go first, budget met") {
  std::mt19937_64 rng(91);
  std::vector<LayerUnitCosts> layers;
  for (int l = 0; l < 4; ++l) {
    LayerUnitCosts c;
    c.unit_cost = VectorXd(10 + 3 * l);
    std::uniform_real_distribution<double> u(0.0, 1.0 + l);
    for (Eigen::Index i = 0; i < c.unit_cost.size(); ++i) c.unit_cost[i] = u(rng);
    c.total_cost = 2.0 * c.unit_cost.sum() * (1 + l);
    layers.push_back(c);
  }
  for (bool relative : {false, true})
    for (double cap : {1.0, 0.5})
      for (double sparsity : {0.1, 0.4, 0.45}) {
        CAPTURE(relative);
        CAPTURE(cap);
        CAPTURE(sparsity);
        GlobalAllocationOptions o;
        o.sparsity = sparsity;
        o.scale = relative ? CostScale::kRelativeToLayerOutput : CostScale::kAbsolute;
        o.max_layer_sparsity = cap;
        const GlobalAllocation a = allocate_global_costs(layers, o);
        CHECK(a.keep == sorted_order_keep(layers, sparsity, relative, cap));
        CHECK(a.total_keep == 58 - static_cast<int>(std::lround(sparsity * 58)));
        CHECK(std::accumulate(a.keep.begin(), a.keep.end(), 0) == a.total_keep);
      }
  LayerUnitCosts bad;
  bad.unit_cost = VectorXd::Ones(5);
  bad.num_groups = 2;
  CHECK_THROWS_AS((void)allocate_global_costs({bad}, GlobalAllocationOptions{}), InvalidArgument);
}

TEST_CASE("mask --allocation global: keep counts from the layers' costs, padded apply") {
  Tiny t = make_tiny("global", 17);
  const Checkpoint ckpt = Checkpoint::open(t.ckpt_dir);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(t.stats_path);
  std::vector<LayerUnitCosts> costs;
  for (int l = 0; l < kLayers; ++l) costs.push_back(direct_costs(t, l));

  for (CostScale scale : {CostScale::kRelativeToLayerOutput, CostScale::kAbsolute}) {
    const bool relative = scale == CostScale::kRelativeToLayerOutput;
    CAPTURE(relative);
    const MaskRunOptions o = global_options(scale);
    const Masks masks = compute_masks(ckpt, &stats, o);
    CHECK(masks.run.allocation == MaskAllocation::kGlobal);
    const std::vector<int> want = sorted_order_keep(costs, 0.4, relative, o.max_layer_sparsity);
    REQUIRE(masks.entries.size() == static_cast<std::size_t>(kLayers));
    int kept_total = 0;
    for (const LayerMask& e : masks.entries) {
      CHECK(e.feasible);
      CHECK(e.keep == want[static_cast<std::size_t>(e.layer)]);
      CHECK(static_cast<int>(e.kept.size()) == e.keep);
      kept_total += e.keep;
    }
    CHECK(kept_total == kLayers * kInter - static_cast<int>(std::lround(0.4 * kLayers * kInter)));
    // The file records the allocation and each layer's count.
    write_masks(masks, t.root / "masks.json");
    const Masks back = read_masks(t.root / "masks.json");
    CHECK(back.run.allocation == MaskAllocation::kGlobal);
    CHECK(back.run.cost_scale == (relative ? "relative" : "absolute"));
    CHECK(back.run.max_layer_sparsity == o.max_layer_sparsity);
    for (std::size_t i = 0; i < back.entries.size(); ++i)
      CHECK(back.entries[i].keep == masks.entries[i].keep);
    if (relative) continue;

    // Absolute costs with down_proj scaled by 1 + 2l: the layers get different widths.
    int widest = 0, narrowest = kInter;
    for (const LayerMask& e : masks.entries) {
      widest = std::max(widest, e.keep);
      narrowest = std::min(narrowest, e.keep);
    }
    REQUIRE(widest > narrowest);
    const fs::path out = t.root / "padded";
    const ApplyReport rep = apply_masks(ckpt, masks, &stats, out);
    CHECK(rep.padded);
    const Checkpoint pruned = Checkpoint::open(out);
    CHECK(pruned.config().intermediate_size == widest);
    CHECK(nlohmann::json::parse(test::slurp(out / "config.json"))["intermediate_size"] == widest);
    std::int64_t stored = 0, effective = 0;
    for (const std::string& n : pruned.tensor_names()) {
      std::int64_t size = 1;
      for (std::int64_t d : pruned.info(n).shape) size *= d;
      stored += size;
      if (n.find(".mlp.") == std::string::npos) effective += size;
    }
    for (const LayerMask& e : masks.entries)  // gate, up, down + gate/up biases, down bias
      effective += static_cast<std::int64_t>(e.keep) * (3 * kHidden + 2) + kHidden;
    CHECK(rep.stored_parameters == stored);
    CHECK(rep.effective_parameters() == effective);
    for (int l = 0; l < kLayers; ++l) {
      const LayerMask& e = *masks.find(l, true);
      const auto k = static_cast<Eigen::Index>(e.keep);
      const MatrixXd gate = pruned.read_matrix(mlp_name(l, "gate_proj.weight"));
      const MatrixXd up = pruned.read_matrix(mlp_name(l, "up_proj.weight"));
      const MatrixXd down = pruned.read_matrix(mlp_name(l, "down_proj.weight"));
      const VectorXd gate_b = pruned.read_vector(mlp_name(l, "gate_proj.bias"));
      const VectorXd up_b = pruned.read_vector(mlp_name(l, "up_proj.bias"));
      const VectorXd down_b = pruned.read_vector(mlp_name(l, "down_proj.bias"));
      CHECK(gate.bottomRows(widest - k).isZero(0.0));
      CHECK(up.bottomRows(widest - k).isZero(0.0));
      CHECK(down.rightCols(widest - k).isZero(0.0));
      CHECK(gate_b.isZero(0.0));
      CHECK(up_b.isZero(0.0));
      // The padded layer's output vs the original with removed neurons zeroed plus the bias
      // W_S mu_S, both computed here.
      const MatrixXd& x = t.x[static_cast<std::size_t>(l)];
      MatrixXd act = silu((gate * x).colwise() + gate_b).cwiseProduct((up * x).colwise() + up_b);
      MatrixXd got = (down * act).colwise() + down_b;
      MatrixXd a = t.a[static_cast<std::size_t>(l)];
      const VectorXd mu = a.rowwise().mean();
      const MatrixXd& wd = t.w.at(mlp_name(l, "down_proj.weight"));
      VectorXd b = VectorXd::Zero(kHidden);
      const Assignment keep = assignment_of(e.kept, kInter);
      for (int i = 0; i < kInter; ++i)
        if (!keep[static_cast<std::size_t>(i)]) {
          a.row(i).setZero();
          b += wd.col(i) * mu[i];
        }
      const MatrixXd want_out = (wd * a).colwise() + b;
      CHECK((got - want_out).cwiseAbs().maxCoeff() <=
            1e-5 * (1.0 + want_out.cwiseAbs().maxCoeff()));
    }

    // Without compensation: the padded model's logits equal those of the original checkpoint with
    // the removed neurons' down_proj columns zeroed (written here with write_checkpoint).
    MaskRunOptions plain = global_options(CostScale::kAbsolute);
    plain.mean_compensation = false;
    const Masks pm = compute_masks(ckpt, &stats, plain);
    const fs::path padded = t.root / "padded_plain";
    const ApplyReport prep = apply_masks(ckpt, pm, nullptr, padded);
    CHECK(prep.padded);
    CheckpointEdits zeroed;
    for (const LayerMask& e : pm.entries) {
      MatrixXd wd = t.w.at(mlp_name(e.layer, "down_proj.weight"));
      const Assignment keep = assignment_of(e.kept, kInter);
      for (int i = 0; i < kInter; ++i)
        if (!keep[static_cast<std::size_t>(i)]) wd.col(i).setZero();
      zeroed.replace[mlp_name(e.layer, "down_proj.weight")] = wd;
    }
    write_checkpoint(ckpt, t.root / "zeroed", zeroed);
    const Checkpoint a_ckpt = Checkpoint::open(padded),
                     b_ckpt = Checkpoint::open(t.root / "zeroed");
    const std::vector<std::int32_t> ids = {1, 5, 9, 2, 14, 7, 3, 3, 0, 11};
    const Eigen::MatrixXf la = Transformer(a_ckpt).logits(ids);
    const Eigen::MatrixXf lb = Transformer(b_ckpt).logits(ids);
    REQUIRE(la.rows() == lb.rows());
    CHECK((la - lb).cwiseAbs().maxCoeff() <= 1e-4f * (1.0f + lb.cwiseAbs().maxCoeff()));
  }
  // Heads cannot be allocated globally (apply would have to pad heads).
  MaskRunOptions heads = global_options(CostScale::kAbsolute);
  heads.heads = true;
  CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, &stats, heads),
                       doctest::Contains("MLP neurons only"), InvalidArgument);
  fs::remove_all(t.root);
}

TEST_CASE("mask resume: an interrupted run finished equals an uninterrupted one") {
  Tiny t = make_tiny("resume", 23);
  const Checkpoint ckpt = Checkpoint::open(t.ckpt_dir);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(t.stats_path);
  for (MaskAllocation allocation : {MaskAllocation::kUniform, MaskAllocation::kGlobal}) {
    CAPTURE(mask_allocation_name(allocation));
    MaskRunOptions o = global_options(CostScale::kAbsolute);
    o.allocation = allocation;
    const Masks full = compute_masks(ckpt, &stats, o);
    CHECK(full.resumed_entries == 0);

    // Interrupt after the first layer: the flag raised from the progress callback, as SIGINT
    // would; the run returns the finished layer only.
    std::atomic<bool> flag{false};
    MaskRunOptions io = o;
    io.solve.interrupt = &flag;
    io.progress = [&](const LayerMask&) { flag = true; };
    const Masks part = compute_masks(ckpt, &stats, io);
    REQUIRE(part.entries.size() == 1);
    write_masks(part, t.root / "part.json");

    MaskRunOptions ro = o;
    const Masks previous = read_masks(t.root / "part.json");
    ro.resume = &previous;
    const Masks resumed = compute_masks(ckpt, &stats, ro);
    CHECK(resumed.resumed_entries == 1);
    test::check_same_entries(resumed, full);

    // An entry left "interrupted" (a solve stopped midway) is solved again, not taken over.
    Masks stale = full;
    stale.entries.resize(2);
    stale.entries[1].status = RunStatus::kInterrupted;
    stale.entries[1].kept = {0};
    ro.resume = &stale;
    const Masks again = compute_masks(ckpt, &stats, ro);
    CHECK(again.resumed_entries == 1);
    test::check_same_entries(again, full);
    // apply refuses interrupted entries.
    Masks whole = full;
    whole.entries[2].status = RunStatus::kInterrupted;
    CHECK_THROWS_WITH_AS((void)apply_masks(ckpt, whole, &stats, t.root / "never"),
                         doctest::Contains("--resume"), InvalidArgument);
  }

  // Different options or checkpoint: refused, naming the field.
  const Masks base = compute_masks(ckpt, &stats, global_options(CostScale::kAbsolute));
  auto refused = [&](MaskRunOptions o, const std::string& field, const CalibrationStatsFile* s) {
    o.resume = &base;
    const std::string want = "(field '" + field + "')";
    CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, s, o), doctest::Contains(want.c_str()),
                         InvalidArgument);
  };
  MaskRunOptions o = global_options(CostScale::kAbsolute);
  o.sparsity = 0.5;
  refused(o, "sparsity", &stats);
  o = global_options(CostScale::kAbsolute);
  o.solver = "greedy";
  refused(o, "solver", &stats);
  o = global_options(CostScale::kAbsolute);
  o.solve.seed = 6;
  refused(o, "seed", &stats);
  o = global_options(CostScale::kAbsolute);
  o.allocation = MaskAllocation::kUniform;
  refused(o, "allocation", &stats);
  o = global_options(CostScale::kAbsolute);
  o.allocation = MaskAllocation::kUniform;
  o.heads = true;
  refused(o, "unit", &stats);
  o = global_options(CostScale::kAbsolute);
  o.max_layer_sparsity = 0.5;
  refused(o, "max_layer_sparsity", &stats);
  refused(global_options(CostScale::kAbsolute), "calibration", nullptr);
  Masks other = base;
  other.checkpoint.tensors_hash = "fnv1a64:0000000000000000";
  MaskRunOptions oo = global_options(CostScale::kAbsolute);
  oo.resume = &other;
  CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, &stats, oo),
                       doctest::Contains("(field 'checkpoint')"), InvalidArgument);
  fs::remove_all(t.root);
}

// ---- --multiple-of (issue 19 point 3) ----------------------------------------------------------

namespace {

// The uniform rounding rule written as a search: among the multiples of m in [m, n], the one
// nearest keep, the larger on a tie; none when m > n.
int nearest_multiple_reference(int keep, int n, int m) {
  int best = -1;
  for (int c = m; c <= n; c += m)
    if (best < 0 || std::abs(c - keep) < std::abs(best - keep) ||
        (std::abs(c - keep) == std::abs(best - keep) && c > best))
      best = c;
  return best;
}

// Cost of removing r units of one layer in the allocation's model: the r smallest costs, scaled.
double smallest_removal(const LayerUnitCosts& c, int r, double scale) {
  std::vector<double> v(c.unit_cost.data(), c.unit_cost.data() + c.unit_cost.size());
  std::sort(v.begin(), v.end());
  double s = 0.0;
  for (int i = 0; i < r; ++i) s += v[static_cast<std::size_t>(i)];
  return scale * s;
}

}  // namespace

TEST_CASE("round_keep_to_multiple: nearest multiple, ties keep more, never 0, never above n") {
  CHECK(round_keep_to_multiple(307, 512, 32) == 320);  // 40 % of 512: 307.2 -> 307 -> 320
  CHECK(round_keep_to_multiple(304, 512, 32) == 320);  // 288 + 16: a tie keeps more
  CHECK(round_keep_to_multiple(303, 512, 32) == 288);
  CHECK(round_keep_to_multiple(6605, 11008, 256) == 6656);
  CHECK(round_keep_to_multiple(0, 512, 32) == 32);     // never 0
  CHECK(round_keep_to_multiple(10, 512, 32) == 32);    // nearest is 0: the smallest multiple
  CHECK(round_keep_to_multiple(500, 500, 32) == 480);  // 512 > n: the largest multiple <= n
  CHECK(round_keep_to_multiple(13, 13, 5) == 10);
  CHECK(round_keep_to_multiple(7, 7, 7) == 7);
  CHECK(round_keep_to_multiple(5, 9, 1) == 5);
  CHECK_THROWS_AS((void)round_keep_to_multiple(5, 12, 0), InvalidArgument);
  CHECK_THROWS_AS((void)round_keep_to_multiple(5, 12, -4), InvalidArgument);
  CHECK_THROWS_AS((void)round_keep_to_multiple(5, 12, 13), InvalidArgument);  // no multiple fits
  CHECK_THROWS_AS((void)round_keep_to_multiple(13, 12, 4), InvalidArgument);
  // Every (keep, n, m) of small sizes against the search.
  for (int n = 1; n <= 40; ++n)
    for (int m = 1; m <= n; ++m)
      for (int keep = 0; keep <= n; ++keep) {
        CAPTURE(n);
        CAPTURE(m);
        CAPTURE(keep);
        const int k = round_keep_to_multiple(keep, n, m);
        CHECK(k == nearest_multiple_reference(keep, n, m));
        CHECK(k % m == 0);
      }
  // keep_count with a multiple: the rounded count; without one, today's count and errors.
  CHECK(keep_count(512, 0.4) == 307);
  CHECK(keep_count(512, 0.4, 1, 32) == 320);
  CHECK(keep_count(512, 0.4, 1, 64) == 320);
  CHECK(keep_count(512, 0.999, 1, 32) == 32);  // keeps 1: rounded up, never 0
  CHECK(keep_count(500, 0.0, 1, 32) == 480);
  CHECK(keep_count(28, 0.5, 4, 8) == 16);  // a multiple of lcm(4 groups, 8) nearest 14
  CHECK_THROWS_AS((void)keep_count(512, 0.4, 1, 0), InvalidArgument);
  CHECK_THROWS_AS((void)keep_count(512, 0.4, 1, 513), InvalidArgument);
}

TEST_CASE("allocate_global with multiple_of: optimal among multiples (brute force)") {
  std::mt19937_64 rng(2024);
  // Three layers; n = 12 (a multiple of 4) and n = 10 (not: 2 units go first, 8 is the most kept).
  for (const std::vector<int>& sizes : {std::vector<int>{12, 12, 12}, std::vector<int>{12, 10, 12}})
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<LayerUnitCosts> layers;
      for (int n : sizes) {
        LayerUnitCosts c;
        c.unit_cost = VectorXd(n);
        std::exponential_distribution<double> e(1.0 / (1.0 + trial));
        for (Eigen::Index i = 0; i < n; ++i) c.unit_cost[i] = e(rng);
        c.total_cost = 3.0 * c.unit_cost.sum() + trial;
        layers.push_back(c);
      }
      const int total = std::accumulate(sizes.begin(), sizes.end(), 0);
      for (int m : {1, 2, 3, 4})
        for (bool relative : {false, true})
          for (double cap : {1.0, 0.5})
            for (double sparsity : {0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9}) {
              CAPTURE(trial);
              CAPTURE(m);
              CAPTURE(relative);
              CAPTURE(cap);
              CAPTURE(sparsity);
              GlobalAllocationOptions o;
              o.sparsity = sparsity;
              o.scale = relative ? CostScale::kRelativeToLayerOutput : CostScale::kAbsolute;
              o.max_layer_sparsity = cap;
              o.multiple_of = m;
              // Reference: every combination of allowed counts per layer (multiples of m, at
              // least m and, where one fits, at least (1 - cap) n).
              std::vector<std::vector<int>> allowed;
              for (int n : sizes) {
                std::vector<int> a;
                const int floor_keep = static_cast<int>(std::ceil((1.0 - cap) * n - 1e-9));
                for (int k = m; k <= n; k += m)
                  if (k >= floor_keep) a.push_back(k);
                if (a.empty()) a.push_back(n / m * m);
                allowed.push_back(a);
              }
              const int budget = static_cast<int>(std::lround(sparsity * total));
              int best_removed = -1;
              double best_cost = 0.0;
              std::vector<int> pick(3);
              for (int k0 : allowed[0])
                for (int k1 : allowed[1])
                  for (int k2 : allowed[2]) {
                    const int keep[3] = {k0, k1, k2};
                    int removed = 0;
                    double cost = 0.0;
                    for (std::size_t l = 0; l < 3; ++l) {
                      const int r = sizes[l] - keep[l];
                      removed += r;
                      cost += smallest_removal(layers[l], r,
                                               relative ? 1.0 / layers[l].total_cost : 1.0);
                    }
                    const int d = std::abs(removed - budget), bd = std::abs(best_removed - budget);
                    if (best_removed < 0 || d < bd || (d == bd && removed < best_removed) ||
                        (removed == best_removed && cost < best_cost)) {
                      best_removed = removed;
                      best_cost = cost;
                    }
                  }
              // m = 1 must meet the budget exactly; a multiple may miss it by half a block.
              const bool reachable =
                  m == 1 ? best_removed == budget : 2 * std::abs(best_removed - budget) <= m;
              if (!reachable) {
                CHECK_THROWS_AS((void)allocate_global_costs(layers, o), InvalidArgument);
                continue;
              }
              const GlobalAllocation a = allocate_global_costs(layers, o);
              CHECK(total - a.total_keep == best_removed);
              CHECK(a.budget == budget);
              CHECK(a.total_units == total);
              CHECK(std::abs(a.removed_cost - best_cost) <= 1e-12 * (1.0 + best_cost));
              double cost = 0.0;
              for (std::size_t l = 0; l < 3; ++l) {
                CHECK(a.keep[l] % m == 0);
                CHECK(a.keep[l] >= m);
                CHECK(a.keep[l] <= sizes[l]);
                cost += smallest_removal(layers[l], sizes[l] - a.keep[l],
                                         relative ? 1.0 / layers[l].total_cost : 1.0);
                // removal_cost is the unscaled model of one layer.
                CHECK(std::abs(removal_cost(layers[l], a.keep[l]) -
                               smallest_removal(layers[l], sizes[l] - a.keep[l], 1.0)) <= 1e-12);
              }
              CHECK(std::abs(cost - a.removed_cost) <= 1e-12 * (1.0 + cost));
              CHECK(a.effective_sparsity() ==
                    doctest::Approx(static_cast<double>(best_removed) / total));
            }
    }
  // Bad multiples: none fits a layer, or not positive.
  std::vector<LayerUnitCosts> two(2);
  for (LayerUnitCosts& c : two) {
    c.unit_cost = VectorXd::Ones(12);
    c.total_cost = 12.0;
  }
  GlobalAllocationOptions o;
  o.multiple_of = 13;
  CHECK_THROWS_AS((void)allocate_global_costs(two, o), InvalidArgument);
  o.multiple_of = 0;
  CHECK_THROWS_AS((void)allocate_global_costs(two, o), InvalidArgument);
}

TEST_CASE("mask --multiple-of: counts are multiples, the rounding's cost from the diagonal") {
  Tiny t = make_tiny("multiple", 29);
  const Checkpoint ckpt = Checkpoint::open(t.ckpt_dir);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(t.stats_path);
  std::vector<LayerUnitCosts> costs;
  costs.reserve(kLayers);
  for (int l = 0; l < kLayers; ++l) costs.push_back(direct_costs(t, l));
  for (bool global : {false, true}) {
    CAPTURE(global);
    MaskRunOptions o = global_options(CostScale::kAbsolute);
    if (!global) o.allocation = MaskAllocation::kUniform;
    o.multiple_of = 4;
    const Masks masks = compute_masks(ckpt, &stats, o);
    REQUIRE(masks.entries.size() == static_cast<std::size_t>(kLayers));
    CHECK(masks.run.multiple_of == 4);
    // The counts at multiple 1: uniform round(0.6 x 12) = 7; global: the independent walk.
    const std::vector<int> unrounded =
        global ? sorted_order_keep(costs, 0.4, false, o.max_layer_sparsity)
               : std::vector<int>(kLayers, 7);
    int removed = 0;
    double total_cost = 0.0;
    for (const LayerMask& e : masks.entries) {
      CAPTURE(e.layer);
      const auto l = static_cast<std::size_t>(e.layer);
      CHECK(e.feasible);
      CHECK(e.keep % 4 == 0);
      CHECK(static_cast<int>(e.kept.size()) == e.keep);
      if (!global) CHECK(e.keep == 8);  // 7 rounded to the nearest multiple of 4
      CHECK(e.unrounded_keep == unrounded[l]);
      // Predicted cost: the smallest costs of the neurons the rounding removes or keeps more of.
      const double want = smallest_removal(costs[l], kInter - e.keep, 1.0) -
                          smallest_removal(costs[l], kInter - e.unrounded_keep, 1.0);
      CHECK(e.rounding_cost == doctest::Approx(want).epsilon(1e-9).scale(costs[l].total_cost));
      removed += kInter - e.keep;
      total_cost += e.rounding_cost;
    }
    // 40 % of 36 = 14 neurons asked; uniform keeps 3 x 8 (12 removed); global the reachable
    // total nearest 14 in blocks of 4 (12 or 16: 12, a tie keeps more).
    CHECK(removed == 12);
    CHECK(masks.run.effective_sparsity == doctest::Approx(12.0 / 36.0));
    CHECK(masks.run.rounding_cost == doctest::Approx(total_cost));
    // The file keeps the record and the entries' fields; resume refuses another multiple.
    write_masks(masks, t.root / "multiple.json");
    const Masks back = read_masks(t.root / "multiple.json");
    CHECK(back.run.multiple_of == 4);
    CHECK(back.run.effective_sparsity == masks.run.effective_sparsity);
    CHECK(back.run.rounding_cost == doctest::Approx(masks.run.rounding_cost));
    for (std::size_t i = 0; i < back.entries.size(); ++i) {
      CHECK(back.entries[i].unrounded_keep == masks.entries[i].unrounded_keep);
      CHECK(back.entries[i].rounding_cost == doctest::Approx(masks.entries[i].rounding_cost));
    }
    MaskRunOptions other = o;
    other.multiple_of = 2;
    other.resume = &back;
    CHECK_THROWS_WITH_AS((void)compute_masks(ckpt, &stats, other), doctest::Contains("multiple_of"),
                         InvalidArgument);
    // A multiple above the layer's 12 neurons is refused before any solve.
    MaskRunOptions big = o;
    big.multiple_of = 13;
    CHECK_THROWS_AS((void)compute_masks(ckpt, &stats, big), InvalidArgument);
  }
}
