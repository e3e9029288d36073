// Directional ablation (include/qprune/directional_ablation.hpp) on a random F32 checkpoint:
// after the edit no residual-stream writer has a component along r, so the residual stream's
// projection on r is zero (to 1e-6 of its norm) after every attention and every MLP of every
// layer, for inputs that were not used to find r; the direction is the normalised difference of
// the two texts' mean streams measured with an independent hook; shapes and other tensors stay.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <random>

#include "qprune/checkpoint.hpp"
#include "qprune/directional_ablation.hpp"
#include "qprune/error.hpp"
#include "qprune/transformer.hpp"
#include "tests/test_files.hpp"
#include "tests/tiny_checkpoints.hpp"

using namespace qprune;

namespace {

std::vector<std::int32_t> random_ids(std::mt19937_64& rng, int n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  for (auto& t : ids) t = d(rng);
  return ids;
}

}  // namespace

TEST_CASE("directional ablation: the residual stream has no component along r afterwards") {
  for (const std::string family : {"llama", "qwen2"}) {
    CAPTURE(family);
    const std::filesystem::path dir = test::temp_dir("ablation_" + family);
    const test::Model m{16, 24, 3, 4, 2, 4, family == "qwen2", family};
    (void)test::make_checkpoint(dir / "in", m, "F32", false, 11);
    const Checkpoint ckpt = Checkpoint::open(dir / "in");
    const Transformer model(ckpt);
    std::mt19937_64 rng(3);
    const auto a = random_ids(rng, 90, 0, 7);
    const auto b = random_ids(rng, 110, 8, 15);
    AblationOptions o;
    o.layer = 1;
    o.context = 20;
    const AblationDirection d = difference_of_means_direction(model, a, b, o);
    CHECK(d.direction.norm() == doctest::Approx(1.0));
    // Independent mean: one sequence per window, summed by our own hook.
    Eigen::VectorXd sum_a = Eigen::VectorXd::Zero(16);
    ForwardHooks h;
    h.stream = [&](int layer, int, bool after_mlp, const Eigen::MatrixXf& x) {
      if (layer == 1 && after_mlp) sum_a += x.cast<double>().rowwise().sum();
    };
    for (std::size_t s = 0; s < a.size(); s += 20)
      model.run_layers({std::vector<std::int32_t>(
                           a.begin() + static_cast<std::ptrdiff_t>(s),
                           a.begin() + static_cast<std::ptrdiff_t>(std::min(a.size(), s + 20)))},
                       h);
    CHECK((sum_a / 90.0 - d.suppress_mean).norm() <= 1e-5 * d.suppress_mean.norm());

    write_checkpoint(ckpt, dir / "out", directional_ablation_edits(ckpt, d.direction));
    const Checkpoint edited = Checkpoint::open(dir / "out");
    CHECK(edited.tensor_names() == ckpt.tensor_names());
    CHECK(edited.read_matrix("lm_head.weight") == ckpt.read_matrix("lm_head.weight"));
    CHECK(edited.read_matrix("model.layers.0.mlp.up_proj.weight") ==
          ckpt.read_matrix("model.layers.0.mlp.up_proj.weight"));
    const Transformer after(edited);
    const Eigen::VectorXf r = d.direction.cast<float>();
    double worst = 0.0, typical = 0.0;
    int points = 0;
    ForwardHooks check;
    check.stream = [&](int, int, bool, const Eigen::MatrixXf& x) {
      for (Eigen::Index t = 0; t < x.cols(); ++t) {
        worst = std::max(worst, std::abs(static_cast<double>(r.dot(x.col(t)))) /
                                    static_cast<double>(x.col(t).norm()));
        ++points;
      }
    };
    // Inputs never used to find r, of both kinds and mixed.
    for (int trial = 0; trial < 3; ++trial) {
      const auto ids = random_ids(rng, 30, 0, 15);
      (void)after.logits(ids, &check);
    }
    CHECK(points == 3 * 30 * 3 * 2);  // every token, after attention and MLP of every layer
    CHECK(worst <= 1e-6);
    // The original model does write along r (so the check above is not vacuous).
    ForwardHooks before;
    before.stream = [&](int, int, bool, const Eigen::MatrixXf& x) {
      typical = std::max(typical, std::abs(static_cast<double>(r.dot(x.col(0)))) /
                                      static_cast<double>(x.col(0).norm()));
    };
    (void)model.logits(random_ids(rng, 30, 0, 15), &before);
    CHECK(typical > 1e-2);
    MESSAGE(family << ": largest |r.x| / |x| after the edit " << worst << ", before " << typical);
  }
}

TEST_CASE("directional ablation refuses identical texts and bad directions") {
  const std::filesystem::path dir = test::temp_dir("ablation_bad");
  const test::Model m{16, 24, 2, 4, 2, 4, false, "llama"};
  (void)test::make_checkpoint(dir / "in", m, "F32", false, 12);
  const Checkpoint ckpt = Checkpoint::open(dir / "in");
  const Transformer model(ckpt);
  const std::vector<std::int32_t> ids = {1, 2, 3, 4, 5};
  AblationOptions o;
  CHECK_THROWS_WITH_AS((void)difference_of_means_direction(model, ids, ids, o),
                       doctest::Contains("same mean residual stream"), InvalidArgument);
  o.layer = 5;
  const std::vector<std::int32_t> other = {1, 2};
  CHECK_THROWS_AS((void)difference_of_means_direction(model, ids, other, o), InvalidArgument);
  CHECK_THROWS_AS((void)directional_ablation_edits(ckpt, Eigen::VectorXd::Zero(16)),
                  InvalidArgument);
  CHECK_THROWS_AS((void)directional_ablation_edits(ckpt, Eigen::VectorXd::Ones(3)),
                  InvalidArgument);
}
