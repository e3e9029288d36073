// Bounds-checked pread() of read-only files and atomic file copies for the checkpoint code.
#include "problems/checkpoint/mapped_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "qprune/error.hpp"

namespace qprune::detail {
namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

void ReadOnlyFile::read_exactly(std::uint64_t offset, std::span<std::byte> out,
                                const std::string& what) const {
  // Linux transfers at most 0x7ffff000 bytes per call; a short count may also just be partial.
  constexpr std::size_t kMaxCall = std::size_t{1} << 30;
  const int fd = file_.fd();
  const std::string range =
      " (bytes " + std::to_string(offset) + " to " + std::to_string(offset + out.size()) + ")";
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t want = std::min(out.size() - done, kMaxCall);
    const ::ssize_t got = ::pread(fd, out.data() + done, want, static_cast<::off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw IoError(path().string() + ": cannot read " + what + range + ": " + errno_text());
    if (got == 0) {  // end of file inside the range: the file shrank since it was opened
      struct stat st {};
      const std::string now = ::fstat(fd, &st) == 0
                                  ? std::to_string(static_cast<std::uint64_t>(st.st_size))
                                  : std::string("?");
      throw IoError(path().string() + ": cannot read " + what + range + ": the file is " + now +
                    " bytes now, " + std::to_string(size()) +
                    " when opened (truncated while in use?)");
    }
    done += static_cast<std::size_t>(got);
  }
}

void copy_file_atomically(const std::filesystem::path& from, const std::filesystem::path& to) {
  InputFile in(from);
  write_file_atomically(to, [&](std::ostream& out) {
    // Chunked copy: never the whole file in memory (and fine for an empty file).
    std::vector<char> buffer(1 << 20);
    std::uint64_t copied = 0;
    for (std::size_t got; (got = in.read_some(buffer.data(), buffer.size())) > 0; copied += got)
      out.write(buffer.data(), static_cast<std::streamsize>(got));
    // A source that shrank meanwhile must not become a shorter copy.
    if (copied != in.size())
      throw IoError(from.string() + ": read " + std::to_string(copied) + " bytes, the file had " +
                    std::to_string(in.size()) + " when opened (changed while in use?)");
  });
}

std::string read_text_file(const std::filesystem::path& path) { return read_input_file(path); }

}  // namespace qprune::detail
