// dimod COO text `.coo`: lines `u v bias` (0-based), `u u bias` a linear bias, optional
// `# vartype=BINARY|SPIN` line; SPIN files are Ising models and are converted to QUBO (x =
// (1+s)/2). As in dimod, entries may come in any order, (u, v) and (v, u) are the same pair and
// duplicates add. The offset, which dimod's COO cannot hold, is the comment `# offset=<value>`
// (ignored by dimod). The writer uses plain decimals only because dimod's line regex skips
// exponents, and writes every variable's linear line (zeros too) so the number of variables
// survives. A file of comment lines followed by plain `u v bias` lines is read in bulk
// (triplet_scan.hpp); any other, and every error, by the line-by-line reader.
#include "problems/formats/format_entry.hpp"
#include "problems/formats/triplet_scan.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

// A `#` line: `vartype=` and `offset=` set `spin` and `offset`.
void read_comment(TextInput& in, std::string_view line, bool& spin, double& offset) {
  const std::string_view vartype = comment_value(line, "vartype");
  if (!vartype.empty()) {
    if (vartype == "SPIN")
      spin = true;
    else if (vartype == "BINARY")
      spin = false;
    else
      in.fail("vartype BINARY or SPIN", vartype);
  }
  const std::string_view v = comment_value(line, "offset");
  if (!v.empty()) offset = in.to_double(v, "a number after '# offset='");
}

QuboModel build(std::int64_t n, std::vector<Coupling> entries, bool spin, double offset) {
  if (!spin) {
    return QuboModel::from_couplings(static_cast<int>(n), Eigen::VectorXd::Zero(n),
                                     std::move(entries), offset);
  }
  IsingModel ising;
  ising.h = Eigen::VectorXd::Zero(n);
  ising.offset = offset;
  // Sum duplicates and fold (v, u) onto (u, v) through the QUBO builder, then read J back.
  const QuboModel folded = QuboModel::from_couplings(static_cast<int>(n), Eigen::VectorXd::Zero(n),
                                                     std::move(entries), 0.0);
  ising.h = folded.linear();
  ising.j = folded.coupling_list();
  return QuboModel::from_ising(ising);
}

// Leading comment lines one by one, then the entries in bulk; nullopt for anything unusual.
std::optional<QuboModel> read_coo_fast(TextInput& in) {
  bool spin = false;
  double offset = 0.0;
  std::size_t body = in.offset();
  while (in.next_line() && in.line().front() == '#') {
    read_comment(in, in.line(), spin, offset);
    body = in.offset();
  }
  TripletRules rules;
  rules.max_index = std::min(std::int64_t{1} << 30, max_plausible_variables(in)) - 1;
  std::optional<TripletScan> scan = scan_triplets(in.text(), body, rules);
  if (!scan || scan->entries.empty()) return std::nullopt;
  int largest = 0;
  for (const Coupling& e : scan->entries) largest = std::max(largest, std::max(e.i, e.j));
  const std::int64_t n = std::int64_t{largest} + 1;
  check_model_memory(in, n);
  return build(n, std::move(scan->entries), spin, offset);
}

QuboModel read_coo_checked(TextInput& in) {
  bool spin = false;
  double offset = 0.0;
  std::int64_t n = 0;
  std::vector<Coupling> entries;
  while (in.next_line()) {
    const std::string_view line = in.line();
    if (line.front() == '#') {
      read_comment(in, line, spin, offset);
      continue;
    }
    const std::vector<std::string_view> t = in.tokens();
    if (t.size() != 3) in.fail("a line 'u v bias' (3 fields)", line);
    const std::string range = "a variable index in [0, 2^30)";
    const std::int64_t u = in.to_int(t[0], range), v = in.to_int(t[1], range);
    if (u < 0 || u >= (std::int64_t{1} << 30)) in.fail(range, t[0]);
    if (v < 0 || v >= (std::int64_t{1} << 30)) in.fail(range, t[1]);
    // The largest index implies the number of variables, which must be plausible for the file
    // as a declared count must (format_entry.hpp).
    const std::int64_t max_n = max_plausible_variables(in);
    for (const auto& [index, token] : {std::pair{u, t[0]}, std::pair{v, t[1]}})
      if (index >= max_n)
        in.fail(concat("a variable index below ", std::to_string(max_n), " for a file of ",
                       std::to_string(in.text().size()), " bytes (2^20 + 16 per byte)"),
                token);
    const double bias = in.to_double(t[2], "a bias");
    n = std::max(n, std::max(u, v) + 1);
    entries.push_back({static_cast<int>(u), static_cast<int>(v), bias});
  }
  if (entries.empty()) in.fail_eof("at least one line 'u v bias'");
  check_model_memory(in, n);
  return build(n, std::move(entries), spin, offset);
}

QuboModel read_coo(TextInput& in, int /*instance*/) {
  return read_fast_or_checked(in, read_coo_fast, read_coo_checked);
}

void write_coo(const QuboModel& m, const WriteContext& context, std::string& out) {
  auto entry = [&](int i, int j, double v) {
    out += std::to_string(i) + " " + std::to_string(j) + " " +
           number_text(v, context.precision, true) + "\n";
  };
  const int n = m.num_variables();
  if (context.spin) {  // the Ising form, s = 2x - 1: the same energy of every state
    const IsingModel ising = m.to_ising();
    out += "# vartype=SPIN\n";
    out +=
        "# dimod COO (Ising) written by qprune: minimise offset + sum_u bias_uu s_u + sum_{u<v} "
        "bias_uv s_u s_v, s in {-1, +1}, s = 2x - 1\n";
    for (const std::string& note : context.notes) out += "# " + note + "\n";
    if (ising.offset != 0.0)
      out += "# offset=" + number_text(ising.offset, context.precision, true) + "\n";
    for (int i = 0; i < n; ++i) entry(i, i, ising.h[i]);
    for (const Coupling& c : ising.j) entry(c.i, c.j, c.value);
    return;
  }
  out += "# vartype=BINARY\n";
  out +=
      "# dimod COO written by qprune: minimise offset + sum_u bias_uu x_u + sum_{u<v} bias_uv x_u "
      "x_v\n";
  for (const std::string& note : context.notes) out += "# " + note + "\n";
  if (m.offset() != 0.0)
    out += "# offset=" + number_text(m.offset(), context.precision, true) + "\n";
  for (int i = 0; i < n; ++i) {
    entry(i, i, m.linear()[i]);
    m.for_each_in_row(i, [&](int j, double v) {
      if (j > i) entry(i, j, v);
    });
  }
}

}  // namespace

FormatEntry coo_format() {
  return {{"coo",
           {".coo"},
           true,
           true,
           "dimod COO: 0-based 'u v bias', minimise, duplicates add, '# vartype=SPIN' for Ising"},
          read_coo,
          write_coo,
          false,
          false};
}

}  // namespace qprune::formats_detail
