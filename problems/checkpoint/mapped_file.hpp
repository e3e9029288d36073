// Private helpers of the checkpoint code: a read-only memory map of a whole file, and copying a
// file atomically (through qprune/atomic_output.hpp, the one atomic writer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <span>
#include <string>

#include "qprune/atomic_output.hpp"

namespace qprune::detail {

/// A file mapped read-only (PROT_READ, MAP_PRIVATE); pages are only read when touched. An empty
/// file maps to an empty span. Throws IoError if the file cannot be opened or mapped.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  [[nodiscard]] std::span<const std::byte> bytes() const { return {data_, size_}; }
  [[nodiscard]] std::uint64_t size() const { return size_; }
  /// Drops this process's pages of the whole pages inside [offset, offset + length) (madvise
  /// MADV_DONTNEED; a hint, errors ignored). The content is unchanged: the map is read-only, so a
  /// later access reads the file (or the page cache) again. Called after a tensor has been copied
  /// out, so the resident set of a layer-by-layer reader does not grow by every tensor it read.
  void release(std::uint64_t offset, std::uint64_t length) const;

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

using qprune::write_file_atomically;

/// Copies `from` to `to` byte for byte through a temporary file in `to`'s folder. Throws IoError.
void copy_file_atomically(const std::filesystem::path& from, const std::filesystem::path& to);

/// The whole content of a (small) text file. Throws IoError.
[[nodiscard]] std::string read_text_file(const std::filesystem::path& path);

}  // namespace qprune::detail
