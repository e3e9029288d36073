// Readers of external solvers' answer files (docs/formats.md, "Solution files"), each from the
// tool's documented or source-code layout:
// - cbc: `cbc FILE -solve -solu OUT`: a status line "<status> - objective value <v>", then
//   "index name value reduced-cost" lines (a leading "**" marks an infeasible value); CBC lists
//   the non-zero columns only, so an absent variable is 0.
// - glpk: `glpsol ... -w OUT` (GLPK 5 plain solution): `c` comments, "s mip ROWS COLS STATUS OBJ",
//   "i ROW VALUE" and "j COL VALUE" lines, "e o f". Columns are numbered, not named: qprune's
//   lp-linear and mps writers put the n variables first (columns 1..n), the product columns after.
// - highs: HiGHS's solution file (`highs --solution_file`, or Highs::writeSolution; the npm
//   client writes the same text with exportSolution()): "Model status", "# Primal solution
//   values", "Objective v", "# Columns N" and N "name value" lines.
// - gurobi: Gurobi's .sol: `#` comments ("# Objective value = v"), then "name value" lines; any
//   other "name value" file reads the same way.
// - cplex: CPLEX's .sol XML: <variable name="x1" index="0" value="1"/> tags inside <variables>
//   (of the first <CPLEXSolution> when there are several), read without an XML library: the tags
//   are found by text search, so the work is linear and nesting cannot run deep.
// - qbsolv: its standard output (src/util.c, print_output of dwavesystems/qbsolv): "N Number of
//   bits in solution", the bits as one 0/1 string, then the energy and timing lines.
// - mqlib: `MQLib ... -ps` (src/main.cpp and heuristics/base_solution.cpp of MQLib/MQLib): the
//   CSV summary line, a blank line, "Solution:", then the assignment as space-separated values,
//   0/1 for QUBO instances (-fQ) and -1/+1 for Max-Cut instances (-fM; x = (1 + s) / 2).
// - dimod: the JSON of SampleSet.to_serializable() (dimod/sampleset.py, schema 3.x): the sample
//   with the lowest "energy" vector entry; "sample_data" rows packed 32 variables to an uint32
//   (dimod/serialization/utils.py pack_samples: variable k of a word is bit k) unless
//   "sample_packed" is false; "variable_labels" name the variables (an integer label is the
//   0-based index, as in dimod's COO files).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "problems/formats/format_entry.hpp"
#include "problems/formats/solution_entry.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

using nlohmann::json;

bool starts(std::string_view text, std::string_view prefix) { return text.starts_with(prefix); }

// ---- CBC ----

bool is_cbc(std::string_view text) {
  return first_content_line(text).find(" - objective value") != std::string_view::npos;
}

Assignment read_cbc(TextInput& in, const SolutionTarget& target) {
  if (!in.next_line()) in.fail_eof("CBC's status line '<status> - objective value <v>'");
  const std::string_view header = in.line();
  const std::size_t dash = header.find(" - objective value");
  if (dash == std::string_view::npos)
    in.fail("CBC's status line '<status> - objective value <v>'", header);
  const std::string_view status = header.substr(0, dash);
  if (status.find("nfeasible") != std::string_view::npos ||
      status.find("nbounded") != std::string_view::npos)
    in.fail("a CBC solution (status Optimal, or a stopped search with a solution)", status);
  SolutionValues values(target);
  while (in.next_line()) {
    std::vector<std::string_view> t = in.tokens();
    if (!t.empty() && t[0] == "**") t.erase(t.begin());
    if (t.size() != 4) in.fail("a line 'index name value reduced-cost' (4 fields)", in.line());
    (void)in.to_int(t[0], "a column index");
    const int i = target.variable(in, in.line_number(), t[1]);
    if (i >= 0) values.set(in, in.line_number(), i, t[2]);
  }
  return values.finish(in, in.line_number(), /*sparse=*/true);
}

// ---- GLPK ----

bool is_glpk(std::string_view text) {
  const std::string_view first = first_content_line(text);
  return starts(first, "c Problem:") || starts(first, "s mip ");
}

