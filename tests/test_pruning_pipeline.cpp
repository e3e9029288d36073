// The pruning pipeline on small Llama (MHA and GQA) and Qwen2 checkpoints built here with an
// independent raw safetensors writer (F32 and BF16, one file and sharded), with known activations:
// random inputs X per layer, MLP activations and attention outputs computed here from the layer's
// weights, statistics from them. Checks: QUBO energy == measured reconstruction error; apply gives
// the same layer outputs as zeroing the pruned units in the original (plus the compensation bias);
// refit never increases the error and matches a direct least-squares solve; config, index, copied
// files, untouched input; export/import round trips and the repair rule; bad inputs.
#include <doctest/doctest.h>

#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/masks.hpp"
#include "qprune/prune_pipeline.hpp"
#include "qprune/pruning_refit.hpp"
#include "tests/test_files.hpp"
#include "tests/tiny_checkpoints.hpp"

using namespace qprune;
namespace fs = std::filesystem;
using Json = nlohmann::json;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

using test::hash_folder;
using test::make_checkpoint;
using test::Model;
using test::slurp;
using test::spit;
using test::temp_dir;

MatrixXd take_rows_helper(const MatrixXd& a, const std::vector<int>& rows) {
  MatrixXd out(static_cast<Eigen::Index>(rows.size()), a.cols());
  for (std::size_t i = 0; i < rows.size(); ++i)
    out.row(static_cast<Eigen::Index>(i)) = a.row(rows[i]);
  return out;
}

MatrixXd silu(const MatrixXd& z) { return z.array() / (1.0 + (-z.array()).exp()); }

// MLP activations (down_proj input) for inputs X (hidden x T).
MatrixXd mlp_acts(const std::map<std::string, MatrixXd>& w, int l, const MatrixXd& x) {
  const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
  return silu(w.at(p + "gate_proj.weight") * x).cwiseProduct(w.at(p + "up_proj.weight") * x);
}

// o_proj input of causal attention (no RoPE: it acts per head and position, so it does not change
// which head computes what), GQA: head h reads KV head h / (heads / kv).
MatrixXd attn_z(const std::map<std::string, MatrixXd>& w, int l, const MatrixXd& x, int heads,
                int kv, int hd) {
  const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
  auto proj = [&](const char* n) {
    MatrixXd y = w.at(p + n + std::string("_proj.weight")) * x;
    const auto b = w.find(p + n + std::string("_proj.bias"));
    if (b != w.end()) y.colwise() += b->second.col(0);
    return y;
  };
  const MatrixXd q = proj("q"), k = proj("k"), v = proj("v");
  const int group = heads / kv;
  const auto t_count = x.cols();
  MatrixXd z = MatrixXd::Zero(heads * hd, t_count);
  for (int h = 0; h < heads; ++h) {
    const int g = h / group;
    for (Eigen::Index t = 0; t < t_count; ++t) {
      VectorXd s(t + 1);
      for (Eigen::Index u = 0; u <= t; ++u)
        s[u] =
            q.col(t).segment(h * hd, hd).dot(k.col(u).segment(g * hd, hd)) / std::sqrt(double(hd));
      s = (s.array() - s.maxCoeff()).exp();
      s /= s.sum();
      for (Eigen::Index u = 0; u <= t; ++u)
        z.block(h * hd, t, hd, 1) += s[u] * v.block(g * hd, u, hd, 1);
    }
  }
  return z;
}

std::map<std::string, MatrixXd> read_all(const Checkpoint& c) {
  std::map<std::string, MatrixXd> all;
  for (const std::string& n : c.tensor_names()) all[n] = c.read_matrix(n);
  return all;
}

struct Fixture {
  Model m;
  fs::path root, ckpt_dir, stats_path;
  std::map<std::string, MatrixXd> w;
  std::vector<MatrixXd> x, a, z;  // per layer: inputs, MLP activations, o_proj inputs
};

Fixture make_fixture(const std::string& name, const Model& m, const std::string& dtype,
                     bool sharded, std::uint64_t seed, int tokens = 48) {
  Fixture f{m, temp_dir(name), {}, {}, {}, {}, {}, {}};
  f.ckpt_dir = f.root / "in";
  f.w = make_checkpoint(f.ckpt_dir, m, dtype, sharded, seed);
  const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
  CalibrationStatsWriter writer(checkpoint_config_hash(ckpt), m.layers, tokens);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int l = 0; l < m.layers; ++l) {
    MatrixXd x(m.hidden, tokens);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng);
    f.x.push_back(x);
    f.a.push_back(mlp_acts(f.w, l, x));
    f.z.push_back(attn_z(f.w, l, x, m.heads, m.kv, m.hd));
    const ActivationStats sa = statistics_of(f.a.back()), sz = statistics_of(f.z.back());
    writer.add(StatsKind::kMlp, l, sa.gram, sa.mean);
    writer.add(StatsKind::kAttn, l, sz.gram, sz.mean);
  }
  f.stats_path = f.root / "stats.safetensors";
  writer.write(f.stats_path);
  return f;
}

// ||W diag(1-keep) A||^2 or, centred, ||W_S (A_S - mu_S)||^2, computed directly.
double direct_error(const MatrixXd& w, const MatrixXd& acts, const Assignment& keep, bool centred) {
  MatrixXd removed = acts;
  if (centred) removed.colwise() -= acts.rowwise().mean();
  for (Eigen::Index c = 0; c < acts.rows(); ++c)
    if (keep[static_cast<std::size_t>(c)]) removed.row(c).setZero();
  return (w * removed).squaredNorm();
}

Assignment random_mask(std::mt19937_64& rng, int n, int k) {
  std::vector<int> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), rng);
  Assignment x(static_cast<std::size_t>(n), 0);
  for (int i = 0; i < k; ++i) x[static_cast<std::size_t>(idx[static_cast<std::size_t>(i)])] = 1;
  return x;
}

MaskRunOptions sa_options(bool mlp, bool heads, double sparsity) {
  MaskRunOptions o;
  o.mlp = mlp;
  o.heads = heads;
  o.sparsity = sparsity;
  o.solver = "sa";
  o.solve.seed = 7;
  o.solve.num_reads = 4;
  o.settings.anneal.num_sweeps = 200;
  return o;
}

