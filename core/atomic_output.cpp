// Atomic outputs (see atomic_output.hpp): temporary names from a per-process random generator,
// created exclusively so that an existing file or a planted symlink is never opened, and renamed
// into place only once complete. POSIX (open, mkdtemp, fsync) plus Linux renameat2.
#include "qprune/atomic_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <streambuf>
#include <vector>

#include "core/rename_flags.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace fs = std::filesystem;
namespace {

std::string errno_text(int error) { return std::strerror(error); }

// Six random characters, as mkstemp uses; the generator is seeded once per process from the
// system's entropy source, so names differ between processes and between calls.
std::string random_suffix() {
  static std::mutex mutex;
  static std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), static_cast<unsigned>(::getpid())};
    return std::mt19937_64(seed);
  }();
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::lock_guard<std::mutex> lock(mutex);
  std::string s(6, 'x');
  for (char& c : s) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

fs::path folder_of(const fs::path& target) {
  return target.has_parent_path() ? target.parent_path() : fs::path(".");
}

fs::path temporary_name(const fs::path& target) {
  std::string name = target.filename().string();
  name.append(kTemporaryMarker);
  name.append(random_suffix());
  return folder_of(target) / name;
}

// Makes a rename durable: fsync of the folder that holds the new name (errors ignored: some file
// systems refuse fsync on a folder, and the data itself is already synced).
void sync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// renameat2 through syscall(): glibc older than 2.28 has no wrapper. Flags: RENAME_NOREPLACE (1),
// RENAME_EXCHANGE (2).
constexpr unsigned kRenameNoReplace = 1U;
constexpr unsigned kRenameExchange = 2U;
std::atomic<bool> rename_flags_on{true};  // see core/rename_flags.hpp
int rename2(const fs::path& from, const fs::path& to, unsigned flags) {
  if (!rename_flags_on.load(std::memory_order_relaxed)) {
    errno = EINVAL;
    return -1;
  }
#ifdef SYS_renameat2
  return static_cast<int>(
      ::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
#else
  (void)from;
  (void)to;
  (void)flags;
  errno = ENOSYS;
  return -1;
#endif
}

// A streambuf over an AtomicFile: 1 MiB buffer, full writes.
class AtomicFileBuf : public std::streambuf {
 public:
  explicit AtomicFileBuf(AtomicFile& file) : file_(file), buffer_(1 << 20) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }

 protected:
  int_type overflow(int_type ch) override {
    flush_buffer();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= static_cast<std::streamsize>(buffer_.size())) {  // large: past the buffer
      flush_buffer();
      file_.write(std::string_view(s, static_cast<std::size_t>(n)));
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }
  int sync() override {
    flush_buffer();
    return 0;
  }

 private:
  void flush_buffer() {
    const auto n = static_cast<std::size_t>(pptr() - pbase());
    if (n != 0) file_.write(std::string_view(pbase(), n));
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  AtomicFile& file_;
  std::vector<char> buffer_;
};

fs::path resolved(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p, ec), ec);
  if (ec) r = fs::absolute(p).lexically_normal();
  return r;
}

// True when `inner` is `outer` or lies below it (both resolved).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto ai = inner.begin();
  for (auto bi = outer.begin(); bi != outer.end(); ++bi, ++ai) {
    if (bi->empty()) continue;  // trailing separator
    if (ai == inner.end() || *ai != *bi) return false;
  }
  return true;
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  const bool same = fs::equivalent(a, b, ec);
  return !ec && same;
}

}  // namespace

// ---- AtomicFile
// -----------------------------------------------------------------------------------

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  if (target_.filename().empty())
    throw IoError(target_.string() + ": an output file needs a file name");
  // A taken name (a leftover, a planted file or symlink) fails with EEXIST: draw another.
  for (int attempt = 0; attempt < 100; ++attempt) {
    temporary_ = temporary_name(target_);
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    if (errno != EEXIST) break;
  }
  const int error = errno;
  throw IoError(target_.string() + ": cannot create a temporary file in " +
                folder_of(target_).string() + ": " + errno_text(error));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temporary_.c_str());
  }
}

