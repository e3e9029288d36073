// The layer kernels of layer_kernels.hpp. One template body per kernel, on vectors of VB bytes
// (GCC/Clang vector extensions); thin wrappers compile it for AVX-512 (VB = 64) and AVX2 (VB = 32)
// with target attributes, and for the baseline (VB = 16), and kernel_isa() picks one at run time.
//
// Why this shape: one qubit rotation per trip through L1/L2 is limited by loads and stores, not by
// arithmetic (a butterfly is two fused multiply-adds per vector pair). Loading 2^B rows and doing
// B stages in registers (B <= 3, 8 vectors, well inside 16 or 32 registers) divides that traffic
// by B. Inside one vector the first qubits pair lanes, done with a lane shuffle. The phase is three
// complex products per vector (split tables: a shuffle, a multiply and a fused multiply-add each)
// as the first trip loads the block, so it costs no trip of its own.
#include "solver/qaoa/layer_kernels.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/cpu_features.hpp"

// Vectors wider than the baseline pass through the always-inlined helpers only inside functions
// compiled for their instruction set; GCC warns about the ABI of those helpers all the same.
#pragma GCC diagnostic ignored "-Wpsabi"

// The wide bodies are compiled for whole x86-64 levels (FMA included) and chosen by cpu_level().
#if defined(QPRUNE_TARGET_X86_64_V4)
#define QPRUNE_KERNEL_DISPATCH 1
#else
#define QPRUNE_KERNEL_DISPATCH 0
#endif

namespace qprune::detail::qaoa {

XRotation XRotation::from_angle(double beta) {
  const double c = std::cos(beta), s = std::sin(beta);
  XRotation r;
  if (std::abs(c) >= std::abs(s)) {
    r.coef = s / c;
    r.factor = {c, 0.0};
  } else {
    r.coef = c / s;
    r.form = XRotation::Form::kCot;
    r.factor = {0.0, -s};
  }
  return r;
}

std::complex<double> XRotation::total_factor(int qubits) const {
  // |factor| >= 1/sqrt(2), so factor^n stays representable for any qubit count we simulate.
  std::complex<double> out{1.0, 0.0};
  for (int q = 0; q < qubits; ++q) out *= factor;
  return out;
}

const char* to_string(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kAvx512:
      return "avx512";
    case KernelIsa::kAvx2:
      return "avx2";
    case KernelIsa::kGeneric:
      break;
  }
  return "generic";
}

KernelIsa best_kernel_isa() {
#if QPRUNE_KERNEL_DISPATCH
  switch (cpu_level()) {
    case CpuLevel::kAvx512:
      return KernelIsa::kAvx512;
    case CpuLevel::kAvx2:
      return KernelIsa::kAvx2;
    case CpuLevel::kBaseline:
      break;
  }
#endif
  return KernelIsa::kGeneric;
}

namespace {

std::atomic<int>& isa_in_use() {
  static std::atomic<int> isa{static_cast<int>(best_kernel_isa())};
  return isa;
}

template <class R, int VB>
struct Simd {
  typedef R V __attribute__((vector_size(VB)));
  static constexpr int kLanes = VB / static_cast<int>(sizeof(R));  // reals per vector
  static constexpr int kInBits = std::countr_zero(static_cast<unsigned>(kLanes / 2));  // qubits
};

// Lane i of the result is lane i ^ M of x.
template <int M, class V, std::size_t... I>
[[gnu::always_inline]] inline V xor_lanes(V x, std::index_sequence<I...>) {
  return __builtin_shufflevector(x, x, (static_cast<int>(I) ^ M)...);
}

template <class R, int VB>
struct Kernels {
  using S = Simd<R, VB>;
  using V = typename S::V;
  static constexpr int kLanes = S::kLanes;

