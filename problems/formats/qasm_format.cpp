// OpenQASM 3 (`.qasm`, write only): the p-layer QAOA circuit of a QUBO with the angles of
// WriteOptions::qaoa_gammas / qaoa_betas, in the units of qprune's qaoa solver: the phase
// exp(-i gamma C / B), B = QuboModel::max_flip_change(), and the X mixer exp(-i beta sum_j X_j),
// from |+>^n. Qubit j is variable j, |1> meaning x_j = 1. With x = (1 - Z) / 2 and rz(t) =
// exp(-i t Z / 2), dropping global phases:
//   exp(-i g c_j x_j / B)        = rz(-g c_j / B) on j,
//   exp(-i g q_ij x_i x_j / B)   = rz(-g q_ij / (2B)) on i and j, then rzz(g q_ij / (2B)),
// rzz(t) = exp(-i t Z Z / 2) = cx; rz(t) on the target; cx (defined in the file, as stdgates.inc
// has none); the mixer is rx(2 beta) on every qubit. Constraint groups arrive as the penalty
// (write_model adds it), so the X mixer is right. tests/test_qasm_format.cpp simulates the file
// gate by gate and matches the qaoa engine's state.
#include "problems/formats/format_entry.hpp"
#include "qprune/error.hpp"

namespace qprune::formats_detail {
namespace {

void write_qasm(const QuboModel& m, const WriteContext& context, std::string& out) {
  const std::vector<double>& gammas = context.qaoa_gammas;
  const std::vector<double>& betas = context.qaoa_betas;
  if (gammas.empty() || gammas.size() != betas.size())
    throw InvalidArgument(
        "the qasm format needs the QAOA angles: as many gammas as betas, at least one layer "
        "(qprune export --qaoa-layers P optimises them; --qaoa-gammas and --qaoa-betas give them)");
  const auto text = [&](double v) { return number_text(v, 17); };
  const int n = m.num_variables();
  const double scale = m.max_flip_change() > 0.0 ? m.max_flip_change() : 1.0;
  // Per qubit the linear part plus half of each coupling (the z-terms of x_i x_j).
  Eigen::VectorXd z_weight = m.linear();
  m.for_each_coupling([&](int i, int j, double q) {
    z_weight[i] += 0.5 * q;
    z_weight[j] += 0.5 * q;
  });
  out += "OPENQASM 3.0;\ninclude \"stdgates.inc\";\n";
  out += "// QAOA circuit written by qprune: " + std::to_string(gammas.size()) +
         " layers of exp(-i gamma C / B) then exp(-i beta sum_j X_j), from |+>^n; qubit j is\n"
         "// variable j (|1> = x_j = 1), C = offset + sum c_j x_j + sum q_ij x_i x_j, B = " +
         text(scale) + "\n";
  for (const std::string& note : context.notes) out += "// " + note + "\n";
  std::string gamma_list, beta_list;
  for (std::size_t l = 0; l < gammas.size(); ++l) {
    if (l > 0) {
      gamma_list.push_back(',');
      beta_list.push_back(',');
    }
    gamma_list.append(text(gammas[l]));
    beta_list.append(text(betas[l]));
  }
  out += "// qprune.qaoa_gammas=" + gamma_list + "\n// qprune.qaoa_betas=" + beta_list + "\n";
  out += "gate rzz(theta) a, b { cx a, b; rz(theta) b; cx a, b; }\n";
  out += "qubit[" + std::to_string(n) + "] q;\nbit[" + std::to_string(n) + "] c;\n";
  for (int j = 0; j < n; ++j) out += "h q[" + std::to_string(j) + "];\n";
  for (std::size_t l = 0; l < gammas.size(); ++l) {
    const double g = gammas[l] / scale;
    out += "// layer " + std::to_string(l + 1) + "\n";
    for (int j = 0; j < n; ++j)
      if (z_weight[j] != 0.0)
        out += "rz(" + text(-g * z_weight[j]) + ") q[" + std::to_string(j) + "];\n";
    m.for_each_coupling([&](int i, int j, double q) {
      out += "rzz(" + text(0.5 * g * q) + ") q[" + std::to_string(i) + "], q[" + std::to_string(j) +
             "];\n";
    });
    for (int j = 0; j < n; ++j)
      out += "rx(" + text(2.0 * betas[l]) + ") q[" + std::to_string(j) + "];\n";
  }
  out += "c = measure q;\n";
}

}  // namespace

FormatEntry qasm_format() {
  return {{"qasm",
           {".qasm"},
           false,
           true,
           "OpenQASM 3 QAOA circuit (write only): rz/rzz phase and rx mixer per layer, angles "
           "given or optimised (export --qaoa-layers)"},
          nullptr,
          write_qasm,
          false,
          false};
}

}  // namespace qprune::formats_detail
