// Small pieces the benchmark programs share: the median of repeated timings, where the public
// benchmark instances are (not shipped in the repository: Gset alone is larger than it), and a
// Gset reader that does not go through qprune's own parser (so a benchmark of the parser or the
// solvers does not lean on the code it measures). Not part of the library.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune::bench {

/// Median of `v` (0 for an empty list): the figure every benchmark reports for repeated runs.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

/// The benchmark collection: $QPRUNE_BENCHMARKS, else the one beside the repository
/// (QPRUNE_SHARED_BENCHMARKS, set by bench/CMakeLists.txt). Empty when neither holds gset/.
inline std::filesystem::path find_benchmarks() {
  const char* env = std::getenv("QPRUNE_BENCHMARKS");
  for (const std::filesystem::path& p : {std::filesystem::path(env != nullptr ? env : ""),
                                         std::filesystem::path(QPRUNE_SHARED_BENCHMARKS)}) {
    if (std::filesystem::is_directory(p / "gset")) return p;
  }
  return {};
}

/// Gset: "n m", then m lines "i j w" (1-based). Max-Cut as a QUBO with energy = -cut.
inline QuboModel read_gset(const std::filesystem::path& path, Storage storage = Storage::kSparse) {
  std::ifstream in(path);
  int n = 0, m = 0;
  in >> n >> m;
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  std::vector<Coupling> q;
  for (int e = 0; e < m; ++e) {
    int i = 0, j = 0;
    double w = 0.0;
    if (!(in >> i >> j >> w)) break;
    c[i - 1] -= w;
    c[j - 1] -= w;
    q.push_back({i - 1, j - 1, 2.0 * w});
  }
  return QuboModel::from_couplings(n, c, q, 0.0, storage);
}

}  // namespace qprune::bench
