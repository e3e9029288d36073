// Binomial coefficients for counting feasible states (a group of size n with k ones has C(n, k)).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

namespace qprune::detail {

/// C(n, k) exactly, saturating at the largest uint64 (0 when k < 0 or k > n).
[[nodiscard]] inline std::uint64_t binomial(int n, int k) {
  using U64 = std::uint64_t;
  if (k < 0 || k > n) return 0;
  k = std::min(k, n - k);
  U64 r = 1;
  for (int i = 1; i <= k; ++i) {
    // r * (n - k + i) / i, divided before multiplying so that no exact result overflows early.
    const U64 g = std::gcd(r, static_cast<U64>(i));
    const U64 t = static_cast<U64>(n - k + i) / (static_cast<U64>(i) / g);
    if (__builtin_mul_overflow(r / g, t, &r)) return std::numeric_limits<U64>::max();
  }
  return r;
}

/// C(n, k) for 0 <= k <= n <= 64 as a table, for loops that look coefficients up per amplitude
/// (the QAOA subspace's combinatorial number system). Every entry equals binomial(n, k): none
/// saturates below n = 65, since C(64, 32) < 2^64.
struct BinomialTable {
  std::uint64_t c[65][65] = {};
};

[[nodiscard]] inline const BinomialTable& binomial_table() {
  static const BinomialTable table = [] {
    BinomialTable t;
    for (int n = 0; n <= 64; ++n)
      for (int k = 0; k <= n; ++k) t.c[n][k] = binomial(n, k);
    return t;
  }();
  return table;
}

/// log2 C(n, k) through lgamma (for sizes beyond uint64).
[[nodiscard]] inline double log2_binomial(int n, int k) {
  constexpr double kLn2 = 0.69314718055994530942;
  return (std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0)) / kLn2;
}

}  // namespace qprune::detail
