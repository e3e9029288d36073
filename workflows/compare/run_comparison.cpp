// Running a comparison: cells (solver, instance, seed) spread over `jobs` worker threads, each
// run limited to `threads_per_run` OpenMP threads, so jobs * threads_per_run never exceeds the
// cores and the wall time of a run is not inflated by the comparison competing with itself.
// Records are stored at their cell index, so the output order does not depend on scheduling.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "core/byte_codec.hpp"
#include "core/parallel_for.hpp"
#include "qprune/comparison.hpp"
#include "qprune/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qprune {
namespace {

int available_cores() { return std::max(1, detail::max_threads()); }

void set_run_threads(int threads) {
#ifdef _OPENMP
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

std::string encode(const RunRecord& r) {
  detail::ByteWriter w;
  w.put(r.index);
  w.put(r.solver);
  w.put(r.solver_name);
  w.put(r.instance);
  w.put(r.instance_spec);
  w.put(r.num_variables);
  w.put(r.has_constraints);
  w.put(r.seed);
  w.put(static_cast<int>(r.status));
  w.put(r.message);
  w.put(r.has_solution);
  w.put(r.energy);
  w.put(r.feasible);
  w.put(r.wall_time_s);
  w.put(r.threads);
  w.put(r.counters);
  w.put(r.info);
  w.put(r.best_x);
  w.put(r.trace_time_s);
  w.put(r.trace_energy);
  return w.take();
}

RunRecord decode_run_record(const std::string& bytes) {
  detail::ByteReader in(bytes);
  RunRecord r;
  in.get(r.index);
  in.get(r.solver);
  in.get(r.solver_name);
  in.get(r.instance);
  in.get(r.instance_spec);
  in.get(r.num_variables);
  in.get(r.has_constraints);
  in.get(r.seed);
  r.status = static_cast<RunStatus>(in.get<int>());
  in.get(r.message);
  in.get(r.has_solution);
  in.get(r.energy);
  in.get(r.feasible);
  in.get(r.wall_time_s);
  in.get(r.threads);
  in.get(r.counters);
  in.get(r.info);
  in.get(r.best_x);
  in.get(r.trace_time_s);
  in.get(r.trace_energy);
  return r;
}

// Whether the interrupt stopped this run (kInterrupted) or kept it from starting (kNotRun: a run
// that starts ends with its solver's status, kSkipped or kError). The coordinator of a
// multi-process run learns of an interrupt on another process only this way.
bool stopped_by_interrupt(const RunRecord& r) {
  return r.status == RunStatus::kInterrupted || r.status == RunStatus::kNotRun;
}

}  // namespace

SolverSpec parse_solver_spec(const std::string& text) {
  std::string label(text);
  std::transform(label.begin(), label.end(), label.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  SolverSpec spec;
  spec.label = label;
  spec.name = label;
  const std::size_t colon = label.find(':');
  if (colon != std::string::npos) {
    spec.name = label.substr(0, colon);
    const std::string variant = label.substr(colon + 1);
    const std::string digits = variant.starts_with("p=")  ? variant.substr(2)
                               : variant.starts_with("p") ? variant.substr(1)
                                                          : std::string();
    const bool ok = spec.name == "qaoa" && !digits.empty() && digits.size() <= 3 &&
                    std::all_of(digits.begin(), digits.end(),
                                [](unsigned char c) { return std::isdigit(c) != 0; });
    if (!ok || std::stoi(digits) < 1) {
      throw InvalidArgument("solver spec '" + text + "': expected NAME or qaoa:pK (K >= 1 layers)");
    }
    spec.qaoa_layers = std::stoi(digits);
  }
  (void)make_solver(spec.name);  // throws InvalidArgument listing the names
  return spec;
}

void ComparisonOptions::validate() const {
  if (solvers.empty()) throw InvalidArgument("ComparisonOptions::solvers must not be empty");
  if (num_seeds < 1) {
    throw InvalidArgument("ComparisonOptions::num_seeds must be >= 1, got " +
                          std::to_string(num_seeds));
  }
  if (jobs < 0) {
    throw InvalidArgument("ComparisonOptions::jobs must be >= 0, got " + std::to_string(jobs));
  }
  if (threads_per_run < 0) {
    throw InvalidArgument("ComparisonOptions::threads_per_run must be >= 0, got " +
                          std::to_string(threads_per_run));
  }
  if (!(tolerance.relative >= 0.0) || !(tolerance.absolute >= 0.0)) {
    throw InvalidArgument("ComparisonOptions::tolerance: relative and absolute must be >= 0");
  }
  solve.validate();
}

RunRecord run_one(const QuboModel& model, const SolverSpec& spec, const SolverSettings& settings,
                  const SolveOptions& solve) {
  RunRecord record;
  record.solver = spec.label;
  record.solver_name = spec.name;
  record.num_variables = model.num_variables();
  record.has_constraints = model.has_constraints();
  record.seed = solve.seed;
  record.threads = detail::max_threads();
  try {
    SolverSettings s = settings;
    if (spec.qaoa_layers) {
      s.qaoa.layers = *spec.qaoa_layers;
      s.qaoa.init = s.qaoa.init == QaoaInit::kFixed ? QaoaInit::kInterp : s.qaoa.init;
    }
    // The best-so-far trace (the solver serialises its progress calls, so no lock is needed).
    SolveOptions traced = solve;
    const auto start = std::chrono::steady_clock::now();
    traced.progress = [&record, start](const SolveProgress& p) {
      if (std::isnan(p.best_energy) ||
          (!record.trace_energy.empty() && p.best_energy >= record.trace_energy.back()))
        return;
      record.trace_time_s.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      record.trace_energy.push_back(p.best_energy);
    };
    const SolveResult result = make_solver(spec.name, s)->solve(model, traced);
    record.status = result.status;
    record.message = result.message;
    record.wall_time_s = result.wall_time_s;
    record.counters = result.counters;
    record.info = result.info;
    if (result.has_solution()) {
      record.has_solution = true;
      record.energy = result.best().energy;
      record.feasible = result.best().feasible;
      record.best_x = result.best().x;
    }
  } catch (const ResourceError& e) {
    record.status = RunStatus::kSkipped;
    record.message = e.what();
  } catch (const Error& e) {
    record.status = RunStatus::kError;
    record.message = e.what();
  }
  return record;
}

ComparisonReport run_comparison(const std::vector<Instance>& instances,
                                const ComparisonOptions& options,
                                const std::map<std::string, KnownValue>& known) {
  options.validate();
  const int cores = available_cores();
  ComparisonReport report;
  report.jobs = options.jobs == 0 ? cores : options.jobs;
  report.threads_per_run =
      options.threads_per_run == 0 ? std::max(1, cores / report.jobs) : options.threads_per_run;
  if (report.jobs * report.threads_per_run > cores) {
    throw InvalidArgument("ComparisonOptions: jobs * threads_per_run = " +
                          std::to_string(report.jobs * report.threads_per_run) + " exceeds the " +
                          std::to_string(cores) + " available cores");
  }

  std::vector<QuboModel> models;
  models.reserve(instances.size());
  for (const Instance& instance : instances) models.push_back(instance.load());

  struct Cell {
    std::size_t instance;
    std::size_t solver;
    int seed_offset;
  };
  std::vector<Cell> cells;
  for (std::size_t i = 0; i < instances.size(); ++i)
    for (std::size_t s = 0; s < options.solvers.size(); ++s)
      for (int k = 0; k < options.num_seeds; ++k) cells.push_back({i, s, k});

  report.runs.resize(cells.size());
  std::atomic<bool> interrupted{false};
  const auto run_cell = [&](std::size_t c) {
    const Cell& cell = cells[c];
    const Instance& instance = instances[cell.instance];
    const QuboModel& model = models[cell.instance];
    const SolverSpec& spec = options.solvers[cell.solver];
    SolveOptions solve = options.solve;
    // Cells may run at once: their progress is ComparisonOptions::progress, per finished run.
    solve.progress = nullptr;
    solve.seed = options.solve.seed + static_cast<std::uint64_t>(cell.seed_offset);
    RunRecord record;
    auto limit = options.max_variables.find(spec.label);  // `qaoa:p2`, else `qaoa`
    if (limit == options.max_variables.end()) limit = options.max_variables.find(spec.name);
    if (options.solve.interrupt && options.solve.interrupt->load()) {
      interrupted = true;
      record.solver = spec.label;
      record.solver_name = spec.name;
      record.num_variables = model.num_variables();
      record.seed = solve.seed;
      record.message = "interrupted before this run started";
    } else if (limit != options.max_variables.end() && model.num_variables() > limit->second) {
      record.solver = spec.label;
      record.solver_name = spec.name;
      record.num_variables = model.num_variables();
      record.has_constraints = model.has_constraints();
      record.seed = solve.seed;
      record.status = RunStatus::kSkipped;
      record.message = "n = " + std::to_string(model.num_variables()) + " > max_variables " +
                       std::to_string(limit->second) + " for " + spec.label;
    } else {
      record = run_one(model, spec, options.settings, solve);
      if (record.status == RunStatus::kInterrupted) interrupted = true;
    }
    record.index = static_cast<int>(c);
    record.instance = instance.name;
    record.instance_spec = instance.spec;
    return record;
  };
  const int total = static_cast<int>(cells.size());

  if (options.runner != nullptr && options.runner->num_processes() > 1) {
    // One cell at a time per process, with the process's threads; largest instances first.
    report.jobs = options.runner->num_processes();
    report.threads_per_run = options.threads_per_run == 0 ? cores : options.threads_per_run;
    set_run_threads(report.threads_per_run);
    JobRunner::Jobs jobs;
    jobs.count = cells.size();
    jobs.order.resize(cells.size());
    for (std::size_t c = 0; c < cells.size(); ++c) jobs.order[c] = c;
    std::stable_sort(jobs.order.begin(), jobs.order.end(), [&](std::size_t a, std::size_t b) {
      return models[cells[a].instance].num_variables() > models[cells[b].instance].num_variables();
    });
    jobs.run = [&](std::size_t c) {
      set_run_threads(report.threads_per_run);  // a runner may use a thread of its own
      return encode(run_cell(c));
    };
    jobs.label = [&](std::size_t c) {
      return "cell " + instances[cells[c].instance].name + " " +
             options.solvers[cells[c].solver].label + " seed " +
             std::to_string(options.solve.seed + static_cast<std::uint64_t>(cells[c].seed_offset));
    };
    int done = 0;
    if (options.progress)
      jobs.done = [&](std::size_t, const std::string& bytes) {
        options.progress(++done, total, decode_run_record(bytes));
      };
    const std::vector<std::string> results = options.runner->run(jobs);
    if (!options.runner->is_coordinator()) return ComparisonReport{};
    for (std::size_t c = 0; c < cells.size(); ++c) {
      report.runs[c] = decode_run_record(results[c]);
      interrupted = interrupted || stopped_by_interrupt(report.runs[c]);
    }
  } else {
    std::atomic<std::size_t> next{0};
    std::mutex progress_mutex;
    int done = 0;
    std::exception_ptr failure;  // e.g. bad_alloc or a throwing progress callback
    const auto worker = [&] {
      set_run_threads(report.threads_per_run);
      try {
        for (std::size_t c = next++; c < cells.size(); c = next++) {
          report.runs[c] = run_cell(c);
          std::lock_guard<std::mutex> lock(progress_mutex);
          ++done;
          if (options.progress) options.progress(done, total, report.runs[c]);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        if (!failure) failure = std::current_exception();
        next = cells.size();  // the other workers stop after their current run
      }
    };
    const int workers = std::min(report.jobs, std::max(1, total));
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(workers));
    for (int t = 0; t < workers; ++t) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
    if (failure) std::rethrow_exception(failure);
  }
  report.interrupted = interrupted;
  summarize(report, known, options.tolerance);
  return report;
}

}  // namespace qprune
