// CPLEX LP `.lp` (write only). The objective is written as
//   Minimize  obj: sum c_i x_i + [ sum_{i<j} 2 q_ij x_i * x_j ] / 2 + offset
// (inside `[ ... ] / 2` every coefficient is twice the x_i x_j coefficient). Constraint groups stay
// exact as equalities `sum x = k` under `Subject To` (the header is always written); every variable
// is listed under `Binary`. Names are x1..xn (1-based, as in FORMATS.md) or, when the model has
// labels, the labels made safe: characters outside [A-Za-z0-9_.] become '_', and a name that starts
// with a non-letter or 'e'/'E' (which readers may take for an exponent) or is a keyword gets the
// prefix "x_"; clashes get a suffix. The offset is a bare constant term at the end of the objective
// (CPLEX 12.6+, Gurobi, HiGHS and SCIP read it; older readers reject it, see docs/formats.md).
#include <algorithm>
#include <cctype>
#include <set>

#include "problems/formats/format_entry.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

bool is_keyword(std::string name) {
  static const std::set<std::string> keywords = {
      "st",       "s.t.",     "subject",  "to",       "such",
      "that",     "minimize", "maximize", "minimum",  "maximum",
      "min",      "max",      "bounds",   "bound",    "binary",
      "binaries", "bin",      "general",  "generals", "gen",
      "end",      "free",     "infinity", "inf",      "semi-continuous",
      "semis",    "semi",     "sos",      "obj"};
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return keywords.count(name) > 0;
}

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
    std::string name = group.name.substr(0, 200);
    for (char& ch : name)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.') ch = '_';
    name = name.empty() ? concat("c", std::to_string(g + 1))
                        : concat("c", std::to_string(g + 1), "_", name);
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

}  // namespace qprune::formats_detail
