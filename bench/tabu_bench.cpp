// Tabu search on the OR-Library Beasley instances (bqp50 ... bqp1000): per instance the best-known
// value, the best value found over the seeds, the gap, how many seeds reached the best-known value
// and the median time to reach it. Each seed is one solve with target_energy = -best-known, so the
// solve stops the moment it is reached. The last column is the value of the published solution
// vector under this reader's conversion (it must equal best_known).
//
// The Beasley files maximise f(x) = sum_i q_ii x_i + 2 sum_{i<j} q_ij x_i x_j, each pair listed
// once with i < j (shared/benchmarks/README.md). As a minimisation QUBO: c_i = -q_ii and
// q_ij(model) = -2 q_ij, so E = -f. The small reader below stands in for the formats registry
// (written in parallel); zlib's gzopen reads both the .gz and the plain .txt files.
//
// Usage: tabu_bench [--seeds N] [--time-limit S] [--reads R] [--storage auto|dense|sparse]
//                   [--known known_values.csv] [--solutions DIR] [--only K] [--verbose]
//                   [--stall N] [--perturb F] [--relink P] [--elite M] FILE...
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "qprune/error.hpp"
#include "qprune/tabu_solver.hpp"

namespace {

std::string read_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw qprune::IoError("cannot open " + path);
  std::string text;
  char buffer[1 << 16];
  int got = 0;
  while ((got = gzread(f, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(got));
  gzclose(f);
  if (got < 0) throw qprune::IoError("cannot read " + path);
  return text;
}

std::vector<qprune::QuboModel> read_beasley(const std::string& path, qprune::Storage storage) {
  std::istringstream in(read_all(path));
  int count = 0;
  if (!(in >> count) || count < 1) throw qprune::ParseError(path, 1, "expected the instance count");
  std::vector<qprune::QuboModel> models;
  for (int k = 0; k < count; ++k) {
    int n = 0;
    long entries = 0;
    if (!(in >> n >> entries) || n < 1 || entries < 0) {
      throw qprune::ParseError(path, 0,
                               "expected 'n entries' of instance " + std::to_string(k + 1));
    }
    Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
    std::vector<qprune::Coupling> q;
    for (long e = 0; e < entries; ++e) {
      int i = 0, j = 0;
      double v = 0.0;
      if (!(in >> i >> j >> v) || i < 1 || j < 1 || i > n || j > n) {
        throw qprune::ParseError(path, 0, "expected 'i j value' with 1 <= i, j <= n");
      }
      if (i == j) {
        c[i - 1] -= v;
      } else {
        q.push_back({i - 1, j - 1, -2.0 * v});
      }
    }
    models.push_back(qprune::QuboModel::from_couplings(n, c, q, 0.0, storage));
  }
  return models;
}

// instance -> value (maximisation) from known_values.csv (family,instance,n,sense,value,...).
std::map<std::string, double> read_known(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw qprune::IoError("cannot open " + path);
  std::map<std::string, double> known;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',') && f.size() < 5;) f.push_back(cell);
    if (f.size() == 5 && f[0] == "beasley-orlib") known[f[1]] = std::atof(f[4].c_str());
  }
  return known;
}

// The value (maximisation) of a published solution vector (solutions/beasley/NAME.sol: '#' lines,
// then one '0'/'1' character per variable) under our conversion: a check of the reader. NaN when
// there is no such file.
double solution_value(const std::string& dir, const std::string& name, const qprune::QuboModel& m) {
  std::ifstream in(dir + "/" + name + ".sol");
  if (!in) return NAN;
  qprune::Assignment x;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    for (char ch : line)
      if (ch == '0' || ch == '1') x.push_back(static_cast<std::uint8_t>(ch - '0'));
  }
  if (static_cast<int>(x.size()) != m.num_variables()) return NAN;
  return -m.energy(x);
}

