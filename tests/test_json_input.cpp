// Bounded JSON input (core/json_input.hpp): the depth scan and its byte offsets, the
// short descriptions quoted in messages, 80k levels of nesting refused cleanly by every JSON
// reader (config.json, the shard index, a safetensors header, masks, solutions, JSON QUBO files),
// and a safetensors header of 200k tensors parsed in linear time.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/json_input.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/masks.hpp"
#include "qprune/model_config.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
namespace fs = std::filesystem;

namespace {

constexpr int kDeep = 80000;  // the depth that crashed every reader (about 160 KB)

std::string deep_array(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Runs `f`, which must throw a ParseError naming `file` and the depth limit; returns its line().
std::int64_t expect_depth_error(const std::function<void()>& f, const std::string& file) {
  try {
    f();
  } catch (const ParseError& e) {
    INFO(std::string(e.what()).substr(0, 300));
    CHECK(std::string(e.what()).find("nested at most 64 levels deep") != std::string::npos);
    CHECK(std::string(e.what()).find(file) != std::string::npos);
    CHECK(std::string(e.what()).size() < 400);  // no dump of the value
    return e.line();
  }
  FAIL("no ParseError for deeply nested JSON in " << file);
  return -1;
}

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return file + header + data;
}

}  // namespace

TEST_CASE("scan_json bounds the depth at the bracket past the limit, ignoring strings") {
  const detail::JsonSource source{"x.json"};
  CHECK_NOTHROW(detail::scan_json(deep_array(64), source));
  // Level 65 opens at byte 64 (0-based).
  try {
    detail::scan_json(deep_array(65), source);
    FAIL("depth 65 accepted");
  } catch (const ParseError& e) {
    CHECK(e.line() == 64);
    CHECK(std::string(e.what()).find("x.json: byte 64:") == 0);
  }
  // Brackets inside strings, with escaped quotes, are text.
  const std::string in_string = "{\"a\\\"[[[\": \"" + std::string(100, '[') + "\\\\\"}";
  CHECK_NOTHROW(detail::scan_json(in_string, source));
  // A base offset (the 8-byte length of a safetensors file) is added; by_line gives the line.
  try {
    detail::scan_json("\n\n" + deep_array(70), {"h", 8, false}, nullptr, 3);
    FAIL("depth 4 accepted with a limit of 3");
  } catch (const ParseError& e) {
    CHECK(e.line() == 8 + 2 + 3);
  }
  try {
    detail::scan_json("{\n\n" + deep_array(70) + "}", {"t.json", 0, true});
    FAIL("deep nesting accepted");
  } catch (const ParseError& e) {
    CHECK(e.line() == 3);
    CHECK(std::string(e.what()).find("t.json:3:") == 0);
    CHECK(std::string(e.what()).find("(byte 66)") != std::string::npos);
  }
}

TEST_CASE("scan_json gives the offset of every top-level key in document order") {
  const std::string text = R"({ "a" : {"x": "b"}, "b\"q":[1, "c"],
  "c":"d" , "a": 1})";
  std::vector<std::size_t> keys;
  detail::scan_json(text, {"k.json"}, &keys);
  const std::vector<std::size_t> expected = {text.find("\"a\""), text.find("\"b\\\""),
                                             text.find("\"c\":"), text.rfind("\"a\"")};
  CHECK(keys == expected);
  keys.clear();
  detail::scan_json(R"(["a", "b"])", {"k.json"}, &keys);
  CHECK(keys.empty());  // not an object: no keys
}

