// Reading safetensors files, validated like the reference implementation (huggingface/safetensors,
// tensor.rs): header length limits, a JSON object header, per-tensor dtype/shape/offsets,
// overflow-checked byte sizes, and data offsets that tile the data area exactly. Every violation is
// a ParseError `path: byte N: expected ..., found ...`. Bytes are copied out of the file with
// bounds-checked reads (detail::ReadOnlyFile), never through a memory map: a shard truncated while
// a command runs is an IoError naming it, not a SIGBUS.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json_input.hpp"
#include "core/memory_check.hpp"
#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

using Json = nlohmann::json;

// Bytes of a tensor read from the file at a time (a multiple of every element size).
constexpr std::size_t kReadChunkBytes = std::size_t{4} << 20;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const char* json_type(const Json& j) { return j.type_name(); }

template <class T>
T load_le(const std::byte* p) {
  static_assert(std::endian::native == std::endian::little, "qprune assumes a little-endian host");
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double decode_element(const std::byte* p, Dtype dtype) {
  switch (dtype) {
    case Dtype::kF64:
      return load_le<double>(p);
    case Dtype::kF32:
      return load_le<float>(p);
    case Dtype::kF16:
      return f16_to_float(load_le<std::uint16_t>(p));
    case Dtype::kBF16:
      return bf16_to_float(load_le<std::uint16_t>(p));
    default:
      return 0.0;
  }
}

}  // namespace

std::int64_t TensorInfo::num_elements() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;  // validated against overflow when the file was opened
  return n;
}

struct SafetensorsFile::Impl {
  std::filesystem::path path;
  // Shared with SafetensorsWriter entries that carry a tensor through (add_from), so they stay
  // readable whatever happens to this object.
  std::shared_ptr<const detail::ReadOnlyFile> file;
  std::uint64_t header_bytes = 0;
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;

  [[noreturn]] void fail(std::uint64_t byte, const std::string& what) const {
    throw ParseError::at_byte(path.string(), static_cast<std::int64_t>(byte), what);
  }

