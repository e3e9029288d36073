// The statevector engine of statevector.hpp. The layer's hot loops (phase and low qubits of a
// block, the grouped high-qubit passes) are in layer_kernels.cpp, built per instruction set; the
// other loops here (the phase without mixing for small blocks, adjoint terms, the diagonal) are
// plain functions over float/double arrays cloned for AVX-512, AVX2 and the baseline
// (target_clones), so a default build still gets wide vectors. Everything else is templated on
// the precision and explicitly instantiated for float and double at the end; below the public
// calls, on the space (FullSpace / FeasibleSubspace), each public call visiting the engine's space
// once. Every parallel loop goes through core/parallel_for.hpp (static schedule, the
// state's size as the threshold): sums per thread in index order, then the threads in order.
#include "solver/qaoa/statevector.hpp"

#include <sys/mman.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <new>
#include <numeric>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/binomial.hpp"
#include "core/memory_check.hpp"
#include "core/parallel_for.hpp"
#include "core/rng.hpp"
#include "qprune/error.hpp"
#include "solver/common/stopwatch.hpp"
#include "solver/qaoa/layer_kernels.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define QPRUNE_QAOA_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define QPRUNE_QAOA_CLONES
#endif

namespace qprune::detail::qaoa {
namespace {

using u64 = std::uint64_t;

// Low qubits mixed inside one block: 2^12 complex doubles = 64 KiB, well inside L2, so the 12
// butterfly stages of a block cost one trip to memory.
constexpr int kLowBits = 12;
// High qubits per grouped pass: 2^8 rows of a chunk stay in L2 while 8 stages run on them.
constexpr int kHighGroup = 8;
// Below this many amplitudes a pass runs on one thread: a parallel region costs more than the
// work, and far more when other processes hold the cores.
constexpr std::uint64_t kParallelMin = std::uint64_t{1} << 15;
// The threshold of every loop over a state of `dim` amplitudes, whatever its iterations (single
// amplitudes, blocks, tiles, runs of a rotation): the work is the state's size.
LoopSize state_loop(std::uint64_t dim) {
  return {static_cast<std::int64_t>(dim), static_cast<std::int64_t>(kParallelMin)};
}
// Bytes of one grouped-pass tile (2^g rows x chunk).
constexpr std::size_t kTileBytes = std::size_t{512} << 10;

// ---- kernels -------------------------------------------------------------------------------

// (u, v) <- (c u - i s v, c v - i s u) on `len` complex numbers stored as (re, im) pairs.
template <class R>
[[gnu::always_inline]] inline void rotate_pair_runs(R* __restrict u, R* __restrict v,
                                                    std::size_t len, R c, R s) {
  for (std::size_t k = 0; k < 2 * len; k += 2) {
    const R ur = u[k], ui = u[k + 1], vr = v[k], vi = v[k + 1];
    u[k] = c * ur + s * vi;
    u[k + 1] = c * ui - s * vr;
    v[k] = c * vr + s * ui;
    v[k + 1] = c * vi - s * ur;
  }
}

// psi[l] *= a[l >> lo_bits] * b[l & lo_mask] * p[l] for one block (all tables complex double).
template <class R>
[[gnu::always_inline]] inline void phase_block_impl(R* __restrict psi, const double* __restrict a,
                                                    const double* __restrict b,
                                                    const double* __restrict p, int bits,
                                                    int lo_bits, double* __restrict t) {
  const std::size_t lo_size = std::size_t{1} << lo_bits;
  const std::size_t hi_size = std::size_t{1} << (bits - lo_bits);
  for (std::size_t hi = 0; hi < hi_size; ++hi) {
    const double ar = a[2 * hi], ai = a[2 * hi + 1];
    for (std::size_t lo = 0; lo < lo_size; ++lo) {
      const double br = b[2 * lo], bi = b[2 * lo + 1];
      const double pr = p[2 * (hi * lo_size + lo)], pi = p[2 * (hi * lo_size + lo) + 1];
      const double xr = ar * br - ai * bi, xi = ar * bi + ai * br;
      t[2 * lo] = xr * pr - xi * pi;
      t[2 * lo + 1] = xr * pi + xi * pr;
    }
    R* row = psi + 2 * hi * lo_size;
    for (std::size_t lo = 0; lo < lo_size; ++lo) {
      const double zr = static_cast<double>(row[2 * lo]), zi = static_cast<double>(row[2 * lo + 1]);
      row[2 * lo] = static_cast<R>(zr * t[2 * lo] - zi * t[2 * lo + 1]);
      row[2 * lo + 1] = static_cast<R>(zr * t[2 * lo + 1] + zi * t[2 * lo]);
    }
  }
}

// sum_k Im(conj(lu_k) pv_k + conj(lv_k) pu_k) over `len` complex numbers: the pair part of
// Im <lam|G|psi>, accumulated in double.
template <class R>
[[gnu::always_inline]] inline double imag_pairs_impl(const R* __restrict lu, const R* __restrict lv,
                                                     const R* __restrict pu, const R* __restrict pv,
                                                     std::size_t len) {
  double acc = 0.0;
  for (std::size_t k = 0; k < 2 * len; k += 2) {
    acc += static_cast<double>(lu[k] * pv[k + 1] - lu[k + 1] * pv[k] + lv[k] * pu[k + 1] -
                               lv[k + 1] * pu[k]);
  }
  return acc;
}

// One adjoint step of a pair rotation on a run: the generator term at the current states, then
// the rotation (c, s) on both, in one trip over the four runs instead of three passes.
template <class R>
[[gnu::always_inline]] inline double adjoint_pairs_impl(R* __restrict pu, R* __restrict pv,
                                                        R* __restrict lu, R* __restrict lv,
                                                        std::size_t len, R c, R s) {
  const double acc = imag_pairs_impl(lu, lv, pu, pv, len);
  rotate_pair_runs(pu, pv, len, c, s);
  rotate_pair_runs(lu, lv, len, c, s);
  return acc;
}

QPRUNE_QAOA_CLONES double adjoint_pairs(float* pu, float* pv, float* lu, float* lv, std::size_t len,
                                        float c, float s) {
  return adjoint_pairs_impl(pu, pv, lu, lv, len, c, s);
}
QPRUNE_QAOA_CLONES double adjoint_pairs(double* pu, double* pv, double* lu, double* lv,
                                        std::size_t len, double c, double s) {
  return adjoint_pairs_impl(pu, pv, lu, lv, len, c, s);
}

// out[l1 size0 + l0] = e_low[..] + a[l1] + b[l0] for one block of the cost diagonal.
QPRUNE_QAOA_CLONES void fill_diagonal_block(double* __restrict out, const double* __restrict e_low,
                                            const double* __restrict a, const double* __restrict b,
                                            std::size_t size1, std::size_t size0) {
  for (std::size_t l1 = 0; l1 < size1; ++l1) {
    const double al = a[l1];
    double* row = out + l1 * size0;
    const double* e = e_low + l1 * size0;
    for (std::size_t l0 = 0; l0 < size0; ++l0) row[l0] = e[l0] + al + b[l0];
  }
}

// The same with non-temporal stores, for the stored diagonal: written once per problem and read
// one layer later, so it need not pass through the cache, and the stores skip the read that a
// normal store of a missing line makes (a third of the traffic). Rows of a multiple of 4 doubles
// starting on 32-byte boundaries; 32-byte stores already fill whole lines in the write-combining
// buffers, so AVX-512 machines use the same code.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx"))) void fill_diagonal_block_avx_stream(
    double* __restrict out, const double* __restrict e_low, const double* __restrict a,
    const double* __restrict b, std::size_t size1, std::size_t size0) {
  for (std::size_t l1 = 0; l1 < size1; ++l1) {
    const __m256d al = _mm256_set1_pd(a[l1]);
    for (std::size_t l0 = 0; l0 < size0; l0 += 4) {
      const __m256d x = _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(e_low + l1 * size0 + l0), al),
                                      _mm256_loadu_pd(b + l0));
      _mm256_stream_pd(out + l1 * size0 + l0, x);
    }
  }
  _mm_sfence();
}
#endif

