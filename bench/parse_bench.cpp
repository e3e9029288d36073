// Parsing at disk speed (issue 17, point 2; BENCHMARKS.md "Issue 17: parsing at disk speed").
// Three modes:
//
//   parse_bench write DIR
//       Writes the test files, from fixed seeds: dense_int_1000.qubo (5.8 MB) and
//       dense_int_2000.qubo (25.6 MB), fully dense with integer coefficients uniform in
//       [-100, 100] (the files of bench/random_dense_instance.sh, same shape and size);
//       dense_real_1600.qubo (~25 MB, real coefficients in (-1, 1) with 6 decimals); and the
//       n = 2000 integer model as dense_int_2000.coo, .mqlib and .txt (Beasley).
//   parse_bench measure [--runs R] [--qprune PATH]... FILE...
//       Per file, interleaved, medians of R runs: the raw file read; read_model (bulk fast path);
//       read_model with the line-by-line readers only; the plain reader (std::getline +
//       strtol/strtod into a triplet list). With --qprune (one or more binaries), the whole
//       `qprune solve FILE -s sa --sweeps 1 -r 1 -q --json` as a process against `parse_bench
//       baseline FILE` as a process (the plain reader + one sweep of a neal-class kernel).
//   parse_bench read FILE R
//       read_model R times (to run under a profiler).
//   parse_bench baseline FILE
//       The plain reader, then one sweep of the neal-class kernel written below (neal's
//       cpu_sa.cpp algorithm: per-variable flip energies, Metropolis in variable order, the
//       neighbours' energies updated on a flip); prints its time. Not bench/neal_reference.hpp:
//       that one starts from a QuboModel, whose construction would be timed as part of the
//       baseline; a plain pipeline goes from triplets straight to adjacency lists.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "core/input_file.hpp"
#include "problems/formats/format_entry.hpp"
#include "qprune/formats.hpp"

namespace {

using qprune::bench::median;

namespace fs = std::filesystem;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- test files ---------------------------------------------------------------------------

struct Dense {
  int n = 0;
  std::vector<std::string> linear;                 // text of c_i
  std::vector<std::vector<std::string>> coupling;  // text of q_ij, j > i
};

Dense make_dense(int n, bool real, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Dense d;
  d.n = n;
  char buffer[64];
  const auto value = [&] {
    if (real) {
      std::snprintf(buffer, sizeof buffer, "%.6f",
                    std::uniform_real_distribution<double>(-1.0, 1.0)(rng));
    } else {
      std::snprintf(buffer, sizeof buffer, "%d",
                    static_cast<int>(std::uniform_int_distribution<int>(-100, 100)(rng)));
    }
    return std::string(buffer);
  };
  for (int i = 0; i < n; ++i) d.linear.push_back(value());
  d.coupling.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) d.coupling[static_cast<std::size_t>(i)].push_back(value());
  return d;
}

void write_qbsolv(const Dense& d, const fs::path& path, const std::string& note) {
  std::ofstream out(path);
  const long long n = d.n;
  out << "c " << note << "\np qubo 0 " << n << " " << n << " " << n * (n - 1) / 2 << "\n";
  for (int i = 0; i < d.n; ++i) out << i << " " << i << " " << d.linear[std::size_t(i)] << "\n";
  for (int i = 0; i < d.n; ++i)
    for (int j = i + 1; j < d.n; ++j)
      out << i << " " << j << " " << d.coupling[std::size_t(i)][std::size_t(j - i - 1)] << "\n";
}

// OR-Library Beasley layout: K, then `n nnz`, then 1-based `i j q` lines.
void write_beasley(const Dense& d, const fs::path& path) {
  std::ofstream out(path);
  const long long n = d.n;
  out << "1\n" << n << " " << n + n * (n - 1) / 2 << "\n";
  for (int i = 0; i < d.n; ++i)
    out << i + 1 << " " << i + 1 << " " << d.linear[std::size_t(i)] << "\n";
  for (int i = 0; i < d.n; ++i)
    for (int j = i + 1; j < d.n; ++j)
      out << i + 1 << " " << j + 1 << " " << d.coupling[std::size_t(i)][std::size_t(j - i - 1)]
          << "\n";
}

