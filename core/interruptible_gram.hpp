// The Gram products that dominate problem building and calibration (G += A A^T with A of n rows),
// computed in column blocks of G with an interrupt check between blocks, so that SIGINT/SIGTERM
// takes effect within about a second even when one product takes minutes (n = 11008 at 7B size).
// Small products (under kGramBlockFlops) are one symmetric rank update, exactly as before.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "qprune/interrupt.hpp"

namespace qprune::detail {

/// Work per block between two interrupt checks: about 0.1-1 s on one core.
inline constexpr double kGramBlockFlops = 2e9;

/// Lower triangle of `g` (n x n) += a a^T (a: n x k), the strictly upper triangle untouched.
/// Throws qprune::Interrupted("stopped while <what>") when the interrupt flag is raised
/// between blocks (g is then partly updated; callers drop it).
template <class G, class A>
void add_gram_lower(G& g, const Eigen::MatrixBase<A>& a, const char* what) {
  using Index = Eigen::Index;
  const Index n = a.rows();
  const Index k = a.cols();
  throw_if_interrupted(what);
  const double flops = static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(k);
  if (flops <= kGramBlockFlops) {
    g.template selfadjointView<Eigen::Lower>().rankUpdate(a);
    return;
  }
  // Block width so that a block column (n x b times b x k) is about kGramBlockFlops.
  const auto width =
      static_cast<Index>(kGramBlockFlops / (2.0 * static_cast<double>(n) *
                                            static_cast<double>(std::max<Index>(k, 1))));
  const Index b_max = std::clamp<Index>(width, 32, 1024);
  for (Index j0 = 0; j0 < n; j0 += b_max) {
    throw_if_interrupted(what);
    const Index b = std::min(b_max, n - j0);
    g.block(j0, j0, b, b).template selfadjointView<Eigen::Lower>().rankUpdate(a.middleRows(j0, b));
    const Index below = n - j0 - b;
    if (below > 0)
      g.block(j0 + b, j0, below, b).noalias() +=
          a.middleRows(j0 + b, below) * a.middleRows(j0, b).transpose();
  }
  throw_if_interrupted(what);
}

}  // namespace qprune::detail
