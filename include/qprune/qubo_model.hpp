// QuboModel: the one problem type every reader produces and every solver consumes.
//
// Energy convention (the only one in qprune):
//   QUBO:  minimise E(x) = offset + sum_i c_i x_i + sum_{i<j} q_ij x_i x_j,      x in {0,1}^n
//   Ising: minimise E(s) = offset + sum_i h_i s_i + sum_{i<j} J_ij s_i s_j,      s in {-1,+1}^n
//   with x = (1 + s) / 2. Each pair is counted once. A diagonal entry read from a file is a linear
//   term (x^2 = x). Formats that maximise are negated on read (docs/formats.md).
//
// Optional "exactly k of these variables are 1" groups (one per pruning layer) make a constrained
// problem; penalized() turns them into a plain QUBO.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 2
#error \
    "include/qprune/qubo_model.hpp is in the problems layer; a lower layer (core) may not include it"
#endif

#include <Eigen/Core>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qprune {

/// A 0/1 assignment, one byte per variable.
using Assignment = std::vector<std::uint8_t>;

/// One coupling q_ij x_i x_j (or J_ij s_i s_j). Builders accept any order and i == j (linear).
struct Coupling {
  int i = 0;
  int j = 0;
  double value = 0.0;
};

/// "Exactly k of `variables` are 1". Groups of one model are disjoint.
struct CardinalityConstraint {
  std::string name;  ///< e.g. "layer.3.mlp"
  std::vector<int> variables;
  int k = 0;
};

/// How the couplings are stored. kAuto picks dense at density >= kDenseThreshold.
enum class Storage { kAuto, kDense, kSparse };

/// Ising form of a model (see the convention above); J holds each pair once with i < j.
struct IsingModel {
  Eigen::VectorXd h;
  std::vector<Coupling> j;
  double offset = 0.0;
  /// E(s) for s in {-1,+1}^n.
  [[nodiscard]] double energy(const std::vector<std::int8_t>& s) const;
};

/// Lower and upper bounds of E(x) over all x from the signs of the coefficients (cheap, loose).
struct EnergyBounds {
  double lower = 0.0;
  double upper = 0.0;
};

class QuboModel {
 public:
  /// Density (couplings / (n(n-1)/2)) at or above which kAuto stores the couplings densely.
  static constexpr double kDenseThreshold = 0.25;

  QuboModel() = default;

  /// Builds a model from a list of couplings; entries with i == j add to the linear term, i > j is
  /// read as (j, i), duplicates are summed. Throws InvalidArgument on NaN/Inf or an index out of
  /// range.
  [[nodiscard]] static QuboModel from_couplings(int num_variables, Eigen::VectorXd linear,
                                                const std::vector<Coupling>& couplings,
                                                double offset = 0.0,
                                                Storage storage = Storage::kAuto);
  /// The same, reusing the list's memory (the readers' path for large files).
  [[nodiscard]] static QuboModel from_couplings(int num_variables, Eigen::VectorXd linear,
                                                std::vector<Coupling>&& couplings,
                                                double offset = 0.0,
                                                Storage storage = Storage::kAuto);
  /// Builds a model from a symmetric matrix Q with Q(i,j) = Q(j,i) = q_ij (the diagonal is
  /// ignored), so E = offset + c.x + x^T Q x / 2. Throws InvalidArgument if Q is not
  /// square/symmetric or finite.
  [[nodiscard]] static QuboModel from_dense(Eigen::VectorXd linear, Eigen::MatrixXd couplings,
                                            double offset = 0.0, Storage storage = Storage::kAuto);
  /// Row-major n x n matrix, read in place (a NumPy array's buffer).
  using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  /// dimod's dense form, E = offset + c.x + x^T Q x for any square Q (not necessarily
  /// symmetric): the diagonal adds to `linear` and q_ij = Q_ij + Q_ji for i < j. One tiled pass
  /// over Q, which is only read. Throws InvalidArgument if Q is not square, an entry is not finite,
  /// or `linear` has another size.
  [[nodiscard]] static QuboModel from_dense_form(Eigen::VectorXd linear,
                                                 const Eigen::Ref<const RowMajorMatrix>& q,
                                                 double offset = 0.0,
                                                 Storage storage = Storage::kAuto);
  /// The QUBO with the same energies as `ising` under x = (1 + s) / 2.
  [[nodiscard]] static QuboModel from_ising(const IsingModel& ising,
                                            Storage storage = Storage::kAuto);

