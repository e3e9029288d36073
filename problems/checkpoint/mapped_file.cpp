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

#include "problems/common/input_file.hpp"
#include "qprune/error.hpp"

namespace qprune::detail {
namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
  const InputFile file(path);  // refuses a FIFO or device before it could block or be mapped
  size_ = static_cast<std::size_t>(file.size());
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    if (p == MAP_FAILED) throw IoError(path.string() + ": cannot map into memory: " + errno_text());
    data_ = static_cast<const std::byte*>(p);
  }
  // The map stays valid after the descriptor is closed (when `file` goes out of scope).
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
  InputFile in(from);
  write_file_atomically(to, [&](std::ostream& out) {
    // Chunked copy: never the whole file in memory (and fine for an empty file).
    std::vector<char> buffer(1 << 20);
    for (std::size_t got; (got = in.read_some(buffer.data(), buffer.size())) > 0;)
      out.write(buffer.data(), static_cast<std::streamsize>(got));
  });
}

std::string read_text_file(const std::filesystem::path& path) { return read_input_file(path); }

}  // namespace qprune::detail
