// `qprune compare INSTANCES... --solvers sa,tabu,...`: every solver on every instance for every
// seed; an aligned table (or --markdown) on stdout, progress on stderr, and with -o OUTDIR the
// files runs.csv, summary.csv, comparison.json (every run with what it takes to replay it) and
// three SVG plots. `qprune compare --replay OUTDIR/comparison.json --run K` reruns run K.
//
// Replay works from the command line itself: comparison.json keeps the solver options exactly as
// they were given (`solver_arguments`), and the replay parses them again with the same option
// definitions, so a new solver option can never be forgotten by a serialiser.
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/interrupt.hpp"
#include "cli/output_guard.hpp"
#include "cli/parallel.hpp"
#include "cli/report.hpp"
#include "cli/result_json.hpp"
#include "cli/solver_options.hpp"
#include "cli/validators.hpp"
#include "core/input_file.hpp"
#include "core/json_input.hpp"
#include "qprune/comparison.hpp"
#include "qprune/error.hpp"

namespace qprune::cli {
namespace {

struct CompareCommandOptions {
  std::vector<std::string> instances;
  std::vector<std::string> solvers = {"greedy", "sa", "tabu", "random"};
  SolverChoice choice;
  int num_seeds = 5;
  std::string reference;
  std::string output_dir;
  bool markdown = false;
  bool quiet = false;
  int jobs = 0;
  int threads_per_run = 0;
  std::vector<std::string> max_variables;  // SOLVER=N
  double tolerance_rel = 1e-9;
  double tolerance_abs = 1e-9;
  std::string replay;
  int replay_run = -1;
  CLI::App* sub = nullptr;
};

// ---- solver arguments as given, for the replay -----------------------------------------------

std::vector<CLI::Option*> options_with_groups(CLI::App& app) {
  std::vector<CLI::Option*> all = app.get_options();
  for (CLI::App* group : app.get_subcommands([](CLI::App* a) { return a->get_name().empty(); })) {
    const std::vector<CLI::Option*> more = options_with_groups(*group);
    all.insert(all.end(), more.begin(), more.end());
  }
  return all;
}

/// The options add_solver_options defines that the user gave, as an argument list.
std::vector<std::string> given_arguments(const std::vector<CLI::Option*>& solver_options) {
  std::vector<std::string> args;
  for (const CLI::Option* opt : solver_options) {
    if (opt->count() == 0) continue;
    args.push_back(opt->get_name());
    if (opt->get_type_size_max() == 0) continue;  // a flag
    for (const std::string& value : opt->results()) args.push_back(value);
  }
  return args;
}

/// SolverChoice from an argument list, through the same definitions as the command line.
SolverChoice parse_solver_arguments(const std::vector<std::string>& args) {
  SolverChoice choice;
  CLI::App app{"replay"};
  add_solver_options(app, choice);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses a reversed list
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    throw InvalidArgument(std::string("replay: the recorded solver arguments do not parse: ") +
                          e.what());
  }
  return choice;
}

// ---- text output -----------------------------------------------------------------------------

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

std::string seconds(double v) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return "inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string energy_text(double v) { return std::isnan(v) ? "-" : format_double(v); }

std::vector<std::vector<std::string>> table_rows(const ComparisonReport& report) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"Instance", "n", "Solver", "Runs", "Best", "Median", "Worst", "Reference", "Kind",
                  "Gap best %", "Gap median %", "P(success)", "Median t (s)", "TTS99 (s)"});
  for (const CellSummary& s : report.summaries) {
    std::string solver = s.solver;
    const auto p = s.qaoa.find("approximation_ratio");
    if (p != s.qaoa.end()) solver += " (r=" + fixed(p->second, 3) + ")";
    rows.push_back({s.instance, std::to_string(s.num_variables), solver,
                    std::to_string(s.runs_solved) + "/" + std::to_string(s.runs),
                    energy_text(s.best), energy_text(s.median), energy_text(s.worst),
                    energy_text(s.reference.energy), std::string(to_string(s.reference.kind)),
                    fixed(100 * s.best_gap_rel, 3), fixed(100 * s.median_gap_rel, 3),
                    fixed(s.success_probability, 2), seconds(s.median_time_s), seconds(s.tts99_s)});
  }
  return rows;
}

