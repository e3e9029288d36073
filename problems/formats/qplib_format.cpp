// QPLIB `.qplib`, binary unconstrained instances (type <obj>B<N|B>, e.g. QBB). One
// field per line (`#` comments): name, type, sense, n, number of Q entries and `i j v` lines,
// default linear coefficient, count and `i b` lines, objective constant, value of infinity, then
// the starting-point and name sections (checked, not used). The objective is
//   c0 + sum_i b_i x_i + 1/2 sum_{listed (i, j, v)} v x_i x_j,
// so a listed off-diagonal entry means v/2 x_i x_j and a diagonal entry v/2 x_i (x^2 = x).
// NOTE: some descriptions of the format read an off-diagonal entry as v x_i x_j; the data say v/2:
// QPLIB_5909 equals OR-Library bqp250 #8 on every x only with v/2, and all 23 QPLIB reference
// answers of the benchmark collection (tests/data/instances) are reproduced only with v/2
// (tests/test_formats.cpp checks both). A maximising file is negated (E = -objective). Non-binary
// or constrained types are rejected; a pair listed twice is rejected.
#include <cctype>
#include <cstdlib>
#include <unordered_set>

#include "problems/formats/format_entry.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

QuboModel read_qplib(TextInput& in, int /*instance*/) {
  in.comment_chars = "#";
  std::vector<std::string_view> t;
  const auto line = [&](const std::string& expected, std::size_t fields) {
    if (!in.next_line()) in.fail_eof(expected);
    t = in.tokens();
    if (t.size() != fields) in.fail(expected, in.line());
  };
  // Entries that follow a count are lines of 2 or 3 fields (4 or 6 bytes at least).
  const auto count = [&](const std::string& expected, std::int64_t min_entry_bytes = 4) {
    line(expected + " (an integer >= 0)", 1);
    const std::int64_t k = in.to_int(t[0], expected + " (an integer >= 0)");
    if (k < 0) in.fail(expected + " >= 0", t[0]);
    check_declared_entries(in, k, expected, t[0], min_entry_bytes);
    return k;
  };
  line("the problem name", 1);
  line("the problem type (three letters)", 1);
  const std::string type(t[0]);
  if (type.size() != 3 || std::string("LDCQ").find(type[0]) == std::string::npos ||
      type[1] != 'B' || (type[2] != 'N' && type[2] != 'B'))
    in.fail(
        "a binary unconstrained type: objective L/D/C/Q, variables B, constraints N or B "
        "(e.g. QBB)",
        t[0]);
  line("the sense 'minimize' or 'maximize'", 1);
  const std::string sense = lower_case(t[0]);
  if (sense != "minimize" && sense != "maximize")
    in.fail("the sense 'minimize' or 'maximize'", t[0]);
  const double sign = sense == "maximize" ? -1.0 : 1.0;
  line("the number of variables", 1);
  const std::int64_t n = in.to_int(t[0], "the number of variables (an integer >= 1)");
  if (n < 1 || n > (std::int64_t{1} << 30)) in.fail("the number of variables in [1, 2^30]", t[0]);
  const std::string range = "a 1-based index in [1, " + std::to_string(n) + "]";
  check_declared_variables(in, n, "the number of variables", t[0]);
  check_model_memory(in, n);
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  std::vector<Coupling> q;
  if (type[0] != 'L') {
    const std::int64_t nq = count("the number of quadratic objective entries", 6);
    std::unordered_set<std::uint64_t> seen;
    std::vector<bool> diagonal_seen(static_cast<std::size_t>(n), false);
    for (std::int64_t e = 0; e < nq; ++e) {
      line(
          "a quadratic entry 'i j v' (" + std::to_string(e + 1) + " of " + std::to_string(nq) + ")",
          3);
      const std::int64_t i = in.to_int(t[0], range), j = in.to_int(t[1], range);
      if (i < 1 || i > n) in.fail(range, t[0]);
      if (j < 1 || j > n) in.fail(range, t[1]);
      const double v = in.to_double(t[2], "a value");
      const int a = static_cast<int>(i - 1), b = static_cast<int>(j - 1);
      if (a == b) {
        if (diagonal_seen[static_cast<std::size_t>(a)]) in.fail("each entry once", in.line());
        diagonal_seen[static_cast<std::size_t>(a)] = true;
        c[a] += sign * v / 2.0;
      } else {
        if (!seen.insert(pair_key(a, b)).second) in.fail("each pair once", in.line());
        q.push_back({a, b, sign * v / 2.0});
      }
    }
  }
  line("the default linear coefficient", 1);
  const double b0 = in.to_double(t[0], "the default linear coefficient");
  Eigen::VectorXd b = Eigen::VectorXd::Constant(n, b0);
  const std::int64_t nb = count("the number of non-default linear coefficients");
  for (std::int64_t e = 0; e < nb; ++e) {
    line("a linear entry 'i b' (" + std::to_string(e + 1) + " of " + std::to_string(nb) + ")", 2);
    const std::int64_t i = in.to_int(t[0], range);
    if (i < 1 || i > n) in.fail(range, t[0]);
    b[i - 1] = in.to_double(t[1], "a value");
  }
  c += sign * b;
  line("the objective constant", 1);
  const double offset = sign * in.to_double(t[0], "the objective constant");
  line("the value for infinity", 1);
  {
    // Usually 1.79769313486232E+308, which is just past the largest double: strtod, not from_chars.
    const std::string text(t[0]);
    char* end = nullptr;
    (void)std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) in.fail("the value for infinity (a number)", t[0]);
  }
  // Starting point (primal values, bound duals) and names: checked for structure, not used.
  for (const char* what : {"variable primal value", "variable bound dual value"}) {
    line(std::string("the default ") + what + " in the starting point", 1);
    (void)in.to_double(t[0], std::string("the default ") + what);
    const std::int64_t k = count(std::string("the number of non-default ") + what + "s");
    for (std::int64_t e = 0; e < k; ++e) line("an entry 'i value'", 2);
  }
  for (const char* what : {"variable names", "constraint names"}) {
    const std::int64_t k = count(std::string("the number of non-default ") + what);
    for (std::int64_t e = 0; e < k; ++e) line("an entry 'i name'", 2);
  }
  if (in.next_line()) in.fail("end of file after the name sections", in.line());
  return QuboModel::from_couplings(static_cast<int>(n), std::move(c), q, offset);
}

