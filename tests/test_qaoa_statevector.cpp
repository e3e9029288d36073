// Tests of the qaoa statevector engine against an independent dense-matrix QAOA written here
// (2^n x 2^n Hamiltonians, mixers exponentiated with Eigen's MatrixFunctions): states after each
// layer, expectations and adjoint gradients (also against central finite differences), norm,
// XY mixers' feasible subspace, subspace == full, float == double, the blocked high-qubit passes
// against a naive per-qubit loop at n = 15 and n = 21, the X-mixer kernels of every instruction
// set this CPU has and both rotation forms against the same loop, sampling.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <complex>
#include <map>
#include <unsupported/Eigen/MatrixFunctions>

#include "qprune/error.hpp"
#include "solver/qaoa/layer_kernels.hpp"
#include "solver/qaoa/statevector.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

using detail::qaoa::CostTerms;
using detail::qaoa::Engine;
using detail::qaoa::Group;
using detail::qaoa::MixerKind;
using detail::qaoa::SpaceKind;
using cd = std::complex<double>;
using Mat = Eigen::MatrixXcd;
using Vec = Eigen::VectorXcd;

/// Energy of basis state z, term by term from the model (not through the engine).
double energy_of(const QuboModel& m, std::uint64_t z) {
  return m.energy(test::bits_to_assignment(z, m.num_variables()));
}

/// The dense reference: cost diagonal, mixer generators (in application order) and initial state.
struct Dense {
  int n = 0;
  Eigen::VectorXd c;
  std::vector<Mat> generators;
  Vec psi0;

