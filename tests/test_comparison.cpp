// Comparison metrics on synthetic run records with answers worked out by hand (TTS99 with p = 0,
// p = 1 and in between, median of odd and even counts, gaps with and without a reference, the
// reference order), the known-values reader, instance names, and small real comparisons checked
// against published optima and an independent brute force; CSV/SVG output shape; replay.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qprune/comparison.hpp"
#include "qprune/error.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

namespace {

RunRecord record(const std::string& solver, const std::string& instance, double energy,
                 double time_s, bool feasible = true, RunStatus status = RunStatus::kCompleted) {
  RunRecord r;
  r.solver = solver;
  r.solver_name = solver;
  r.instance = instance;
  r.num_variables = 10;
  r.status = status;
  r.has_solution = !std::isnan(energy);
  r.energy = energy;
  r.feasible = feasible;
  r.wall_time_s = time_s;
  return r;
}

std::vector<std::string> csv_split(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == ',' && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("tts99: p = 0 is infinite, p = 1 is one run, otherwise (1 - p)^(TTS/t) = 0.01") {
  CHECK(std::isinf(tts99(2.0, 0.0)));
  CHECK(tts99(2.0, 1.0) == 2.0);
  CHECK(tts99(2.0, 0.995) == 2.0);  // fewer than one run is still one run
  for (double p : {0.1, 0.5, 0.9}) {
    const double tts = tts99(2.0, p);
    // Independent check of the defining property: R runs fail together with probability 1%.
    CHECK(std::pow(1.0 - p, tts / 2.0) == doctest::Approx(0.01).epsilon(1e-12));
  }
  CHECK(tts99(1.0, 0.5) == doctest::Approx(6.643856189774724));  // log2(100)
  CHECK_THROWS_AS((void)tts99(1.0, 1.5), InvalidArgument);
  CHECK_THROWS_AS((void)tts99(1.0, -0.1), InvalidArgument);
  CHECK_THROWS_AS((void)tts99(-1.0, 0.5), InvalidArgument);
}

TEST_CASE("median of odd and even counts") {
  CHECK(median({3.0, 1.0, 2.0}) == 2.0);
  CHECK(median({4.0, 1.0, 3.0, 2.0}) == 2.5);
  CHECK(median({7.0}) == 7.0);
  CHECK(median({-1.0, -3.0}) == -2.0);
  CHECK(std::isnan(median({})));
}

TEST_CASE("relative gap and tolerance") {
  CHECK(relative_gap(-90.0, -100.0) == doctest::Approx(0.1));
  CHECK(relative_gap(110.0, 100.0) == doctest::Approx(0.1));
  CHECK(std::isnan(relative_gap(1.0, 0.0)));
  const Tolerance tol;  // 1e-9 relative + 1e-9 absolute
  CHECK(tol.of(-1000.0) == doctest::Approx(1e-9 + 1e-6));
  Reference ref{ReferenceKind::kKnownOptimal, -1000.0, ""};
  CHECK(is_success(record("sa", "a", -1000.0 + 5e-7, 1.0), ref, tol));
  CHECK_FALSE(is_success(record("sa", "a", -1000.0 + 1e-5, 1.0), ref, tol));
  CHECK_FALSE(is_success(record("sa", "a", -1000.0, 1.0, /*feasible=*/false), ref, tol));
  CHECK(is_success(record("sa", "a", -1001.0, 1.0), ref, tol));  // better than a best-known value
  CHECK_FALSE(is_success(record("sa", "a", -1000.0, 1.0), Reference{}, tol));
}

TEST_CASE("reference order: known optimal/best, then a proven optimum, then the best found") {
  std::vector<RunRecord> runs = {record("sa", "a", -8.0, 1.0), record("tabu", "a", -9.0, 1.0),
                                 record("sa", "a", -12.0, 1.0, /*feasible=*/false),
                                 record("exact", "a", -9.0, 1.0, true, RunStatus::kOptimal)};
  KnownValue known;
  known.instance = "a";
  known.maximise = true;
  known.value = 10.0;
  known.optimal = true;
  Reference r = select_reference(runs, known);
  CHECK(r.kind == ReferenceKind::kKnownOptimal);
  CHECK(r.energy == -10.0);  // max-sense value 10 is energy -10
  known.optimal = false;
  CHECK(select_reference(runs, known).kind == ReferenceKind::kKnownBest);
  r = select_reference(runs, std::nullopt);
  CHECK(r.kind == ReferenceKind::kExact);
  CHECK(r.energy == -9.0);
  runs.pop_back();
  r = select_reference(runs, std::nullopt);
  CHECK(r.kind == ReferenceKind::kBestFound);
  CHECK(r.energy == -9.0);  // the infeasible -12 does not count
  CHECK(select_reference({record("sa", "a", NAN, 1.0)}, std::nullopt).kind == ReferenceKind::kNone);
}

TEST_CASE("summarize_cell: energies, gaps, success, feasibility, TTS; skipped runs excluded") {
  const Reference ref{ReferenceKind::kKnownOptimal, -10.0, ""};
  const std::vector<RunRecord> runs = {record("sa", "a", -10.0, 1.0),
                                       record("sa", "a", -10.0, 3.0),
                                       record("sa", "a", -8.0, 2.0),
                                       record("sa", "a", -9.0, 4.0),
                                       record("sa", "a", -11.0, 5.0, /*feasible=*/false),
                                       record("sa", "a", NAN, 0.0, false, RunStatus::kSkipped)};
  const CellSummary s = summarize_cell(runs, ref, Tolerance{});
  CHECK(s.runs == 6);
  CHECK(s.runs_solved == 5);
  CHECK(s.runs_feasible == 4);
  CHECK(s.best == -10.0);
  CHECK(s.worst == -8.0);
  CHECK(s.median == -9.5);
  CHECK(s.best_gap_abs == 0.0);
  CHECK(s.best_gap_rel == 0.0);
  CHECK(s.median_gap_rel == doctest::Approx(0.05));
  CHECK(s.success_probability == doctest::Approx(2.0 / 5.0));  // 5 runs ran, 2 reached -10
  CHECK(s.feasibility_rate == doctest::Approx(4.0 / 5.0));
  CHECK(s.median_time_s == 3.0);  // of 1, 3, 2, 4, 5
  CHECK(std::pow(0.6, s.tts99_s / 3.0) == doctest::Approx(0.01));
  CHECK(s.note.starts_with("skipped"));

  const CellSummary none = summarize_cell(runs, Reference{}, Tolerance{});
  CHECK(std::isnan(none.best_gap_abs));
  CHECK(none.success_probability == 0.0);
  CHECK(std::isinf(none.tts99_s));
}

TEST_CASE("runs_csv: the status column holds each status's text; runs that never searched") {
  ComparisonReport report;
  report.runs = {record("exact", "a", -3.0, 1.0, true, RunStatus::kOptimal),
                 record("sa", "a", -3.0, 1.0, true, RunStatus::kTimeLimit),
                 record("sa", "a", NAN, 0.0, false, RunStatus::kSkipped),
                 record("sa", "a", NAN, 0.0, false, RunStatus::kError),
                 record("sa", "a", NAN, 0.0, false, RunStatus::kNotRun)};
  report.runs[3].message = "bad option";
  summarize(report, {}, Tolerance{});
  const std::vector<std::string> lines = lines_of(runs_csv(report, Tolerance{}));
  REQUIRE(lines.size() == 6);
  const char* expected[] = {"optimal", "time_limit", "skipped", "error", "not_run"};
  for (std::size_t i = 0; i < 5; ++i) CHECK(csv_split(lines[i + 1])[6] == expected[i]);
  CHECK(report.references["a"].kind == ReferenceKind::kExact);  // from the kOptimal run
  REQUIRE(report.summaries.size() == 2);
  const CellSummary& sa = report.summaries[1];
  CHECK(sa.solver == "sa");
  CHECK(sa.runs == 4);
  CHECK(sa.success_probability == 1.0);  // skipped, error and not_run runs do not count
  CHECK(sa.note == "skipped: ");
}

TEST_CASE("summarize: a table row counts only when n matches; max values are negated") {
  ComparisonReport report;
  report.runs = {record("sa", "x", -5.0, 1.0), record("sa", "y", -5.0, 1.0)};
  std::map<std::string, KnownValue> known;
  known["x"] = KnownValue{"f", "x", 10, true, 6.0, true, "src"};
  known["y"] = KnownValue{"f", "y", 11, false, -6.0, true, "src"};  // wrong n: ignored
  summarize(report, known, Tolerance{});
  REQUIRE(report.summaries.size() == 2);
  CHECK(report.references["x"].kind == ReferenceKind::kKnownOptimal);
  CHECK(report.references["x"].energy == -6.0);
  CHECK(report.summaries[0].best_gap_abs == 1.0);
  CHECK(report.references["y"].kind == ReferenceKind::kBestFound);
  CHECK(report.summaries[1].success_probability == 1.0);
}

TEST_CASE("instance names follow the reference-table rule") {
  CHECK(instance_name("dir/bqp50.txt#1") == "bqp50.1");
  CHECK(instance_name("gka1b.sparse") == "gka1b");
  CHECK(instance_name("/a/b/be100.1.sparse") == "be100.1");
  CHECK(instance_name("bqp500.gz#2") == "bqp500.2");
  CHECK(instance_name("G1.txt") == "G1");
  CHECK(instance_name("bqp50-1.sparse") == "bqp50-1");
  CHECK(instance_name("rudy/g05_60.0") == "g05_60.0");  // not a format extension: kept
  CHECK(instance_name("ising2.5-100_5555") == "ising2.5-100_5555");
  CHECK(make_instance("x/gka1b.sparse").name == "gka1b");
}

TEST_CASE("read_known_values: checked-in table and malformed rows") {
  const auto table = read_known_values(test::data_path("instances/known_values.csv"));
  REQUIRE(table.count("bqp50.1") == 1);
  CHECK(table.at("bqp50.1").energy() == -2098.0);
  CHECK(table.at("bqp50.1").optimal);
  CHECK(table.at("gka1b").energy() == -133.0);
  CHECK(table.at("gka1b").num_variables == 20);
  CHECK_FALSE(table.at("QPLIB_3852").optimal);

  const std::string path =
      (std::filesystem::temp_directory_path() / "qprune_test_known_values.csv").string();
  const auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  const std::string header = "family,instance,n,sense,value,status,source\n";
  write("family,instance,value\n");
  CHECK_THROWS_AS((void)read_known_values(path), ParseError);
  write(header + "f,a,10,maximum,5,optimal,src\n");
  CHECK_THROWS_WITH_AS((void)read_known_values(path), doctest::Contains(":2: expected sense"),
                       ParseError);
  write(header + "f,a,10,max,five,optimal,src\n");
  CHECK_THROWS_AS((void)read_known_values(path), ParseError);
  write(header + "f,a,10,max,5,optimal,src\nf,a,10,max,5,optimal,src\n");
  CHECK_THROWS_WITH_AS((void)read_known_values(path), doctest::Contains(":3:"), ParseError);
  write(header + "f,a,10,max,5,best-known,a source, with commas\n");
  CHECK(read_known_values(path).at("a").source == "a source, with commas");
  std::filesystem::remove(path);
  CHECK_THROWS_AS((void)read_known_values(path), IoError);
}

TEST_CASE("parse_solver_spec") {
  CHECK(parse_solver_spec("SA").name == "sa");
  const SolverSpec q = parse_solver_spec("qaoa:p2");
  CHECK(q.name == "qaoa");
  CHECK(q.qaoa_layers == 2);
  CHECK(parse_solver_spec("qaoa:p=3").qaoa_layers == 3);
  CHECK_THROWS_AS((void)parse_solver_spec("nosuch"), InvalidArgument);
  CHECK_THROWS_AS((void)parse_solver_spec("sa:p2"), InvalidArgument);
  CHECK_THROWS_AS((void)parse_solver_spec("qaoa:p0"), InvalidArgument);
}

TEST_CASE("run_comparison on published optima and on a plugged-in instance loader") {
  ComparisonOptions options;
  options.solvers = {parse_solver_spec("exact"), parse_solver_spec("greedy"),
                     parse_solver_spec("random")};
  options.num_seeds = 3;
  options.solve.seed = 7;
  options.jobs = 1;
  const auto known = read_known_values(test::data_path("instances/known_values.csv"));

  SUBCASE("gka1b and bqp50.txt#1 against the table") {
    options.max_variables["exact"] = 32;
    const std::vector<Instance> instances = {
        make_instance(test::data_path("instances/gka1b.sparse")),
        make_instance(test::data_path("instances/bqp50.txt#1"))};
    const ComparisonReport report = run_comparison(instances, options, known);
    REQUIRE(report.runs.size() == 2 * 3 * 3);
    for (std::size_t i = 0; i < report.runs.size(); ++i) CHECK(report.runs[i].index == int(i));
    CHECK(report.runs[0].seed == 7);
    CHECK(report.runs[2].seed == 9);
    CHECK(report.references.at("gka1b").kind == ReferenceKind::kKnownOptimal);
    CHECK(report.references.at("gka1b").energy == -133.0);  // Biq Mac, Wiegele 2007
    CHECK(report.references.at("bqp50.1").energy == -2098.0);
    REQUIRE(report.summaries.size() == 6);
    const CellSummary& exact = report.summaries[0];
    CHECK(exact.solver == "exact");
    CHECK(exact.best == -133.0);
    CHECK(exact.success_probability == 1.0);
    CHECK(exact.tts99_s == exact.median_time_s);
    const CellSummary& exact_big = report.summaries[3];
    CHECK(exact_big.runs_solved == 0);  // n = 50 > 32: skipped
    CHECK(exact_big.note.starts_with("skipped"));
    for (const CellSummary& s : report.summaries) {
      if (s.runs_solved == 0) continue;
      CHECK(s.best >= s.reference.energy);  // nothing beats a proven optimum
      CHECK(s.best <= s.median);
      CHECK(s.median <= s.worst);
    }

    const Tolerance tol;
    const std::vector<std::string> runs = lines_of(runs_csv(report, tol));
    REQUIRE(runs.size() == report.runs.size() + 1);
    CHECK(runs[0] ==
          "run,instance,instance_spec,n,solver,seed,status,energy,feasible,wall_time_s,threads,"
          "gap_abs,gap_rel,success,message");
    for (const std::string& line : runs) CHECK(csv_split(line).size() == 15);
    CHECK(csv_split(runs[1])[7] == "-133");
    const std::vector<std::string> summary = lines_of(summary_csv(report));
    REQUIRE(summary.size() == report.summaries.size() + 1);
    for (const std::string& line : summary) CHECK(csv_split(line).size() == 23);
    CHECK(csv_split(summary[1])[9] == "known_optimal");
    for (const std::string& svg : {gap_vs_time_svg(report), success_svg(report), tts_svg(report)}) {
      CHECK(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
      CHECK(svg.ends_with("</svg>\n"));
    }
    // One point per feasible run with a finite gap, and every instance named in the legend.
    const std::string scatter = gap_vs_time_svg(report);
    std::size_t points = 0;
    for (std::size_t at = scatter.find("class=\"run\""); at != std::string::npos;
         at = scatter.find("class=\"run\"", at + 1))
      ++points;
    int feasible = 0;
    for (const RunRecord& r : report.runs) feasible += r.has_solution && r.feasible;
    for (const RunRecord& r : report.runs)
      CHECK(scatter.find(">" + r.instance + "</text>") != std::string::npos);
    // The shape legend draws one marker per instance, with the same class.
    std::vector<std::string> names;
    for (const RunRecord& r : report.runs)
      if (std::find(names.begin(), names.end(), r.instance) == names.end())
        names.push_back(r.instance);
    CHECK(points == static_cast<std::size_t>(feasible) + names.size());
  }

  SUBCASE("a registered loader; without a table the exact optimum is the reference") {
    register_instance_loader([](const std::string& spec) -> std::optional<Instance> {
      if (!spec.starts_with("RANDOM:")) return std::nullopt;
      const auto seed = static_cast<std::uint64_t>(std::stoi(spec.substr(7)));
      return Instance{spec, spec, [seed] { return test::random_model(12, 0.5, seed); }};
    });
    const QuboModel model = test::random_model(12, 0.5, 42);
    const double optimum = test::brute_force_minimum(model, false);
    const ComparisonReport report = run_comparison({make_instance("RANDOM:42")}, options);
    CHECK(report.references.at("RANDOM:42").kind == ReferenceKind::kExact);
    CHECK(report.references.at("RANDOM:42").energy == doctest::Approx(optimum));
    CHECK(report.summaries[0].best == doctest::Approx(optimum));
    CHECK(report.summaries[1].best >= report.summaries[0].best);
  }
}

TEST_CASE("run_one replays a run of a parallel comparison exactly") {
  ComparisonOptions options;
  options.solvers = {parse_solver_spec("sa"), parse_solver_spec("tabu")};
  options.settings.anneal.num_sweeps = 50;
  options.settings.tabu.max_iterations = 2000;
  options.num_seeds = 3;
  options.solve.seed = 11;
  options.jobs = std::min(2, omp_get_max_threads());  // runs on worker threads, in any order
  options.threads_per_run = 1;
  const Instance instance = make_instance(test::data_path("instances/bqp50.txt#1"));
  const ComparisonReport report = run_comparison({instance}, options);
  const QuboModel model = instance.load();
  for (const RunRecord& r : report.runs) {
    SolveOptions solve = options.solve;
    solve.seed = r.seed;
    const RunRecord again = run_one(model, parse_solver_spec(r.solver), options.settings, solve);
    CHECK(again.has_solution);
    CHECK(again.energy == r.energy);
  }
  CHECK_THROWS_AS((void)run_comparison({instance},
                                       [] {
                                         ComparisonOptions o;
                                         o.solvers = {parse_solver_spec("sa")};
                                         o.num_seeds = 0;
                                         return o;
                                       }()),
                  InvalidArgument);
}