void fill_diagonal_block_stream(double* out, const double* e_low, const double* a, const double* b,
                                std::size_t size1, std::size_t size0) {
#if defined(__x86_64__) && defined(__GNUC__)
  const bool aligned = reinterpret_cast<std::uintptr_t>(out) % 32 == 0 && size0 % 4 == 0;
  if (aligned && kernel_isa() != KernelIsa::kGeneric)
    return fill_diagonal_block_avx_stream(out, e_low, a, b, size1, size0);
#endif
  fill_diagonal_block(out, e_low, a, b, size1, size0);
}

QPRUNE_QAOA_CLONES void phase_block(float* psi, const double* a, const double* b, const double* p,
                                    int bits, int lo_bits, double* t) {
  phase_block_impl(psi, a, b, p, bits, lo_bits, t);
}
QPRUNE_QAOA_CLONES void phase_block(double* psi, const double* a, const double* b, const double* p,
                                    int bits, int lo_bits, double* t) {
  phase_block_impl(psi, a, b, p, bits, lo_bits, t);
}
QPRUNE_QAOA_CLONES void rotate_runs(float* u, float* v, std::size_t len, float c, float s) {
  rotate_pair_runs(u, v, len, c, s);
}
QPRUNE_QAOA_CLONES void rotate_runs(double* u, double* v, std::size_t len, double c, double s) {
  rotate_pair_runs(u, v, len, c, s);
}

// Writes one byte per 4 KiB page, in parallel, so that the page faults (and the kernel's zeroing)
// of a fresh array are spread over the threads and timed apart from the work that fills it.
void touch_pages(void* data, std::size_t bytes) {
  auto* p = static_cast<unsigned char*>(data);
  const std::int64_t pages = static_cast<std::int64_t>((bytes + 4095) / 4096);
  parallel_for_static(
      pages, [&](std::int64_t i) { p[static_cast<std::size_t>(i) * 4096] = 0; },
      LoopSize{static_cast<std::int64_t>(bytes), std::int64_t{1} << 22});
}

// ---- combinatorial number system ------------------------------------------------------------

// The coefficients come from core/binomial.hpp's table (looked up per amplitude below).
const BinomialTable& binomials() { return binomial_table(); }

// Rank of a k-subset (bit mask) in colex order: sum_t C(c_t, t + 1) over its sorted elements.
u64 rank_of(u64 mask) {
  const auto& b = binomials();
  u64 r = 0;
  int t = 1;
  while (mask != 0) {
    r += b.c[std::countr_zero(mask)][t++];
    mask &= mask - 1;
  }
  return r;
}

u64 unrank(u64 r, int m, int k) {
  const auto& b = binomials();
  u64 mask = 0;
  int c = m - 1;
  for (int t = k; t >= 1; --t) {
    while (b.c[c][t] > r) --c;
    mask |= u64{1} << c;
    r -= b.c[c][t];
    --c;
  }
  return mask;
}

// Next k-subset in colex order (Gosper's hack); mask != 0. The shift is split in two so that it
// stays defined (< 64) when v's lowest set bit is bit 63.
u64 next_subset(u64 v) {
  const u64 t = v | (v - 1);
  return (t + 1) | ((((~t & (t + 1)) - 1) >> std::countr_zero(v)) >> 1);
}

// acc += f() when f returns a value (a gradient term), a plain call when it returns nothing (a
// rotation), so one loop skeleton serves both.
template <class F>
[[gnu::always_inline]] inline void add_result(double& acc, F&& f) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
    f();
  } else {
    acc += f();
  }
}

// Sum of what task(t, acc) adds into acc over tasks [0, tasks) of a loop over a state of `dim`
// amplitudes: a static reduction, per thread in task order, then the threads in order.
template <class Task>
double reduce_tasks(std::int64_t tasks, Task&& task, std::uint64_t dim) {
  return parallel_reduce(
      tasks, 0.0, std::forward<Task>(task), [](double& total, double part) { total += part; },
      state_loop(dim));
}

template <class C>
void polar_table(const double* energies, std::size_t count, double gamma, C* out) {
  for (std::size_t i = 0; i < count; ++i) {
    out[2 * i] = std::cos(gamma * energies[i]);
    out[2 * i + 1] = -std::sin(gamma * energies[i]);
  }
}

}  // namespace

// ---- small helpers ----------------------------------------------------------------------------

template <class T>
AlignedArray<T>::AlignedArray(std::size_t size) : size_(size) {
  const std::size_t bytes = std::max<std::size_t>(size * sizeof(T), 64);
  // Large arrays on 2 MiB boundaries with transparent huge pages: fewer page faults on first touch
  // and fewer TLB misses in the strided high-qubit passes.
  const std::size_t align = bytes >= (std::size_t{1} << 24) ? (std::size_t{1} << 21) : 64;
  const std::size_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr)
    throw out_of_memory("a qaoa statevector array of " + std::to_string(size) + " entries",
                        double(rounded));
#ifdef MADV_HUGEPAGE
  if (align > 64) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
  data_.reset(static_cast<T*>(p));
}

std::uint64_t binomial(int n, int k) {
  if (k < 0 || n < 0 || k > n || n > 64) return 0;
  return binomials().c[n][k];
}

double space_dimension(int n, const std::vector<Group>& groups, SpaceKind space) {
  if (space == SpaceKind::kFull) return std::ldexp(1.0, n);
  int free = n;
  double dim = 1.0;
  for (const Group& g : groups) {
    free -= static_cast<int>(g.variables.size());
    // C(m, k) in double through lgamma: the exact table stops at m = 64, and a layer of hundreds
    // of units must come out huge (so the solver decomposes it), never 0.
    const double m = static_cast<double>(g.variables.size()), k = g.k;
    dim *= std::round(std::exp(std::lgamma(m + 1) - std::lgamma(k + 1) - std::lgamma(m - k + 1)));
  }
  return dim * std::ldexp(1.0, free);
}

CostTerms CostTerms::from_model(const QuboModel& model, double scale) {
  CostTerms t;
  t.n = model.num_variables();
  t.linear = model.linear() / scale;
  t.couplings = Eigen::MatrixXd::Zero(t.n, t.n);
  model.for_each_coupling([&](int i, int j, double q) {
    t.couplings(i, j) = q / scale;
    t.couplings(j, i) = q / scale;
  });
  t.offset = model.offset() / scale;
  return t;
}