  [[nodiscard]] int num_variables() const { return static_cast<int>(linear_.size()); }
  /// Number of non-zero couplings with i < j.
  [[nodiscard]] std::int64_t num_couplings() const { return num_couplings_; }
  /// num_couplings / (n (n-1) / 2); 0 for n < 2.
  [[nodiscard]] double density() const;
  [[nodiscard]] Storage storage() const { return storage_; }
  [[nodiscard]] double offset() const { return offset_; }
  [[nodiscard]] const Eigen::VectorXd& linear() const { return linear_; }
  /// q_ij (symmetric, 0 for i == j or no coupling).
  [[nodiscard]] double coupling(int i, int j) const;

  /// Dense couplings (symmetric, zero diagonal); throws InvalidArgument when storage() is sparse.
  [[nodiscard]] const Eigen::MatrixXd& dense_couplings() const;
  /// Symmetric CSR (each pair in both rows, columns sorted); throws when storage() is dense.
  [[nodiscard]] const std::vector<std::int64_t>& row_offsets() const;
  [[nodiscard]] const std::vector<int>& columns() const;
  [[nodiscard]] const std::vector<double>& values() const;

  /// Calls f(j, q_ij) for every non-zero coupling of row i (j != i), in increasing j.
  template <class F>
  void for_each_in_row(int i, F&& f) const;
  /// Calls f(i, j, q_ij) for every non-zero coupling with i < j, row by row.
  template <class F>
  void for_each_coupling(F&& f) const;
  /// The couplings with i < j as a list.
  [[nodiscard]] std::vector<Coupling> coupling_list() const;
  /// The same model with the couplings stored as asked (energies are identical).
  [[nodiscard]] QuboModel with_storage(Storage storage) const;

  /// E(x). Throws InvalidArgument if x has the wrong size or an entry other than 0/1.
  [[nodiscard]] double energy(const Assignment& x) const;
  /// c_i + sum_j q_ij x_j: the change of E when x_i goes 0 -> 1 (minus it for 1 -> 0).
  [[nodiscard]] double local_field(const Assignment& x, int i) const;
  /// E(x with x_i flipped) - E(x).
  [[nodiscard]] double flip_delta(const Assignment& x, int i) const;
  /// The largest change one flip can make: B = max_i (|c_i| + sum_j |q_ij|).
  [[nodiscard]] double max_flip_change() const;
  [[nodiscard]] EnergyBounds energy_bounds() const;

  /// Ising form with the same energies under x = (1 + s) / 2.
  [[nodiscard]] IsingModel to_ising() const;

  // Labels: one per variable, or none (then label(i) is the decimal index).
  [[nodiscard]] const std::vector<std::string>& labels() const { return labels_; }
  [[nodiscard]] std::string label(int i) const;
  /// Sets one label per variable; throws InvalidArgument on a size mismatch or a duplicate.
  void set_labels(std::vector<std::string> labels);

  // Constraint groups.
  [[nodiscard]] const std::vector<CardinalityConstraint>& constraints() const {
    return constraints_;
  }
  [[nodiscard]] bool has_constraints() const { return !constraints_.empty(); }
  /// Adds a group; throws InvalidArgument if it overlaps another group, has an index out of range
  /// or a duplicate, or k is not in [0, size].
  void add_constraint(CardinalityConstraint constraint);
  void clear_constraints() { constraints_.clear(); }
  /// True when every group has exactly k ones.
  [[nodiscard]] bool is_feasible(const Assignment& x) const;
  /// sum over groups of |ones - k|: 0 exactly when feasible.
  [[nodiscard]] int constraint_violation(const Assignment& x) const;

