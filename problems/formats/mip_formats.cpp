// Mixed-integer programming formats (write only), for MIP solvers:
// - `lp`: CPLEX LP with the quadratic objective
//     Minimize  obj: sum c_i x_i + [ sum_{i<j} 2 q_ij x_i * x_j ] / 2 + offset
//   (inside `[ ... ] / 2` every coefficient is twice the x_i x_j coefficient), for CPLEX, Gurobi,
//   SCIP, HiGHS. The offset is a bare constant at the end of the objective (CPLEX 12.6+, Gurobi,
//   HiGHS and SCIP read it; older readers reject it, see docs/formats.md).
// - `lp-linear` and `mps` (free MPS): the same problem linearised, which the open-source MIP
//   solvers read (CBC and GLPK refuse quadratic objectives): one continuous product variable
//   y_ij >= 0 per coupling with the half of McCormick's envelope its sign needs. Minimising
//   pushes y_ij down when q_ij > 0, so only y_ij >= x_i + x_j - 1 is needed; up when q_ij < 0, so
//   only y_ij <= x_i and y_ij <= x_j are. With x binary, y_ij = x_i x_j at every optimum. The
//   offset is the objective coefficient of a variable fixed at 1: readers disagree on how (and
//   whether) an objective constant is written, a fixed variable they all read alike.
// Constraint groups stay exact as equalities `sum x = k` in all three. Names are x1..xn (1-based,
// as in FORMATS.md) or, when the model has labels, the labels made safe: characters outside
// [A-Za-z0-9_.] become '_', and a name that starts with a non-letter or 'e'/'E' (which readers may
// take for an exponent) or is a keyword gets the prefix "x_"; clashes get a suffix. Product
// variables take a prefix no variable name starts with ("qp", "qp_", ...).
#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "problems/formats/format_entry.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

bool is_keyword(const std::string& name) {
  static const std::set<std::string> keywords = {
      "st",       "s.t.",     "subject",  "to",       "such",
      "that",     "minimize", "maximize", "minimum",  "maximum",
      "min",      "max",      "bounds",   "bound",    "binary",
      "binaries", "bin",      "general",  "generals", "gen",
      "end",      "free",     "infinity", "inf",      "semi-continuous",
      "semis",    "semi",     "sos",      "obj"};
  return keywords.count(lower_case(name)) > 0;
}

}  // namespace

std::vector<std::string> lp_names(const QuboModel& m) {
  const int n = m.num_variables();
  std::vector<std::string> names(static_cast<std::size_t>(n));
  if (m.labels().empty()) {
    for (int i = 0; i < n; ++i)
      names[static_cast<std::size_t>(i)] = concat("x", std::to_string(i + 1));
    return names;
  }
  std::set<std::string> used;
  for (int i = 0; i < n; ++i) {
    std::string s = m.labels()[static_cast<std::size_t>(i)].substr(0, 200);
    for (char& ch : s)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.') ch = '_';
    if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == 'e' ||
        s[0] == 'E' || is_keyword(s))
      s = concat("x_", s);
    if (used.count(s)) s = concat(s, "_", std::to_string(i));
    used.insert(s);
    names[static_cast<std::size_t>(i)] = s;
  }
  return names;
}

std::string lp_product_prefix(const std::vector<std::string>& names) {
  std::string prefix = "qp";
  const auto taken = [&](const std::string& p) {
    return std::any_of(names.begin(), names.end(),
                       [&](const std::string& name) { return name.rfind(p, 0) == 0; });
  };
  while (taken(prefix)) prefix += "_";
  return prefix;
}

namespace {

// Row name of constraint group g: c<g+1>, then its name made safe.
std::string group_row_name(const CardinalityConstraint& group, std::size_t g) {
  std::string name = group.name.substr(0, 200);
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.') ch = '_';
  return name.empty() ? concat("c", std::to_string(g + 1))
                      : concat("c", std::to_string(g + 1), "_", name);
}

// Appends " + 3 name", " - name", ... (a first term without its '+').
class Terms {
 public:
  Terms(std::string& out, int precision) : out_(out), precision_(precision) {}
  void add(double coefficient, const std::string& what) {
    std::string term = coefficient < 0 ? "- " : (first_ ? "" : "+ ");
    const double a = std::abs(coefficient);
    if (a != 1.0) term += number_text(a, precision_) + " ";
    term += what;
    put(term);
  }
  void put(const std::string& text) {
    if (column_ + text.size() + 1 > 100) {  // CPLEX limits lines to 510 characters
      out_ += "\n  ";
      column_ = 2;
    } else if (!first_ || column_ > 0) {
      out_ += " ";
      ++column_;
    }
    out_ += text;
    column_ += text.size();
    first_ = false;
  }
  void start(std::size_t column) {
    column_ = column;
    first_ = true;
  }
  [[nodiscard]] bool empty() const { return first_; }

