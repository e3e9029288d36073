// read_solution / write_solution: every accepted encoding gives the same assignment, and each
// malformed solution file gives a ParseError with its file, line and what was expected.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <tuple>

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

namespace {
// The model of tests/data/solutions: 5 unlabelled variables (x1..x5); its energy is minimised by
// 1 0 1 1 0 alone, so the fixtures' vector is also checked against an independent brute force.
QuboModel fixture_model() {
  Eigen::VectorXd linear(5);
  linear << -1, 1, -1, -1, 1;
  return QuboModel::from_couplings(5, linear, std::vector<Coupling>{}, 0.0);
}
}  // namespace

TEST_CASE("every solver's answer file reads to the same assignment, detected from its content") {
  const QuboModel model = fixture_model();
  const Assignment expected = {1, 0, 1, 1, 0};
  CHECK(model.energy(expected) == doctest::Approx(test::brute_force_minimum(model, false)));
  for (const auto& [file, format] :
       std::vector<std::pair<std::string, std::string>>{{"cbc.sol", "cbc"},
                                                        {"glpk.sol", "glpk"},
                                                        {"highs.sol", "highs"},
                                                        {"gurobi.sol", "gurobi"},
                                                        {"cplex.sol", "cplex"},
                                                        {"qbsolv.out", "qbsolv"},
                                                        {"mqlib.out", "mqlib"},
                                                        {"dimod.json", "dimod"}}) {
    CAPTURE(file);
    const std::string path = test::data_path("solutions/" + file);
    CHECK(detect_solution_format(path) == format);
    CHECK(read_solution(path, model) == expected);
    SolutionReadOptions forced;
    forced.format = format;
    CHECK(read_solution(path, model, forced) == expected);
    CHECK(read_solution(path, 5) == expected);  // unlabelled: the same names x1..x5
  }
}

TEST_CASE("answer files name variables by label or by the LP writer's safe name") {
  Eigen::VectorXd linear = Eigen::VectorXd::Zero(3);
  QuboModel model = QuboModel::from_couplings(3, linear, {{0, 1, 1.0}}, 0.0);
  model.set_labels({"0.mlp.0", "0.mlp.1", "qp"});  // safe names x_0.mlp.0, x_0.mlp.1, qp
  // The product prefix grows past the variable named "qp": qp_1 is a product column.
  const fs::path named = write_text("named.sol", "x_0.mlp.0 1\n0.mlp.1 0\nqp 1\nqp_1 0\n");
  CHECK(read_solution(named.string(), model) == Assignment{1, 0, 1});
  const fs::path cbc =
      write_text("named_cbc.sol", "Optimal - objective value 0\n  0 x_0.mlp.0 1 0\n  2 qp 1 0\n");
  CHECK(read_solution(cbc.string(), model) == Assignment{1, 0, 1});
  // x1 is not a name of a labelled model.
  CHECK_THROWS_AS((void)read_solution(write_text("x1.sol", "x1 1\n").string(), model), ParseError);
  // dimod with string labels, not packed; SPIN values map -1 -> 0.
  const fs::path dimod = write_text(
      "labels.json",
      R"({"type": "SampleSet", "version": {"sampleset_schema": "3.1.0"}, "num_variables": 3,
 "num_rows": 1, "sample_data": {"type": "array", "data": [[1, -1, 1]], "data_type": "int8",
 "shape": [1, 3], "use_bytes": false}, "sample_type": "int8", "sample_packed": false,
 "vectors": {}, "variable_labels": ["qp", "0.mlp.0", "0.mlp.1"], "variable_type": "SPIN",
 "info": {}})");
  CHECK(read_solution(dimod.string(), model) == Assignment{0, 1, 1});
}

