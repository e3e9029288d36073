// read_solution / write_solution: every accepted encoding gives the same assignment, and each
// malformed solution file gives a ParseError with its file, line and what was expected.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
namespace fs = std::filesystem;

namespace {
fs::path write_text(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / "qprune_test_solution_io";
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return dir / name;
}
}  // namespace

TEST_CASE("every solution encoding reads to the same assignment") {
  const Assignment expected = {1, 0, 1, 1, 0};
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"a.sol", "1 0 1 1 0\n"},
           {"b.sol", "# comment\n1,0,1\n1, 0 # trailing comment\n"},
           {"c.sol", "1\n0\n1\n1\n0"},
           {"d.sol", "+1 -1 1 1 -1\n"},
           {"e.sol", "# instance: x\n10110\n"},
           {"f.json", "{\"solution\": [1, 0, 1, 1, 0]}"},
           {"g.json",
            "{\"samples\": [{\"x\": [1, 0, 1, 1, 0], \"energy\": -3}, {\"x\": [0, 0, 0, 0, 0]}]}"},
           {"h.json", "{\"solution\": \"10110\"}"}}) {
    CAPTURE(name);
    CHECK(read_solution(write_text(name, text).string(), 5) == expected);
  }
  CHECK(read_solution(write_text("one.sol", "1\n").string(), 1) == Assignment{1});
}

TEST_CASE("write_solution -> read_solution keeps the assignment") {
  std::mt19937_64 rng(3);
  Assignment x(257);
  for (auto& v : x) v = static_cast<std::uint8_t>(rng() & 1U);
  const fs::path path = write_text("w.sol", "");
  write_solution(x, path.string());
  CHECK(read_solution(path.string(), 257) == x);
  CHECK_THROWS_AS(write_solution({0, 2}, path.string()), InvalidArgument);
}

TEST_CASE("the published .sol files read as 0/1 strings of the right length") {
  const Assignment x = read_solution(test::data_path("instances/g05_60.0.sol"), 60);
  CHECK(x.size() == 60);
  CHECK_THROWS_AS((void)read_solution(test::data_path("instances/g05_60.0.sol"), 61), ParseError);
}

TEST_CASE("malformed solution files give a ParseError with file, line and what was expected") {
  struct Bad {
    std::string file;
    int n;
    std::int64_t line;
    std::string expected;
  };
  for (const Bad& c :
       std::vector<Bad>{{"sol_wrong_length.sol", 3, 2, "expected 3 values, found 2"},
                        {"sol_bad_value.sol", 3, 2, "expected a value 0 or 1, found '2'"},
                        {"sol_bad_string.sol", 5, 1, "expected a 0/1 string, found 'x'"},
                        {"sol_json_wrong_length.json", 3, 1, "expected 3 values, found 2"},
                        {"sol_mixed_spin.sol", 3, 1, "expected a value -1 or +1, found '0'"}}) {
    CAPTURE(c.file);
    const std::string path = test::data_path("bad/" + c.file);
    try {
      (void)read_solution(path, c.n);
      FAIL("no ParseError");
    } catch (const ParseError& e) {
      CHECK(e.line() == c.line);
      CHECK(std::string(e.what()).find(path + ":" + std::to_string(c.line) + ": " + c.expected) ==
            0);
    }
  }
}
