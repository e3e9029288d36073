// What a neal user gets on a file qprune exported (issue 18 point 1): reads the file as any format
// qprune reads, anneals its Ising form with the neal-class reference (bench/neal_reference.hpp)
// at neal's defaults (1000 sweeps, geometric schedule over neal's default beta range, which
// dwave-samplers computes in `_default_ising_beta_range`: hot = ln 2 / (2 max_i sum |bias_i|),
// cold = ln(#variables with a nonzero bias / 0.01) / (2 min nonzero |bias|)), or over the
// file's exported hint (`qprune.beta_range`, in the file's own energy units), and prints the
// best and median final energies of the reads (the file's energy, offset included), so they
// compare directly with qprune's constrained optimum of the same layer.
//
// Usage: neal_export FILE [--reads R] [--sweeps S] [--seed N] [--schedule default|hint|HOT,COLD]
//        [--reference E]   (E: the constrained optimum; prints the gap in %)
//        [--write-best F]  (the best read as a 0/1 list, for `qprune import-solution`)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_support.hpp"
#include "bench/neal_reference.hpp"
#include "qprune/formats.hpp"

namespace {

using qprune::QuboModel;

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "neal_export: %s\nusage: neal_export FILE [--reads R] [--sweeps S] [--seed N] "
               "[--schedule default|hint|HOT,COLD] [--reference E] [--write-best F]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("expected a QUBO file");
  const std::string path = argv[1];
  int reads = 10;
  int sweeps = 1000;
  std::uint64_t seed = 1;
  std::string schedule = "default";
  double reference = std::nan("");
  std::string write_best;
  for (int a = 2; a < argc; ++a) {
    const std::string flag = argv[a];
    if (a + 1 >= argc) usage(("expected a value after " + flag).c_str());
    const char* value = argv[++a];
    if (flag == "--reads")
      reads = std::atoi(value);
    else if (flag == "--sweeps")
      sweeps = std::atoi(value);
    else if (flag == "--seed")
      seed = std::strtoull(value, nullptr, 10);
    else if (flag == "--schedule")
      schedule = value;
    else if (flag == "--reference")
      reference = std::atof(value);
    else if (flag == "--write-best")
      write_best = value;
    else
      usage(("unknown option " + flag).c_str());
  }
  if (reads < 1 || sweeps < 1) usage("--reads and --sweeps must be positive");

  const QuboModel model = qprune::read_model(path);
  const qprune::bench::NealReference neal(model);
  std::pair<double, double> range = qprune::bench::neal_default_range(model.to_ising());
  if (schedule == "hint") {
    const auto it = model.metadata.find("qprune.beta_range");
    if (it == model.metadata.end()) usage("the file has no qprune.beta_range hint");
    if (std::sscanf(it->second.c_str(), "%lf,%lf", &range.first, &range.second) != 2)
      usage("qprune.beta_range is not 'hot,cold'");
  } else if (schedule.find(',') != std::string::npos) {
    if (std::sscanf(schedule.c_str(), "%lf,%lf", &range.first, &range.second) != 2)
      usage("--schedule HOT,COLD expects two numbers");
  } else if (schedule != "default") {
    usage("--schedule is default, hint or HOT,COLD");
  }
  const std::vector<double> betas = qprune::bench::geometric_betas(range, sweeps);

  qprune::bench::Xorshift128Plus rng(seed);
  std::vector<double> energies;
  std::vector<std::int8_t> best_spins;
  double seconds = 0.0;
  for (int r = 0; r < reads; ++r) {
    auto read = neal.anneal(betas, rng);
    if (energies.empty() || read.energy < *std::min_element(energies.begin(), energies.end()))
      best_spins = std::move(read.spins);
    energies.push_back(read.energy);
    seconds += read.anneal_s;
  }
  if (!write_best.empty()) {
    std::ofstream out(write_best);
    for (const std::int8_t s : best_spins) out << (s > 0 ? 1 : 0) << '\n';
    if (!out) usage(("cannot write " + write_best).c_str());
  }
  const double best = *std::min_element(energies.begin(), energies.end());
  const double med = qprune::bench::median(energies);
  std::printf("file %s\nvariables %d\nbeta_range %.6g %.6g (%s)\nreads %d sweeps %d time_s %.3f\n",
              path.c_str(), model.num_variables(), range.first, range.second, schedule.c_str(),
              reads, sweeps, seconds);
  std::printf("best %.17g\nmedian %.17g\n", best, med);
  if (!std::isnan(reference))
    std::printf("gap_best_pct %.4f\ngap_median_pct %.4f\n", 100.0 * (best - reference) / reference,
                100.0 * (med - reference) / reference);
  return 0;
}