  [[gnu::always_inline]] static V load(const R* p) {
    V x;
    std::memcpy(&x, p, sizeof(V));
    return x;
  }
  [[gnu::always_inline]] static void store(R* p, V x) { std::memcpy(p, &x, sizeof(V)); }
  template <int M>
  [[gnu::always_inline]] static V lanes(V x) {
    return xor_lanes<M>(x, std::make_index_sequence<kLanes>{});
  }
  /// (a, -a, a, -a, ...)
  [[gnu::always_inline]] static V alternating(R a) {
    V x;
#pragma GCC unroll 16
    for (int i = 0; i < kLanes; ++i) x[i] = (i & 1) ? -a : a;
    return x;
  }

  // One qubit on a pair of vectors (u holds the amplitudes without the qubit, v with it), or on
  // the lanes of one vector whose amplitudes pair across bit Q of the lane's amplitude index.
  template <XRotation::Form F>
  struct Pair {
    V c;  // kTan: (t, -t, ...): -i t v = (t v_im, -t v_re). kCot: (-k, k, ...): i k u.
    [[gnu::always_inline]] void operator()(V& u, V& v) const {
      const V su = lanes<1>(u), sv = lanes<1>(v);
      if constexpr (F == XRotation::Form::kTan) {
        u = u + c * sv;
        v = v + c * su;
      } else {
        const V nu = v + c * su;
        v = u + c * sv;
        u = nu;
      }
    }
    template <int Q>
    [[gnu::always_inline]] void in_vector(V& x) const {
      if constexpr (F == XRotation::Form::kTan) {
        x = x + c * lanes<(2 << Q) | 1>(x);
      } else {
        x = lanes<(2 << Q)>(x) + c * lanes<1>(x);
      }
    }
  };

  /// No mixing (a phase-only trip).
  struct NoMix {
    [[gnu::always_inline]] void operator()(V&, V&) const {}
    template <int Q>
    [[gnu::always_inline]] void in_vector(V&) const {}
  };

  [[gnu::always_inline]] static V times(V x, V re, V im) { return x * re + lanes<1>(x) * im; }

  // What the first trip multiplies each loaded vector (number `vec` of the block) by.
  struct NoFactor {
    [[gnu::always_inline]] void operator()(V&, std::size_t) const {}
  };
  struct ScaleFactor {
    V re, im;
    [[gnu::always_inline]] void operator()(V& x, std::size_t) const { x = times(x, re, im); }
  };
  struct PhaseFactor {
    BlockPhase<R> t;
    V sign;  // (-1, 1, -1, 1, ...)
    [[gnu::always_inline]] void operator()(V& x, std::size_t vec) const {
      const std::size_t l = vec * (kLanes / 2);
      const std::size_t l0 = l & ((std::size_t{1} << t.lo_bits) - 1), l1 = l >> t.lo_bits;
      x = times(x, load(t.p.re + 2 * l), load(t.p.im + 2 * l));
      x = times(x, load(t.b.re + 2 * l0), load(t.b.im + 2 * l0));
      // a[l1] is one number for the whole vector: broadcast scalars (a vector assembled from
      // pairs in memory would stall on store forwarding).
      x = x * t.a.re[2 * l1] + lanes<1>(x) * (sign * t.a.im[2 * l1 + 1]);
    }
  };

  // B stages on 2^B vectors in registers: stage s pairs x[j] and x[j | 2^s].
  template <int B, class P>
  [[gnu::always_inline]] static void stages(V* x, const P& pair) {
#pragma GCC unroll 16
    for (int s = 0; s < B; ++s)
#pragma GCC unroll 16
      for (int j = 0; j < (1 << B); ++j)
        if (((j >> s) & 1) == 0) pair(x[j], x[j | (1 << s)]);
  }

