// safetensors files: F16/BF16 conversion against a bit-level reference written here (exhaustive
// decode, nearest-value search for encode, ties to even), write/read round trips for every dtype,
// the written layout checked byte by byte, a hand-built file read back, and every bad fixture of
// tests/data/bad/ (made by make_bad_safetensors.py) giving its error at the right byte.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "tests/test_support.hpp"

using namespace qprune;
namespace fs = std::filesystem;

namespace {

// ---- independent reference conversions (formulae, not bit tricks) ----
double ref_f16(std::uint16_t b) {
  const int s = b >> 15, e = (b >> 10) & 31, m = b & 1023;
  double v;
  if (e == 31)
    v = m ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else if (e == 0)
    v = m * std::pow(2.0, -24);
  else
    v = (1.0 + m / 1024.0) * std::pow(2.0, e - 15);
  return s ? -v : v;
}
double ref_bf16(std::uint16_t b) {
  const int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
  double v;
  if (e == 255)
    v = m ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else if (e == 0)
    v = m * std::pow(2.0, -133);
  else
    v = (1.0 + m / 128.0) * std::pow(2.0, e - 127);
  return s ? -v : v;
}

// Nearest representable value by search over the sorted positive finite values (monotonic in the
// bit pattern); a tie picks the even pattern; beyond max + half an ulp it is infinity.
std::uint16_t ref_encode(double x, double (*decode)(std::uint16_t), std::uint16_t max_finite,
                         std::uint16_t inf_bits) {
  const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(x);
  const double max = decode(max_finite);
  const double ulp = max - decode(static_cast<std::uint16_t>(max_finite - 1));
  if (a >= max + ulp / 2) return sign | inf_bits;
  std::uint16_t lo = 0, hi = max_finite;  // decode(lo) <= a <= decode(hi)
  while (hi - lo > 1) {
    const auto mid = static_cast<std::uint16_t>((lo + hi) / 2);
    (decode(mid) <= a ? lo : hi) = mid;
  }
  const double dl = a - decode(lo), dh = decode(hi) - a;
  const std::uint16_t pick = dl < dh ? lo : dh < dl ? hi : ((lo & 1) == 0 ? lo : hi);
  return sign | pick;
}
std::uint16_t ref_f16_encode(double x) { return ref_encode(x, ref_f16, 0x7BFF, 0x7C00); }
std::uint16_t ref_bf16_encode(double x) { return ref_encode(x, ref_bf16, 0x7F7F, 0x7F80); }

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

fs::path temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() /
                     ("qprune_test_" + name + "_" + std::to_string(std::random_device{}()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string bad(const std::string& name) { return test::data_path("bad/" + name); }

// Byte offset of `"key"` in a file (as the reader reports positions of header entries).
std::int64_t key_pos(const std::string& file, const std::string& key) {
  const std::string content = slurp(file);
  const std::size_t p = content.find("\"" + key + "\"");
  REQUIRE(p != std::string::npos);
  return static_cast<std::int64_t>(p);
}

// Expects `f` to throw a ParseError whose message says `byte <at>` and contains `text`.
template <class F>
void expect_parse_error(F&& f, std::int64_t at, const std::string& text) {
  try {
    f();
    FAIL("no ParseError thrown; expected one mentioning '" << text << "'");
  } catch (const ParseError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(e.line() == at);
    CHECK(what.find(": byte " + std::to_string(at) + ": expected") != std::string::npos);
    CHECK(what.find(text) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("F16 and BF16 decode exactly like the reference for all 65536 bit patterns") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    REQUIRE(same(f16_to_float(bits), ref_f16(bits)));
    REQUIRE(same(bf16_to_float(bits), ref_bf16(bits)));
  }
}

TEST_CASE("F16 and BF16 encode known values") {
  CHECK(float_to_f16(1.0) == 0x3C00);
  CHECK(float_to_f16(-2.5) == 0xC100);
  CHECK(float_to_f16(65504.0) == 0x7BFF);
  CHECK(float_to_f16(std::ldexp(1.0, -24)) == 0x0001);      // smallest subnormal
  CHECK(float_to_f16(std::ldexp(1.0, -25)) == 0x0000);      // half of it: tie to even (0)
  CHECK(float_to_f16(3 * std::ldexp(1.0, -25)) == 0x0002);  // 1.5 ulp: tie to even (2)
  CHECK(float_to_f16(65519.99) == 0x7BFF);
  CHECK(float_to_f16(65520.0) == 0x7C00);  // tie between 65504 and 65536 (even) -> inf
  CHECK(float_to_f16(INFINITY) == 0x7C00);
  CHECK(float_to_f16(-INFINITY) == 0xFC00);
  CHECK(float_to_f16(-0.0) == 0x8000);
  CHECK(std::isnan(f16_to_float(float_to_f16(NAN))));
  CHECK(float_to_f16(1.0 + std::ldexp(1.0, -11)) == 0x3C00);      // tie -> even mantissa 0
  CHECK(float_to_f16(1.0 + 3 * std::ldexp(1.0, -11)) == 0x3C02);  // tie -> even mantissa 2
  CHECK(float_to_bf16(1.0) == 0x3F80);
  CHECK(float_to_bf16(-2.5) == 0xC020);
  CHECK(float_to_bf16(65504.0) == 0x4780);  // 65504 rounds to 65536 in 8 bits of precision
  CHECK(float_to_bf16(1.0 + std::ldexp(1.0, -8)) == 0x3F80);      // tie -> even
  CHECK(float_to_bf16(1.0 + 3 * std::ldexp(1.0, -8)) == 0x3F82);  // tie -> even
  CHECK(float_to_bf16(std::ldexp(1.0, -133)) == 0x0001);          // smallest subnormal
  CHECK(float_to_bf16(INFINITY) == 0x7F80);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(-NAN))));
  // One-step rounding from double: 1 + 2^-8 + 2^-30 is just above the bf16 tie; rounding it
  // through float first would land on the tie and round down to 1.0.
  CHECK(float_to_bf16(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30)) == 0x3F81);
}