  template <class Scalar>
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> read(const std::string& name,
                                                             const TensorReadOptions& options,
                                                             std::int64_t* num_non_finite) const;
};

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->file = std::make_shared<const detail::ReadOnlyFile>(path);
  const std::uint64_t file_size = impl->file->size();
  if (file_size < 8)
    impl->fail(0, "expected an 8-byte little-endian header length, found a file of " +
                      std::to_string(file_size) + " bytes");
  std::byte length[8];
  impl->file->read_exactly(0, length, "the header length");
  const auto n = load_le<std::uint64_t>(length);
  if (n > kMaxHeaderBytes)
    impl->fail(0, "expected a header length of at most " + std::to_string(kMaxHeaderBytes) +
                      " bytes, found " + std::to_string(n));
  if (n > file_size - 8)
    impl->fail(0, "expected a header length of at most " + std::to_string(file_size - 8) +
                      " bytes (file size - 8), found " + std::to_string(n));
  impl->header_bytes = n;
  std::string header_text(static_cast<std::size_t>(n), '\0');
  impl->file->read_exactly(
      8, std::as_writable_bytes(std::span<char>(header_text.data(), header_text.size())),
      "the header");
  const std::string_view text(header_text);

  // Parse, rejecting duplicate top-level keys (nlohmann would silently keep the last one). The
  // scan before the parse bounds the nesting and gives the offset of every top-level key, so each
  // tensor's position is known without searching the header for its name (once per key, which
  // was quadratic), and a duplicate is found at its second occurrence. Linear in the header.
  const detail::JsonSource source{path.string(), 8, false};
  std::vector<std::size_t> key_offsets;
  const Json header = detail::parse_json<Json>(text, source, &key_offsets);
  if (!header.is_object())
    impl->fail(8, std::string("expected a JSON object as header, found ") + json_type(header));

  // The parse succeeded, so each offset starts a valid JSON string: decode it (the raw text when
  // it has no escapes).
  std::map<std::string, std::uint64_t> offset_of;
  for (const std::size_t at : key_offsets) {
    std::size_t end = at + 1;
    bool escaped = false;
    while (end < text.size() && text[end] != '"') {
      if (text[end] == '\\') {
        escaped = true;
        ++end;
      }
      ++end;
    }
    const std::string_view token = text.substr(at, end + 1 - at);
    std::string key = escaped ? Json::parse(token).get<std::string>()
                              : std::string(token.substr(1, token.size() - 2));
    if (!offset_of.emplace(key, 8 + at).second)
      impl->fail(8 + at, "expected each tensor name once, found '" + key + "' twice");
  }
  auto key_offset = [&](const std::string& key) -> std::uint64_t {
    const auto it = offset_of.find(key);
    return it == offset_of.end() ? 8 : it->second;
  };

  const std::uint64_t data_start = 8 + n;
  const std::uint64_t data_size = file_size - data_start;
  std::vector<TensorInfo> ordered;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const Json& value = it.value();
    const std::uint64_t at = key_offset(key);
    if (key == "__metadata__") {
      if (!value.is_object())
        impl->fail(at, std::string("expected __metadata__ to be an object of strings, found ") +
                           json_type(value));
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string())
          impl->fail(at, "expected __metadata__ value of '" + m.key() + "' to be a string, found " +
                             json_type(m.value()));
        impl->metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!value.is_object())
      impl->fail(at, "expected " + where + " to be an object {dtype, shape, data_offsets}, found " +
                         json_type(value));
    TensorInfo info;
    info.name = key;
    info.header_offset = at;
    const auto dtype_it = value.find("dtype");
    if (dtype_it == value.end() || !dtype_it->is_string())
      impl->fail(at, "expected " + where + " to have a string 'dtype', found " +
                         (dtype_it == value.end() ? "none" : json_type(*dtype_it)));
    info.dtype_text = dtype_it->get<std::string>();
    info.dtype = dtype_from_name(info.dtype_text);

    const auto shape_it = value.find("shape");
    if (shape_it == value.end() || !shape_it->is_array())
      impl->fail(at, "expected " + where + " to have an array 'shape', found " +
                         (shape_it == value.end() ? "none" : json_type(*shape_it)));
    std::uint64_t elements = 1;
    bool overflow = false;
    for (const Json& d : *shape_it) {
      if (!d.is_number_unsigned())
        impl->fail(at, "expected " + where + " shape entries to be non-negative integers, found " +
                           detail::describe_json(d));
      const auto dim = d.get<std::uint64_t>();
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        impl->fail(at, "expected " + where + " shape entries below 2^63, found " +
                           detail::describe_json(d));
      info.shape.push_back(static_cast<std::int64_t>(dim));
      overflow = overflow || __builtin_mul_overflow(elements, dim, &elements);
    }

    const auto off_it = value.find("data_offsets");
    if (off_it == value.end() || !off_it->is_array() || off_it->size() != 2 ||
        !(*off_it)[0].is_number_unsigned() || !(*off_it)[1].is_number_unsigned())
      impl->fail(at, "expected " + where + " to have 'data_offsets' [begin, end] of non-negative " +
                         "integers, found " +
                         (off_it == value.end() ? "none" : detail::describe_json(*off_it)));
    info.data_begin = (*off_it)[0].get<std::uint64_t>();
    info.data_end = (*off_it)[1].get<std::uint64_t>();
    if (info.data_end < info.data_begin)
      impl->fail(at, "expected " + where + " data_offsets begin <= end, found [" +
                         std::to_string(info.data_begin) + ", " + std::to_string(info.data_end) +
                         "]");
    const std::size_t element_size = dtype_size(info.dtype);
    if (element_size > 0) {
      std::uint64_t nbytes = 0;
      overflow = overflow || __builtin_mul_overflow(elements, element_size, &nbytes);
      if (overflow)
        impl->fail(at, "expected " + where + " shape " + shape_text(info.shape) + " x " +
                           info.dtype_text + " to fit in 64 bits, found an overflow");
      if (nbytes != info.num_bytes())
        impl->fail(at, "expected " + where +
                           " to span prod(shape) x element size = " + std::to_string(elements) +
                           " x " + std::to_string(element_size) + " = " + std::to_string(nbytes) +
                           " bytes (" + info.dtype_text + " " + shape_text(info.shape) +
                           "), found data_offsets spanning " + std::to_string(info.num_bytes()));
    }
    info.file_offset = data_start + info.data_begin;
    ordered.push_back(std::move(info));
  }

  // The offsets must tile [0, data_size) exactly, in order of begin offset.
  std::sort(ordered.begin(), ordered.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.data_begin, a.data_end, a.name) < std::tie(b.data_begin, b.data_end, b.name);
  });
  std::uint64_t expected_begin = 0;
  std::string previous = "the start of the data area";
  for (const TensorInfo& info : ordered) {
    if (info.data_begin != expected_begin) {
      const bool overlap = info.data_begin < expected_begin;
      impl->fail(info.header_offset,
                 "expected tensor '" + info.name + "' to begin at data offset " +
                     std::to_string(expected_begin) + " (right after " + previous + "), found " +
                     std::to_string(info.data_begin) + (overlap ? " (overlapping)" : " (a gap)"));
    }
    expected_begin = info.data_end;
    previous = "tensor '" + info.name + "'";
  }
  if (expected_begin > data_size)
    impl->fail(file_size, "expected " + std::to_string(expected_begin) +
                              " bytes of tensor data (up to the end of " + previous +
                              "), found a data area of " + std::to_string(data_size) +
                              " bytes (file truncated?)");
  if (expected_begin < data_size)
    impl->fail(data_start + expected_begin,
               "expected the end of the file after " + previous + ", found " +
                   std::to_string(data_size - expected_begin) + " trailing bytes");
  for (TensorInfo& info : ordered) {
    const std::string name = info.name;
    impl->tensors.emplace(name, std::move(info));
  }
  return SafetensorsFile(std::move(impl));
}

