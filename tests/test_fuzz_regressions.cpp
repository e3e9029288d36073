// Fuzzing regressions: every input a fuzz target (tests/fuzz/) once crashed or hung on is kept in
// tests/data/fuzz_regressions/<target>/ and replayed here through the same reader call the target
// makes (tests/fuzz/fuzz_readers.hpp), in the ordinary and the sanitizer build. Each must now parse
// or be rejected with qprune::Error; any other exception fails the test (a crash fails the run).
// A known-good file per target checks that the dispatch reaches the intended reader.
#include <doctest/doctest.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "tests/fuzz/fuzz_readers.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
namespace fs = std::filesystem;

namespace {

// "parsed", "rejected: <message>" or "other exception: <what>" (the failure the test reports).
std::string outcome(const std::string& target, const fs::path& file) {
  try {
    fuzz::read_with(target, file);
    return "parsed";
  } catch (const Error& e) {
    return std::string("rejected: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what();
  }
}

}  // namespace

TEST_CASE("every saved fuzzing input is parsed or rejected with qprune::Error") {
  const fs::path root = test::data_path("fuzz_regressions");
  REQUIRE(fs::is_directory(root));
  // The fuzz-only targets (checkpoint, gzip) replay too; they have no known-good fixture case.
  std::vector<std::string> targets = fuzz::target_names();
  for (const std::string& t : fuzz::fuzz_only_target_names()) targets.push_back(t);
  int replayed = 0;
  for (const fs::directory_entry& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    const std::string target = dir.path().filename().string();
    INFO("target folder " << dir.path().string());
    // A folder must be named after a target, or its inputs would silently never run.
    REQUIRE(std::find(targets.begin(), targets.end(), target) != targets.end());
    for (const fs::directory_entry& file : fs::directory_iterator(dir.path())) {
      if (!file.is_regular_file() || file.path().filename() == "README.md") continue;
      INFO("input " << file.path().string());
      const std::string result = outcome(target, file.path());
      CHECK_MESSAGE(result.rfind("other exception", 0) != 0, result);
      ++replayed;
    }
  }
  MESSAGE("replayed " << replayed << " saved fuzzing inputs");
}

TEST_CASE("each fuzz target's reader accepts a known-good file and rejects a bad one") {
  struct Case {
    std::string target;
    std::string good;
    std::string bad;
  };
  const std::vector<Case> cases = {
      {"qbsolv", "formats/toy.qubo", "bad/qbsolv_nan.qubo"},
      {"coo", "formats/toy.coo", "bad/coo_inf.coo"},
      {"json", "formats/toy.json", "bad/json_syntax.json"},
      {"mqlib", "formats/toy.mqlib", "bad/mqlib_truncated.mqlib"},
      {"maxcut", "formats/square.gset", "bad/maxcut_self_loop.gset"},
      {"beasley", "formats/toy.txt", "bad/beasley_truncated.txt"},
      {"biqmac", "formats/toy.sparse", "bad/biqmac_garbage.sparse"},
      {"qplib", "formats/toy.qplib", "bad/qplib_non_binary.qplib"},
      {"mtx", "formats/toy.mtx", "bad/mtx_pattern.mtx"},
      {"safetensors", "checkpoints/tiny-llama-gqa/model.safetensors",
       "bad/safetensors_overlap.safetensors"},
      {"index", "checkpoints/tiny-llama-gqa.index.json", "formats/toy.json"},
      {"config", "checkpoints/tiny-llama-gqa/config.json", "bad/config_missing_field.json"},
      {"masks", "masks/toy.json", "formats/toy.json"},
      {"solution", "instances/bqp100.1.sol", "bad/sol_bad_string.sol"},
      {"calibration", "checkpoints/tiny-llama-gqa.stats.safetensors",
       "checkpoints/tiny-llama-gqa/model.safetensors"},
  };
  std::vector<std::string> covered;
  for (const Case& c : cases) {
    INFO("target " << c.target);
    CHECK(outcome(c.target, test::data_path(c.good)) == "parsed");
    CHECK(outcome(c.target, test::data_path(c.bad)).rfind("rejected: ", 0) == 0);
    covered.push_back(c.target);
  }
  std::vector<std::string> targets = fuzz::target_names();
  std::sort(targets.begin(), targets.end());
  std::sort(covered.begin(), covered.end());
  CHECK(covered == targets);
  CHECK_THROWS_AS(fuzz::read_with("no_such_reader", test::data_path("formats/toy.qubo")),
                  InvalidArgument);
}
