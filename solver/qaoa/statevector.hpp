// Statevector engine of the qaoa solver: the cost diagonal, the QAOA layers (phase exp(-i gamma C)
// and mixer exp(-i beta B)), the adjoint gradient steps, expectations and sampling, in complex
// float or complex double.
//
// Two state spaces, each a policy type that carries the tables only it needs; the engine holds
// one of them and dispatches once per public call, the kernels below it being templated on (or
// overloaded for) the space:
//  - FullSpace: 2^n amplitudes, variable i = bit i of the basis index. The phase is applied from
//    factorised tables (C = E_high(h) + E_low(l) + sum_{i in l} f_i(h) for index h 2^L + l), so a
//    layer never reads the 2^n diagonal; with the plain X mixer a layer is one fused pass (phase
//    and mixing of the L low qubits inside an L2-sized block) plus ceil((n-L)/8) grouped passes for
//    the high qubits (kernels in layer_kernels.hpp). Constraint groups use XY mixers from Dicke
//    states in the same space.
//  - FeasibleSubspace: only the feasible amplitudes of the constraint groups: index = free bits +
//    2^f * (rank_1 + R_1 (rank_2 + ...)), each rank the combinatorial-number-system rank (colex
//    order) of the group's k-subset, so an XY pair rotation maps a rank to the rank with two bits
//    swapped.
//
// A mixer is a list of elementary rotations exp(-i beta G_k) applied in order; each G_k swaps the
// amplitudes of index pairs (u, v) (X_j: bit j; (X_iX_j + Y_iY_j)/2: |..1_i..0_j..> <->
// |..0_i..1_j..>), so the rotation is u' = cos(beta) u - i sin(beta) v, v' = cos(beta) v - i
// sin(beta) u.
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/qaoa/statevector.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <complex>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "qprune/qubo_model.hpp"

namespace qprune::detail::qaoa {

/// The cost in dense form: E(z) = offset + sum_i c_i z_i + sum_{i<j} q_ij z_i z_j.
struct CostTerms {
  int n = 0;
  Eigen::VectorXd linear;
  Eigen::MatrixXd couplings;  // symmetric, zero diagonal
  double offset = 0.0;
  /// The model's energy divided by `scale` (> 0).
  [[nodiscard]] static CostTerms from_model(const QuboModel& model, double scale = 1.0);
  /// E(z) of the assignment with variable i = bit i of z (n <= 64), term by term over set bits.
  [[nodiscard]] double energy(std::uint64_t z) const;
};

/// An "exactly k of these variables" group in the engine's terms.
struct Group {
  std::vector<int> variables;
  int k = 0;
};

enum class MixerKind { kX, kXyRing, kXyComplete };
/// The space chosen at run time (QaoaOptions::space); the engine turns it into FullSpace or
/// FeasibleSubspace once, in its constructor.
enum class SpaceKind { kFull, kSubspace };
/// Whether the engine stores the cost diagonal (8 bytes per amplitude) or, full space only,
/// recomputes energies block by block from the factorised tables (forward simulation of large n).
enum class DiagonalStorage { kStored, kFactorised };

/// 64-byte aligned, uninitialised storage (a state of 2^28 amplitudes must not be zero-filled
/// twice).
template <class T>
class AlignedArray {
 public:
  AlignedArray() = default;
  explicit AlignedArray(std::size_t size);
  [[nodiscard]] T* data() { return data_.get(); }
  [[nodiscard]] const T* data() const { return data_.get(); }
  [[nodiscard]] std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T[], Free> data_;
  std::size_t size_ = 0;
};

/// C(n, k) for n <= 64 (0 when k < 0 or k > n); saturates at 2^64 - 1.
[[nodiscard]] std::uint64_t binomial(int n, int k);

/// Number of amplitudes of the space (full: 2^n; subspace: 2^free * prod C(m_g, k_g)), as double
/// so that oversize requests can be reported rather than overflow.
[[nodiscard]] double space_dimension(int n, const std::vector<Group>& groups, SpaceKind space);

/// The elementary rotations of one mixer layer, in order: X on every variable outside the groups
/// (ascending), then per group the XY pairs: ring = even pairs (v0,v1),(v2,v3),..., odd pairs
/// (v1,v2),..., then the wrap pair (v_{m-1}, v0) when m > 2; complete = all pairs (a < b) in
/// lexicographic order. kX ignores the groups (every variable gets X).
struct Rotation {
  int i = 0;
  int j = -1;  ///< -1: X_i; else (X_iX_j + Y_iY_j)/2 (both in the same group)
};
[[nodiscard]] std::vector<Rotation> mixer_rotations(int n, const std::vector<Group>& groups,
                                                    MixerKind kind);

/// The full space's tables: index = h 2^low_bits + l; the phase comes from E_high(h) + E_low(l) +
/// sum_{i in l} f_i(h).
struct FullSpace {
  static constexpr SpaceKind kKind = SpaceKind::kFull;
  /// The mixer is exp(-i beta sum_j X_j) (no XY groups): layers take the fused block path.
  bool transverse_x = true;
  int low_bits = 0;
  std::vector<double> e_low;   // 2^L: energy of the low bits alone
  std::vector<double> e_high;  // 2^H: offset + energy of the high bits alone
  std::vector<double> field;   // 2^H x L: f_i(h) = sum_{j high} q_ij h_j
  struct GroupMask {
    std::uint64_t mask = 0;  // bits of the group's variables
    int k = 0;
  };
  std::vector<GroupMask> group_masks;  // every group, also under the X mixer (feasible())
  /// Bit of the index that holds variable v.
  [[nodiscard]] static int bit_of(int v) { return v; }
  [[nodiscard]] bool feasible(std::uint64_t index) const;
};

/// The feasible subspace's layout: free variables in the low bits, then one mixed-radix digit per
/// group (the colex rank of its k-subset).
struct FeasibleSubspace {
  static constexpr SpaceKind kKind = SpaceKind::kSubspace;
  std::vector<int> free_vars;               // bit b of the index -> variable free_vars[b]
  std::vector<std::uint64_t> group_size;    // C(m_g, k_g)
  std::vector<std::uint64_t> group_stride;  // 2^f prod_{g' < g} R_g'
  std::vector<int> var_group;               // variable -> its group, -1 when free
  std::vector<int> var_pos;                 // variable -> position in its group / free bit
  [[nodiscard]] int bit_of(int v) const { return var_pos[static_cast<std::size_t>(v)]; }
  [[nodiscard]] static constexpr bool feasible(std::uint64_t) { return true; }
};

template <class Real>
class Engine {
 public:
  using Complex = std::complex<Real>;