Assignment read_glpk(TextInput& in, const SolutionTarget& target) {
  const int n = target.num_variables();
  SolutionValues values(target);
  std::int64_t columns = -1;
  while (in.next_line()) {
    const std::vector<std::string_view> t = in.tokens();
    if (t[0] == "c") continue;
    if (t[0] == "s") {
      if (t.size() < 2 || t[1] != "mip")
        in.fail(
            "GLPK's MIP solution line 's mip ROWS COLS STATUS OBJ' (glpsol of a problem "
            "with binaries)",
            in.line());
      if (t.size() != 6) in.fail("'s mip ROWS COLS STATUS OBJ' (6 fields)", in.line());
      columns = in.to_int(t[3], "a column count");
      if (t[4] != "o" && t[4] != "f")
        in.fail("status o (optimal) or f (feasible): GLPK found no integer solution", t[4]);
      if (columns < n)
        in.fail(concat("at least ", std::to_string(n), " columns (the model's variables)"), t[3]);
      continue;
    }
    if (t[0] == "e") return values.finish(in, in.line_number(), /*sparse=*/false);
    if (columns < 0) in.fail("GLPK's line 's mip ...' before the values", in.line());
    if (t[0] == "i") continue;
    if (t[0] != "j") in.fail("a GLPK solution line (c, s, i, j or e)", in.line());
    if (t.size() != 3) in.fail("'j COL VALUE' (3 fields)", in.line());
    const std::int64_t j = in.to_int(t[1], "a column number");
    if (j < 1 || j > columns)
      in.fail(concat("a column number in [1, ", std::to_string(columns), "]"), t[1]);
    // Columns past n are the linearised writers' products and offset column.
    if (j <= n) values.set(in, in.line_number(), static_cast<int>(j - 1), t[2]);
  }
  in.fail_eof("GLPK's end line 'e o f'");
}

// ---- HiGHS ----

bool is_highs(std::string_view text) { return starts(first_content_line(text), "Model status"); }

Assignment read_highs(TextInput& in, const SolutionTarget& target) {
  if (!in.next_line() || !starts(in.line(), "Model status"))
    in.fail("HiGHS's first line 'Model status'", in.line());
  while (in.next_line() && in.line() != "# Primal solution values") {
  }
  if (in.line() != "# Primal solution values")
    in.fail_eof("HiGHS's section '# Primal solution values'");
  if (!in.next_line()) in.fail_eof("the primal solution's status");
  if (in.line() == "None" || in.line() == "Infeasible")
    in.fail("a primal solution (Feasible)", in.line());
  SolutionValues values(target);
  std::int64_t columns = -1;
  while (columns < 0 && in.next_line()) {
    const std::vector<std::string_view> t = in.tokens();
    if (t.size() == 3 && t[0] == "#" && t[1] == "Columns") columns = in.to_int(t[2], "a count");
  }
  if (columns < 0) in.fail_eof("HiGHS's line '# Columns N'");
  const std::int64_t header = in.line_number();
  for (std::int64_t k = 0; k < columns; ++k) {
    if (!in.next_line())
      in.fail_eof(concat(std::to_string(columns), " column lines as line ", std::to_string(header),
                         " says, not ", std::to_string(k)));
    const std::vector<std::string_view> t = in.tokens();
    if (t.size() != 2) in.fail("a line 'name value' (2 fields)", in.line());
    const int i = target.variable(in, in.line_number(), t[0]);
    if (i >= 0) values.set(in, in.line_number(), i, t[1]);
  }
  return values.finish(in, in.line_number(), /*sparse=*/false);
}

// ---- Gurobi and other "name value" files ----

bool is_gurobi(std::string_view text) {
  const std::string_view first = first_content_line(text);
  if (starts(first, "# Solution for model") || starts(first, "# Objective value")) return true;
  // Any file whose first non-comment line is "name value" with a name that is not a number.
  TextInput probe("", std::string(text.substr(0, 4096)));
  probe.comment_chars = "#";
  if (!probe.next_line()) return false;
  const std::vector<std::string_view> t = probe.tokens();
  return t.size() == 2 &&
         (std::isalpha(static_cast<unsigned char>(t[0][0])) != 0 || t[0][0] == '_');
}

Assignment read_gurobi(TextInput& in, const SolutionTarget& target) {
  in.comment_chars = "#";
  SolutionValues values(target);
  bool any = false;
  while (in.next_line()) {
    const std::vector<std::string_view> t = in.tokens();
    if (t.size() != 2) in.fail("a line 'name value' (2 fields)", in.line());
    const int i = target.variable(in, in.line_number(), t[0]);
    if (i >= 0) values.set(in, in.line_number(), i, t[1]);
    any = true;
  }
  if (!any) in.fail_eof("'name value' lines");
  return values.finish(in, in.line_number(), /*sparse=*/false);
}

// ---- CPLEX ----

bool is_cplex(std::string_view text) {
  const std::string_view first = first_content_line(text);
  return starts(first, "<?xml") || starts(first, "<CPLEXSolution");
}