  Dense(const QuboModel& m, const std::vector<Group>& groups, MixerKind kind)
      : n(m.num_variables()) {
    const std::size_t dim = std::size_t{1} << n;
    c.resize(static_cast<Eigen::Index>(dim));
    for (std::size_t z = 0; z < dim; ++z) c[static_cast<Eigen::Index>(z)] = energy_of(m, z);
    std::vector<char> in_group(static_cast<std::size_t>(n), 0);
    if (kind != MixerKind::kX)
      for (const auto& g : groups)
        for (int v : g.variables) in_group[static_cast<std::size_t>(v)] = 1;
    for (int i = 0; i < n; ++i)
      if (!in_group[static_cast<std::size_t>(i)]) generators.push_back(x_matrix(i));
    if (kind != MixerKind::kX) {
      for (const auto& g : groups) {
        const auto& v = g.variables;
        const int size = static_cast<int>(v.size());
        auto at = [&](int a) { return v[static_cast<std::size_t>(a)]; };
        if (kind == MixerKind::kXyRing) {
          for (int a = 0; a + 1 < size; a += 2) generators.push_back(xy_matrix(at(a), at(a + 1)));
          for (int a = 1; a + 1 < size; a += 2) generators.push_back(xy_matrix(at(a), at(a + 1)));
          if (size > 2) generators.push_back(xy_matrix(at(size - 1), at(0)));
        } else {
          for (int a = 0; a < size; ++a)
            for (int b = a + 1; b < size; ++b) generators.push_back(xy_matrix(at(a), at(b)));
        }
      }
    }
    // Initial state: uniform over the states with the groups' weights (Dicke x |+>).
    psi0 = Vec::Zero(static_cast<Eigen::Index>(dim));
    double count = 0;
    for (std::size_t z = 0; z < dim; ++z) {
      bool ok = true;
      if (kind != MixerKind::kX)
        for (const auto& g : groups) {
          int ones = 0;
          for (int v : g.variables) ones += static_cast<int>((z >> v) & 1U);
          ok = ok && ones == g.k;
        }
      if (ok) {
        psi0[static_cast<Eigen::Index>(z)] = 1.0;
        ++count;
      }
    }
    psi0 /= std::sqrt(count);
  }
  [[nodiscard]] Mat x_matrix(int i) const {
    const Eigen::Index dim = Eigen::Index{1} << n;
    Mat x = Mat::Zero(dim, dim);
    for (Eigen::Index z = 0; z < dim; ++z) x(z ^ (Eigen::Index{1} << i), z) = 1.0;
    return x;
  }
  [[nodiscard]] Mat xy_matrix(int i, int j) const {
    // (X_i X_j + Y_i Y_j) / 2 built from its Pauli factors.
    const Eigen::Index dim = Eigen::Index{1} << n;
    Mat xx = x_matrix(i) * x_matrix(j);
    Mat yi = Mat::Zero(dim, dim), yj = Mat::Zero(dim, dim);
    for (Eigen::Index z = 0; z < dim; ++z) {
      yi(z ^ (Eigen::Index{1} << i), z) = ((z >> i) & 1) ? cd(0, -1) : cd(0, 1);
      yj(z ^ (Eigen::Index{1} << j), z) = ((z >> j) & 1) ? cd(0, -1) : cd(0, 1);
    }
    return (xx + yi * yj) / 2.0;
  }
  [[nodiscard]] Mat phase(double g) const {
    Vec d(c.size());
    for (Eigen::Index z = 0; z < c.size(); ++z) d[z] = std::exp(cd(0, -g * c[z]));
    return d.asDiagonal();
  }
  /// exp(-i b G_s), memoised (the gradient reference asks for the same ones many times).
  [[nodiscard]] const Mat& rot(std::size_t s, double b) const {
    auto [it, fresh] = memo.try_emplace({s, b});
    if (fresh) it->second = (cd(0, -b) * generators[s]).exp();
    return it->second;
  }
  [[nodiscard]] const Mat& mixer(double b) const {
    auto [it, fresh] = memo.try_emplace({generators.size(), b});
    if (fresh) {
      Mat m = Mat::Identity(c.size(), c.size());
      for (std::size_t s = 0; s < generators.size(); ++s) m = rot(s, b) * m;
      it->second = m;
    }
    return it->second;
  }
  mutable std::map<std::pair<std::size_t, double>, Mat> memo;
  [[nodiscard]] Vec state(const std::vector<double>& gam, const std::vector<double>& bet) const {
    Vec psi = psi0;
    for (std::size_t l = 0; l < gam.size(); ++l) psi = mixer(bet[l]) * (phase(gam[l]) * psi);
    return psi;
  }
  [[nodiscard]] double expectation(const Vec& psi) const {
    return (psi.adjoint() * c.cast<cd>().asDiagonal() * psi)(0, 0).real();
  }
  /// Forward-mode gradient: d psi / d theta by the product rule with dense matrices.
  [[nodiscard]] std::vector<double> gradient(const std::vector<double>& gam,
                                             const std::vector<double>& bet) const {
    const std::size_t p = gam.size();
    const Vec psi = state(gam, bet);
    const Vec lam = c.cast<cd>().asDiagonal() * psi;
    std::vector<double> grad(2 * p);
    const Mat cmat = c.cast<cd>().asDiagonal();
    for (std::size_t k = 0; k < p; ++k) {
      // Prefix through layer k - 1, suffix after layer k.
      Vec pre = psi0;
      for (std::size_t l = 0; l < k; ++l) pre = mixer(bet[l]) * (phase(gam[l]) * pre);
      Mat post = Mat::Identity(c.size(), c.size());
      for (std::size_t l = k + 1; l < p; ++l) post = mixer(bet[l]) * phase(gam[l]) * post;
      const Vec ph = phase(gam[k]) * pre;
      const Vec dg = post * mixer(bet[k]) * (cd(0, -1) * (cmat * ph));
      Vec db = Vec::Zero(c.size());
      for (std::size_t t = 0; t < generators.size(); ++t) {
        Vec v = ph;
        for (std::size_t s = 0; s < generators.size(); ++s) {
          v = rot(s, bet[k]) * v;
          if (s == t) v = cd(0, -1) * (generators[s] * v);
        }
        db += v;
      }
      db = post * db;
      grad[k] = 2.0 * (lam.adjoint() * dg)(0, 0).real();
      grad[p + k] = 2.0 * (lam.adjoint() * db)(0, 0).real();
    }
    return grad;
  }
};

template <class Real>
Vec to_vec(const Engine<Real>& e, const std::complex<Real>* psi, int n) {
  // Full-space vector (subspace amplitudes placed at their decoded basis states).
  Vec v = Vec::Zero(Eigen::Index{1} << n);
  for (std::uint64_t i = 0; i < e.dimension(); ++i)
    v[static_cast<Eigen::Index>(e.decode(i))] = cd(psi[i].real(), psi[i].imag());
  return v;
}

