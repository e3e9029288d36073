// Private helpers of the checkpoint code: a read-only file read with bounds-checked pread(), and
// copying a file atomically (through qprune/atomic_output.hpp, the one atomic writer).
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "problems/checkpoint/mapped_file.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <span>
#include <string>

#include "core/input_file.hpp"
#include "qprune/atomic_output.hpp"

namespace qprune::detail {

/// A file opened read-only whose bytes are copied out with pread() on demand. Not a memory map on
/// purpose: a mapped file that another process truncates while it is open raises SIGBUS on the
/// next access to a page past the new end, killing the program mid-run; here every read checks the
/// number of bytes it got, so a file that shrank is an IoError naming the file and what was being
/// read, and the caller's error handling (e.g. writing the layers finished so far) still runs.
/// Reads never move a shared file position, so several threads may read at once. The page cache
/// keeps a file that is read again fast; nothing stays in this process's resident set.
class ReadOnlyFile {
 public:
  /// Opens `path` through InputFile (the one opening rule: a FIFO or device is refused before it
  /// could block) and records its size. Throws IoError.
  explicit ReadOnlyFile(const std::filesystem::path& path) : file_(path) {}
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return file_.path(); }
  /// The size when the file was opened, in bytes.
  [[nodiscard]] std::uint64_t size() const { return file_.size(); }
  /// Copies bytes [offset, offset + out.size()) into `out`. Throws IoError naming the file,
  /// `what` (e.g. "tensor 'x'") and the byte range when the file ends before the range does (it
  /// was truncated since it was opened) or a read fails.
  void read_exactly(std::uint64_t offset, std::span<std::byte> out, const std::string& what) const;

 private:
  InputFile file_;
};

using qprune::write_file_atomically;

/// Copies `from` to `to` byte for byte through a temporary file in `to`'s folder. Throws IoError.
void copy_file_atomically(const std::filesystem::path& from, const std::filesystem::path& to);

/// The whole content of a (small) text file. Throws IoError.
[[nodiscard]] std::string read_text_file(const std::filesystem::path& path);

}  // namespace qprune::detail