std::string xml_unescape(std::string_view s) {
  std::string out;
  for (std::size_t k = 0; k < s.size(); ++k) {
    if (s[k] != '&') {
      out += s[k];
      continue;
    }
    static const std::pair<std::string_view, char> entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool done = false;
    for (const auto& [entity, ch] : entities)
      if (s.substr(k).starts_with(entity)) {
        out += ch;
        k += entity.size() - 1;
        done = true;
        break;
      }
    if (!done) out += '&';
  }
  return out;
}

// The value of attribute `name` in the text of one tag; nullopt when absent.
std::optional<std::string_view> xml_attribute(std::string_view tag, std::string_view name) {
  std::size_t at = 0;
  while ((at = tag.find(name, at)) != std::string_view::npos) {
    const bool boundary = at > 0 && (tag[at - 1] == ' ' || tag[at - 1] == '\t' ||
                                     tag[at - 1] == '\n' || tag[at - 1] == '\r');
    std::size_t k = at + name.size();
    while (k < tag.size() && tag[k] == ' ') ++k;
    if (boundary && k < tag.size() && tag[k] == '=') {
      ++k;
      while (k < tag.size() && tag[k] == ' ') ++k;
      if (k >= tag.size() || (tag[k] != '"' && tag[k] != '\'')) return std::nullopt;
      const char quote_char = tag[k];
      const std::size_t end = tag.find(quote_char, k + 1);
      if (end == std::string_view::npos) return std::nullopt;
      return tag.substr(k + 1, end - k - 1);
    }
    at += name.size();
  }
  return std::nullopt;
}

