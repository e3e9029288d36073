// The one descent of the solver layer: from an assignment down to a local minimum of the feasible
// moves (single flips of free variables, swaps of a one and a zero inside an "exactly k" group),
// keeping the cached fields exact. Greedy's reads, anneal's, tabu's and qaoa's polish, and the
// repair of imported masks all end here. Two strategies for the swaps, one move set:
//  - SteepestDescent: the best of all moves each step (scans every swap; groups of modest size);
//  - swap_descent: group by group, sorted batches and branch and bound, for groups of thousands
//    of units (annealing a pruning layer), templated on the kernel's field type.
// Moves: flip i changes E by (1 - 2 x_i) f_i; swap (in: 0 -> 1, out: 1 -> 0) by
// f_in - f_out - q_in,out (the last term because taking `out` away first lowers f_in by q_in,out).
#pragma once
#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < 3
#error \
    "solver/common/descent.hpp is in the solver layer; a lower layer (core, problems) may not include it"
#endif

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "solver/common/compiled_problem.hpp"

namespace qprune::detail {

/// Never asks a descent to stop early.
struct NeverStop {
  [[nodiscard]] bool operator()() const { return false; }
};

/// A descent asks `stop()` every kPollMoves moves whether to end early (time limit, interrupt).
inline constexpr std::int64_t kPollMoves = 16;

/// Best-improvement single-flip descent until no flip lowers the energy by more than `tolerance`
/// (ties: the lowest index). h holds the fields f and is kept exact along. Returns the number of
/// flips made. Form: size(), add_row(h, i, s) (CompiledProblem, or a kernel's own form).
template <class Form, class Real, class Stop = NeverStop>
std::int64_t flip_descent(const Form& form, std::uint8_t* x, Real* h, double tolerance,
                          std::int64_t max_moves, Stop&& stop = {}) {
  const int n = form.size();
  std::int64_t moves = 0;
  while (moves < max_moves) {
    if (moves % kPollMoves == 0 && moves > 0 && stop()) break;
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
  for (int i = 0; i < form.size(); ++i)
    bound[static_cast<std::size_t>(i)] = form.max_positive_coupling(i);
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
std::int64_t swap_descent(const Form& form, const GroupLayout& layout,
                          const std::vector<typename Form::RealType>& bound,
                          std::vector<int>& slots, std::uint8_t* x, typename Form::RealType* h,
                          double tolerance, std::int64_t max_moves) {
  using Real = typename Form::RealType;
  const Real limit = static_cast<Real>(-tolerance);
  std::int64_t moves = 0;
  bool improved = true;
  while (improved && moves < max_moves) {
    improved = false;
    for (const GroupLayout::Group& g : layout.groups) {
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

/// Steepest descent over every feasible move at once: each step takes the single best of all free
/// flips and all swaps inside movable groups (ties: flips before swaps, then model order), until
/// none improves by more than `tolerance`. It suits problems whose groups are small enough to scan
/// (greedy, the polish of tabu and qaoa, the repair of imported masks); annealing's huge layer
/// groups use swap_descent.
///
/// Choosing the move scans the candidates: O(n) for flips, for swaps O(sum over the group's ones
/// of (degree + group size)), q_in,out read from the dense row or from the out-row scattered into
/// a scratch array. A one whose best possible swap, min_in f_in - f_out - max_q (max_q: the
/// largest coupling inside the group, at least 0), cannot beat the best move so far is skipped.
/// Because a move is taken only if it lowers the energy by more than the tolerance (scale it to
/// the model, e.g. 1e-12 B), rounding can never make the descent cycle.
class SteepestDescent {
 public:
  /// `problem` (its layout decides the moves) must outlive this object.
  SteepestDescent(const CompiledProblem& problem, double tolerance)
      : p_(problem), tolerance_(tolerance) {
    const GroupLayout& layout = p_.layout();
    std::vector<char> member(static_cast<std::size_t>(p_.size()), 0);
    for (const GroupLayout::Group& g : layout.groups) {
      const int* vars = layout.members(g);
      double max_q = 0.0;
      for (int t = 0; t < g.size; ++t) member[static_cast<std::size_t>(vars[t])] = 1;
      for (int t = 0; t < g.size; ++t) {
        p_.for_each_in_row(vars[t], [&](int j, double q) {
          if (member[static_cast<std::size_t>(j)]) max_q = std::max(max_q, q);
        });
      }
      for (int t = 0; t < g.size; ++t) member[static_cast<std::size_t>(vars[t])] = 0;
      max_q_.push_back(max_q);
    }
  }

  /// Descends from x with fields f = c + Q x (CompiledProblem::fields), both updated in place.
  /// Returns the number of moves made (a swap counts once).
  template <class Stop = NeverStop>
  std::int64_t run(std::uint8_t* x, double* f, std::int64_t max_moves, Stop&& stop = {}) const {
    const GroupLayout& layout = p_.layout();
    if (layout.groups.empty() && layout.free_vars.size() == static_cast<std::size_t>(p_.size())) {
      return flip_descent(p_, x, f, tolerance_, max_moves, stop);
    }
    std::vector<double> scratch(p_.dense() ? 0 : static_cast<std::size_t>(p_.size()), 0.0);
    std::vector<int> ones, zeros;
    std::int64_t moves = 0;
    const auto flip = [&](int i) {
      p_.add_row(f, i, x[i] ? -1.0 : 1.0);
      x[i] ^= 1;
    };
    while (moves < max_moves) {
      if (moves % kPollMoves == 0 && moves > 0 && stop()) break;
      double best = -tolerance_;
      int best_a = -1, best_b = -1;  // flip: (a, -1); swap: (out a, in b)
      for (int i : layout.free_vars) {
        const double d = x[i] ? -f[i] : f[i];
        if (d < best) {
          best = d;
          best_a = i;
          best_b = -1;
        }
      }
      for (std::size_t gi = 0; gi < layout.groups.size(); ++gi) {
        const GroupLayout::Group& g = layout.groups[gi];
        const int* vars = layout.members(g);
        ones.clear();
        zeros.clear();
        double min_in = std::numeric_limits<double>::infinity();
        for (int t = 0; t < g.size; ++t) {
          const int v = vars[t];
          if (x[v]) {
            ones.push_back(v);
          } else {
            zeros.push_back(v);
            min_in = std::min(min_in, f[v]);
          }
        }
        for (int o : ones) {
          if (min_in - f[o] - max_q_[gi] >= best) continue;  // no `in` can beat the best move
          const double* q = nullptr;
          if (p_.dense()) {
            q = p_.dense_row(o);
          } else {
            p_.add_row(scratch.data(), o, 1.0);  // scatter row o: scratch[j] = q_oj
            q = scratch.data();
          }
          for (int in : zeros) {
            const double d = f[in] - f[o] - q[in];
            if (d < best) {
              best = d;
              best_a = o;
              best_b = in;
            }
          }
          if (!p_.dense()) p_.add_row(scratch.data(), o, -1.0);  // back to zero (exactly: q - q)
        }
      }
      if (best_a < 0) break;  // a local minimum
      flip(best_a);
      if (best_b >= 0) flip(best_b);
      ++moves;
    }
    return moves;
  }

 private:
  const CompiledProblem& p_;
  double tolerance_;
  std::vector<double> max_q_;  // per movable group: max(0, largest coupling inside it)
};

/// Makes every "exactly k" group of the problem's model hold k ones, group by group in constraint
/// order: while a group has too many ones, the one whose removal raises the energy least is
/// dropped; while too few, the zero whose addition lowers it most is added (ties: the earlier
/// member). This is the import repair rule of the pruning pipeline; follow it with a
/// SteepestDescent on a native CompiledProblem to also reach a local minimum. f holds the fields
/// of x (CompiledProblem::fields) and is kept exact; the flipped variables are appended to
/// `removed` and `added` in order.
inline void fix_group_counts(const CompiledProblem& p, std::uint8_t* x, double* f,
                             std::vector<int>& removed, std::vector<int>& added) {
  for (const CardinalityConstraint& g : p.model().constraints()) {
    for (;;) {
      int ones = 0;
      for (int v : g.variables) ones += x[v];
      if (ones == g.k) break;
      const bool drop = ones > g.k;
      int best = -1;
      double best_delta = std::numeric_limits<double>::infinity();
      for (int v : g.variables) {
        if ((x[v] != 0) != drop) continue;
        const double d = drop ? -f[v] : f[v];  // (1 - 2 x_v) f_v
        if (d < best_delta) {
          best_delta = d;
          best = v;
        }
      }
      p.add_row(f, best, drop ? -1.0 : 1.0);
      x[best] = drop ? 0 : 1;
      (drop ? removed : added).push_back(best);
    }
  }
}

}  // namespace qprune::detail
