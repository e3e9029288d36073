// Chromatic Metropolis sweeps (SweepOrder::kChromatic): the variables of one colour of a proper
// colouring of the coupling graph share no coupling, so while one colour is tried no field the
// colour reads can change, and its flip decisions may be taken in parallel. A sweep tries the
// colour classes in turn: the decisions of a class in parallel (parallel_for over blocks), then
// its accepted flips applied in index order on one thread (neighbours of two flipped variables
// may coincide, so concurrent field updates would race). Every decision draws from a counter-based
// stream keyed by (seed, read, sweep, variable), and the applying pass is serial and ordered, so
// the samples are the same whatever the number of threads.
//
// It pays only where the decisions dominate (cold sweeps, few accepted flips) and the reads do not
// already fill the cores (num_reads < threads); see BENCHMARKS.md, "Issue 16: Boost.Graph uses".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "solver/anneal/anneal_kernel.hpp"
#include "solver/common/parallel_for.hpp"
#include "solver/common/rng.hpp"

namespace qprune::detail::anneal {

/// Variables per parallel work item: large enough that the loop overhead stays small against the
/// ~5 ns of one decision, small enough to balance a class of a few thousand over the threads.
inline constexpr int kChromaticBlock = 2048;

/// The stream key of read `read` of run `seed`; sweep s uses chromatic_sweep_key(read_key, s).
[[nodiscard]] inline std::uint64_t chromatic_read_key(std::uint64_t seed, std::int64_t read) {
  return mix64(seed ^ mix64(0xc4c0'0000'0000ULL + static_cast<std::uint64_t>(read)));
}
[[nodiscard]] inline std::uint64_t chromatic_sweep_key(std::uint64_t read_key, std::int64_t sweep) {
  return mix64(read_key + static_cast<std::uint64_t>(sweep));
}

/// The Metropolis test of `m` with the draw of variable i taken from the sweep's stream (SplitMix
/// over the variable index), only when a draw can decide.
template <class Field>
[[nodiscard]] bool chromatic_accept(const Metropolis<Field>& m, Field delta,
                                    std::uint64_t sweep_key, int i) {
  using Calc = typename Metropolis<Field>::Calc;
  if (delta <= Field(0)) return true;
  const auto d = static_cast<Calc>(delta);
  if (d >= m.threshold) return false;
  const auto u = static_cast<std::uint32_t>(mix64(sweep_key + static_cast<std::uint64_t>(i)) >> 32);
  return static_cast<Calc>(u) < std::exp(-m.beta * d) * static_cast<Calc>(0x1p32);
}

/// One chromatic sweep over `classes` (a proper colouring of `form`'s couplings); `accept` is
/// scratch of at least the largest class's size. Returns the number of accepted flips.
template <class Form>
std::int64_t chromatic_sweep(const Form& form, const std::vector<std::vector<int>>& classes,
                             std::uint8_t* x, typename Form::RealType* h,
                             const Metropolis<typename Form::RealType>& metropolis,
                             std::uint64_t sweep_key, double& energy,
                             std::vector<std::uint8_t>& accept) {
  using Real = typename Form::RealType;
  std::int64_t accepted = 0;
  for (const std::vector<int>& members : classes) {
    const auto size = static_cast<std::int64_t>(members.size());
    const std::int64_t blocks = (size + kChromaticBlock - 1) / kChromaticBlock;
    parallel_for(blocks, [&](std::int64_t b) {
      const std::int64_t end = std::min(size, (b + 1) * kChromaticBlock);
      for (std::int64_t t = b * kChromaticBlock; t < end; ++t) {
        const int i = members[static_cast<std::size_t>(t)];
        const Real delta = x[i] ? -h[i] : h[i];
        accept[static_cast<std::size_t>(t)] = chromatic_accept(metropolis, delta, sweep_key, i);
      }
    });
    // No variable of this class couples to another, so h[i] is still the field the decision saw.
    for (std::int64_t t = 0; t < size; ++t) {
      if (!accept[static_cast<std::size_t>(t)]) continue;
      const int i = members[static_cast<std::size_t>(t)];
      const Real delta = x[i] ? -h[i] : h[i];
      form.add_row(h, i, x[i] ? Real(-1) : Real(1));
      x[i] ^= 1;
      energy += static_cast<double>(delta);
      ++accepted;
    }
  }
  return accepted;
}

}  // namespace qprune::detail::anneal