TEST_CASE("F16 and BF16 encode every value, every midpoint and random doubles like the reference") {
  for (std::uint32_t b = 0; b < 0x7C00; ++b) {  // finite non-negative f16 (and their negatives)
    const auto bits = static_cast<std::uint16_t>(b);
    REQUIRE(float_to_f16(ref_f16(bits)) == bits);
    REQUIRE(float_to_f16(-ref_f16(bits)) == (bits | 0x8000));
    if (b + 1 < 0x7C00) {
      const double mid = (ref_f16(bits) + ref_f16(static_cast<std::uint16_t>(b + 1))) / 2;
      REQUIRE(float_to_f16(mid) == ref_f16_encode(mid));
      REQUIRE(float_to_f16(mid) % 2 == 0);
    }
  }
  for (std::uint32_t b = 0; b < 0x7F80; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    REQUIRE(float_to_bf16(ref_bf16(bits)) == bits);
    if (b + 1 < 0x7F80) {
      const double mid = (ref_bf16(bits) + ref_bf16(static_cast<std::uint16_t>(b + 1))) / 2;
      REQUIRE(float_to_bf16(mid) == ref_bf16_encode(mid));
      REQUIRE(float_to_bf16(mid) % 2 == 0);
    }
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-30, 17);
  for (int k = 0; k < 20000; ++k) {
    const double x = std::ldexp(mantissa(rng), exponent(rng));
    REQUIRE(float_to_f16(x) == ref_f16_encode(x));
    REQUIRE(float_to_bf16(x) == ref_bf16_encode(x));
  }
}

