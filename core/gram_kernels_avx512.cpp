// The GEMM kernels of core/gram_kernels.hpp compiled for AVX-512 (x86-64-v4: this file alone gets
// -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma, see the root CMakeLists.txt). Eigen is
// included under another namespace name, so that its inline functions compiled here (for AVX-512)
// are distinct symbols from the library's own (for the baseline) and the linker cannot pick these
// for code that runs on any CPU.
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__FMA__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h (the `__m512 __Y = __Y;` of _mm512_undefined_ps,
// inlined into Eigen's packing): a false positive in the compiler's header. A middle-end warning,
// so it is reported where the code is inlined: off for the whole of this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define Eigen qprune_eigen_avx512
#include <Eigen/Core>
#endif

#include "core/gram_kernels.hpp"

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__FMA__)
#define QPRUNE_GRAM_ISA avx512
#define QPRUNE_GRAM_ISA_ENUM GemmIsa::kAvx512
#define QPRUNE_GRAM_ISA_NAME "avx512"
#include "core/gram_kernels_body.inc"
#else
// A compiler or target without the flags: no AVX-512 kernels.
const qprune::detail::GramKernels* qprune::detail::avx512::kernels() { return nullptr; }
#endif
