// The per-tile matrix products that dominate building a layer problem (the error matrix W^T W and
// the data-free Isserlis statistics: 1.3 TFLOP each at 7B size), compiled once per instruction
// set and chosen at run time. Eigen's GEMM is only as fast as the flags its translation unit was
// compiled with, and the library is built for the x86-64 baseline (SSE2), which leaves AVX2+FMA
// and AVX-512 machines at a quarter or less of their GEMM rate. So the kernel body
// (gram_kernels_body.inc) is compiled three times: with the library's flags
// (gram_kernels.cpp), with -mavx2 -mfma (gram_kernels_avx2.cpp) and with the x86-64-v4 AVX-512
// set (gram_kernels_avx512.cpp), each in its own namespace and against its own renamed copy of
// Eigen so that no inline Eigen function compiled for AVX2 can be picked by the linker for the
// baseline code. cpu_level() (core/cpu_features.hpp) chooses the widest one this CPU runs; the
// environment variable QPRUNE_GEMM_ISA=baseline|avx2|avx512 forces one (tests and benchmarks
// compare the paths with it).
//
// The interface has no Eigen types, so that the ISA units never see the library's own Eigen.
// All matrices are column-major; the tiling, the threads and the interrupt checks stay in
// core/interruptible_gram.hpp: a kernel computes one tile on the calling thread.
#pragma once

#include <cstddef>
#include <string>

namespace qprune::detail {

/// The instruction sets the kernels are compiled for.
enum class GemmIsa { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

/// One lower-triangle tile: rows [i0, i0 + rows) and columns [j0, j0 + cols) of an n x n result,
/// i0 >= j0. A diagonal tile (i0 == j0) is written on and below its diagonal only.
struct GramTile {
  std::ptrdiff_t i0 = 0;
  std::ptrdiff_t rows = 0;
  std::ptrdiff_t j0 = 0;
  std::ptrdiff_t cols = 0;
};

/// Kernels of one instruction set. Operands hold one unit per column: x is k x n with column
/// stride ldx >= k (unit i is x + i * ldx); results are written at out + i + j * ldo.
struct GramKernels {
  GemmIsa isa = GemmIsa::kBaseline;
  const char* name = "baseline";
  /// out(i, j) += x_i . x_j (double) over the tile: a tile of the Gram matrix X^T X.
  void (*add_column_gram)(const double* x, std::ptrdiff_t ldx, std::ptrdiff_t k,
                          const GramTile& tile, double* out, std::ptrdiff_t ldo) = nullptr;
  /// The off-diagonal Isserlis statistic over the tile (isserlis_statistics, maths there):
  /// out(i, j) = scale (d_i d_j + (g_i.g_j)(u_i.u_j) + (g_i.u_j)(u_i.g_j)), the four dot products
  /// in float (g, u: k x n, stride ld), d and the combination in double. Overwrites out.
  void (*isserlis_float)(const float* g, const float* u, std::ptrdiff_t ld, std::ptrdiff_t k,
                         const double* d, double scale, const GramTile& tile, double* out,
                         std::ptrdiff_t ldo) = nullptr;
  /// One thread's product out (m x m) = a^T b (a, b: k x m, stride k; double), for measuring
  /// the GEMM rate these kernels run at (bench/layer_build_bench.cpp).
  void (*gemm_probe)(const double* a, const double* b, std::ptrdiff_t k, std::ptrdiff_t m,
                     double* out) = nullptr;
  /// The same in float.
  void (*gemm_probe_float)(const float* a, const float* b, std::ptrdiff_t k, std::ptrdiff_t m,
                           float* out) = nullptr;
};

/// The kernels of `isa`, or nullptr when this build or this CPU does not have them.
[[nodiscard]] const GramKernels* gram_kernels_for(GemmIsa isa);

/// The kernels every caller uses: QPRUNE_GEMM_ISA when set (InvalidArgument when it names an
/// instruction set this build or CPU lacks, or none), else the widest this CPU runs. Chosen once.
[[nodiscard]] const GramKernels& gram_kernels();

/// Parses a QPRUNE_GEMM_ISA value: "baseline", "avx2" or "avx512"; InvalidArgument otherwise.
[[nodiscard]] GemmIsa parse_gemm_isa(const std::string& name);

// The three bodies (gram_kernels.cpp, gram_kernels_avx2.cpp, gram_kernels_avx512.cpp); the ISA
// ones return nullptr when their unit was compiled without the instruction set (non-x86 builds).
namespace baseline {
[[nodiscard]] const GramKernels* kernels();
}
namespace avx2 {
[[nodiscard]] const GramKernels* kernels();
}
namespace avx512 {
[[nodiscard]] const GramKernels* kernels();
}

}  // namespace qprune::detail