const std::filesystem::path& SafetensorsFile::path() const { return impl_->path; }

std::vector<std::string> SafetensorsFile::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(impl_->tensors.size());
  for (const auto& [name, info] : impl_->tensors) names.push_back(name);
  return names;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return impl_->tensors.count(name) != 0;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = impl_->tensors.find(name);
  if (it == impl_->tensors.end())
    throw InvalidArgument(impl_->path.string() + ": no tensor named '" + name + "'");
  return it->second;
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return impl_->metadata;
}

std::uint64_t SafetensorsFile::header_bytes() const { return impl_->header_bytes; }
std::uint64_t SafetensorsFile::file_bytes() const { return impl_->file->size(); }

void SafetensorsFile::read_raw(const std::string& name, std::uint64_t offset,
                               std::span<std::byte> out) const {
  const TensorInfo& t = info(name);
  if (offset > t.num_bytes() || out.size() > t.num_bytes() - offset)
    throw InvalidArgument(impl_->path.string() + ": bytes " + std::to_string(offset) + " to " +
                          std::to_string(offset + out.size()) + " of tensor '" + name +
                          "' requested; it has " + std::to_string(t.num_bytes()));
  impl_->file->read_exactly(t.file_offset + offset, out, "tensor '" + name + "'");
}

std::vector<std::byte> SafetensorsFile::raw_bytes(const std::string& name) const {
  std::vector<std::byte> bytes(static_cast<std::size_t>(info(name).num_bytes()));
  read_raw(name, 0, bytes);
  return bytes;
}