const Model kLlamaMha{8, 12, 2, 4, 4, 2, false, "llama"};
const Model kLlamaGqa{8, 10, 2, 4, 2, 3, false, "llama"};
const Model kQwen2{8, 10, 2, 4, 2, 2, true, "qwen2"};

}  // namespace

TEST_CASE("calibration statistics: write, lazy read, validation against the config") {
  Fixture f = make_fixture("stats", kLlamaGqa, "F32", false, 11);
  const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
  const CalibrationStatsFile s = CalibrationStatsFile::open(f.stats_path);
  CHECK(s.num_tokens() == 48);
  CHECK(s.num_layers() == 2);
  CHECK(s.size(StatsKind::kMlp) == 10);
  CHECK(s.size(StatsKind::kAttn) == 12);
  CHECK_NOTHROW(s.check_against(ckpt.config(), checkpoint_config_hash(ckpt)));
  const ActivationStats one = s.read(StatsKind::kMlp, 1);
  CHECK((one.gram - f.a[1] * f.a[1].transpose()).norm() == doctest::Approx(0.0));
  CHECK((one.mean - f.a[1].rowwise().mean()).norm() < 1e-15);

  // Shape mismatch: statistics for intermediate_size 9 against a checkpoint with 10.
  CalibrationStatsWriter bad(checkpoint_config_hash(ckpt), 2, 5);
  for (int l = 0; l < 2; ++l)
    bad.add(StatsKind::kMlp, l, MatrixXd::Identity(9, 9), VectorXd::Zero(9));
  bad.write(f.root / "bad.safetensors");
  const CalibrationStatsFile b = CalibrationStatsFile::open(f.root / "bad.safetensors");
  try {
    b.check_against(ckpt.config(), checkpoint_config_hash(ckpt));
    FAIL("expected a shape error");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()).find("layers.0.mlp.gram") != std::string::npos);
    CHECK(std::string(e.what()).find("[10, 10]") != std::string::npos);
  }
  // Another model's statistics.
  CalibrationStatsWriter other("fnv1a64:0000000000000000", 2, 5);
  for (int l = 0; l < 2; ++l)
    other.add(StatsKind::kMlp, l, MatrixXd::Identity(10, 10), VectorXd::Zero(10));
  other.write(f.root / "other.safetensors");
  CHECK_THROWS_WITH_AS(CalibrationStatsFile::open(f.root / "other.safetensors")
                           .check_against(ckpt.config(), checkpoint_config_hash(ckpt)),
                       doctest::Contains("not for this checkpoint"), InvalidArgument);
  // Only some layers given.
  CalibrationStatsWriter partial(checkpoint_config_hash(ckpt), 2, 5);
  partial.add(StatsKind::kMlp, 0, MatrixXd::Identity(10, 10), VectorXd());
  CHECK_THROWS_AS(partial.write(f.root / "partial.safetensors"), InvalidArgument);
  // NaN inside a tensor: ParseError naming it (written with raw bytes, the writer refuses NaN).
  SafetensorsWriter raw;
  std::vector<std::byte> bytes(8 * 4);
  const double vals[4] = {1.0, 0.0, 0.0, std::nan("")};
  std::memcpy(bytes.data(), vals, 32);
  raw.add_bytes("layers.0.mlp.gram", "F64", {2, 2}, bytes);
  raw.set_metadata("qprune_format", "qprune-calibration");
  raw.set_metadata("version", "1");
  raw.set_metadata("tokens", "3");
  raw.set_metadata("num_layers", "1");
  raw.set_metadata("model", "x");
  raw.write(f.root / "nan.safetensors");
  const CalibrationStatsFile nan_file = CalibrationStatsFile::open(f.root / "nan.safetensors");
  CHECK_THROWS_WITH_AS((void)nan_file.read(StatsKind::kMlp, 0),
                       doctest::Contains("layers.0.mlp.gram"), ParseError);
  // Not a statistics file at all.
  CHECK_THROWS_AS(CalibrationStatsFile::open(f.ckpt_dir / "model.safetensors"), ParseError);
  fs::remove_all(f.root);
}

TEST_CASE("QUBO energy of a mask equals the measured layer error (MLP and heads, centred or not)") {
  for (const Model& m : {kLlamaMha, kLlamaGqa, kQwen2}) {
    Fixture f = make_fixture("energy", m, "BF16", true, 21);
    const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
    const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
    std::mt19937_64 rng(5);
    for (int l = 0; l < m.layers; ++l) {
      for (bool comp : {true, false}) {
        const bool centred = comp && m.family == "llama";  // Qwen2 cannot hold the bias
        LayerProblemSpec spec{l, UnitKind::kMlp, 0.4, comp, DataFreeModel::kMagnitude};
        const LayerProblem p = build_layer_problem(ckpt, &stats, spec);
        CHECK(p.centered == centred);
        const MatrixXd& wd = f.w.at("model.layers." + std::to_string(l) + ".mlp.down_proj.weight");
        for (int trial = 0; trial < 20; ++trial) {
          const Assignment x = random_mask(rng, m.inter, 1 + trial % (m.inter - 1));
          const double want = direct_error(wd, f.a[static_cast<std::size_t>(l)], x, centred);
          CHECK(std::abs(p.model.energy(x) - want) <= 1e-9 * std::max(1.0, want));
        }
        spec.unit = m.kv == m.heads ? UnitKind::kHeads : UnitKind::kKvGroups;
        spec.sparsity = 0.5;
        const LayerProblem h = build_layer_problem(ckpt, &stats, spec);
        const MatrixXd& wo =
            f.w.at("model.layers." + std::to_string(l) + ".self_attn.o_proj.weight");
        for (int trial = 0; trial < 10; ++trial) {
          const Assignment xu = random_mask(rng, h.num_units(), 1 + trial % (h.num_units() - 1));
          const Assignment xc = channel_mask(h, xu);
          const double want = direct_error(wo, f.z[static_cast<std::size_t>(l)], xc, centred);
          CHECK(std::abs(h.model.energy(xu) - want) <= 1e-9 * std::max(1.0, want));
        }
      }
    }
    fs::remove_all(f.root);
  }
}