int run_write(const fs::path& dir) {
  fs::create_directories(dir);
  const std::string note = "random dense QUBO, integer coefficients uniform in [-100, 100]";
  write_qbsolv(make_dense(1000, false, 1), dir / "dense_int_1000.qubo", note);
  const Dense d2000 = make_dense(2000, false, 2);
  write_qbsolv(d2000, dir / "dense_int_2000.qubo", note);
  write_beasley(d2000, dir / "dense_int_2000.txt");
  const qprune::QuboModel model = qprune::read_model((dir / "dense_int_2000.qubo").string());
  qprune::write_model(model, (dir / "dense_int_2000.coo").string());
  qprune::write_model(model, (dir / "dense_int_2000.mqlib").string());
  write_qbsolv(make_dense(1600, true, 3), dir / "dense_real_1600.qubo",
               "random dense QUBO, real coefficients in (-1, 1), 6 decimals");
  for (const auto& entry : fs::directory_iterator(dir))
    std::printf("%-28s %8.2f MB\n", entry.path().filename().c_str(),
                static_cast<double>(entry.file_size()) / 1e6);
  return 0;
}

// ---- the plain reader and the neal-class sweep --------------------------------------------

struct Triplet {
  long i, j;
  double v;
};

// Every line of three numbers is an entry; the largest index gives n. (0-based or 1-based does
// not matter for timing; 1-based files just get one unused variable 0.)
std::vector<Triplet> plain_read(const std::string& path, long& n) {
  std::ifstream in(path);
  std::string line;
  std::vector<Triplet> t;
  n = 0;
  while (std::getline(in, line)) {
    const char* p = line.c_str();
    char* end = nullptr;
    const long i = std::strtol(p, &end, 10);
    if (end == p) continue;  // comment or header
    p = end;
    const long j = std::strtol(p, &end, 10);
    if (end == p) continue;
    p = end;
    const double v = std::strtod(p, &end);
    if (end == p) continue;
    t.push_back({i, j, v});
    n = std::max(n, std::max(i, j) + 1);
  }
  return t;
}

// One Metropolis sweep at beta = 1 from a random state, as neal does it: adjacency lists, the
// flip energy of every variable, variables in order, neighbours updated after a flip.
double neal_sweep(const std::vector<Triplet>& t, long n, std::uint64_t seed) {
  const auto un = static_cast<std::size_t>(n);
  std::vector<double> c(un, 0.0);
  std::vector<std::size_t> start(un + 1, 0);
  for (const Triplet& e : t)
    if (e.i != e.j) {
      ++start[std::size_t(e.i) + 1];
      ++start[std::size_t(e.j) + 1];
    }
  for (std::size_t k = 0; k < un; ++k) start[k + 1] += start[k];
  std::vector<std::size_t> next(start.begin(), start.end() - 1);
  std::vector<int> nb(start[un]);
  std::vector<double> w(start[un]);
  for (const Triplet& e : t) {
    if (e.i == e.j) {
      c[std::size_t(e.i)] += e.v;
      continue;
    }
    const std::size_t a = next[std::size_t(e.i)]++, b = next[std::size_t(e.j)]++;
    nb[a] = int(e.j), w[a] = e.v, nb[b] = int(e.i), w[b] = e.v;
  }
  std::mt19937_64 rng(seed);
  std::vector<char> x(un);
  for (auto& v : x) v = char(rng() & 1U);
  std::vector<double> field(c);  // c_i + sum_j q_ij x_j
  for (std::size_t i = 0; i < un; ++i)
    for (std::size_t k = start[i]; k < start[i + 1]; ++k)
      if (x[std::size_t(nb[k])]) field[i] += w[k];
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double energy_change = 0.0;
  for (std::size_t i = 0; i < un; ++i) {
    const double delta = x[i] ? -field[i] : field[i];
    if (delta > 0.0 && std::exp(-delta) <= u(rng)) continue;
    energy_change += delta;
    const double d = x[i] ? -1.0 : 1.0;
    x[i] = char(!x[i]);
    for (std::size_t k = start[i]; k < start[i + 1]; ++k) field[std::size_t(nb[k])] += d * w[k];
  }
  return energy_change;
}

int run_baseline(const std::string& path) {
  const double t0 = now_s();
  long n = 0;
  const std::vector<Triplet> t = plain_read(path, n);
  const double t1 = now_s();
  const double change = neal_sweep(t, n, 1);
  const double t2 = now_s();
  std::printf("read %.4f s, sweep %.4f s (energy change %g, %zu entries)\n", t1 - t0, t2 - t1,
              change, t.size());
  return 0;
}