  /// How penalized() turns the groups into terms, and why its default weight is safe (proof in
  /// docs/pruning_math.md, "Penalty weight"). Per group g the penalty is
  /// w (s_g - k_g)^2 + shifts[g] (s_g - k_g), s_g the group's ones: the shift is zero on
  /// feasible points and balances the cost of repairing a violation from above (one switch-off,
  /// bounded by an order statistic of one-sided row sums) against the cost from below (one
  /// switch-on); any w > bound then makes every minimiser feasible, hence a constrained optimum.
  struct PenaltyTerms {
    double bound = 0.0;          ///< the largest over groups of the balanced repair cost, >= 0
    std::vector<double> shifts;  ///< one per group, in constraints() order
    double scale = 0.0;          ///< the largest |repair cost| seen: the problem's own scale
  };
  [[nodiscard]] PenaltyTerms penalty_terms() const;
  /// penalty_terms().bound: 0 without groups, far below max_flip_change() in practice.
  [[nodiscard]] double penalty_bound() const;
  /// The weight used when none is given: 1.01 penalty_bound() + 1e-6 scale + 1e-9. A weight not
  /// much above the bound keeps the landscape as rough as the objective's own: far larger weights
  /// make every move between feasible states a climb over w, which single-flip annealers cannot
  /// make.
  [[nodiscard]] double default_penalty_weight() const;
  /// The plain QUBO E(x) + sum_groups [w (s_g - k_g)^2 + shift_g (s_g - k_g)], without constraint
  /// groups, with metadata "penalty_weight" and "penalty_shifts" (comma separated). Equal to E on
  /// feasible points. w defaults to default_penalty_weight(), the shifts to penalty_terms().shifts
  /// (one per group when given); throws InvalidArgument if w < 0 or a shift is not finite.
  [[nodiscard]] QuboModel penalized(std::optional<double> weight = std::nullopt,
                                    const std::vector<double>& shifts = {}) const;

  /// Every coefficient and the offset times `factor` (finite, > 0): E_scaled = factor E. Labels,
  /// groups and metadata are kept.
  [[nodiscard]] QuboModel scaled(double factor) const;

  /// The model over the variables `free` (distinct, in that order) with every other variable
  /// fixed at its value in `reference`: E_sub(y) = E(reference with y put at `free`), the fixed
  /// part in the offset and the linear terms. Constraint groups keep their free variables, with k
  /// less the fixed ones that are 1 (groups without a free variable are dropped; a reference
  /// that leaves a group's k out of reach throws InvalidArgument). Labels and metadata are kept.
  [[nodiscard]] QuboModel restricted(const std::vector<int>& free,
                                     const Assignment& reference) const;

  /// Free-form string metadata (source file, instance, penalty weight, ...); formats that can hold
  /// it keep it.
  std::map<std::string, std::string> metadata;

 private:
  void check_assignment(const Assignment& x) const;
  void check_finite() const;

  Eigen::VectorXd linear_;
  double offset_ = 0.0;
  Storage storage_ = Storage::kSparse;
  std::int64_t num_couplings_ = 0;
  Eigen::MatrixXd dense_;                  // kDense: symmetric, zero diagonal
  std::vector<std::int64_t> row_offsets_;  // kSparse: symmetric CSR
  std::vector<int> columns_;
  std::vector<double> values_;
  std::vector<std::string> labels_;
  std::vector<CardinalityConstraint> constraints_;
};

template <class F>
void QuboModel::for_each_in_row(int i, F&& f) const {
  if (storage_ == Storage::kDense) {
    const int n = num_variables();
    for (int j = 0; j < n; ++j) {
      const double q = dense_(j, i);  // symmetric: column i is contiguous
      if (q != 0.0) f(j, q);
    }
  } else {
    for (std::int64_t p = row_offsets_[static_cast<std::size_t>(i)];
         p < row_offsets_[static_cast<std::size_t>(i) + 1]; ++p) {
      f(columns_[static_cast<std::size_t>(p)], values_[static_cast<std::size_t>(p)]);
    }
  }
}

template <class F>
void QuboModel::for_each_coupling(F&& f) const {
  const int n = num_variables();
  for (int i = 0; i < n; ++i) {
    for_each_in_row(i, [&](int j, double q) {
      if (j > i) f(i, j, q);
    });
  }
}

}  // namespace qprune