TEST_CASE("mask + apply: same layer outputs as zeroing the pruned units; config, index, files") {
  struct Case {
    Model m;
    std::string dtype;
    bool sharded;
    bool compensation;
    UnitKind head_shape;
  };
  const Case cases[] = {{kLlamaMha, "F32", false, true, UnitKind::kHeadsPerGroup},
                        {kLlamaGqa, "BF16", true, true, UnitKind::kKvGroups},
                        {kLlamaGqa, "F32", true, false, UnitKind::kHeadsPerGroup},
                        {kQwen2, "BF16", true, true, UnitKind::kHeadsPerGroup},
                        {kQwen2, "F32", false, false, UnitKind::kKvGroups}};
  for (const Case& c : cases) {
    CAPTURE(c.m.family);
    CAPTURE(c.dtype);
    CAPTURE(c.sharded);
    Fixture f = make_fixture("apply", c.m, c.dtype, c.sharded, 31);
    const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
    const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
    const std::uint64_t before = hash_folder(f.ckpt_dir);
    MaskRunOptions o = sa_options(true, true, 0.5);
    o.mean_compensation = c.compensation;
    o.head_shape = c.head_shape;
    const Masks masks = compute_masks(ckpt, &stats, o);
    const bool centred = c.compensation && c.m.family == "llama";
    CHECK(masks.mean_compensation == centred);
    REQUIRE(masks.entries.size() == 4);
    for (const LayerMask& e : masks.entries) {
      CHECK(e.feasible);
      CHECK(e.objective >= 0.0);
      CHECK(int(e.kept.size()) == e.num_units / 2);
    }
    write_masks(masks, f.root / "masks.json");
    const Masks back = read_masks(f.root / "masks.json");
    CHECK(back.entries.size() == masks.entries.size());
    CHECK(back.entries[1].kept == masks.entries[1].kept);

    const fs::path out = f.root / "out";
    const ApplyReport rep = apply_masks(ckpt, back, &stats, out);
    CHECK(hash_folder(f.ckpt_dir) == before);
    const Checkpoint pruned = Checkpoint::open(out);
    CHECK_NOTHROW(pruned.check_expected_tensors());
    const ModelConfig& pc = pruned.config();
    CHECK(pc.intermediate_size == c.m.inter / 2);
    const LayerMask& h0 = *back.find(0, false);
    const int group = c.m.heads / c.m.kv;
    const int kept_heads =
        h0.unit == UnitKind::kKvGroups ? int(h0.kept.size()) * group : int(h0.kept.size());
    CHECK(pc.num_attention_heads == kept_heads);
    CHECK(pc.num_key_value_heads ==
          (h0.unit == UnitKind::kHeadsPerGroup ? c.m.kv : int(h0.kept.size())));
    CHECK(pc.head_dim == c.m.hd);
    const Json cfg = Json::parse(slurp(out / "config.json"));
    CHECK(cfg["head_dim"] == c.m.hd);
    CHECK(cfg["custom_key"] == "kept");
    CHECK(cfg.value("mlp_bias", false) == centred);
    CHECK(slurp(out / "tokenizer.json") == slurp(f.ckpt_dir / "tokenizer.json"));
    CHECK(slurp(out / "extra" / "notes.txt") == slurp(f.ckpt_dir / "extra" / "notes.txt"));
    for (const std::string& n : pruned.tensor_names()) CHECK(pruned.info(n).dtype_text == c.dtype);
    if (c.sharded) {
      const Json index = Json::parse(slurp(out / "model.safetensors.index.json"));
      std::uint64_t total = 0;
      CHECK(index["weight_map"].size() == pruned.tensor_names().size());
      for (const std::string& n : pruned.tensor_names()) {
        total += pruned.info(n).num_bytes();
        // Each tensor (biases added for a layer included) sits in the shard of its layer.
        const std::string like = n.starts_with("model.layers.")
                                     ? n.substr(0, n.find('.', 13)) + ".input_layernorm.weight"
                                     : n;
        CHECK(index["weight_map"][n] == (ckpt.contains(like) ? ckpt.shard_of(like) : "?"));
      }
      CHECK(index["metadata"]["total_size"] == total);
    }

    const auto pw = read_all(pruned);
    // Untouched tensors are bit-identical.
    CHECK(pw.at("model.embed_tokens.weight") == f.w.at("model.embed_tokens.weight"));
    for (int l = 0; l < c.m.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const LayerMask& em = *back.find(l, true);
      const MatrixXd& x = f.x[static_cast<std::size_t>(l)];
      // MLP: original with removed neurons zeroed (+ the bias W_S mu_S when centred) vs pruned.
      MatrixXd a = f.a[static_cast<std::size_t>(l)];
      const VectorXd mu = a.rowwise().mean();
      const Assignment keep = assignment_of(em.kept, em.num_units);
      VectorXd b = VectorXd::Zero(c.m.hidden);
      const MatrixXd& wd = f.w.at(p + "mlp.down_proj.weight");
      for (int i = 0; i < c.m.inter; ++i)
        if (!keep[static_cast<std::size_t>(i)]) {
          a.row(i).setZero();
          if (centred) b += wd.col(i) * mu[i];
        }
      MatrixXd want = wd * a;
      want.colwise() += b;
      MatrixXd got = pw.at(p + "mlp.down_proj.weight") * mlp_acts(pw, l, x);
      if (pw.count(p + "mlp.down_proj.bias"))
        got.colwise() += pw.at(p + "mlp.down_proj.bias").col(0);
      // The bias is rounded to the dtype (BF16: 2^-9 relative); the rest is exact.
      const double tol =
          (c.dtype == "BF16" ? 4e-3 : 1e-6) * std::max(1.0, b.cwiseAbs().maxCoeff()) + 1e-9;
      CHECK((got - want).cwiseAbs().maxCoeff() <= tol);
      // The measured error of the pruned layer is the mask's objective.
      const double err = (wd * f.a[static_cast<std::size_t>(l)] - got).squaredNorm();
      CHECK(std::abs(err - em.objective) <=
            (c.dtype == "BF16" && centred ? 1e-2 : 1e-6) * std::max(1.0, em.objective));
      // Attention: the pruned model's o_proj output vs the original with removed heads' channels
      // zeroed (+ bias), both from a forward pass written here.
      const LayerMask& eh = *back.find(l, false);
      std::vector<int> heads;
      if (eh.unit == UnitKind::kKvGroups) {
        for (int g : eh.kept)
          for (int j = 0; j < group; ++j) heads.push_back(g * group + j);
      } else {
        heads = eh.kept;
      }
      MatrixXd zz = f.z[static_cast<std::size_t>(l)];
      const VectorXd zmu = zz.rowwise().mean();
      const MatrixXd& wo = f.w.at(p + "self_attn.o_proj.weight");
      VectorXd bo = VectorXd::Zero(c.m.hidden);
      for (int hh = 0; hh < c.m.heads; ++hh)
        if (std::find(heads.begin(), heads.end(), hh) == heads.end())
          for (int ch = hh * c.m.hd; ch < (hh + 1) * c.m.hd; ++ch) {
            zz.row(ch).setZero();
            if (centred) bo += wo.col(ch) * zmu[ch];
          }
      MatrixXd want_o = wo * zz;
      want_o.colwise() += bo;
      MatrixXd got_o = pw.at(p + "self_attn.o_proj.weight") *
                       attn_z(pw, l, x, int(pc.num_attention_heads), int(pc.num_key_value_heads),
                              int(pc.head_dim));
      if (pw.count(p + "self_attn.o_proj.bias"))
        got_o.colwise() += pw.at(p + "self_attn.o_proj.bias").col(0);
      const double tol_o =
          (c.dtype == "BF16" ? 4e-3 : 1e-6) * std::max(1.0, bo.cwiseAbs().maxCoeff()) + 1e-9;
      CHECK((got_o - want_o).cwiseAbs().maxCoeff() <= tol_o);
    }
    fs::remove_all(f.root);
  }
}