double CostTerms::energy(std::uint64_t z) const {
  double e = offset;
  for (u64 a = z; a != 0; a &= a - 1) {
    const int i = std::countr_zero(a);
    e += linear[i];
    for (u64 b = z & ((u64{1} << i) - 1); b != 0; b &= b - 1)
      e += couplings(std::countr_zero(b), i);
  }
  return e;
}

std::vector<Rotation> mixer_rotations(int n, const std::vector<Group>& groups, MixerKind kind) {
  std::vector<Rotation> out;
  std::vector<char> grouped(static_cast<std::size_t>(n), 0);
  if (kind != MixerKind::kX) {
    for (const Group& g : groups)
      for (int v : g.variables) grouped[static_cast<std::size_t>(v)] = 1;
  }
  for (int i = 0; i < n; ++i)
    if (!grouped[static_cast<std::size_t>(i)]) out.push_back({i, -1});
  if (kind == MixerKind::kX) return out;
  for (const Group& g : groups) {
    const auto& v = g.variables;
    const int m = static_cast<int>(v.size());
    const auto at = [&](int a) { return v[static_cast<std::size_t>(a)]; };
    if (kind == MixerKind::kXyRing) {
      for (int a = 0; a + 1 < m; a += 2) out.push_back({at(a), at(a + 1)});
      for (int a = 1; a + 1 < m; a += 2) out.push_back({at(a), at(a + 1)});
      if (m > 2) out.push_back({at(m - 1), at(0)});
    } else {
      for (int a = 0; a < m; ++a)
        for (int b = a + 1; b < m; ++b) out.push_back({at(a), at(b)});
    }
  }
  return out;
}

template <class Real>
void Engine<Real>::require_diagonal(const char* what) const {
  if (diagonal_storage_ != DiagonalStorage::kStored)
    throw InvalidArgument(
        std::string("qaoa engine: ") + what +
        " needs the stored cost diagonal (built with DiagonalStorage::kFactorised)");
}

// ---- engine construction -------------------------------------------------------------------

template <class Real>
Engine<Real>::Engine(const CostTerms& cost, std::vector<Group> groups, MixerKind mixer,
                     SpaceKind space, int num_states, DiagonalStorage diagonal,
                     std::optional<std::uint64_t> memory_limit_bytes)
    : n_(cost.n), groups_(std::move(groups)) {
  rotations_ = mixer_rotations(n_, groups_, mixer);
  const bool transverse_x = mixer == MixerKind::kX || groups_.empty();
  if (space == SpaceKind::kSubspace && (transverse_x || n_ > 64)) {
    throw InvalidArgument(
        "qaoa subspace mode needs constraint groups with an XY mixer and n <= 64");
  }
  const double dim = space_dimension(n_, transverse_x ? std::vector<Group>{} : groups_, space);
  diagonal_storage_ = space == SpaceKind::kSubspace ? DiagonalStorage::kStored : diagonal;
  const bool stored = diagonal_storage_ == DiagonalStorage::kStored;
  const double bytes =
      dim * ((stored ? 8.0 : 0.0) + static_cast<double>(num_states) * sizeof(Complex));
  if (space == SpaceKind::kFull && n_ > 40) {
    throw ResourceError("qaoa full statevector of " + std::to_string(n_) + " qubits needs " +
                        std::to_string(bytes_to_gib(bytes)) + " GiB; the limit is 40 qubits");
  }
  if (dim > 0x1p46)
    throw ResourceError("qaoa state space of " + std::to_string(dim) + " amplitudes is too large");
  check_memory(bytes,
               "qaoa statevector (" + std::to_string(static_cast<u64>(dim)) + " amplitudes x " +
                   std::to_string(num_states) + " states + diagonal)",
               "use fewer qubits (QaoaOptions::max_qubits selects the decomposition), float "
               "precision or the subspace mode",
               memory_limit_bytes);
  dim_ = static_cast<u64>(dim);
  Stopwatch touch_watch;
  if (stored) {
    diag_ = AlignedArray<double>(dim_);
    touch_pages(diag_.data(), dim_ * sizeof(double));
  }
  first_touch_time_s_ = touch_watch.elapsed_s();
  Stopwatch watch;
  if (space == SpaceKind::kFull) {
    FullSpace full = build_full_tables(cost);
    full.transverse_x = transverse_x;
    space_ = std::move(full);
  } else {
    space_ = build_subspace(cost);
  }
  diagonal_time_s_ = watch.elapsed_s();
}

template <class Real>
FullSpace Engine<Real>::build_full_tables(const CostTerms& cost) {
  FullSpace space;
  for (const Group& g : groups_) {
    u64 mask = 0;
    for (int v : g.variables) mask |= u64{1} << v;
    space.group_masks.push_back({mask, g.k});
  }
  const int L = std::min(n_, kLowBits);
  const int H = n_ - L;
  space.low_bits = L;
  const std::size_t low_size = std::size_t{1} << L, high_size = std::size_t{1} << H;
  std::vector<double>& e_low = space.e_low;
  std::vector<double>& e_high = space.e_high;
  std::vector<double>& field = space.field;
  e_low.assign(low_size, 0.0);
  for (std::size_t l = 1; l < low_size; ++l) {
    // E_low(l) = E_low(l without its top bit i) + c_i + sum_{j in rest} q_ij.
    const int i = 63 - std::countl_zero(static_cast<u64>(l));
    const u64 rest = l & ~(u64{1} << i);
    double e = e_low[rest] + cost.linear[i];
    for (u64 b = rest; b != 0; b &= b - 1) e += cost.couplings(std::countr_zero(b), i);
    e_low[l] = e;
  }
  e_high.assign(high_size, cost.offset);
  field.assign(high_size * static_cast<std::size_t>(L), 0.0);
  for (std::size_t h = 1; h < high_size; ++h) {
    const int i = 63 - std::countl_zero(static_cast<u64>(h));
    const u64 rest = h & ~(u64{1} << i);
    const int vi = L + i;
    double e = e_high[rest] + cost.linear[vi];
    for (u64 b = rest; b != 0; b &= b - 1) e += cost.couplings(L + std::countr_zero(b), vi);
    e_high[h] = e;
    for (int j = 0; j < L; ++j) {
      field[h * static_cast<std::size_t>(L) + static_cast<std::size_t>(j)] =
          field[rest * static_cast<std::size_t>(L) + static_cast<std::size_t>(j)] +
          cost.couplings(j, vi);
    }
  }
  if (diagonal_storage_ != DiagonalStorage::kStored) return space;
  double* diag = diag_.data();
  (void)parallel_for_local(
      static_cast<std::int64_t>(high_size), [&] { return std::vector<double>(low_size + 2); },
      [&](std::int64_t hb, std::vector<double>& work) {
        block_energies(space, static_cast<std::size_t>(hb),
                       diag + static_cast<std::size_t>(hb) * low_size, work.data(),
                       Stores::kStreaming);
      },
      state_loop(dim_));
  return space;
}

