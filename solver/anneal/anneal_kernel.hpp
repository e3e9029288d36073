// The annealing kernels: a model compiled into dense rows or symmetric CSR neighbour lists (float
// or double), a cached local field h_i = c_i + sum_j q_ij x_j per variable, Metropolis sweeps of
// single flips and of feasible swaps, and greedy descents. Everything here is templated on the
// compiled form; the solver dispatches once per solve and the inner loops see concrete types.
//
// With the field cached, a flip of i costs delta = (1 - 2 x_i) h_i to evaluate (O(1)) and, when
// accepted, h_j += (1 - 2 x_i) q_ij for every neighbour j (O(degree); a dense row is one AXPY).
// A swap within a group (a: 0 -> 1, b: 1 -> 0) costs delta = h_a - h_b - q_ab.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error "solver/anneal/anneal_kernel.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

#include "qprune/qubo_model.hpp"
#include "core/rng.hpp"

namespace qprune::detail::anneal {

/// h[j] += s * row[j] for j in [0, n), s = +-1; compiled for AVX-512, AVX2 and a baseline, picked
/// at load time. The integer forms keep small integer couplings in 1 or 2 bytes: a quarter or half
/// of the memory traffic of float rows, and exact.
void add_scaled_row(float* h, const float* row, float s, std::size_t n);
void add_scaled_row(double* h, const double* row, double s, std::size_t n);
void add_scaled_row(std::int32_t* h, const std::int8_t* row, std::int32_t s, std::size_t n);
void add_scaled_row(std::int32_t* h, const std::int16_t* row, std::int32_t s, std::size_t n);

/// Arithmetic of the acceptance test for a field type: double for double fields, else float.
template <class Field>
using CalcType = std::conditional_t<std::is_same_v<Field, double>, double, float>;

/// -ln(2^-32): a uniform 32-bit draw r accepts with r < 2^32 exp(-beta delta), which can only
/// happen when beta delta < 32 ln 2; flips costing more are rejected without drawing.
inline constexpr double kLogResolution = 22.180709777918249;

/// Cache-line aligned storage so that dense rows start on a vector boundary.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}  // NOLINT: allocator rebinding
  T* allocate(std::size_t count) {
    return static_cast<T*>(::operator new(count * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
};
template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

/// Dense couplings as row-major rows padded to 64 entries (zero diagonal). Field is the type of
/// the cached local fields (float, double, int32), Weight the stored coupling type.
template <class Field, class Weight = Field>
class DenseForm {
 public:
  using RealType = Field;
  using Real = Field;
  static constexpr const char* kName = "dense";

  explicit DenseForm(const QuboModel& model)
      : n_(model.num_variables()),
        stride_((static_cast<std::size_t>(n_) + 63) / 64 * 64),
        offset_(model.offset()),
        linear_(static_cast<std::size_t>(n_)),
        q_(static_cast<std::size_t>(n_) * stride_, Weight(0)) {
    for (int i = 0; i < n_; ++i) linear_[static_cast<std::size_t>(i)] = static_cast<Real>(model.linear()[i]);
    if (model.storage() == Storage::kDense) {
      const Eigen::MatrixXd& d = model.dense_couplings();
      for (int i = 0; i < n_; ++i) {
        Weight* row = &q_[static_cast<std::size_t>(i) * stride_];
        for (int j = 0; j < n_; ++j) row[j] = static_cast<Weight>(d(j, i));  // column i is contiguous
      }
    } else {
      model.for_each_coupling([&](int i, int j, double q) {
        q_[static_cast<std::size_t>(i) * stride_ + static_cast<std::size_t>(j)] = static_cast<Weight>(q);
        q_[static_cast<std::size_t>(j) * stride_ + static_cast<std::size_t>(i)] = static_cast<Weight>(q);
      });
    }
  }
  [[nodiscard]] int size() const { return n_; }
  [[nodiscard]] double offset() const { return offset_; }
  [[nodiscard]] Real linear(int i) const { return linear_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] Real coupling(int a, int b) const {
    return static_cast<Real>(q_[static_cast<std::size_t>(a) * stride_ + static_cast<std::size_t>(b)]);
  }
  void add_row(Real* h, int i, Real s) const {
    add_scaled_row(h, &q_[static_cast<std::size_t>(i) * stride_], s, static_cast<std::size_t>(n_));
  }
  void accumulate_row(double* acc, int i) const {
    const Weight* row = &q_[static_cast<std::size_t>(i) * stride_];
    for (int j = 0; j < n_; ++j) acc[j] += static_cast<double>(row[j]);
  }
  /// max(0, max_j q_ij): bounds how much a coupling can lower a swap's delta (swap_descent).
  [[nodiscard]] Real max_positive_coupling(int i) const {
    const Weight* row = &q_[static_cast<std::size_t>(i) * stride_];
    Weight best(0);
    for (int j = 0; j < n_; ++j) best = std::max(best, row[j]);
    return static_cast<Real>(best);
  }

 private:
  int n_;
  std::size_t stride_;
  double offset_;
  std::vector<Real> linear_;
  AlignedVector<Weight> q_;
};

/// Symmetric CSR: each pair in both rows, column and value side by side (one memory stream).
template <class Real>
class SparseForm {
 public:
  using RealType = Real;
  static constexpr const char* kName = "sparse";
  struct Entry {
    int column;
    Real value;
  };

  explicit SparseForm(const QuboModel& model)
      : n_(model.num_variables()), offset_(model.offset()), linear_(static_cast<std::size_t>(n_)) {
    for (int i = 0; i < n_; ++i) linear_[static_cast<std::size_t>(i)] = static_cast<Real>(model.linear()[i]);
    offsets_.assign(static_cast<std::size_t>(n_) + 1, 0);
    for (int i = 0; i < n_; ++i) {
      model.for_each_in_row(i, [&](int j, double q) {
        entries_.push_back({j, static_cast<Real>(q)});
      });
      offsets_[static_cast<std::size_t>(i) + 1] = static_cast<std::int64_t>(entries_.size());
    }
  }
  [[nodiscard]] int size() const { return n_; }
  [[nodiscard]] double offset() const { return offset_; }
  [[nodiscard]] Real linear(int i) const { return linear_[static_cast<std::size_t>(i)]; }
  /// q_ab by binary search in row a (columns are sorted).
  [[nodiscard]] Real coupling(int a, int b) const {
    const Entry* first = entries_.data() + offsets_[static_cast<std::size_t>(a)];
    const Entry* last = entries_.data() + offsets_[static_cast<std::size_t>(a) + 1];
    const Entry* it =
        std::lower_bound(first, last, b, [](const Entry& e, int col) { return e.column < col; });
    return (it != last && it->column == b) ? it->value : Real(0);
  }
  void add_row(Real* h, int i, Real s) const {
    const Entry* e = entries_.data() + offsets_[static_cast<std::size_t>(i)];
    const Entry* last = entries_.data() + offsets_[static_cast<std::size_t>(i) + 1];
    for (; e != last; ++e) h[e->column] += s * e->value;
  }
  void accumulate_row(double* acc, int i) const {
    for (std::int64_t p = offsets_[static_cast<std::size_t>(i)];
         p < offsets_[static_cast<std::size_t>(i) + 1]; ++p) {
      const Entry& e = entries_[static_cast<std::size_t>(p)];
      acc[e.column] += static_cast<double>(e.value);
    }
  }
  /// max(0, max_j q_ij): bounds how much a coupling can lower a swap's delta (swap_descent).
  [[nodiscard]] Real max_positive_coupling(int i) const {
    Real best(0);
    for (std::int64_t p = offsets_[static_cast<std::size_t>(i)];
         p < offsets_[static_cast<std::size_t>(i) + 1]; ++p) {
      best = std::max(best, entries_[static_cast<std::size_t>(p)].value);
    }
    return best;
  }

 private:
  int n_;
  double offset_;
  std::vector<Real> linear_;
  std::vector<std::int64_t> offsets_;
  std::vector<Entry> entries_;
};

/// h_i = c_i + sum_j q_ij x_j, summed in double from the form's own (possibly float) values.
template <class Form>
void compute_fields(const Form& form, const std::uint8_t* x, typename Form::RealType* h) {
  const int n = form.size();
  std::vector<double> acc(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) acc[static_cast<std::size_t>(i)] = static_cast<double>(form.linear(i));
  for (int i = 0; i < n; ++i)
    if (x[i]) form.accumulate_row(acc.data(), i);
  for (int i = 0; i < n; ++i) h[i] = static_cast<typename Form::RealType>(acc[static_cast<std::size_t>(i)]);
}

/// E(x) = offset + sum_i x_i (c_i + h_i) / 2 from the fields (each pair counted once).
template <class Form>
[[nodiscard]] double energy_from_fields(const Form& form, const std::uint8_t* x,
                                        const typename Form::RealType* h) {
  double e = 0.0;
  for (int i = 0; i < form.size(); ++i)
    if (x[i]) e += static_cast<double>(form.linear(i)) + static_cast<double>(h[i]);
  return form.offset() + 0.5 * e;
}

/// The Metropolis test at one inverse temperature, for fields of type Field.
template <class Field>
struct Metropolis {
  using Calc = CalcType<Field>;
  explicit Metropolis(double beta_in)
      : beta(static_cast<Calc>(beta_in)), threshold(static_cast<Calc>(kLogResolution / beta_in)) {}
  /// Accepts a move of cost `delta`: always when delta <= 0, never (and without a draw) when no
  /// 32-bit draw could accept it, else with probability exp(-beta delta).
  [[nodiscard]] bool accept(Field delta, pcg32& rng) const {
    if (delta <= Field(0)) return true;
    const auto d = static_cast<Calc>(delta);
    if (d >= threshold) return false;
    return static_cast<Calc>(rng()) < std::exp(-beta * d) * static_cast<Calc>(0x1p32);
  }
  Calc beta;
  Calc threshold;
};

/// One sweep of n single-flip attempts; returns the number of accepted flips.
template <bool kRandomOrder, class Form>
std::int64_t flip_sweep(const Form& form, std::uint8_t* x, typename Form::RealType* h,
                        const Metropolis<typename Form::RealType>& metropolis, pcg32& rng,
                        double& energy) {
  using Real = typename Form::RealType;
  const int n = form.size();
  std::int64_t accepted = 0;
  for (int k = 0; k < n; ++k) {
    const int i = kRandomOrder ? static_cast<int>(rng(static_cast<std::uint32_t>(n))) : k;
    const Real delta = x[i] ? -h[i] : h[i];
    if (!metropolis.accept(delta, rng)) continue;
    form.add_row(h, i, x[i] ? Real(-1) : Real(1));
    x[i] ^= 1;
    energy += static_cast<double>(delta);
    ++accepted;
  }
  return accepted;
}

/// Variables grouped for swap moves. `slots` lists each movable group's variables contiguously;
/// per read, the first k slots of a group hold its ones, the rest its zeros.
struct SwapLayout {
  struct Group {
    int begin = 0;  // into slots
    int size = 0;
    int k = 0;
  };
  std::vector<Group> groups;  // only groups with 0 < k < size (others never move)
  std::vector<int> slots;
  std::vector<int> free_vars;   // in no group: single flips
  std::vector<int> fixed_ones;  // groups with k == size
  std::vector<int> fixed_zeros;  // groups with k == 0

  explicit SwapLayout(const QuboModel& model) {
    std::vector<char> grouped(static_cast<std::size_t>(model.num_variables()), 0);
    for (const CardinalityConstraint& g : model.constraints()) {
      const int size = static_cast<int>(g.variables.size());
      for (int v : g.variables) grouped[static_cast<std::size_t>(v)] = 1;
      if (g.k == 0) {
        fixed_zeros.insert(fixed_zeros.end(), g.variables.begin(), g.variables.end());
      } else if (g.k == size) {
        fixed_ones.insert(fixed_ones.end(), g.variables.begin(), g.variables.end());
      } else {
        groups.push_back({static_cast<int>(slots.size()), size, g.k});
        slots.insert(slots.end(), g.variables.begin(), g.variables.end());
      }
    }
    for (int i = 0; i < model.num_variables(); ++i)
      if (!grouped[static_cast<std::size_t>(i)]) free_vars.push_back(i);
  }
  /// Move attempts in one swap sweep.
  [[nodiscard]] std::int64_t attempts_per_sweep() const {
    return static_cast<std::int64_t>(slots.size() + free_vars.size());
  }
};

/// A uniformly random feasible start: a uniform k-subset of each group (partial Fisher-Yates on the
/// read's own slot order), free variables uniform.
inline void random_feasible_start(const SwapLayout& layout, pcg32& rng, std::uint8_t* x,
                                  std::vector<int>& slots) {
  slots = layout.slots;
  for (int v : layout.fixed_ones) x[v] = 1;
  for (int v : layout.fixed_zeros) x[v] = 0;
  for (int v : layout.free_vars) x[v] = static_cast<std::uint8_t>(rng(2));
  for (const SwapLayout::Group& g : layout.groups) {
    int* s = slots.data() + g.begin;
    for (int a = 0; a < g.size; ++a) {
      const int b = a + static_cast<int>(rng(static_cast<std::uint32_t>(g.size - a)));
      std::swap(s[a], s[b]);
      x[s[a]] = a < g.k ? 1 : 0;
    }
  }
}

/// One swap sweep: `size` swap attempts per movable group, then one single-flip pass over the free
/// variables. Every state stays feasible. Returns the number of accepted moves.
template <class Form>
std::int64_t swap_sweep(const Form& form, const SwapLayout& layout, std::vector<int>& slots,
                        std::uint8_t* x, typename Form::RealType* h,
                        const Metropolis<typename Form::RealType>& metropolis, pcg32& rng,
                        double& energy) {
  using Real = typename Form::RealType;
  std::int64_t accepted = 0;
  for (const SwapLayout::Group& g : layout.groups) {
    int* s = slots.data() + g.begin;
    const auto ones = static_cast<std::uint32_t>(g.k);
    const auto zeros = static_cast<std::uint32_t>(g.size - g.k);
    for (int t = 0; t < g.size; ++t) {
      const int ib = static_cast<int>(rng(ones));
      const int ia = g.k + static_cast<int>(rng(zeros));
      const int a = s[ia];  // 0 -> 1
      const int b = s[ib];  // 1 -> 0
      const Real delta = h[a] - h[b] - form.coupling(a, b);
      if (!metropolis.accept(delta, rng)) continue;
      form.add_row(h, a, Real(1));
      form.add_row(h, b, Real(-1));
      x[a] = 1;
      x[b] = 0;
      std::swap(s[ia], s[ib]);
      energy += static_cast<double>(delta);
      ++accepted;
    }
  }
  for (int i : layout.free_vars) {
    const Real delta = x[i] ? -h[i] : h[i];
    if (!metropolis.accept(delta, rng)) continue;
    form.add_row(h, i, x[i] ? Real(-1) : Real(1));
    x[i] ^= 1;
    energy += static_cast<double>(delta);
    ++accepted;
  }
  return accepted;
}

/// Best-improvement single-flip descent until no flip lowers the energy by more than `tolerance`.
/// Returns the number of flips made.
template <class Form>
std::int64_t flip_descent(const Form& form, std::uint8_t* x, typename Form::RealType* h,
                          double tolerance, std::int64_t max_moves) {
  using Real = typename Form::RealType;
  const int n = form.size();
  std::int64_t moves = 0;
  while (moves < max_moves) {
    int best = -1;
    Real best_delta = static_cast<Real>(-tolerance);
    for (int i = 0; i < n; ++i) {
      const Real delta = x[i] ? -h[i] : h[i];
      if (delta < best_delta) {
        best_delta = delta;
        best = i;
      }
    }
    if (best < 0) break;
    form.add_row(h, best, x[best] ? Real(-1) : Real(1));
    x[best] ^= 1;
    ++moves;
  }
  return moves;
}

/// max(0, max_j q_ij) of every variable, computed once per compiled form and shared by the reads.
template <class Form>
[[nodiscard]] std::vector<typename Form::RealType> positive_row_bounds(const Form& form) {
  std::vector<typename Form::RealType> bound(static_cast<std::size_t>(form.size()));
  for (int i = 0; i < form.size(); ++i) bound[static_cast<std::size_t>(i)] = form.max_positive_coupling(i);
  return bound;
}

/// Applies the swap of slot positions ia (a zero, 0 -> 1) and ib (a one, 1 -> 0) of one group.
template <class Form>
void apply_swap(const Form& form, int* s, int ia, int ib, std::uint8_t* x,
                typename Form::RealType* h) {
  using Real = typename Form::RealType;
  const int a = s[ia], b = s[ib];
  form.add_row(h, a, Real(1));
  form.add_row(h, b, Real(-1));
  x[a] = 1;
  x[b] = 0;
  std::swap(s[ia], s[ib]);
}

/// Descent of one group to a swap local optimum (no swap improves by more than -limit), with the
/// fields of everything outside the group fixed. Returns the number of swaps made.
///
/// Why not the plain best-swap scan: that costs k (size - k) coupling look-ups per move, which on
/// an MLP layer (size 18944, k 11366) is 8.6e7 per move and made a descent after annealing run
/// for many minutes. Here a swap's delta h_a - h_b - q_ab is bounded below by
/// (h_a - u_a) - h_b with u_a = max(0, max_j q_aj) (`bound`), so:
///  1. batch: zeros sorted by h ascending are paired with ones sorted by h descending; pair j is
///     applied when its delta, evaluated with the current fields, still improves; the batch stops
///     at the first pair that does not. Each applied swap is an exact improvement.
///  2. exact: the best swap, by branch and bound: zeros in order of h_a - u_a, ones in order of
///     descending h_b; a pair, and every later one in either order, is skipped once its bound
///     cannot beat the best delta found. If it improves it is applied and the loop repeats.
/// A diagonal problem (u = 0) is solved by one batch (the exact top-k) and one exact check that
/// looks at one pair: O(size log size). With couplings the exact step is still the best swap,
/// the same guarantee as the full scan, and never slower than it by more than the sorting.
template <class Form>
std::int64_t group_swap_descent(const Form& form, const typename Form::RealType* bound, int* s,
                                int size, int k, std::uint8_t* x, typename Form::RealType* h,
                                typename Form::RealType limit, std::int64_t max_moves) {
  using Real = typename Form::RealType;
  std::vector<int> ones(static_cast<std::size_t>(k));
  std::vector<int> zeros(static_cast<std::size_t>(size - k));
  std::int64_t moves = 0;
  const auto by_h_desc = [&](int p, int q) { return h[s[p]] > h[s[q]]; };
  while (moves < max_moves) {
    // Slot positions, not variables: a swap exchanges the variables at two positions, and no
    // position appears twice in a batch.
    for (int i = 0; i < k; ++i) ones[static_cast<std::size_t>(i)] = i;
    for (int i = k; i < size; ++i) zeros[static_cast<std::size_t>(i - k)] = i;
    std::sort(ones.begin(), ones.end(), by_h_desc);
    std::sort(zeros.begin(), zeros.end(), [&](int p, int q) { return h[s[p]] < h[s[q]]; });
    const std::size_t pairs = std::min(ones.size(), zeros.size());
    for (std::size_t j = 0; j < pairs && moves < max_moves; ++j) {
      const int ia = zeros[j], ib = ones[j];
      const Real delta = h[s[ia]] - h[s[ib]] - form.coupling(s[ia], s[ib]);
      if (!(delta < limit)) break;
      apply_swap(form, s, ia, ib, x, h);
      ++moves;
    }

    for (int i = 0; i < k; ++i) ones[static_cast<std::size_t>(i)] = i;
    for (int i = k; i < size; ++i) zeros[static_cast<std::size_t>(i - k)] = i;
    std::sort(ones.begin(), ones.end(), by_h_desc);
    const auto key = [&](int p) { return h[s[p]] - bound[s[p]]; };
    std::sort(zeros.begin(), zeros.end(), [&](int p, int q) { return key(p) < key(q); });
    Real best = limit;
    int best_a = -1, best_b = -1;
    const Real top = h[s[ones.front()]];
    for (int ia : zeros) {
      const Real lower = key(ia);
      if (!(lower - top < best)) break;
      for (int ib : ones) {
        if (!(lower - h[s[ib]] < best)) break;
        const Real delta = h[s[ia]] - h[s[ib]] - form.coupling(s[ia], s[ib]);
        if (delta < best) {
          best = delta;
          best_a = ia;
          best_b = ib;
        }
      }
    }
    if (best_a < 0 || moves >= max_moves) break;
    apply_swap(form, s, best_a, best_b, x, h);
    ++moves;
  }
  return moves;
}

/// Swap descent: every movable group is brought to a swap local optimum (group_swap_descent), then
/// the free variables get a pass of single flips that improve; repeated until a round moves
/// nothing, so at the end no swap and no free flip improves by more than `tolerance`. Feasibility
/// is kept. `bound` is positive_row_bounds(form). Returns the number of moves made.
template <class Form>
std::int64_t swap_descent(const Form& form, const SwapLayout& layout,
                          const std::vector<typename Form::RealType>& bound,
                          std::vector<int>& slots, std::uint8_t* x, typename Form::RealType* h,
                          double tolerance, std::int64_t max_moves) {
  using Real = typename Form::RealType;
  const Real limit = static_cast<Real>(-tolerance);
  std::int64_t moves = 0;
  bool improved = true;
  while (improved && moves < max_moves) {
    improved = false;
    for (const SwapLayout::Group& g : layout.groups) {
      const std::int64_t made = group_swap_descent(form, bound.data(), slots.data() + g.begin,
                                                   g.size, g.k, x, h, limit, max_moves - moves);
      moves += made;
      improved = improved || made > 0;
    }
    for (int i : layout.free_vars) {
      if (moves >= max_moves) break;
      const Real delta = x[i] ? -h[i] : h[i];
      if (!(delta < limit)) continue;
      form.add_row(h, i, x[i] ? Real(-1) : Real(1));
      x[i] ^= 1;
      ++moves;
      improved = true;
    }
  }
  return moves;
}

}  // namespace qprune::detail::anneal
