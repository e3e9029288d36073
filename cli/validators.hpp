// Number checks for CLI11 options with messages a user can act on: CLI11 2.1's PositiveNumber and
// NonNegativeNumber print the whole double range ("not in range 0.000000 to 1797693134862315...").
// The help texts keep CLI11's POSITIVE / NONNEGATIVE tags.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/validators.hpp is part of the cli program; no library layer may include it"
#endif

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

namespace qprune::cli {

namespace detail {
/// A validator accepting numbers x with x > 0 (strict) or x >= 0.
inline CLI::Validator number_at_least_zero(bool strict) {
  return CLI::Validator(
      [strict](std::string& text) -> std::string {
        double x = 0.0;
        std::size_t used = 0;
        try {
          x = std::stod(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != text.size() || std::isnan(x))
          return "expected a number, got '" + text + "'";
        if (strict ? !(x > 0.0) : !(x >= 0.0))
          return std::string(strict ? "must be > 0" : "must be >= 0") + ", got " + text;
        return {};
      },
      strict ? "POSITIVE" : "NONNEGATIVE");
}
}  // namespace detail

/// x > 0.
inline CLI::Validator positive() { return detail::number_at_least_zero(true); }
/// x >= 0.
inline CLI::Validator non_negative() { return detail::number_at_least_zero(false); }

/// An unsigned 64-bit integer written in decimal digits only, 0..2^64-1 (18446744073709551615).
/// CLI11 converts unsigned options with strtoull, which wraps "-1" and saturates "2^64" to
/// 2^64-1 without a word; this check runs first and refuses both. Used for every seed option.
inline CLI::Validator uint64_value() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, value);
        if (text.empty() || text[0] == '-' || text[0] == '+' || ptr != end || ec != std::errc())
          return "expected an integer in 0..18446744073709551615 (2^64-1), got '" + text + "'";
        return {};
      },
      "UINT64");
}

}  // namespace qprune::cli