template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> SafetensorsFile::Impl::read(
    const std::string& name, const TensorReadOptions& options, std::int64_t* num_non_finite) const {
  const auto it = tensors.find(name);
  if (it == tensors.end())
    throw InvalidArgument(path.string() + ": no tensor named '" + name + "'");
  const TensorInfo& t = it->second;
  if (t.dtype == Dtype::kUnknown)
    fail(t.header_offset, "expected tensor '" + name +
                              "' to have a dtype of known size (F64, F32, " +
                              "F16, BF16, I64, I32, I16, I8, U8, BOOL, U64, U32, U16, F8_E4M3, " +
                              "F8_E5M2), found '" + t.dtype_text + "'");
  if (!is_float_dtype(t.dtype))
    throw InvalidArgument(path.string() + ": tensor '" + name + "' has dtype " + t.dtype_text +
                          "; only F64, F32, F16 and BF16 tensors can be read as numbers");
  if (t.shape.size() > 2)
    throw InvalidArgument(path.string() + ": tensor '" + name + "' has rank " +
                          std::to_string(t.shape.size()) + " " + shape_text(t.shape) +
                          "; only rank 0, 1 and 2 tensors can be read as a matrix");
  const Eigen::Index rows = t.shape.empty() ? 1 : t.shape[0];
  const Eigen::Index cols = t.shape.size() == 2 ? t.shape[1] : 1;
  // Fill a row-major matrix in file order, then let Eigen transpose the storage on return.
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m(rows, cols);
  const std::size_t size = dtype_size(t.dtype);
  Scalar* out = m.data();
  std::int64_t zeroed = 0;
  const Eigen::Index count = rows * cols;
  // The bytes come through a bounded buffer (a whole number of elements), decoded as they arrive:
  // no second full-size copy of the tensor, and a short read is an IoError, not a crash.
  const auto per_chunk = static_cast<Eigen::Index>(kReadChunkBytes / size);
  std::vector<std::byte> buffer(static_cast<std::size_t>(std::min(count, per_chunk)) * size);
  Eigen::Index chunk_begin = 0, chunk_end = 0;
  for (Eigen::Index k = 0; k < count; ++k) {
    if (k == chunk_end) {
      chunk_begin = k;
      chunk_end = std::min(count, k + per_chunk);
      file->read_exactly(t.file_offset + static_cast<std::uint64_t>(k) * size,
                         std::span(buffer).first(static_cast<std::size_t>(chunk_end - k) * size),
                         "tensor '" + name + "'");
    }
    const double v =
        decode_element(buffer.data() + static_cast<std::size_t>(k - chunk_begin) * size, t.dtype);
    // Checked after the cast, so an F64 value beyond float range is caught by read_matrix_f32.
    const auto s = static_cast<Scalar>(v);
    if (!std::isfinite(s)) {
      if (options.non_finite == NonFinitePolicy::kError) {
        std::ostringstream what;
        what << "expected finite values in tensor '" << name << "', found " << v << " at element ["
             << k / cols << ", " << k % cols << "]";
        fail(t.file_offset + static_cast<std::uint64_t>(k) * size, what.str());
      }
      ++zeroed;
      out[k] = Scalar(0);
      continue;
    }
    out[k] = s;
  }
  if (num_non_finite != nullptr) *num_non_finite = zeroed;
  return m;
}

namespace {

// What a tensor read allocates, for out-of-memory messages: "the F64 buffer of tensor 'NAME'
// [shape] of FILE".
std::string tensor_buffer(const std::filesystem::path& path, const TensorInfo& t, int bytes) {
  return std::string("the ") + (bytes == 8 ? "F64" : "F32") + " buffer of tensor '" + t.name +
         "' " + shape_text(t.shape) + " of " + path.string();
}
double tensor_bytes(const TensorInfo& t, int bytes) {
  double n = bytes;
  for (const std::int64_t d : t.shape) n *= static_cast<double>(d);
  return n;
}

}  // namespace

// Here rather than in safetensors_writer.cpp: it shares the file held by SafetensorsFile::Impl.
void SafetensorsWriter::add_from(const SafetensorsFile& source, const std::string& source_name,
                                 const std::string& name) {
  const TensorInfo& info = source.info(source_name);
  Entry entry;
  entry.dtype_text = info.dtype_text;
  entry.shape = info.shape;
  entry.source = source.impl_->file;
  entry.source_name = source_name;
  entry.source_offset = info.file_offset;
  entry.source_bytes = info.num_bytes();
  add_entry(name.empty() ? source_name : name, std::move(entry));
}

Eigen::MatrixXd SafetensorsFile::read_matrix(const std::string& name,
                                             const TensorReadOptions& options,
                                             std::int64_t* num_non_finite) const {
  return detail::allocation_context(
      tensor_buffer(impl_->path, info(name), 8), tensor_bytes(info(name), 8),
      [&] { return impl_->read<double>(name, options, num_non_finite); });
}

Eigen::MatrixXf SafetensorsFile::read_matrix_f32(const std::string& name,
                                                 const TensorReadOptions& options,
                                                 std::int64_t* num_non_finite) const {
  return detail::allocation_context(
      tensor_buffer(impl_->path, info(name), 4), tensor_bytes(info(name), 4),
      [&] { return impl_->read<float>(name, options, num_non_finite); });
}

Eigen::VectorXd SafetensorsFile::read_vector(const std::string& name,
                                             const TensorReadOptions& options,
                                             std::int64_t* num_non_finite) const {
  const TensorInfo& t = info(name);
  if (t.shape.size() != 1)
    throw InvalidArgument(impl_->path.string() + ": tensor '" + name + "' has shape " +
                          shape_text(t.shape) + "; read_vector needs rank 1");
  return detail::allocation_context(tensor_buffer(impl_->path, t, 8), tensor_bytes(t, 8), [&] {
    return Eigen::VectorXd(impl_->read<double>(name, options, num_non_finite).col(0));
  });
}

}  // namespace qprune