template <class Real>
void Engine<Real>::block_energies(const FullSpace& space, std::size_t h, double* out, double* work,
                                  Stores stores) const {
  // C(h 2^L + l) = E_high(h) + E_low(l) + X_h(l), X_h(l) = sum_{i in l} f_i(h) linear in l. With
  // l = l1 2^L0 + l0 the cross term splits again, X_h(l) = A_h(l1) + B_h(l0), two tables of
  // 2^(L/2) entries, so each entry is E_low(l) + (E_high(h) + A_h(l1)) + B_h(l0): adds over
  // contiguous rows that vectorise, one streaming write of the block.
  const int L = space.low_bits, L0 = L / 2;
  const std::size_t size0 = std::size_t{1} << L0, size1 = std::size_t{1} << (L - L0);
  double* a = work;
  double* b = work + size1;
  const double* f = space.field.data() + h * static_cast<std::size_t>(L);
  b[0] = 0.0;
  for (std::size_t x = 1; x < size0; ++x) b[x] = b[x & (x - 1)] + f[std::countr_zero(x)];
  a[0] = space.e_high[h];
  for (std::size_t x = 1; x < size1; ++x)
    a[x] = a[x & (x - 1)] + f[static_cast<std::size_t>(L0 + std::countr_zero(x))];
  if (stores == Stores::kStreaming) {
    fill_diagonal_block_stream(out, space.e_low.data(), a, b, size1, size0);
  } else {
    fill_diagonal_block(out, space.e_low.data(), a, b, size1, size0);
  }
}

template <class Real>
FeasibleSubspace Engine<Real>::build_subspace(const CostTerms& cost) {
  FeasibleSubspace space;
  space.var_group.assign(static_cast<std::size_t>(n_), -1);
  space.var_pos.assign(static_cast<std::size_t>(n_), -1);
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t a = 0; a < groups_[g].variables.size(); ++a) {
      space.var_group[static_cast<std::size_t>(groups_[g].variables[a])] = static_cast<int>(g);
      space.var_pos[static_cast<std::size_t>(groups_[g].variables[a])] = static_cast<int>(a);
    }
  }
  std::vector<int>& free_vars = space.free_vars;
  for (int i = 0; i < n_; ++i)
    if (space.var_group[static_cast<std::size_t>(i)] < 0) {
      space.var_pos[static_cast<std::size_t>(i)] = static_cast<int>(free_vars.size());
      free_vars.push_back(i);
    }
  u64 stride = u64{1} << free_vars.size();
  const std::vector<u64>& group_size = space.group_size;
  for (const Group& g : groups_) {
    space.group_stride.push_back(stride);
    space.group_size.push_back(binomial(static_cast<int>(g.variables.size()), g.k));
    stride *= space.group_size.back();
  }
  // Each chunk decodes its first index, then steps like an odometer (Gosper's hack per group).
  const u64 chunk = 1 << 14;
  const std::int64_t chunks = static_cast<std::int64_t>((dim_ + chunk - 1) / chunk);
  const std::size_t G = groups_.size();
  const u64 free_size = u64{1} << free_vars.size();
  parallel_for_static(
      chunks,
      [&](std::int64_t c) {
        const u64 begin = static_cast<u64>(c) * chunk, end = std::min(dim_, begin + chunk);
        u64 free = begin % free_size;
        std::vector<u64> rank(G), local(G);
        u64 rest = begin / free_size;
        for (std::size_t g = 0; g < G; ++g) {
          rank[g] = rest % group_size[g];
          rest /= group_size[g];
          local[g] = unrank(rank[g], static_cast<int>(groups_[g].variables.size()), groups_[g].k);
        }
        for (u64 idx = begin; idx < end; ++idx) {
          u64 z = 0;
          for (u64 b = free; b != 0; b &= b - 1)
            z |= u64{1} << free_vars[static_cast<std::size_t>(std::countr_zero(b))];
          for (std::size_t g = 0; g < G; ++g)
            for (u64 b = local[g]; b != 0; b &= b - 1)
              z |= u64{1} << groups_[g].variables[static_cast<std::size_t>(std::countr_zero(b))];
          diag_[idx] = cost.energy(z);
          if (++free < free_size) continue;
          free = 0;
          for (std::size_t g = 0; g < G; ++g) {
            if (++rank[g] < group_size[g]) {
              local[g] = next_subset(local[g]);
              break;
            }
            rank[g] = 0;
            local[g] = unrank(0, static_cast<int>(groups_[g].variables.size()), groups_[g].k);
          }
        }
      },
      state_loop(dim_));
  return space;
}

// ---- state preparation and decoding ---------------------------------------------------------

bool FullSpace::feasible(std::uint64_t index) const {
  for (const GroupMask& g : group_masks)
    if (std::popcount(index & g.mask) != g.k) return false;
  return true;
}

template <class Real>
void Engine<Real>::initial_state(Complex* psi) const {
  const std::int64_t dim = static_cast<std::int64_t>(dim_);
  with_space([&](const auto& space) {
    if constexpr (std::is_same_v<std::decay_t<decltype(space)>, FullSpace>) {
      if (!space.transverse_x) {
        // XY groups in the full space: the product of Dicke states and |+>, on feasible states.
        double count = 1.0;
        int free = n_;
        for (const Group& g : groups_) {
          count *= static_cast<double>(binomial(static_cast<int>(g.variables.size()), g.k));
          free -= static_cast<int>(g.variables.size());
        }
        count *= std::ldexp(1.0, free);
        const Real a = static_cast<Real>(1.0 / std::sqrt(count));
        parallel_for_static(
            dim,
            [&](std::int64_t z) {
              psi[z] = Complex(space.feasible(static_cast<u64>(z)) ? a : Real(0), 0);
            },
            state_loop(dim_));
        return;
      }
    }
    // Every index of the space holds a state of the initial superposition.
    const Real a = static_cast<Real>(1.0 / std::sqrt(static_cast<double>(dim_)));
    parallel_for_static(
        dim, [&](std::int64_t z) { psi[z] = Complex(a, 0); }, state_loop(dim_));
  });
}

template <class Real>
bool Engine<Real>::feasible(std::uint64_t index) const {
  return with_space([&](const auto& space) { return space.feasible(index); });
}

template <class Real>
std::uint64_t Engine<Real>::decode(std::uint64_t index) const {
  return with_space([&](const auto& space) { return decode_in(space, index); });
}

template <class Real>
template <class Space>
std::uint64_t Engine<Real>::decode_in(const Space& space, std::uint64_t index) const {
  if constexpr (std::is_same_v<Space, FullSpace>) {
    return index;
  } else {
    const u64 free_size = u64{1} << space.free_vars.size();
    u64 z = 0;
    for (u64 b = index % free_size; b != 0; b &= b - 1)
      z |= u64{1} << space.free_vars[static_cast<std::size_t>(std::countr_zero(b))];
    u64 rest = index / free_size;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const u64 local = unrank(rest % space.group_size[g],
                               static_cast<int>(groups_[g].variables.size()), groups_[g].k);
      rest /= space.group_size[g];
      for (u64 b = local; b != 0; b &= b - 1)
        z |= u64{1} << groups_[g].variables[static_cast<std::size_t>(std::countr_zero(b))];
    }
    return z;
  }
}

