// Matrix Market `.mtx` (NIST's exchange format, read by Toshiba SQBM+ and most sparse-matrix
// tools): the QUBO as its matrix A with E(x) = x^T A x (+ an offset). The banner
// `%%MatrixMarket matrix coordinate real|integer symmetric|general`, `%` comments, the size line
// `n n nnz`, then nnz lines `i j v`, 1-based. A diagonal entry is v x_i (x^2 = x). Symmetric: an
// off-diagonal entry stands for A_ij = A_ji = v, so 2v x_i x_j (either triangle, each pair once);
// general: v x_i x_j, and (i, j) and (j, i) add. The offset, which the format has no place for,
// is a comment `% offset=V` (as dimod's COO writes it). The writer writes the symmetric lower
// triangle: c_i on the diagonal, q_ij / 2 below it.
#include "problems/formats/format_entry.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

QuboModel read_matrix_market(TextInput& in, int /*instance*/) {
  // The banner is the first line, itself a `%` comment: read it as a plain line first.
  if (!in.next_line()) in.fail_eof("the banner '%%MatrixMarket matrix coordinate real symmetric'");
  const std::vector<std::string_view> banner = in.tokens();
  if (in.line_number() != 1 || banner.size() != 5 || banner[0] != "%%MatrixMarket" ||
      lower_case(banner[1]) != "matrix" || lower_case(banner[2]) != "coordinate")
    in.fail("the banner '%%MatrixMarket matrix coordinate <real|integer> <symmetric|general>'",
            in.line());
  const std::string field = lower_case(banner[3]), symmetry = lower_case(banner[4]);
  if (field != "real" && field != "integer")
    in.fail("the field 'real' or 'integer' (a QUBO has values)", banner[3]);
  if (symmetry != "symmetric" && symmetry != "general")
    in.fail("the symmetry 'symmetric' or 'general'", banner[4]);
  const bool symmetric = symmetry == "symmetric";
  double offset = 0.0;
  in.comment_chars = "%";
  in.on_comment = [&](std::string_view comment) {
    const std::string_view v = comment_value(comment, "offset");
    if (!v.empty()) offset = in.to_double(v, "a number after '% offset='");
  };

  if (!in.next_line()) in.fail_eof("the size line 'n n nnz'");
  const std::vector<std::string_view> t = in.tokens();
  if (t.size() != 3) in.fail("the size line 'n n nnz' (3 fields)", in.line());
  const std::int64_t rows = in.to_int(t[0], "the number of rows (an integer >= 1)");
  const std::int64_t cols = in.to_int(t[1], "the number of columns (an integer >= 1)");
  const std::int64_t nnz = in.to_int(t[2], "the number of entries (an integer >= 0)");
  if (rows < 1 || rows > (std::int64_t{1} << 30)) in.fail("a number of rows in [1, 2^30]", t[0]);
  if (cols != rows) in.fail("a square matrix (as many columns as rows)", t[1]);
  if (nnz < 0) in.fail("a number of entries >= 0", t[2]);
  check_declared_variables(in, rows, "the number of rows", t[0]);
  check_model_memory(in, rows);
  check_declared_entries(in, nnz, "the number of entries", t[2]);

  HeadedTripletLines lines(in, rows, nnz, 'v', "a value");
  Eigen::VectorXd c = Eigen::VectorXd::Zero(rows);
  std::vector<Coupling> q;
  // Symmetric: one entry per pair, whichever triangle, 2v. General: one per (i, j), v.
  read_triplet_body(in, lines, c, q, symmetric ? 2.0 : 1.0, /*ordered=*/!symmetric);
  in.on_comment = nullptr;
  return QuboModel::from_couplings(static_cast<int>(rows), std::move(c), std::move(q), offset);
}

void write_matrix_market(const QuboModel& m, const WriteContext& context, std::string& out) {
  const auto text = [&](double v) { return number_text(v, context.precision); };
  out += "%%MatrixMarket matrix coordinate real symmetric\n";
  out +=
      "% QUBO written by qprune: minimise offset + x^T A x, x in {0,1}^n (A_ii = c_i, A_ij = "
      "q_ij / 2)\n";
  for (const std::string& note : context.notes) out += "% " + note + "\n";
  if (m.offset() != 0.0) out += "% offset=" + text(m.offset()) + "\n";
  const int n = m.num_variables();
  std::int64_t entries = m.num_couplings();
  for (int i = 0; i < n; ++i) entries += m.linear()[i] != 0.0 ? 1 : 0;
  out += std::to_string(n) + " " + std::to_string(n) + " " + std::to_string(entries) + "\n";
  for (int i = 0; i < n; ++i) {
    // Row i of the lower triangle: its couplings with j < i, then the diagonal.
    m.for_each_in_row(i, [&](int j, double v) {
      if (j < i)
        out += std::to_string(i + 1) + " " + std::to_string(j + 1) + " " + text(v / 2.0) + "\n";
    });
    if (m.linear()[i] != 0.0)
      out += std::to_string(i + 1) + " " + std::to_string(i + 1) + " " + text(m.linear()[i]) + "\n";
  }
}

}  // namespace

FormatEntry matrix_market_format() {
  return {{"mtx",
           {".mtx"},
           true,
           true,
           "Matrix Market coordinate: 1-based 'i j v', minimise x^T A x; symmetric: an "
           "off-diagonal v is 2v x_i x_j; '% offset=' comment"},
          read_matrix_market,
          write_matrix_market,
          false,
          false};
}

}  // namespace qprune::formats_detail