void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                 bool markdown) {
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  const auto numeric = [](std::size_t c) { return c == 1 || c == 3 || (c >= 4 && c != 8); };
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::string line = markdown ? "| " : "";
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const std::string& cell = rows[r][c];
      const std::string pad(width[c] - cell.size(), ' ');
      line += numeric(c) && r > 0 ? pad + cell : cell + pad;
      if (c + 1 < rows[r].size()) line += markdown ? " | " : "  ";
    }
    if (markdown) line += " |";
    while (!markdown && !line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
    if (r == 0) {
      std::string rule = markdown ? "|" : "";
      for (std::size_t c = 0; c < width.size(); ++c) {
        if (markdown) {
          rule += (numeric(c) ? " " + std::string(width[c] - 1, '-') + ": |"
                              : " " + std::string(width[c], '-') + " |");
        } else {
          rule += std::string(width[c], '-') + (c + 1 < width.size() ? "  " : "");
        }
      }
      out << rule << "\n";
    }
  }
}

// ---- comparison.json -------------------------------------------------------------------------

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? json_number(v) : nlohmann::json(nullptr);
}

std::string resolved_spec(const std::string& spec) {
  namespace fs = std::filesystem;
  std::string path = spec, suffix;
  const std::size_t hash = spec.rfind('#');
  if (hash != std::string::npos) {
    path = spec.substr(0, hash);
    suffix = spec.substr(hash);
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) return spec;  // not a file: a registered loader's spec
  return fs::absolute(path, ec).lexically_normal().string() + suffix;
}

nlohmann::json typed_info(const std::map<std::string, std::string>& info) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : info) j[key] = typed_info_value(value);
  return j;
}

/// [[seconds, energy], ...]: the run's best-so-far trace.
nlohmann::json trace_json(const RunRecord& r) {
  nlohmann::json trace = nlohmann::json::array();
  for (std::size_t k = 0; k < r.trace_time_s.size() && k < r.trace_energy.size(); ++k)
    trace.push_back({r.trace_time_s[k], json_number(r.trace_energy[k])});
  return trace;
}

/// What the timings depend on: the CPU, its cores, the kernel, the threads the runs used.
nlohmann::json machine_facts(const ComparisonReport& report) {
  std::string cpu = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (!line.starts_with("model name")) continue;
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) cpu = line.substr(line.find_first_not_of(' ', colon + 1));
    break;
  }
  utsname u{};
  const bool named = uname(&u) == 0;
  return {{"cpu", cpu},
          {"hardware_threads", std::thread::hardware_concurrency()},
          {"system", named ? std::string(u.sysname) + " " + u.release : std::string("unknown")},
          {"machine", named ? std::string(u.machine) : std::string("unknown")},
          {"jobs", report.jobs},
          {"threads_per_run", report.threads_per_run}};
}