TEST_CASE("--refit never increases the error and matches a direct least-squares solve") {
  for (bool comp : {true, false}) {
    Fixture f = make_fixture("refit", kLlamaGqa, "F32", false, 41, 96);
    const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
    const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
    MaskRunOptions o = sa_options(true, false, 0.4);
    o.mean_compensation = comp;
    const Masks masks = compute_masks(ckpt, &stats, o);
    ApplyOptions ao;
    ao.refit = true;
    const ApplyReport rep = apply_masks(ckpt, masks, &stats, f.root / "out", ao);
    const auto pw = read_all(Checkpoint::open(f.root / "out"));
    REQUIRE(rep.layers.size() == 2);
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
      const LayerMask& e = *masks.find(l, true);
      const MatrixXd& a = f.a[static_cast<std::size_t>(l)];
      const MatrixXd& wd = f.w.at(p + "down_proj.weight");
      const MatrixXd y = wd * a;
      // Direct least squares: min ||Y - W' A_K - b 1^T|| via QR of [A_K; 1]^T (b only if centred).
      const auto k = static_cast<Eigen::Index>(e.kept.size());
      MatrixXd design(a.cols(), k + (comp ? 1 : 0));
      for (Eigen::Index j = 0; j < k; ++j)
        design.col(j) = a.row(e.kept[static_cast<std::size_t>(j)]).transpose();
      if (comp) design.col(k).setOnes();
      const MatrixXd sol = design.colPivHouseholderQr().solve(y.transpose());  // (k[+1]) x H
      const double ls_error = (y.transpose() - design * sol).squaredNorm();
      MatrixXd got = pw.at(p + "down_proj.weight") * take_rows_helper(a, e.kept);
      if (pw.count(p + "down_proj.bias")) got.colwise() += pw.at(p + "down_proj.bias").col(0);
      const double refit_error = (y - got).squaredNorm();
      const AppliedLayer& al = rep.layers[static_cast<std::size_t>(l)];
      CHECK(al.error_with_refit <= al.error_without_refit * (1 + 1e-12));
      CHECK(al.error_without_refit == doctest::Approx(e.objective).epsilon(1e-9));
      CHECK(al.error_with_refit == doctest::Approx(ls_error).epsilon(1e-6));
      CHECK(refit_error == doctest::Approx(ls_error).epsilon(1e-4));  // F32 rounding of W'
      CHECK(refit_error <= e.objective * (1 + 1e-6));
    }
    fs::remove_all(f.root);
  }
}