std::string stem(const std::string& path) {
  std::string s = path.substr(path.find_last_of('/') + 1);
  return s.substr(0, s.find('.'));
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 5, reads = 2, only = 0;
  double time_limit_s = 10.0;
  // Defaults: the benchmark collection beside the repository (--known / --solutions override).
  std::string known_path = QPRUNE_SHARED_BENCHMARKS "/known_values.csv";
  std::string solutions_dir = QPRUNE_SHARED_BENCHMARKS "/solutions/beasley";
  qprune::Storage storage = qprune::Storage::kAuto;
  qprune::TabuOptions tabu;
  tabu.max_iterations = std::int64_t{1} << 50;  // the time limit ends a run that misses
  bool verbose = false;
  std::vector<std::string> files;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    auto next = [&]() -> std::string {
      if (a + 1 >= argc) throw qprune::InvalidArgument(arg + " needs a value");
      return argv[++a];
    };
    if (arg == "--seeds") {
      seeds = std::stoi(next());
    } else if (arg == "--reads") {
      reads = std::stoi(next());
    } else if (arg == "--time-limit") {
      time_limit_s = std::stod(next());
    } else if (arg == "--known") {
      known_path = next();
    } else if (arg == "--solutions") {
      solutions_dir = next();
    } else if (arg == "--only") {
      only = std::stoi(next());
    } else if (arg == "--stall") {
      tabu.stall_iterations = std::stoll(next());
    } else if (arg == "--perturb") {
      tabu.perturbation_fraction = std::stod(next());
    } else if (arg == "--relink") {
      tabu.relink_probability = std::stod(next());
    } else if (arg == "--elite") {
      tabu.elite_size = std::stoi(next());
    } else if (arg == "--verbose") {
      verbose = true;
    } else if (arg == "--storage") {
      const std::string s = next();
      storage = s == "dense"    ? qprune::Storage::kDense
                : s == "sparse" ? qprune::Storage::kSparse
                                : qprune::Storage::kAuto;
    } else {
      files.push_back(arg);
    }
  }
  const auto known = read_known(known_path);
  std::printf("# seeds=%d reads=%d time_limit_s=%g\n", seeds, reads, time_limit_s);
  std::printf("%-12s %6s %10s %10s %9s %7s %10s %10s %12s %10s\n", "instance", "n", "best_known",
              "found", "gap_%", "hits", "median_s", "max_s", "iter_per_s", "sol_file");
  int all_hits = 0, all_runs = 0;
  for (const std::string& file : files) {
    const auto models = read_beasley(file, storage);
    for (std::size_t k = 0; k < models.size(); ++k) {
      if (only > 0 && static_cast<int>(k) + 1 != only) continue;
      const std::string name = stem(file) + "." + std::to_string(k + 1);
      const auto it = known.find(name);
      const double best_known = it == known.end() ? NAN : it->second;
      double found = -INFINITY, rate = 0.0;
      std::vector<double> times;
      int hits = 0;
      for (int s = 0; s < seeds; ++s) {
        qprune::SolveOptions o;
        o.seed = static_cast<std::uint64_t>(s);
        o.num_reads = reads;
        o.time_limit_s = time_limit_s;
        if (std::isfinite(best_known)) o.target_energy = -best_known;
        const auto r = qprune::TabuSearch(tabu).solve(models[k], o);
        if (verbose) {
          std::printf("#   seed %d: %.0f %s %.3f s, %.0f iterations, %.0f restarts\n", s,
                      -r.best().energy, std::string(qprune::to_string(r.status)).c_str(),
                      r.wall_time_s, r.counters.at("iterations"), r.counters.at("restarts"));
        }
        found = std::max(found, -r.best().energy);
        rate += r.counters.at("iterations_per_s") / seeds;
        const bool hit = r.status == qprune::SolveStatus::kTargetReached;
        hits += hit;
        times.push_back(hit ? r.wall_time_s : INFINITY);
      }
      std::sort(times.begin(), times.end());
      all_hits += hits;
      all_runs += seeds;
      std::printf("%-12s %6d %10.0f %10.0f %9.4f %4d/%-2d %10.3f %10.3f %12.0f %10.0f\n",
                  name.c_str(), models[k].num_variables(), best_known, found,
                  100.0 * (best_known - found) / std::abs(best_known), hits, seeds,
                  times[times.size() / 2], times.back(), rate,
                  solution_value(solutions_dir, name, models[k]));
      std::fflush(stdout);
    }
  }
  std::printf("# reached best-known in %d of %d runs\n", all_hits, all_runs);
  return 0;
}
