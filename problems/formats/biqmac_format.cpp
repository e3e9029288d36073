// Biq Mac `.sparse` (read only): `n m` then m lines `i j q` (1-based, upper triangle listed once),
// minimise y^T Q y = sum_i q_ii y_i + 2 sum_{i<j} q_ij y_i y_j, so c_i = q_ii and q_ij = 2 q.
// `biqmac/beasley/bqpN-k.sparse` is the negation of OR-Library bqpN instance k. A pair listed with
// i > j is the same pair; a pair listed twice is rejected. Plain entry lines after the header are
// read in bulk (triplet_scan.hpp); any other file, and every error, by the line-by-line reader.

#include "problems/formats/format_entry.hpp"
#include "problems/formats/triplet_scan.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

// The header line `n m`, as the checked reader takes it: {n, m}.
std::pair<std::int64_t, std::int64_t> read_header(TextInput& in) {
  in.comment_chars = "#";
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

std::optional<QuboModel> read_biqmac_fast(TextInput& in) {
  const auto [n, m] = read_header(in);
  TripletRules rules;
  rules.base = 1;
  rules.max_index = n;
  std::optional<TripletScan> scan = scan_triplets(in.text(), in.offset(), rules);
  if (!scan || static_cast<std::int64_t>(scan->entries.size()) != m) return std::nullopt;
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  std::vector<bool> diagonal_seen(static_cast<std::size_t>(n), false);
  std::vector<Coupling>& q = scan->entries;  // diagonal entries are moved out in place
  std::size_t pairs = 0;
  for (const Coupling& e : q) {
    if (e.i == e.j) {
      if (diagonal_seen[static_cast<std::size_t>(e.i)]) return std::nullopt;
      diagonal_seen[static_cast<std::size_t>(e.i)] = true;
      c[e.i] = e.value;
    } else {
      q[pairs++] = {e.i, e.j, 2.0 * e.value};
    }
  }
  q.resize(pairs);
  if (has_duplicate_pairs(q)) return std::nullopt;
  return QuboModel::from_couplings(static_cast<int>(n), std::move(c), std::move(q));
}

QuboModel read_biqmac_checked(TextInput& in) {
  const auto [n, m] = read_header(in);
  HeadedTripletLines lines(in, n, m, 'q', "a value");
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  std::vector<Coupling> q;
  read_triplet_body(in, lines, c, q, 2.0);
  return QuboModel::from_couplings(static_cast<int>(n), std::move(c), std::move(q));
}

QuboModel read_biqmac(TextInput& in, int /*instance*/) {
  return read_fast_or_checked(in, read_biqmac_fast, read_biqmac_checked);
}

}  // namespace

FormatEntry biqmac_format() {
  return {{"biqmac",
           {".sparse"},
           true,
           false,
           "Biq Mac sparse: 'n m' then 'i j q', 1-based upper triangle, minimise y^T Q y"},
          read_biqmac,
          nullptr,
          false,
          false};
}

}  // namespace qprune::formats_detail
