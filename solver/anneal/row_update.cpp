// The accepted-flip update of the dense annealing kernel, h += s * row: the one loop whose memory
// traffic bounds the kernel at high temperature. Built twice on x86-64 (AVX2+FMA and the baseline)
// and chosen once when the library loads, so a default build still gets 256-bit vectors.
#include <cstddef>
#include <cstdint>

#include "core/cpu_features.hpp"
#include "solver/anneal/anneal_kernel.hpp"

namespace qprune::detail::anneal {
namespace {

template <class Field, class Weight>
inline void axpy(Field* __restrict h, const Weight* __restrict row, Field s, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) h[j] += s * static_cast<Field>(row[j]);
}

// s is +-1: an add or a subtract, which vectorises to widen + add without a multiply.
template <class Weight>
inline void add_or_sub(std::int32_t* __restrict h, const Weight* __restrict row, std::int32_t s,
                       std::size_t n) {
  if (s > 0) {
    for (std::size_t j = 0; j < n; ++j) h[j] += row[j];
  } else {
    for (std::size_t j = 0; j < n; ++j) h[j] -= row[j];
  }
}

}  // namespace

QPRUNE_CPU_CLONES void add_scaled_row(float* h, const float* row, float s, std::size_t n) {
  axpy(h, row, s, n);
}

QPRUNE_CPU_CLONES void add_scaled_row(double* h, const double* row, double s, std::size_t n) {
  axpy(h, row, s, n);
}

QPRUNE_CPU_CLONES void add_scaled_row(std::int32_t* h, const std::int8_t* row, std::int32_t s,
                                      std::size_t n) {
  add_or_sub(h, row, s, n);
}

QPRUNE_CPU_CLONES void add_scaled_row(std::int32_t* h, const std::int16_t* row, std::int32_t s,
                                      std::size_t n) {
  add_or_sub(h, row, s, n);
}

}  // namespace qprune::detail::anneal