TEST_CASE("broken answer files give a ParseError naming file, line and what was expected") {
  const QuboModel model = fixture_model();
  struct Bad {
    std::string file;
    std::int64_t line;
    std::string message;
  };
  for (const Bad& c : std::vector<Bad>{
           {"bad_cbc_unknown_name.sol", 3,
            "expected a variable of the model (x1 .. x5, or a product column qp...), found 'y7'"},
           {"bad_cbc_duplicate.sol", 3,
            "expected one value of x1, found a second (the first on line 2)"},
           {"bad_cbc_value.sol", 2,
            "expected the value of x1 to be 0 or 1 (within 1e-6), found '0.5'"},
           {"bad_cbc_infeasible.sol", 1,
            "expected a CBC solution (status Optimal, or a stopped search with a solution), "
            "found 'Infeasible'"},
           {"bad_glpk_truncated.sol", 12, "expected GLPK's end line 'e o f', found end of file"},
           {"bad_highs_truncated.sol", 11,
            "expected 7 column lines as line 7 says, not 4, found end of file"},
           {"bad_gurobi_missing.sol", 5, "expected a value for every variable, found none for x5"},
           {"bad_gurobi_value.sol", 4,
            "expected the value of x3 to be 0 or 1 (within 1e-6), found '2'"},
           {"bad_cplex_truncated.sol", 17,
            "expected </variables> closing the section opened on line 15, found end of file"},
           {"bad_qbsolv_garbage.out", 2,
            "expected a 0/1 string (qbsolv's solution bits), found '10x10'"},
           {"bad_qbsolv_count.out", 1, "expected 5 bits (the model's variables), found '4'"},
           {"bad_mqlib_no_solution.out", 1,
            "expected MQLib's line 'Solution:' (run MQLib with -ps), found end of file"},
           {"bad_empty.sol", 1, "expected 5 values, found end of file"}}) {
    CAPTURE(c.file);
    const std::string path = test::data_path("solutions/" + c.file);
    try {
      (void)read_solution(path, model);
      FAIL("no ParseError");
    } catch (const ParseError& e) {
      CHECK(e.line() == c.line);
      CHECK(std::string(e.what()) == path + ":" + std::to_string(c.line) + ": " + c.message);
    }
  }
  // Inline cases: garbage in a named format, and dimod's JSON broken in each checked field.
  const std::string dimod_head =
      R"({"type": "SampleSet", "version": {"sampleset_schema": "3.2.0"}, "num_variables": 5,
 "num_rows": 1, "variable_type": "BINARY", "variable_labels": [0, 1, 2, 3, 4], "vectors": {},
)";
  for (const auto& [text, line, message] : std::vector<std::tuple<std::string, int, std::string>>{
           {"Optimal - objective value 0\n  0 x1 1 0\nfoo\n", 3,
            "expected a line 'index name value reduced-cost' (4 fields), found 'foo'"},
           {"x1 1\nx2 0\nx3 1\nx4 1\nx5 0\nx2 1\n", 6,
            "expected one value of x2, found a second (the first on line 2)"},
           {dimod_head + R"( "sample_data": {"data": "AAA=", "use_bytes": true}})", 3,
            "expected samples as lists (to_serializable(use_bytes=False)), found true"},
           {dimod_head + R"( "sample_data": {"data": [[13], [0]], "use_bytes": false}})", 3,
            "expected an array of 1 sample rows, found an array of 2 elements"},
           {dimod_head + R"( "sample_data": {"data": [[13, 0]], "use_bytes": false}})", 3,
            "expected packed rows of 1 32-bit words, found an array of 2 elements"},
           {dimod_head + R"( "sample_packed": false, "sample_data": {"data": [[1, 0, 2, 1, 0]]}})",
            3, "expected values 0 or 1, found 2"}}) {
    CAPTURE(text);
    const fs::path path = write_text("inline.sol", text);
    try {
      (void)read_solution(path.string(), model);
      FAIL("no ParseError");
    } catch (const ParseError& e) {
      CHECK(std::string(e.what()) == path.string() + ":" + std::to_string(line) + ": " + message);
    }
  }
  SolutionReadOptions unknown;
  unknown.format = "xpress";
  CHECK_THROWS_AS((void)read_solution(test::data_path("solutions/cbc.sol"), model, unknown),
                  InvalidArgument);
  // Forced to the wrong format: that format's own message.
  SolutionReadOptions wrong;
  wrong.format = "cbc";
  CHECK_THROWS_AS((void)read_solution(test::data_path("solutions/gurobi.sol"), model, wrong),
                  ParseError);
}