// ---- measurements -------------------------------------------------------------------------

double run_process(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const double t0 = now_s();
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double t = now_s() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "%s failed (status %d)\n", argv[0].c_str(), status);
    std::exit(1);
  }
  return t;
}

int run_measure(int runs, const std::vector<std::string>& qprune_binaries,
                const std::vector<std::string>& files, const std::string& self) {
  for (const std::string& file : files) {
    const double mb = static_cast<double>(fs::file_size(file)) / 1e6;
    std::vector<double> raw, fast, checked, plain;
    for (int r = 0; r < runs; ++r) {
      double t0 = now_s();
      const std::string text = qprune::detail::read_input_text(file);
      raw.push_back(now_s() - t0);
      qprune::formats_detail::set_fast_readers(true);
      t0 = now_s();
      const qprune::QuboModel a = qprune::read_model(file);
      fast.push_back(now_s() - t0);
      qprune::formats_detail::set_fast_readers(false);
      t0 = now_s();
      const qprune::QuboModel b = qprune::read_model(file);
      checked.push_back(now_s() - t0);
      qprune::formats_detail::set_fast_readers(true);
      t0 = now_s();
      long n = 0;
      const std::vector<Triplet> t = plain_read(file, n);
      plain.push_back(now_s() - t0);
      if (a.num_couplings() != b.num_couplings() || text.empty() || t.empty()) return 1;
    }
    std::printf("%s (%.2f MB), medians of %d runs:\n", file.c_str(), mb, runs);
    const auto line = [&](const char* what, const std::vector<double>& v) {
      std::printf("  %-36s %8.4f s  %8.1f MB/s\n", what, median(v), mb / median(v));
    };
    line("file read (read_input_text)", raw);
    line("read_model, bulk fast path", fast);
    line("read_model, line-by-line reader", checked);
    line("plain reader (getline + strtol/strtod)", plain);
    if (qprune_binaries.empty()) continue;
    std::vector<std::vector<double>> solve(qprune_binaries.size());
    std::vector<double> baseline;
    for (int r = 0; r < runs; ++r) {
      for (std::size_t b = 0; b < qprune_binaries.size(); ++b)
        solve[b].push_back(run_process({qprune_binaries[b], "solve", file, "-s", "sa", "--sweeps",
                                        "1", "-r", "1", "-q", "--json"}));
      baseline.push_back(run_process({self, "baseline", file}));
    }
    std::printf("  end to end (processes), medians of %d runs:\n", runs);
    std::printf("  %-36s %8.4f s\n", "plain reader + 1 neal-class sweep", median(baseline));
    for (std::size_t b = 0; b < qprune_binaries.size(); ++b)
      std::printf("  %-36s %8.4f s  (baseline / this = %.2fx)\n",
                  (qprune_binaries[b] + " solve").c_str(), median(solve[b]),
                  median(baseline) / median(solve[b]));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const char* usage =
      "usage: parse_bench write DIR | measure [--runs R] [--qprune PATH]... FILE... | baseline "
      "FILE\n";
  if (args.empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  if (args[0] == "write" && args.size() == 2) return run_write(args[1]);
  if (args[0] == "baseline" && args.size() == 2) return run_baseline(args[1]);
  if (args[0] == "read" && args.size() == 3) {  // for a profiler: read_model R times
    for (int r = 0; r < std::atoi(args[2].c_str()); ++r) {
      const double t0 = now_s();
      const qprune::QuboModel m = qprune::read_model(args[1]);
      std::printf("%.4f s, %lld couplings\n", now_s() - t0,
                  static_cast<long long>(m.num_couplings()));
    }
    return 0;
  }
  if (args[0] == "measure") {
    int runs = 7;
    std::vector<std::string> binaries, files;
    for (std::size_t k = 1; k < args.size(); ++k) {
      if (args[k] == "--runs" && k + 1 < args.size()) {
        runs = std::atoi(args[++k].c_str());
      } else if (args[k] == "--qprune" && k + 1 < args.size()) {
        binaries.push_back(fs::absolute(args[++k]).string());
      } else {
        files.push_back(args[k]);
      }
    }
    return run_measure(runs, binaries, files, fs::canonical("/proc/self/exe").string());
  }
  std::fputs(usage, stderr);
  return 2;
}