  // B qubits over rows: rows r and r + j d (j < 2^B, d = 2^s, r with bits s..s+B-1 clear) start
  // `stride` reals apart and hold `len` reals each.
  template <int B, class P>
  [[gnu::always_inline]] static void row_sweep(R* base, std::size_t stride, std::size_t rows,
                                               std::size_t d, std::size_t len, const P& pair) {
    constexpr int kRows = 1 << B;
    for (std::size_t r = 0; r < rows; ++r) {
      if ((r & ((kRows - 1) * d)) != 0) continue;
      R* p[kRows];
#pragma GCC unroll 16
      for (int j = 0; j < kRows; ++j) p[j] = base + (r + static_cast<std::size_t>(j) * d) * stride;
      for (std::size_t k = 0; k < len; k += kLanes) {
        V x[kRows];
#pragma GCC unroll 16
        for (int j = 0; j < kRows; ++j) x[j] = load(p[j] + k);
        stages<B>(x, pair);
#pragma GCC unroll 16
        for (int j = 0; j < kRows; ++j) store(p[j] + k, x[j]);
      }
    }
  }

  // `bits` qubits of rows 2^first d apart, in sweeps of at most 3 qubits of near-equal size.
  template <class P>
  [[gnu::always_inline]] static void row_sweeps(R* base, std::size_t stride, std::size_t rows,
                                                int first, int bits, std::size_t len,
                                                const P& pair) {
    const int sweeps = (bits + 2) / 3;
    for (int k = 0; k < sweeps; ++k) {
      const int b = (bits + sweeps - 1 - k) / (sweeps - k);
      const std::size_t d = std::size_t{1} << first;
      if (b == 3) row_sweep<3>(base, stride, rows, d, len, pair);
      if (b == 2) row_sweep<2>(base, stride, rows, d, len, pair);
      if (b == 1) row_sweep<1>(base, stride, rows, d, len, pair);
      first += b;
      bits -= b;
    }
  }

  // First trip through a block: the factor, the in-vector qubits and B qubits across 2^B
  // consecutive vectors.
  template <int B, class F, class P>
  [[gnu::always_inline]] static void first_sweep(R* blk, std::size_t vectors, const F& factor,
                                                 const P& pair) {
    constexpr int kRows = 1 << B;
    for (std::size_t b = 0; b < vectors; b += kRows) {
      V x[kRows];
#pragma GCC unroll 16
      for (int j = 0; j < kRows; ++j) {
        x[j] = load(blk + (b + static_cast<std::size_t>(j)) * kLanes);
        factor(x[j], b + static_cast<std::size_t>(j));
        if constexpr (S::kInBits > 0) pair.template in_vector<0>(x[j]);
        if constexpr (S::kInBits > 1) pair.template in_vector<1>(x[j]);
        if constexpr (S::kInBits > 2) pair.template in_vector<2>(x[j]);
      }
      stages<B>(x, pair);
#pragma GCC unroll 16
      for (int j = 0; j < kRows; ++j) store(blk + (b + static_cast<std::size_t>(j)) * kLanes, x[j]);
    }
  }

  template <class F, class P>
  [[gnu::always_inline]] static void block(R* blk, int bits, const F& factor, const P& pair) {
    const int cross = bits - S::kInBits;  // qubits across vectors
    const std::size_t vectors = std::size_t{1} << cross;
    const int b1 = std::min(3, cross);
    if (b1 == 3) first_sweep<3>(blk, vectors, factor, pair);
    if (b1 == 2) first_sweep<2>(blk, vectors, factor, pair);
    if (b1 == 1) first_sweep<1>(blk, vectors, factor, pair);
    if (b1 == 0) first_sweep<0>(blk, vectors, factor, pair);
    // The rest: rows of one vector each.
    row_sweeps(blk, kLanes, vectors, b1, cross - b1, kLanes, pair);
  }

  template <class F>
  [[gnu::always_inline]] static void factor_and_mix(R* blk, int bits, const XRotation* rot,
                                                    const F& factor) {
    if (rot == nullptr) {
      first_sweep<0>(blk, std::size_t{1} << (bits - S::kInBits), factor, NoMix{});
      return;
    }
    const R coef = static_cast<R>(rot->coef);
    if (rot->form == XRotation::Form::kTan) {
      block(blk, bits, factor, Pair<XRotation::Form::kTan>{alternating(coef)});
    } else {
      block(blk, bits, factor, Pair<XRotation::Form::kCot>{-alternating(coef)});
    }
  }