nlohmann::json comparison_json(const ComparisonReport& report, const CompareCommandOptions& opts,
                               const std::vector<std::string>& solver_arguments,
                               const std::vector<Instance>& instances) {
  const SolveOptions& so = opts.choice.options;
  nlohmann::json common = {{"first_seed", so.seed},
                           {"num_seeds", opts.num_seeds},
                           {"time_limit_s", number_or_null(so.time_limit_s)},
                           {"num_reads", so.num_reads},
                           {"constraint_mode", std::string(to_string(so.constraint_mode))},
                           {"max_samples", so.max_samples},
                           {"jobs", report.jobs},
                           {"threads_per_run", report.threads_per_run},
                           {"tolerance_relative", opts.tolerance_rel},
                           {"tolerance_absolute", opts.tolerance_abs},
                           {"max_variables", opts.max_variables},
                           {"reference_file", opts.reference}};
  nlohmann::json j;
  j["format"] = "qprune-comparison";
  j["version"] = 2;  // 2: info typed (docs/json.md), x and trace per run, qprune_version, machine
  j["qprune_version"] = QPRUNE_VERSION;
  j["machine"] = machine_facts(report);
  j["solvers"] = opts.solvers;
  j["solver_arguments"] = solver_arguments;
  j["options"] = common;
  nlohmann::json inst = nlohmann::json::array();
  std::map<std::string, std::string> resolved;
  for (const Instance& i : instances) {
    resolved[i.spec] = resolved_spec(i.spec);
    const auto ref = report.references.find(i.name);
    nlohmann::json entry = {{"name", i.name}, {"spec", i.spec}, {"resolved", resolved[i.spec]}};
    if (ref != report.references.end()) {
      entry["reference"] = number_or_null(ref->second.energy);
      entry["reference_kind"] = std::string(to_string(ref->second.kind));
      entry["reference_source"] = ref->second.source;
    }
    inst.push_back(entry);
  }
  j["instances"] = inst;
  nlohmann::json runs = nlohmann::json::array();
  for (const RunRecord& r : report.runs) {
    runs.push_back({{"run", r.index},
                    {"solver", r.solver},
                    {"solver_name", r.solver_name},
                    {"instance", r.instance},
                    {"instance_spec", r.instance_spec},
                    {"instance_resolved", resolved[r.instance_spec]},
                    {"num_variables", r.num_variables},
                    {"seed", r.seed},
                    {"time_limit_s", number_or_null(so.time_limit_s)},
                    {"num_reads", so.num_reads},
                    {"solver_arguments", solver_arguments},
                    {"status", std::string(to_string(r.status))},
                    {"message", r.message},
                    {"energy", number_or_null(r.energy)},
                    {"feasible", r.feasible},
                    {"wall_time_s", r.wall_time_s},
                    {"threads", r.threads},
                    {"counters", r.counters},
                    {"info", typed_info(r.info)},
                    {"x", r.best_x},
                    {"trace", trace_json(r)}});
  }
  j["runs"] = runs;
  nlohmann::json summary = nlohmann::json::array();
  for (const CellSummary& s : report.summaries) {
    summary.push_back({{"solver", s.solver},
                       {"instance", s.instance},
                       {"num_variables", s.num_variables},
                       {"runs", s.runs},
                       {"runs_solved", s.runs_solved},
                       {"best", number_or_null(s.best)},
                       {"median", number_or_null(s.median)},
                       {"worst", number_or_null(s.worst)},
                       {"reference", number_or_null(s.reference.energy)},
                       {"reference_kind", std::string(to_string(s.reference.kind))},
                       {"best_gap_abs", number_or_null(s.best_gap_abs)},
                       {"best_gap_rel", number_or_null(s.best_gap_rel)},
                       {"median_gap_rel", number_or_null(s.median_gap_rel)},
                       {"success_probability", s.success_probability},
                       {"median_time_s", number_or_null(s.median_time_s)},
                       {"tts99_s", number_or_null(s.tts99_s)},
                       {"feasibility_rate", number_or_null(s.feasibility_rate)},
                       {"threads", s.threads},
                       {"qaoa", s.qaoa},
                       {"note", s.note}});
  }
  j["summary"] = summary;
  return j;
}

// ---- the two modes ---------------------------------------------------------------------------

