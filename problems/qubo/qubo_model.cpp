// QuboModel: construction, storage conversion, energies, Ising form, constraint groups, penalties.
#include "qprune/qubo_model.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <numeric>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/huge_pages.hpp"
#include "core/memory_check.hpp"
#include "core/parallel_for.hpp"
#include "qprune/error.hpp"

namespace qprune {
namespace {

using Index = std::size_t;

[[noreturn]] void throw_not_finite(const char* what) {
  throw InvalidArgument(std::string("QuboModel: ") + what + " is not finite");
}

inline void require_finite(double v, const char* what) {
  if (!std::isfinite(v)) [[unlikely]]
    throw_not_finite(what);
}

Storage resolve_storage(Storage requested, int n, std::int64_t num_couplings) {
  if (requested != Storage::kAuto) return requested;
  if (n < 2) return Storage::kSparse;
  const double pairs = 0.5 * static_cast<double>(n) * static_cast<double>(n - 1);
  return static_cast<double>(num_couplings) / pairs >= QuboModel::kDenseThreshold
             ? Storage::kDense
             : Storage::kSparse;
}

// Strict (i, j) order of normalised pairs.
bool pair_less(const Coupling& a, const Coupling& b) { return a.i != b.i ? a.i < b.i : a.j < b.j; }

// Sorts normalised pairs by (i, j), stably, so that duplicates are summed in their input order: a
// counting sort by row then a sort of each row by column when the rows are not many more than the
// pairs, a merge sort otherwise.
void sort_pairs(std::vector<Coupling>& pairs, int num_variables) {
  const auto n = static_cast<std::size_t>(num_variables);
  if (n > 2 * pairs.size() + 1024) {
    std::stable_sort(pairs.begin(), pairs.end(), pair_less);
    return;
  }
  std::vector<std::size_t> start(n + 1, 0);
  for (const Coupling& c : pairs) ++start[static_cast<std::size_t>(c.i) + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<Coupling> by_row(pairs.size());
  std::vector<std::size_t> next(start.begin(), start.end() - 1);
  for (const Coupling& c : pairs) by_row[next[static_cast<std::size_t>(c.i)]++] = c;
  const auto column_less = [](const Coupling& a, const Coupling& b) { return a.j < b.j; };
  for (std::size_t i = 0; i < n; ++i) {
    const auto first = by_row.begin() + static_cast<std::ptrdiff_t>(start[i]);
    const auto last = by_row.begin() + static_cast<std::ptrdiff_t>(start[i + 1]);
    if (!std::is_sorted(first, last, column_less)) std::stable_sort(first, last, column_less);
  }
  pairs = std::move(by_row);
}

// q(i, j) = q(j, i) = value for sorted pairs i < j: written down the columns (q(j, i), contiguous
// in Eigen's column-major order for the rows of one i), then mirrored block by block, where writing
// q(i, j) directly would stride across the whole matrix for every entry.
void fill_symmetric(Eigen::MatrixXd& q, const std::vector<Coupling>& pairs) {
  for (const Coupling& c : pairs) q(c.j, c.i) = c.value;
  const Eigen::Index n = q.rows();
  constexpr Eigen::Index kBlock = 64;
  for (Eigen::Index bj = 0; bj < n; bj += kBlock)
    for (Eigen::Index bi = 0; bi <= bj; bi += kBlock)
      for (Eigen::Index j = bj; j < std::min(n, bj + kBlock); ++j)
        for (Eigen::Index i = bi; i < std::min(j, bi + kBlock); ++i) q(i, j) = q(j, i);
}

}  // namespace

double IsingModel::energy(const std::vector<std::int8_t>& s) const {
  if (s.size() != static_cast<Index>(h.size())) {
    throw InvalidArgument("IsingModel::energy: assignment has " + std::to_string(s.size()) +
                          " spins, model has " + std::to_string(h.size()));
  }
  double e = offset;
  for (Index i = 0; i < s.size(); ++i) e += h[static_cast<Eigen::Index>(i)] * s[i];
  for (const Coupling& c : j)
    e += c.value * s[static_cast<Index>(c.i)] * s[static_cast<Index>(c.j)];
  return e;
}

QuboModel QuboModel::from_couplings(int num_variables, Eigen::VectorXd linear,
                                    const std::vector<Coupling>& couplings, double offset,
                                    Storage storage) {
  return from_couplings(num_variables, std::move(linear), std::vector<Coupling>(couplings), offset,
                        storage);
}

QuboModel QuboModel::from_couplings(int num_variables, Eigen::VectorXd linear,
                                    std::vector<Coupling>&& couplings, double offset,
                                    Storage storage) {
  if (num_variables < 0) throw InvalidArgument("QuboModel: negative number of variables");
  if (linear.size() == 0) linear = Eigen::VectorXd::Zero(num_variables);
  if (linear.size() != num_variables) {
    throw InvalidArgument("QuboModel: linear has " + std::to_string(linear.size()) +
                          " entries, expected " + std::to_string(num_variables));
  }
  require_finite(offset, "offset");
  for (Eigen::Index i = 0; i < linear.size(); ++i)
    require_finite(linear[i], "a linear coefficient");

  // Normalise to (i < j) pairs, fold diagonals into the linear part, sum duplicates: in place, and
  // without a sort when the pairs come in order (as files written row by row list them).
  std::vector<Coupling> merged = std::move(couplings);
  std::size_t kept = 0;
  bool sorted = true;
  for (std::size_t k = 0; k < merged.size(); ++k) {
    const Coupling c = merged[k];
    if (c.i < 0 || c.j < 0 || c.i >= num_variables || c.j >= num_variables) {
      throw InvalidArgument("QuboModel: coupling (" + std::to_string(c.i) + ", " +
                            std::to_string(c.j) + ") out of range [0, " +
                            std::to_string(num_variables) + ")");
    }
    require_finite(c.value, "a coupling");
    if (c.i == c.j) {
      linear[c.i] += c.value;
      continue;
    }
    const Coupling pair{std::min(c.i, c.j), std::max(c.i, c.j), c.value};
    if (sorted && kept > 0) sorted = pair_less(merged[kept - 1], pair);
    merged[kept++] = pair;
  }
  merged.resize(kept);
  if (!sorted) sort_pairs(merged, num_variables);
  // Duplicates are adjacent now, in their input order: sum them, and drop zeros.
  std::size_t out = 0;
  for (std::size_t k = 0; k < merged.size();) {
    Coupling c = merged[k++];
    while (k < merged.size() && merged[k].i == c.i && merged[k].j == c.j)
      c.value += merged[k++].value;
    if (c.value != 0.0) merged[out++] = c;
  }
  merged.resize(out);

  QuboModel m;
  m.linear_ = std::move(linear);
  m.offset_ = offset;
  m.num_couplings_ = static_cast<std::int64_t>(merged.size());
  m.storage_ = resolve_storage(storage, num_variables, m.num_couplings_);
  if (m.storage_ == Storage::kDense) {
    m.dense_ = detail::allocation_context(
        "the dense " + std::to_string(num_variables) + " x " + std::to_string(num_variables) +
            " coupling matrix of a QUBO model",
        detail::square_bytes(num_variables, sizeof(double)), [&] {
          Eigen::MatrixXd q(num_variables, num_variables);
          detail::advise_huge_pages(q.data(), static_cast<std::size_t>(q.size()) * sizeof(double));
          q.setZero();
          return q;
        });
    fill_symmetric(m.dense_, merged);
  } else {
    const Index n = static_cast<Index>(num_variables);
    std::vector<std::int64_t> degree(n + 1, 0);
    for (const Coupling& c : merged) {
      ++degree[static_cast<Index>(c.i) + 1];
      ++degree[static_cast<Index>(c.j) + 1];
    }
    std::partial_sum(degree.begin(), degree.end(), degree.begin());
    m.row_offsets_ = degree;
    m.columns_.resize(2 * merged.size());
    m.values_.resize(2 * merged.size());
    std::vector<std::int64_t> next(degree.begin(), degree.end() - 1);
    // Pairs are sorted by (i, j), so filling row i from pairs (i, j) and row j from pairs (i, j)
    // in this order leaves every row's columns sorted: all entries j' < j of row j come from
    // pairs (j', j) with j' < j, visited before any pair (j, .).
    for (const Coupling& c : merged) {
      const auto pi = static_cast<Index>(next[static_cast<Index>(c.i)]++);
      m.columns_[pi] = c.j;
      m.values_[pi] = c.value;
      const auto pj = static_cast<Index>(next[static_cast<Index>(c.j)]++);
      m.columns_[pj] = c.i;
      m.values_[pj] = c.value;
    }
  }
  return m;
}

QuboModel QuboModel::from_dense(Eigen::VectorXd linear, Eigen::MatrixXd couplings, double offset,
                                Storage storage) {
  const Eigen::Index n = couplings.rows();
  if (couplings.cols() != n) throw InvalidArgument("QuboModel::from_dense: couplings not square");
  if (linear.size() != n) {
    throw InvalidArgument("QuboModel::from_dense: linear has " + std::to_string(linear.size()) +
                          " entries, couplings are " + std::to_string(n) + " x " +
                          std::to_string(n));
  }
  if (!couplings.allFinite())
    throw InvalidArgument("QuboModel::from_dense: a coupling is not finite");
  couplings.diagonal().setZero();
  // Products such as G o (W^T W) are symmetric only up to rounding: accept a relative asymmetry of
  // 1e-12 of the largest entry and store the exact average.
  // Done in place, pair by pair: a pruning layer's matrix can be several GiB, so no temporary. The
  // pairs go by 64 x 64 tiles, so that the transposed side is read from cache and not one page per
  // entry, in parallel over tile columns (at n = 18944 the pair loop in model order took longer
  // than the products that built the matrix). The reported pair is the first in column order.
  const double tolerance = 1e-12 * couplings.cwiseAbs().maxCoeff();
  constexpr Eigen::Index kTile = 64;
  const Eigen::Index tiles = (n + kTile - 1) / kTile;
  std::vector<std::int64_t> tile_nnz(static_cast<std::size_t>(tiles), 0);
  std::vector<std::pair<Eigen::Index, Eigen::Index>> tile_bad(static_cast<std::size_t>(tiles),
                                                              {n, n});  // (j, i); n: none
  detail::parallel_for(tiles, [&](std::int64_t tj) {
    const Eigen::Index j0 = static_cast<Eigen::Index>(tj) * kTile;
    const Eigen::Index j1 = std::min(n, j0 + kTile);
    std::int64_t count = 0;
    auto& bad = tile_bad[static_cast<std::size_t>(tj)];
    for (Eigen::Index i0 = 0; i0 <= j0; i0 += kTile) {
      const Eigen::Index i1 = std::min(n, i0 + kTile);
      for (Eigen::Index j = j0; j < j1; ++j) {
        for (Eigen::Index i = i0; i < std::min(i1, j); ++i) {
          const double a = couplings(i, j), b = couplings(j, i);
          if (std::abs(a - b) > tolerance) bad = std::min(bad, std::make_pair(j, i));
          const double mean = 0.5 * (a + b);
          couplings(i, j) = couplings(j, i) = mean;
          count += mean != 0.0;
        }
      }
    }
    tile_nnz[static_cast<std::size_t>(tj)] = count;
  });
  const auto bad = *std::min_element(tile_bad.begin(), tile_bad.end());
  if (bad.first < n) {
    throw InvalidArgument("QuboModel::from_dense: couplings are not symmetric at (" +
                          std::to_string(bad.second) + ", " + std::to_string(bad.first) + ")");
  }
  const std::int64_t nnz = std::accumulate(tile_nnz.begin(), tile_nnz.end(), std::int64_t{0});
  const Storage resolved = resolve_storage(storage, static_cast<int>(n), nnz);
  if (resolved == Storage::kSparse) {
    std::vector<Coupling> list;
    list.reserve(static_cast<Index>(nnz));
    for (Eigen::Index i = 0; i < n; ++i)
      for (Eigen::Index j = i + 1; j < n; ++j)
        if (couplings(i, j) != 0.0)
          list.push_back({static_cast<int>(i), static_cast<int>(j), couplings(i, j)});
    return from_couplings(static_cast<int>(n), std::move(linear), list, offset, Storage::kSparse);
  }
  for (Eigen::Index i = 0; i < n; ++i) require_finite(linear[i], "a linear coefficient");
  require_finite(offset, "offset");
  QuboModel m;
  m.linear_ = std::move(linear);
  m.offset_ = offset;
  m.num_couplings_ = nnz;
  m.storage_ = Storage::kDense;
  m.dense_ = std::move(couplings);
  return m;
}

QuboModel QuboModel::from_dense_form(Eigen::VectorXd linear,
                                     const Eigen::Ref<const RowMajorMatrix>& q, double offset,
                                     Storage storage) {
  const Eigen::Index n = q.rows();
  if (q.cols() != n)
    throw InvalidArgument("QuboModel::from_dense_form: Q is " + std::to_string(n) + " x " +
                          std::to_string(q.cols()) + ", not square");
  if (linear.size() != n)
    throw InvalidArgument("QuboModel::from_dense_form: linear has " +
                          std::to_string(linear.size()) + " entries, Q is " + std::to_string(n) +
                          " x " + std::to_string(n));
  // One pass: symmetric sum, finiteness and the count of couplings together, by pairs of 64 x 64
  // tiles (ti <= tj): the pair's sum is computed once and written to both triangles, so Q is read
  // once and the model's matrix written once, in parallel over the pairs. The caller's array is
  // only read; the model's matrix is the one allocation. A NaN/inf entry, or a sum that overflows,
  // makes v - v NaN, which the branch-free accumulator keeps (the loop stays vectorised).
  Eigen::MatrixXd sym(n, n);
  detail::advise_huge_pages(sym.data(), static_cast<std::size_t>(sym.size()) * sizeof(double));
  constexpr Eigen::Index kTile = 64;
  const Eigen::Index tiles = (n + kTile - 1) / kTile;
  std::vector<std::pair<Eigen::Index, Eigen::Index>> pairs;
  pairs.reserve(static_cast<std::size_t>(tiles * (tiles + 1) / 2));
  for (Eigen::Index tj = 0; tj < tiles; ++tj)
    for (Eigen::Index ti = 0; ti <= tj; ++ti) pairs.emplace_back(ti, tj);
  std::vector<std::int64_t> pair_nnz(pairs.size(), 0);
  std::vector<double> pair_check(pairs.size(), 0.0);
  const double* qd = q.data();
  const Eigen::Index ld = q.outerStride();  // row-major: q(i, j) = qd[i * ld + j]
  double* sd = sym.data();                  // column-major: sym(i, j) = sd[j * n + i]
  detail::parallel_for(static_cast<std::int64_t>(pairs.size()), [&](std::int64_t p) {
    const auto [ti, tj] = pairs[static_cast<std::size_t>(p)];
    const Eigen::Index i0 = ti * kTile, i1 = std::min(n, i0 + kTile);
    const Eigen::Index j0 = tj * kTile, j1 = std::min(n, j0 + kTile);
    std::int64_t count = 0;
    double check = 0.0;
    for (Eigen::Index j = j0; j < j1; ++j) {
      const Eigen::Index end = ti == tj ? j : i1;  // a diagonal tile: its upper triangle, i < j
      for (Eigen::Index i = i0; i < end; ++i) {
        const double v = qd[i * ld + j] + qd[j * ld + i];
        check += v - v;
        sd[j * n + i] = v;
        sd[i * n + j] = v;
        count += v != 0.0 ? 1 : 0;
      }
      if (ti == tj) sd[j * n + j] = 0.0;
    }
    pair_nnz[static_cast<std::size_t>(p)] = count;
    pair_check[static_cast<std::size_t>(p)] = check;
  });
  if (std::any_of(pair_check.begin(), pair_check.end(), [](double c) { return c != 0.0; }))
    throw InvalidArgument("QuboModel::from_dense_form: Q has an entry that is not finite");
  for (Eigen::Index i = 0; i < n; ++i)
    if (!std::isfinite(q(i, i)))
      throw InvalidArgument("QuboModel::from_dense_form: Q has an entry that is not finite");
  linear += q.diagonal();
  for (Eigen::Index i = 0; i < n; ++i) require_finite(linear[i], "a linear coefficient");
  require_finite(offset, "offset");
  const std::int64_t nnz = std::accumulate(pair_nnz.begin(), pair_nnz.end(), std::int64_t{0});
  if (resolve_storage(storage, static_cast<int>(n), nnz) == Storage::kSparse)
    return from_dense(std::move(linear), std::move(sym), offset, Storage::kSparse);
  QuboModel m;
  m.linear_ = std::move(linear);
  m.offset_ = offset;
  m.num_couplings_ = nnz;
  m.storage_ = Storage::kDense;
  m.dense_ = std::move(sym);
  return m;
}

double QuboModel::density() const {
  const int n = num_variables();
  if (n < 2) return 0.0;
  return static_cast<double>(num_couplings_) / (0.5 * static_cast<double>(n) * (n - 1));
}

double QuboModel::coupling(int i, int j) const {
  const int n = num_variables();
  if (i < 0 || j < 0 || i >= n || j >= n) {
    throw InvalidArgument("QuboModel::coupling: index out of range");
  }
  if (i == j) return 0.0;
  if (storage_ == Storage::kDense) return dense_(i, j);
  const auto begin = columns_.begin() + row_offsets_[static_cast<Index>(i)];
  const auto end = columns_.begin() + row_offsets_[static_cast<Index>(i) + 1];
  const auto it = std::lower_bound(begin, end, j);
  return (it != end && *it == j) ? values_[static_cast<Index>(it - columns_.begin())] : 0.0;
}

const Eigen::MatrixXd& QuboModel::dense_couplings() const {
  if (storage_ != Storage::kDense) throw InvalidArgument("QuboModel: couplings are stored sparse");
  return dense_;
}
const std::vector<std::int64_t>& QuboModel::row_offsets() const {
  if (storage_ != Storage::kSparse) throw InvalidArgument("QuboModel: couplings are stored dense");
  return row_offsets_;
}
const std::vector<int>& QuboModel::columns() const {
  if (storage_ != Storage::kSparse) throw InvalidArgument("QuboModel: couplings are stored dense");
  return columns_;
}
const std::vector<double>& QuboModel::values() const {
  if (storage_ != Storage::kSparse) throw InvalidArgument("QuboModel: couplings are stored dense");
  return values_;
}

std::vector<Coupling> QuboModel::coupling_list() const {
  std::vector<Coupling> list;
  list.reserve(static_cast<Index>(num_couplings_));
  for_each_coupling([&](int i, int j, double q) { list.push_back({i, j, q}); });
  return list;
}

QuboModel QuboModel::scaled(double factor) const {
  if (!std::isfinite(factor) || factor <= 0.0)
    throw InvalidArgument("scaled: the factor must be finite and > 0, got " +
                          std::to_string(factor));
  std::vector<Coupling> q = coupling_list();
  for (Coupling& c : q) c.value *= factor;
  QuboModel m = from_couplings(num_variables(), factor * linear_, q, factor * offset_, storage_);
  m.labels_ = labels_;
  m.constraints_ = constraints_;
  m.metadata = metadata;
  return m;
}

QuboModel QuboModel::restricted(const std::vector<int>& free, const Assignment& reference) const {
  check_assignment(reference);
  const int n = num_variables();
  std::vector<int> position(static_cast<size_t>(n), -1);  // in the subproblem, or -1: fixed
  for (size_t p = 0; p < free.size(); ++p) {
    const int v = free[p];
    if (v < 0 || v >= n || position[static_cast<size_t>(v)] >= 0)
      throw InvalidArgument("restricted: variable " + std::to_string(v) +
                            " is out of range or given twice");
    position[static_cast<size_t>(v)] = static_cast<int>(p);
  }
  const auto on = [&](int v) { return reference[static_cast<size_t>(v)] != 0; };
  // E = offset + sum c_i x_i + sum_{i<j} q_ij x_i x_j, split by free (F) and fixed (X) indices:
  // the X-X part and c_X go to the offset, the F-X couplings to the free variables' linear terms.
  const int m = static_cast<int>(free.size());
  Eigen::VectorXd c(m);
  double offset = offset_;
  for (int v = 0; v < n; ++v) {
    const int p = position[static_cast<size_t>(v)];
    if (p >= 0) {
      c[p] = linear_[v];
    } else if (on(v)) {
      offset += linear_[v];
    }
  }
  std::vector<Coupling> q;
  for_each_coupling([&](int i, int j, double value) {
    const int pi = position[static_cast<size_t>(i)], pj = position[static_cast<size_t>(j)];
    if (pi >= 0 && pj >= 0) {
      q.push_back({std::min(pi, pj), std::max(pi, pj), value});
    } else if (pi >= 0) {
      if (on(j)) c[pi] += value;
    } else if (pj >= 0) {
      if (on(i)) c[pj] += value;
    } else if (on(i) && on(j)) {
      offset += value;
    }
  });
  QuboModel sub = from_couplings(m, std::move(c), q, offset, storage_);
  if (!labels_.empty()) {
    std::vector<std::string> labels;
    labels.reserve(free.size());
    for (const int v : free) labels.push_back(labels_[static_cast<size_t>(v)]);
    sub.set_labels(std::move(labels));
  }
  for (const CardinalityConstraint& g : constraints_) {
    CardinalityConstraint kept{g.name, {}, g.k};
    for (const int v : g.variables) {
      const int p = position[static_cast<size_t>(v)];
      if (p >= 0)
        kept.variables.push_back(p);
      else if (on(v))
        --kept.k;
    }
    if (kept.variables.empty()) continue;
    if (kept.k < 0 || kept.k > static_cast<int>(kept.variables.size()))
      throw InvalidArgument("restricted: the reference fixes group '" + g.name + "' so that " +
                            std::to_string(kept.k) + " of its " +
                            std::to_string(kept.variables.size()) + " free variables must be 1");
    sub.add_constraint(std::move(kept));
  }
  sub.metadata = metadata;
  return sub;
}

QuboModel QuboModel::with_storage(Storage storage) const {
  const Storage target = resolve_storage(storage, num_variables(), num_couplings_);
  if (target == storage_) return *this;
  QuboModel m = from_couplings(num_variables(), linear_, coupling_list(), offset_, target);
  m.labels_ = labels_;
  m.constraints_ = constraints_;
  m.metadata = metadata;
  return m;
}

void QuboModel::check_assignment(const Assignment& x) const {
  if (x.size() != static_cast<Index>(num_variables())) {
    throw InvalidArgument("assignment has " + std::to_string(x.size()) + " values, model has " +
                          std::to_string(num_variables()) + " variables");
  }
  for (Index i = 0; i < x.size(); ++i) {
    if (x[i] > 1) {
      throw InvalidArgument("assignment value " + std::to_string(x[i]) + " at index " +
                            std::to_string(i) + " is not 0 or 1");
    }
  }
}

double QuboModel::energy(const Assignment& x) const {
  check_assignment(x);
  // The reference energy: straightforward, summed in double, each pair once.
  double e = offset_;
  const int n = num_variables();
  for (int i = 0; i < n; ++i) {
    if (!x[static_cast<Index>(i)]) continue;
    e += linear_[i];
    for_each_in_row(i, [&](int j, double q) {
      if (j > i && x[static_cast<Index>(j)]) e += q;
    });
  }
  return e;
}

double QuboModel::local_field(const Assignment& x, int i) const {
  check_assignment(x);
  if (i < 0 || i >= num_variables()) throw InvalidArgument("local_field: index out of range");
  double f = linear_[i];
  for_each_in_row(i, [&](int j, double q) {
    if (x[static_cast<Index>(j)]) f += q;
  });
  return f;
}

double QuboModel::flip_delta(const Assignment& x, int i) const {
  const double f = local_field(x, i);
  return x[static_cast<Index>(i)] ? -f : f;
}

double QuboModel::max_flip_change() const {
  double b = 0.0;
  for (int i = 0; i < num_variables(); ++i) {
    double row = std::abs(linear_[i]);
    for_each_in_row(i, [&](int, double q) { row += std::abs(q); });
    b = std::max(b, row);
  }
  return b;
}

EnergyBounds QuboModel::energy_bounds() const {
  EnergyBounds bounds{offset_, offset_};
  for (int i = 0; i < num_variables(); ++i) {
    bounds.lower += std::min(0.0, linear_[i]);
    bounds.upper += std::max(0.0, linear_[i]);
  }
  for_each_coupling([&](int, int, double q) {
    bounds.lower += std::min(0.0, q);
    bounds.upper += std::max(0.0, q);
  });
  return bounds;
}

IsingModel QuboModel::to_ising() const {
  // x = (1 + s)/2:  c x -> c/2 + (c/2) s;  q x_i x_j -> q/4 (1 + s_i + s_j + s_i s_j).
  IsingModel ising;
  ising.h = 0.5 * linear_;
  ising.offset = offset_ + 0.5 * linear_.sum();
  ising.j.reserve(static_cast<Index>(num_couplings_));
  for_each_coupling([&](int i, int j, double q) {
    ising.h[i] += 0.25 * q;
    ising.h[j] += 0.25 * q;
    ising.offset += 0.25 * q;
    ising.j.push_back({i, j, 0.25 * q});
  });
  return ising;
}

QuboModel QuboModel::from_ising(const IsingModel& ising, Storage storage) {
  // s = 2x - 1:  h s -> 2h x - h;  J s_i s_j -> 4J x_i x_j - 2J x_i - 2J x_j + J.
  const int n = static_cast<int>(ising.h.size());
  Eigen::VectorXd c = 2.0 * ising.h;
  double offset = ising.offset - ising.h.sum();
  std::vector<Coupling> q;
  q.reserve(ising.j.size());
  for (const Coupling& p : ising.j) {
    if (p.i == p.j) {  // s_i^2 = 1: a constant
      offset += p.value;
      continue;
    }
    if (p.i < 0 || p.j < 0 || p.i >= n || p.j >= n) {
      throw InvalidArgument("QuboModel::from_ising: coupling index out of range");
    }
    c[p.i] -= 2.0 * p.value;
    c[p.j] -= 2.0 * p.value;
    offset += p.value;
    q.push_back({p.i, p.j, 4.0 * p.value});
  }
  return from_couplings(n, std::move(c), q, offset, storage);
}

std::string QuboModel::label(int i) const {
  if (i < 0 || i >= num_variables()) throw InvalidArgument("label: index out of range");
  return labels_.empty() ? std::to_string(i) : labels_[static_cast<Index>(i)];
}

void QuboModel::set_labels(std::vector<std::string> labels) {
  if (!labels.empty() && labels.size() != static_cast<Index>(num_variables())) {
    throw InvalidArgument("set_labels: " + std::to_string(labels.size()) + " labels for " +
                          std::to_string(num_variables()) + " variables");
  }
  std::unordered_set<std::string> seen;
  for (const std::string& l : labels) {
    if (!seen.insert(l).second) throw InvalidArgument("set_labels: duplicate label '" + l + "'");
  }
  labels_ = std::move(labels);
}

void QuboModel::add_constraint(CardinalityConstraint constraint) {
  const int n = num_variables();
  std::vector<char> used(static_cast<Index>(n), 0);
  for (const CardinalityConstraint& g : constraints_)
    for (int v : g.variables) used[static_cast<Index>(v)] = 1;
  std::unordered_set<int> own;
  for (int v : constraint.variables) {
    if (v < 0 || v >= n) {
      throw InvalidArgument("constraint '" + constraint.name + "': variable " + std::to_string(v) +
                            " out of range [0, " + std::to_string(n) + ")");
    }
    if (!own.insert(v).second) {
      throw InvalidArgument("constraint '" + constraint.name + "': variable " + std::to_string(v) +
                            " listed twice");
    }
    if (used[static_cast<Index>(v)]) {
      throw InvalidArgument("constraint '" + constraint.name + "': variable " + std::to_string(v) +
                            " is already in another group (groups must be disjoint)");
    }
  }
  if (constraint.k < 0 || constraint.k > static_cast<int>(constraint.variables.size())) {
    throw InvalidArgument("constraint '" + constraint.name +
                          "': k = " + std::to_string(constraint.k) + " is not in [0, " +
                          std::to_string(constraint.variables.size()) + "]");
  }
  constraints_.push_back(std::move(constraint));
}

int QuboModel::constraint_violation(const Assignment& x) const {
  check_assignment(x);
  int violation = 0;
  for (const CardinalityConstraint& g : constraints_) {
    int ones = 0;
    for (int v : g.variables) ones += x[static_cast<Index>(v)];
    violation += std::abs(ones - g.k);
  }
  return violation;
}

bool QuboModel::is_feasible(const Assignment& x) const { return constraint_violation(x) == 0; }

namespace {

/// The shortest text that reads back to v (0.1, not 0.10000000000000001).
std::string shortest_text(double v) {
  char text[64];
  const auto written = std::to_chars(text, text + sizeof(text), v);
  return {text, written.ptr};
}

}  // namespace

QuboModel::PenaltyTerms QuboModel::penalty_terms() const {
  // Per variable, the most one flip can raise E, whatever the other variables are (section
  // "Penalty weight" of docs/pruning_math.md): switching i off changes E by
  // -(c_i + sum_{j on} q_ij) <= -c_i + sum_j max(0, -q_ij); switching it on by
  // c_i + sum_{j on} q_ij <= c_i + sum_j max(0, q_ij).
  const int n = num_variables();
  std::vector<double> off_cost(static_cast<size_t>(n)), on_cost(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    double raise_off = -linear_[i], raise_on = linear_[i];
    for_each_in_row(i, [&](int, double q) {
      raise_off += std::max(0.0, -q);
      raise_on += std::max(0.0, q);
    });
    off_cost[static_cast<size_t>(i)] = raise_off;
    on_cost[static_cast<size_t>(i)] = raise_on;
  }
  // A group with d ones too many is repaired by d single switch-offs, each of a variable that is
  // on: among the >= k+1 that are on, the cheapest costs at most U, the (k+1)-th largest off_cost
  // of the group. Too few ones: switch-ons among the >= size-k+1 that are off, at most A, the
  // k-th smallest on_cost. The shift lambda (s - k), zero on feasible points, moves every
  // switch-off by -lambda and every switch-on by +lambda: lambda = (U - A) / 2 balances the two
  // and leaves (U + A) / 2 to the quadratic term.
  PenaltyTerms terms;
  std::vector<double> values;
  for (const CardinalityConstraint& g : constraints_) {
    const int size = static_cast<int>(g.variables.size());
    std::optional<double> too_many, too_few;
    if (g.k < size) {
      values.clear();
      for (int v : g.variables) values.push_back(off_cost[static_cast<size_t>(v)]);
      const auto kth = values.begin() + g.k;  // (k+1)-th largest
      std::nth_element(values.begin(), kth, values.end(), std::greater<>());
      too_many = *kth;
    }
    if (g.k > 0) {
      values.clear();
      for (int v : g.variables) values.push_back(on_cost[static_cast<size_t>(v)]);
      const auto kth = values.begin() + (g.k - 1);  // k-th smallest
      std::nth_element(values.begin(), kth, values.end());
      too_few = *kth;
    }
    // One side only (k = 0 or k = size): the shift alone makes every violation cost more than
    // its repair, and any positive weight is safe.
    double shift = 0.0, bound = 0.0;
    if (too_many && too_few) {
      shift = 0.5 * (*too_many - *too_few);
      bound = 0.5 * (*too_many + *too_few);
    } else if (too_many) {
      shift = *too_many;
    } else if (too_few) {
      shift = -*too_few;
    }
    terms.shifts.push_back(shift);
    terms.bound = std::max(terms.bound, bound);
    terms.scale =
        std::max({terms.scale, std::abs(too_many.value_or(0.0)), std::abs(too_few.value_or(0.0))});
  }
  return terms;
}

double QuboModel::penalty_bound() const { return penalty_terms().bound; }

double QuboModel::default_penalty_weight() const {
  // 1 % above the bound, and never below a millionth of the repair costs' scale: a bound of 0
  // (one-sided groups, or balanced costs) must still leave infeasible points visibly above.
  const PenaltyTerms t = penalty_terms();
  return 1.01 * t.bound + 1e-6 * t.scale + 1e-9;
}

QuboModel QuboModel::penalized(std::optional<double> weight,
                               const std::vector<double>& given_shifts) const {
  const double w = weight.value_or(default_penalty_weight());
  if (!std::isfinite(w) || w < 0.0) {
    throw InvalidArgument("penalty weight must be finite and >= 0, got " + std::to_string(w));
  }
  if (!given_shifts.empty() && given_shifts.size() != constraints_.size())
    throw InvalidArgument("penalty shifts: expected one per constraint group (" +
                          std::to_string(constraints_.size()) + "), got " +
                          std::to_string(given_shifts.size()));
  for (const double shift : given_shifts)
    if (!std::isfinite(shift))
      throw InvalidArgument("penalty shifts must be finite, got " + std::to_string(shift));
  // w (s - k)^2 + lambda (s - k), s = sum_{i in g} x_i:
  //   (w (1 - 2k) + lambda) sum x_i + 2 w sum_{i<j in g} x_i x_j + w k^2 - lambda k.
  const std::vector<double> shifts = given_shifts.empty() ? penalty_terms().shifts : given_shifts;
  Eigen::VectorXd c = linear_;
  double offset = offset_;
  std::vector<Coupling> q = coupling_list();
  std::string shift_text;
  for (size_t gi = 0; gi < constraints_.size(); ++gi) {
    const CardinalityConstraint& g = constraints_[gi];
    const double k = g.k;
    const double lambda = shifts[gi];
    offset += w * k * k - lambda * k;
    for (Index a = 0; a < g.variables.size(); ++a) {
      c[g.variables[a]] += w * (1.0 - 2.0 * k) + lambda;
      for (Index b = a + 1; b < g.variables.size(); ++b)
        q.push_back({g.variables[a], g.variables[b], 2.0 * w});
    }
    if (gi > 0) shift_text.push_back(',');
    shift_text.append(shortest_text(lambda));
  }
  QuboModel m = from_couplings(num_variables(), std::move(c), q, offset,
                               constraints_.empty() ? storage_ : Storage::kAuto);
  m.labels_ = labels_;
  m.metadata = metadata;
  if (!constraints_.empty()) {
    m.metadata["penalty_weight"] = shortest_text(w);
    m.metadata["penalty_shifts"] = shift_text;
  }
  return m;
}

}  // namespace qprune