  [[gnu::always_inline]] static void mix_block(R* blk, int bits, const XRotation* rot,
                                               std::complex<double> scale,
                                               const BlockPhase<R>* phase) {
    if (phase != nullptr)
      return factor_and_mix(blk, bits, rot, PhaseFactor{*phase, -alternating(1)});
    if (scale == std::complex<double>(1.0, 0.0)) return factor_and_mix(blk, bits, rot, NoFactor{});
    ScaleFactor f;
#pragma GCC unroll 16
    for (int i = 0; i < kLanes; ++i) {
      f.re[i] = static_cast<R>(scale.real());
      f.im[i] = static_cast<R>((i & 1) ? scale.imag() : -scale.imag());
    }
    factor_and_mix(blk, bits, rot, f);
  }

  // ---- Im <lam| sum_q X_q |psi> over the qubits of a block or a tile (the mixer gradient) ----
  // Per pair (u, v): Im(conj(l_u) p_v + conj(l_v) p_u); lane-wise l * swap(p') puts l_re p'_im in
  // the even lanes and l_im p'_re in the odd ones, so the sum is (even lanes) - (odd lanes).
  [[gnu::always_inline]] static double reduce_imag(V acc) {
    double sum = 0.0;
#pragma GCC unroll 16
    for (int i = 0; i < kLanes; ++i) sum += (i & 1) ? -static_cast<double>(acc[i]) : acc[i];
    return sum;
  }
  template <int B>
  [[gnu::always_inline]] static void imag_stages(const V* l, const V* p, V& acc) {
#pragma GCC unroll 16
    for (int s = 0; s < B; ++s)
#pragma GCC unroll 16
      for (int j = 0; j < (1 << B); ++j)
        if (((j >> s) & 1) == 0) {
          const int k = j | (1 << s);
          acc += l[j] * lanes<1>(p[k]) + l[k] * lanes<1>(p[j]);
        }
  }
  // B qubits over rows as in row_sweep; each row group's sum is reduced into `total` (double)
  // so that float lanes add up a few thousand products at most.
  template <int B>
  [[gnu::always_inline]] static void imag_row_sweep(const R* lam, const R* psi, std::size_t stride,
                                                    std::size_t rows, std::size_t d,
                                                    std::size_t len, double& total) {
    constexpr int kRows = 1 << B;
    V acc = {};
    for (std::size_t r = 0; r < rows; ++r) {
      if ((r & ((kRows - 1) * d)) != 0) continue;
      for (std::size_t k = 0; k < len; k += kLanes) {
        V l[kRows], p[kRows];
#pragma GCC unroll 16
        for (int j = 0; j < kRows; ++j) {
          const std::size_t at = (r + static_cast<std::size_t>(j) * d) * stride + k;
          l[j] = load(lam + at);
          p[j] = load(psi + at);
        }
        imag_stages<B>(l, p, acc);
      }
      if (len >= 64) {
        total += reduce_imag(acc);
        acc = V{};
      }
    }
    total += reduce_imag(acc);
  }
  [[gnu::always_inline]] static void imag_row_sweeps(const R* lam, const R* psi, std::size_t stride,
                                                     std::size_t rows, int first, int bits,
                                                     std::size_t len, double& total) {
    const int sweeps = (bits + 2) / 3;
    for (int k = 0; k < sweeps; ++k) {
      const int b = (bits + sweeps - 1 - k) / (sweeps - k);
      const std::size_t d = std::size_t{1} << first;
      if (b == 3) imag_row_sweep<3>(lam, psi, stride, rows, d, len, total);
      if (b == 2) imag_row_sweep<2>(lam, psi, stride, rows, d, len, total);
      if (b == 1) imag_row_sweep<1>(lam, psi, stride, rows, d, len, total);
      first += b;
      bits -= b;
    }
  }
  template <int B>
  [[gnu::always_inline]] static double imag_first_sweep(const R* lam, const R* psi,
                                                        std::size_t vectors) {
    constexpr int kRows = 1 << B;
    V acc = {};
    for (std::size_t b = 0; b < vectors; b += kRows) {
      V l[kRows], p[kRows];
#pragma GCC unroll 16
      for (int j = 0; j < kRows; ++j) {
        l[j] = load(lam + (b + static_cast<std::size_t>(j)) * kLanes);
        p[j] = load(psi + (b + static_cast<std::size_t>(j)) * kLanes);
        // In-vector qubit Q: the partner lane pair is 2 << Q reals away; summing over every
        // lane counts both halves of each pair.
        if constexpr (S::kInBits > 0) acc += l[j] * lanes<2 | 1>(p[j]);
        if constexpr (S::kInBits > 1) acc += l[j] * lanes<4 | 1>(p[j]);
        if constexpr (S::kInBits > 2) acc += l[j] * lanes<8 | 1>(p[j]);
      }
      imag_stages<B>(l, p, acc);
    }
    return reduce_imag(acc);
  }
  [[gnu::always_inline]] static double imag_block(const R* lam, const R* psi, int bits) {
    const int cross = bits - S::kInBits;
    const std::size_t vectors = std::size_t{1} << cross;
    const int b1 = std::min(3, cross);
    double total = 0.0;
    if (b1 == 3) total = imag_first_sweep<3>(lam, psi, vectors);
    if (b1 == 2) total = imag_first_sweep<2>(lam, psi, vectors);
    if (b1 == 1) total = imag_first_sweep<1>(lam, psi, vectors);
    if (b1 == 0) total = imag_first_sweep<0>(lam, psi, vectors);
    imag_row_sweeps(lam, psi, kLanes, vectors, b1, cross - b1, kLanes, total);
    return total;
  }
  [[gnu::always_inline]] static double imag_tile(const R* lam, const R* psi, std::size_t stride,
                                                 int g, std::size_t len) {
    double total = 0.0;
    imag_row_sweeps(lam, psi, 2 * stride, std::size_t{1} << g, 0, g, 2 * len, total);
    return total;
  }