TEST_CASE("describe_json is short and flat") {
  using nlohmann::json;
  CHECK(detail::describe_json(json::parse("[1, [2, 3], 4]")) == "an array of 3 elements");
  CHECK(detail::describe_json(json::parse(R"({"a": 1, "b": {}})")) == "an object of 2 members");
  CHECK(detail::describe_json(json(-3)) == "-3");
  CHECK(detail::describe_json(json(true)) == "true");
  CHECK(detail::describe_json(json(nullptr)) == "null");
  CHECK(detail::describe_json(json("abc")) == "\"abc\"");
  const std::string long_text = detail::describe_json(json(std::string(1 << 20, 'x')));
  CHECK(long_text.size() < 50);
  CHECK(long_text.ends_with("...\""));
  // Cutting inside a multi-byte character must not throw (nlohmann throws on invalid UTF-8).
  std::string utf8;
  for (int i = 0; i < 30; ++i) utf8 += "\xc3\xa9";
  CHECK_NOTHROW((void)detail::describe_json(json(utf8)));
  CHECK(detail::describe_json(nlohmann::ordered_json::parse("[[]]")) == "an array of 1 elements");
}

TEST_CASE("parse_json turns parser errors into ParseErrors at the byte") {
  try {
    (void)detail::parse_json(R"({"a": 1,, "b": 2})", {"p.json"});
    FAIL("invalid JSON accepted");
  } catch (const ParseError& e) {
    CHECK(e.line() == 8);
    CHECK(std::string(e.what()).find("expected valid JSON") != std::string::npos);
  }
  CHECK_THROWS_AS((void)detail::parse_json("[1e400]", {"p.json"}), ParseError);
  // A long invalid string token is not quoted whole.
  try {
    (void)detail::parse_json("\"" + std::string(100000, 'a') + "\x01\"", {"p.json"});
    FAIL("control character accepted");
  } catch (const ParseError& e) {
    CHECK(std::string(e.what()).size() < 400);
  }
}

TEST_CASE("80k levels of nesting are a ParseError in every JSON reader, not a crash") {
  const fs::path dir = test::temp_dir("deep_json");
  const std::string deep = deep_array(kDeep);
  const fs::path good_ckpt = test::data_path("checkpoints/tiny-llama-gqa");

  SUBCASE("config.json") {
    test::spit(dir / "config.json", "{\"hidden_size\": " + deep + "}");
    const std::int64_t at = expect_depth_error(
        [&] { (void)ModelConfig::load((dir / "config.json").string()); }, "config.json");
    CHECK(at == 16 + 63);  // the bracket opening level 65 (the object is level 1)
  }
  SUBCASE("model.safetensors.index.json") {
    fs::copy_file(good_ckpt / "config.json", dir / "config.json");
    test::spit(dir / "model.safetensors.index.json", "{\"weight_map\": " + deep + "}");
    (void)expect_depth_error([&] { (void)Checkpoint::open(dir); }, "model.safetensors.index.json");
  }
  SUBCASE("a safetensors header (the shape)") {
    const std::string header =
        "{\"a\":{\"dtype\":\"U8\",\"shape\":" + deep + ",\"data_offsets\":[0,1]}}";
    test::spit(dir / "model.safetensors", safetensors_bytes(header, "x"));
    const std::int64_t at = expect_depth_error(
        [&] { (void)SafetensorsFile::open(dir / "model.safetensors"); }, "model.safetensors");
    CHECK(at == 8 + static_cast<std::int64_t>(header.find('[')) + 62);  // object, a, 62 brackets
  }
  SUBCASE("masks") {
    test::spit(dir / "masks.json", "{\"format\": \"qprune-masks\", \"entries\": " + deep + "}");
    (void)expect_depth_error([&] { (void)read_masks(dir / "masks.json"); }, "masks.json");
  }
  SUBCASE("solution") {
    test::spit(dir / "x.sol", "{\"solution\": " + deep + "}");
    (void)expect_depth_error([&] { (void)read_solution((dir / "x.sol").string(), 3); }, "x.sol");
  }
  SUBCASE("JSON QUBO, and a bare array") {
    test::spit(dir / "q.json", "{\"format\": \"qprune-qubo\", \"linear\": " + deep + "}");
    (void)expect_depth_error([&] { (void)read_model((dir / "q.json").string()); }, "q.json");
    test::spit(dir / "bare.json", deep);
    (void)expect_depth_error([&] { (void)read_model((dir / "bare.json").string()); }, "bare.json");
  }
  fs::remove_all(dir);
}