template <class Real>
std::vector<double> engine_gradient(const Engine<Real>& e, const std::vector<double>& gam,
                                    const std::vector<double>& bet, double& f) {
  auto psi = e.make_state(), lam = e.make_state();
  e.initial_state(psi.data());
  for (std::size_t l = 0; l < gam.size(); ++l) e.layer(psi.data(), gam[l], bet[l]);
  e.apply_cost(psi.data(), lam.data());
  f = e.real_inner(psi.data(), lam.data());
  const std::size_t p = gam.size();
  std::vector<double> grad(2 * p);
  for (std::size_t l = p; l-- > 0;) {
    grad[p + l] = e.mixer_adjoint(psi.data(), lam.data(), bet[l]);
    grad[l] = e.phase_adjoint(psi.data(), lam.data(), gam[l]);
  }
  return grad;
}

template <class Real>
double engine_expectation(const Engine<Real>& e, const std::vector<double>& gam,
                          const std::vector<double>& bet) {
  auto psi = e.make_state();
  e.initial_state(psi.data());
  for (std::size_t l = 0; l < gam.size(); ++l) e.layer(psi.data(), gam[l], bet[l]);
  return e.moments(psi.data()).mean;
}

const std::vector<double> kGammas = {0.31, -0.17, 0.52};
const std::vector<double> kBetas = {0.71, 0.23, -0.44};

struct Case {
  const char* name;
  std::vector<Group> groups;
  MixerKind kind;
  SpaceKind space;
};

std::vector<Case> cases() {
  const std::vector<Group> groups = {{{0, 2, 3, 5}, 2}, {{1, 4}, 1}};
  const std::vector<Group> one = {{{0, 1, 3, 4, 5}, 2}};
  return {{"x", {}, MixerKind::kX, SpaceKind::kFull},
          {"ring full", groups, MixerKind::kXyRing, SpaceKind::kFull},
          {"complete full", one, MixerKind::kXyComplete, SpaceKind::kFull},
          {"ring subspace", groups, MixerKind::kXyRing, SpaceKind::kSubspace},
          {"ring subspace, free vars", one, MixerKind::kXyRing, SpaceKind::kSubspace},
          {"complete subspace", groups, MixerKind::kXyComplete, SpaceKind::kSubspace}};
}

TEST_CASE("qaoa engine: states, expectations and gradients equal the dense reference") {
  const QuboModel model = test::random_model(6, 0.7, 11, 3);
  const CostTerms cost = CostTerms::from_model(model);
  for (const Case& cs : cases()) {
    CAPTURE(cs.name);
    const Engine<double> engine(cost, cs.groups, cs.kind, cs.space);
    const Dense dense(model, cs.groups, cs.kind);
    auto psi = engine.make_state();
    engine.initial_state(psi.data());
    CHECK((to_vec(engine, psi.data(), 6) - dense.psi0).norm() < 1e-12);
    Vec ref = dense.psi0;
    for (std::size_t l = 0; l < kGammas.size(); ++l) {
      engine.layer(psi.data(), kGammas[l], kBetas[l]);
      ref = dense.mixer(kBetas[l]) * (dense.phase(kGammas[l]) * ref);
      const Vec got = to_vec(engine, psi.data(), 6);
      CHECK((got - ref).norm() < 1e-10);
      CHECK(std::abs(got.norm() - 1.0) < 1e-12);
      if (cs.kind != MixerKind::kX) {
        // No amplitude leaves the feasible subspace.
        double outside = 0.0;
        for (Eigen::Index z = 0; z < got.size(); ++z)
          if (dense.psi0[z] == 0.0) outside += std::norm(got[z]);
        CHECK(outside < 1e-12);
      }
    }
    const double f_ref = dense.expectation(ref);
    CHECK(engine.moments(psi.data()).mean == doctest::Approx(f_ref).epsilon(1e-12));
    // Inverse layers bring the state back.
    for (std::size_t l = kGammas.size(); l-- > 0;)
      engine.layer_inverse(psi.data(), kGammas[l], kBetas[l]);
    CHECK((to_vec(engine, psi.data(), 6) - dense.psi0).norm() < 1e-10);

    double f = 0.0;
    const std::vector<double> grad = engine_gradient(engine, kGammas, kBetas, f);
    CHECK(std::abs(f - f_ref) < 1e-10);
    const std::vector<double> grad_ref = dense.gradient(kGammas, kBetas);
    for (std::size_t k = 0; k < grad.size(); ++k) {
      CAPTURE(k);
      CHECK(std::abs(grad[k] - grad_ref[k]) < 1e-10);
      // Central finite differences of the engine's own expectation.
      std::vector<double> g = kGammas, b = kBetas;
      const double h = 1e-5;
      auto& v = k < g.size() ? g[k] : b[k - g.size()];
      v += h;
      const double up = engine_expectation(engine, g, b);
      v -= 2 * h;
      const double down = engine_expectation(engine, g, b);
      CHECK(std::abs((up - down) / (2 * h) - grad[k]) < 1e-6);
    }
  }
}