// Kept indices (increasing) of the top `k_per_group` scores in each run of `group` consecutive
// units; ties keep the lower index. Written here by plain sorting, independent of keep_top_scores.
std::vector<int> top_per_group(const std::vector<double>& scores, int group, int k_per_group) {
  std::vector<int> kept;
  for (int g0 = 0; g0 < int(scores.size()); g0 += group) {
    std::vector<int> idx(static_cast<std::size_t>(group));
    std::iota(idx.begin(), idx.end(), g0);
    std::sort(idx.begin(), idx.end(), [&](int a, int b) {
      const double sa = scores[std::size_t(a)], sb = scores[std::size_t(b)];
      return sa > sb || (sa == sb && a < b);
    });
    kept.insert(kept.end(), idx.begin(), idx.begin() + k_per_group);
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

TEST_CASE("baseline methods: magnitude and diagonal masks equal top-k references computed here") {
  struct Case {
    Model m;
    UnitKind head_shape;
    bool compensation;
  };
  const Case cases[] = {{kLlamaMha, UnitKind::kHeadsPerGroup, true},
                        {kLlamaGqa, UnitKind::kKvGroups, false},
                        {kQwen2, UnitKind::kHeadsPerGroup, true}};
  for (const Case& c : cases) {
    CAPTURE(c.m.family);
    CAPTURE(c.m.kv);
    Fixture f = make_fixture("baselines", c.m, "F32", false, 61);
    const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
    const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
    MaskRunOptions o = sa_options(true, true, 0.5);
    o.head_shape = c.head_shape;
    o.mean_compensation = c.compensation;
    o.solver = "no-such-solver";  // the baselines must not ask the solver registry
    o.method = MaskMethod::kMagnitude;
    const Masks mag = compute_masks(ckpt, &stats, o);
    o.method = MaskMethod::kDiagonal;
    const Masks diag = compute_masks(ckpt, &stats, o);
    CHECK(mag.solver == "magnitude");
    CHECK(diag.solver == "diagonal");
    const bool centred = c.compensation && c.m.family == "llama";
    REQUIRE(mag.entries.size() == 4);
    REQUIRE(diag.entries.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      const LayerMask& em = mag.entries[i];
      const LayerMask& ed = diag.entries[i];
      CAPTURE(em.layer);
      CAPTURE(unit_kind_name(em.unit));
      const std::size_t l = static_cast<std::size_t>(em.layer);
      const std::string p = "model.layers." + std::to_string(em.layer) + ".";
      const bool mlp = em.unit == UnitKind::kMlp;
      const MatrixXd& w = f.w.at(p + (mlp ? "mlp.down_proj.weight" : "self_attn.o_proj.weight"));
      const MatrixXd& acts = mlp ? f.a[l] : f.z[l];
      // Unit layout: width in channels, units per constraint group, units kept per group.
      int width = 1, group = c.m.inter, keep = c.m.inter / 2;
      if (em.unit == UnitKind::kKvGroups) {
        width = c.m.heads / c.m.kv * c.m.hd, group = c.m.kv, keep = c.m.kv / 2;
      } else if (!mlp) {
        const int per_group = em.unit == UnitKind::kHeadsPerGroup ? c.m.heads / c.m.kv : c.m.heads;
        width = c.m.hd, group = per_group, keep = per_group / 2;
      }
      const int n = int(w.cols()) / width;
      REQUIRE(em.num_units == n);
      std::vector<double> magnitude(static_cast<std::size_t>(n), 0.0), alone(magnitude);
      for (int u = 0; u < n; ++u) {
        Assignment keep_all_but_u(static_cast<std::size_t>(w.cols()), 1);
        for (int ch = u * width; ch < (u + 1) * width; ++ch) {
          for (Eigen::Index r = 0; r < w.rows(); ++r)
            magnitude[std::size_t(u)] += w(r, ch) * w(r, ch);
          keep_all_but_u[static_cast<std::size_t>(ch)] = 0;
        }
        alone[std::size_t(u)] = direct_error(w, acts, keep_all_but_u, centred);
      }
      CHECK(em.kept == top_per_group(magnitude, group, keep));
      CHECK(ed.kept == top_per_group(alone, group, keep));
      CHECK(ed.objective == doctest::Approx(ed.baseline_objective).epsilon(1e-12));
      CHECK(em.feasible);
      CHECK(ed.feasible);
      // Both objectives are the measured layer error of their masks (same problem for both).
      Assignment channels(static_cast<std::size_t>(w.cols()), 0);
      for (int u : em.kept)
        for (int ch = u * width; ch < (u + 1) * width; ++ch) channels[std::size_t(ch)] = 1;
      CHECK(em.objective ==
            doctest::Approx(direct_error(w, acts, channels, centred)).epsilon(1e-6));
    }
    // Data-free: the magnitude problem's (G = I) diagonal score is the magnitude score.
    o.method = MaskMethod::kDiagonal;
    const Masks data_free = compute_masks(ckpt, nullptr, o);
    for (std::size_t i = 0; i < 4; ++i) CHECK(data_free.entries[i].kept == mag.entries[i].kept);
    fs::remove_all(f.root);
  }
}

TEST_CASE("bad inputs give clear errors") {
  Fixture f = make_fixture("bad", kLlamaGqa, "F32", false, 51);
  const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
  // A sparsity that leaves no unit.
  CHECK_THROWS_WITH_AS(compute_masks(ckpt, &stats, sa_options(true, false, 0.96)),
                       doctest::Contains("leaves no unit"), InvalidArgument);
  // Not expressible under GQA: 4 heads in 2 groups, sparsity 0.25 keeps 3 heads.
  MaskRunOptions o = sa_options(false, true, 0.25);
  CHECK_THROWS_WITH_AS(compute_masks(ckpt, &stats, o), doctest::Contains("nearest expressible"),
                       InvalidArgument);
  // `heads` is only for MHA.
  CHECK_THROWS_WITH_AS(
      (void)build_layer_problem(ckpt, &stats,
                                {0, UnitKind::kHeads, 0.5, true, DataFreeModel::kMagnitude}),
      doctest::Contains("--head-shape"), InvalidArgument);
  // Masks for another checkpoint.
  const Masks masks = compute_masks(ckpt, &stats, sa_options(true, false, 0.5));
  // Same architecture, other weights: the sampled tensor content differs.
  Fixture g = make_fixture("bad_other", kLlamaGqa, "F32", false, 52);
  CHECK_THROWS_WITH_AS(apply_masks(Checkpoint::open(g.ckpt_dir), masks, &stats, g.root / "out"),
                       doctest::Contains("masks were computed for checkpoint"), InvalidArgument);
  CHECK_FALSE(fs::exists(g.root / "out"));
  // Another config (same tensors): config hash differs.
  Json cj = Json::parse(slurp(g.ckpt_dir / "config.json"));
  cj["custom_key"] = "another model";
  spit(g.ckpt_dir / "config.json", cj.dump(2));
  const Checkpoint other = Checkpoint::open(g.ckpt_dir);
  CHECK_THROWS_WITH_AS(apply_masks(other, masks, &stats, g.root / "out"),
                       doctest::Contains("masks were computed for checkpoint"), InvalidArgument);
  // Statistics of another checkpoint.
  CHECK_THROWS_WITH_AS(compute_masks(other, &stats, sa_options(true, false, 0.5)),
                       doctest::Contains("not for this checkpoint"), InvalidArgument);
  // Different head widths per layer are written padded to the widest layer: zero query slots
  // with zero o_proj columns, so the layer's output equals the original's with the removed heads
  // zeroed, plus the compensation bias (MLP padding: test_global_allocation.cpp).
  {
    Masks uneven = compute_masks(ckpt, &stats, sa_options(false, true, 0.0));
    uneven.entries[1].kept = {0, 2};
    const ApplyReport padded = apply_masks(ckpt, uneven, &stats, f.root / "o2");
    CHECK(padded.padded);
    CHECK(padded.config.num_attention_heads == f.m.heads);
    CHECK(padded.config.num_key_value_heads == f.m.kv);
    // Two padded heads: q rows + o_proj columns + the q bias the compensation adds.
    CHECK(padded.padding_parameters == 2 * f.m.hd * (2 * f.m.hidden + 1));
    const Checkpoint pc = Checkpoint::open(f.root / "o2");
    const auto pw = read_all(pc);
    const std::string p = "model.layers.1.";
    MatrixXd zz = f.z[1];
    const VectorXd zmu = zz.rowwise().mean();
    const MatrixXd& wo = f.w.at(p + "self_attn.o_proj.weight");
    VectorXd bo = VectorXd::Zero(f.m.hidden);
    for (const int hh : {1, 3})
      for (int ch = hh * f.m.hd; ch < (hh + 1) * f.m.hd; ++ch) {
        zz.row(ch).setZero();
        if (uneven.mean_compensation) bo += wo.col(ch) * zmu[ch];
      }
    MatrixXd want = wo * zz;
    want.colwise() += bo;
    MatrixXd got =
        pw.at(p + "self_attn.o_proj.weight") * attn_z(pw, 1, f.x[1], f.m.heads, f.m.kv, f.m.hd);
    got.colwise() += pw.at(p + "self_attn.o_proj.bias").col(0);
    CHECK((got - want).cwiseAbs().maxCoeff() <= 1e-6 * std::max(1.0, bo.cwiseAbs().maxCoeff()));
  }
  // An infeasible entry.
  Masks infeasible = masks;
  infeasible.entries[0].feasible = false;
  CHECK_THROWS_WITH_AS(apply_masks(ckpt, infeasible, &stats, f.root / "o3"),
                       doctest::Contains("infeasible"), InvalidArgument);
  // Compensation without statistics.
  CHECK_THROWS_WITH_AS(apply_masks(ckpt, masks, nullptr, f.root / "o4"),
                       doctest::Contains("--calib"), InvalidArgument);
  // A masks file that is not one.
  spit(f.root / "not_masks.json", "{\"format\": \"qprune-qubo\"}");
  CHECK_THROWS_AS((void)read_masks(f.root / "not_masks.json"), ParseError);
  fs::remove_all(f.root);
  fs::remove_all(g.root);
}

TEST_CASE("export -> external answer -> import-solution, with and without repair") {
  Fixture f = make_fixture("export", kLlamaGqa, "F32", true, 61);
  const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
  for (const std::string ext : {".json", ".qubo", ".coo", ".lp", ".mps"}) {
    CAPTURE(ext);
    const std::string path = (f.root / ("layer1" + ext)).string();
    const LayerProblemSpec spec{1, UnitKind::kMlp, 0.4, true, DataFreeModel::kMagnitude};
    const ExportedProblemInfo info = export_layer_problem(ckpt, &stats, spec, path);
    CHECK(info.keep == 6);
    CHECK(info.num_units == 10);
    const auto back = read_exported_info(path);
    REQUIRE(back.has_value());
    CHECK(back->layer == 1);
    CHECK(back->unit == UnitKind::kMlp);
    CHECK(back->centered);
    // A feasible answer in the file's variable order (json: labels, others: positions).
    const Assignment known = {1, 0, 1, 1, 0, 1, 0, 1, 1, 0};
    std::string sol;
    for (auto v : known) sol += std::to_string(int(v)) + "\n";
    spit(f.root / "sol.txt", sol);
    const ImportResult r = import_solution(ckpt, &stats, path, (f.root / "sol.txt").string(), {});
    CHECK(r.was_feasible);
    CHECK(r.mask.kept == kept_indices(known));
    const MatrixXd& wd = f.w.at("model.layers.1.mlp.down_proj.weight");
    const double want = direct_error(wd, f.a[1], known, true);
    CHECK(r.mask.objective == doctest::Approx(want).epsilon(1e-9));
    // The file's own energy (penalty is 0 at a feasible answer) is the same error; the LP and
    // MPS files cannot be read back, so they have none (rather than a made-up 0).
    if (ext == ".lp" || ext == ".mps") {
      CHECK_FALSE(r.file_energy.has_value());
    } else {
      REQUIRE(r.file_energy.has_value());
      CHECK(*r.file_energy == doctest::Approx(want).epsilon(1e-9));
    }
    // The metadata's numbers are exact: 0.4, not 0.40000000000000002.
    CHECK(read_file_metadata(path).at("qprune.sparsity") == "0.4");

    // An infeasible answer (8 kept): an error without --repair, repaired with it.
    const Assignment over = {1, 1, 1, 1, 0, 1, 1, 1, 1, 0};
    sol.clear();
    for (auto v : over) sol += std::to_string(int(v)) + "\n";
    spit(f.root / "over.txt", sol);
    CHECK_THROWS_WITH_AS(import_solution(ckpt, &stats, path, (f.root / "over.txt").string(), {}),
                         doctest::Contains("keeps 8 (needs 6)"), InvalidArgument);
    ImportOptions io;
    io.repair = true;
    const ImportResult rr = import_solution(ckpt, &stats, path, (f.root / "over.txt").string(), io);
    CHECK_FALSE(rr.was_feasible);
    CHECK(rr.mask.feasible);
    CHECK(rr.mask.kept.size() == 6);
    CHECK(rr.repair.removed.size() == 2);
    CHECK(rr.repair.added.empty());
    // The rule, checked independently: each step drops the kept unit whose removal gives the
    // smallest measured error.
    Assignment x = over;
    for (int step = 0; step < 2; ++step) {
      int best = -1;
      double best_err = 1e300;
      for (int i = 0; i < 10; ++i) {
        if (!x[static_cast<std::size_t>(i)]) continue;
        Assignment y = x;
        y[static_cast<std::size_t>(i)] = 0;
        const double e = direct_error(wd, f.a[1], y, true);
        if (e < best_err - 1e-12 * std::max(1.0, e)) {
          best_err = e;
          best = i;
        }
      }
      CHECK(rr.repair.removed[static_cast<std::size_t>(step)] == best);
      x[static_cast<std::size_t>(best)] = 0;
    }
    CHECK(rr.mask.kept == kept_indices(x));
  }
  {
    // Without metadata nothing is assumed: layer, unit and sparsity must all be given.
    std::ifstream in(f.root / "layer1.qubo");
    std::string line, bare;
    while (std::getline(in, line))
      if (line.find("qprune.") == std::string::npos) bare += line + "\n";
    spit(f.root / "bare.qubo", bare);
    const std::string bare_path = (f.root / "bare.qubo").string();
    CHECK_FALSE(read_exported_info(bare_path).has_value());
    ImportOptions partial;
    partial.layer = 1;
    partial.unit = UnitKind::kMlp;
    CHECK_THROWS_WITH_AS(
        import_solution(ckpt, &stats, bare_path, (f.root / "sol.txt").string(), partial),
        doctest::Contains("give --layer, --unit and --sparsity"), InvalidArgument);
    partial.sparsity = 0.4;
    const ImportResult r =
        import_solution(ckpt, &stats, bare_path, (f.root / "sol.txt").string(), partial);
    CHECK(r.mask.kept == kept_indices(Assignment{1, 0, 1, 1, 0, 1, 0, 1, 1, 0}));
  }
  // Too few kept: repair adds the units that lower the error most.
  Assignment under(10, 0);
  under[0] = under[3] = 1;
  const LayerProblem p =
      build_layer_problem(ckpt, &stats, {0, UnitKind::kMlp, 0.4, true, DataFreeModel::kMagnitude});
  const RepairResult rep = repair_assignment(p.model, under);
  CHECK(rep.added.size() == 4);
  CHECK(p.model.is_feasible(rep.x));
  fs::remove_all(f.root);
}

TEST_CASE("apply --refit refuses degenerate statistics and too few tokens, warns below 4x") {
  // kLlamaGqa: 10 MLP neurons; sparsity 0.5 keeps 5 channels per layer.
  Fixture f = make_fixture("refit_degenerate", kLlamaGqa, "F32", false, 61, 48);
  const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
  MaskRunOptions o = sa_options(true, false, 0.5);
  const Masks masks = compute_masks(ckpt, &stats, o);
  ApplyOptions ao;
  ao.refit = true;
  // 48 tokens for 5 kept channels: >= 4x, no warning.
  CHECK(apply_masks(ckpt, masks, &stats, f.root / "ok", ao).warnings.empty());
  const auto write_stats = [&](const std::string& name, std::int64_t tokens, bool zero) {
    CalibrationStatsWriter w(checkpoint_config_hash(ckpt), f.m.layers, tokens);
    for (int l = 0; l < f.m.layers; ++l) {
      const ActivationStats sa = statistics_of(f.a[static_cast<std::size_t>(l)]);
      const ActivationStats sz = statistics_of(f.z[static_cast<std::size_t>(l)]);
      w.add(StatsKind::kMlp, l, zero ? MatrixXd(MatrixXd::Zero(f.m.inter, f.m.inter)) : sa.gram,
            zero ? VectorXd(VectorXd::Zero(f.m.inter)) : sa.mean);
      w.add(StatsKind::kAttn, l, sz.gram, sz.mean);
    }
    w.write(f.root / name);
    return CalibrationStatsFile::open(f.root / name);
  };
  // All-zero Grams: the refit would zero down_proj and report error 0 -> 0.
  const CalibrationStatsFile zero = write_stats("zero.safetensors", 48, true);
  CHECK_THROWS_WITH_AS(apply_masks(ckpt, masks, &zero, f.root / "z", ao),
                       doctest::Contains("zero.safetensors: layer 0 mlp statistics"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(apply_masks(ckpt, masks, &zero, f.root / "z2", ao),
                       doctest::Contains("all zeros"), InvalidArgument);
  // Without --refit the same file is no error for the refit rule (compensation only).
  CHECK_NOTHROW((void)apply_masks(ckpt, masks, &zero, f.root / "z3", ApplyOptions{}));
  // Fewer tokens than kept channels: refused with the numbers, before anything is written.
  const CalibrationStatsFile few = write_stats("few.safetensors", 4, false);
  CHECK_THROWS_WITH_AS(apply_masks(ckpt, masks, &few, f.root / "f", ao),
                       doctest::Contains("4 calibration tokens for 5 kept channels of layer"),
                       InvalidArgument);
  CHECK_FALSE(fs::exists(f.root / "f"));
  // Between 1x and 4x: applied, with a warning naming the numbers.
  const CalibrationStatsFile some = write_stats("some.safetensors", 12, false);
  const ApplyReport rep = apply_masks(ckpt, masks, &some, f.root / "s", ao);
  REQUIRE(rep.warnings.size() == 1);
  CHECK(rep.warnings[0].find("only 12 calibration tokens for 5 kept channels") !=
        std::string::npos);
  CHECK(rep.warnings[0].find("4x") != std::string::npos);
  fs::remove_all(f.root);
}

TEST_CASE("the refit token rule: refuse below 1x unless regularised, warn below 4x") {
  CHECK_THROWS_WITH_AS(
      (void)check_refit_tokens(9, 10, "layer 3 mlp", false, "use --ridge"),
      doctest::Contains("9 calibration tokens for 10 kept channels of layer 3 mlp"),
      InvalidArgument);
  CHECK(check_refit_tokens(9, 10, "layer 3 mlp", true, "").find("only 9 calibration tokens") == 0);
  CHECK(check_refit_tokens(39, 10, "x", false, "").find("only 39") == 0);
  CHECK(check_refit_tokens(40, 10, "x", false, "").empty());
  ActivationStats s;
  s.gram = MatrixXd::Zero(3, 3);
  s.num_tokens = 10;
  CHECK_THROWS_WITH_AS(check_refit_statistics(s, "f: layer 2"), doctest::Contains("all zeros"),
                       InvalidArgument);
  s.gram = MatrixXd::Identity(3, 3);
  CHECK_NOTHROW(check_refit_statistics(s, "f"));
  s.num_tokens = 0;
  CHECK_THROWS_WITH_AS(check_refit_statistics(s, "f"), doctest::Contains("0 calibration tokens"),
                       InvalidArgument);
}

TEST_CASE("masks files: every field is validated, errors name the file and the field") {
  Fixture f = make_fixture("masks_fields", kLlamaGqa, "F32", false, 71);
  const Checkpoint ckpt = Checkpoint::open(f.ckpt_dir);
  const CalibrationStatsFile stats = CalibrationStatsFile::open(f.stats_path);
  const Masks masks = compute_masks(ckpt, &stats, sa_options(true, false, 0.5));
  write_masks(masks, f.root / "m.json");
  const Json good = Json::parse(slurp(f.root / "m.json"));
  CHECK_NOTHROW((void)read_masks(f.root / "m.json"));
  // Each status a mask may carry is written as its text and read back as the same value.
  for (RunStatus status : {RunStatus::kOptimal, RunStatus::kCompleted, RunStatus::kTimeLimit,
                           RunStatus::kTargetReached, RunStatus::kInterrupted, RunStatus::kImported,
                           RunStatus::kImportedRepaired}) {
    CAPTURE(to_string(status));
    Masks edited = masks;
    edited.entries[1].status = status;
    write_masks(edited, f.root / "s.json");
    CHECK(Json::parse(slurp(f.root / "s.json"))["entries"][1]["status"] ==
          std::string(to_string(status)));
    const Masks back = read_masks(f.root / "s.json");
    CHECK(back.entries[1].status == status);
    CHECK(back.entries[1].complete() == (status != RunStatus::kInterrupted));
  }
  const auto error_of = [&](const std::function<void(Json&)>& edit) -> std::string {
    Json j = good;
    edit(j);
    spit(f.root / "bad.json", j.dump(2));
    try {
      (void)read_masks(f.root / "bad.json");
    } catch (const ParseError& e) {
      return e.what();
    }
    return "";
  };
  const auto has = [](const std::string& text, const std::string& part) {
    INFO(text);
    return text.find(part) != std::string::npos && text.find("bad.json") != std::string::npos;
  };
  CHECK(has(error_of([](Json& j) { j["entries"][0]["status"] = "banana"; }),
            "\"entries[0].status\" to be one of optimal, completed"));
  CHECK(has(error_of([](Json& j) { j["entries"][1]["status"] = 3; }), "\"entries[1].status\""));
  // Run statuses that describe no mask are refused like unknown text.
  for (const char* status : {"not_run", "skipped", "error"}) {
    CAPTURE(status);
    CHECK(has(error_of([&](Json& j) { j["entries"][1]["status"] = status; }),
              "expected \"entries[1].status\" to be one of optimal, completed, time_limit, "
              "target_reached, interrupted, imported, imported_repaired, found \"" +
                  std::string(status) + "\""));
  }
  CHECK(has(error_of([](Json& j) { j["entries"][0]["kept"] = {5, 3, 1, 0, 2, 4}; }),
            "\"entries[0].kept\" to hold increasing unit indices"));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["kept"] = {0, 1, 1, 2, 3, 4}; }),
            "\"entries[0].kept\" to hold increasing"));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["kept"] = {0, 1, 2, 3, 10}; }), "in [0, 10)"));
  CHECK(has(error_of([](Json& j) {
              j["entries"][0]["kept"] = {0, 1, 2};
            }),
            "\"entries[0].kept\" to hold 5 units (entries[0].keep, feasible), found 3"));
  CHECK(
      has(error_of([](Json& j) { j["entries"][0]["kept"] = Json::array(); }), "at least one unit"));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["keep"] = 13; }),
            "\"entries[0].keep\" in [0, 10]"));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["keep"] = -1; }), "\"entries[0].keep\""));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["unit"] = "neurons"; }), "\"entries[0].unit\""));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["feasible"] = "yes"; }),
            "\"entries[0].feasible\" to be true or false"));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["time_s"] = -1.0; }), "\"entries[0].time_s\""));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["objective"] = "x"; }),
            "\"entries[0].objective\" to be a finite number"));
  CHECK(has(error_of([](Json& j) { j["entries"][0]["seed"] = -1; }), "\"entries[0].seed\""));
  CHECK(has(error_of([](Json& j) { j["entries"][0].erase("layer"); }),
            "expected field \"entries[0].layer\", found none"));
  CHECK(has(error_of([](Json& j) { j["sparsity"] = 1.5; }), "\"sparsity\" in [0, 1)"));
  CHECK(has(error_of([](Json& j) { j["allocation"] = "random"; }), "\"allocation\""));
  CHECK(has(error_of([](Json& j) { j["solver"] = 1; }), "\"solver\" to be a string"));
  CHECK(has(error_of([](Json& j) { j["entries"][1] = j["entries"][0]; }),
            "one entry per layer and unit kind"));
  // A feasible=false entry may keep another count than asked (penalty mode), and old files
  // without status/keep/seed still read.
  CHECK(error_of([](Json& j) {
          j["entries"][0]["feasible"] = false;
          j["entries"][0]["kept"] = {0, 1, 2};
        }).empty());
  CHECK(error_of([](Json& j) {
          for (Json& e : j["entries"]) {
            e.erase("status");
            e.erase("keep");
            e.erase("seed");
          }
        }).empty());
  fs::remove_all(f.root);
}

