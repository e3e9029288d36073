// Opening the files qprune reads, in one place: every reader (the mmap of safetensors files, the
// text of config/index/masks files, the QUBO and solution text formats, CSV tables) goes through
// InputFile, which opens with O_NONBLOCK so that a FIFO or a device never blocks the open, then
// refuses anything but a regular file ("PATH: not a regular file (a FIFO)"). read_input_text also
// inflates gzip input in bounded chunks with a cap on the inflated size, so a small "bomb" is
// refused with a ResourceError instead of filling memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace qprune::detail {

/// A regular file opened read-only. Throws IoError when it cannot be opened, or when it is not a
/// regular file (FIFO, socket, device, directory): such a file is never read, so nothing blocks.
class InputFile {
 public:
  explicit InputFile(const std::filesystem::path& path);
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  [[nodiscard]] int fd() const { return fd_; }
  /// Size from fstat at open time.
  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  /// Reads up to `n` bytes (retrying on EINTR); 0 at the end of the file. Throws IoError.
  [[nodiscard]] std::size_t read_some(char* buffer, std::size_t n);
  /// Everything from the current position to the end of the file. Throws IoError.
  [[nodiscard]] std::string read_rest();
  /// Appends everything from the current position to the end of the file to `out`, read straight
  /// into it (sized from fstat, so a file in the page cache costs one copy). Throws IoError.
  void append_rest(std::string& out);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// The whole content of a regular file, as bytes (no decompression). Throws IoError.
[[nodiscard]] std::string read_input_file(const std::filesystem::path& path);

/// The default cap on the inflated size of a gzip input of `compressed_bytes`: the smallest of
/// 4 GiB, half of MemAvailable (the text is parsed into a model that needs memory too) and 256x the
/// compressed size (at least 256 MiB: real text deflates 3-20x, bombs ~1000x), unless the
/// environment variable QPRUNE_MAX_INFLATED_BYTES gives a positive number of bytes.
[[nodiscard]] std::uint64_t default_inflated_limit_bytes(
    std::uint64_t compressed_bytes = std::uint64_t{1} << 62);

/// The whole content of a text input: gzip (recognised by its magic bytes 1f 8b, not by the name;
/// concatenated members are read like gzip -d does) is inflated in 64 KiB chunks. Throws
/// ResourceError naming the file and the limit as soon as the inflated text would exceed
/// `inflated_limit_bytes` (default: default_inflated_limit_bytes()); IoError when the file cannot
/// be read or the gzip stream is corrupt or truncated.
[[nodiscard]] std::string read_input_text(
    const std::filesystem::path& path,
    std::optional<std::uint64_t> inflated_limit_bytes = std::nullopt);

}  // namespace qprune::detail