int run_replay(const CompareCommandOptions& opts) {
  // Through the library's JSON input: nesting bounded, errors as ParseError naming the file.
  nlohmann::json j = qprune::detail::parse_json<nlohmann::json>(
      qprune::detail::read_input_file(opts.replay), {opts.replay});
  if (!j.is_object() || j.value("format", "") != "qprune-comparison" || !j["runs"].is_array()) {
    throw ParseError(opts.replay, 0,
                     "expected a qprune comparison.json (format qprune-comparison)");
  }
  if (opts.replay_run < 0 || opts.replay_run >= static_cast<int>(j["runs"].size())) {
    throw InvalidArgument("--run must be in [0, " + std::to_string(j["runs"].size()) + "), got " +
                          std::to_string(opts.replay_run));
  }
  const nlohmann::json& run = j["runs"][static_cast<std::size_t>(opts.replay_run)];
  SolverChoice choice =
      parse_solver_arguments(run.at("solver_arguments").get<std::vector<std::string>>());
  choice.options.seed = run.at("seed").get<std::uint64_t>();
  choice.options.interrupt = install_interrupt_handler();
  const SolverSpec spec = parse_solver_spec(run.at("solver").get<std::string>());
  std::string source = run.value("instance_resolved", "");
  if (source.empty()) source = run.at("instance_spec").get<std::string>();
  const QuboModel model = make_instance(source).load();
  const std::string status_field = "runs[" + std::to_string(opts.replay_run) + "].status";
  if (!run.contains("status") || !run["status"].is_string())
    throw ParseError(opts.replay, 0, "expected \"" + status_field + "\" to be a run status");
  RunStatus recorded_status = RunStatus::kNotRun;
  try {
    recorded_status = run_status_from_string(run["status"].get<std::string>());
  } catch (const InvalidArgument& e) {
    throw ParseError(opts.replay, 0, "\"" + status_field + "\": " + e.what());
  }
  RunRecord replayed;
  const std::string recorded_message = run.value("message", "");
  if (recorded_status == RunStatus::kSkipped &&
      recorded_message.find("> max_variables") != std::string::npos) {
    // Skipped by --max-n, a comparison option: replaying means skipping again.
    replayed.status = RunStatus::kSkipped;
  } else {
    replayed = run_one(model, spec, choice.settings, choice.options);
  }

  const bool recorded_solution = run.at("energy").is_number();
  const double recorded = recorded_solution ? run.at("energy").get<double>() : std::nan("");
  const bool match = recorded_solution ? replayed.has_solution && replayed.energy == recorded
                                       : !replayed.has_solution;
  Report r("compare-replay");
  r.add("Run", "run", opts.replay_run);
  r.add("Solver", "solver", spec.label);
  r.add("Instance", "instance", run.at("instance_spec").get<std::string>());
  r.add("Seed", "seed", choice.options.seed);
  r.add("Recorded status", "recorded_status", std::string(to_string(recorded_status)));
  r.add("Replayed status", "replayed_status", std::string(to_string(replayed.status)));
  r.add("Recorded energy", "recorded_energy", recorded_solution ? format_double(recorded) : "-");
  r.add("Replayed energy", "replayed_energy",
        replayed.has_solution ? format_double(replayed.energy) : "-");
  r.add("Replayed time (s)", "replayed_wall_time_s", replayed.wall_time_s);
  r.add("Energy matches", "energy_matches", match);
  r.print(std::cout, false);
  if (!match &&
      (replayed.status == RunStatus::kTimeLimit || recorded_status == RunStatus::kTimeLimit)) {
    std::cerr << "qprune: note: a run stopped by the time limit depends on the machine's speed\n";
  }
  return match ? kExitOk : kExitFailure;
}

