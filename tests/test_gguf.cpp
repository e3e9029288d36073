// GgufWriter against the GGUF v3 layout read back field by field here (a reader written from
// ggml's docs/gguf.md, not from the writer): header counts, every metadata type, tensor infos,
// 32-byte alignment of the data area and of each tensor, the bytes themselves; and the refusals
// (duplicate key or tensor, wrong byte count: no file left behind). That llama.cpp loads the
// files qprune writes, and computes the same model, is tests/cli/llama_cpp.sh.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <iterator>

#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/gguf.hpp"
#include "test_files.hpp"

using namespace qprune;

namespace {

struct Reader {
  std::string bytes;
  std::size_t at = 0;
  template <class T>
  T get() {
    REQUIRE(at + sizeof(T) <= bytes.size());
    T v;
    std::memcpy(&v, bytes.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string str() {
    const auto n = get<std::uint64_t>();
    REQUIRE(at + n <= bytes.size());
    std::string s = bytes.substr(at, n);
    at += n;
    return s;
  }
};

}  // namespace

TEST_CASE("GgufWriter writes GGUF v3 that a reader following the spec reads back") {
  const std::filesystem::path dir = test::temp_dir("gguf");
  const auto path = dir / "m.gguf";
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.block_count", 7);
  w.add_int32("x.i32", -5);
  w.add_float32("x.f32", 0.25F);
  w.add_bool("x.bool", true);
  w.add_int32_array("x.widths", {3, 1, 4});
  w.add_float32_array("x.scores", {-1.5F, 2.0F});
  w.add_string_array("x.tokens", {"a", "", "Ġb"});
  Eigen::MatrixXd m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  w.add_tensor("t.weight", GgmlType::kF32, {3, 2}, [&] { return encode_matrix(m, Dtype::kF32); });
  Eigen::MatrixXd v(5, 1);
  v << 1, -2, 0.5, 3, 1e-3;
  w.add_tensor("t.bias", GgmlType::kBF16, {5}, [&] { return encode_matrix(v, Dtype::kBF16); });
  CHECK(w.data_bytes() == 24 + 10);
  std::vector<std::size_t> progress;
  w.write(path, [&](std::size_t done, std::size_t total) {
    CHECK(total == 2);
    progress.push_back(done);
  });
  CHECK(progress == std::vector<std::size_t>{1, 2});

  Reader r{test::slurp(path)};
  CHECK(r.bytes.substr(0, 4) == "GGUF");
  r.at = 4;
  CHECK(r.get<std::uint32_t>() == 3);
  CHECK(r.get<std::uint64_t>() == 2);  // tensors
  CHECK(r.get<std::uint64_t>() == 9);  // 8 keys + general.alignment
  CHECK(r.str() == "general.architecture");
  CHECK(r.get<std::uint32_t>() == 8);
  CHECK(r.str() == "llama");
  CHECK(r.str() == "llama.block_count");
  CHECK(r.get<std::uint32_t>() == 4);
  CHECK(r.get<std::uint32_t>() == 7);
  CHECK(r.str() == "x.i32");
  CHECK(r.get<std::uint32_t>() == 5);
  CHECK(r.get<std::int32_t>() == -5);
  CHECK(r.str() == "x.f32");
  CHECK(r.get<std::uint32_t>() == 6);
  CHECK(r.get<float>() == 0.25F);
  CHECK(r.str() == "x.bool");
  CHECK(r.get<std::uint32_t>() == 7);
  CHECK(r.get<std::uint8_t>() == 1);
  CHECK(r.str() == "x.widths");
  CHECK(r.get<std::uint32_t>() == 9);
  CHECK(r.get<std::uint32_t>() == 5);
  CHECK(r.get<std::uint64_t>() == 3);
  CHECK(r.get<std::int32_t>() == 3);
  CHECK(r.get<std::int32_t>() == 1);
  CHECK(r.get<std::int32_t>() == 4);
  CHECK(r.str() == "x.scores");
  CHECK(r.get<std::uint32_t>() == 9);
  CHECK(r.get<std::uint32_t>() == 6);
  CHECK(r.get<std::uint64_t>() == 2);
  CHECK(r.get<float>() == -1.5F);
  CHECK(r.get<float>() == 2.0F);
  CHECK(r.str() == "x.tokens");
  CHECK(r.get<std::uint32_t>() == 9);
  CHECK(r.get<std::uint32_t>() == 8);
  CHECK(r.get<std::uint64_t>() == 3);
  CHECK(r.str() == "a");
  CHECK(r.str().empty());
  CHECK(r.str() == "Ġb");
  CHECK(r.str() == "general.alignment");
  CHECK(r.get<std::uint32_t>() == 4);
  CHECK(r.get<std::uint32_t>() == 32);
  // Tensor infos: name, dims (ggml order), type, offset into the data area.
  CHECK(r.str() == "t.weight");
  CHECK(r.get<std::uint32_t>() == 2);
  CHECK(r.get<std::uint64_t>() == 3);
  CHECK(r.get<std::uint64_t>() == 2);
  CHECK(r.get<std::uint32_t>() == 0);  // F32
  CHECK(r.get<std::uint64_t>() == 0);
  CHECK(r.str() == "t.bias");
  CHECK(r.get<std::uint32_t>() == 1);
  CHECK(r.get<std::uint64_t>() == 5);
  CHECK(r.get<std::uint32_t>() == 30);  // BF16
  CHECK(r.get<std::uint64_t>() == 32);  // 24 bytes rounded up to the alignment
  const std::size_t data = (r.at + 31) / 32 * 32;
  for (std::size_t i = r.at; i < data; ++i) CHECK(r.bytes[i] == '\0');
  r.at = data;
  for (const float want : {1.F, 2.F, 3.F, 4.F, 5.F, 6.F}) CHECK(r.get<float>() == want);
  r.at = data + 32;
  for (const double want : {1.0, -2.0, 0.5, 3.0, 1e-3})
    CHECK(bf16_to_float(r.get<std::uint16_t>()) == doctest::Approx(want).epsilon(4e-3));
  CHECK(r.bytes.size() == data + 64);  // the last tensor padded to the alignment too
  std::filesystem::remove_all(dir);
}

TEST_CASE("GgufWriter refuses duplicates and short tensors, and leaves no file") {
  const std::filesystem::path dir = test::temp_dir("gguf_bad");
  GgufWriter w;
  w.add_uint32("k", 1);
  CHECK_THROWS_AS(w.add_uint32("k", 2), InvalidArgument);
  w.add_tensor("t", GgmlType::kF16, {4}, [] { return std::vector<std::byte>(6); });
  CHECK_THROWS_AS(w.add_tensor("t", GgmlType::kF16, {4}, {}), InvalidArgument);
  CHECK_THROWS_AS(w.add_tensor("u", GgmlType::kF16, {0}, {}), InvalidArgument);
  CHECK_THROWS_AS(w.add_tensor(std::string(64, 'x'), GgmlType::kF16, {1}, {}), InvalidArgument);
  const auto path = dir / "bad.gguf";
  CHECK_THROWS_WITH_AS(w.write(path), doctest::Contains("6 bytes produced, its shape needs 8"),
                       InvalidArgument);
  CHECK(std::distance(std::filesystem::directory_iterator(dir), {}) == 0);
  std::filesystem::remove_all(dir);
}
