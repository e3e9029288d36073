// Checkpoint layers as instances: the spec parser, and the loaded model equals the layer problem
// built directly (same energies on every feasible mask of the tiny checked-in checkpoint).
#include <doctest/doctest.h>

#include "qprune/calibration_stats.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/comparison.hpp"
#include "qprune/error.hpp"
#include "qprune/layer_instance.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

TEST_CASE("layer instance specs parse, and anything else is left to the file loader") {
  const auto spec = parse_layer_instance(
      "ckpt/dir:layer=3:unit=heads_per_group:sparsity=0.25:"
      "calib=s.safetensors:data_free=isserlis:compensation=0");
  REQUIRE(spec);
  CHECK(spec->checkpoint == "ckpt/dir");
  CHECK(spec->calibration == "s.safetensors");
  CHECK(spec->problem.layer == 3);
  CHECK(spec->problem.unit == UnitKind::kHeadsPerGroup);
  CHECK(spec->problem.sparsity == 0.25);
  CHECK(spec->problem.data_free == DataFreeModel::kIsserlis);
  CHECK_FALSE(spec->problem.mean_compensation);
  CHECK(layer_instance_name(*spec) == "dir.layer3.heads_per_group.s25");
  CHECK_FALSE(parse_layer_instance("bqp50.txt#1"));
  CHECK_FALSE(parse_layer_instance("c:/data/x.qubo"));
  CHECK_THROWS_AS((void)parse_layer_instance("c:layer=1:unit=mlp"),
                  InvalidArgument);  // no sparsity
  CHECK_THROWS_AS((void)parse_layer_instance("c:layer=x:unit=mlp:sparsity=0.5"), InvalidArgument);
  CHECK_THROWS_AS((void)parse_layer_instance("c:layer=1:unit=mlp:sparsity=0.5:colour=red"),
                  InvalidArgument);
}

TEST_CASE("a loaded layer instance is the layer's pruning problem") {
  const std::string ckpt = test::data_path("checkpoints/tiny-llama-gqa");
  const std::string stats = test::data_path("checkpoints/tiny-llama-gqa.stats.safetensors");
  const std::string spec = ckpt + ":layer=1:unit=mlp:sparsity=0.5:calib=" + stats;
  const Instance instance = make_instance(spec);
  CHECK(instance.name == "tiny-llama-gqa.layer1.mlp.s50");
  const QuboModel loaded = instance.load();

  const Checkpoint checkpoint = Checkpoint::open(ckpt);
  const CalibrationStatsFile file = CalibrationStatsFile::open(stats);
  LayerProblemSpec direct;
  direct.layer = 1;
  direct.unit = UnitKind::kMlp;
  direct.sparsity = 0.5;
  const QuboModel expected = build_layer_problem(checkpoint, &file, direct).model;
  REQUIRE(loaded.num_variables() == expected.num_variables());
  REQUIRE(loaded.constraints().size() == 1);
  CHECK(loaded.constraints()[0].k == expected.constraints()[0].k);
  const int n = loaded.num_variables();
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << n); bits += 7) {
    const Assignment x = test::bits_to_assignment(bits, n);
    CHECK(loaded.energy(x) == expected.energy(x));
  }
}
