// Every output qprune writes, files and whole folders, goes through this file: it is written
// under a fresh random name beside its target (a file created with O_CREAT | O_EXCL | O_NOFOLLOW,
// a folder with mkdtemp), synced, and renamed into place at the end, so a reader sees the old
// output or the complete new one, never a mix, and a symlink planted at a temporary name is never
// followed. If the work fails or is interrupted the temporary is removed and the old output is
// untouched. The guard check_outputs_outside_inputs refuses an output that is, or lies inside, an
// input (symlinks resolved), before any work starts.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

namespace qprune {

/// Suffix of every temporary name: `<target name>.qprune-tmp-XXXXXX` beside the target (so a
/// leftover after a hard kill is easy to recognise and is never mistaken for an output).
inline constexpr std::string_view kTemporaryMarker = ".qprune-tmp-";

/// A file being written: opened on creation under a fresh name in the target's folder
/// (`<name>.qprune-tmp-XXXXXX`, O_CREAT | O_EXCL | O_NOFOLLOW, mode 0666 minus the umask);
/// commit() syncs it and renames it over the target (a symlink at the target is replaced, not
/// followed). Destroyed without commit(): the temporary is removed. Throws IoError.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  /// The open descriptor of the temporary (write-only), for writers that need one (zlib).
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::filesystem::path& temporary_path() const { return temporary_; }
  [[nodiscard]] const std::filesystem::path& target() const { return target_; }
  /// Writes all of `bytes` (retrying short writes). Throws IoError.
  void write(std::string_view bytes);
  /// fsync, close, rename into place, sync the folder. Throws IoError (the temporary is removed).
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  int fd_ = -1;
};

/// Creates `path` through an AtomicFile, `write` filling a stream on it. An exception from
/// `write` (or a stream failure) removes the temporary and leaves `path` as it was. Throws IoError.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write);

/// The same with the whole content at hand.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

/// A folder being written: created empty under a fresh name beside the target (mkdtemp,
/// `<name>.qprune-tmp-XXXXXX`); the caller fills path(); commit() moves it into place. An
/// existing target is replaced only then, in one step (renameat2 RENAME_EXCHANGE, then the old
/// folder, now under the temporary name, is removed; on file systems without it: old renamed
/// away, new renamed in, old removed). Two writers into one target each have their own temporary
/// folder and the last commit wins, whole: a commit that finds the target changed under it by
/// another writer between two of these steps starts over. Destroyed without commit(): the temporary
/// folder and everything in it are removed.
class AtomicFolder {
 public:
  /// `replace`: commit() may replace an existing non-empty target; without it only a missing or
  /// empty target is replaced (and a non-empty one is an InvalidArgument). Throws IoError.
  AtomicFolder(std::filesystem::path target, bool replace);
  AtomicFolder(const AtomicFolder&) = delete;
  AtomicFolder& operator=(const AtomicFolder&) = delete;
  ~AtomicFolder();

  /// Where to write the new content.
  [[nodiscard]] const std::filesystem::path& path() const { return temporary_; }
  [[nodiscard]] const std::filesystem::path& target() const { return target_; }
  /// Moves the folder into place (see the class comment). Throws IoError or InvalidArgument.
  void commit();

 private:
  /// One attempt of commit(): true when in place, false when another writer changed the target
  /// between two steps (then commit() tries again).
  [[nodiscard]] bool try_commit();

  std::filesystem::path target_;
  std::filesystem::path temporary_;
  bool replace_ = false;
  bool committed_ = false;
};

/// A path a command reads or writes, with a word saying what it is ("checkpoint", "--masks").
struct NamedPath {
  std::string role;
  std::filesystem::path path;
};

/// The one guard: throws InvalidArgument naming both paths when an output is an input, lies inside
/// one (an output file inside an input checkpoint folder), or, for a folder output, contains one
/// (an input inside a folder that the output will replace). Paths are compared after resolving
/// symlinks (weakly_canonical: the existing prefix resolved) and, for existing files, by device
/// and inode (hard links). Empty paths are skipped (an option not given).
void check_outputs_outside_inputs(std::span<const NamedPath> outputs,
                                  std::span<const NamedPath> inputs,
                                  std::span<const NamedPath> folder_outputs = {});

}  // namespace qprune