  [[gnu::always_inline]] static void high_tile(R* base, std::size_t stride, int g, std::size_t len,
                                               const XRotation& rot) {
    const R coef = static_cast<R>(rot.coef);
    const std::size_t rows = std::size_t{1} << g;
    if (rot.form == XRotation::Form::kTan) {
      row_sweeps(base, 2 * stride, rows, 0, g, 2 * len,
                 Pair<XRotation::Form::kTan>{alternating(coef)});
    } else {
      row_sweeps(base, 2 * stride, rows, 0, g, 2 * len,
                 Pair<XRotation::Form::kCot>{-alternating(coef)});
    }
  }
};

// Blocks smaller than one vector (n < 3, no phase: block_phase_fits): the same arithmetic on
// scalars.
template <class R>
void mix_block_scalar(R* blk, int bits, const XRotation* rot, std::complex<double> scale) {
  auto* z = reinterpret_cast<std::complex<R>*>(blk);
  const std::size_t size = std::size_t{1} << bits;
  const std::complex<R> s(static_cast<R>(scale.real()), static_cast<R>(scale.imag()));
  for (std::size_t i = 0; i < size; ++i) z[i] *= s;
  if (rot == nullptr) return;
  const std::complex<R> ic(0, static_cast<R>(rot->coef));
  for (int q = 0; q < bits; ++q) {
    const std::size_t bit = std::size_t{1} << q;
    for (std::size_t i = 0; i < size; ++i) {
      if ((i & bit) != 0) continue;
      const std::complex<R> u = z[i], v = z[i | bit];
      const bool cot = rot->form == XRotation::Form::kCot;
      z[i] = cot ? v + ic * u : u - ic * v;
      z[i | bit] = cot ? u + ic * v : v - ic * u;
    }
  }
}

template <class R>
double imag_block_scalar(const R* lam, const R* psi, int bits) {
  const auto* l = reinterpret_cast<const std::complex<R>*>(lam);
  const auto* p = reinterpret_cast<const std::complex<R>*>(psi);
  double sum = 0.0;
  for (int q = 0; q < bits; ++q)
    for (std::size_t i = 0; i < (std::size_t{1} << bits); ++i)
      sum += static_cast<double>(std::imag(std::conj(l[i]) * p[i ^ (std::size_t{1} << q)]));
  return sum;
}

template <class R, int VB>
[[gnu::always_inline]] inline double imag_block_for(const R* lam, const R* psi, int bits) {
  if (bits < Simd<R, VB>::kInBits) return imag_block_scalar(lam, psi, bits);
  return Kernels<R, VB>::imag_block(lam, psi, bits);
}

template <class R, int VB>
[[gnu::always_inline]] inline void mix_block_for(R* blk, int bits, const XRotation* rot,
                                                 std::complex<double> scale,
                                                 const BlockPhase<R>* phase) {
  if (bits < Simd<R, VB>::kInBits) return mix_block_scalar(blk, bits, rot, scale);
  Kernels<R, VB>::mix_block(blk, bits, rot, scale, phase);
}

#if QPRUNE_KERNEL_DISPATCH
template <class R>
QPRUNE_TARGET_X86_64_V4 void mix_block_avx512(R* blk, int bits, const XRotation* rot,
                                              std::complex<double> scale,
                                              const BlockPhase<R>* phase) {
  mix_block_for<R, 64>(blk, bits, rot, scale, phase);
}
template <class R>
QPRUNE_TARGET_X86_64_V3 void mix_block_avx2(R* blk, int bits, const XRotation* rot,
                                            std::complex<double> scale,
                                            const BlockPhase<R>* phase) {
  mix_block_for<R, 32>(blk, bits, rot, scale, phase);
}
template <class R>
QPRUNE_TARGET_X86_64_V4 double imag_block_avx512(const R* lam, const R* psi, int bits) {
  return imag_block_for<R, 64>(lam, psi, bits);
}
template <class R>
QPRUNE_TARGET_X86_64_V3 double imag_block_avx2(const R* lam, const R* psi, int bits) {
  return imag_block_for<R, 32>(lam, psi, bits);
}
template <class R>
QPRUNE_TARGET_X86_64_V4 double imag_tile_avx512(const R* lam, const R* psi, std::size_t stride,
                                                int g, std::size_t len) {
  return Kernels<R, 64>::imag_tile(lam, psi, stride, g, len);
}
template <class R>
QPRUNE_TARGET_X86_64_V3 double imag_tile_avx2(const R* lam, const R* psi, std::size_t stride, int g,
                                              std::size_t len) {
  return Kernels<R, 32>::imag_tile(lam, psi, stride, g, len);
}
template <class R>
QPRUNE_TARGET_X86_64_V4 void high_tile_avx512(R* base, std::size_t stride, int g, std::size_t len,
                                              const XRotation& rot) {
  Kernels<R, 64>::high_tile(base, stride, g, len, rot);
}
template <class R>
QPRUNE_TARGET_X86_64_V3 void high_tile_avx2(R* base, std::size_t stride, int g, std::size_t len,
                                            const XRotation& rot) {
  Kernels<R, 32>::high_tile(base, stride, g, len, rot);
}
#endif

}  // namespace