TEST_CASE("write then read keeps bytes for every dtype and values for every float dtype") {
  const fs::path dir = temp_dir("st_roundtrip");
  std::mt19937_64 rng(3);
  const std::vector<std::string> dtypes = {"F64", "F32", "F16", "BF16",    "I64",
                                           "I32", "I16", "I8",  "U8",      "BOOL",
                                           "U64", "U32", "U16", "F8_E4M3", "F8_E5M2"};
  SafetensorsWriter w;
  std::map<std::string, std::vector<std::byte>> expected;
  for (const std::string& dt : dtypes) {
    const std::size_t size = dtype_size(dtype_from_name(dt));
    REQUIRE(size > 0);
    std::vector<std::byte> bytes(3 * 5 * size);
    for (auto& b : bytes) b = static_cast<std::byte>(rng() & 0xFF);
    if (dt == "BOOL")
      for (auto& b : bytes) b = static_cast<std::byte>(rng() & 1);
    expected["raw." + dt] = bytes;
    w.add_bytes("raw." + dt, dt, {3, 5}, bytes);
  }
  w.add_bytes("empty", "F32", {0, 4}, {});
  w.add_bytes("scalar", "I64", {}, std::vector<std::byte>(8, std::byte{0x11}));
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  Eigen::MatrixXd values(4, 6);
  for (Eigen::Index i = 0; i < values.size(); ++i) values.data()[i] = u(rng);
  for (const char* dt : {"F64", "F32", "F16", "BF16"})
    w.add_matrix(std::string("m.") + dt, dtype_from_name(dt), values);
  w.add_matrix("v.BF16", Dtype::kBF16, values.col(2));
  w.set_metadata("note", "round trip");
  w.write(dir / "a.safetensors");

  const SafetensorsFile f = SafetensorsFile::open(dir / "a.safetensors");
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "round trip");
  for (const auto& [name, bytes] : expected) {
    const auto raw = f.raw_bytes(name);
    CHECK(f.info(name).shape == std::vector<std::int64_t>{3, 5});
    CHECK(std::vector<std::byte>(raw.begin(), raw.end()) == bytes);
  }
  CHECK(f.info("empty").num_bytes() == 0);
  CHECK(f.read_matrix("empty").rows() == 0);
  CHECK(f.info("scalar").shape.empty());
  CHECK(f.info("v.BF16").shape == std::vector<std::int64_t>{4});
  CHECK(f.read_vector("v.BF16").size() == 4);

  // Values: each dtype's read-back equals the reference decode of the reference encode.
  SafetensorsWriter again;
  for (const char* dt : {"F64", "F32", "F16", "BF16"}) {
    const std::string name = std::string("m.") + dt;
    const Eigen::MatrixXd m = f.read_matrix(name);
    const Eigen::MatrixXf mf = f.read_matrix_f32(name);
    REQUIRE(m.rows() == 4);
    REQUIRE(m.cols() == 6);
    CHECK(f.info(name).shape == std::vector<std::int64_t>{4, 6});
    for (Eigen::Index i = 0; i < 4; ++i)
      for (Eigen::Index j = 0; j < 6; ++j) {
        const double v = values(i, j);
        const double want = std::string(dt) == "F64"   ? v
                            : std::string(dt) == "F32" ? static_cast<double>(static_cast<float>(v))
                            : std::string(dt) == "F16" ? ref_f16(ref_f16_encode(v))
                                                       : ref_bf16(ref_bf16_encode(v));
        CHECK(m(i, j) == want);
        CHECK(mf(i, j) == static_cast<float>(want));
      }
    again.add_matrix(name, dtype_from_name(dt), m);
  }
  again.write(dir / "b.safetensors");
  const SafetensorsFile g = SafetensorsFile::open(dir / "b.safetensors");
  for (const char* dt : {"F64", "F32", "F16", "BF16"}) {
    const std::string name = std::string("m.") + dt;
    const auto a = f.raw_bytes(name), b = g.raw_bytes(name);
    CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));  // re-encoding is byte exact
  }
  fs::remove_all(dir);
}

