// Solution (answer) files: the registry of solution formats (solution_entry.hpp), detection from
// content, the names a file may give the variables, and qprune's own two formats: 0/1 or -1/+1
// lists (spaces, commas, newlines, `#` comments, or one contiguous 0/1 string: the .sol files of
// the shared benchmarks) and qprune JSON ({"solution": [...]} or a result file whose "samples"
// are sorted best first). The external solvers' outputs are in solver_outputs.cpp.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "problems/formats/format_entry.hpp"
#include "problems/formats/solution_entry.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"

namespace qprune {
namespace formats_detail {

SolutionTarget::SolutionTarget(int num_variables) : n_(num_variables) {
  if (num_variables < 0) throw InvalidArgument("read_solution: num_variables must be >= 0");
}

SolutionTarget::SolutionTarget(const QuboModel& model) : n_(model.num_variables()) {
  if (!model.labels().empty()) labelled_ = &model;
}

void SolutionTarget::build_index() const {
  if (indexed_) return;
  indexed_ = true;
  names_ = lp_names(*labelled_);
  index_.reserve(2 * names_.size());
  for (int i = 0; i < n_; ++i) index_.emplace(names_[static_cast<std::size_t>(i)], i);
  // A label is its own name too (CPLEX and Gurobi read the quadratic `lp` with the labels made
  // safe, other tools may keep them as they are); a label that is another variable's safe name
  // keeps meaning that variable.
  for (int i = 0; i < n_; ++i) index_.emplace(labelled_->labels()[static_cast<std::size_t>(i)], i);
  product_prefix_ = lp_product_prefix(names_);
}

std::string SolutionTarget::name(int i) const {
  if (labelled_ == nullptr) return concat("x", std::to_string(i + 1));
  build_index();
  return names_[static_cast<std::size_t>(i)];
}

int SolutionTarget::variable(const TextInput& in, std::int64_t line, std::string_view name) const {
  if (labelled_ == nullptr) {
    // x1..xn: 'x' and a number without leading zeros.
    int k = 0;
    const char* first = name.data() + 1;
    const char* last = name.data() + name.size();
    if (name.size() > 1 && name[0] == 'x' && name[1] != '0' && name[1] != '+') {
      const auto [end, ec] = std::from_chars(first, last, k);
      if (ec == std::errc() && end == last && k >= 1 && k <= n_) return k - 1;
    }
  } else {
    build_index();
    const auto it = index_.find(std::string(name));
    if (it != index_.end()) return it->second;
  }
  if (name.starts_with(product_prefix_)) return -1;
  const std::string range =
      n_ == 0 ? std::string("no variable (the model is empty)")
              : concat("a variable of the model (", this->name(0),
                       n_ > 1 ? concat(" .. ", this->name(n_ - 1)) : std::string(),
                       ", or a product column ", product_prefix_, "...)");
  in.fail_at(line, concat("expected ", range, ", found ", quote(name)));
}

SolutionValues::SolutionValues(const SolutionTarget& target)
    : target_(target),
      x_(static_cast<std::size_t>(target.num_variables()), 0),
      set_at_(static_cast<std::size_t>(target.num_variables()), 0) {}

void SolutionValues::set(const TextInput& in, std::int64_t line, int i, std::string_view token,
                         bool spin) {
  // MIP solvers print integral columns with round-off (0.9999999999, 1e-12): within 1e-6 counts.
  constexpr double kTolerance = 1e-6;
  std::string_view digits = token;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double v = 0.0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  const double low = spin ? -1.0 : 0.0;
  const bool is_low = std::abs(v - low) <= kTolerance, is_high = std::abs(v - 1.0) <= kTolerance;
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      !(is_low || is_high))
    in.fail_at(line, concat("expected the value of ", target_.name(i), " to be ",
                            spin ? "-1 or +1" : "0 or 1", " (within 1e-6), found ", quote(token)));
  const auto u = static_cast<std::size_t>(i);
  if (set_at_[u] != 0)
    in.fail_at(line, concat("expected one value of ", target_.name(i), ", found a second (the ",
                            "first on line ", std::to_string(set_at_[u]), ")"));
  set_at_[u] = line;
  x_[u] = is_high ? 1 : 0;
}

Assignment SolutionValues::finish(const TextInput& in, std::int64_t line, bool sparse) const {
  if (!sparse)
    for (std::size_t i = 0; i < set_at_.size(); ++i)
      if (set_at_[i] == 0)
        in.fail_at(std::max<std::int64_t>(line, 1),
                   concat("expected a value for every variable, found none for ",
                          target_.name(static_cast<int>(i))));
  return x_;
}

Assignment positional_values(const TextInput& in, const std::vector<PositionalToken>& tokens, int n,
                             bool spin) {
  Assignment x;
  x.reserve(static_cast<std::size_t>(n));
  for (const PositionalToken& t : tokens) {
    if (static_cast<int>(x.size()) == n)
      in.fail_at(t.line, concat("expected ", std::to_string(n), " values, found more"));
    if (spin ? (t.text == "-1" || t.text == "1" || t.text == "+1")
             : (t.text == "0" || t.text == "1")) {
      x.push_back(t.text == "-1" || t.text == "0" ? 0 : 1);
    } else {
      in.fail_at(t.line, concat("expected a value ", spin ? "-1 or +1" : "0 or 1", ", found ",
                                quote(t.text)));
    }
  }
  if (static_cast<int>(x.size()) != n)
    in.fail_at(tokens.empty() ? std::max<std::int64_t>(in.line_number(), 1) : tokens.back().line,
               concat("expected ", std::to_string(n), " values, found ", std::to_string(x.size())));
  return x;
}

std::string_view first_content_line(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    const std::size_t a = line.find_first_not_of(" \t\r");
    if (a != std::string_view::npos) {
      line = line.substr(a);
      return line.substr(0, line.find_last_not_of(" \t\r") + 1);
    }
    pos = end + 1;
  }
  return {};
}

