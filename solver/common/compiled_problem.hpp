// The one compiled form of a searched model that every solver reads: the linear terms and the
// symmetric coupling rows (dense or CSR, viewed in place: a pruning layer's model can be several
// GiB, so nothing is copied), plus the constraint groups laid out for feasible moves. A kernel that
// needs its own layout (anneal's padded float/int8 rows, exact's +-rows) derives it from this form,
// never from QuboModel directly, so a new storage kind or group rule is taught here once.
//
// Energy convention (qprune/qubo_model.hpp): E(x) = offset + sum_i c_i x_i + sum_{i<j} q_ij x_i
// x_j. The local field of i is f_i = c_i + sum_j q_ij x_j; flipping i changes E by (1 - 2 x_i) f_i,
// and a swap inside a group (in: 0 -> 1, out: 1 -> 0) by f_in - f_out - q_in,out.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/compiled_problem.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune::detail {

/// The constraint groups of a native search, laid out for feasible moves. Groups with 0 < k < size
/// are movable (swaps); groups with k == 0 or k == size fix their variables; variables in no group
/// flip freely. Empty (every variable free) for an unconstrained or penalised search.
struct GroupLayout {
  struct Group {
    int begin = 0;  ///< into `slots`
    int size = 0;
    int k = 0;
  };
  std::vector<Group> groups;     ///< movable groups, in constraint order
  std::vector<int> slots;        ///< each movable group's variables contiguously, in model order
  std::vector<int> free_vars;    ///< in no group, ascending
  std::vector<int> fixed_ones;   ///< members of groups with k == size
  std::vector<int> fixed_zeros;  ///< members of groups with k == 0
  std::vector<int> group_of;     ///< movable group of each variable, -1 for the others
  /// Every group in constraint order, movable or not (feasible starts that shuffle every group).
  const std::vector<CardinalityConstraint>* constraints = nullptr;

  GroupLayout() = default;
  /// native: lay out model's groups; else every variable is free.
  GroupLayout(const QuboModel& model, bool native) {
    const int n = model.num_variables();
    group_of.assign(static_cast<std::size_t>(n), -1);
    std::vector<char> grouped(static_cast<std::size_t>(n), 0);
    if (native) {
      constraints = &model.constraints();
      for (const CardinalityConstraint& g : model.constraints()) {
        const int size = static_cast<int>(g.variables.size());
        for (int v : g.variables) grouped[static_cast<std::size_t>(v)] = 1;
        if (g.k == 0) {
          fixed_zeros.insert(fixed_zeros.end(), g.variables.begin(), g.variables.end());
        } else if (g.k == size) {
          fixed_ones.insert(fixed_ones.end(), g.variables.begin(), g.variables.end());
        } else {
          for (int v : g.variables)
            group_of[static_cast<std::size_t>(v)] = static_cast<int>(groups.size());
          groups.push_back({static_cast<int>(slots.size()), size, g.k});
          slots.insert(slots.end(), g.variables.begin(), g.variables.end());
        }
      }
    }
    for (int i = 0; i < n; ++i)
      if (!grouped[static_cast<std::size_t>(i)]) free_vars.push_back(i);
  }
  [[nodiscard]] bool has_groups() const { return constraints != nullptr && !constraints->empty(); }
  /// The variables of movable group g.
  [[nodiscard]] const int* members(const Group& g) const { return slots.data() + g.begin; }
  /// Move attempts in one sweep over the movable variables (anneal's counter).
  [[nodiscard]] std::int64_t movable_count() const {
    return static_cast<std::int64_t>(slots.size() + free_vars.size());
  }
};

/// The searched model's coefficients, viewed in place, and its group layout.
class CompiledProblem {
 public:
  using RealType = double;  // the field type of the descents (descent.hpp) on this form