TEST_CASE("the written layout: padded header, metadata first, tensors sorted by name") {
  const fs::path dir = temp_dir("st_layout");
  SafetensorsWriter w;
  w.add_matrix("zeta", Dtype::kF32, Eigen::MatrixXd::Constant(1, 3, 2.0));
  w.add_matrix("alpha", Dtype::kBF16, Eigen::MatrixXd::Constant(2, 1, -1.0));
  w.write(dir / "x.safetensors");
  const std::string bytes = slurp(dir / "x.safetensors");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  CHECK(n % 8 == 0);
  const std::string header = bytes.substr(8, n);
  const std::size_t last = header.find_last_not_of(' ');
  CHECK(header.size() - last - 1 < 8);  // only padding spaces after the JSON
  CHECK(header.rfind("{\"__metadata__\":{\"format\":\"pt\"}", 0) == 0);
  const auto j = nlohmann::json::parse(header);
  CHECK(j["alpha"]["data_offsets"] == nlohmann::json::array({0, 4}));
  CHECK(j["zeta"]["data_offsets"] == nlohmann::json::array({4, 16}));
  CHECK(header.find("\"alpha\"") < header.find("\"zeta\""));
  CHECK(bytes.size() == 8 + n + 16);
  const std::string bf16_minus_one = {'\x80', '\xBF'};  // -1.0 = 0xBF80, little endian
  CHECK(bytes.substr(8 + n, 2) == bf16_minus_one);
  // No temporary files left behind.
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  fs::remove_all(dir);
}

TEST_CASE("a hand-built file in any offset order, with an unpadded header, reads back") {
  const fs::path dir = temp_dir("st_hand");
  // Tensors listed out of offset order; data: b (2 x F32) then a (2 x 2 F64), plus an F16 c.
  const std::string header = R"({"a":{"dtype":"F64","shape":[2,2],"data_offsets":[8,40]},)"
                             R"("c":{"dtype":"F16","shape":[1],"data_offsets":[40,42]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  file += header;
  const float b[2] = {0.5F, -7.25F};
  const double a[4] = {1, 2, 3, 4};  // row-major: a(0,1) == 2
  const std::uint16_t c = 0x3555;    // f16 for ~0.333
  file.append(reinterpret_cast<const char*>(b), 8);
  file.append(reinterpret_cast<const char*>(a), 32);
  file.append(reinterpret_cast<const char*>(&c), 2);
  std::ofstream(dir / "h.safetensors", std::ios::binary) << file;
  const SafetensorsFile f = SafetensorsFile::open(dir / "h.safetensors");
  CHECK(f.tensor_names() == std::vector<std::string>{"a", "b", "c"});
  const Eigen::MatrixXd ma = f.read_matrix("a");
  CHECK(ma(0, 1) == 2.0);
  CHECK(ma(1, 0) == 3.0);
  CHECK(f.read_vector("b")(1) == -7.25);
  CHECK(f.read_matrix("c")(0, 0) == ref_f16(0x3555));
  CHECK(f.info("a").file_offset == 8 + header.size() + 8);
  CHECK_THROWS_AS((void)f.info("nope"), InvalidArgument);
  fs::remove_all(dir);
}