void AtomicFile::write(std::string_view bytes) {
  if (fd_ < 0) throw IoError(target_.string() + ": write after commit");
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(temporary_.string() + ": write failed (temporary file for " + target_.string() +
                    "): " + errno_text(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw IoError(target_.string() + ": committed twice");
  const int fd = fd_;
  fd_ = -1;  // from here the destructor leaves the temporary alone; failures remove it below
  auto fail = [&](const std::string& what, int error) {
    ::unlink(temporary_.c_str());
    throw IoError(target_.string() + ": " + what + ": " + errno_text(error));
  };
  if (::fsync(fd) != 0 && errno != EINVAL) {
    const int error = errno;
    ::close(fd);
    fail("cannot sync the temporary file " + temporary_.string(), error);
  }
  if (::close(fd) != 0) fail("cannot close the temporary file " + temporary_.string(), errno);
  if (::rename(temporary_.c_str(), target_.c_str()) != 0)
    fail("cannot rename " + temporary_.string() + " into place", errno);
  sync_folder(folder_of(target_));
}

void write_file_atomically(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  AtomicFile file(path);
  {
    AtomicFileBuf buf(file);
    std::ostream out(&buf);
    // A failure inside the buffer (an IoError from write()) reaches the caller as itself.
    out.exceptions(std::ios::badbit);
    write(out);
    out.flush();
    if (!out) throw IoError(path.string() + ": write failed");
  }
  file.commit();
}

void write_file_atomically(const fs::path& path, std::string_view content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

// ---- AtomicFolder
// ---------------------------------------------------------------------------------

AtomicFolder::AtomicFolder(fs::path target, bool replace)
    : target_(std::move(target)), replace_(replace) {
  while (!target_.empty() && target_.filename().empty()) target_ = target_.parent_path();
  if (target_.empty()) throw IoError("an output folder needs a name");
  std::string pattern = (folder_of(target_) / target_.filename()).string();
  pattern.append(kTemporaryMarker);
  pattern.append("XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    const int error = errno;
    throw IoError(target_.string() + ": cannot create a temporary folder in " +
                  folder_of(target_).string() + ": " + errno_text(error));
  }
  temporary_ = pattern;
  // mkdtemp makes it 0700; the output folder gets the usual 0777 minus the umask (read once per
  // process: umask can only be read by setting it).
  static const mode_t mask = [] {
    const mode_t m = ::umask(0);
    ::umask(m);
    return m;
  }();
  (void)::chmod(temporary_.c_str(), 0777 & ~mask);
}

AtomicFolder::~AtomicFolder() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(temporary_, ec);
}

void AtomicFolder::commit() {
  if (committed_) throw IoError(target_.string() + ": committed twice");
  sync_folder(temporary_);
  // Another writer may create, replace or move the target between any two of the steps below;
  // an attempt that finds the target changed under it starts over, so concurrent writers all
  // succeed and the last one wins, whole. Bounded: each retry means another writer made progress.
  constexpr int kAttempts = 1000;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (try_commit()) {
      committed_ = true;
      sync_folder(folder_of(target_));
      return;
    }
  }
  throw IoError(target_.string() + ": kept changing while " + temporary_.string() +
                " was moved into place (other writers?); gave up after " +
                std::to_string(kAttempts) + " attempts");
}

bool AtomicFolder::try_commit() {
  std::error_code ec;
  // 1. No target: a plain rename that never replaces anything.
  if (rename2(temporary_, target_, kRenameNoReplace) == 0) return true;
  const int first = errno;
  const bool flags_unsupported = first == EINVAL || first == ENOSYS;
  if (!flags_unsupported && first != EEXIST && first != ENOTEMPTY)
    throw IoError(target_.string() + ": cannot rename " + temporary_.string() +
                  " into place: " + errno_text(first));
  // 2. A target exists (or renameat2 flags are not supported: then check here).
  const auto status = fs::symlink_status(target_, ec);
  if (ec || !fs::exists(status)) {
    if (!flags_unsupported) return false;  // it vanished since step 1
    if (::rename(temporary_.c_str(), target_.c_str()) == 0) return true;
    const int error = errno;
    if (error == EEXIST || error == ENOTEMPTY) return false;  // it appeared since the check
    throw IoError(target_.string() + ": cannot rename " + temporary_.string() +
                  " into place: " + errno_text(error));
  }
  const bool empty_folder = fs::is_directory(status) && fs::is_empty(target_, ec) && !ec;
  if (!replace_ && !empty_folder)
    throw InvalidArgument("output folder " + target_.string() +
                          " appeared and is not empty (allow replacing it, e.g. --overwrite)");
  // 3. Replace in one step: swap the two names, then remove the old content (now under the
  // temporary name). A reader sees the old folder or the new one, never a mix.
  if (rename2(temporary_, target_, kRenameExchange) == 0) {
    fs::remove_all(temporary_, ec);
    return true;
  }
  const int exchange_error = errno;
  if (exchange_error == ENOENT) return false;  // it vanished since step 2
  if (exchange_error != EINVAL && exchange_error != ENOSYS)
    throw IoError(target_.string() + ": cannot replace it with " + temporary_.string() + ": " +
                  errno_text(exchange_error));
  // 4. No RENAME_EXCHANGE: move the old folder away to a fresh name, move the new one in, then
  // remove the old one (between the two renames the target is briefly missing, never mixed).
  fs::path old_name;
  for (int attempt = 0; attempt < 100; ++attempt) {
    old_name = temporary_name(target_);
    if (!fs::exists(fs::symlink_status(old_name, ec))) break;
  }
  if (::rename(target_.c_str(), old_name.c_str()) != 0) {
    const int error = errno;
    if (error == ENOENT) return false;  // another writer moved it away first
    throw IoError(target_.string() + ": cannot move the old folder away: " + errno_text(error));
  }
  if (::rename(temporary_.c_str(), target_.c_str()) != 0) {
    const int error = errno;
    if (error == EEXIST || error == ENOTEMPTY) {  // another writer's folder went in meanwhile
      fs::remove_all(old_name, ec);
      return false;
    }
    (void)::rename(old_name.c_str(), target_.c_str());  // put the old one back
    throw IoError(target_.string() + ": cannot rename " + temporary_.string() +
                  " into place: " + errno_text(error));
  }
  fs::remove_all(old_name, ec);
  return true;
}

// ---- The guard
// ------------------------------------------------------------------------------------

void check_outputs_outside_inputs(std::span<const NamedPath> outputs,
                                  std::span<const NamedPath> inputs,
                                  std::span<const NamedPath> folder_outputs) {
  auto refuse = [](const NamedPath& out, const NamedPath& in, const char* relation) {
    throw InvalidArgument(out.role + " " + out.path.string() + " " + relation + " " + in.role +
                          " " + in.path.string() + "; an input is never overwritten");
  };
  auto check = [&](const NamedPath& out, bool folder) {
    if (out.path.empty()) return;
    const fs::path o = resolved(out.path);
    for (const NamedPath& in : inputs) {
      if (in.path.empty()) continue;
      const fs::path i = resolved(in.path);
      if (o == i || same_file(out.path, in.path)) refuse(out, in, "is the input");
      if (is_within(o, i)) refuse(out, in, "lies inside the input");
      if (folder && is_within(i, o)) refuse(out, in, "(a folder it replaces) holds the input");
    }
  };
  for (const NamedPath& out : outputs) check(out, false);
  for (const NamedPath& out : folder_outputs) check(out, true);
}

namespace detail {
void use_rename_flags(bool on) { rename_flags_on.store(on, std::memory_order_relaxed); }
}  // namespace detail

}  // namespace qprune
