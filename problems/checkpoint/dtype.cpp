// Safetensors element types: names, sizes, and the exact conversions between the float dtypes and
// double (F16/BF16 encoded with round-to-nearest-even directly from double, so no double rounding).
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "qprune/checkpoint.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

struct DtypeRow {
  Dtype dtype;
  const char* name;
  std::size_t size;
};

constexpr std::array<DtypeRow, 15> kDtypes{{{Dtype::kF64, "F64", 8},
                                            {Dtype::kF32, "F32", 4},
                                            {Dtype::kF16, "F16", 2},
                                            {Dtype::kBF16, "BF16", 2},
                                            {Dtype::kI64, "I64", 8},
                                            {Dtype::kI32, "I32", 4},
                                            {Dtype::kI16, "I16", 2},
                                            {Dtype::kI8, "I8", 1},
                                            {Dtype::kU8, "U8", 1},
                                            {Dtype::kBool, "BOOL", 1},
                                            {Dtype::kU64, "U64", 8},
                                            {Dtype::kU32, "U32", 4},
                                            {Dtype::kU16, "U16", 2},
                                            {Dtype::kF8E4M3, "F8_E4M3", 1},
                                            {Dtype::kF8E5M2, "F8_E5M2", 1}}};

// Encodes |value| (finite or not) into a binary format with `exp_bits` exponent bits and
// `man_bits` mantissa bits, round to nearest, ties to even. The value is scaled by a power of two
// (exact) so that the kept mantissa is the integer part, which nearbyint rounds in the default
// FE_TONEAREST mode; a carry into the next binade and the subnormal range fall out of the same
// arithmetic.
std::uint32_t encode_binary(double value, int exp_bits, int man_bits) {
  const std::uint32_t sign = std::signbit(value) ? (1U << (exp_bits + man_bits)) : 0U;
  const std::uint32_t exp_all_ones = ((1U << exp_bits) - 1U) << man_bits;
  if (std::isnan(value)) return sign | exp_all_ones | (1U << (man_bits - 1));
  const double a = std::fabs(value);
  if (std::isinf(a)) return sign | exp_all_ones;
  if (a == 0.0) return sign;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int emin = 1 - bias;
  int e = 0;
  (void)std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1): floor(log2 a) = e - 1
  int unbiased = std::max(e - 1, emin);
  const double scaled = std::ldexp(a, man_bits - unbiased);  // < 2^(man_bits + 1)
  auto q = static_cast<std::uint64_t>(std::nearbyint(scaled));
  const std::uint64_t implicit = std::uint64_t{1} << man_bits;
  if (q == 2 * implicit) {  // rounded up into the next binade
    q = implicit;
    ++unbiased;
  }
  if (q < implicit) return sign | static_cast<std::uint32_t>(q);  // subnormal (or zero)
  const int biased = unbiased + bias;
  if (biased >= (1 << exp_bits) - 1) return sign | exp_all_ones;  // overflow -> inf
  return sign | (static_cast<std::uint32_t>(biased) << man_bits) |
         static_cast<std::uint32_t>(q - implicit);
}

template <class T>
void store_le(std::byte* out, T value) {
  static_assert(std::endian::native == std::endian::little, "qprune assumes a little-endian host");
  std::memcpy(out, &value, sizeof(T));
}

}  // namespace

Dtype dtype_from_name(const std::string& name) {
  for (const DtypeRow& row : kDtypes)
    if (name == row.name) return row.dtype;
  return Dtype::kUnknown;
}

const char* dtype_name(Dtype dtype) {
  for (const DtypeRow& row : kDtypes)
    if (row.dtype == dtype) return row.name;
  return "?";
}

std::size_t dtype_size(Dtype dtype) {
  for (const DtypeRow& row : kDtypes)
    if (row.dtype == dtype) return row.size;
  return 0;
}

bool is_float_dtype(Dtype dtype) {
  return dtype == Dtype::kF64 || dtype == Dtype::kF32 || dtype == Dtype::kF16 ||
         dtype == Dtype::kBF16;
}

float bf16_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

std::uint16_t float_to_bf16(double value) {
  return static_cast<std::uint16_t>(encode_binary(value, 8, 7));
}

float f16_to_float(std::uint16_t bits) {
  const bool negative = (bits & 0x8000U) != 0;
  const unsigned exponent = (bits >> 10) & 0x1FU;
  const unsigned mantissa = bits & 0x3FFU;
  float magnitude = 0.0F;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // subnormal: m * 2^-24
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(static_cast<float>(1024U + mantissa), static_cast<int>(exponent) - 25);
  }
  return negative ? -magnitude : magnitude;
}

float f8_e4m3_to_float(std::uint8_t bits) {
  const unsigned exponent = (bits >> 3) & 0xFU;
  const unsigned mantissa = bits & 0x7U;
  if (exponent == 15 && mantissa == 7) return NAN;  // E4M3FN: the only NaNs, no infinities
  const float magnitude =
      exponent == 0
          ? std::ldexp(static_cast<float>(mantissa), -9)  // subnormal: m/8 * 2^-6
          : std::ldexp(static_cast<float>(8U + mantissa), static_cast<int>(exponent) - 10);
  return (bits & 0x80U) != 0 ? -magnitude : magnitude;
}

std::uint16_t float_to_f16(double value) {
  return static_cast<std::uint16_t>(encode_binary(value, 5, 10));
}

std::vector<std::byte> encode_matrix(const Eigen::MatrixXd& values, Dtype dtype,
                                     const std::string& tensor) {
  if (!is_float_dtype(dtype))
    throw InvalidArgument("encode_matrix: tensor '" + tensor + "': expected a float dtype (F64, " +
                          "F32, F16, BF16), found " + dtype_name(dtype));
  const std::size_t size = dtype_size(dtype);
  const auto rows = values.rows();
  const auto cols = values.cols();
  std::vector<std::byte> out(static_cast<std::size_t>(rows * cols) * size);
  std::byte* p = out.data();
  for (Eigen::Index i = 0; i < rows; ++i) {
    for (Eigen::Index j = 0; j < cols; ++j, p += size) {
      const double v = values(i, j);
      bool overflow = false;
      if (!std::isfinite(v)) {
        overflow = true;
      } else if (dtype == Dtype::kF64) {
        store_le(p, v);
      } else if (dtype == Dtype::kF32) {
        const auto f = static_cast<float>(v);  // round to nearest even (default FP mode)
        overflow = std::isinf(f);
        store_le(p, f);
      } else {
        const std::uint16_t bits = dtype == Dtype::kF16 ? float_to_f16(v) : float_to_bf16(v);
        overflow = dtype == Dtype::kF16 ? (bits & 0x7C00U) == 0x7C00U : (bits & 0x7F80U) == 0x7F80U;
        store_le(p, bits);
      }
      if (overflow) {
        std::ostringstream msg;
        msg << "encode_matrix: tensor '" << tensor << "': value " << v << " at [" << i << ", " << j
            << "] is not finite or overflows " << dtype_name(dtype);
        throw InvalidArgument(msg.str());
      }
    }
  }
  return out;
}

}  // namespace qprune
