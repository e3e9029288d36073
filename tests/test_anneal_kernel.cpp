// Tests of the annealing kernels' building blocks (solver/anneal/anneal_kernel.hpp): the integer
// kernels' tabulated Metropolis test against the exp path it replaces, and the packed CSR form's
// rows, couplings and fields against the model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/rng.hpp"
#include "solver/anneal/anneal_kernel.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

using detail::anneal::Metropolis;
using detail::anneal::SparseForm;

}  // namespace

TEST_CASE("integer Metropolis: the bound table decides exactly as exp does, draw for draw") {
  std::vector<float> table;
  for (double beta : {1e-4, 3e-3, 0.01, 0.07, 0.5, 1.0, 4.6, 30.0}) {
    const Metropolis<std::int32_t> plain(beta);
    const Metropolis<std::int32_t> tabulated(beta, table, 1u << 20);
    // Where the threshold fits, every delta below it is in the table.
    const double end = std::ceil(static_cast<double>(plain.threshold));
    if (end <= static_cast<double>(1u << 20)) CHECK(table.size() == static_cast<std::size_t>(end));
    pcg32 a = detail::make_rng(5, static_cast<std::uint64_t>(beta * 1000));
    pcg32 b = a;
    for (std::int32_t delta = -3; delta < 3 * static_cast<std::int32_t>(std::min(end, 1e5)) + 5;
         ++delta) {
      for (int k = 0; k < 4; ++k) {
        REQUIRE(plain.accept(delta, a) == tabulated.accept(delta, b));
        REQUIRE(a == b);  // the same draws were taken
      }
    }
  }
  // A table cap below the threshold: the deltas above the cap take the exp path, same decisions.
  const Metropolis<std::int32_t> plain(1e-3);
  const Metropolis<std::int32_t> capped(1e-3, table, 100);
  pcg32 a = detail::make_rng(1, 2), b = a;
  for (std::int32_t delta = 0; delta < 30000; delta += 7) {
    REQUIRE(plain.accept(delta, a) == capped.accept(delta, b));
    REQUIRE(a == b);
  }
}

TEST_CASE("packed CSR form: rows, couplings and fields match the model") {
  const QuboModel m = test::random_model(40, 0.2, 3, 100, Storage::kSparse);
  const SparseForm<std::int32_t, std::int8_t> form(m);
  const SparseForm<float> real(m);
  std::int64_t nnz = 0;
  for (int a = 0; a < 40; ++a) {
    for (int b = 0; b < 40; ++b) {
      const double q = a == b ? 0.0 : m.coupling(a, b);
      CHECK(form.coupling(a, b) == static_cast<std::int32_t>(q));
      CHECK(real.coupling(a, b) == static_cast<float>(q));
      nnz += q != 0.0;
    }
  }
  CHECK(form.entries() == nnz);
  // Fields of a random assignment, then one row update each way, against a direct sum.
  pcg32 rng = detail::make_rng(7, 0);
  std::vector<std::uint8_t> x(40);
  for (auto& v : x) v = static_cast<std::uint8_t>(rng(2));
  std::vector<std::int32_t> h(40);
  detail::anneal::compute_fields(form, x.data(), h.data());
  const auto expected = [&](int i) {
    double f = m.linear()[i];
    for (int j = 0; j < 40; ++j)
      if (j != i && x[static_cast<std::size_t>(j)]) f += m.coupling(i, j);
    return static_cast<std::int32_t>(f);
  };
  for (int i = 0; i < 40; ++i) CHECK(h[static_cast<std::size_t>(i)] == expected(i));
  for (int i : {0, 17, 39}) {
    form.add_row(h.data(), i, x[static_cast<std::size_t>(i)] ? -1 : 1);
    x[static_cast<std::size_t>(i)] ^= 1;
  }
  for (int i = 0; i < 40; ++i) CHECK(h[static_cast<std::size_t>(i)] == expected(i));
  CHECK(detail::anneal::energy_from_fields(form, x.data(), h.data()) ==
        m.energy(Assignment(x.begin(), x.end())));
}

}  // namespace qprune