TEST_CASE("bad safetensors fixtures give their error at the right byte") {
  expect_parse_error([] { (void)SafetensorsFile::open(bad("safetensors_truncated.safetensors")); },
                     139, "file truncated");
  expect_parse_error([] { (void)SafetensorsFile::open(bad("safetensors_short.safetensors")); }, 0,
                     "8-byte little-endian header length");
  expect_parse_error(
      [] { (void)SafetensorsFile::open(bad("safetensors_header_too_long.safetensors")); }, 0,
      "(file size - 8)");
  expect_parse_error(
      [] { (void)SafetensorsFile::open(bad("safetensors_header_over_limit.safetensors")); }, 0,
      "at most 100000000 bytes");
  const std::string overlap = bad("safetensors_overlap.safetensors");
  expect_parse_error([&] { (void)SafetensorsFile::open(overlap); }, key_pos(overlap, "b"),
                     "tensor 'b' to begin at data offset 16");
  const std::string gap = bad("safetensors_gap.safetensors");
  expect_parse_error([&] { (void)SafetensorsFile::open(gap); }, key_pos(gap, "b"), "(a gap)");
  const std::string trailing = bad("safetensors_trailing.safetensors");
  const auto trailing_size = static_cast<std::int64_t>(fs::file_size(trailing));
  expect_parse_error([&] { (void)SafetensorsFile::open(trailing); }, trailing_size - 4,
                     "found 4 trailing bytes");
  const std::string mismatch = bad("safetensors_size_mismatch.safetensors");
  expect_parse_error([&] { (void)SafetensorsFile::open(mismatch); }, key_pos(mismatch, "a"),
                     "= 24 bytes (F32 [2, 3]), found data_offsets spanning 16");
  const std::string overflow = bad("safetensors_shape_overflow.safetensors");
  expect_parse_error([&] { (void)SafetensorsFile::open(overflow); }, key_pos(overflow, "a"),
                     "overflow");
  expect_parse_error([] { (void)SafetensorsFile::open(bad("safetensors_not_object.safetensors")); },
                     8, "JSON object");
  const std::string meta = bad("safetensors_bad_metadata.safetensors");
  expect_parse_error([&] { (void)SafetensorsFile::open(meta); }, key_pos(meta, "__metadata__"),
                     "'step' to be a string");
  try {
    (void)SafetensorsFile::open(bad("safetensors_not_json.safetensors"));
    FAIL("not-JSON header accepted");
  } catch (const ParseError& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("invalid JSON") != std::string::npos);
    CHECK(e.line() >= 8 + 6);  // at or after the `n` of `nope`
    CHECK(e.line() <= 8 + 16);
  }
}

TEST_CASE("unknown dtypes are carried byte-exact but refused when read as numbers") {
  const std::string path = bad("safetensors_unknown_dtype.safetensors");
  const SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.info("q").dtype == Dtype::kUnknown);
  CHECK(f.info("q").dtype_text == "X7_E9");
  CHECK(f.read_matrix("a")(1, 1) == 4.0);
  expect_parse_error([&] { (void)f.read_matrix("q"); }, key_pos(path, "q"), "found 'X7_E9'");
  const fs::path dir = temp_dir("st_unknown");
  SafetensorsWriter w;
  w.add_from(f, "q");
  w.write(dir / "q.safetensors");
  const SafetensorsFile g = SafetensorsFile::open(dir / "q.safetensors");
  const auto a = f.raw_bytes("q"), b = g.raw_bytes("q");
  CHECK(g.info("q").dtype_text == "X7_E9");
  CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));
  fs::remove_all(dir);
}

TEST_CASE("NaN in a weight that is read is an error naming the tensor, or zeroed on request") {
  const std::string path = bad("safetensors_nan.safetensors");
  const SafetensorsFile f = SafetensorsFile::open(path);
  const auto data_start = static_cast<std::int64_t>(8 + f.header_bytes());
  expect_parse_error([&] { (void)f.read_matrix("a"); }, data_start + 8,
                     "finite values in tensor 'a', found nan at element [1, 0]");
  CHECK(f.read_vector("b")(0) == 5.0);  // other tensors still read
  std::int64_t zeroed = -1;
  const Eigen::MatrixXd a = f.read_matrix("a", {NonFinitePolicy::kZero}, &zeroed);
  CHECK(zeroed == 1);
  CHECK(a(1, 0) == 0.0);
  CHECK(a(1, 1) == 4.0);
}

TEST_CASE("encode_matrix refuses non-finite values and overflow") {
  CHECK_THROWS_AS((void)encode_matrix(Eigen::MatrixXd::Constant(1, 1, NAN), Dtype::kF32, "w"),
                  InvalidArgument);
  CHECK_THROWS_AS((void)encode_matrix(Eigen::MatrixXd::Constant(1, 1, 70000.0), Dtype::kF16, "w"),
                  InvalidArgument);
  CHECK_THROWS_AS((void)encode_matrix(Eigen::MatrixXd::Constant(1, 1, 1e39), Dtype::kF32, "w"),
                  InvalidArgument);
  CHECK_THROWS_AS((void)encode_matrix(Eigen::MatrixXd::Constant(1, 1, 1.0), Dtype::kI32, "w"),
                  InvalidArgument);
  CHECK(encode_matrix(Eigen::MatrixXd::Constant(1, 1, 3e38), Dtype::kBF16, "w").size() == 2);
}