/// The initial state after the kGammas / kBetas layers.
template <class Real>
detail::qaoa::AlignedArray<std::complex<Real>> evolved(const Engine<Real>& e) {
  auto psi = e.make_state();
  e.initial_state(psi.data());
  for (std::size_t l = 0; l < kGammas.size(); ++l) e.layer(psi.data(), kGammas[l], kBetas[l]);
  return psi;
}

TEST_CASE("qaoa engine: subspace amplitudes equal the full-space ones") {
  const QuboModel model = test::random_model(8, 0.5, 5, 4);
  const CostTerms cost = CostTerms::from_model(model);
  const std::vector<Group> groups = {{{7, 1, 4, 2, 6}, 3}, {{0, 5}, 1}};
  for (MixerKind kind : {MixerKind::kXyRing, MixerKind::kXyComplete}) {
    const Engine<double> full(cost, groups, kind, SpaceKind::kFull);
    const Engine<double> sub(cost, groups, kind, SpaceKind::kSubspace);
    CHECK(sub.dimension() == 2 * 10 * 2);
    const auto a = evolved(full), b = evolved(sub);
    for (std::uint64_t i = 0; i < sub.dimension(); ++i) {
      CHECK(std::abs(b[i] - a[sub.decode(i)]) < 1e-12);
      CHECK(sub.diagonal()[i] == doctest::Approx(energy_of(model, sub.decode(i))));
    }
    CHECK(full.feasible_probability(a.data()) == doctest::Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("qaoa engine: subspace ring pairs (runs of ranks) equal the full space, large groups") {
  // Groups of 11 and 3 with 2 free variables (n = 16): neighbouring ring pairs at every position
  // p take the run path with runs of C(p, j - 1) ranks times the free stride and two outer
  // factors; the wrap pairs take the general path. Amplitudes and adjoint gradients are compared
  // with the full-space engine (checked against the dense reference above).
  const QuboModel model = test::random_model(16, 0.4, 17, 3);
  const CostTerms cost = CostTerms::from_model(model, model.max_flip_change());
  const std::vector<Group> groups = {{{3, 0, 9, 14, 5, 12, 1, 7, 10, 15, 6}, 4}, {{2, 11, 8}, 1}};
  const Engine<double> full(cost, groups, MixerKind::kXyRing, SpaceKind::kFull);
  const Engine<double> sub(cost, groups, MixerKind::kXyRing, SpaceKind::kSubspace);
  CHECK(sub.dimension() == 4 * 330 * 3);
  const auto a = evolved(full), b = evolved(sub);
  double err = 0.0;
  for (std::uint64_t i = 0; i < sub.dimension(); ++i)
    err = std::max(err, std::abs(b[i] - a[sub.decode(i)]));
  CHECK(err < 1e-12);
  double f_full = 0.0, f_sub = 0.0;
  const std::vector<double> g_full = engine_gradient(full, kGammas, kBetas, f_full);
  const std::vector<double> g_sub = engine_gradient(sub, kGammas, kBetas, f_sub);
  CHECK(f_sub == doctest::Approx(f_full).epsilon(1e-12));
  for (std::size_t k = 0; k < g_full.size(); ++k) CHECK(std::abs(g_sub[k] - g_full[k]) < 1e-10);
}

TEST_CASE("qaoa engine: the diagonal is the energy of every basis state") {
  for (int n : {1, 5, 13}) {
    const QuboModel model = test::random_model(n, 0.6, static_cast<std::uint64_t>(n), 7);
    const Engine<double> engine(CostTerms::from_model(model), {}, MixerKind::kX, SpaceKind::kFull);
    for (std::uint64_t z = 0; z < engine.dimension(); z += 1 + z % 7)
      CHECK(engine.diagonal()[z] == doctest::Approx(energy_of(model, z)).epsilon(1e-12));
  }
}

TEST_CASE("qaoa engine: without the stored diagonal, layers and moments are the same") {
  // n = 1 (one table entry), 13 (one high bit) and 17: the block energies recomputed from the
  // factorised tables against the stored diagonal, which the test above checks term by term.
  for (int n : {1, 13, 17}) {
    CAPTURE(n);
    const QuboModel model = test::random_model(n, 0.5, 40 + static_cast<std::uint64_t>(n), 3);
    const CostTerms cost = CostTerms::from_model(model);
    const Engine<double> stored(cost, {}, MixerKind::kX, SpaceKind::kFull);
    const Engine<double> lean(cost, {}, MixerKind::kX, SpaceKind::kFull, 1,
                              detail::qaoa::DiagonalStorage::kFactorised);
    auto a = stored.make_state(), b = lean.make_state();
    stored.initial_state(a.data());
    lean.initial_state(b.data());
    stored.layer(a.data(), 0.3, 0.7);
    lean.layer(b.data(), 0.3, 0.7);
    for (std::uint64_t z = 0; z < stored.dimension(); ++z) CHECK(a[z] == b[z]);
    const auto ma = stored.moments(a.data()), mb = lean.moments(b.data());
    CHECK(mb.mean == doctest::Approx(ma.mean).epsilon(1e-12));
    CHECK(mb.second == doctest::Approx(ma.second).epsilon(1e-12));
    CHECK_THROWS_AS((void)lean.diagonal_range(), InvalidArgument);
  }
}

/// Naive reference for larger n: phase from model energies, then one loop per qubit.
std::vector<cd> naive_layers(const QuboModel& m, const std::vector<double>& gam,
                             const std::vector<double>& bet) {
  const int n = m.num_variables();
  const std::size_t dim = std::size_t{1} << n;
  std::vector<double> c(dim);
  for (std::size_t z = 0; z < dim; ++z) c[z] = energy_of(m, z);
  std::vector<cd> psi(dim, cd(1.0 / std::sqrt(static_cast<double>(dim)), 0));
  for (std::size_t l = 0; l < gam.size(); ++l) {
    for (std::size_t z = 0; z < dim; ++z) psi[z] *= std::exp(cd(0, -gam[l] * c[z]));
    for (int q = 0; q < n; ++q)
      for (std::size_t z = 0; z < dim; ++z)
        if (!((z >> q) & 1U)) {
          const cd u = psi[z], v = psi[z | (std::size_t{1} << q)];
          psi[z] = std::cos(bet[l]) * u - cd(0, std::sin(bet[l])) * v;
          psi[z | (std::size_t{1} << q)] = std::cos(bet[l]) * v - cd(0, std::sin(bet[l])) * u;
        }
  }
  return psi;
}

TEST_CASE("qaoa engine: blocked high-qubit passes equal a naive per-qubit loop") {
  for (int n : {15, 21}) {
    CAPTURE(n);
    const QuboModel model = test::random_model(n, 0.3, 99, 2);
    const std::vector<double> gam =
        n < 20 ? std::vector<double>{0.05, 0.11} : std::vector<double>{0.07};
    const std::vector<double> bet =
        n < 20 ? std::vector<double>{0.4, 0.2} : std::vector<double>{0.3};
    const std::vector<cd> ref = naive_layers(model, gam, bet);
    const Engine<double> engine(CostTerms::from_model(model), {}, MixerKind::kX, SpaceKind::kFull);
    auto psi = engine.make_state();
    engine.initial_state(psi.data());
    for (std::size_t l = 0; l < gam.size(); ++l) engine.layer(psi.data(), gam[l], bet[l]);
    double err = 0.0;
    for (std::size_t z = 0; z < ref.size(); ++z) err = std::max(err, std::abs(cd(psi[z]) - ref[z]));
    CHECK(err < 1e-12);
    // The mixer alone and the inverse layer go through the same passes.
    for (std::size_t l = gam.size(); l-- > 0;) engine.layer_inverse(psi.data(), gam[l], bet[l]);
    err = 0.0;
    for (std::size_t z = 0; z < ref.size(); ++z)
      err = std::max(
          err, std::abs(cd(psi[z]) - cd(1.0 / std::sqrt(static_cast<double>(ref.size())), 0)));
    CHECK(err < 1e-12);
  }
}

TEST_CASE("qaoa engine: X-mixer kernels of every instruction set and both rotation forms") {
  // The kernels rotate by tan(beta) when |cos| >= |sin| and by cot(beta) with the pair swapped
  // otherwise (beta = 1.2, -0.9, pi/2), leaving a global factor to the phase table (layer) or to
  // the block kernel (mixer alone); n = 1 and 2 run the scalar fallback, 13 and 16 the high passes.
  using detail::qaoa::KernelIsa;
  const std::vector<double> gam = {0.21, -0.13, 0.4, 0.0, 0.17};
  const std::vector<double> bet = {0.3, 1.2, -0.9, 1.5707963267948966, 0.0};
  const KernelIsa best = detail::qaoa::best_kernel_isa();
  for (KernelIsa isa : {KernelIsa::kGeneric, KernelIsa::kAvx2, KernelIsa::kAvx512}) {
    if (isa > best) {
      MESSAGE("this CPU has no " << detail::qaoa::to_string(isa) << " kernels; not tested here");
      continue;
    }
    detail::qaoa::set_kernel_isa(isa);
    CAPTURE(detail::qaoa::to_string(isa));
    for (int n : {1, 2, 3, 6, 13, 16}) {
      CAPTURE(n);
      const QuboModel model = test::random_model(n, 0.5, 5 + static_cast<std::uint64_t>(n), 2);
      const std::vector<cd> ref = naive_layers(model, gam, bet);
      const CostTerms cost = CostTerms::from_model(model);
      const Engine<double> engine(cost, {}, MixerKind::kX, SpaceKind::kFull);
      const Engine<float> single(cost, {}, MixerKind::kX, SpaceKind::kFull);
      auto psi = engine.make_state();
      auto phi = single.make_state();
      engine.initial_state(psi.data());
      single.initial_state(phi.data());
      for (std::size_t l = 0; l < gam.size(); ++l) {
        // Layer 4 has gamma = 0: the same through the mixer alone.
        if (gam[l] == 0.0) {
          engine.mixer(psi.data(), bet[l]);
          single.mixer(phi.data(), bet[l]);
        } else {
          engine.layer(psi.data(), gam[l], bet[l]);
          single.layer(phi.data(), gam[l], bet[l]);
        }
      }
      double err = 0.0, err_float = 0.0;
      for (std::size_t z = 0; z < ref.size(); ++z) {
        err = std::max(err, std::abs(cd(psi[z]) - ref[z]));
        err_float = std::max(err_float, std::abs(cd(phi[z]) - ref[z]));
      }
      CHECK(err < 1e-12);
      CHECK(err_float < 2e-6);
    }
  }
  detail::qaoa::set_kernel_isa(best);
}

TEST_CASE("qaoa engine: X-mixer gradients equal finite differences, every instruction set") {
  // The blocked generator sum of mixer_adjoint (in-vector, across vectors, high-qubit tiles) at
  // n = 2 (scalar fallback in float), 13 (one high qubit) and 21 (two grouped passes): double
  // against central differences of the engine's own expectation, float against double.
  using detail::qaoa::KernelIsa;
  const KernelIsa best = detail::qaoa::best_kernel_isa();
  for (KernelIsa isa : {KernelIsa::kGeneric, KernelIsa::kAvx2, KernelIsa::kAvx512}) {
    if (isa > best) continue;  // reported by the kernel test above
    detail::qaoa::set_kernel_isa(isa);
    CAPTURE(detail::qaoa::to_string(isa));
    for (int n : {2, 13, 21}) {
      CAPTURE(n);
      const QuboModel model = test::random_model(n, 0.4, 17, 2);
      const CostTerms cost = CostTerms::from_model(model, model.max_flip_change());
      const Engine<double> engine(cost, {}, MixerKind::kX, SpaceKind::kFull);
      const Engine<float> single(cost, {}, MixerKind::kX, SpaceKind::kFull);
      const std::vector<double> gam = {0.4, -0.7}, bet = {0.35, 1.1};
      double f = 0.0, f_single = 0.0;
      const std::vector<double> grad = engine_gradient(engine, gam, bet, f);
      const std::vector<double> grad_single = engine_gradient(single, gam, bet, f_single);
      CHECK(f == doctest::Approx(engine_expectation(engine, gam, bet)).epsilon(1e-12));
      for (std::size_t k = 0; k < grad.size(); ++k) {
        CAPTURE(k);
        std::vector<double> g = gam, b = bet;
        auto& v = k < g.size() ? g[k] : b[k - g.size()];
        const double h = 1e-5;
        v += h;
        const double up = engine_expectation(engine, g, b);
        v -= 2 * h;
        const double down = engine_expectation(engine, g, b);
        CHECK(std::abs((up - down) / (2 * h) - grad[k]) < 1e-7);
        CHECK(std::abs(grad_single[k] - grad[k]) < 1e-4);
      }
    }
  }
  detail::qaoa::set_kernel_isa(best);
}

TEST_CASE("qaoa engine: float agrees with double") {
  const QuboModel model = test::random_model(14, 0.5, 3, 5);
  const CostTerms cost = CostTerms::from_model(model, model.max_flip_change());
  const Engine<double> d(cost, {}, MixerKind::kX, SpaceKind::kFull);
  const Engine<float> f(cost, {}, MixerKind::kX, SpaceKind::kFull);
  auto a = d.make_state();
  auto b = f.make_state();
  d.initial_state(a.data());
  f.initial_state(b.data());
  for (std::size_t l = 0; l < kGammas.size(); ++l) {
    d.layer(a.data(), kGammas[l], kBetas[l]);
    f.layer(b.data(), kGammas[l], kBetas[l]);
  }
  double err = 0.0;
  for (std::uint64_t z = 0; z < d.dimension(); ++z)
    err += std::norm(a[z] - std::complex<double>(b[z]));
  CHECK(std::sqrt(err) < 1e-5);
  CHECK(std::abs(d.moments(a.data()).mean - f.moments(b.data()).mean) < 1e-5);
}

TEST_CASE("qaoa engine: sampling is reproducible and follows |psi|^2") {
  const QuboModel model = test::random_model(6, 0.7, 21, 3);
  const Engine<double> e(CostTerms::from_model(model, model.max_flip_change()), {}, MixerKind::kX,
                         SpaceKind::kFull);
  auto psi = e.make_state();
  e.initial_state(psi.data());
  e.layer(psi.data(), 0.8, 0.4);
  const int shots = 20000;
  const auto s1 = e.sample(psi.data(), shots, 7), s2 = e.sample(psi.data(), shots, 7);
  CHECK(s1 == s2);
  CHECK(e.sample(psi.data(), shots, 8) != s1);
  std::map<std::uint64_t, int> count;
  for (auto z : s1) count[z]++;
  for (std::uint64_t z = 0; z < e.dimension(); ++z) {
    const double p = std::norm(psi[z]);
    const double sigma = std::sqrt(shots * p * (1 - p)) + 1.0;
    CHECK(std::abs(count[z] - shots * p) < 5 * sigma);
  }
}

TEST_CASE("qaoa engine: oversize requests throw ResourceError before allocating") {
  const QuboModel model = test::random_model(4, 0.5, 1);
  CostTerms big = CostTerms::from_model(model);
  big.n = 39;  // 2^39 amplitudes: 8 TiB
  big.linear = Eigen::VectorXd::Zero(39);
  big.couplings = Eigen::MatrixXd::Zero(39, 39);
  CHECK_THROWS_AS(Engine<double>(big, {}, MixerKind::kX, SpaceKind::kFull), ResourceError);
}

}  // namespace
}  // namespace qprune
