// TextInput: the line/token reader every text format parses with. It loads a file whole (gzip is
// recognised by its magic bytes, not by the name, and inflated in chunks up to a size cap), keeps
// line numbers, and turns every malformed token into a ParseError `path:line: expected X, found Y`.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "problems/formats/text_input.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qprune::formats_detail {

class TextInput {
 public:
  /// Reads `path` whole (gzip-decompressed if it starts with 1f 8b) with detail::read_input_text:
  /// IoError for a file that cannot be read or is not a regular file, ResourceError when gzip
  /// data inflates past `inflated_limit_bytes` (default: detail::default_inflated_limit_bytes()).
  [[nodiscard]] static TextInput open(
      const std::string& path, std::optional<std::uint64_t> inflated_limit_bytes = std::nullopt);
  /// In-memory text, for sniffing and tests; `path` only names it in messages.
  TextInput(std::string path, std::string text);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& text() const { return text_; }

  /// Characters that start a comment running to the end of the line, anywhere in it ("#").
  std::string_view comment_chars;
  /// Memory limit for the model the text declares (ReadOptions::memory_limit_bytes).
  std::optional<std::uint64_t> memory_limit_bytes;
  /// Called with each comment met by next_line()/next_token() (from its comment character on).
  std::function<void(std::string_view comment)> on_comment;

  /// Advances to the next line that is not blank once comments are removed; false at the end.
  /// line() is then that line without its comment, trimmed; raw_line() the whole trimmed line.
  bool next_line();
  [[nodiscard]] std::string_view line() const { return line_; }
  [[nodiscard]] std::string_view raw_line() const { return raw_line_; }
  /// Whitespace-separated tokens of line() (commas too when `commas` is true).
  [[nodiscard]] std::vector<std::string_view> tokens(bool commas = false) const;

  /// Token stream across lines (comments removed); false at the end. line_number() is then the
  /// line of the token.
  bool next_token(std::string_view& token);

  /// 1-based line of the current line or token (the last line read at the end of the text).
  [[nodiscard]] std::int64_t line_number() const { return line_number_; }
  /// True when nothing but blanks and comments is left.
  [[nodiscard]] bool at_end();

  // For a reader's fast path (triplet_scan.hpp), which reads the body of a file in bulk and never
  // reports errors itself (it falls back to the line-by-line reader, which does).
  /// Byte offset of the next physical line, where next_line() would continue.
  [[nodiscard]] std::size_t offset() const { return pos_; }
  /// In token mode: no token is left on the current line.
  [[nodiscard]] bool line_done() const;
  /// Continues at byte `offset`, the start of a line. line_number() is not advanced: only a fast
  /// path, which reports no errors, seeks.
  void seek(std::size_t offset);
  /// Back to the start of the text with no comment characters and no comment callback (the state
  /// open() leaves), to read it again with the line-by-line reader.
  void rewind();

  [[nodiscard]] std::int64_t to_int(std::string_view token, const std::string& expected) const;
  /// Rejects NaN, Inf and out-of-range values.
  [[nodiscard]] double to_double(std::string_view token, const std::string& expected) const;

  /// Throws ParseError at the current line: "expected <expected>, found '<found>'".
  [[noreturn]] void fail(const std::string& expected, std::string_view found) const;
  /// Throws ParseError at the current line with "found <found>" written as is (no quotes).
  [[noreturn]] void fail_plain(const std::string& expected, const std::string& found) const;
  /// Throws ParseError for a file that ended too early.
  [[noreturn]] void fail_eof(const std::string& expected) const;
  /// Throws ParseError at a given line.
  [[noreturn]] void fail_at(std::int64_t line, const std::string& message) const;

 private:
  bool read_raw_line(std::string_view& raw);  // next physical line, or false at the end
  std::string path_;
  std::string text_;
  std::size_t pos_ = 0;           // start of the next physical line
  std::int64_t line_number_ = 0;  // of the current line
  std::string_view line_;
  std::string_view raw_line_;
  std::size_t token_pos_ = 0;  // next token inside line_ (token mode)
  bool token_line_ = false;    // token mode has a current line
};

/// The checked reading of a body of 1-based `i j value` lines after a header `n m` (biqmac, mqlib,
/// maxcut): next() gives each entry 0-based and fails naming the line for a wrong field count, an
/// index outside [1, n], a bad number or a line past the m the header (on `header_line`) declared;
/// at the end of the text it fails when fewer than m lines were there.
class HeadedTripletLines {
 public:
  struct Entry {
    int a = 0;
    int b = 0;
    double value = 0.0;
  };
  /// `letter` names the value in the line layout ('q' in "a line 'i j q' (3 fields)"), `value` in
  /// the message for a bad number ("a value", "a weight").
  HeadedTripletLines(TextInput& in, std::int64_t n, std::int64_t m, char letter, std::string value);
  /// The next entry; false at the end of the text (after checking the count).
  bool next(Entry& entry);

 private:
  TextInput& in_;
  std::int64_t n_;
  std::int64_t m_;
  std::int64_t header_line_;
  std::int64_t count_ = 0;
  std::string layout_;
  std::string value_;
  std::string range_;
};

/// Concatenation by appending: GCC 12 at -O3 warns falsely (-Wrestrict, bug 105329) on
/// `"literal" + std::string` temporaries, so short names are built with this instead.
template <class... Parts>
[[nodiscard]] std::string concat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

/// Text of a token for messages: quoted, shortened past 40 characters.
[[nodiscard]] std::string quote(std::string_view token);
/// Line (1-based) of byte `offset` in `text`.
[[nodiscard]] std::int64_t line_of_offset(const std::string& text, std::size_t offset);

}  // namespace qprune::formats_detail
