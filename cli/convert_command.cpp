// `qprune convert IN OUT`: read a QUBO in one format, write it in another.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/model_input.hpp"
#include "cli/output_guard.hpp"
#include "cli/validators.hpp"

namespace qprune::cli {
namespace {

struct ConvertOptions {
  ModelInput input;
  std::string output;
  std::string to;
  std::optional<double> penalty_weight;
};

int run_convert(const ConvertOptions& opts) {
  guard_outputs({{"output", opts.output}}, {{"input", input_file(opts.input.path)}});
  const QuboModel model = read_input(opts.input);
  WriteOptions w;
  w.format = opts.to;
  w.penalty_weight = opts.penalty_weight;
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
              "\nFormats without constraint groups get them as a penalty w (sum x - k)^2 "
              "(default w = 1.01 B, B the largest single-flip change); lp, lp-linear, mps and json "
              "keep them.");
  add_model_input(*sub, opts->input);
  sub->add_option("output", opts->output, "output file")->required();
  sub->add_option("--to", opts->to, "output format (default: from the output extension)")
      ->transform(CLI::IsMember(format_names(false, true), CLI::ignore_case));
  sub->add_option("--penalty-weight", opts->penalty_weight,
                  "weight of the constraint penalty for formats without constraint groups")
      ->check(non_negative());
  sub->callback([opts, &result] { result.exit_code = run_convert(*opts); });
}

}  // namespace qprune::cli
