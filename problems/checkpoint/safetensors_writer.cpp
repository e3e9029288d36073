// Writing safetensors files: `__metadata__` first, tensors sorted by name, the header padded with
// spaces to a multiple of 8 bytes (as the reference writer does), data in header order, all through
// a temporary file renamed into place. Tensors carried through from another file are copied from it
// at write() time.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "problems/checkpoint/mapped_file.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"
#include "qprune/interrupt.hpp"

namespace qprune {

void SafetensorsWriter::add_entry(const std::string& name, Entry entry) {
  if (name.empty() || name == "__metadata__")
    throw InvalidArgument("SafetensorsWriter: invalid tensor name '" + name + "'");
  for (std::int64_t d : entry.shape)
    if (d < 0) throw InvalidArgument("SafetensorsWriter: tensor '" + name + "' has a negative dim");
  const std::size_t size = dtype_size(dtype_from_name(entry.dtype_text));
  const std::uint64_t nbytes = entry.num_bytes();
  if (size > 0) {
    std::uint64_t elements = 1;
    for (std::int64_t d : entry.shape) elements *= static_cast<std::uint64_t>(d);
    if (elements * size != nbytes)
      throw InvalidArgument("SafetensorsWriter: tensor '" + name + "': shape needs " +
                            std::to_string(elements * size) + " bytes of " + entry.dtype_text +
                            ", got " + std::to_string(nbytes));
  }
  if (!entries_.emplace(name, std::move(entry)).second)
    throw InvalidArgument("SafetensorsWriter: tensor '" + name + "' added twice");
}

void SafetensorsWriter::add_matrix(const std::string& name, Dtype dtype,
                                   const Eigen::MatrixXd& values, std::vector<std::int64_t> shape) {
  if (shape.empty()) {
    shape.push_back(values.rows());
    if (values.cols() != 1) shape.push_back(values.cols());
  }
  Entry entry;
  entry.dtype_text = dtype_name(dtype);
  entry.shape = std::move(shape);
  entry.owned = encode_matrix(values, dtype, name);
  add_entry(name, std::move(entry));
}

void SafetensorsWriter::add_bytes(const std::string& name, const std::string& dtype_text,
                                  std::vector<std::int64_t> shape, std::vector<std::byte> bytes) {
  Entry entry;
  entry.dtype_text = dtype_text;
  entry.shape = std::move(shape);
  entry.owned = std::move(bytes);
  add_entry(name, std::move(entry));
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  if (key == "format" && value != "pt")
    throw InvalidArgument("SafetensorsWriter: __metadata__ 'format' is always \"pt\"");
  metadata_[key] = value;
}

std::uint64_t SafetensorsWriter::data_bytes() const {
  std::uint64_t total = 0;
  for (const auto& [name, e] : entries_) total += e.num_bytes();
  return total;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = metadata_;
  std::uint64_t offset = 0;
  for (const auto& [name, e] : entries_) {
    const std::uint64_t n = e.num_bytes();
    header[name] = {
        {"dtype", e.dtype_text}, {"shape", e.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data area 8-byte aligned
  detail::write_file_atomically(path, [&](std::ostream& out) {
    const auto n = static_cast<std::uint64_t>(text.size());
    char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (8 * i)) & 0xFFU);
    out.write(length, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    std::vector<std::byte> chunk;
    for (const auto& [name, e] : entries_) {
      throw_if_interrupted("writing a safetensors file");  // the temporary is then removed
      if (!e.source) {
        out.write(reinterpret_cast<const char*>(e.owned.data()),
                  static_cast<std::streamsize>(e.owned.size()));
        continue;
      }
      // Carried through: copied from the source file in bounded chunks (a whole embedding table
      // never sits in memory), each read checked, so a source truncated meanwhile is an IoError.
      chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(e.source_bytes, 4 << 20)));
      for (std::uint64_t at = 0; at < e.source_bytes; at += chunk.size()) {
        const auto count =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), e.source_bytes - at));
        e.source->read_exactly(e.source_offset + at, std::span(chunk).first(count),
                               "tensor '" + e.source_name + "'");
        out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(count));
      }
    }
  });
}

}  // namespace qprune
