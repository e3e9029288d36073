// The OpenQASM 3 writer (problems/formats/qasm_format.cpp): the written circuit, simulated gate by
// gate with the textbook definitions of h, rz, rx and rzz (a simulator of its own, here), gives
// the state of qprune's qaoa engine for the same angles, up to a global phase; constraint groups
// arrive as the penalised model; angles are required.
#include <doctest/doctest.h>

#include <complex>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "solver/qaoa/statevector.hpp"
#include "tests/test_support.hpp"

namespace qprune {
namespace {

using State = std::vector<std::complex<double>>;

/// Runs the gate lines of a written circuit on |0...0> (qubit j = bit j of the index).
State simulate_qasm(const std::string& text, int n) {
  State psi(std::size_t{1} << n, 0.0);
  psi[0] = 1.0;
  const std::regex one(R"(^(h|rz|rx)(?:\(([^)]*)\))? q\[(\d+)\];$)");
  const std::regex two(R"(^rzz\(([^)]*)\) q\[(\d+)\], q\[(\d+)\];$)");
  const std::complex<double> i(0.0, 1.0);
  std::istringstream lines(text);
  std::string line;
  int gates = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, one)) {
      const std::size_t bit = std::size_t{1} << std::stoi(m[3]);
      const double t = m[2].matched ? std::stod(m[2]) : 0.0;
      for (std::size_t z = 0; z < psi.size(); ++z) {
        if ((z & bit) != 0) continue;
        const std::complex<double> a = psi[z], b = psi[z | bit];
        if (m[1] == "h") {
          psi[z] = (a + b) / std::sqrt(2.0);
          psi[z | bit] = (a - b) / std::sqrt(2.0);
        } else if (m[1] == "rz") {  // exp(-i t Z / 2)
          psi[z] = a * std::exp(-i * t / 2.0);
          psi[z | bit] = b * std::exp(i * t / 2.0);
        } else {  // rx: exp(-i t X / 2)
          psi[z] = std::cos(t / 2) * a - i * std::sin(t / 2) * b;
          psi[z | bit] = std::cos(t / 2) * b - i * std::sin(t / 2) * a;
        }
      }
      ++gates;
    } else if (std::regex_match(line, m, two)) {  // exp(-i t Z Z / 2)
      const double t = std::stod(m[1]);
      const int a = std::stoi(m[2]), b = std::stoi(m[3]);
      for (std::size_t z = 0; z < psi.size(); ++z) {
        const bool same = ((z >> a) & 1U) == ((z >> b) & 1U);
        psi[z] *= std::exp((same ? -1.0 : 1.0) * i * t / 2.0);
      }
      ++gates;
    } else {
      // Only the header, comments, declarations, the gate definition and the measurement remain.
      const bool known =
          line.empty() || line.rfind("//", 0) == 0 || line.rfind("OPENQASM 3.0;", 0) == 0 ||
          line.rfind("include ", 0) == 0 || line.rfind("gate rzz(theta) a, b {", 0) == 0 ||
          line.rfind("qubit[", 0) == 0 || line.rfind("bit[", 0) == 0 || line == "c = measure q;";
      CHECK_MESSAGE(known, "unexpected line: " << line);
    }
  }
  CHECK(gates > n);
  return psi;
}

/// The qaoa engine's state for the same angles.
State engine_state(const QuboModel& model, const std::vector<double>& gammas,
                   const std::vector<double>& betas) {
  using namespace detail::qaoa;
  const double scale = model.max_flip_change() > 0.0 ? model.max_flip_change() : 1.0;
  const Engine<double> engine(CostTerms::from_model(model, scale), {}, MixerKind::kX,
                              SpaceKind::kFull);
  AlignedArray<std::complex<double>> psi = engine.make_state();
  engine.initial_state(psi.data());
  for (std::size_t l = 0; l < gammas.size(); ++l) engine.layer(psi.data(), gammas[l], betas[l]);
  return {psi.data(), psi.data() + psi.size()};
}

double overlap(const State& a, const State& b) {
  std::complex<double> sum = 0.0;
  for (std::size_t z = 0; z < a.size(); ++z) sum += std::conj(a[z]) * b[z];
  return std::abs(sum);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("qasm: the written QAOA circuit has the engine's state (gate-by-gate simulation)") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "qprune_test_qasm";
  std::filesystem::create_directories(dir);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> angle(-1.5, 1.5);
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    QuboModel m = test::random_model(7, 0.6, seed, 20);
    if (seed % 2 == 0) m.add_constraint({"g", {0, 2, 3, 5}, 2});  // written as the penalty
    const QuboModel searched = m.has_constraints() ? m.penalized() : m;
    WriteOptions options;
    for (int l = 0; l < static_cast<int>(seed % 3) + 1; ++l) {
      options.qaoa_gammas.push_back(angle(rng));
      options.qaoa_betas.push_back(angle(rng));
    }
    const std::string path = (dir / "c.qasm").string();
    write_model(m, path, options);
    const State written = simulate_qasm(slurp(path), 7);
    const State engine = engine_state(searched, options.qaoa_gammas, options.qaoa_betas);
    CHECK(overlap(written, written) == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(overlap(written, engine) == doctest::Approx(1.0).epsilon(1e-10));
  }
  // Angles are required, as many betas as gammas.
  WriteOptions none;
  CHECK_THROWS_AS(write_model(test::random_model(4, 0.5, 1), (dir / "x.qasm").string(), none),
                  InvalidArgument);
  none.qaoa_gammas = {0.1};
  CHECK_THROWS_AS(write_model(test::random_model(4, 0.5, 1), (dir / "x.qasm").string(), none),
                  InvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace qprune
