// The one exception hierarchy of qprune. Contract, I/O and parse failures throw; how a search
// ended (time limit, interrupt) is a result status. The one exception to that rule is Interrupted:
// long work that has no best-so-far answer to return (building a problem, a forward pass, writing
// a checkpoint) stops with it when the interrupt flag is raised (qprune/interrupt.hpp). The CLI
// maps each class to an exit code (see cli/exit_codes.hpp).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace qprune {

/// Base of every error qprune throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A caller broke a documented precondition (bad option value, index out of range, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// A file could not be opened, read, written or renamed.
class IoError : public Error {
 public:
  using Error::Error;
};

/// Malformed input. The message reads `path:line: expected ..., found ...` (or `path:byte N:` for
/// binary files); the location is also kept as fields.
class ParseError : public Error {
 public:
  ParseError(std::string path, std::int64_t line, const std::string& what)
      : Error(path + ":" + std::to_string(line) + ": " + what),
        path_(std::move(path)),
        line_(line) {}
  /// For binary files: the message reads `path: byte N: what` and line() returns the byte offset
  /// (0-based from the start of the file).
  [[nodiscard]] static ParseError at_byte(std::string path, std::int64_t byte_offset,
                                          const std::string& what) {
    return ParseError(ByteTag{}, std::move(path), byte_offset, what);
  }
  [[nodiscard]] const std::string& path() const { return path_; }
  /// 1-based line number (or byte offset for binary formats); 0 when it concerns the whole file.
  [[nodiscard]] std::int64_t line() const { return line_; }

 private:
  struct ByteTag {};
  ParseError(ByteTag, std::string path, std::int64_t byte_offset, const std::string& what)
      : Error(path + ": byte " + std::to_string(byte_offset) + ": " + what),
        path_(std::move(path)),
        line_(byte_offset) {}

  std::string path_;
  std::int64_t line_;
};

/// The request needs more memory or time than allowed; the message says how much and what to
/// change.
class ResourceError : public Error {
 public:
  using Error::Error;
};

/// Long work without a partial answer stopped because the interrupt flag was raised (SIGINT /
/// SIGTERM in the CLI: exit 5). Whatever it was writing has been removed.
class Interrupted : public Error {
 public:
  using Error::Error;
};

}  // namespace qprune