namespace {

using nlohmann::json;

// A 0/1 string: each character one value.
Assignment from_string(const TextInput& in, std::int64_t line, std::string_view s, int n) {
  std::vector<PositionalToken> tokens;
  tokens.reserve(s.size());
  for (std::size_t k = 0; k < s.size(); ++k) {
    if (s[k] != '0' && s[k] != '1')
      in.fail_at(line, concat("expected a 0/1 string, found ", quote(s.substr(k, 1))));
    tokens.push_back({s.substr(k, 1), line});
  }
  return positional_values(in, tokens, n, false);
}

Assignment read_json_solution(TextInput& in, const SolutionTarget& target) {
  const int n = target.num_variables();
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
  const std::int64_t line = at == std::string::npos ? 1 : line_of_offset(in.text(), at);
  if (values->is_string()) return from_string(in, line, values->get<std::string>(), n);
  if (!values->is_array())
    in.fail_at(line, "expected an array of 0/1 values, found " + detail::describe_json(*values));
  if (static_cast<int>(values->size()) != n)
    in.fail_at(line, concat("expected ", std::to_string(n), " values, found ",
                            std::to_string(values->size())));
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

Assignment read_list_solution(TextInput& in, const SolutionTarget& target) {
  const int n = target.num_variables();
  in.comment_chars = "#";
  std::vector<PositionalToken> tokens;
  while (in.next_line())
    for (std::string_view t : in.tokens(true)) tokens.push_back({t, in.line_number()});
  if (tokens.empty()) in.fail_eof(std::to_string(n) + " values");
  // One token of n > 1 characters: a contiguous 0/1 string.
  if (tokens.size() == 1 && tokens[0].text.size() > 1 && n != 1)
    return from_string(in, tokens[0].line, tokens[0].text, n);
  bool spin = false;
  for (const PositionalToken& t : tokens) spin = spin || t.text == "-1" || t.text == "+1";
  return positional_values(in, tokens, n, spin);
}

bool is_json(std::string_view text) { return first_content_line(text).starts_with("{"); }

const std::vector<SolutionFormatEntry>& solution_registry() {
  // Detection tries the entries in this order: the specific layouts first, the plain list last.
  static const std::vector<SolutionFormatEntry> entries = {
      dimod_solution_format(),  json_solution_format(),  cplex_solution_format(),
      cbc_solution_format(),    highs_solution_format(), glpk_solution_format(),
      qbsolv_solution_format(), mqlib_solution_format(), gurobi_solution_format(),
      list_solution_format()};
  return entries;
}

const SolutionFormatEntry& solution_entry(const std::string& name) {
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const SolutionFormatEntry& e : solution_registry())
    if (e.info.name == key) return e;
  std::string names;
  for (const SolutionFormatEntry& e : solution_registry())
    names += (names.empty() ? "" : ", ") + e.info.name;
  throw InvalidArgument(concat("unknown solution format '", name, "' (known: ", names, ")"));
}

const SolutionFormatEntry& detect_entry(const std::string& text) {
  for (const SolutionFormatEntry& e : solution_registry())
    if (e.detect != nullptr && e.detect(text)) return e;
  return solution_registry().back();
}

Assignment read_onto(const std::string& path, const SolutionTarget& target,
                     const SolutionReadOptions& options) {
  options.validate();
  TextInput in = TextInput::open(path);
  const SolutionFormatEntry& entry =
      options.format.empty() ? detect_entry(in.text()) : solution_entry(options.format);
  return entry.read(in, target);
}

}  // namespace

SolutionFormatEntry list_solution_format() {
  return {{"list",
           "0/1 or -1/+1 values by position (spaces, commas, newlines, '#' comments), or one 0/1 "
           "string"},
          nullptr,
          read_list_solution};
}

SolutionFormatEntry json_solution_format() {
  return {{"json", "qprune JSON: {\"solution\": [...]} or a `qprune solve --json` result"},
          is_json,
          read_json_solution};
}

}  // namespace formats_detail

const std::vector<SolutionFormatInfo>& solution_formats() {
  static const std::vector<SolutionFormatInfo> infos = [] {
    std::vector<SolutionFormatInfo> v;
    for (const auto& e : formats_detail::solution_registry()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

void SolutionReadOptions::validate() const {
  if (!format.empty()) (void)formats_detail::solution_entry(format);
}

std::string detect_solution_format(const std::string& path) {
  const formats_detail::TextInput in = formats_detail::TextInput::open(path);
  return formats_detail::detect_entry(in.text()).info.name;
}

Assignment read_solution(const std::string& path, const QuboModel& model,
                         const SolutionReadOptions& options) {
  return formats_detail::read_onto(path, formats_detail::SolutionTarget(model), options);
}

Assignment read_solution(const std::string& path, int num_variables) {
  return formats_detail::read_onto(path, formats_detail::SolutionTarget(num_variables), {});
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