void write_qplib(const QuboModel& m, const WriteContext& context, std::string& out) {
  // Minimise c0 + b.x + 1/2 sum_listed v x_i x_j: each coupling q_ij once, lower triangle
  // (i > j), as v = 2 q_ij; the linear terms in the linear section, none on the diagonal.
  const auto text = [&](double v) { return number_text(v, context.precision, true); };
  for (const std::string& note : context.notes) out += "# " + note + "\n";
  out += "qprune # the problem's name\n";
  const int n = m.num_variables();
  out += m.num_couplings() > 0 ? "QBN" : "LBN";
  out += " # binary variables, no constraints\nminimize\n";
  out += std::to_string(n) + " # number of variables\n";
  if (m.num_couplings() > 0) {
    out += std::to_string(m.num_couplings()) + " # number of quadratic terms in objective\n";
    m.for_each_coupling([&](int i, int j, double q) {
      out += std::to_string(j + 1) + " " + std::to_string(i + 1) + " " + text(2.0 * q) + "\n";
    });
  }
  int nonzero = 0;
  for (int i = 0; i < n; ++i) nonzero += m.linear()[i] != 0.0 ? 1 : 0;
  out += "0 # default value for linear coefficients in objective\n";
  out += std::to_string(nonzero) + " # number of non-default linear coefficients in objective\n";
  for (int i = 0; i < n; ++i)
    if (m.linear()[i] != 0.0) out += std::to_string(i + 1) + " " + text(m.linear()[i]) + "\n";
  out += text(m.offset()) + " # objective constant\n";
  out += "1.79769313486232E+308 # value for infinity\n";
  out += "0 # default variable primal value in starting point\n";
  out += "0 # number of non-default variable primal values in starting point\n";
  out += "0 # default variable bound dual value in starting point\n";
  out += "0 # number of non-default variable bound dual values in starting point\n";
  // Labels as variable names where they are single words (QPLIB names are one field).
  bool names = !m.labels().empty();
  for (const std::string& label : m.labels())
    names = names && !label.empty() && label.find_first_of(" \t#") == std::string::npos;
  out += std::to_string(names ? n : 0) + " # number of non-default variable names\n";
  if (names)
    for (int i = 0; i < n; ++i)
      out += std::to_string(i + 1) + " " + m.labels()[static_cast<std::size_t>(i)] + "\n";
  out += "0 # number of non-default constraint names\n";
}

}  // namespace

FormatEntry qplib_format() {
  return {{"qplib",
           {".qplib"},
           true,
           true,
           "QPLIB binary unconstrained (QBB/QBN): objective c + b.x + 1/2 sum of listed v x_i x_j"},
          read_qplib,
          write_qplib,
          false,
          false};
}

}  // namespace qprune::formats_detail