TEST_CASE("a file truncated after open: reads are IoErrors naming file and tensor, never SIGBUS") {
  const fs::path dir = temp_dir("st_truncated");
  SafetensorsWriter w;
  Eigen::MatrixXd big(64, 1024);  // 256 KiB of F32: more than one page, less than a read chunk
  for (Eigen::Index i = 0; i < big.size(); ++i) big.data()[i] = static_cast<double>(i % 97) / 8.0;
  w.add_matrix("a.big", Dtype::kF32, big);
  w.add_matrix("b.small", Dtype::kF32, Eigen::MatrixXd::Constant(2, 3, 1.5));
  w.write(dir / "t.safetensors");
  const SafetensorsFile f = SafetensorsFile::open(dir / "t.safetensors");
  CHECK(f.read_matrix("a.big") == big);
  std::byte first[16];
  f.read_raw("a.big", 0, first);
  float v = 0.0f;
  std::memcpy(&v, first + 4, 4);
  CHECK(v == static_cast<float>(big(0, 1)));
  CHECK_THROWS_AS(f.read_raw("a.big", f.info("a.big").num_bytes() - 8, first), InvalidArgument);

  // Another process cuts the file in the middle of "a.big" (its data comes first).
  const TensorInfo& info = f.info("a.big");
  const std::uint64_t cut = info.file_offset + 100'000;
  fs::resize_file(dir / "t.safetensors", cut);
  const std::string want = (dir / "t.safetensors").string() +
                           ": cannot read tensor 'a.big' (bytes " +
                           std::to_string(info.file_offset) + " to " +
                           std::to_string(info.file_offset + info.num_bytes()) + "): the file is " +
                           std::to_string(cut) + " bytes now, " + std::to_string(f.file_bytes()) +
                           " when opened (truncated while in use?)";
  CHECK_THROWS_WITH_AS((void)f.read_matrix("a.big"), doctest::Contains(want.c_str()), IoError);
  CHECK_THROWS_AS((void)f.read_matrix_f32("a.big"), IoError);
  CHECK_THROWS_AS((void)f.raw_bytes("a.big"), IoError);
  CHECK_THROWS_AS((void)f.read_vector("b.small"), InvalidArgument);  // rank 2: refused first
  CHECK_THROWS_WITH_AS((void)f.read_matrix("b.small"), doctest::Contains("'b.small'"), IoError);
  f.read_raw("a.big", 0, first);  // the bytes before the cut are still there

  // Carrying a tensor of the cut file into a new one: IoError, and no file (or temporary) left.
  SafetensorsWriter copy;
  copy.add_from(f, "a.big");
  CHECK_THROWS_AS(copy.write(dir / "copy.safetensors"), IoError);
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);
  fs::remove_all(dir);
}

TEST_CASE("add_from keeps the source file open: the source object may go away before write()") {
  const fs::path dir = temp_dir("st_add_from");
  SafetensorsWriter w;
  w.add_matrix("x", Dtype::kBF16, Eigen::MatrixXd::Constant(3, 2, 0.5));
  w.write(dir / "a.safetensors");
  SafetensorsWriter copy;
  {
    const SafetensorsFile f = SafetensorsFile::open(dir / "a.safetensors");
    copy.add_from(f, "x", "y");
  }
  CHECK(copy.data_bytes() == 12);
  copy.write(dir / "b.safetensors");
  const SafetensorsFile g = SafetensorsFile::open(dir / "b.safetensors");
  CHECK(g.info("y").dtype == Dtype::kBF16);
  CHECK(g.read_matrix("y") == Eigen::MatrixXd::Constant(3, 2, 0.5));
  fs::remove_all(dir);
}
