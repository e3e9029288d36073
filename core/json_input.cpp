// parse_json, scan_json and describe_json (json_input.hpp).
#include "core/json_input.hpp"

#include "qprune/error.hpp"

namespace qprune::detail {
namespace {

std::int64_t line_at(std::string_view text, std::size_t offset) {
  std::int64_t line = 1;
  const std::size_t end = std::min(offset, text.size());
  for (std::size_t i = 0; i < end; ++i)
    if (text[i] == '\n') ++line;
  return line;
}

// nlohmann's message quotes the last token read, which may be a long string: keep the start.
std::string short_text(std::string s, std::size_t max = 160) {
  if (s.size() > max) {
    s.resize(max - 3);
    s += "...";
  }
  return s;
}

}  // namespace

void JsonSource::fail(std::string_view text, std::size_t offset, const std::string& what) const {
  const std::uint64_t byte = base_offset + offset;
  if (by_line)
    throw ParseError(path, line_at(text, offset), what + " (byte " + std::to_string(byte) + ")");
  throw ParseError::at_byte(path, static_cast<std::int64_t>(byte), what);
}

void scan_json(std::string_view text, const JsonSource& source,
               std::vector<std::size_t>* top_level_keys, int max_depth) {
  int depth = 0;
  bool top_is_object = false;
  // The last structural character outside strings: a string at depth 1 of the top-level object
  // is a key when it follows '{' or ','.
  char last = 0;
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    switch (c) {
      case '"': {
        if (top_level_keys != nullptr && depth == 1 && top_is_object &&
            (last == '{' || last == ','))
          top_level_keys->push_back(i);
        // Skip the string, escapes included; an unterminated string ends the scan.
        ++i;
        while (i < n && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
        last = '"';
        break;
      }
      case '[':
      case '{':
        if (depth == 0) top_is_object = c == '{';
        if (++depth > max_depth)
          source.fail(text, i,
                      "expected JSON nested at most " + std::to_string(max_depth) +
                          " levels deep, found deeper nesting (level " + std::to_string(depth) +
                          " opens here)");
        last = c;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        last = c;
        break;
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        break;
      default:
        last = c;
    }
  }
}

template <class BasicJson>
BasicJson parse_json(std::string_view text, const JsonSource& source,
                     std::vector<std::size_t>* top_level_keys) {
  scan_json(text, source, top_level_keys);
  try {
    return BasicJson::parse(text);
  } catch (const typename BasicJson::parse_error& e) {
    // e.byte is 1-based and may point one past the end.
    const std::size_t at = e.byte > 0 ? std::min<std::size_t>(e.byte - 1, text.size()) : 0;
    source.fail(text, at, "expected valid JSON, found invalid JSON (" + short_text(e.what()) + ")");
  } catch (const typename BasicJson::exception& e) {  // e.g. a number beyond double (1e400)
    source.fail(text, 0, "expected valid JSON, found " + short_text(e.what()));
  }
}

template <class BasicJson>
std::string describe_json(const BasicJson& j) {
  if (j.is_array()) return "an array of " + std::to_string(j.size()) + " elements";
  if (j.is_object()) return "an object of " + std::to_string(j.size()) + " members";
  if (j.is_binary()) return "binary data";
  constexpr std::size_t kMax = 40;
  if (j.is_string()) {
    // Cut the string before dumping it, so a long one costs nothing; invalid UTF-8 (also from
    // the cut) is replaced rather than thrown on.
    const auto& s = j.template get_ref<const typename BasicJson::string_t&>();
    const bool cut = s.size() > kMax;
    const BasicJson head(cut ? s.substr(0, kMax - 3) : s);
    std::string out = head.dump(-1, ' ', false, BasicJson::error_handler_t::replace);
    if (cut) out.insert(out.size() - 1, "...");
    return out;
  }
  return short_text(j.dump(), kMax);  // number, boolean, null: short and flat
}

template nlohmann::json parse_json<nlohmann::json>(std::string_view, const JsonSource&,
                                                   std::vector<std::size_t>*);
template nlohmann::ordered_json parse_json<nlohmann::ordered_json>(std::string_view,
                                                                   const JsonSource&,
                                                                   std::vector<std::size_t>*);
template std::string describe_json<nlohmann::json>(const nlohmann::json&);
template std::string describe_json<nlohmann::ordered_json>(const nlohmann::ordered_json&);

}  // namespace qprune::detail