  /// Builds the cost diagonal once (parallel). Groups are used for the initial state and mixer
  /// unless `mixer` is kX; the subspace space needs groups with XY mixers and n <= 64. Throws
  /// ResourceError before allocating when the diagonal and `num_states` states do not fit:
  /// dimension() x (8 bytes with the stored diagonal + num_states x sizeof(Complex)) bytes against
  /// `memory_limit_bytes` (default: MemAvailable, see core/memory_check.hpp).
  /// DiagonalStorage::kFactorised (full space only; the subspace always stores it) saves its 8
  /// bytes per amplitude for forward simulation: layers, the initial state, sampling and moments()
  /// (energies recomputed block by block from the factorised tables) work; diagonal(),
  /// apply_cost, phase_adjoint, diagonal_range and probability_at need the stored diagonal.
  Engine(const CostTerms& cost, std::vector<Group> groups, MixerKind mixer, SpaceKind space,
         int num_states = 1, DiagonalStorage diagonal = DiagonalStorage::kStored,
         std::optional<std::uint64_t> memory_limit_bytes = std::nullopt);

  [[nodiscard]] std::uint64_t dimension() const { return dim_; }
  [[nodiscard]] SpaceKind space() const {
    return with_space([](const auto& space) { return std::decay_t<decltype(space)>::kKind; });
  }
  [[nodiscard]] const AlignedArray<double>& diagonal() const { return diag_; }
  /// Seconds to fill the cost diagonal (its pages already faulted in, see first_touch_time_s).
  [[nodiscard]] double diagonal_time_s() const { return diagonal_time_s_; }
  /// Seconds of the parallel first touch of the diagonal's pages (page faults, kernel zeroing).
  [[nodiscard]] double first_touch_time_s() const { return first_touch_time_s_; }
  /// Bytes of one state vector.
  [[nodiscard]] double state_bytes() const { return static_cast<double>(dim_) * sizeof(Complex); }
  [[nodiscard]] AlignedArray<Complex> make_state() const { return AlignedArray<Complex>(dim_); }

  /// |+>^n, or the product of Dicke states |D^m_k> (groups) and |+> (other variables).
  void initial_state(Complex* psi) const;
  /// Phase then mixer (one fused pass plus grouped passes with the plain X mixer in full space).
  void layer(Complex* psi, double gamma, double beta) const;
  /// The inverse of layer(gamma, beta).
  void layer_inverse(Complex* psi, double gamma, double beta) const;
  void phase(Complex* psi, double gamma) const;
  void mixer(Complex* psi, double beta) const;

  /// Adjoint step over the mixer of one layer: returns d<C>/dbeta contribution
  /// 2 Im <lam| dU U^-1 |psi> summed over the rotations, and applies the inverse mixer to both.
  double mixer_adjoint(Complex* psi, Complex* lam, double beta) const;
  /// 2 Im <lam|C|psi>, then the inverse phase on both.
  double phase_adjoint(Complex* psi, Complex* lam, double gamma) const;
  /// out = C psi.
  void apply_cost(const Complex* psi, Complex* out) const;
  /// Re <a|b>.
  [[nodiscard]] double real_inner(const Complex* a, const Complex* b) const;