TEST_CASE("a safetensors header with 200k tensors parses in linear time") {
  // Every tensor one U8 byte; names in reverse order so the offsets are not in key order.
  constexpr int kTensors = 200000;
  std::string header = "{";
  for (int k = kTensors - 1; k >= 0; --k) {
    char name[16];
    std::snprintf(name, sizeof name, "t%06d", k);
    header += std::string(header.size() > 1 ? "," : "") + "\"" + name +
              "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" + std::to_string(k) + "," +
              std::to_string(k + 1) + "]}";
  }
  header += "}";
  const fs::path dir = test::temp_dir("wide_header");
  test::spit(dir / "wide.safetensors", safetensors_bytes(header, std::string(kTensors, 'x')));
  const auto start = std::chrono::steady_clock::now();
  const SafetensorsFile f = SafetensorsFile::open(dir / "wide.safetensors");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("200k-tensor header (" << header.size() << " bytes) parsed in " << seconds << " s");
  CHECK(f.tensor_names().size() == static_cast<std::size_t>(kTensors));
  // The recorded offsets point at each key (the quadratic search is gone, the answer is not).
  for (int k : {0, 1, 12345, kTensors - 1}) {
    char name[16];
    std::snprintf(name, sizeof name, "t%06d", k);
    CHECK(f.info(name).header_offset == 8 + header.find("\"" + std::string(name) + "\""));
  }
  // A duplicate is reported at its second occurrence.
  const std::string dup = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                          R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  test::spit(dir / "dup.safetensors", safetensors_bytes(dup, "x"));
  try {
    (void)SafetensorsFile::open(dir / "dup.safetensors");
    FAIL("duplicate accepted");
  } catch (const ParseError& e) {
    CHECK(e.line() == 8 + static_cast<std::int64_t>(dup.rfind("\"a\"")));
    CHECK(std::string(e.what()).find("'a' twice") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("objects of 200k keys in config.json and a masks file parse in linear time") {
  // ordered_json inserted each key by a linear search: 2e10 string comparisons here, minutes;
  // std::map takes well under a second. The values must still be read correctly.
  constexpr int kKeys = 200000;
  std::string extra;
  for (int k = 0; k < kKeys; ++k) extra += ",\"x" + std::to_string(k) + "\":" + std::to_string(k);
  const std::string config = R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",)"
                             R"("hidden_size":8,"intermediate_size":16,"num_hidden_layers":2,)"
                             R"("num_attention_heads":2,"num_key_value_heads":1,"vocab_size":32)" +
                             extra + "}";
  auto start = std::chrono::steady_clock::now();
  const ModelConfig cfg = ModelConfig::parse(config, "wide/config.json");
  MESSAGE("config.json of "
          << kKeys << " keys parsed in "
          << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
          << " s");
  CHECK(cfg.hidden_size == 8);
  CHECK(cfg.num_key_value_heads == 1);
  CHECK(cfg.to_json().find("\"x199999\": 199999") != std::string::npos);  // kept when written
  // A masks file whose top-level object has 200k unknown keys: read, the extra keys ignored.
  const fs::path dir = test::temp_dir("wide_masks");
  Masks m;
  m.solver = "sa";
  LayerMask e;
  e.layer = 0;
  e.num_units = 4;
  e.kept = {0, 2};
  e.status = RunStatus::kCompleted;
  m.entries.push_back(e);
  write_masks(m, dir / "m.json");
  std::string text = test::slurp(dir / "m.json");
  text.insert(text.rfind('}'), extra);
  test::spit(dir / "wide.json", text);
  start = std::chrono::steady_clock::now();
  const Masks back = read_masks(dir / "wide.json");
  MESSAGE("masks file of "
          << kKeys << " extra keys read in "
          << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
          << " s");
  REQUIRE(back.entries.size() == 1);
  CHECK(back.entries[0].kept == std::vector<int>{0, 2});
  fs::remove_all(dir);
}
