// GGUF (version 3), the model file of llama.cpp and the tools built on it: a header of typed
// key/value metadata and tensor descriptions, then the tensor data, each tensor aligned to
// `general.alignment` (32) bytes. Reference: ggml's docs/gguf.md and gguf.cpp (ggml-org/ggml).
//
// GgufWriter collects metadata and tensors, then writes the file in one pass through a temporary
// file renamed into place (include/qprune/atomic_output.hpp). A tensor's bytes come from a callback
// called at write time, one tensor at a time in the order added, so a model is never held in memory
// whole. Dimensions are in ggml's order: dims[0] is the contiguous one, so a PyTorch weight
// [out, in] (row-major) is dims {in, out} with the same bytes.
//
// Example:
//   GgufWriter gguf;
//   gguf.add_string("general.architecture", "llama");
//   gguf.add_uint32("llama.block_count", 2);
//   gguf.add_tensor("token_embd.weight", GgmlType::kF32, {128, 256},
//                   [&] { return encode_matrix(embedding, Dtype::kF32); });
//   gguf.write("model.gguf");
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error "include/qprune/gguf.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace qprune {

/// The ggml tensor types qprune writes (values as in ggml.h's enum ggml_type).
enum class GgmlType : std::uint32_t { kF32 = 0, kF16 = 1, kBF16 = 30 };

/// "F32", "F16" or "BF16".
[[nodiscard]] const char* ggml_type_name(GgmlType type);
/// Bytes per element: 4 or 2.
[[nodiscard]] std::size_t ggml_type_size(GgmlType type);

class GgufWriter {
 public:
  /// Data alignment of the file (GGUF's default; written as general.alignment).
  static constexpr std::uint32_t kAlignment = 32;

  /// Produces a tensor's bytes (little endian, dims[0] contiguous) when write() reaches it.
  using TensorBytes = std::function<std::vector<std::byte>()>;

  // Metadata, written in the order added. A key added twice is InvalidArgument.
  void add_uint32(const std::string& key, std::uint32_t value);
  void add_int32(const std::string& key, std::int32_t value);
  void add_float32(const std::string& key, float value);
  void add_bool(const std::string& key, bool value);
  void add_string(const std::string& key, const std::string& value);
  void add_int32_array(const std::string& key, const std::vector<std::int32_t>& values);
  void add_float32_array(const std::string& key, const std::vector<float>& values);
  void add_string_array(const std::string& key, const std::vector<std::string>& values);

  /// A tensor of `dims` (ggml order, 1 to 4 dims, each >= 1) whose bytes `bytes` returns at write
  /// time; write() checks their count (prod(dims) * element size). A name added twice, or longer
  /// than 64 bytes (GGML_MAX_NAME), is InvalidArgument.
  void add_tensor(const std::string& name, GgmlType type, std::vector<std::int64_t> dims,
                  TensorBytes bytes);

  [[nodiscard]] std::size_t num_tensors() const { return tensors_.size(); }
  /// Sum of the tensors' data bytes (without alignment padding).
  [[nodiscard]] std::uint64_t data_bytes() const;

  /// Writes the file through a temporary beside `path`, renamed into place at the end (a failure
  /// or Ctrl-C, polled between tensors, leaves `path` as it was). `progress(done, total)` is
  /// called after each tensor, counting tensors. Throws IoError, InvalidArgument (a callback's byte
  /// count differs from the tensor's size), or whatever a callback throws.
  void write(const std::filesystem::path& path,
             const std::function<void(std::size_t, std::size_t)>& progress = {}) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type = GgmlType::kF32;
    std::vector<std::int64_t> dims;
    TensorBytes bytes;
    [[nodiscard]] std::uint64_t num_bytes() const;
  };
  void add_key(const std::string& key, std::uint32_t type, const std::string& payload);
  std::vector<std::string> keys_;
  std::string metadata_;  // the encoded key/value pairs, in order
  std::vector<Tensor> tensors_;
};

}  // namespace qprune