  /// `searched` must outlive this form. native: its constraint groups are kept by feasible moves.
  CompiledProblem(const QuboModel& searched, bool native)
      : model_(&searched),
        n_(searched.num_variables()),
        dense_(searched.storage() == Storage::kDense),
        offset_(searched.offset()),
        linear_(searched.linear().data()),
        max_flip_change_(searched.max_flip_change()),
        layout_(searched, native) {
    if (dense_) {
      dense_q_ = searched.dense_couplings().data();
    } else {
      row_offsets_ = searched.row_offsets().data();
      columns_ = searched.columns().data();
      values_ = searched.values().data();
    }
  }

  [[nodiscard]] int size() const { return n_; }
  [[nodiscard]] bool dense() const { return dense_; }
  [[nodiscard]] double offset() const { return offset_; }
  [[nodiscard]] double linear(int i) const { return linear_[i]; }
  /// B = max_i (|c_i| + sum_j |q_ij|): the scale of every energy change (tolerances).
  [[nodiscard]] double max_flip_change() const { return max_flip_change_; }
  [[nodiscard]] const GroupLayout& layout() const { return layout_; }
  [[nodiscard]] const QuboModel& model() const { return *model_; }

  /// Dense form only: row i, n contiguous doubles, zero diagonal (the stored matrix is symmetric,
  /// so column-major column i is row i).
  [[nodiscard]] const double* dense_row(int i) const {
    return dense_q_ + static_cast<std::size_t>(i) * static_cast<std::size_t>(n_);
  }
  /// Sparse form only: the CSR row i is [row_begin(i), row_end(i)) of columns() / values().
  [[nodiscard]] std::int64_t row_begin(int i) const { return row_offsets_[i]; }
  [[nodiscard]] std::int64_t row_end(int i) const { return row_offsets_[i + 1]; }
  [[nodiscard]] const int* columns() const { return columns_; }
  [[nodiscard]] const double* values() const { return values_; }

  /// fn(j, q_ij) for every non-zero coupling of row i, j ascending.
  template <class F>
  void for_each_in_row(int i, F&& fn) const {
    if (dense_) {
      const double* row = dense_row(i);
      for (int j = 0; j < n_; ++j)
        if (row[j] != 0.0) fn(j, row[j]);
      return;
    }
    for (std::int64_t p = row_begin(i); p < row_end(i); ++p) fn(columns_[p], values_[p]);
  }
  /// f[j] += s * q_ij for every j.
  void add_row(double* f, int i, double s) const {
    if (dense_) {
      const double* row = dense_row(i);
      for (int j = 0; j < n_; ++j) f[j] += s * row[j];
      return;
    }
    for (std::int64_t p = row_begin(i); p < row_end(i); ++p) f[columns_[p]] += s * values_[p];
  }
  /// f = c + Q x.
  void fields(const std::uint8_t* x, std::vector<double>& f) const {
    f.assign(linear_, linear_ + n_);
    for (int k = 0; k < n_; ++k)
      if (x[k]) add_row(f.data(), k, 1.0);
  }
  /// q_ab (dense: a load; sparse: a binary search in row a, whose columns ascend).
  [[nodiscard]] double coupling(int a, int b) const {
    if (dense_) return dense_row(a)[b];
    const int* first = columns_ + row_begin(a);
    const int* last = columns_ + row_end(a);
    const int* it = std::lower_bound(first, last, b);
    return it != last && *it == b ? values_[it - columns_] : 0.0;
  }
  /// max(0, max_j q_ij): bounds how much a coupling can lower a swap's delta (descent.hpp).
  [[nodiscard]] double max_positive_coupling(int i) const {
    double best = 0.0;
    for_each_in_row(i, [&](int, double q) { best = std::max(best, q); });
    return best;
  }

 private:
  const QuboModel* model_;
  int n_;
  bool dense_;
  double offset_;
  const double* linear_;
  double max_flip_change_;
  const double* dense_q_ = nullptr;
  const std::int64_t* row_offsets_ = nullptr;
  const int* columns_ = nullptr;
  const double* values_ = nullptr;
  GroupLayout layout_;
};

}  // namespace qprune::detail
