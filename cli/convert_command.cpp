// `qprune convert IN OUT`: read a QUBO in one format, write it in another.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/model_input.hpp"
#include "cli/output_guard.hpp"
#include "cli/validators.hpp"
#include "qprune/error.hpp"
#include "qprune/qaoa_solver.hpp"

namespace qprune::cli {
namespace {

struct ConvertOptions {
  ModelInput input;
  std::string output;
  std::string to;
  std::optional<double> penalty_weight;
  bool ising = false;
  int qaoa_layers = 3;
  std::vector<double> qaoa_gammas;
  std::vector<double> qaoa_betas;
};

int run_convert(const ConvertOptions& opts) {
  guard_outputs({{"output", opts.output}}, {{"input", input_file(opts.input.path)}});
  const QuboModel model = read_input(opts.input);
  WriteOptions w;
  w.format = opts.to;
  w.penalty_weight = opts.penalty_weight;
  w.spin = opts.ising;
  w.qaoa_gammas = opts.qaoa_gammas;
  w.qaoa_betas = opts.qaoa_betas;
  if (w.qaoa_gammas.size() != w.qaoa_betas.size())
    throw InvalidArgument("--qaoa-gammas and --qaoa-betas need one value each per layer");
  if (write_format_for(opts.output, w.format) == "qasm" && w.qaoa_gammas.empty()) {
    QaoaOptions qaoa;
    qaoa.layers = opts.qaoa_layers;
    QaoaAngles angles = optimised_qaoa_angles(
        model.has_constraints() ? model.penalized(w.penalty_weight) : model, qaoa);
    w.qaoa_gammas = std::move(angles.gammas);
    w.qaoa_betas = std::move(angles.betas);
  }
  write_model(model, opts.output, w);
  std::cout << "Wrote     : " << opts.output << "\n"
            << "Variables : " << model.num_variables() << "\n"
            << "Couplings : " << model.num_couplings() << "\n";
  return 0;
}

}  // namespace

void setup_convert(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<ConvertOptions>();
  CLI::App* sub = app.add_subcommand(
      "convert", "Convert a QUBO file between formats (energies are kept exactly)");
  sub->footer(formats_help() +
              "\nFormats without constraint groups get them as a penalty "
              "w (s - k)^2 + shift (s - k), zero wherever the groups hold (default: the weight "
              "and shifts proven safe, docs/pruning_math.md section 10; `qprune export` can tune "
              "them for annealers); lp, lp-linear, mps and json keep them.");
  add_model_input(*sub, opts->input);
  sub->add_option("output", opts->output, "output file")->required();
  sub->add_option("--to", opts->to, "output format (default: from the output extension)")
      ->transform(CLI::IsMember(format_names(false, true), CLI::ignore_case));
  sub->add_option("--penalty-weight", opts->penalty_weight,
                  "weight of the constraint penalty for formats without constraint groups")
      ->check(non_negative());
  add_qaoa_angle_options(*sub, opts->qaoa_layers, opts->qaoa_gammas, opts->qaoa_betas);
  sub->add_flag("--ising", opts->ising,
                "write the Ising (SPIN) form, s = 2x - 1, same energies (coo: '# vartype=SPIN')");
  sub->callback([opts, &result] { result.exit_code = run_convert(*opts); });
}

}  // namespace qprune::cli
