// The bulk triplet scanner (triplet_scan.hpp): a pointer walk over the text that parses indices
// with a digit loop and values with parse_number, and splits large texts into chunks at newlines
// that are scanned in parallel into one array (first counting the lines of each chunk, which
// bounds its entries, so every chunk writes to its own slice and file order is kept).
#include "problems/formats/triplet_scan.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/huge_pages.hpp"
#include "core/parallel_for.hpp"
#include "problems/formats/format_entry.hpp"

namespace qprune::formats_detail {
namespace {

// Character classes by table: one load instead of five comparisons per character.
enum CharClass : unsigned char { kOther = 0, kBlank = 1, kNewline = 2 };
constexpr auto kClass = [] {
  std::array<unsigned char, 256> t{};
  for (const char c : {' ', '\t', '\r', '\f', '\v'}) t[static_cast<unsigned char>(c)] = kBlank;
  t[static_cast<unsigned char>('\n')] = kNewline;
  return t;
}();
// Separators inside a line: TextInput's whitespace without '\n'.
inline bool is_blank(char c) { return kClass[static_cast<unsigned char>(c)] == kBlank; }
inline bool is_space(char c) { return kClass[static_cast<unsigned char>(c)] != kOther; }
inline bool is_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// 10^k for k <= 22: all exact doubles (5^22 < 2^53), the range of Clinger's fast path.
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr std::uint64_t kMaxExactMantissa = std::uint64_t{1} << 53;

// An unsigned decimal index at p (at most 12 digits, so no overflow); nullptr when none.
inline const char* read_index(const char* p, const char* end, std::int64_t& out) {
  const char* start = p;
  std::int64_t v = 0;
  while (p < end && is_digit(*p)) {
    v = v * 10 + (*p - '0');
    if (++p - start > 12) return nullptr;
  }
  if (p == start) return nullptr;
  out = v;
  return p;
}

inline const char* skip_blanks(const char* p, const char* end) {
  while (p < end && is_blank(*p)) ++p;
  return p;
}

// The value token at p (nonempty, ends at a space or `end`): the common shapes "-123" and
// "-1.25" in the same pass that finds the token's end, anything else through parse_number.
// nullptr when it is not a number.
inline const char* read_value(const char* p, const char* end, double& out) {
  const char* token = p;
  const bool negative = *p == '-';
  if (negative) ++p;
  std::uint64_t mantissa = 0;
  const char* digits = p;
  while (p < end && is_digit(*p)) mantissa = mantissa * 10 + static_cast<unsigned>(*p++ - '0');
  const auto whole_digits = p - digits;
  std::ptrdiff_t fraction_digits = 0;
  if (p < end && *p == '.') {
    const char* f = ++p;
    while (p < end && is_digit(*p)) mantissa = mantissa * 10 + static_cast<unsigned>(*p++ - '0');
    fraction_digits = p - f;
    if (fraction_digits == 0) fraction_digits = 99;  // "1.": the general path decides
  }
  if ((p == end || is_space(*p)) && whole_digits > 0 && whole_digits + fraction_digits <= 19 &&
      mantissa <= kMaxExactMantissa) {
    double v = static_cast<double>(mantissa);
    if (fraction_digits > 0) v /= kPow10[fraction_digits];  // <= 18 here, an exact power
    out = negative ? -v : v;
    return p;
  }
  while (p < end && !is_space(*p)) ++p;
  const std::optional<double> v =
      parse_number(std::string_view(token, static_cast<std::size_t>(p - token)));
  if (!v) return nullptr;
  out = *v;
  return p;
}

// Scans plain lines in [p, end) into out[count...], at most `limit` entries; false at the first
// line that is not plain. `stop` is where it ended (after the newline of the last entry).
bool scan_range(const char* p, const char* end, const TripletRules& rules, std::int64_t limit,
                Coupling* out, std::int64_t& count, const char*& stop) {
  count = 0;
  while (count < limit) {
    while (p < end && is_space(*p)) ++p;  // blank lines
    if (p == end) break;
    std::int64_t a = 0, b = 0;
    p = read_index(p, end, a);
    if (p == nullptr || p == end || !is_blank(*p)) return false;
    p = read_index(skip_blanks(p, end), end, b);
    if (p == nullptr || p == end || !is_blank(*p)) return false;
    p = skip_blanks(p, end);
    if (p == end || *p == '\n') return false;  // two fields only
    double v = 0.0;
    p = read_value(p, end, v);
    if (p == nullptr) return false;
    p = skip_blanks(p, end);
    if (p < end) {
      if (*p != '\n') return false;  // a fourth field
      ++p;
    }
    if (a < rules.base || a > rules.max_index || b < rules.base || b > rules.max_index)
      return false;
    out[count++] = {static_cast<int>(a - rules.base), static_cast<int>(b - rules.base), v};
  }
  stop = p;
  return true;
}

// Lines that start in [p, end) (an upper bound on the entries there). Eight bytes at a time:
// a byte of x = word ^ "\n\n..." is zero exactly where the word holds a newline, and
// ~(((x & 0x7f..) + 0x7f..) | x) has the top bit of exactly those bytes set.
std::int64_t count_lines(const char* p, const char* end) {
  if (p == end) return 0;
  const char* last = end;
  std::int64_t n = 0;
  constexpr std::uint64_t kNewlines = 0x0a0a0a0a0a0a0a0aULL, kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  for (; end - p >= 8; p += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, 8);
    const std::uint64_t x = word ^ kNewlines;
    // The flags moved to the low bit of each byte, summed by one multiplication (no popcount
    // instruction in the baseline x86-64 target).
    const std::uint64_t flags = (~(((x & kLow7) + kLow7) | x | kLow7)) >> 7;
    n += static_cast<std::int64_t>((flags * 0x0101010101010101ULL) >> 56);
  }
  for (; p < end; ++p) n += *p == '\n';
  return n + (last[-1] != '\n' ? 1 : 0);
}

// Below this a text is scanned by one thread (a thread start costs more than a chunk saves).
constexpr std::size_t kMinChunkBytes = std::size_t{1} << 20;

}  // namespace