// ---- layers -------------------------------------------------------------------------------

template <class Real>
void Engine<Real>::phase_blocks(const FullSpace& space, Complex* psi, double gamma, BlockMix mix,
                                double beta) const {
  const int L = space.low_bits;
  const int lo_bits = L / 2;
  const std::size_t low_size = std::size_t{1} << L;
  const std::int64_t blocks = static_cast<std::int64_t>(dim_ >> L);
  std::vector<double> p(2 * low_size);
  polar_table(space.e_low.data(), low_size, gamma, p.data());
  const bool do_phase = gamma != 0.0;
  const bool mix_first = mix == BlockMix::kMixThenPhase;
  const bool mix_after = mix == BlockMix::kPhaseThenMix;
  // The kernels leave out one complex factor per qubit (layer_kernels.hpp); the factor of all n
  // qubits (the high passes' too, which always follow or precede this call) is multiplied in
  // here: through the phase table when there is a phase, else by the block kernel.
  const XRotation rot = XRotation::from_angle(beta);
  std::complex<double> scale{1.0, 0.0};
  if (mix != BlockMix::kPhaseOnly) {
    const std::complex<double> total = rot.total_factor(n_);
    if (do_phase) {
      for (std::size_t l = 0; l < low_size; ++l) {
        const std::complex<double> z = std::complex<double>(p[2 * l], p[2 * l + 1]) * total;
        p[2 * l] = z.real();
        p[2 * l + 1] = z.imag();
      }
    } else {
      scale = total;
    }
  }
  // The phase goes through the block kernel (multiplied in as the block is loaded) when its rows
  // hold whole vectors; the low-bit factors in the kernel's split form, once per call.
  const bool fused = do_phase && block_phase_fits<Real>(lo_bits);
  std::vector<Real> p_re, p_im;
  if (fused) {
    p_re.resize(2 * low_size);
    p_im.resize(2 * low_size);
    split_factors(p.data(), low_size, p_re.data(), p_im.data());
  }
  const std::size_t a_size = std::size_t{1} << (L - lo_bits), b_size = std::size_t{1} << lo_bits;
  // Per-thread tables of one block: a (high half of l), b (low half), t (their product row), w
  // (the L field phases), and the split forms of a and b for the fused kernel.
  struct Scratch {
    std::vector<double> a, b, t, w;
    std::vector<Real> split;
  };
  (void)parallel_for_local(
      blocks,
      [&] {
        return Scratch{std::vector<double>(2 * a_size), std::vector<double>(2 * b_size),
                       std::vector<double>(2 * b_size),
                       std::vector<double>(2 * static_cast<std::size_t>(L)),
                       std::vector<Real>(fused ? 4 * (a_size + b_size) : 0)};
      },
      [&](std::int64_t hb, Scratch& sc) {
        const std::size_t h = static_cast<std::size_t>(hb);
        Real* blk = reinterpret_cast<Real*>(psi + h * low_size);
        if (mix_first) mix_block(blk, L, &rot, scale);
        if (!do_phase) {
          if (mix_after) mix_block(blk, L, &rot, scale);
          return;
        }
        std::vector<double>& a = sc.a;
        std::vector<double>& b = sc.b;
        std::vector<double>& w = sc.w;
        const double* f = space.field.data() + h * static_cast<std::size_t>(L);
        polar_table(f, static_cast<std::size_t>(L), gamma, w.data());
        // b[lo] = prod_{i < lo_bits, i in lo} w_i; a[hi] = exp(-i gamma E_high) prod_{i >=
        // lo_bits}.
        b[0] = 1.0;
        b[1] = 0.0;
        for (std::size_t x = 1; x < b_size; ++x) {
          const std::size_t r = x & (x - 1), i = static_cast<std::size_t>(std::countr_zero(x));
          b[2 * x] = b[2 * r] * w[2 * i] - b[2 * r + 1] * w[2 * i + 1];
          b[2 * x + 1] = b[2 * r] * w[2 * i + 1] + b[2 * r + 1] * w[2 * i];
        }
        a[0] = std::cos(gamma * space.e_high[h]);
        a[1] = -std::sin(gamma * space.e_high[h]);
        for (std::size_t x = 1; x < a_size; ++x) {
          const std::size_t r = x & (x - 1);
          const std::size_t i =
              static_cast<std::size_t>(std::countr_zero(x)) + static_cast<std::size_t>(lo_bits);
          a[2 * x] = a[2 * r] * w[2 * i] - a[2 * r + 1] * w[2 * i + 1];
          a[2 * x + 1] = a[2 * r] * w[2 * i + 1] + a[2 * r + 1] * w[2 * i];
        }
        if (fused) {
          Real* split = sc.split.data();
          split_factors(a.data(), a_size, split, split + 2 * a_size);
          split_factors(b.data(), b_size, split + 4 * a_size, split + 4 * a_size + 2 * b_size);
          BlockPhase<Real> tables;
          tables.lo_bits = lo_bits;
          tables.p = {p_re.data(), p_im.data()};
          tables.a = {split, split + 2 * a_size};
          tables.b = {split + 4 * a_size, split + 4 * a_size + 2 * b_size};
          mix_block(blk, L, mix_after ? &rot : nullptr, {1.0, 0.0}, &tables);
        } else {
          phase_block(blk, a.data(), b.data(), p.data(), L, lo_bits, sc.t.data());
          if (mix_after) mix_block(blk, L, &rot, scale);
        }
      },
      state_loop(dim_));
}

template <class Real>
template <class Tile>
double Engine<Real>::for_each_high_tile(const FullSpace& space, Tile&& tile) const {
  const int L = space.low_bits;
  const int H = n_ - L;
  double total = 0.0;
  if (H <= 0) return total;
  const int passes = (H + kHighGroup - 1) / kHighGroup;
  int a = L;
  for (int pass = 0; pass < passes; ++pass) {
    const int g = (H - (a - L) + (passes - pass) - 1) / (passes - pass);
    const std::size_t stride = std::size_t{1} << a;  // distance between rows
    std::size_t len = std::max<std::size_t>(1, kTileBytes / (sizeof(Complex) << g));
    len = std::min(len, stride);
    const std::size_t chunks_per_row = stride / len;
    const std::size_t outer = dim_ >> (a + g);
    const std::int64_t tasks = static_cast<std::int64_t>(outer * chunks_per_row);
    total += reduce_tasks(
        tasks,
        [&](std::int64_t task, double& acc) {
          const std::size_t o = static_cast<std::size_t>(task) / chunks_per_row;
          const std::size_t i0 = (static_cast<std::size_t>(task) % chunks_per_row) * len;
          add_result(acc, [&] { return tile((o << (a + g)) + i0, stride, g, len); });
        },
        dim_);
    a += g;
  }
  return total;
}

template <class Real>
void Engine<Real>::high_passes(const FullSpace& space, Complex* psi, double beta) const {
  const XRotation rot = XRotation::from_angle(beta);  // its factor: see phase_blocks
  Real* base = reinterpret_cast<Real*>(psi);
  (void)for_each_high_tile(space,
                           [&](std::size_t first, std::size_t stride, int g, std::size_t len) {
                             high_tile(base + 2 * first, stride, g, len, rot);
                           });
}

