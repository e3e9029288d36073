// The GEMM kernels of core/gram_kernels.hpp compiled for AVX2+FMA (this file alone gets -mavx2
// -mfma, see the root CMakeLists.txt). Eigen is included under another namespace name, so that its
// inline functions compiled here (for AVX2) are distinct symbols from the library's own (for the
// baseline) and the linker cannot pick these for code that runs on any CPU.
#if defined(__AVX2__) && defined(__FMA__)
#define Eigen qprune_eigen_avx2
#include <Eigen/Core>
#endif

#include "core/gram_kernels.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#define QPRUNE_GRAM_ISA avx2
#define QPRUNE_GRAM_ISA_ENUM GemmIsa::kAvx2
#define QPRUNE_GRAM_ISA_NAME "avx2"
#include "core/gram_kernels_body.inc"
#else
// A compiler or target without the flags: no AVX2 kernels.
const qprune::detail::GramKernels* qprune::detail::avx2::kernels() { return nullptr; }
#endif