TEST_CASE("applied_head_sparsity: heads go in whole steps, the applied value is reported") {
  const Fixture f = make_fixture("head_steps", kLlamaGqa, "F32", false, 81);
  const ModelConfig cfg = Checkpoint::open(f.ckpt_dir).config();  // 4 heads in 2 KV groups
  AppliedHeadSparsity a = applied_head_sparsity(cfg, UnitKind::kKvGroups, 0.3);
  CHECK(a.unit == UnitKind::kKvGroups);
  CHECK(a.units == 2);
  CHECK(a.kept == 1);
  CHECK(a.applied == doctest::Approx(0.5));
  a = applied_head_sparsity(cfg, UnitKind::kHeadsPerGroup, 0.5);
  CHECK(a.kept == 2);
  CHECK(a.applied == doctest::Approx(0.5));
  fs::remove_all(f.root);
}

TEST_CASE("a shard truncated during compute_masks: IoError, and the finished layers are returned") {
  const fs::path root = temp_dir("pp_truncated");
  const Model m{8, 10, 4, 2, 2, 4, false, "llama"};
  // Sharded: layers 0 and 2 in the first shard, 1 and 3 (and the final norm, lm_head) in the
  // second.
  (void)make_checkpoint(root / "ckpt", m, "F32", true, 5);
  const fs::path second = root / "ckpt" / "model-00002-of-00002.safetensors";
  const Checkpoint ckpt = Checkpoint::open(root / "ckpt");
  const std::uint64_t header_end = 8 + ckpt.file_of("lm_head.weight").header_bytes();
  MaskRunOptions o;
  o.method = MaskMethod::kMagnitude;
  o.sparsity = 0.5;
  // After layer 0 is reported, the second shard loses all its tensor bytes.
  o.progress = [&](const LayerMask& e) {
    if (e.layer == 0) fs::resize_file(second, header_end);
  };
  SUBCASE("layer_error set: the error is stored, layer 0 returned, no layer after the failure") {
    std::exception_ptr error;
    o.layer_error = &error;
    const Masks masks = compute_masks(ckpt, nullptr, o);
    REQUIRE(error);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(error),
                         doctest::Contains((second.string() + ": cannot read tensor "
                                                              "'model.layers.1.")
                                               .c_str()),
                         IoError);
    REQUIRE(masks.entries.size() == 1);
    CHECK(masks.entries[0].layer == 0);
    CHECK(masks.entries[0].complete());
    CHECK(masks.entries[0].kept.size() == 5);
  }
  SUBCASE("layer_error not set: the IoError ends compute_masks") {
    CHECK_THROWS_AS((void)compute_masks(ckpt, nullptr, o), IoError);
  }
  fs::remove_all(root);
}
