// read_solution / write_solution: assignments as 0/1 or -1/+1 lists (spaces, commas, newlines, `#`
// comments), a contiguous 0/1 string (the .sol files of the shared benchmarks), or qprune JSON
// ({"solution": [...]} or a result file whose "samples" are sorted best first).
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "problems/formats/format_entry.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"

namespace qprune {
namespace {

using formats_detail::TextInput;
using nlohmann::json;

Assignment from_json(TextInput& in, int n) {
  const json root = detail::parse_json<json>(in.text(), {in.path(), 0, true});
  const json* values = nullptr;
  std::string key = "solution";
  if (root.is_object() && root.contains("solution")) {
    values = &root.at("solution");
  } else if (root.is_object() && root.contains("samples") && root["samples"].is_array() &&
             !root["samples"].empty() && root["samples"][0].is_object() &&
             root["samples"][0].contains("x")) {
    values = &root.at("samples").at(0).at("x");
    key = "samples";
  } else {
    in.fail_at(1,
               "expected {\"solution\": [...]} or a result with \"samples\": [{\"x\": [...]}], "
               "found neither");
  }
  const std::size_t at = in.text().find("\"" + key + "\"");
  const std::int64_t line =
      at == std::string::npos ? 1 : formats_detail::line_of_offset(in.text(), at);
  if (values->is_string()) {
    // "0110..." as a string
    const std::string s = values->get<std::string>();
    Assignment x;
    for (char ch : s) {
      if (ch != '0' && ch != '1')
        in.fail_at(line, "expected a 0/1 string, found '" + std::string(1, ch) + "'");
      x.push_back(static_cast<std::uint8_t>(ch - '0'));
    }
    if (static_cast<int>(x.size()) != n)
      in.fail_at(line,
                 "expected " + std::to_string(n) + " values, found " + std::to_string(x.size()));
    return x;
  }
  if (!values->is_array())
    in.fail_at(line, "expected an array of 0/1 values, found " + detail::describe_json(*values));
  if (static_cast<int>(values->size()) != n)
    in.fail_at(
        line, "expected " + std::to_string(n) + " values, found " + std::to_string(values->size()));
  bool spin = false;
  for (const json& v : *values)
    if (v.is_number_integer() && v.get<std::int64_t>() == -1) spin = true;
  Assignment x;
  for (const json& v : *values) {
    const bool ok = v.is_number_integer() && (spin ? (v == -1 || v == 1) : (v == 0 || v == 1));
    if (!ok)
      in.fail_at(line, std::string("expected ") + (spin ? "-1/+1" : "0/1") + " values, found " +
                           detail::describe_json(v));
    x.push_back(static_cast<std::uint8_t>(v.get<std::int64_t>() == 1 ? 1 : 0));
  }
  return x;
}

}  // namespace

Assignment read_solution(const std::string& path, int num_variables) {
  if (num_variables < 0) throw InvalidArgument("read_solution: num_variables must be >= 0");
  TextInput in = TextInput::open(path);
  const std::size_t first = in.text().find_first_not_of(" \t\r\n");
  if (first != std::string::npos && in.text()[first] == '{') return from_json(in, num_variables);
  in.comment_chars = "#";
  struct Token {
    std::string_view text;
    std::int64_t line;
  };
  std::vector<Token> tokens;
  while (in.next_line())
    for (std::string_view t : in.tokens(true)) tokens.push_back({t, in.line_number()});
  if (tokens.empty()) in.fail_eof(std::to_string(num_variables) + " values");
  // One token of n > 1 characters: a contiguous 0/1 string.
  if (tokens.size() == 1 && tokens[0].text.size() > 1 && num_variables != 1) {
    Assignment x;
    for (char ch : tokens[0].text) {
      if (ch != '0' && ch != '1')
        in.fail_at(tokens[0].line,
                   "expected a 0/1 string, found " + formats_detail::quote(std::string(1, ch)));
      x.push_back(static_cast<std::uint8_t>(ch - '0'));
    }
    if (static_cast<int>(x.size()) != num_variables)
      in.fail_at(tokens[0].line, "expected " + std::to_string(num_variables) + " values, found " +
                                     std::to_string(x.size()));
    return x;
  }
  bool spin = false;
  for (const Token& t : tokens) spin = spin || t.text == "-1" || t.text == "+1";
  Assignment x;
  for (const Token& t : tokens) {
    if (static_cast<int>(x.size()) == num_variables)
      in.fail_at(t.line, "expected " + std::to_string(num_variables) + " values, found more");
    if (spin ? (t.text == "-1" || t.text == "1" || t.text == "+1")
             : (t.text == "0" || t.text == "1")) {
      x.push_back(t.text == "-1" || t.text == "0" ? 0 : 1);
    } else {
      in.fail_at(t.line, std::string("expected a value ") + (spin ? "-1 or +1" : "0 or 1") +
                             ", found " + formats_detail::quote(t.text));
    }
  }
  if (static_cast<int>(x.size()) != num_variables)
    in.fail_at(tokens.back().line, "expected " + std::to_string(num_variables) + " values, found " +
                                       std::to_string(x.size()));
  return x;
}

void write_solution(const Assignment& x, const std::string& path) {
  std::string text;
  text.reserve(2 * x.size());
  for (std::uint8_t v : x) {
    if (v > 1) throw InvalidArgument("write_solution: entries must be 0 or 1");
    text += v ? "1\n" : "0\n";
  }
  formats_detail::write_file_atomically(path, text);
}

}  // namespace qprune
