// Read-only memory maps (POSIX mmap) and atomic file writes for the checkpoint code.
#include "problems/checkpoint/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
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

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path.string() + ": cannot open for reading: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw IoError(path.string() + ": cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(path.string() + ": not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string why = errno_text();
      ::close(fd);
      throw IoError(path.string() + ": cannot map into memory: " + why);
    }
    data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the map stays valid after the descriptor is closed
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

void MappedFile::release(std::uint64_t offset, std::uint64_t length) const {
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (data_ == nullptr || page_size <= 0 || offset >= size_) return;
  const auto page = static_cast<std::uint64_t>(page_size);
  const std::uint64_t end = std::min<std::uint64_t>(offset + length, size_);
  // Whole pages only: a page shared with a neighbouring tensor or the header stays mapped.
  const std::uint64_t first = (offset + page - 1) / page * page;
  const std::uint64_t last = end / page * page;
  if (last <= first) return;
  ::madvise(const_cast<std::byte*>(data_) + first, static_cast<std::size_t>(last - first),
            MADV_DONTNEED);
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
