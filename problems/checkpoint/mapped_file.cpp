// Bounds-checked pread() of read-only files and atomic file writes for the checkpoint code.
#include "problems/checkpoint/mapped_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "qprune/error.hpp"

namespace qprune::detail {
namespace {

std::string errno_text() { return std::strerror(errno); }

// A name unique within this process and unlikely to clash across processes.
std::filesystem::path temporary_beside(const std::filesystem::path& path) {
  static std::atomic<unsigned> counter{0};
  // Built with append: GCC 12 gives a false -Wrestrict on the equivalent chain of operator+.
  std::string name = ".";
  name.append(path.filename().string());
  name.append(".tmp.");
  name.append(std::to_string(::getpid()));
  name.append(".");
  name.append(std::to_string(counter++));
  return path.parent_path() / name;
}

}  // namespace

ReadOnlyFile::ReadOnlyFile(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw IoError(path.string() + ": cannot open for reading: " + errno_text());
  struct stat st {};
  const bool stat_ok = ::fstat(fd_, &st) == 0;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    const std::string why =
        stat_ok ? std::string("not a regular file") : "cannot stat: " + errno_text();
    ::close(fd_);
    throw IoError(path.string() + ": " + why);
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

ReadOnlyFile::~ReadOnlyFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ReadOnlyFile::read_exactly(std::uint64_t offset, std::span<std::byte> out,
                                const std::string& what) const {
  // Linux transfers at most 0x7ffff000 bytes per call; a short count may also just be partial.
  constexpr std::size_t kMaxCall = std::size_t{1} << 30;
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t want = std::min(out.size() - done, kMaxCall);
    const ::ssize_t got =
        ::pread(fd_, out.data() + done, want, static_cast<::off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw IoError(path_.string() + ": cannot read " + what + " (bytes " + std::to_string(offset) +
                    " to " + std::to_string(offset + out.size()) + "): " + errno_text());
    if (got == 0) {  // end of file inside the range: the file shrank since it was opened
      struct stat st {};
      const std::string now = ::fstat(fd_, &st) == 0
                                  ? std::to_string(static_cast<std::uint64_t>(st.st_size))
                                  : std::string("?");
      throw IoError(path_.string() + ": cannot read " + what + " (bytes " + std::to_string(offset) +
                    " to " + std::to_string(offset + out.size()) + "): the file is " + now +
                    " bytes now, " + std::to_string(size_) +
                    " when opened (truncated while in use?)");
    }
    done += static_cast<std::size_t>(got);
  }
}

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write) {
  const std::filesystem::path tmp = temporary_beside(path);
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw IoError(tmp.string() + ": cannot create: " + errno_text());
      write(out);
      out.flush();
      if (!out) throw IoError(tmp.string() + ": write failed: " + errno_text());
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw IoError(path.string() + ": cannot rename temporary file into place: " + ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

void copy_file_atomically(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) throw IoError(from.string() + ": cannot open for reading: " + errno_text());
  write_file_atomically(to, [&](std::ostream& out) {
    // Chunked copy: never the whole file in memory (and, unlike `out << rdbuf()`, fine for an
    // empty file).
    std::vector<char> buffer(1 << 20);
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      out.write(buffer.data(), in.gcount());
    }
    if (in.bad()) throw IoError(from.string() + ": read failed");
  });
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open for reading: " + errno_text());
  std::ostringstream s;
  if (in.peek() != std::ifstream::traits_type::eof()) s << in.rdbuf();
  if (in.bad()) throw IoError(path.string() + ": read failed");
  return s.str();
}

}  // namespace qprune::detail
