// The two `n m` + `i j w` formats (1-based, maximise). The format name decides the meaning:
//
// mqlib (MQLib QUBO, `.mqlib`): maximise f(x) = sum_a w_aa x_a + sum_{a != b} 2 w_ab x_a x_b, i.e.
//   an off-diagonal entry counts twice (x^T W x with W symmetric). A repeated diagonal entry
//   overwrites, a repeated off-diagonal entry adds (as MQLib does). qprune's energy is E = -f:
//   c_a = -w_aa, q_ab = -2 w_ab. An offset is the comment `# offset=<value>` (in the file's sense,
//   so E's offset is its negation).
// maxcut (Gset / rudy / Biq Mac Max-Cut, `.gset`, `.rudy`, `.mc`, `.txt`): maximise the cut weight
//   cut(x) = sum_edges w_ij (x_i + x_j - 2 x_i x_j), x_i the side of vertex i. E = -cut:
//   c_i -= w_ij, c_j -= w_ij, q_ij += 2 w_ij. Edges may be listed with i > j; repeated edges add;
//   self-loops are rejected (they never cross the cut). The writer accepts only a model that is
//   exactly such a cut form (offset 0, c_i = -sum_j q_ij / 2) and writes w_ij = q_ij / 2.
// Both check that exactly m entry lines follow the header; `#` starts a comment. Plain entry lines
// after the header are read in bulk (triplet_scan.hpp); any other file, and every error, by the
// line-by-line reader.
#include <cmath>

#include "problems/formats/format_entry.hpp"
#include "problems/formats/triplet_scan.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

enum class EdgeMeaning { kMqlib, kMaxCut };

// Comments (setting `file_offset`) and the header line `n m`, as the checked reader takes them:
// {n, m}. The comment callback stays set for the entry lines.
std::pair<std::int64_t, std::int64_t> read_header(TextInput& in, EdgeMeaning meaning,
                                                  double& file_offset) {
  in.comment_chars = "#";
  in.on_comment = [&in, &file_offset, meaning](std::string_view comment) {
    const std::string_view v = comment_value(comment, "offset");
    if (!v.empty() && meaning == EdgeMeaning::kMqlib)
      file_offset = in.to_double(v, "a number after '# offset='");
  };
  if (!in.next_line()) in.fail_eof("the header line 'n m'");
  std::vector<std::string_view> t = in.tokens();
  if (t.size() != 2) in.fail("the header line 'n m' (2 fields)", in.line());
  const std::int64_t n = in.to_int(t[0], "the number of variables n (an integer >= 1)");
  const std::int64_t m = in.to_int(t[1], "the number of entries m (an integer >= 0)");
  if (n < 1 || n > (std::int64_t{1} << 30)) in.fail("n in [1, 2^30]", t[0]);
  if (m < 0) in.fail("m >= 0", t[1]);
  check_declared_variables(in, n, "the number of variables n", t[0]);
  check_model_memory(in, n);
  check_declared_entries(in, m, "the number of entries m", t[1]);
  return {n, m};
}

std::optional<QuboModel> read_edge_list_fast(TextInput& in, EdgeMeaning meaning) {
  double file_offset = 0.0;
  const auto [n, m] = read_header(in, meaning, file_offset);
  in.on_comment = nullptr;
  TripletRules rules;
  rules.base = 1;
  rules.max_index = n;
  std::optional<TripletScan> scan = scan_triplets(in.text(), in.offset(), rules);
  if (!scan || static_cast<std::int64_t>(scan->entries.size()) != m) return std::nullopt;
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  std::vector<Coupling>& q = scan->entries;  // rewritten in place, in file order
  std::size_t pairs = 0;
  for (const Coupling& e : q) {
    const double w = e.value;
    if (meaning == EdgeMeaning::kMqlib) {
      if (e.i == e.j)
        c[e.i] = -w;  // MQLib: a repeated diagonal entry overwrites
      else
        q[pairs++] = {e.i, e.j, -2.0 * w};
    } else {
      if (e.i == e.j) return std::nullopt;
      c[e.i] -= w;
      c[e.j] -= w;
      q[pairs++] = {e.i, e.j, 2.0 * w};
    }
  }
  q.resize(pairs);
  return QuboModel::from_couplings(static_cast<int>(n), std::move(c), std::move(q), -file_offset);
}