template <class Real>
double Engine<Real>::x_mixer_imag(const FullSpace& space, const Complex* lam,
                                  const Complex* psi) const {
  // Im <lam| sum_j X_j |psi>: the low qubits block by block, the high ones tile by tile, so both
  // states are read 1 + ceil((n - L) / 8) times instead of n times.
  const Real* l = reinterpret_cast<const Real*>(lam);
  const Real* p = reinterpret_cast<const Real*>(psi);
  const int L = space.low_bits;
  const std::size_t low_size = std::size_t{1} << L;
  const std::int64_t blocks = static_cast<std::int64_t>(dim_ >> L);
  double total = parallel_sum(
      blocks,
      [&](std::int64_t hb) {
        const std::size_t first = 2 * static_cast<std::size_t>(hb) * low_size;
        return x_imag_block(l + first, p + first, L);
      },
      state_loop(dim_));
  total +=
      for_each_high_tile(space, [&](std::size_t first, std::size_t stride, int g, std::size_t len) {
        return x_imag_tile(l + 2 * first, p + 2 * first, stride, g, len);
      });
  return total;
}

template <class Real>
template <class Space, class Visit>
double Engine<Real>::for_each_run(const Space& space, const Rotation& r, Visit&& visit) const {
  const auto run = [&](double& acc, u64 u, u64 v, u64 len) {
    add_result(acc, [&] { return visit(u, v, len); });
  };
  if (r.j < 0) {
    // X on bit q of the index (full space, or a free variable of the subspace: the low digit).
    const int q = space.bit_of(r.i);
    const u64 half = u64{1} << q;
    const u64 runs = dim_ / (2 * half);
    const u64 per_task = std::max<u64>(1, 4096 / half);
    const std::int64_t tasks = static_cast<std::int64_t>((runs + per_task - 1) / per_task);
    return reduce_tasks(
        tasks,
        [&](std::int64_t t, double& acc) {
          const u64 end = std::min(runs, (static_cast<u64>(t) + 1) * per_task);
          for (u64 k = static_cast<u64>(t) * per_task; k < end; ++k)
            run(acc, k * 2 * half, k * 2 * half + half, half);
        },
        dim_);
  }
  if constexpr (std::is_same_v<Space, FullSpace>) {
    const int lo = std::min(r.i, r.j), hi = std::max(r.i, r.j);
    const u64 len = u64{1} << lo;
    const u64 runs = dim_ >> (lo + 2);
    const u64 per_task = std::max<u64>(1, 4096 / len);
    const std::int64_t tasks = static_cast<std::int64_t>((runs + per_task - 1) / per_task);
    return reduce_tasks(
        tasks,
        [&](std::int64_t t, double& acc) {
          const u64 end = std::min(runs, (static_cast<u64>(t) + 1) * per_task);
          for (u64 k = static_cast<u64>(t) * per_task; k < end; ++k) {
            const u64 x = k << (lo + 1);  // zero inserted at bit lo
            const u64 y = ((x >> hi) << (hi + 1)) | (x & ((u64{1} << hi) - 1));  // and at bit hi
            run(acc, y | (u64{1} << r.i), y | (u64{1} << r.j), len);
          }
        },
        dim_);
  } else {
    const std::size_t g = static_cast<std::size_t>(space.var_group[static_cast<std::size_t>(r.i)]);
    const int pos_a = space.var_pos[static_cast<std::size_t>(r.i)];
    const int pos_b = space.var_pos[static_cast<std::size_t>(r.j)];
    const u64 size = space.group_size[g], stride = space.group_stride[g];
    const u64 outer = dim_ / (size * stride);
    const int m = static_cast<int>(groups_[g].variables.size()), k = groups_[g].k;
    if (std::abs(pos_a - pos_b) == 1) {
      // Neighbouring positions p, p + 1 (every ring pair but the wrap): in colex order the
      // subsets that share their elements above p + 1 (a (k - j)-subset "high" of {p+2..m-1})
      // hold consecutive ranks, offset(high) + colex rank of the low j-subset of {0..p+1}. The
      // low subsets whose top element is p are the ranks C(p, j) + x, x < C(p, j - 1); swapping p
      // for p + 1 keeps the rest x, giving C(p + 1, j) + x. So every pair of ranks lies in two
      // runs of C(p, j - 1) consecutive ranks, i.e. of C(p, j - 1) * stride consecutive
      // amplitudes, as for an X rotation in the full space: no rank is computed per amplitude.
      const auto& bin = binomials();
      const int p = std::min(pos_a, pos_b);
      const int above = m - p - 2;  // elements of {p+2..m-1}
      struct Chunk {
        int j;
        u64 begin, end;  // ranks of the high (k - j)-subsets
      };
      std::vector<Chunk> chunks;
      for (int j = std::max(1, k - above); j <= std::min(k, p + 1); ++j) {
        const u64 highs = bin.c[above][k - j];
        const u64 len = bin.c[p][j - 1] * stride;
        const u64 per = std::max<u64>(1, 4096 / (len * outer));
        for (u64 b = 0; b < highs; b += per) chunks.push_back({j, b, std::min(highs, b + per)});
      }
      return reduce_tasks(
          static_cast<std::int64_t>(chunks.size()),
          [&](std::int64_t t, double& acc) {
            const Chunk& ch = chunks[static_cast<std::size_t>(t)];
            const int j = ch.j;
            const u64 len = bin.c[p][j - 1] * stride;
            const u64 u0 = bin.c[p][j], v0 = bin.c[p + 1][j];
            u64 high = unrank(ch.begin, above, k - j);
            for (u64 h = ch.begin; h < ch.end; ++h) {
              if (h != ch.begin) high = next_subset(high);
              u64 offset = 0;
              int idx = j + 1;
              for (u64 bits = high; bits != 0; bits &= bits - 1)
                offset += bin.c[p + 2 + std::countr_zero(bits)][idx++];
              for (u64 o = 0; o < outer; ++o)
                run(acc, (o * size + offset + u0) * stride, (o * size + offset + v0) * stride, len);
            }
          },
          dim_);
    }
    // Any other XY pair in group g: ranks whose subset holds a but not b pair with the rank of
    // the subset with a and b swapped; each pair of ranks owns `stride` contiguous amplitudes per
    // outer.
    const u64 bit_a = u64{1} << pos_a;
    const u64 bit_b = u64{1} << pos_b;
    const u64 chunk = 1 << 12;
    return reduce_tasks(
        static_cast<std::int64_t>((size + chunk - 1) / chunk),
        [&](std::int64_t t, double& acc) {
          const u64 begin = static_cast<u64>(t) * chunk, end = std::min(size, begin + chunk);
          u64 mask = unrank(begin, m, k);
          for (u64 rank = begin; rank < end; ++rank, mask = rank < end ? next_subset(mask) : mask) {
            if ((mask & bit_a) == 0 || (mask & bit_b) != 0) continue;
            const u64 partner = rank_of(mask ^ bit_a ^ bit_b);
            for (u64 o = 0; o < outer; ++o)
              run(acc, (o * size + rank) * stride, (o * size + partner) * stride, stride);
          }
        },
        dim_);
  }
}