  struct Moments {
    double norm = 0.0;    // sum |psi|^2
    double mean = 0.0;    // <C>
    double second = 0.0;  // <C^2>
  };
  [[nodiscard]] Moments moments(const Complex* psi) const;

  /// Minimum and maximum of the diagonal over the space's feasible states.
  [[nodiscard]] std::pair<double, double> diagonal_range() const;
  /// Probability mass on feasible states (1 in the subspace and with XY mixers up to rounding).
  [[nodiscard]] double feasible_probability(const Complex* psi) const;
  /// Probability mass on feasible states whose diagonal is within `tol` of `value`.
  [[nodiscard]] double probability_at(const Complex* psi, double value, double tol) const;
  /// `shots` indices drawn from |psi|^2 (normalised), reproducible from `seed`: sorted uniforms
  /// swept once over the cumulative distribution.
  [[nodiscard]] std::vector<std::uint64_t> sample(const Complex* psi, int shots,
                                                  std::uint64_t seed) const;
  /// Assignment of the basis index (model variable i = bit i of the result).
  [[nodiscard]] std::uint64_t decode(std::uint64_t index) const;
  /// True when the basis index satisfies every group.
  [[nodiscard]] bool feasible(std::uint64_t index) const;

 private:
  /// What the fused full-space block pass does to the block's low qubits besides the phase.
  enum class BlockMix {
    kPhaseOnly,     // the phase alone
    kMixThenPhase,  // rotate the low qubits, then the phase (the inverse layer, a bare mixer)
    kPhaseThenMix,  // the phase, then the low qubits (a layer)
  };
  /// Where block_energies writes: through the cache (a scratch row read right back) or with
  /// non-temporal stores (the stored diagonal, read one layer later).
  enum class Stores { kCached, kStreaming };

  /// f(space) with the engine's space as its policy type: the one dispatch of a public call.
  template <class F>
  decltype(auto) with_space(F&& f) const {
    return std::visit(std::forward<F>(f), space_);
  }
  /// The space's tables, and the stored diagonal when there is one (constructor only).
  [[nodiscard]] FullSpace build_full_tables(const CostTerms& cost);
  [[nodiscard]] FeasibleSubspace build_subspace(const CostTerms& cost);
  /// Energies of the full-space block h (2^L entries) into out; work holds 2^L + 2 doubles.
  void block_energies(const FullSpace& space, std::size_t h, double* out, double* work,
                      Stores stores) const;
  /// Throws InvalidArgument naming `what` when the diagonal was not stored.
  void require_diagonal(const char* what) const;

  template <class Space>
  void phase_in(const Space& space, Complex* psi, double gamma) const;
  template <class Space>
  void mixer_in(const Space& space, Complex* psi, double beta) const;
  template <class Space>
  [[nodiscard]] double mixer_adjoint_in(const Space& space, Complex* psi, Complex* lam,
                                        double beta) const;
  template <class Space>
  [[nodiscard]] std::uint64_t decode_in(const Space& space, std::uint64_t index) const;

  /// The fused full-space pass: per block of 2^L amplitudes the phase exp(-i gamma C) and, as
  /// `mix` says, the rotation exp(-i beta X) of its L low qubits.
  void phase_blocks(const FullSpace& space, Complex* psi, double gamma, BlockMix mix,
                    double beta) const;
  void high_passes(const FullSpace& space, Complex* psi, double beta) const;
  /// Sum over every tile of the grouped high-qubit passes, in pass order, each pass in parallel
  /// (indices in amplitudes), of tile(first, stride, g, len) (a double, or void for nothing);
  /// each thread's share added up over the passes, then the threads in order.
  template <class Tile>
  double for_each_high_tile(const FullSpace& space, Tile&& tile) const;
  /// Im <lam| sum_j X_j |psi> (full space), in 1 + ceil((n - L) / 8) trips over the states.
  [[nodiscard]] double x_mixer_imag(const FullSpace& space, const Complex* lam,
                                    const Complex* psi) const;
  /// visit(u, v, len) for the runs of index pairs of rotation r, in parallel; returns the sum of
  /// visit's results when it returns a double (per thread in run order, then the threads in
  /// order), else 0.
  template <class Space, class Visit>
  double for_each_run(const Space& space, const Rotation& r, Visit&& visit) const;
  template <class Space>
  void rotate(const Space& space, Complex* psi, const Rotation& r, double beta) const;

  int n_ = 0;
  std::vector<Group> groups_;
  std::vector<Rotation> rotations_;
  std::uint64_t dim_ = 0;
  AlignedArray<double> diag_;
  double diagonal_time_s_ = 0.0;
  double first_touch_time_s_ = 0.0;
  DiagonalStorage diagonal_storage_ = DiagonalStorage::kStored;
  std::variant<FullSpace, FeasibleSubspace> space_;
};

extern template class Engine<float>;
extern template class Engine<double>;

}  // namespace qprune::detail::qaoa
