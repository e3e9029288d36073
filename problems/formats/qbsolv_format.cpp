// qbsolv `.qubo`: `c` comment lines, one `p qubo <topology> <maxNodes> <nNodes> <nCouplers>` line,
// then `i i c` node lines and `i j q` coupler lines (0-based, minimise, each pair once).
// Like qbsolv itself this reader rejects i > j and checks both counts; it also rejects a node or
// coupler given twice (qbsolv would silently keep one). The offset, which qbsolv cannot hold, is
// written and read as the comment `c offset=<value>`. A file whose body is plain `i j value` lines
// (no comment after the header) is read in bulk (triplet_scan.hpp); any other, and every error,
// by the line-by-line reader.
#include <unordered_set>

#include "problems/formats/format_entry.hpp"
#include "problems/formats/triplet_scan.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

struct QbsolvHeader {
  std::int64_t max_nodes = 0, num_nodes = 0, num_couplers = 0;
};

// The `p qubo` line, as the checked reader takes it.
QbsolvHeader parse_header(TextInput& in) {
  const std::string_view line = in.line();
  const std::vector<std::string_view> t = in.tokens();
  if (t.size() != 6 || t[0] != "p" || t[1] != "qubo")
    in.fail("the line 'p qubo <topology> <maxNodes> <nNodes> <nCouplers>'", line);
  if (t[2] != "0" && t[2] != "unconstrained") in.fail("topology '0' or 'unconstrained'", t[2]);
  QbsolvHeader h;
  h.max_nodes = in.to_int(t[3], "maxNodes (an integer >= 0)");
  h.num_nodes = in.to_int(t[4], "nNodes (an integer >= 0)");
  h.num_couplers = in.to_int(t[5], "nCouplers (an integer >= 0)");
  if (h.max_nodes < 0 || h.max_nodes > (std::int64_t{1} << 30))
    in.fail("maxNodes in [0, 2^30]", t[3]);
  if (h.num_nodes < 0 || h.num_nodes > h.max_nodes) in.fail("nNodes in [0, maxNodes]", t[4]);
  if (h.num_couplers < 0) in.fail("nCouplers >= 0", t[5]);
  check_declared_variables(in, h.max_nodes, "maxNodes", t[3]);
  check_model_memory(in, h.max_nodes);
  check_declared_entries(in, h.num_nodes, "nNodes", t[4]);
  check_declared_entries(in, h.num_couplers, "nCouplers", t[5]);
  return h;
}

// Comment lines and the header line by line, the body in bulk; nullopt for anything unusual.
std::optional<QuboModel> read_qbsolv_fast(TextInput& in) {
  double offset = 0.0;
  for (;;) {
    if (!in.next_line()) return std::nullopt;
    const std::string_view line = in.line();
    if (line.front() != 'c') break;
    const std::string_view v = comment_value(line.substr(1), "offset");
    if (!v.empty()) offset = in.to_double(v, "a number after 'c offset='");
  }
  const QbsolvHeader h = parse_header(in);
  TripletRules rules;
  rules.max_index = h.max_nodes - 1;
  std::optional<TripletScan> scan = scan_triplets(in.text(), in.offset(), rules);
  if (!scan) return std::nullopt;
  Eigen::VectorXd linear = Eigen::VectorXd::Zero(h.max_nodes);
  std::vector<bool> node_seen(static_cast<std::size_t>(h.max_nodes), false);
  std::vector<Coupling>& q = scan->entries;  // node lines are moved out in place
  std::size_t couplers = 0;
  std::int64_t nodes = 0;
  for (const Coupling& e : q) {
    if (e.i > e.j) return std::nullopt;
    if (e.i == e.j) {
      if (node_seen[static_cast<std::size_t>(e.i)]) return std::nullopt;
      node_seen[static_cast<std::size_t>(e.i)] = true;
      linear[e.i] = e.value;
      ++nodes;
    } else {
      q[couplers++] = e;
    }
  }
  q.resize(couplers);
  if (nodes != h.num_nodes || static_cast<std::int64_t>(couplers) != h.num_couplers ||
      has_duplicate_pairs(q))
    return std::nullopt;
  return QuboModel::from_couplings(static_cast<int>(h.max_nodes), std::move(linear), std::move(q),
                                   offset);
}

