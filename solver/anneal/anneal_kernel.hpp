// The annealing kernels: the compiled problem (solver/common/compiled_problem.hpp) laid out as
// padded dense rows or symmetric CSR neighbour lists in the kernel's precision (float, double,
// int8/int16 weights), a cached local field h_i = c_i + sum_j q_ij x_j per variable, and
// Metropolis sweeps of single flips and of feasible swaps; the starts and the closing descent are
// the shared ones (feasible_start.hpp, descent.hpp). Everything here is templated on the form;
// the solver dispatches once per solve and the inner loops see concrete types.
//
// With the field cached, a flip of i costs delta = (1 - 2 x_i) h_i to evaluate (O(1)) and, when
// accepted, h_j += (1 - 2 x_i) q_ij for every neighbour j (O(degree); a dense row is one AXPY).
// A swap within a group (a: 0 -> 1, b: 1 -> 0) costs delta = h_a - h_b - q_ab.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/anneal/anneal_kernel.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

#include "core/rng.hpp"
#include "qprune/qubo_model.hpp"
#include "solver/common/compiled_problem.hpp"
#include "solver/common/descent.hpp"
#include "solver/common/feasible_start.hpp"

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
    return static_cast<T*>(::operator new (count * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete (p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
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

  explicit DenseForm(const CompiledProblem& p)
      : n_(p.size()),
        stride_((static_cast<std::size_t>(n_) + 63) / 64 * 64),
        offset_(p.offset()),
        linear_(static_cast<std::size_t>(n_)),
        q_(static_cast<std::size_t>(n_) * stride_, Weight(0)) {
    for (int i = 0; i < n_; ++i)
      linear_[static_cast<std::size_t>(i)] = static_cast<Real>(p.linear(i));
    for (int i = 0; i < n_; ++i) {
      Weight* row = &q_[static_cast<std::size_t>(i) * stride_];
      p.for_each_in_row(i, [&](int j, double q) { row[j] = static_cast<Weight>(q); });
    }
  }
  explicit DenseForm(const QuboModel& model) : DenseForm(CompiledProblem(model, false)) {}
  [[nodiscard]] int size() const { return n_; }
  [[nodiscard]] double offset() const { return offset_; }
  [[nodiscard]] Real linear(int i) const { return linear_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] Real coupling(int a, int b) const {
    return static_cast<Real>(
        q_[static_cast<std::size_t>(a) * stride_ + static_cast<std::size_t>(b)]);
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

/// Symmetric CSR: each pair in both rows, as two parallel arrays, int32 columns and the couplings
/// in the kernel's weight type (float, double, int8, int16): 5 bytes an entry with int8 weights
/// instead of the 8 of a padded {column, weight} pair, so more rows stay in cache. Field is the
/// type of the cached local fields (float, double, int32). Rows are laid out in variable order, so
/// a sequential sweep streams through both arrays once; an explicit prefetch of the next row
/// measured no gain over the hardware prefetcher (BENCHMARKS.md, issue 17), so there is none.
template <class Field, class Weight = Field>
class SparseForm {
 public:
  using RealType = Field;
  using Real = Field;
  static constexpr const char* kName = "sparse";

  explicit SparseForm(const CompiledProblem& p)
      : n_(p.size()), offset_(p.offset()), linear_(static_cast<std::size_t>(n_)) {
    for (int i = 0; i < n_; ++i)
      linear_[static_cast<std::size_t>(i)] = static_cast<Real>(p.linear(i));
    offsets_.assign(static_cast<std::size_t>(n_) + 1, 0);
    std::int64_t count = 0;
    for (int i = 0; i < n_; ++i) {
      p.for_each_in_row(i, [&](int, double) { ++count; });
      offsets_[static_cast<std::size_t>(i) + 1] = count;
    }
    columns_.resize(static_cast<std::size_t>(count));
    values_.resize(static_cast<std::size_t>(count));
    std::size_t k = 0;
    for (int i = 0; i < n_; ++i) {
      p.for_each_in_row(i, [&](int j, double q) {
        columns_[k] = j;
        values_[k++] = static_cast<Weight>(q);
      });
    }
  }
  explicit SparseForm(const QuboModel& model) : SparseForm(CompiledProblem(model, false)) {}
  [[nodiscard]] int size() const { return n_; }
  [[nodiscard]] double offset() const { return offset_; }
  [[nodiscard]] Real linear(int i) const { return linear_[static_cast<std::size_t>(i)]; }
  /// q_ab by binary search in row a (columns are sorted).
  [[nodiscard]] Real coupling(int a, int b) const {
    const std::int32_t* first = columns_.data() + begin(a);
    const std::int32_t* last = columns_.data() + end(a);
    const std::int32_t* it = std::lower_bound(first, last, b);
    return (it != last && *it == b)
               ? static_cast<Real>(values_[static_cast<std::size_t>(it - columns_.data())])
               : Real(0);
  }
  /// h[j] += s q_ij over row i; s = +-1. The columns of one row are distinct, so the scattered
  /// updates are independent and the loop runs at the load/store ports' rate.
  void add_row(Real* h, int i, Real s) const {
    const std::int64_t first = begin(i), last = end(i);
    const std::int32_t* col = columns_.data();
    const Weight* val = values_.data();
    for (std::int64_t p = first; p < last; ++p) h[col[p]] += s * static_cast<Real>(val[p]);
  }
  void accumulate_row(double* acc, int i) const {
    for (std::int64_t p = begin(i); p < end(i); ++p)
      acc[columns_[static_cast<std::size_t>(p)]] +=
          static_cast<double>(values_[static_cast<std::size_t>(p)]);
  }
  /// max(0, max_j q_ij): bounds how much a coupling can lower a swap's delta (swap_descent).
  [[nodiscard]] Real max_positive_coupling(int i) const {
    Weight best(0);
    for (std::int64_t p = begin(i); p < end(i); ++p)
      best = std::max(best, values_[static_cast<std::size_t>(p)]);
    return static_cast<Real>(best);
  }
  /// Stored non-zero couplings (each pair twice).
  [[nodiscard]] std::int64_t entries() const { return static_cast<std::int64_t>(columns_.size()); }

 private:
  [[nodiscard]] std::int64_t begin(int i) const { return offsets_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] std::int64_t end(int i) const { return offsets_[static_cast<std::size_t>(i) + 1]; }

  int n_;
  double offset_;
  std::vector<Real> linear_;
  std::vector<std::int64_t> offsets_;
  AlignedVector<std::int32_t> columns_;
  AlignedVector<Weight> values_;
};

/// h_i = c_i + sum_j q_ij x_j, summed in double from the form's own (possibly float) values.
template <class Form>
void compute_fields(const Form& form, const std::uint8_t* x, typename Form::RealType* h) {
  const int n = form.size();
  std::vector<double> acc(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    acc[static_cast<std::size_t>(i)] = static_cast<double>(form.linear(i));
  for (int i = 0; i < n; ++i)
    if (x[i]) form.accumulate_row(acc.data(), i);
  for (int i = 0; i < n; ++i)
    h[i] = static_cast<typename Form::RealType>(acc[static_cast<std::size_t>(i)]);
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
  /// The integer kernels' form: also tabulates the acceptance bound of every delta below the
  /// threshold into `table` when there are at most `max_table` of them (see accept()).
  Metropolis(double beta_in, std::vector<Calc>& table, std::size_t max_table)
      : Metropolis(beta_in) {
    static_assert(std::is_integral_v<Field>);
    // Deltas d >= `end` fail `d >= threshold`; the table holds bound(d) for 0 < d < end.
    const double end = std::ceil(static_cast<double>(threshold));
    if (!(end <= static_cast<double>(max_table))) return;
    const auto size = static_cast<std::size_t>(std::max(end, 1.0));
    table.resize(size);
    for (std::size_t d = 1; d < size; ++d) table[d] = bound(static_cast<Calc>(d));
    table_ = table.data();
    table_size_ = static_cast<Field>(size);
  }
  /// Accepts a move of cost `delta`: always when delta <= 0, never (and without a draw) when no
  /// 32-bit draw could accept it, else with probability exp(-beta delta). An integer delta below
  /// the table's end reads its bound from the table: the same float, computed once per sweep
  /// instead of one exp per attempt, so the decisions are those of the exp path bit for bit.
  [[nodiscard]] bool accept(Field delta, pcg32& rng) const {
    if (delta <= Field(0)) return true;
    if constexpr (std::is_integral_v<Field>) {
      if (delta < table_size_) return static_cast<Calc>(rng()) < table_[delta];
    }
    const auto d = static_cast<Calc>(delta);
    if (d >= threshold) return false;
    return static_cast<Calc>(rng()) < bound(d);
  }
  /// 2^32 exp(-beta d): a draw r accepts when r < bound(d).
  [[nodiscard]] Calc bound(Calc d) const { return std::exp(-beta * d) * static_cast<Calc>(0x1p32); }

  Calc beta;
  Calc threshold;

 private:
  const Calc* table_ = nullptr;
  Field table_size_ = 0;  // 0: no table, every delta takes the exp path
};

/// The Metropolis test of each sweep of one read; keeps the integer kernels' bound table between
/// sweeps. The table is built only while it has at most n / 4 entries (one exp each): at the hot
/// end, where the threshold allows large deltas, the exps of one sweep would cost more than the
/// attempts they save.
template <class Field>
class MetropolisTests {
 public:
  explicit MetropolisTests(int n) : max_table_(static_cast<std::size_t>(n) / 4) {}
  [[nodiscard]] Metropolis<Field> at(double beta) {
    if constexpr (std::is_integral_v<Field>) {
      return Metropolis<Field>(beta, table_, max_table_);
    } else {
      return Metropolis<Field>(beta);
    }
  }

 private:
  std::size_t max_table_;
  std::vector<CalcType<Field>> table_;
};

/// One Metropolis flip attempt of variable i (the move of flip_sweep and of swap_sweep's free
/// variables): returns 1 when accepted, with x, the fields h and the energy updated. Always
/// inlined, so both sweeps compile to the loops they had when each wrote it out.
template <class Form>
[[gnu::always_inline]] inline int try_flip(const Form& form, std::uint8_t* x,
                                           typename Form::RealType* h,
                                           const Metropolis<typename Form::RealType>& metropolis,
                                           pcg32& rng, double& energy, int i) {
  using Real = typename Form::RealType;
  const Real delta = x[i] ? -h[i] : h[i];
  if (!metropolis.accept(delta, rng)) return 0;
  form.add_row(h, i, x[i] ? Real(-1) : Real(1));
  x[i] ^= 1;
  energy += static_cast<double>(delta);
  return 1;
}

/// One sweep of n single-flip attempts; returns the number of accepted flips.
template <bool kRandomOrder, class Form>
std::int64_t flip_sweep(const Form& form, std::uint8_t* x, typename Form::RealType* h,
                        const Metropolis<typename Form::RealType>& metropolis, pcg32& rng,
                        double& energy) {
  const int n = form.size();
  std::int64_t accepted = 0;
  for (int k = 0; k < n; ++k) {
    const int i = kRandomOrder ? static_cast<int>(rng(static_cast<std::uint32_t>(n))) : k;
    accepted += try_flip(form, x, h, metropolis, rng, energy, i);
  }
  return accepted;
}

/// The group layout under the name the kernels' tests use: the model's groups, native.
struct SwapLayout : GroupLayout {
  explicit SwapLayout(const QuboModel& model) : GroupLayout(model, true) {}
  [[nodiscard]] std::int64_t attempts_per_sweep() const { return movable_count(); }
};

/// A uniformly random feasible start with the slot order the swap sweep needs (feasible_start).
inline void random_feasible_start(const GroupLayout& layout, pcg32& rng, std::uint8_t* x,
                                  std::vector<int>& slots) {
  feasible_start(layout, StartDraws::kMovableOnly, rng, x, &slots);
}

using detail::flip_descent;
using detail::positive_row_bounds;
using detail::swap_descent;

/// One swap sweep: `size` swap attempts per movable group, then one single-flip pass over the free
/// variables. Every state stays feasible. Returns the number of accepted moves.
template <class Form>
std::int64_t swap_sweep(const Form& form, const GroupLayout& layout, std::vector<int>& slots,
                        std::uint8_t* x, typename Form::RealType* h,
                        const Metropolis<typename Form::RealType>& metropolis, pcg32& rng,
                        double& energy) {
  using Real = typename Form::RealType;
  std::int64_t accepted = 0;
  for (const GroupLayout::Group& g : layout.groups) {
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
  for (int i : layout.free_vars) accepted += try_flip(form, x, h, metropolis, rng, energy, i);
  return accepted;
}

}  // namespace qprune::detail::anneal
