// OR-Library Beasley `bqpN.txt` (read only): a token stream, the number of instances K, then per
// instance `n nnz` and nnz triples `i j q` (1-based, each unordered pair once). Each instance
// maximises x^T Q x = sum_i q_ii x_i + 2 sum_{i<j} q_ij x_i x_j: a listed pair stands for both q_ij
// and q_ji (bqp50 #1 reaches its published optimum 2098 only so). qprune's energy is E = -x^T Q x:
// c_i = -q_ii, q_ij = -2 q. A pair listed with i > j is the same pair; a pair listed twice is
// rejected. Every instance is checked for structure, only the chosen one is built. When every
// `n nnz` ends its line and the nnz entries follow one per line, the entries are read in bulk
// (triplet_scan.hpp); any other layout, and every error, goes to the token-by-token reader.
#include <unordered_set>

#include "problems/formats/format_entry.hpp"
#include "problems/formats/triplet_scan.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

std::optional<QuboModel> read_beasley_fast(TextInput& in, int instance) {
  std::string_view tok;
  const auto next = [&]() -> std::optional<std::int64_t> {
    if (!in.next_token(tok)) return std::nullopt;
    return in.to_int(tok, "an integer");
  };
  const std::optional<std::int64_t> k_count = next();
  if (!k_count || *k_count < 1 || instance > *k_count) return std::nullopt;
  std::optional<QuboModel> result;
  for (std::int64_t k = 1; k <= *k_count; ++k) {
    const std::optional<std::int64_t> n = next(), nnz = next();
    if (!n || !nnz || *n < 1 || *n > (std::int64_t{1} << 30) || *nnz < 0 || !in.line_done())
      return std::nullopt;
    check_declared_variables(in, *n, "n", tok);
    check_declared_entries(in, *nnz, "the number of entries", tok);
    TripletRules rules;
    rules.base = 1;
    rules.max_index = *n;
    rules.max_entries = *nnz;
    std::optional<TripletScan> scan = scan_triplets(in.text(), in.offset(), rules);
    if (!scan) return std::nullopt;
    in.seek(scan->end);
    if (k != instance) continue;
    check_model_memory(in, *n);
    Eigen::VectorXd c = Eigen::VectorXd::Zero(*n);
    std::vector<bool> diagonal_seen(static_cast<std::size_t>(*n), false);
    std::vector<Coupling>& q = scan->entries;  // diagonal entries are moved out in place
    std::size_t pairs = 0;
    for (const Coupling& e : q) {
      if (e.i == e.j) {
        if (diagonal_seen[static_cast<std::size_t>(e.i)]) return std::nullopt;
        diagonal_seen[static_cast<std::size_t>(e.i)] = true;
        c[e.i] = -e.value;
      } else {
        q[pairs++] = {e.i, e.j, -2.0 * e.value};
      }
    }
    q.resize(pairs);
    if (has_duplicate_pairs(q)) return std::nullopt;
    result = QuboModel::from_couplings(static_cast<int>(*n), std::move(c), std::move(q));
  }
  if (in.next_token(tok)) return std::nullopt;
  return result;
}

QuboModel read_beasley_checked(TextInput& in, int instance) {
  std::string_view tok;
  const auto next = [&](const std::string& expected) {
    if (!in.next_token(tok)) in.fail_eof(expected);
    return tok;
  };
  const std::int64_t k_count =
      in.to_int(next("the number of instances K"), "the number of instances K (an integer >= 1)");
  if (k_count < 1) in.fail("the number of instances K >= 1", tok);
  if (instance > k_count)
    throw InvalidArgument(in.path() + " holds " + std::to_string(k_count) +
                          " instances; instance " + std::to_string(instance) + " was asked for");
  QuboModel result;
  for (std::int64_t k = 1; k <= k_count; ++k) {
    const std::string which = " of instance " + std::to_string(k);
    const std::int64_t n = in.to_int(next("n" + which), "n" + which + " (an integer >= 1)");
    if (n < 1 || n > (std::int64_t{1} << 30)) in.fail("n" + which + " in [1, 2^30]", tok);
    check_declared_variables(in, n, "n" + which, tok);
    const std::int64_t nnz = in.to_int(next("the number of entries" + which),
                                       "the number of entries" + which + " (an integer >= 0)");
    if (nnz < 0) in.fail("the number of entries" + which + " >= 0", tok);
    check_declared_entries(in, nnz, "the number of entries" + which, tok);
    const bool build = k == instance;
    Eigen::VectorXd c;
    std::vector<Coupling> q;
    std::unordered_set<std::uint64_t> seen;
    std::vector<bool> diagonal_seen;
    if (build) {
      check_model_memory(in, n);
      c = Eigen::VectorXd::Zero(n);
      diagonal_seen.assign(static_cast<std::size_t>(n), false);
    }
    const std::string range = "a 1-based index in [1, " + std::to_string(n) + "]";
    for (std::int64_t e = 0; e < nnz; ++e) {
      const std::string entry =
          "entry " + std::to_string(e + 1) + " of " + std::to_string(nnz) + which;
      const std::int64_t i = in.to_int(next("row index of " + entry), range);
      if (i < 1 || i > n) in.fail(range, tok);
      const std::int64_t j = in.to_int(next("column index of " + entry), range);
      if (j < 1 || j > n) in.fail(range, tok);
      const double v = in.to_double(next("value of " + entry), "a value");
      if (!build) continue;
      const int a = static_cast<int>(i - 1), b = static_cast<int>(j - 1);
      if (a == b) {
        if (diagonal_seen[static_cast<std::size_t>(a)])
          in.fail_plain("each entry once",
                        "a second (" + std::to_string(i) + ", " + std::to_string(j) + ")");
        diagonal_seen[static_cast<std::size_t>(a)] = true;
        c[a] = -v;
      } else {
        if (!seen.insert(pair_key(a, b)).second)
          in.fail_plain("each pair once",
                        "a second (" + std::to_string(i) + ", " + std::to_string(j) + ")");
        q.push_back({a, b, -2.0 * v});
      }
    }
    if (build) result = QuboModel::from_couplings(static_cast<int>(n), std::move(c), std::move(q));
  }
  if (in.next_token(tok))
    in.fail("end of file after " + std::to_string(k_count) + " instances", tok);
  return result;
}

QuboModel read_beasley(TextInput& in, int instance) {
  return read_fast_or_checked(
      in, [instance](TextInput& input) { return read_beasley_fast(input, instance); },
      [instance](TextInput& input) { return read_beasley_checked(input, instance); });
}

}  // namespace

FormatEntry beasley_format() {
  return {{"beasley",
           {".txt"},
           true,
           false,
           "OR-Library bqp: K instances (pick with file#k), 1-based, maximise x^T Q x, pairs "
           "listed once"},
          read_beasley,
          nullptr,
          false,
          true};
}

}  // namespace qprune::formats_detail