 private:
  std::string& out_;
  int precision_;
  std::size_t column_ = 0;
  bool first_ = true;
};

void write_lp(const QuboModel& m, const WriteContext& context, std::string& out) {
  const int n = m.num_variables();
  if (n < 1) throw InvalidArgument("lp needs at least one variable");
  const std::vector<std::string> names = lp_names(m);
  out +=
      "\\ CPLEX LP written by qprune: minimise offset + sum_i c_i x_i + sum_{i<j} q_ij x_i x_j\n";
  for (const std::string& note : context.notes) out += "\\ " + note + "\n";
  if (m.offset() != 0.0) out += "\\ the objective constant (offset) is the last term of obj\n";
  out += "Minimize\n obj:";
  Terms terms(out, context.precision);
  terms.start(5);
  for (int i = 0; i < n; ++i)
    if (m.linear()[i] != 0.0) terms.add(m.linear()[i], names[static_cast<std::size_t>(i)]);
  if (m.num_couplings() > 0) {
    terms.put(terms.empty() ? "[" : "+ [");
    bool first = true;
    m.for_each_coupling([&](int i, int j, double v) {
      if (first) {
        first = false;
        std::string term = v < 0 ? "- " : "";
        if (std::abs(2.0 * v) != 1.0)
          term += number_text(std::abs(2.0 * v), context.precision) + " ";
        terms.put(term + names[static_cast<std::size_t>(i)] + " * " +
                  names[static_cast<std::size_t>(j)]);
        return;
      }
      std::string term = v < 0 ? "- " : "+ ";
      if (std::abs(2.0 * v) != 1.0) term += number_text(std::abs(2.0 * v), context.precision) + " ";
      terms.put(term + names[static_cast<std::size_t>(i)] + " * " +
                names[static_cast<std::size_t>(j)]);
    });
    terms.put("] / 2");
  }
  if (m.offset() != 0.0)
    terms.put((m.offset() < 0 ? "- " : (terms.empty() ? "" : "+ ")) +
              number_text(std::abs(m.offset()), context.precision));
  if (terms.empty()) terms.put("0 " + names[0]);
  out += "\nSubject To\n";
  std::set<std::string> used(names.begin(), names.end());
  for (std::size_t g = 0; g < m.constraints().size(); ++g) {
    const CardinalityConstraint& group = m.constraints()[g];
    const std::string name = group_row_name(group, g);
    out += " " + name + ":";
    Terms row(out, context.precision);
    row.start(name.size() + 2);
    for (int v : group.variables) row.add(1.0, names[static_cast<std::size_t>(v)]);
    if (row.empty()) row.put("0 " + names[0]);
    row.put("= " + std::to_string(group.k));
    out += "\n";
  }
  out += "Binary\n";
  Terms binaries(out, context.precision);
  binaries.start(1);
  for (const std::string& name : names) binaries.put(name);
  out += "\nEnd\n";
}

// The linearised program of lp-linear and mps (see the top of the file), column by column.
struct LinearProgram {
  std::vector<std::string> x;  ///< binary columns, one per variable
  std::string product_prefix;  ///< product column k is product_prefix + (k + 1)
  std::string one;             ///< the column fixed at 1 carrying the offset ("" when it is 0)
  struct Pair {
    int i, j;
    double q;
  };
  std::vector<Pair> pairs;
};

// More product variables than this make a program no MIP solver would finish; the quadratic `lp`
// form has no such size.
constexpr std::int64_t kMaxLinearizedPairs = 20'000'000;

LinearProgram linearize(const QuboModel& m, const char* format) {
  if (m.num_couplings() > kMaxLinearizedPairs)
    throw ResourceError(concat(format, " would need one product variable per coupling: ",
                               std::to_string(m.num_couplings()), " (more than ",
                               std::to_string(kMaxLinearizedPairs),
                               "); write the quadratic form (--to lp) instead"));
  LinearProgram p;
  p.x = lp_names(m);
  p.product_prefix = lp_product_prefix(p.x);
  if (m.offset() != 0.0) p.one = p.product_prefix + "one";
  p.pairs.reserve(static_cast<std::size_t>(m.num_couplings()));
  m.for_each_coupling([&](int i, int j, double v) { p.pairs.push_back({i, j, v}); });
  return p;
}

void write_header_notes(const WriteContext& context, const char* comment, std::string& out) {
  for (const std::string& note : context.notes) out += concat(comment, " ", note, "\n");
}

void write_lp_linear(const QuboModel& m, const WriteContext& context, std::string& out) {
  const int n = m.num_variables();
  if (n < 1) throw InvalidArgument("lp-linear needs at least one variable");
  const LinearProgram p = linearize(m, "lp-linear");
  out +=
      "\\ LP written by qprune, linearised: minimise offset + sum_i c_i x_i + sum_{i<j} q_ij "
      "y_ij,\n\\ y_ij = x_i x_j through y_ij >= x_i + x_j - 1 (q_ij > 0) or y_ij <= x_i, x_j "
      "(q_ij < 0)\n";
  write_header_notes(context, "\\", out);
  if (!p.one.empty())
    out += concat("\\ the offset is the coefficient of ", p.one, " (fixed at 1)\n");
  out += "Minimize\n obj:";
  Terms terms(out, context.precision);
  terms.start(5);
  // Every x_i, zero or not, so that the columns' order (their first appearance) is x1..xn, then
  // the products: a solver's column-indexed answer then reads back by position.
  for (int i = 0; i < n; ++i) terms.add(m.linear()[i], p.x[static_cast<std::size_t>(i)]);
  for (std::size_t k = 0; k < p.pairs.size(); ++k)
    terms.add(p.pairs[k].q, p.product_prefix + std::to_string(k + 1));
  if (!p.one.empty()) terms.add(m.offset(), p.one);
  out += "\nSubject To\n";
  for (std::size_t g = 0; g < m.constraints().size(); ++g) {
    const CardinalityConstraint& group = m.constraints()[g];
    const std::string name = group_row_name(group, g);
    out += " " + name + ":";
    Terms row(out, context.precision);
    row.start(name.size() + 2);
    for (int v : group.variables) row.add(1.0, p.x[static_cast<std::size_t>(v)]);
    if (row.empty()) row.put("0 " + p.x[0]);
    row.put("= " + std::to_string(group.k));
    out += "\n";
  }
  for (std::size_t k = 0; k < p.pairs.size(); ++k) {
    const std::string y = p.product_prefix + std::to_string(k + 1);
    const std::string& xi = p.x[static_cast<std::size_t>(p.pairs[k].i)];
    const std::string& xj = p.x[static_cast<std::size_t>(p.pairs[k].j)];
    const std::string row = concat("pair", std::to_string(k + 1));
    if (p.pairs[k].q > 0.0) {
      out += concat(" ", row, ": ", y, " - ", xi, " - ", xj, " >= -1\n");
    } else {
      out += concat(" ", row, "a: ", y, " - ", xi, " <= 0\n");
      out += concat(" ", row, "b: ", y, " - ", xj, " <= 0\n");
    }
  }
  if (!p.one.empty()) out += concat("Bounds\n ", p.one, " = 1\n");
  out += "Binary\n";
  Terms binaries(out, context.precision);
  binaries.start(1);
  for (const std::string& name : p.x) binaries.put(name);
  out += "\nEnd\n";
}

// Free MPS (names without blanks, fields separated by blanks): CBC, HiGHS and `glpsol --freemps`.
void write_mps(const QuboModel& m, const WriteContext& context, std::string& out) {
  const int n = m.num_variables();
  if (n < 1) throw InvalidArgument("mps needs at least one variable");
  const LinearProgram p = linearize(m, "mps");
  const auto un = static_cast<std::size_t>(n);
  out +=
      "* free MPS written by qprune, linearised: minimise offset + sum_i c_i x_i + sum_{i<j} "
      "q_ij y_ij,\n* y_ij = x_i x_j through y_ij >= x_i + x_j - 1 (q_ij > 0) or y_ij <= x_i, x_j "
      "(q_ij < 0)\n";
  write_header_notes(context, "*", out);
  if (!p.one.empty())
    out += concat("* the offset is the coefficient of ", p.one, " (fixed at 1)\n");
  // Rows: the objective, the groups, then per pair one row (q > 0) or two (q < 0).
  std::vector<std::string> group_rows;
  for (std::size_t g = 0; g < m.constraints().size(); ++g)
    group_rows.push_back(group_row_name(m.constraints()[g], g));
  const auto pair_row = [](std::size_t k, const char* half) {
    return concat("pair", std::to_string(k + 1), half);
  };
  out += "NAME qprune\nROWS\n N obj\n";
  for (const std::string& row : group_rows) out += concat(" E ", row, "\n");
  for (std::size_t k = 0; k < p.pairs.size(); ++k) {
    if (p.pairs[k].q > 0.0)
      out += concat(" G ", pair_row(k, ""), "\n");
    else
      out += concat(" L ", pair_row(k, "a"), "\n L ", pair_row(k, "b"), "\n");
  }
  // Column-major: each x_i's entries in the groups and in the pair rows that name it.
  std::vector<std::vector<std::pair<std::string, double>>> entries(un);
  for (std::size_t g = 0; g < m.constraints().size(); ++g)
    for (int v : m.constraints()[g].variables)
      entries[static_cast<std::size_t>(v)].emplace_back(group_rows[g], 1.0);
  for (std::size_t k = 0; k < p.pairs.size(); ++k) {
    const auto i = static_cast<std::size_t>(p.pairs[k].i),
               j = static_cast<std::size_t>(p.pairs[k].j);
    if (p.pairs[k].q > 0.0) {
      entries[i].emplace_back(pair_row(k, ""), -1.0);
      entries[j].emplace_back(pair_row(k, ""), -1.0);
    } else {
      entries[i].emplace_back(pair_row(k, "a"), -1.0);
      entries[j].emplace_back(pair_row(k, "b"), -1.0);
    }
  }
  const auto entry = [&](const std::string& column, const std::string& row, double value) {
    out += concat("    ", column, " ", row, " ", number_text(value, context.precision), "\n");
  };
  out += "COLUMNS\n    MARKER 'MARKER' 'INTORG'\n";
  for (std::size_t i = 0; i < un; ++i) {
    const double c = m.linear()[static_cast<Eigen::Index>(i)];
    if (c != 0.0 || entries[i].empty()) entry(p.x[i], "obj", c);
    for (const auto& [row, value] : entries[i]) entry(p.x[i], row, value);
  }
  out += "    MARKER 'MARKER' 'INTEND'\n";
  for (std::size_t k = 0; k < p.pairs.size(); ++k) {
    const std::string y = p.product_prefix + std::to_string(k + 1);
    entry(y, "obj", p.pairs[k].q);
    if (p.pairs[k].q > 0.0) {
      entry(y, pair_row(k, ""), 1.0);
    } else {
      entry(y, pair_row(k, "a"), 1.0);
      entry(y, pair_row(k, "b"), 1.0);
    }
  }
  if (!p.one.empty()) entry(p.one, "obj", m.offset());
  out += "RHS\n";
  for (std::size_t g = 0; g < m.constraints().size(); ++g)
    out += concat("    RHS ", group_rows[g], " ", std::to_string(m.constraints()[g].k), "\n");
  for (std::size_t k = 0; k < p.pairs.size(); ++k)
    if (p.pairs[k].q > 0.0) out += concat("    RHS ", pair_row(k, ""), " -1\n");
  out += "BOUNDS\n";
  for (const std::string& x : p.x) out += concat(" BV BND ", x, "\n");
  if (!p.one.empty()) out += concat(" FX BND ", p.one, " 1\n");
  out += "ENDATA\n";
}

}  // namespace

FormatEntry lp_format() {
  return {{"lp",
           {".lp"},
           false,
           true,
           "CPLEX LP (write only): quadratic objective [ ... ] / 2, groups as 'sum x = k', Binary"},
          nullptr,
          write_lp,
          true,
          false};
}

FormatEntry lp_linear_format() {
  return {{"lp-linear",
           {},
           false,
           true,
           "LP, linearised (write only): a product variable per pair, for CBC, GLPK, HiGHS; groups "
           "as 'sum x = k'"},
          nullptr,
          write_lp_linear,
          true,
          false};
}

FormatEntry mps_format() {
  return {{"mps",
           {".mps"},
           false,
           true,
           "free MPS, linearised as lp-linear (write only): CBC, HiGHS, glpsol --freemps"},
          nullptr,
          write_mps,
          true,
          false};
}

}  // namespace qprune::formats_detail
