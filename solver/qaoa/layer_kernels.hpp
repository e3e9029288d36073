// The hot loops of a QAOA layer on a full statevector (interleaved re, im): the phase and all
// low qubits of the transverse-field X mixer exp(-i beta sum_j X_j) on a block that sits in cache,
// and the grouped high-qubit passes over tiles of rows. Written with GCC/Clang vector extensions
// and built per instruction set (AVX-512 with 64-byte vectors, AVX2 with 32-byte ones, a generic
// 16-byte baseline), chosen at run time: the phase is multiplied in as a block is loaded, up to
// three qubits are rotated in registers per trip through L1/L2, and one fused multiply-add per
// real does a rotation.
//
// A rotation exp(-i beta X) maps a pair (u, v) to (cos u - i sin v, cos v - i sin u). The kernels
// apply it up to a global factor that the caller multiplies in once per layer:
//  - |cos| >= |sin|: u' = u - i t v, v' = v - i t u, t = tan(beta), factor cos(beta);
//  - otherwise:      u' = v + i k u, v' = u + i k v, k = cot(beta), factor -i sin(beta);
// |t|, |k| <= 1 keeps it well conditioned, and the product of the n factors is one complex number.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/qaoa/layer_kernels.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <complex>
#include <cstddef>

namespace qprune::detail::qaoa {

/// exp(-i beta X) in the kernels' form (see above).
struct XRotation {
  /// kTan: u' = u - i t v, v' = v - i t u. kCot: the outputs of each pair swapped,
  /// u' = v + i k u, v' = u + i k v.
  enum class Form { kTan, kCot };
  double coef = 0.0;  ///< tan(beta) (kTan) or cot(beta) (kCot), |coef| <= 1
  Form form = Form::kTan;
  std::complex<double> factor{1.0, 0.0};  ///< global factor per qubit
  [[nodiscard]] static XRotation from_angle(double beta);
  /// factor^qubits: the scalar the kernels leave out of a mixer over `qubits` qubits.
  [[nodiscard]] std::complex<double> total_factor(int qubits) const;
};

enum class KernelIsa { kGeneric, kAvx2, kAvx512 };
[[nodiscard]] const char* to_string(KernelIsa isa);
/// The widest kernel set this CPU runs.
[[nodiscard]] KernelIsa best_kernel_isa();
/// The kernel set in use (best_kernel_isa() unless set_kernel_isa chose a narrower one).
[[nodiscard]] KernelIsa kernel_isa();
/// For tests and benchmarks: use `isa`, or the best supported one when this CPU lacks it.
void set_kernel_isa(KernelIsa isa);

/// A table of complex factors in the kernels' form: entry i is re[2i] = re[2i+1] = Re z_i and
/// im[2i] = -Im z_i, im[2i+1] = Im z_i, so that x z_i = x re + swap(x) im lane by lane.
template <class R>
struct SplitTable {
  const R* re = nullptr;
  const R* im = nullptr;
};
/// Writes `count` complex numbers (interleaved doubles) as a split table into re and im (2 count
/// reals each).
template <class R>
void split_factors(const double* interleaved, std::size_t count, R* re, R* im);

/// The phase of one block: amplitude l = l1 2^lo_bits + l0 is multiplied by p[l] b[l0] a[l1].
template <class R>
struct BlockPhase {
  SplitTable<R> p, b, a;
  int lo_bits = 0;
};
/// Whether the kernels take a BlockPhase with rows of 2^lo_bits amplitudes (a vector must not
/// straddle two rows); otherwise the caller applies the phase itself.
template <class R>
[[nodiscard]] bool block_phase_fits(int lo_bits);

/// A block of 2^bits amplitudes: multiplied by `phase` (when given) or else by `scale` (when not
/// 1), then all its qubits rotated by `rot` (when given), in one trip through the block per three
/// qubits.
template <class R>
void mix_block(R* block, int bits, const XRotation* rot, std::complex<double> scale,
               const BlockPhase<R>* phase = nullptr);

/// The g qubits of a tile: rows r = 0..2^g-1 start `stride` amplitudes apart at `base`, `len`
/// amplitudes each (a multiple of 8), and qubit t pairs rows r and r | 2^t.
template <class R>
void high_tile(R* base, std::size_t stride, int g, std::size_t len, const XRotation& rot);

/// Im <lam| sum_q X_q |psi> over the `bits` qubits of a block (both states' blocks of 2^bits
/// amplitudes): the low qubits' part of the X mixer's gradient.
template <class R>
[[nodiscard]] double x_imag_block(const R* lam, const R* psi, int bits);
/// The same over the g qubits of a tile laid out as in high_tile.
template <class R>
[[nodiscard]] double x_imag_tile(const R* lam, const R* psi, std::size_t stride, int g,
                                 std::size_t len);

extern template double x_imag_block<float>(const float*, const float*, int);
extern template double x_imag_block<double>(const double*, const double*, int);
extern template double x_imag_tile<float>(const float*, const float*, std::size_t, int,
                                          std::size_t);
extern template double x_imag_tile<double>(const double*, const double*, std::size_t, int,
                                           std::size_t);
extern template void split_factors<float>(const double*, std::size_t, float*, float*);
extern template void split_factors<double>(const double*, std::size_t, double*, double*);
extern template bool block_phase_fits<float>(int);
extern template bool block_phase_fits<double>(int);
extern template void mix_block<float>(float*, int, const XRotation*, std::complex<double>,
                                      const BlockPhase<float>*);
extern template void mix_block<double>(double*, int, const XRotation*, std::complex<double>,
                                       const BlockPhase<double>*);
extern template void high_tile<float>(float*, std::size_t, int, std::size_t, const XRotation&);
extern template void high_tile<double>(double*, std::size_t, int, std::size_t, const XRotation&);

}  // namespace qprune::detail::qaoa
