// The Gram products that dominate problem building and calibration (G += A A^T with A of n rows,
// and the Isserlis statistics' four products of the same shape), computed over square tiles of
// the lower triangle: every tile is one ordinary matrix product on one thread, the tiles are
// spread over the threads, and the interrupt flag is checked before each tile, so SIGINT/SIGTERM
// takes effect within a fraction of a second even when the whole product takes a minute
// (n = 18944 at 7B size). Square tiles keep each product near the machine's GEMM rate: column
// blocks of 32 (the layout before issue 17) re-read the whole n x k operand once per block, 600
// times at 7B size, and ran at a tenth of it. Small products (under kGramBlockFlops) are one
// symmetric rank update, exactly as before.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/gram_kernels.hpp"
#include "core/parallel_for.hpp"
#include "qprune/interrupt.hpp"

namespace qprune::detail {

/// Work of one tile between two interrupt checks: about 0.05-0.2 s on one core.
inline constexpr double kGramBlockFlops = 2e9;

/// Side of the square tiles for products with inner dimension k: a tile's product (2 t^2 k
/// flops) near kGramBlockFlops, a multiple of 64, between 256 (smaller tiles lose GEMM speed to
/// packing) and 2048.
[[nodiscard]] inline Eigen::Index gram_tile_size(Eigen::Index k) {
  const double t =
      std::sqrt(kGramBlockFlops / (2.0 * static_cast<double>(std::max<Eigen::Index>(k, 1))));
  return std::clamp<Eigen::Index>(static_cast<Eigen::Index>(t) / 64 * 64, 256, 2048);
}

/// Calls tile(i0, rows, j0, cols) once for every tile of the lower triangle of an n x n matrix
/// cut into square tiles of side `tile` (i0 >= j0; diagonal tiles are passed whole), each on one
/// thread (so the Eigen products inside run serially, and threads never share a tile). Throws
/// qprune::Interrupted("stopped while <what>") when the interrupt flag is raised; the tiles
/// started by then finish, the others are skipped.
template <class Tile>
void for_each_lower_tile(Eigen::Index n, Eigen::Index tile, const char* what, Tile&& fn) {
  using Index = Eigen::Index;
  std::vector<std::pair<Index, Index>> tiles;  // (i0, j0)
  for (Index j0 = 0; j0 < n; j0 += tile)
    for (Index i0 = j0; i0 < n; i0 += tile) tiles.emplace_back(i0, j0);
  throw_if_interrupted(what);
  parallel_for(static_cast<std::int64_t>(tiles.size()), [&](std::int64_t t) {
    throw_if_interrupted(what);
    const auto [i0, j0] = tiles[static_cast<std::size_t>(t)];
    fn(i0, std::min(tile, n - i0), j0, std::min(tile, n - j0));
  });
  throw_if_interrupted(what);
}

/// Lower triangle of `g` (n x n) += a a^T (a: n x k), the strictly upper triangle untouched.
/// Throws qprune::Interrupted("stopped while <what>") when the interrupt flag is raised
/// between tiles (g is then partly updated; callers drop it).
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
  for_each_lower_tile(n, gram_tile_size(k), what, [&](Index i0, Index rows, Index j0, Index cols) {
    if (i0 == j0) {
      g.block(i0, i0, rows, rows)
          .template selfadjointView<Eigen::Lower>()
          .rankUpdate(a.middleRows(i0, rows));
    } else {
      g.block(i0, j0, rows, cols).noalias() +=
          a.middleRows(i0, rows) * a.middleRows(j0, cols).transpose();
    }
  });
}

/// Lower triangle of `g` (n x n) += x^T x (x: k x n, one unit per column), the strictly upper
/// triangle untouched: the Gram of the columns, tile by tile with `kernels` (by default the widest
/// instruction set of this CPU, core/gram_kernels.hpp). Interrupts as add_gram_lower.
inline void add_column_gram_lower(Eigen::MatrixXd& g, const Eigen::MatrixXd& x, const char* what,
                                  const GramKernels& kernels = gram_kernels()) {
  using Index = Eigen::Index;
  const Index n = x.cols();
  for_each_lower_tile(n, gram_tile_size(x.rows()), what,
                      [&](Index i0, Index rows, Index j0, Index cols) {
                        kernels.add_column_gram(x.data(), x.rows(), x.rows(),
                                                GramTile{i0, rows, j0, cols}, g.data(), g.rows());
                      });
}

/// Copies the lower triangle of a square matrix onto the upper one, tile by tile so that both
/// sides stay in cache.
template <class M>
void mirror_lower(M& m) {
  using Index = Eigen::Index;
  constexpr Index kTile = 64;
  const Index n = m.rows();
  const Index tiles = (n + kTile - 1) / kTile;
  parallel_for(tiles, [&](std::int64_t tj) {
    const Index j0 = static_cast<Index>(tj) * kTile;
    const Index j1 = std::min(n, j0 + kTile);
    // Tile column tj of the upper triangle: rows i < j, i in tiles 0..tj.
    for (Index i0 = 0; i0 <= j0; i0 += kTile) {
      const Index i1 = std::min(n, i0 + kTile);
      for (Index j = j0; j < j1; ++j)
        for (Index i = i0; i < std::min(i1, j); ++i) m(i, j) = m(j, i);
    }
  });
}

}  // namespace qprune::detail