std::optional<double> parse_number(std::string_view token) {
  const char* p = token.data();
  const char* end = p + token.size();
  const bool negative = p < end && *p == '-';
  if (negative) ++p;
  // The common shapes "-123" and "-1.25": up to 19 digits fit in the mantissa without overflow;
  // when it is at most 2^53 and there are at most 22 digits after the point, m / 10^k is one
  // correctly rounded division of two exact doubles, the value from_chars gives as well.
  std::uint64_t mantissa = 0;
  const char* digits = p;
  while (p < end && is_digit(*p)) mantissa = mantissa * 10 + static_cast<unsigned>(*p++ - '0');
  const auto whole_digits = p - digits;
  std::ptrdiff_t fraction_digits = 0;
  bool point = false;
  if (p < end && *p == '.') {
    point = true;
    const char* f = ++p;
    while (p < end && is_digit(*p)) mantissa = mantissa * 10 + static_cast<unsigned>(*p++ - '0');
    fraction_digits = p - f;
  }
  if (p == end && whole_digits > 0 && (!point || fraction_digits > 0) &&
      whole_digits + fraction_digits <= 19 && mantissa <= kMaxExactMantissa &&
      fraction_digits <= 22) {
    double v = static_cast<double>(mantissa);
    if (fraction_digits > 0) v /= kPow10[fraction_digits];
    return negative ? -v : v;
  }
  // Everything else (exponents, long mantissas, "inf", "nan", junk) exactly as to_double does.
  std::string_view text = token;
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0.0;
  const auto [stop, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || stop != text.data() + text.size() || text.empty() ||
      !std::isfinite(value))
    return std::nullopt;
  return value;
}

