// The one way qprune parses JSON that comes from a file (config.json, the shard index, safetensors
// headers, masks, solutions, JSON QUBO files, comparison files). nlohmann's parser, destructor and
// dump() recurse once per nesting level, so 80k levels of `[` overflow the stack: parse_json first
// scans the bytes once, without recursion, and refuses nesting deeper than kMaxJsonDepth with a
// ParseError naming the file and byte offset; nlohmann's own errors become ParseErrors too.
// Values quoted in error messages go through describe_json: the JSON type, and for a scalar its
// text cut to 40 characters, never a recursive dump of an unbounded value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace qprune::detail {

/// Deepest nesting of arrays and objects any qprune JSON input needs is 4 (a safetensors shape);
/// 64 leaves room for metadata while keeping every recursion over the value shallow.
inline constexpr int kMaxJsonDepth = 64;

/// Where a JSON text comes from, for error messages.
struct JsonSource {
  std::string path;
  /// Byte offset of the text in its file (8 for a safetensors header), added to every offset.
  std::uint64_t base_offset = 0;
  /// true: errors read `path:line: ... (byte N)` (text files read by line-oriented tools);
  /// false: `path: byte N: ...` (ParseError::at_byte).
  bool by_line = false;

  /// Throws ParseError at byte `offset` of the text (base_offset is added).
  [[noreturn]] void fail(std::string_view text, std::size_t offset, const std::string& what) const;
};

/// One linear pass over `text` (no recursion): throws ParseError when arrays/objects nest deeper
/// than `max_depth`, at the bracket that opens the level past it. When `top_level_keys` is given
/// and the text is an object, it receives the offset (in `text`) of the opening quote of each of
/// its keys, in document order, so callers can point messages at a key without searching for it.
/// Malformed text is not diagnosed here; the parser does that afterwards.
void scan_json(std::string_view text, const JsonSource& source,
               std::vector<std::size_t>* top_level_keys = nullptr, int max_depth = kMaxJsonDepth);

/// scan_json, then nlohmann's parse; every failure is a ParseError "expected valid JSON, found
/// ..." at the byte where the parser stopped. (No parser callback: nlohmann's callback parser
/// rescans the enclosing object at the end of each member object, which is quadratic for a
/// safetensors header; callers that need key positions use `top_level_keys`.)
template <class BasicJson = nlohmann::json>
[[nodiscard]] BasicJson parse_json(std::string_view text, const JsonSource& source,
                                   std::vector<std::size_t>* top_level_keys = nullptr);

/// A short description of `j` for messages, built without recursion: "an array of 3 elements",
/// "an object of 2 members", or for a scalar its JSON text ("\"abc\"", "-3", "true", "null") cut
/// to about 40 characters.
template <class BasicJson = nlohmann::json>
[[nodiscard]] std::string describe_json(const BasicJson& j);

extern template nlohmann::json parse_json<nlohmann::json>(std::string_view, const JsonSource&,
                                                          std::vector<std::size_t>*);
extern template nlohmann::ordered_json parse_json<nlohmann::ordered_json>(
    std::string_view, const JsonSource&, std::vector<std::size_t>*);
extern template std::string describe_json<nlohmann::json>(const nlohmann::json&);
extern template std::string describe_json<nlohmann::ordered_json>(const nlohmann::ordered_json&);

}  // namespace qprune::detail