KernelIsa kernel_isa() {
  return static_cast<KernelIsa>(isa_in_use().load(std::memory_order_relaxed));
}

void set_kernel_isa(KernelIsa isa) {
  isa_in_use().store(static_cast<int>(std::min(isa, best_kernel_isa())), std::memory_order_relaxed);
}

template <class R>
void split_factors(const double* interleaved, std::size_t count, R* re, R* im) {
  for (std::size_t i = 0; i < count; ++i) {
    re[2 * i] = re[2 * i + 1] = static_cast<R>(interleaved[2 * i]);
    im[2 * i] = static_cast<R>(-interleaved[2 * i + 1]);
    im[2 * i + 1] = static_cast<R>(interleaved[2 * i + 1]);
  }
}

template <class R>
bool block_phase_fits(int lo_bits) {
  switch (kernel_isa()) {
    case KernelIsa::kAvx512:
      return lo_bits >= Simd<R, 64>::kInBits;
    case KernelIsa::kAvx2:
      return lo_bits >= Simd<R, 32>::kInBits;
    case KernelIsa::kGeneric:
      break;
  }
  return lo_bits >= Simd<R, 16>::kInBits;
}

template <class R>
void mix_block(R* block, int bits, const XRotation* rot, std::complex<double> scale,
               const BlockPhase<R>* phase) {
  switch (kernel_isa()) {
#if QPRUNE_KERNEL_DISPATCH
    case KernelIsa::kAvx512:
      return mix_block_avx512(block, bits, rot, scale, phase);
    case KernelIsa::kAvx2:
      return mix_block_avx2(block, bits, rot, scale, phase);
#endif
    default:
      return mix_block_for<R, 16>(block, bits, rot, scale, phase);
  }
}

