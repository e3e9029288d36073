// `qprune info FILE`: what a QUBO file holds: size, density, storage, coefficient ranges,
// constraint groups, and cheap bounds on the energy.
#include <cmath>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/model_input.hpp"
#include "cli/report.hpp"

namespace qprune::cli {
namespace {

struct InfoOptions {
  ModelInput input;
  bool json = false;
};

int run_info(const InfoOptions& opts) {
  const QuboModel model = read_input(opts.input);
  const std::string format =
      opts.input.format.empty() ? detect_format(opts.input.path) : opts.input.format;
  double max_abs = 0.0, min_abs = INFINITY;
  auto track = [&](double v) {
    if (v == 0.0) return;
    max_abs = std::max(max_abs, std::abs(v));
    min_abs = std::min(min_abs, std::abs(v));
  };
  int nonzero_linear = 0;
  for (Eigen::Index i = 0; i < model.linear().size(); ++i) {
    track(model.linear()[i]);
    nonzero_linear += model.linear()[i] != 0.0;
  }
  model.for_each_coupling([&](int, int, double q) { track(q); });
  const EnergyBounds bounds = model.energy_bounds();

  Report r("info");
  r.add("File", "file", opts.input.path);
  r.add("Format", "file_format", format);
  r.add("Variables", "num_variables", model.num_variables());
  r.add("Couplings", "num_couplings", model.num_couplings());
  r.add("Linear terms", "num_linear", nonzero_linear);
  r.add("Density", "density", model.density());
  r.add("Storage", "storage", model.storage() == Storage::kDense ? "dense" : "sparse");
  r.add("Offset", "offset", json_number(model.offset()));
  r.add("Largest |coefficient|", "max_abs_coefficient", json_number(max_abs));
  r.add("Smallest |coefficient|", "min_abs_coefficient",
        json_number(std::isfinite(min_abs) ? min_abs : 0.0));
  r.add("Energy lower bound", "energy_lower_bound", json_number(bounds.lower));
  r.add("Energy upper bound", "energy_upper_bound", json_number(bounds.upper));
  r.add("Labels", "labels", model.labels().empty() ? "indices" : "named");
  r.add("Constraint groups", "num_constraints", static_cast<int>(model.constraints().size()));
  nlohmann::json groups = nlohmann::json::array();
  for (const CardinalityConstraint& g : model.constraints()) {
    groups.push_back({{"name", g.name}, {"size", g.variables.size()}, {"k", g.k}});
    // Text only: the JSON has them in the "constraints" array (no keys built from data).
    r.add("  group " + g.name, "",
          "exactly " + std::to_string(g.k) + " of " + std::to_string(g.variables.size()));
  }
  r.add_json("constraints", groups);
  for (const auto& [key, value] : model.metadata) r.add("Metadata " + key, "", value);
  r.add_json("metadata", model.metadata);
  r.print(std::cout, opts.json);
  return 0;
}

}  // namespace

void setup_info(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "Describe a QUBO file: size, density, ranges, groups");
  sub->footer(formats_help());
  add_model_input(*sub, opts->input);
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->callback([opts, &result] { result.exit_code = run_info(*opts); });
}

}  // namespace qprune::cli
