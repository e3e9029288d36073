// GGUF version 3 writer: header (magic, version, tensor and key counts), key/value pairs, tensor
// infos (name, dims, type, offset into the data area), padding to the alignment, tensor data each
// padded to the alignment. Every number is little endian; a string is a uint64 length and its
// bytes.
#include <algorithm>
#include <bit>
#include <cstring>

#include "qprune/atomic_output.hpp"
#include "qprune/error.hpp"
#include "qprune/gguf.hpp"
#include "qprune/interrupt.hpp"

namespace qprune {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF is written little endian");

// gguf_type values (ggml's gguf.h).
constexpr std::uint32_t kUint32 = 4;
constexpr std::uint32_t kInt32 = 5;
constexpr std::uint32_t kFloat32 = 6;
constexpr std::uint32_t kBool = 7;
constexpr std::uint32_t kString = 8;
constexpr std::uint32_t kArray = 9;

template <class T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}
void put_string(std::string& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  out += s;
}
std::uint64_t aligned(std::uint64_t n) {
  return (n + GgufWriter::kAlignment - 1) / GgufWriter::kAlignment * GgufWriter::kAlignment;
}

}  // namespace

const char* ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return "F32";
    case GgmlType::kF16:
      return "F16";
    case GgmlType::kBF16:
      return "BF16";
  }
  return "?";
}

std::size_t ggml_type_size(GgmlType type) { return type == GgmlType::kF32 ? 4 : 2; }

std::uint64_t GgufWriter::Tensor::num_bytes() const {
  std::uint64_t n = ggml_type_size(type);
  for (const std::int64_t d : dims) n *= static_cast<std::uint64_t>(d);
  return n;
}

void GgufWriter::add_key(const std::string& key, std::uint32_t type, const std::string& payload) {
  if (key.empty() || std::find(keys_.begin(), keys_.end(), key) != keys_.end())
    throw InvalidArgument("GGUF metadata key '" + key + "' is empty or added twice");
  keys_.push_back(key);
  put_string(metadata_, key);
  put<std::uint32_t>(metadata_, type);
  metadata_ += payload;
}

void GgufWriter::add_uint32(const std::string& key, std::uint32_t value) {
  std::string p;
  put(p, value);
  add_key(key, kUint32, p);
}
void GgufWriter::add_int32(const std::string& key, std::int32_t value) {
  std::string p;
  put(p, value);
  add_key(key, kInt32, p);
}
void GgufWriter::add_float32(const std::string& key, float value) {
  std::string p;
  put(p, value);
  add_key(key, kFloat32, p);
}
void GgufWriter::add_bool(const std::string& key, bool value) {
  std::string p;
  put<std::uint8_t>(p, value ? 1 : 0);
  add_key(key, kBool, p);
}
void GgufWriter::add_string(const std::string& key, const std::string& value) {
  std::string p;
  put_string(p, value);
  add_key(key, kString, p);
}
void GgufWriter::add_int32_array(const std::string& key, const std::vector<std::int32_t>& values) {
  std::string p;
  put(p, kInt32);
  put<std::uint64_t>(p, values.size());
  for (const std::int32_t v : values) put(p, v);
  add_key(key, kArray, p);
}
void GgufWriter::add_float32_array(const std::string& key, const std::vector<float>& values) {
  std::string p;
  put(p, kFloat32);
  put<std::uint64_t>(p, values.size());
  for (const float v : values) put(p, v);
  add_key(key, kArray, p);
}
void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& values) {
  std::string p;
  put(p, kString);
  put<std::uint64_t>(p, values.size());
  for (const std::string& v : values) put_string(p, v);
  add_key(key, kArray, p);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<std::int64_t> dims,
                            TensorBytes bytes) {
  constexpr std::size_t kMaxName = 63;  // GGML_MAX_NAME (64) including the terminating zero
  if (name.empty() || name.size() > kMaxName)
    throw InvalidArgument("GGUF tensor name '" + name + "' is empty or longer than 63 bytes");
  for (const Tensor& t : tensors_)
    if (t.name == name) throw InvalidArgument("GGUF tensor '" + name + "' added twice");
  if (dims.empty() || dims.size() > 4 ||
      std::any_of(dims.begin(), dims.end(), [](std::int64_t d) { return d < 1; }))
    throw InvalidArgument("GGUF tensor '" + name + "': 1 to 4 dimensions, each >= 1");
  tensors_.push_back({name, type, std::move(dims), std::move(bytes)});
}

std::uint64_t GgufWriter::data_bytes() const {
  std::uint64_t total = 0;
  for (const Tensor& t : tensors_) total += t.num_bytes();
  return total;
}

void GgufWriter::write(const std::filesystem::path& path,
                       const std::function<void(std::size_t, std::size_t)>& progress) const {
  std::string header;
  header += "GGUF";
  put<std::uint32_t>(header, 3);
  put<std::uint64_t>(header, tensors_.size());
  put<std::uint64_t>(header, keys_.size() + 1);
  header += metadata_;
  put_string(header, "general.alignment");
  put<std::uint32_t>(header, kUint32);
  put<std::uint32_t>(header, kAlignment);
  std::uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(header, t.name);
    put<std::uint32_t>(header, static_cast<std::uint32_t>(t.dims.size()));
    for (const std::int64_t d : t.dims) put<std::uint64_t>(header, static_cast<std::uint64_t>(d));
    put<std::uint32_t>(header, static_cast<std::uint32_t>(t.type));
    put<std::uint64_t>(header, offset);
    offset = aligned(offset + t.num_bytes());
  }
  header.append(aligned(header.size()) - header.size(), '\0');
  AtomicFile file(path);
  file.write(header);
  const std::string zeros(kAlignment, '\0');
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    throw_if_interrupted("writing a GGUF file");  // the temporary is then removed
    const Tensor& t = tensors_[i];
    const std::vector<std::byte> data = t.bytes();
    if (data.size() != t.num_bytes())
      throw InvalidArgument("GGUF tensor '" + t.name + "': " + std::to_string(data.size()) +
                            " bytes produced, its shape needs " + std::to_string(t.num_bytes()));
    file.write({reinterpret_cast<const char*>(data.data()), data.size()});
    file.write(std::string_view(zeros).substr(0, aligned(data.size()) - data.size()));
    if (progress) progress(i + 1, tensors_.size());
  }
  file.commit();
}

}  // namespace qprune