template <class Real>
template <class Space>
void Engine<Real>::rotate(const Space& space, Complex* psi, const Rotation& r, double beta) const {
  const Real c = static_cast<Real>(std::cos(beta)), s = static_cast<Real>(std::sin(beta));
  Real* base = reinterpret_cast<Real*>(psi);
  (void)for_each_run(
      space, r, [&](u64 u, u64 v, u64 len) { rotate_runs(base + 2 * u, base + 2 * v, len, c, s); });
}

template <class Real>
template <class Space>
void Engine<Real>::phase_in(const Space& space, Complex* psi, double gamma) const {
  if constexpr (std::is_same_v<Space, FullSpace>) {
    phase_blocks(space, psi, gamma, BlockMix::kPhaseOnly, 0.0);
  } else {
    parallel_for_static(
        static_cast<std::int64_t>(dim_),
        [&](std::int64_t z) {
          const double ph = gamma * diag_[static_cast<std::size_t>(z)];
          const std::complex<double> w(std::cos(ph), -std::sin(ph));
          const std::complex<double> x(psi[z]);
          psi[z] = Complex(static_cast<Real>(x.real() * w.real() - x.imag() * w.imag()),
                           static_cast<Real>(x.real() * w.imag() + x.imag() * w.real()));
        },
        state_loop(dim_));
  }
}

template <class Real>
template <class Space>
void Engine<Real>::mixer_in(const Space& space, Complex* psi, double beta) const {
  if constexpr (std::is_same_v<Space, FullSpace>) {
    if (space.transverse_x) {
      phase_blocks(space, psi, 0.0, BlockMix::kMixThenPhase, beta);
      high_passes(space, psi, beta);
      return;
    }
  }
  for (const Rotation& r : rotations_) rotate(space, psi, r, beta);
}

template <class Real>
void Engine<Real>::phase(Complex* psi, double gamma) const {
  with_space([&](const auto& space) { phase_in(space, psi, gamma); });
}

template <class Real>
void Engine<Real>::mixer(Complex* psi, double beta) const {
  with_space([&](const auto& space) { mixer_in(space, psi, beta); });
}

template <class Real>
void Engine<Real>::layer(Complex* psi, double gamma, double beta) const {
  with_space([&](const auto& space) {
    if constexpr (std::is_same_v<std::decay_t<decltype(space)>, FullSpace>) {
      if (space.transverse_x) {
        // The phase, then the low qubits, block by block; then the high qubits.
        phase_blocks(space, psi, gamma, BlockMix::kPhaseThenMix, beta);
        high_passes(space, psi, beta);
        return;
      }
    }
    phase_in(space, psi, gamma);
    mixer_in(space, psi, beta);
  });
}

template <class Real>
void Engine<Real>::layer_inverse(Complex* psi, double gamma, double beta) const {
  with_space([&](const auto& space) {
    if constexpr (std::is_same_v<std::decay_t<decltype(space)>, FullSpace>) {
      if (space.transverse_x) {
        // The X rotations commute: high qubits first, then low, then the phase.
        high_passes(space, psi, -beta);
        phase_blocks(space, psi, -gamma, BlockMix::kMixThenPhase, -beta);
        return;
      }
    }
    for (auto it = rotations_.rbegin(); it != rotations_.rend(); ++it)
      rotate(space, psi, *it, -beta);
    phase_in(space, psi, -gamma);
  });
}

template <class Real>
double Engine<Real>::mixer_adjoint(Complex* psi, Complex* lam, double beta) const {
  return with_space([&](const auto& space) { return mixer_adjoint_in(space, psi, lam, beta); });
}

template <class Real>
template <class Space>
double Engine<Real>::mixer_adjoint_in(const Space& space, Complex* psi, Complex* lam,
                                      double beta) const {
  double grad = 0.0;
  if constexpr (std::is_same_v<Space, FullSpace>) {
    if (space.transverse_x) {
      // All X_j commute with the whole mixer: every term is taken at the layer's output.
      grad = 2.0 * x_mixer_imag(space, lam, psi);
      mixer_in(space, psi, -beta);
      mixer_in(space, lam, -beta);
      return grad;
    }
  }
  const Real c = static_cast<Real>(std::cos(-beta)), s = static_cast<Real>(std::sin(-beta));
  Real* p = reinterpret_cast<Real*>(psi);
  Real* l = reinterpret_cast<Real*>(lam);
  for (auto it = rotations_.rbegin(); it != rotations_.rend(); ++it) {
    // Term at the state after rotation k, then rotation k undone on both, in one trip.
    grad += 2.0 * for_each_run(space, *it, [&](u64 u, u64 v, u64 len) {
              return adjoint_pairs(p + 2 * u, p + 2 * v, l + 2 * u, l + 2 * v, len, c, s);
            });
  }
  return grad;
}

template <class Real>
double Engine<Real>::phase_adjoint(Complex* psi, Complex* lam, double gamma) const {
  require_diagonal("phase_adjoint");
  const std::int64_t dim = static_cast<std::int64_t>(dim_);
  return with_space([&](const auto& space) {
    if constexpr (std::is_same_v<std::decay_t<decltype(space)>, FeasibleSubspace>) {
      // One pass and one sincos per amplitude for both states (the phase there comes from the
      // stored diagonal, and the sincos dominated the adjoint step).
      const double grad = parallel_sum(
          dim,
          [&](std::int64_t z) {
            const double c = diag_[static_cast<std::size_t>(z)];
            const std::complex<double> l(lam[z]), p(psi[z]);
            const double term = c * (std::conj(l) * p).imag();
            const std::complex<double> w(std::cos(gamma * c),
                                         std::sin(gamma * c));  // exp(+i gamma C)
            psi[z] = Complex(p * w);
            lam[z] = Complex(l * w);
            return term;
          },
          state_loop(dim_));
      return 2.0 * grad;
    } else {
      const double grad = parallel_sum(
          dim,
          [&](std::int64_t z) {
            const std::complex<double> l(lam[z]), p(psi[z]);
            return diag_[static_cast<std::size_t>(z)] * (std::conj(l) * p).imag();
          },
          state_loop(dim_));
      phase_in(space, psi, -gamma);
      phase_in(space, lam, -gamma);
      return 2.0 * grad;
    }
  });
}

template <class Real>
void Engine<Real>::apply_cost(const Complex* psi, Complex* out) const {
  require_diagonal("apply_cost");
  parallel_for_static(
      static_cast<std::int64_t>(dim_),
      [&](std::int64_t z) {
        out[z] = psi[z] * static_cast<Real>(diag_[static_cast<std::size_t>(z)]);
      },
      state_loop(dim_));
}

template <class Real>
double Engine<Real>::real_inner(const Complex* a, const Complex* b) const {
  return parallel_sum(
      static_cast<std::int64_t>(dim_),
      [&](std::int64_t z) {
        return static_cast<double>(a[z].real()) * static_cast<double>(b[z].real()) +
               static_cast<double>(a[z].imag()) * static_cast<double>(b[z].imag());
      },
      state_loop(dim_));
}