Assignment read_cplex(TextInput& in, const SolutionTarget& target) {
  const std::string& text = in.text();
  const std::int64_t last_line = text.empty() ? 1 : line_of_offset(text, text.size() - 1);
  const std::size_t open = text.find("<variables");
  if (open == std::string::npos)
    in.fail_at(last_line, "expected CPLEX's <variables> section, found none");
  const std::size_t close = text.find("</variables>", open);
  if (close == std::string::npos)
    in.fail_at(last_line, "expected </variables> closing the section opened on line " +
                              std::to_string(line_of_offset(text, open)) + ", found end of file");
  SolutionValues values(target);
  // Lines are counted as the search moves on (line_of_offset from the start for every tag would
  // make the read quadratic in the file size).
  std::int64_t line = line_of_offset(text, open);
  std::size_t counted = open;
  std::size_t at = text.find('>', open) + 1;
  while ((at = text.find("<variable", at)) < close) {
    line += std::count(text.begin() + static_cast<std::ptrdiff_t>(counted),
                       text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
    counted = at;
    const std::size_t end = text.find('>', at);
    if (end == std::string::npos || end > close)
      in.fail_at(line, "expected a <variable .../> tag, found it unclosed");
    const std::string_view tag = std::string_view(text).substr(at, end - at);
    const std::optional<std::string_view> name = xml_attribute(tag, "name");
    const std::optional<std::string_view> value = xml_attribute(tag, "value");
    if (!name || !value)
      in.fail_at(line, concat("expected a <variable> with name=\"...\" and value=\"...\", found ",
                              quote(tag)));
    const int i = target.variable(in, line, xml_unescape(*name));
    if (i >= 0) values.set(in, line, i, *value);
    at = end;
  }
  line += std::count(text.begin() + static_cast<std::ptrdiff_t>(counted),
                     text.begin() + static_cast<std::ptrdiff_t>(close), '\n');
  return values.finish(in, line, /*sparse=*/false);
}

// ---- qbsolv ----

constexpr std::string_view kQbsolvBits = "Number of bits in solution";

bool is_qbsolv(std::string_view text) {
  return text.substr(0, 4096).find(kQbsolvBits) != std::string_view::npos;
}

Assignment read_qbsolv_output(TextInput& in, const SolutionTarget& target) {
  while (in.next_line()) {
    if (!in.line().ends_with(kQbsolvBits)) continue;
    const std::vector<std::string_view> t = in.tokens();
    const std::int64_t bits = in.to_int(t[0], concat("the count in 'N ", kQbsolvBits, "'"));
    if (bits != target.num_variables())
      in.fail(concat(std::to_string(target.num_variables()), " bits (the model's variables)"),
              t[0]);
    if (!in.next_line()) in.fail_eof("qbsolv's line of solution bits");
    const std::string_view s = in.line();
    std::vector<PositionalToken> tokens;
    for (std::size_t k = 0; k < s.size(); ++k) {
      if (s[k] != '0' && s[k] != '1') in.fail("a 0/1 string (qbsolv's solution bits)", s);
      tokens.push_back({s.substr(k, 1), in.line_number()});
    }
    return positional_values(in, tokens, target.num_variables(), false);
  }
  in.fail_eof(concat("qbsolv's line 'N ", kQbsolvBits, "'"));
}

// ---- MQLib ----

bool is_mqlib(std::string_view text) {
  // The summary line: runtime_limit,heuristic_code,"filename",best,runtime,history.
  const std::string_view first = first_content_line(text);
  const std::size_t c1 = first.find(','), c2 = c1 == std::string_view::npos
                                                   ? std::string_view::npos
                                                   : first.find(',', c1 + 1);
  if (c2 != std::string_view::npos && c2 + 1 < first.size() && first[c2 + 1] == '"' &&
      std::isdigit(static_cast<unsigned char>(first[0])) != 0)
    return true;
  std::size_t pos = 0;
  while ((pos = text.find("Solution:", pos)) != std::string_view::npos) {
    const bool line_start = pos == 0 || text[pos - 1] == '\n';
    const std::size_t after = pos + 9;
    const bool line_end = after == text.size() || text[after] == '\n' || text[after] == '\r';
    if (line_start && line_end) return true;
    pos = after;
  }
  return false;
}

Assignment read_mqlib_output(TextInput& in, const SolutionTarget& target) {
  while (in.next_line() && in.line() != "Solution:") {
  }
  if (in.line() != "Solution:") in.fail_eof("MQLib's line 'Solution:' (run MQLib with -ps)");
  if (!in.next_line()) in.fail_eof("MQLib's solution line after 'Solution:'");
  std::vector<PositionalToken> tokens;
  bool spin = false;
  for (std::string_view t : in.tokens()) {
    tokens.push_back({t, in.line_number()});
    spin = spin || t == "-1";
  }
  Assignment x = positional_values(in, tokens, target.num_variables(), spin);
  if (in.next_line()) in.fail("nothing after MQLib's solution line", in.line());
  return x;
}

// ---- dimod ----

bool is_dimod(std::string_view text) {
  return first_content_line(text).starts_with("{") &&
         text.find("\"sample_data\"") != std::string_view::npos;
}

Assignment read_dimod(TextInput& in, const SolutionTarget& target) {
  const json root = detail::parse_json<json>(in.text(), {in.path(), 0, true});
  const auto line_of = [&](const char* key) {
    const std::size_t at = in.text().find(concat("\"", key, "\""));
    return at == std::string::npos ? std::int64_t{1} : line_of_offset(in.text(), at);
  };
  const auto fail = [&](const char* key, const std::string& expected, const json* found) {
    in.fail_at(line_of(key), concat("expected ", expected, ", found ",
                                    found ? detail::describe_json(*found) : "none"));
  };
  const auto member = [&](const json& object, const char* key) -> const json* {
    return object.is_object() && object.contains(key) ? &object.at(key) : nullptr;
  };
  const json* type = member(root, "type");
  if (type == nullptr || *type != "SampleSet")
    fail("type", "a dimod SampleSet (\"type\": \"SampleSet\")", type);
  const json* version = member(root, "version");
  const json* schema = version ? member(*version, "sampleset_schema") : nullptr;
  if (schema == nullptr || !schema->is_string() || schema->get<std::string>() < "3.0.0" ||
      schema->get<std::string>() >= "4")
    fail("version", "sampleset_schema 3.x (dimod 0.9.3 or later)", schema);
  const json* num_variables = member(root, "num_variables");
  const json* num_rows = member(root, "num_rows");
  if (num_variables == nullptr || !num_variables->is_number_unsigned())
    fail("num_variables", "a count", num_variables);
  if (num_rows == nullptr || !num_rows->is_number_unsigned() || *num_rows == 0)
    fail("num_rows", "at least one sample", num_rows);
  const std::size_t n = num_variables->get<std::size_t>();
  const std::size_t rows = num_rows->get<std::size_t>();
  const json* labels = member(root, "variable_labels");
  if (labels == nullptr || !labels->is_array() || labels->size() != n)
    fail("variable_labels", concat("an array of ", std::to_string(n), " labels"), labels);
  const json* vartype = member(root, "variable_type");
  if (vartype == nullptr || (*vartype != "BINARY" && *vartype != "SPIN"))
    fail("variable_type", "BINARY or SPIN", vartype);
  const bool spin = *vartype == "SPIN";
  const json* data = member(root, "sample_data");
  const json* use_bytes = data ? member(*data, "use_bytes") : nullptr;
  if (use_bytes != nullptr && *use_bytes == true)
    fail("sample_data", "samples as lists (to_serializable(use_bytes=False))", use_bytes);
  const json* sample_rows = data ? member(*data, "data") : nullptr;
  if (sample_rows == nullptr || !sample_rows->is_array() || sample_rows->size() != rows)
    fail("sample_data", concat("an array of ", std::to_string(rows), " sample rows"), sample_rows);
  const json* packed_flag = member(root, "sample_packed");
  const bool packed = packed_flag == nullptr || *packed_flag == true;

  // The lowest-energy row (the first without an energy vector).
  std::size_t best = 0;
  const json* vectors = member(root, "vectors");
  const json* energy = vectors ? member(*vectors, "energy") : nullptr;
  const json* energies = energy ? member(*energy, "data") : nullptr;
  if (energies != nullptr) {
    if (!energies->is_array() || energies->size() != rows)
      fail("energy", concat("an energy vector of ", std::to_string(rows), " numbers"), energies);
    for (std::size_t r = 0; r < rows; ++r) {
      if (!(*energies)[r].is_number()) fail("energy", "numbers", &(*energies)[r]);
      if ((*energies)[r].get<double>() < (*energies)[best].get<double>()) best = r;
    }
  }
  const json& row = (*sample_rows)[best];
  const std::size_t words = (n + 31) / 32;
  if (!row.is_array() || row.size() != (packed ? words : n))
    fail("sample_data",
         packed ? concat("packed rows of ", std::to_string(words), " 32-bit words")
                : concat("rows of ", std::to_string(n), " values"),
         &row);
  const std::int64_t line = line_of("sample_data");
  const std::int64_t labels_line = line_of("variable_labels");
  SolutionValues values(target);
  for (std::size_t k = 0; k < n; ++k) {
    bool one = false;
    if (packed) {
      const json& word = row[k / 32];
      if (!word.is_number_unsigned() || word.get<std::uint64_t>() > 0xFFFFFFFFULL)
        fail("sample_data", "32-bit unsigned words", &word);
      one = ((word.get<std::uint64_t>() >> (k % 32)) & 1U) != 0;
    } else {
      const json& v = row[k];
      const bool ok = v.is_number_integer() && (spin ? (v == -1 || v == 1) : (v == 0 || v == 1));
      if (!ok) fail("sample_data", spin ? "values -1 or +1" : "values 0 or 1", &v);
      one = v == 1;
    }
    const json& label = (*labels)[k];
    int i = -1;
    if (label.is_number_integer()) {
      const std::int64_t index = label.get<std::int64_t>();
      if (index < 0 || index >= target.num_variables())
        fail("variable_labels",
             concat("integer labels in [0, ", std::to_string(target.num_variables()), ")"), &label);
      i = static_cast<int>(index);
    } else if (label.is_string()) {
      i = target.variable(in, labels_line, label.get<std::string>());
    } else {
      fail("variable_labels", "integer or string labels", &label);
    }
    if (i >= 0) values.set(in, line, i, one ? "1" : "0");
  }
  return values.finish(in, line, /*sparse=*/false);
}

}  // namespace

