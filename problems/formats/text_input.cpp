// TextInput implementation: whole-file loading (plain or gzip, through detail::read_input_text),
// line and token iteration with line numbers, and number parsing that reports
// `path:line: expected X, found Y`.
#include "problems/formats/text_input.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "core/input_file.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string quote(std::string_view token) {
  if (token.size() > 40) return "'" + std::string(token.substr(0, 37)) + "...'";
  return concat("'", token, "'");
}

std::int64_t line_of_offset(const std::string& text, std::size_t offset) {
  std::int64_t line = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i)
    if (text[i] == '\n') ++line;
  return line;
}

TextInput TextInput::open(const std::string& path,
                          std::optional<std::uint64_t> inflated_limit_bytes) {
  return TextInput(path, detail::read_input_text(path, inflated_limit_bytes));
}

TextInput::TextInput(std::string path, std::string text)
    : path_(std::move(path)), text_(std::move(text)) {}

bool TextInput::read_raw_line(std::string_view& raw) {
  if (pos_ >= text_.size()) return false;
  std::size_t end = text_.find('\n', pos_);
  if (end == std::string::npos) end = text_.size();
  raw = std::string_view(text_).substr(pos_, end - pos_);
  pos_ = end + 1;
  ++line_number_;
  return true;
}

bool TextInput::next_line() {
  token_line_ = false;
  std::string_view raw;
  while (read_raw_line(raw)) {
    raw_line_ = trim(raw);
    std::string_view content = raw_line_;
    const std::size_t cut = content.find_first_of(comment_chars);
    if (!comment_chars.empty() && cut != std::string_view::npos) {
      if (on_comment) on_comment(content.substr(cut));
      content = content.substr(0, cut);
    }
    line_ = trim(content);
    if (!line_.empty()) return true;
  }
  line_ = {};
  raw_line_ = {};
  return false;
}

std::vector<std::string_view> TextInput::tokens(bool commas) const {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  const auto sep = [&](char c) { return is_space(c) || (commas && c == ','); };
  while (i < line_.size()) {
    while (i < line_.size() && sep(line_[i])) ++i;
    const std::size_t start = i;
    while (i < line_.size() && !sep(line_[i])) ++i;
    if (i > start) out.push_back(line_.substr(start, i - start));
  }
  return out;
}

bool TextInput::next_token(std::string_view& token) {
  for (;;) {
    if (token_line_) {
      while (token_pos_ < line_.size() && is_space(line_[token_pos_])) ++token_pos_;
      if (token_pos_ < line_.size()) {
        const std::size_t start = token_pos_;
        while (token_pos_ < line_.size() && !is_space(line_[token_pos_])) ++token_pos_;
        token = line_.substr(start, token_pos_ - start);
        return true;
      }
    }
    if (!next_line()) return false;
    token_line_ = true;
    token_pos_ = 0;
  }
}

bool TextInput::at_end() {
  if (token_line_) {
    while (token_pos_ < line_.size() && is_space(line_[token_pos_])) ++token_pos_;
    if (token_pos_ < line_.size()) return false;
  }
  // Look ahead without consuming: save the state, scan, restore.
  const std::size_t pos = pos_;
  const std::int64_t line = line_number_;
  const std::string_view current = line_, raw = raw_line_;
  const std::size_t tpos = token_pos_;
  const bool tline = token_line_;
  std::function<void(std::string_view)> callback = std::move(on_comment);
  on_comment = nullptr;  // looking ahead must not report comments twice
  const bool more = next_line();
  on_comment = std::move(callback);
  pos_ = pos;
  line_number_ = line;
  line_ = current;
  raw_line_ = raw;
  token_pos_ = tpos;
  token_line_ = tline;
  return !more;
}

bool TextInput::line_done() const {
  if (!token_line_) return true;
  for (std::size_t i = token_pos_; i < line_.size(); ++i)
    if (!is_space(line_[i])) return false;
  return true;
}

void TextInput::seek(std::size_t offset) {
  pos_ = std::min(offset, text_.size());
  token_line_ = false;
  line_ = {};
  raw_line_ = {};
}

void TextInput::rewind() {
  seek(0);
  line_number_ = 0;
  token_pos_ = 0;
  comment_chars = {};
  on_comment = nullptr;
}

std::int64_t TextInput::to_int(std::string_view token, const std::string& expected) const {
  std::string_view digits = token;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
    fail(expected, token);
  return value;
}

double TextInput::to_double(std::string_view token, const std::string& expected) const {
  std::string_view digits = token;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double value = 0.0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
      !std::isfinite(value))
    fail(expected + " (a finite number)", token);
  return value;
}

void TextInput::fail(const std::string& expected, std::string_view found) const {
  throw ParseError(path_, line_number_, "expected " + expected + ", found " + quote(found));
}

void TextInput::fail_plain(const std::string& expected, const std::string& found) const {
  throw ParseError(path_, line_number_, "expected " + expected + ", found " + found);
}

void TextInput::fail_eof(const std::string& expected) const {
  throw ParseError(path_, std::max<std::int64_t>(line_number_, 1),
                   "expected " + expected + ", found end of file");
}

void TextInput::fail_at(std::int64_t line, const std::string& message) const {
  throw ParseError(path_, line, message);
}

HeadedTripletLines::HeadedTripletLines(TextInput& in, std::int64_t n, std::int64_t m, char letter,
                                       std::string value)
    : in_(in),
      n_(n),
      m_(m),
      header_line_(in.line_number()),
      layout_(concat("a line 'i j ", std::string(1, letter), "' (3 fields)")),
      value_(std::move(value)),
      range_(concat("a 1-based index in [1, ", std::to_string(n), "]")) {}

bool HeadedTripletLines::next(Entry& entry) {
  if (!in_.next_line()) {
    if (count_ < m_)
      in_.fail_eof(std::to_string(m_) + " entry lines as the header on line " +
                   std::to_string(header_line_) + " says, not " + std::to_string(count_));
    return false;
  }
  const std::vector<std::string_view> t = in_.tokens();
  if (++count_ > m_)
    in_.fail(std::to_string(m_) + " entry lines as the header on line " +
                 std::to_string(header_line_) + " says, and no more",
             in_.line());
  if (t.size() != 3) in_.fail(layout_, in_.line());
  const std::int64_t i = in_.to_int(t[0], range_), j = in_.to_int(t[1], range_);
  if (i < 1 || i > n_) in_.fail(range_, t[0]);
  if (j < 1 || j > n_) in_.fail(range_, t[1]);
  entry = {static_cast<int>(i - 1), static_cast<int>(j - 1), in_.to_double(t[2], value_)};
  return true;
}

}  // namespace qprune::formats_detail