std::optional<TripletScan> scan_triplets(std::string_view text, std::size_t begin,
                                         const TripletRules& rules) {
  const char* first = text.data() + std::min(begin, text.size());
  const char* last = text.data() + text.size();
  TripletScan scan;
  if (rules.max_entries >= 0) {
    scan.entries.resize(static_cast<std::size_t>(rules.max_entries));
    std::int64_t count = 0;
    const char* stop = first;
    if (!scan_range(first, last, rules, rules.max_entries, scan.entries.data(), count, stop) ||
        count != rules.max_entries)
      return std::nullopt;
    scan.end = static_cast<std::size_t>(stop - text.data());
    return scan;
  }
  const auto bytes = static_cast<std::size_t>(last - first);
  const int threads = detail::max_threads();
  const std::size_t chunks = std::max<std::size_t>(
      1, std::min<std::size_t>(static_cast<std::size_t>(threads), bytes / kMinChunkBytes));
  // Chunk k is [cut[k], cut[k + 1]); every cut but the ends is just after a newline.
  std::vector<const char*> cut(chunks + 1, last);
  cut[0] = first;
  for (std::size_t k = 1; k < chunks; ++k) {
    const char* at = std::max(cut[k - 1], first + bytes / chunks * k);
    const void* nl = std::memchr(at, '\n', static_cast<std::size_t>(last - at));
    cut[k] = nl == nullptr ? last : static_cast<const char*>(nl) + 1;
  }
  std::vector<std::int64_t> offset(chunks + 1, 0), count(chunks, 0);
  detail::parallel_for(static_cast<std::int64_t>(chunks), [&](std::int64_t k) {
    offset[static_cast<std::size_t>(k) + 1] =
        count_lines(cut[static_cast<std::size_t>(k)], cut[static_cast<std::size_t>(k) + 1]);
  });
  for (std::size_t k = 0; k < chunks; ++k) offset[k + 1] += offset[k];
  scan.entries.reserve(static_cast<std::size_t>(offset[chunks]));
  detail::advise_huge_pages(scan.entries.data(), scan.entries.capacity() * sizeof(Coupling));
  scan.entries.resize(static_cast<std::size_t>(offset[chunks]));
  std::vector<char> plain(chunks, 0);
  detail::parallel_for(static_cast<std::int64_t>(chunks), [&](std::int64_t kk) {
    const auto k = static_cast<std::size_t>(kk);
    const char* stop = nullptr;
    plain[k] = scan_range(cut[k], cut[k + 1], rules, offset[k + 1] - offset[k],
                          scan.entries.data() + offset[k], count[k], stop)
                   ? 1
                   : 0;
  });
  if (std::find(plain.begin(), plain.end(), 0) != plain.end()) return std::nullopt;
  // Blank lines leave gaps at the ends of the slices: close them up, in order.
  std::int64_t filled = count[0];
  for (std::size_t k = 1; k < chunks; ++k) {
    if (filled != offset[k])
      std::memmove(static_cast<void*>(scan.entries.data() + filled),
                   scan.entries.data() + offset[k],
                   static_cast<std::size_t>(count[k]) * sizeof(Coupling));
    filled += count[k];
  }
  scan.entries.resize(static_cast<std::size_t>(filled));
  scan.end = text.size();
  return scan;
}

bool has_duplicate_pairs(const std::vector<Coupling>& q) {
  bool sorted = true;
  for (std::size_t k = 1; k < q.size() && sorted; ++k)
    sorted = pair_key(q[k - 1].i, q[k - 1].j) < pair_key(q[k].i, q[k].j);
  if (sorted) return false;
  std::vector<std::uint64_t> keys(q.size());
  for (std::size_t k = 0; k < q.size(); ++k) keys[k] = pair_key(q[k].i, q[k].j);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

}  // namespace qprune::formats_detail