template <class Real>
typename Engine<Real>::Moments Engine<Real>::moments(const Complex* psi) const {
  // sum |psi|^2, sum |psi|^2 C, sum |psi|^2 C^2, per thread in index order.
  struct Sums {
    double norm = 0.0, mean = 0.0, second = 0.0;
    void add(double p, double c) {
      norm += p;
      mean += p * c;
      second += p * c * c;
    }
    static void combine(Sums& total, const Sums& part) {
      total.norm += part.norm;
      total.mean += part.mean;
      total.second += part.second;
    }
  };
  Sums total;
  if (diagonal_storage_ == DiagonalStorage::kFactorised) {
    // The energies of each block from the factorised tables (only the full space may leave the
    // diagonal out), as the diagonal is filled.
    const FullSpace& space = std::get<FullSpace>(space_);
    const std::size_t low_size = std::size_t{1} << space.low_bits;
    struct Local {
      std::vector<double> energies, work;
      Sums sums;
    };
    const std::vector<Local> partials = parallel_for_local(
        static_cast<std::int64_t>(dim_ >> space.low_bits),
        [&] {
          return Local{std::vector<double>(low_size), std::vector<double>(low_size + 2), {}};
        },
        [&](std::int64_t hb, Local& local) {
          const std::size_t h = static_cast<std::size_t>(hb);
          block_energies(space, h, local.energies.data(), local.work.data(), Stores::kCached);
          const Complex* row = psi + h * low_size;
          for (std::size_t l = 0; l < low_size; ++l)
            local.sums.add(std::norm(std::complex<double>(row[l])), local.energies[l]);
        },
        state_loop(dim_));
    for (const Local& part : partials) Sums::combine(total, part.sums);
  } else {
    total = parallel_reduce(
        static_cast<std::int64_t>(dim_), Sums{},
        [&](std::int64_t z, Sums& acc) {
          acc.add(std::norm(std::complex<double>(psi[z])), diag_[static_cast<std::size_t>(z)]);
        },
        Sums::combine, state_loop(dim_));
  }
  return {total.norm, total.mean / total.norm, total.second / total.norm};
}

template <class Real>
std::pair<double, double> Engine<Real>::diagonal_range() const {
  require_diagonal("diagonal_range");
  return with_space([&](const auto& space) {
    // Over every index of the space, but the feasible ones only in the full space with groups.
    bool restrict = false;
    if constexpr (std::is_same_v<std::decay_t<decltype(space)>, FullSpace>)
      restrict = !space.transverse_x;
    return parallel_reduce(
        static_cast<std::int64_t>(dim_), std::pair<double, double>{INFINITY, -INFINITY},
        [&](std::int64_t z, std::pair<double, double>& acc) {
          if (restrict && !space.feasible(static_cast<u64>(z))) return;
          acc.first = std::min(acc.first, diag_[static_cast<std::size_t>(z)]);
          acc.second = std::max(acc.second, diag_[static_cast<std::size_t>(z)]);
        },
        [](std::pair<double, double>& total, const std::pair<double, double>& part) {
          total.first = std::min(total.first, part.first);
          total.second = std::max(total.second, part.second);
        },
        state_loop(dim_));
  });
}

namespace {

// Probability mass (in, all): `in` over the indices where keep(z) holds.
template <class Keep, class Complex>
std::pair<double, double> mass_where(const Complex* psi, std::uint64_t dim, Keep&& keep) {
  return parallel_reduce(
      static_cast<std::int64_t>(dim), std::pair<double, double>{0.0, 0.0},
      [&](std::int64_t z, std::pair<double, double>& acc) {
        const double p = std::norm(std::complex<double>(psi[z]));
        acc.second += p;
        if (keep(static_cast<u64>(z))) acc.first += p;
      },
      [](std::pair<double, double>& total, const std::pair<double, double>& part) {
        total.first += part.first;
        total.second += part.second;
      },
      state_loop(dim));
}

}  // namespace

template <class Real>
double Engine<Real>::feasible_probability(const Complex* psi) const {
  return with_space([&](const auto& space) {
    const auto [in, all] = mass_where(psi, dim_, [&](u64 z) { return space.feasible(z); });
    return in / all;
  });
}

template <class Real>
double Engine<Real>::probability_at(const Complex* psi, double value, double tol) const {
  require_diagonal("probability_at");
  return with_space([&](const auto& space) {
    const auto [in, all] = mass_where(psi, dim_, [&](u64 z) {
      return std::abs(diag_[static_cast<std::size_t>(z)] - value) <= tol && space.feasible(z);
    });
    return in / all;
  });
}

template <class Real>
std::vector<std::uint64_t> Engine<Real>::sample(const Complex* psi, int shots,
                                                std::uint64_t seed) const {
  // A fixed number of chunks (not of threads) keeps the sums, and so the samples, identical for
  // any thread count.
  constexpr std::int64_t kChunks = 256;
  const u64 chunk = (dim_ + kChunks - 1) / kChunks;
  std::vector<double> sums(kChunks, 0.0);
  parallel_for_static(
      kChunks,
      [&](std::int64_t c) {
        double s = 0.0;
        for (u64 z = static_cast<u64>(c) * chunk;
             z < std::min(dim_, (static_cast<u64>(c) + 1) * chunk); ++z)
          s += std::norm(std::complex<double>(psi[z]));
        sums[static_cast<std::size_t>(c)] = s;
      },
      state_loop(dim_));
  std::vector<double> start(kChunks + 1, 0.0);
  for (std::size_t c = 0; c < kChunks; ++c) start[c + 1] = start[c] + sums[c];
  const double total = start[kChunks];
  pcg32 rng = make_rng(seed, 0x51a7e5ULL);
  std::vector<double> u(static_cast<std::size_t>(shots));
  for (double& x : u) x = uniform01(rng) * total;
  std::sort(u.begin(), u.end());
  std::vector<std::uint64_t> out(u.size(), dim_ == 0 ? 0 : dim_ - 1);
  parallel_for_static(
      kChunks,
      [&](std::int64_t c) {
        const std::size_t cc = static_cast<std::size_t>(c);
        auto first = std::lower_bound(u.begin(), u.end(), start[cc]);
        auto last =
            c + 1 == kChunks ? u.end() : std::lower_bound(u.begin(), u.end(), start[cc + 1]);
        if (first == last) return;
        double acc = start[cc];
        u64 z = cc * chunk;
        const u64 end = std::min(dim_, (cc + 1) * chunk);
        u64 last_nonzero = z;
        for (auto it = first; it != last; ++it) {
          while (z < end) {
            const double p = std::norm(std::complex<double>(psi[z]));
            if (p > 0.0) last_nonzero = z;
            if (acc + p > *it) break;
            acc += p;
            ++z;
          }
          out[static_cast<std::size_t>(it - u.begin())] = z < end ? z : last_nonzero;
        }
      },
      state_loop(dim_));
  return out;
}

template class AlignedArray<double>;
template class AlignedArray<std::complex<float>>;
template class AlignedArray<std::complex<double>>;
template class Engine<float>;
template class Engine<double>;

}  // namespace qprune::detail::qaoa
