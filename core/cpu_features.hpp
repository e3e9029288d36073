// CPU-feature dispatch, one mechanism for every kernel: either let GCC clone a function for the
// x86-64 levels and pick the clone when the library loads (QPRUNE_CPU_CLONES, for leaf loops), or
// compile a body for one target and branch once per solve on cpu_level() (for kernels whose
// callers are templates). Both ask the CPU once; a build with -march=native loses nothing.
#pragma once

namespace qprune::detail {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/// Clones of the function for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and the baseline.
#define QPRUNE_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define QPRUNE_CPU_CLONES
#endif

#if defined(__x86_64__) || defined(__i386__)
/// Compiles one function for AVX2 (call it only when cpu_level() >= CpuLevel::kAvx2).
#define QPRUNE_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define QPRUNE_TARGET_AVX2
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/// Compiles one function for a whole level, FMA included (the QAOA layer kernels): call the v4
/// body only when cpu_level() == CpuLevel::kAvx512, the v3 body when it is >= CpuLevel::kAvx2.
#define QPRUNE_TARGET_X86_64_V4 __attribute__((target("arch=x86-64-v4")))
#define QPRUNE_TARGET_X86_64_V3 __attribute__((target("arch=x86-64-v3")))
#endif

/// The widest vector level this CPU runs: the x86-64 levels QPRUNE_CPU_CLONES chooses between.
/// kAvx2 means x86-64-v3 (AVX2, FMA, BMI2: what QPRUNE_TARGET_AVX2 and QPRUNE_TARGET_X86_64_V3
/// need); kAvx512 means x86-64-v4.
enum class CpuLevel { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

[[nodiscard]] inline CpuLevel cpu_level() {
#if defined(__x86_64__) || defined(__i386__)
  static const CpuLevel level = [] {
    __builtin_cpu_init();  // this may run from a static initializer, before GCC's own
#if defined(__clang__)
    // clang (14) knows no level names: ask for the features of each level the kernels use.
    const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("bmi2");
    const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    const bool v3 = __builtin_cpu_supports("x86-64-v3");
    const bool v4 = __builtin_cpu_supports("x86-64-v4");
#endif
    return v4 ? CpuLevel::kAvx512 : v3 ? CpuLevel::kAvx2 : CpuLevel::kBaseline;
  }();
  return level;
#else
  return CpuLevel::kBaseline;
#endif
}

[[nodiscard]] inline bool cpu_has_avx2() { return cpu_level() >= CpuLevel::kAvx2; }

}  // namespace qprune::detail
