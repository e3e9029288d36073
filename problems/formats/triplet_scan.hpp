// The bulk scanner behind the fast path of the line-based triplet formats (qbsolv, coo, biqmac,
// mqlib, maxcut, beasley): the body of lines `a b value` is read in one pass over the text, with
// no allocation per line, in parallel chunks (split at newlines) for large texts. It accepts only
// the plain form: two unsigned decimal indices and one number per line, separated by blanks, blank
// lines allowed. Anything else (a comment, a sign on an index, a fourth field, a bad number, an
// index out of range) makes it answer "not plain", and the format reads the file again with its
// line-by-line TextInput reader, which names the line and what was expected: one checked reader
// for errors, one fast reader for clean files. Values are converted as TextInput::to_double does
// (std::from_chars), with a shortcut for short decimals that is exactly rounded too (Clinger's
// fast path), so both readers give bit-identical models.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "problems/formats/triplet_scan.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune::formats_detail {

struct TripletRules {
  /// Indices as written run from `base` to `max_index` (inclusive); entries get index - base.
  std::int64_t base = 0;
  std::int64_t max_index = 0;
  /// Stop after this many entries (the end of the line holding the last one); -1: read to the
  /// end of the text. A limited scan runs serially.
  std::int64_t max_entries = -1;
};

struct TripletScan {
  std::vector<Coupling> entries;  ///< in file order: {a - base, b - base, value}
  std::size_t end = 0;            ///< offset just after the last line read
};

/// Scans `text` from byte `begin` (the start of a line). nullopt when some line is not plain (or
/// fewer than max_entries entries are there); nothing is thrown for bad input.
[[nodiscard]] std::optional<TripletScan> scan_triplets(std::string_view text, std::size_t begin,
                                                       const TripletRules& rules);

/// A number as TextInput::to_double reads it (one leading '+' dropped, then std::from_chars,
/// finite values only), through the exact shortcut for short decimals; nullopt when it is not one.
[[nodiscard]] std::optional<double> parse_number(std::string_view token);

/// True when two entries of `q` (i != j) name the same unordered pair. One pass when `q` is
/// sorted by pair (as files written in order are), a sort of the keys otherwise.
[[nodiscard]] bool has_duplicate_pairs(const std::vector<Coupling>& q);

}  // namespace qprune::formats_detail