template <class R>
void high_tile(R* base, std::size_t stride, int g, std::size_t len, const XRotation& rot) {
  switch (kernel_isa()) {
#if QPRUNE_KERNEL_DISPATCH
    case KernelIsa::kAvx512:
      return high_tile_avx512(base, stride, g, len, rot);
    case KernelIsa::kAvx2:
      return high_tile_avx2(base, stride, g, len, rot);
#endif
    default:
      return Kernels<R, 16>::high_tile(base, stride, g, len, rot);
  }
}

template <class R>
double x_imag_block(const R* lam, const R* psi, int bits) {
  switch (kernel_isa()) {
#if QPRUNE_KERNEL_DISPATCH
    case KernelIsa::kAvx512:
      return imag_block_avx512(lam, psi, bits);
    case KernelIsa::kAvx2:
      return imag_block_avx2(lam, psi, bits);
#endif
    default:
      return imag_block_for<R, 16>(lam, psi, bits);
  }
}

template <class R>
double x_imag_tile(const R* lam, const R* psi, std::size_t stride, int g, std::size_t len) {
  switch (kernel_isa()) {
#if QPRUNE_KERNEL_DISPATCH
    case KernelIsa::kAvx512:
      return imag_tile_avx512(lam, psi, stride, g, len);
    case KernelIsa::kAvx2:
      return imag_tile_avx2(lam, psi, stride, g, len);
#endif
    default:
      return Kernels<R, 16>::imag_tile(lam, psi, stride, g, len);
  }
}

template double x_imag_block<float>(const float*, const float*, int);
template double x_imag_block<double>(const double*, const double*, int);
template double x_imag_tile<float>(const float*, const float*, std::size_t, int, std::size_t);
template double x_imag_tile<double>(const double*, const double*, std::size_t, int, std::size_t);
template void split_factors<float>(const double*, std::size_t, float*, float*);
template void split_factors<double>(const double*, std::size_t, double*, double*);
template bool block_phase_fits<float>(int);
template bool block_phase_fits<double>(int);
template void mix_block<float>(float*, int, const XRotation*, std::complex<double>,
                               const BlockPhase<float>*);
template void mix_block<double>(double*, int, const XRotation*, std::complex<double>,
                                const BlockPhase<double>*);
template void high_tile<float>(float*, std::size_t, int, std::size_t, const XRotation&);
template void high_tile<double>(double*, std::size_t, int, std::size_t, const XRotation&);

}  // namespace qprune::detail::qaoa