SolutionFormatEntry cbc_solution_format() {
  return {{"cbc", "CBC's -solu output: status line, then 'index name value reduced-cost' lines"},
          is_cbc,
          read_cbc};
}

SolutionFormatEntry glpk_solution_format() {
  return {{"glpk",
           "glpsol -w plain MIP solution: 's mip ...', 'j COL VALUE' (columns 1..n are the "
           "variables)"},
          is_glpk,
          read_glpk};
}

SolutionFormatEntry highs_solution_format() {
  return {{"highs", "HiGHS solution file: 'Model status', '# Columns N', 'name value' lines"},
          is_highs,
          read_highs};
}

SolutionFormatEntry gurobi_solution_format() {
  return {
      {"gurobi", "Gurobi .sol ('# comments', then 'name value' lines) and other name-value files"},
      is_gurobi,
      read_gurobi};
}

SolutionFormatEntry cplex_solution_format() {
  return {{"cplex", "CPLEX .sol XML: <variable name=... value=.../> in <variables>"},
          is_cplex,
          read_cplex};
}

SolutionFormatEntry qbsolv_solution_format() {
  return {{"qbsolv", "qbsolv's output: 'N Number of bits in solution', then the 0/1 string"},
          is_qbsolv,
          read_qbsolv_output};
}

SolutionFormatEntry mqlib_solution_format() {
  return {{"mqlib", "MQLib -ps output: 'Solution:', then 0/1 (QUBO) or -1/+1 (Max-Cut) values"},
          is_mqlib,
          read_mqlib_output};
}

SolutionFormatEntry dimod_solution_format() {
  return {{"dimod", "dimod SampleSet.to_serializable() JSON: its lowest-energy sample"},
          is_dimod,
          read_dimod};
}

}  // namespace qprune::formats_detail
