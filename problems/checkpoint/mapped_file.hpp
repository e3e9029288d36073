// Private helpers of the checkpoint code: a read-only file read with bounds-checked pread(), and
// writing a file through a temporary file in the target folder followed by a rename.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <span>
#include <string>

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
  /// Opens `path` (O_RDONLY | O_CLOEXEC) and records its size. Throws IoError if it cannot be
  /// opened or is not a regular file.
  explicit ReadOnlyFile(const std::filesystem::path& path);
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
  ~ReadOnlyFile();

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  /// The size when the file was opened, in bytes.
  [[nodiscard]] std::uint64_t size() const { return size_; }
  /// Copies bytes [offset, offset + out.size()) into `out`. Throws IoError naming the file,
  /// `what` (e.g. "tensor 'x'") and the byte range when the file ends before the range does (it
  /// was truncated since it was opened) or a read fails.
  void read_exactly(std::uint64_t offset, std::span<std::byte> out, const std::string& what) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// Creates `path` by calling `write` on a stream opened on a temporary file in the same folder,
/// then renaming it into place (the temporary is removed on failure). Throws IoError.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write);

/// Copies `from` to `to` byte for byte through a temporary file in `to`'s folder. Throws IoError.
void copy_file_atomically(const std::filesystem::path& from, const std::filesystem::path& to);

/// The whole content of a (small) text file. Throws IoError.
[[nodiscard]] std::string read_text_file(const std::filesystem::path& path);

}  // namespace qprune::detail
