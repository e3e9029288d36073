// InputFile and the whole-file readers on top of it (input_file.hpp): a non-blocking open checked
// with fstat before a byte is read, and gzip inflated chunk by chunk against a size cap.
#include "core/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/huge_pages.hpp"
#include "core/memory_check.hpp"
#include "qprune/error.hpp"

namespace qprune::detail {
namespace {

const char* file_type_name(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

constexpr std::size_t kChunkBytes = std::size_t{1} << 16;

}  // namespace

InputFile::InputFile(const std::filesystem::path& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever. For a regular
  // file the flag changes nothing, and any other kind of file is refused below before a read.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd_ < 0) throw IoError(path.string() + ": cannot open for reading: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    throw IoError(path.string() + ": cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw IoError(path.string() + ": not a regular file (" + file_type_name(st.st_mode) + ")");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t InputFile::read_some(char* buffer, std::size_t n) {
  for (;;) {
    const ssize_t got = ::read(fd_, buffer, n);
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno == EINTR) continue;
    throw IoError(path_.string() + ": read failed: " + std::strerror(errno));
  }
}

std::string InputFile::read_rest() {
  std::string out;
  append_rest(out);
  return out;
}

void InputFile::append_rest(std::string& out) {
  // The size is a hint only (the file may grow or shrink while it is read): room for all of it
  // plus one byte, so that the read that finds the end needs no growth; doubling past it.
  std::size_t have = out.size();
  const auto hint =
      static_cast<std::size_t>(std::min<std::uint64_t>(size_, std::uint64_t{1} << 30));
  const std::size_t want = std::max(have + kChunkBytes, hint + 1);
  if (want > out.capacity()) {
    out.reserve(want);
    advise_huge_pages(out.data(), out.capacity());
  }
  out.resize(want);
  for (;;) {
    if (have == out.size()) out.resize(2 * out.size());
    const std::size_t got = read_some(out.data() + have, out.size() - have);
    if (got == 0) break;
    have += got;
  }
  out.resize(have);
}

std::string read_input_file(const std::filesystem::path& path) {
  InputFile file(path);
  return file.read_rest();
}

std::uint64_t default_inflated_limit_bytes(std::uint64_t compressed_bytes) {
  if (const char* env = std::getenv("QPRUNE_MAX_INFLATED_BYTES"); env != nullptr && *env != 0) {
    std::uint64_t v = 0;
    const char* end = env + std::strlen(env);
    const auto [ptr, ec] = std::from_chars(env, end, v);
    if (ec != std::errc() || ptr != end || v == 0)
      throw InvalidArgument(std::string("QPRUNE_MAX_INFLATED_BYTES must be a positive number of ") +
                            "bytes, found '" + env + "'");
    return v;
  }
  std::uint64_t limit = std::uint64_t{4} << 30;
  // Text QUBO files deflate 3-20x; deflate's own ceiling is about 1032x, which only a bomb (long
  // runs of one byte) approaches. 256x the compressed size, at least 256 MiB, passes every real
  // file and refuses a 1 MB bomb before it costs a gigabyte.
  constexpr std::uint64_t kMaxRatio = 256;
  constexpr std::uint64_t kFloor = std::uint64_t{256} << 20;
  if (compressed_bytes < limit / kMaxRatio) limit = std::max(kFloor, compressed_bytes * kMaxRatio);
  const std::uint64_t available = available_memory_bytes();
  if (available > 0) limit = std::min(limit, available / 2);
  return limit;
}

std::string read_input_text(const std::filesystem::path& path,
                            std::optional<std::uint64_t> inflated_limit_bytes) {
  InputFile file(path);
  std::vector<char> in(kChunkBytes);
  std::size_t have = file.read_some(in.data(), in.size());
  const bool gzip = have >= 2 && static_cast<unsigned char>(in[0]) == 0x1f &&
                    static_cast<unsigned char>(in[1]) == 0x8b;
  if (!gzip) {
    std::string out(in.data(), have);
    if (have > 0) file.append_rest(out);
    return out;
  }

  const std::uint64_t limit =
      inflated_limit_bytes ? *inflated_limit_bytes : default_inflated_limit_bytes(file.size());
  const std::string name = path.string();
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)  // 16 +: gzip wrapper only
    throw ResourceError(name + ": cannot start gzip decompression (zlib out of memory)");
  struct Guard {
    z_stream* zs;
    ~Guard() { inflateEnd(zs); }
  } guard{&zs};
  std::string out;
  std::vector<char> chunk(kChunkBytes);
  bool ended = false;     // the last member reached its end (Z_STREAM_END)
  bool trailing = false;  // bytes after a complete member that start no new member: ignored
  while (have > 0 && !trailing) {
    zs.next_in = reinterpret_cast<Bytef*>(in.data());
    zs.avail_in = static_cast<uInt>(have);
    for (;;) {
      if (ended) {
        if (zs.avail_in == 0) break;
        // Another member follows (as `gzip -d` reads `cat a.gz b.gz`); anything else after a
        // complete member is ignored, as gzread does.
        if (zs.next_in[0] != 0x1f) {
          trailing = true;
          break;
        }
        inflateReset(&zs);
        ended = false;
      }
      zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
      zs.avail_out = static_cast<uInt>(chunk.size());
      const int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        throw IoError("cannot decompress " + name + ": " +
                      (zs.msg != nullptr
                           ? std::string(zs.msg)
                           : "corrupt gzip data (zlib error " + std::to_string(rc) + ")"));
      const std::size_t produced = chunk.size() - zs.avail_out;
      if (out.size() + produced > limit)
        throw ResourceError(name + ": gzip data inflates to more than " + std::to_string(limit) +
                            " bytes, the limit for compressed input (set the environment " +
                            "variable QPRUNE_MAX_INFLATED_BYTES to raise it)");
      // Grow by doubling, but never past the limit: the text may use up to `limit` bytes, not
      // the 2x that a plain append's doubling would reserve on the way there.
      if (out.size() + produced > out.capacity())
        out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(
            limit, std::max<std::uint64_t>(2 * out.capacity(), out.size() + produced))));
      out.append(chunk.data(), produced);
      if (rc == Z_STREAM_END) {
        ended = true;
        continue;
      }
      // Done with this input chunk once it is consumed and inflate had room to flush everything.
      if (zs.avail_in == 0 && zs.avail_out != 0) break;
      if (rc == Z_BUF_ERROR) break;  // no progress possible without more input
    }
    if (!trailing) have = file.read_some(in.data(), in.size());
  }
  if (!ended)
    throw IoError("cannot decompress " + name + ": unexpected end of file (truncated gzip data)");
  return out;
}

}  // namespace qprune::detail