QuboModel read_qbsolv_checked(TextInput& in) {
  double offset = 0.0;
  bool have_header = false;
  std::int64_t header_line = 0, max_nodes = 0, num_nodes = 0, num_couplers = 0;
  std::int64_t nodes = 0, couplers = 0;
  Eigen::VectorXd linear;
  std::vector<Coupling> q;
  std::unordered_set<std::uint64_t> seen;
  std::vector<bool> node_seen;
  while (in.next_line()) {
    const std::string_view line = in.line();
    if (line.front() == 'c') {
      const std::string_view v = comment_value(line.substr(1), "offset");
      if (!v.empty()) offset = in.to_double(v, "a number after 'c offset='");
      continue;
    }
    if (!have_header) {
      const QbsolvHeader h = parse_header(in);
      max_nodes = h.max_nodes;
      num_nodes = h.num_nodes;
      num_couplers = h.num_couplers;
      header_line = in.line_number();
      have_header = true;
      linear = Eigen::VectorXd::Zero(max_nodes);
      node_seen.assign(static_cast<std::size_t>(max_nodes), false);
      continue;
    }
    const std::vector<std::string_view> t = in.tokens();
    if (t.size() != 3) in.fail("a line 'i j value' (3 fields)", line);
    const std::string range = "an index in [0, " + std::to_string(max_nodes) + ")";
    const std::int64_t i = in.to_int(t[0], range), j = in.to_int(t[1], range);
    if (i < 0 || i >= max_nodes) in.fail(range, t[0]);
    if (j < 0 || j >= max_nodes) in.fail(range, t[1]);
    const double v = in.to_double(t[2], "a value");
    if (i > j) in.fail("i <= j (qbsolv takes the upper triangle only)", line);
    if (i == j) {
      if (node_seen[static_cast<std::size_t>(i)]) in.fail("each node once", line);
      if (++nodes > num_nodes)
        in.fail("at most " + std::to_string(num_nodes) + " node lines (header, line " +
                    std::to_string(header_line) + ")",
                line);
      node_seen[static_cast<std::size_t>(i)] = true;
      linear[i] = v;
    } else {
      if (!seen.insert(pair_key(static_cast<int>(i), static_cast<int>(j))).second)
        in.fail("each coupler once", line);
      if (++couplers > num_couplers)
        in.fail("at most " + std::to_string(num_couplers) + " coupler lines (header, line " +
                    std::to_string(header_line) + ")",
                line);
      q.push_back({static_cast<int>(i), static_cast<int>(j), v});
    }
  }
  if (!have_header) in.fail_eof("the line 'p qubo <topology> <maxNodes> <nNodes> <nCouplers>'");
  if (nodes != num_nodes || couplers != num_couplers)
    in.fail_eof(std::to_string(num_nodes) + " node and " + std::to_string(num_couplers) +
                " coupler lines (header, line " + std::to_string(header_line) + "), not " +
                std::to_string(nodes) + " and " + std::to_string(couplers));
  return QuboModel::from_couplings(static_cast<int>(max_nodes), std::move(linear), std::move(q),
                                   offset);
}

QuboModel read_qbsolv(TextInput& in, int /*instance*/) {
  return read_fast_or_checked(in, read_qbsolv_fast, read_qbsolv_checked);
}

void write_qbsolv(const QuboModel& m, const WriteContext& context, std::string& out) {
  const int n = m.num_variables();
  out +=
      "c qbsolv QUBO written by qprune: minimise offset + sum_i c_i x_i + sum_{i<j} q_ij x_i x_j\n";
  for (const std::string& note : context.notes) out += "c " + note + "\n";
  if (m.offset() != 0.0) out += "c offset=" + number_text(m.offset(), context.precision) + "\n";
  int nodes = 0;
  for (int i = 0; i < n; ++i) nodes += m.linear()[i] != 0.0 ? 1 : 0;
  out += "p qubo 0 " + std::to_string(n) + " " + std::to_string(nodes) + " " +
         std::to_string(m.num_couplings()) + "\n";
  for (int i = 0; i < n; ++i)
    if (m.linear()[i] != 0.0)
      out += std::to_string(i) + " " + std::to_string(i) + " " +
             number_text(m.linear()[i], context.precision) + "\n";
  m.for_each_coupling([&](int i, int j, double v) {
    out += std::to_string(i) + " " + std::to_string(j) + " " + number_text(v, context.precision) +
           "\n";
  });
}

}  // namespace

FormatEntry qbsolv_format() {
  return {{"qbsolv",
           {".qubo"},
           true,
           true,
           "qbsolv: 0-based, minimise, 'p qubo' header, i <= j, each entry once"},
          read_qbsolv,
          write_qbsolv,
          false,
          false};
}

}  // namespace qprune::formats_detail
