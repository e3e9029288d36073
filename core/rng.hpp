// Random streams for solvers: PCG32 (fast, small state, good statistics) seeded from the run seed
// and a stream index (read, restart), never from the thread, so samples do not depend on the
// number of threads.
#pragma once

#include <cstdint>
#include <pcg_random.hpp>

namespace qprune::detail {

/// SplitMix64 finaliser: decorrelates consecutive integers into well-mixed 64-bit seeds.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// The generator for stream `stream` of run `seed`.
[[nodiscard]] inline pcg32 make_rng(std::uint64_t seed, std::uint64_t stream) {
  return pcg32(mix64(seed ^ mix64(stream)), mix64(stream + 0x632be59bd9b4e019ULL));
}

/// Uniform double in [0, 1) from the top 53 bits of two draws.
[[nodiscard]] inline double uniform01(pcg32& rng) {
  const std::uint64_t hi = rng(), lo = rng();
  return static_cast<double>(((hi << 32) | lo) >> 11) * 0x1.0p-53;
}

/// Uniform integer in [0, bound) without modulo bias (PCG's bounded draw).
[[nodiscard]] inline std::uint32_t uniform_below(pcg32& rng, std::uint32_t bound) {
  return rng(bound);
}

}  // namespace qprune::detail