QuboModel read_edge_list_checked(TextInput& in, EdgeMeaning meaning) {
  double file_offset = 0.0;
  const auto [n, m] = read_header(in, meaning, file_offset);
  HeadedTripletLines lines(in, n, m, 'w', "a weight");
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  std::vector<Coupling> q;
  q.reserve(static_cast<std::size_t>(m));  // m is plausible for the file size (checked above)
  HeadedTripletLines::Entry e;
  while (lines.next(e)) {
    const int a = e.a, b = e.b;
    const double w = e.value;
    if (meaning == EdgeMeaning::kMqlib) {
      if (a == b)
        c[a] = -w;  // MQLib: a repeated diagonal entry overwrites
      else
        q.push_back({a, b, -2.0 * w});
    } else {
      if (a == b) in.fail("an edge between two different vertices", in.line());
      c[a] -= w;
      c[b] -= w;
      q.push_back({a, b, 2.0 * w});
    }
  }
  in.on_comment = nullptr;
  return QuboModel::from_couplings(static_cast<int>(n), std::move(c), std::move(q), -file_offset);
}

QuboModel read_edge_list(TextInput& in, EdgeMeaning meaning) {
  return read_fast_or_checked(
      in, [meaning](TextInput& input) { return read_edge_list_fast(input, meaning); },
      [meaning](TextInput& input) { return read_edge_list_checked(input, meaning); });
}

QuboModel read_mqlib(TextInput& in, int /*instance*/) {
  return read_edge_list(in, EdgeMeaning::kMqlib);
}
QuboModel read_maxcut(TextInput& in, int /*instance*/) {
  return read_edge_list(in, EdgeMeaning::kMaxCut);
}

void write_mqlib(const QuboModel& m, const WriteContext& context, std::string& out) {
  const int n = m.num_variables();
  if (n < 1) throw InvalidArgument("mqlib needs at least one variable");
  out +=
      "# MQLib QUBO written by qprune: maximise sum_a w_aa x_a + 2 sum_{a<b} w_ab x_a x_b;"
      " qprune energy E = -objective\n";
  for (const std::string& note : context.notes) out += "# " + note + "\n";
  if (m.offset() != 0.0) out += "# offset=" + number_text(-m.offset(), context.precision) + "\n";
  std::int64_t entries = m.num_couplings();
  for (int i = 0; i < n; ++i) entries += m.linear()[i] != 0.0 ? 1 : 0;
  out += std::to_string(n) + " " + std::to_string(entries) + "\n";
  for (int i = 0; i < n; ++i)
    if (m.linear()[i] != 0.0)
      out += std::to_string(i + 1) + " " + std::to_string(i + 1) + " " +
             number_text(-m.linear()[i], context.precision) + "\n";
  m.for_each_coupling([&](int i, int j, double v) {
    out += std::to_string(i + 1) + " " + std::to_string(j + 1) + " " +
           number_text(-v / 2.0, context.precision) + "\n";
  });
}

void write_maxcut(const QuboModel& m, const WriteContext& context, std::string& out) {
  const int n = m.num_variables();
  const std::string advice = "; write it as mqlib (or qbsolv, coo, json) instead";
  if (n < 1) throw InvalidArgument("maxcut needs at least one vertex");
  if (m.offset() != 0.0)
    throw InvalidArgument("the model is not a Max-Cut form: its offset is " +
                          number_text(m.offset(), 17) + ", not 0" + advice);
  for (int i = 0; i < n; ++i) {
    double sum = 0.0, scale = std::fabs(m.linear()[i]);
    m.for_each_in_row(i, [&](int, double v) {
      sum += v / 2.0;
      scale += std::fabs(v);
    });
    if (std::fabs(m.linear()[i] + sum) > 1e-12 * std::max(1.0, scale))
      throw InvalidArgument("the model is not a Max-Cut form: variable " + std::to_string(i) +
                            " has linear term " + number_text(m.linear()[i], 17) +
                            " but -sum_j q_ij / 2 = " + number_text(-sum, 17) + advice);
  }
  out += std::to_string(n) + " " + std::to_string(m.num_couplings()) + "\n";
  m.for_each_coupling([&](int i, int j, double v) {
    out += std::to_string(i + 1) + " " + std::to_string(j + 1) + " " +
           number_text(v / 2.0, context.precision) + "\n";
  });
}

}  // namespace

FormatEntry mqlib_format() {
  return {
      {"mqlib",
       {".mqlib"},
       true,
       true,
       "MQLib QUBO: 'n m' then 'i j w', 1-based, maximise x^T W x (off-diagonal counted twice)"},
      read_mqlib,
      write_mqlib,
      false,
      false};
}

FormatEntry maxcut_format() {
  return {
      {"maxcut",
       {".gset", ".rudy", ".mc", ".txt"},
       true,
       true,
       "Max-Cut edge list (Gset/rudy): 'n m' then 'i j w', 1-based, maximise the cut (E = -cut)"},
      read_maxcut,
      write_maxcut,
      false,
      false};
}

}  // namespace qprune::formats_detail