int run_compare(CompareCommandOptions opts) {
  if (!opts.replay.empty()) return process_rank() == 0 ? run_replay(opts) : kExitOk;
  if (opts.instances.empty())
    throw InvalidArgument("compare: give at least one INSTANCE (or --replay)");
  if (!opts.output_dir.empty()) {
    std::vector<NamedPath> inputs = {{"--reference", opts.reference}};
    for (const std::string& spec : opts.instances) inputs.push_back({"instance", input_file(spec)});
    guard_outputs({}, inputs, {{"--output", opts.output_dir}});
    check_replaceable_folder(opts.output_dir, [](const std::string& name) {
      return name == "runs.csv" || name == "summary.csv" || name == "comparison.json" ||
             name == "gap_vs_time.svg" || name == "success.svg" || name == "tts.svg";
    });
  }

  // The solver options the user gave, before anything else touches them.
  std::vector<CLI::Option*> solver_opts = options_with_groups(*opts.sub);
  std::erase_if(solver_opts, [](const CLI::Option* o) {
    static const std::vector<std::string> own = {
        "--solvers",  "--seeds",         "--reference",     "--output",
        "--markdown", "--quiet",         "--jobs",          "--threads-per-run",
        "--max-n",    "--tolerance-rel", "--tolerance-abs", "--replay",
        "--run",      "--help",          "instances"};
    return std::find(own.begin(), own.end(), o->get_name()) != own.end() || o->get_name().empty();
  });
  const std::vector<std::string> solver_arguments = given_arguments(solver_opts);

  ComparisonOptions co;
  for (const std::string& s : opts.solvers) co.solvers.push_back(parse_solver_spec(s));
  co.settings = opts.choice.settings;
  co.solve = opts.choice.options;
  co.solve.interrupt = install_interrupt_handler();
  co.runner = &process_runner();
  co.num_seeds = opts.num_seeds;
  co.jobs = opts.jobs;
  co.threads_per_run = opts.threads_per_run;
  co.tolerance = {opts.tolerance_rel, opts.tolerance_abs};
  for (const std::string& entry : opts.max_variables) {
    const std::size_t eq = entry.find('=');
    int limit = -1;
    try {
      if (eq != std::string::npos) limit = std::stoi(entry.substr(eq + 1));
    } catch (const std::exception&) {
    }
    if (eq == std::string::npos || limit < 0) {
      throw InvalidArgument("--max-n expects SOLVER=N (N >= 0), got '" + entry + "'");
    }
    co.max_variables[parse_solver_spec(entry.substr(0, eq)).label] = limit;
  }
  if (!opts.quiet) {
    co.progress = [](int done, int total, const RunRecord& r) {
      std::cerr << "[" << done << "/" << total << "] " << r.instance << " " << r.solver << " seed "
                << r.seed << ": " << to_string(r.status);
      if (r.has_solution) {
        std::cerr << ", E = " << format_double(r.energy) << (r.feasible ? "" : " (infeasible)");
      }
      std::cerr << ", " << seconds(r.wall_time_s) << " s\n";
    };
  }
  std::map<std::string, KnownValue> known;
  if (!opts.reference.empty()) known = read_known_values(opts.reference);

  std::vector<Instance> instances;
  for (const std::string& spec : opts.instances) instances.push_back(make_instance(spec));
  const ComparisonReport report = run_comparison(instances, co, known);
  if (!co.runner->is_coordinator()) return kExitOk;  // rank 0 prints and writes

  print_table(std::cout, table_rows(report), opts.markdown);
  if (!opts.markdown) {
    std::cout << "\nReference kinds: known_optimal/known_best from "
              << (opts.reference.empty() ? "(no --reference)" : opts.reference)
              << ", exact = proven in this run, best_found = best of any solver.\n"
              << "Success: feasible and E <= ref + " << format_double(opts.tolerance_abs) << " + "
              << format_double(opts.tolerance_rel) << " |ref|. TTS99 = median wall time x "
              << "ln(0.01)/ln(1-p) (at least one run), each run using " << report.threads_per_run
              << " thread(s), " << report.jobs << " run(s) at a time.\n";
  }
  if (!opts.output_dir.empty()) {
    // The six files go into a fresh folder beside -o, moved into place (replacing an earlier
    // report whole) once all are written.
    namespace fs = std::filesystem;
    const fs::path target(opts.output_dir);
    std::error_code ec;
    if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
    if (ec) throw IoError("cannot create " + target.parent_path().string() + ": " + ec.message());
    AtomicFolder folder(target, /*replace=*/true);
    const fs::path& dir = folder.path();
    write_file_atomically(dir / "runs.csv", runs_csv(report, co.tolerance));
    write_file_atomically(dir / "summary.csv", summary_csv(report));
    write_file_atomically(
        dir / "comparison.json",
        comparison_json(report, opts, solver_arguments, instances).dump(1) + "\n");
    write_file_atomically(dir / "gap_vs_time.svg", gap_vs_time_svg(report));
    write_file_atomically(dir / "success.svg", success_svg(report));
    write_file_atomically(dir / "tts.svg", tts_svg(report));
    folder.commit();
  }
  return report.interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

void setup_compare(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<CompareCommandOptions>();
  CLI::App* sub = app.add_subcommand("compare", "Compare solvers on instances over several seeds");
  opts->sub = sub;
  sub->footer(
      "Instances: QUBO files in any readable format, FILE#k for instance k of a multi-instance "
      "file. Their reference name is the file name without .gz and its last extension, plus .k "
      "for FILE#k (bqp50.txt#1 -> bqp50.1, gka1b.sparse -> gka1b); a --reference row counts only "
      "when its n matches. Reference order: the table's value (optimal, then best-known; max "
      "values become energy -value), else an optimum proven by a run (exact), else the best "
      "energy any run found.\n"
      "Solvers: NAME or qaoa:pK (QAOA with K layers). Run k of a cell uses seed --seed + k. "
      "Cells run --jobs at a time with --threads-per-run OpenMP threads each (default: every "
      "core busy, one thread per run); times are wall times of single runs. Under mpirun (MPI "
      "build) the cells are spread over the ranks instead, one at a time per rank with the "
      "rank's cores (--threads-per-run), and rank 0 writes the same results.\n"
      "Files in -o OUTDIR: runs.csv, summary.csv, comparison.json, gap_vs_time.svg, success.svg, "
      "tts.svg. --replay OUTDIR/comparison.json --run K reruns run K and exits 0 when its energy "
      "matches, 1 when not.");
  sub->add_option("instances", opts->instances, "instances (QUBO files, FILE#k)");
  sub->add_option("--solvers", opts->solvers, "solvers to compare, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--seeds", opts->num_seeds, "runs (seeds) per solver and instance")
      ->check(positive())
      ->capture_default_str();
  sub->add_option("--reference", opts->reference,
                  "known values CSV (family,instance,n,sense,value,status,source)");
  sub->add_option("--output,-o", opts->output_dir, "folder for the CSV, JSON and SVG files");
  sub->add_flag("--markdown", opts->markdown, "print the table as Markdown");
  sub->add_flag("--quiet,-q", opts->quiet, "no progress lines on stderr");
  sub->add_option("--jobs,-j", opts->jobs, "runs at a time (0: every core)")
      ->check(non_negative())
      ->capture_default_str();
  sub->add_option("--threads-per-run", opts->threads_per_run,
                  "OpenMP threads per run (0: cores / jobs)")
      ->check(non_negative())
      ->capture_default_str();
  sub->add_option("--max-n", opts->max_variables,
                  "SOLVER=N: skip that solver on instances with more than N variables")
      ->delimiter(',');
  sub->add_option("--tolerance-rel", opts->tolerance_rel, "relative success tolerance")
      ->check(non_negative())
      ->capture_default_str();
  sub->add_option("--tolerance-abs", opts->tolerance_abs, "absolute success tolerance")
      ->check(non_negative())
      ->capture_default_str();
  sub->add_option("--replay", opts->replay, "comparison.json of an earlier compare");
  sub->add_option("--run", opts->replay_run, "run index to replay (the run column of runs.csv)");
  add_solver_options(*sub, opts->choice);
  // compare takes a list of solvers (--solvers) instead of the single --solver of `solve`.
  if (CLI::Option* single = sub->get_option_no_throw("--solver")) sub->remove_option(single);
  sub->callback([opts, &result] { result.exit_code = run_compare(*opts); });
}

}  // namespace qprune::cli
