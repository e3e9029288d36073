// The baseline GEMM kernels (the body compiled with the library's own flags) and the run-time
// choice between them and the AVX2 / AVX-512 ones (core/gram_kernels.hpp).
#include "core/gram_kernels.hpp"

#include <Eigen/Core>
#include <cstdlib>

#include "core/cpu_features.hpp"
#include "qprune/error.hpp"

#define QPRUNE_GRAM_ISA baseline
#define QPRUNE_GRAM_ISA_ENUM GemmIsa::kBaseline
#define QPRUNE_GRAM_ISA_NAME "baseline"
#include "core/gram_kernels_body.inc"

namespace qprune::detail {

GemmIsa parse_gemm_isa(const std::string& name) {
  if (name == "baseline") return GemmIsa::kBaseline;
  if (name == "avx2") return GemmIsa::kAvx2;
  if (name == "avx512") return GemmIsa::kAvx512;
  throw InvalidArgument(std::string("QPRUNE_GEMM_ISA must be baseline, avx2 or avx512, found '") +
                        name + "'");
}

const GramKernels* gram_kernels_for(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kBaseline:
      return baseline::kernels();
    case GemmIsa::kAvx2:
      return cpu_level() >= CpuLevel::kAvx2 ? avx2::kernels() : nullptr;
    case GemmIsa::kAvx512:
      return cpu_level() >= CpuLevel::kAvx512 ? avx512::kernels() : nullptr;
  }
  return nullptr;
}

const GramKernels& gram_kernels() {
  static const GramKernels* const chosen = [] {
    if (const char* env = std::getenv("QPRUNE_GEMM_ISA"); env != nullptr && *env != 0) {
      const GramKernels* k = gram_kernels_for(parse_gemm_isa(env));
      if (k == nullptr) {
        throw InvalidArgument(std::string("QPRUNE_GEMM_ISA=") + env +
                              ": this CPU or this build has no such kernels");
      }
      return k;
    }
    for (GemmIsa isa : {GemmIsa::kAvx512, GemmIsa::kAvx2})
      if (const GramKernels* k = gram_kernels_for(isa)) return k;
    return baseline::kernels();
  }();
  return *chosen;
}

}  // namespace qprune::detail
