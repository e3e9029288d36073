// The Python extension module `qprune._qprune`: the one place where C++ meets Python. It is thin on
// purpose: models in and out as numpy arrays, solver options by their CLI names, one solve call
// that releases the GIL and watches for Ctrl-C, and the pruning pipeline's functions. Everything a
// user sees (samplers, SampleSet, label handling) is the pure-Python layer in python/qprune/.
//
// Errors: qprune::InvalidArgument and ParseError become ValueError, IoError OSError, ResourceError
// MemoryError, Interrupted KeyboardInterrupt, any other qprune::Error RuntimeError; the message is
// the library's own. An unknown or misplaced solver keyword is a TypeError naming it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "qprune/qprune.hpp"

namespace py = pybind11;

namespace qprune::python {
namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using IndexArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// ---- Models -------------------------------------------------------------------------------------

/// The model of a dense matrix Q in dimod's sense, E = offset + sum_i lin_i x_i + x^T Q x
/// (QuboModel::from_dense_form: the diagonal adds to the linear terms, q_ij = Q_ij + Q_ji). A
/// C-contiguous float64 array is read in place (no copy), in one pass; the only allocation is the
/// model's own symmetric matrix.
QuboModel model_from_dense(const py::array& q_in, std::optional<DoubleArray> linear_in,
                           double offset) {
  const DoubleArray q = DoubleArray::ensure(q_in);
  if (!q) throw py::type_error("Q must be convertible to a float64 array");
  if (q.ndim() != 2)
    throw InvalidArgument("Q must be a 2-d array, got " + std::to_string(q.ndim()) + " dimensions");
  const Eigen::Index rows = q.shape(0);
  const Eigen::Index cols = q.shape(1);
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(
      q.data(), rows, cols);
  Eigen::VectorXd linear = Eigen::VectorXd::Zero(rows);
  if (linear_in) {
    if (linear_in->ndim() != 1 || linear_in->shape(0) != rows)
      throw InvalidArgument("linear must have " + std::to_string(rows) + " entries (Q is " +
                            std::to_string(rows) + " x " + std::to_string(cols) + ")");
    linear = Eigen::Map<const Eigen::VectorXd>(linear_in->data(), rows);
  }
  py::gil_scoped_release release;  // n^2 work on a buffer the caller keeps alive
  return QuboModel::from_dense_form(std::move(linear), m, offset);
}

/// COO triplets (rows, cols, vals): i == j linear, duplicates and (j, i) summed.
std::vector<Coupling> couplings_of(const IndexArray& rows, const IndexArray& cols,
                                   const DoubleArray& vals) {
  if (rows.ndim() != 1 || cols.ndim() != 1 || vals.ndim() != 1 || rows.size() != cols.size() ||
      rows.size() != vals.size())
    throw InvalidArgument("COO triplets need three 1-d arrays of one length, got lengths " +
                          std::to_string(rows.size()) + ", " + std::to_string(cols.size()) + ", " +
                          std::to_string(vals.size()));
  std::vector<Coupling> out(static_cast<std::size_t>(rows.size()));
  const auto r = rows.unchecked<1>();
  const auto c = cols.unchecked<1>();
  const auto v = vals.unchecked<1>();
  for (py::ssize_t k = 0; k < rows.size(); ++k) {
    if (r(k) < 0 || c(k) < 0 || r(k) > INT32_MAX || c(k) > INT32_MAX)
      throw InvalidArgument("COO entry " + std::to_string(k) + ": index (" + std::to_string(r(k)) +
                            ", " + std::to_string(c(k)) + ") out of range");
    out[static_cast<std::size_t>(k)] = {static_cast<int>(r(k)), static_cast<int>(c(k)), v(k)};
  }
  return out;
}

Eigen::VectorXd vector_of(const std::optional<DoubleArray>& a, int n, const char* what) {
  if (!a) return Eigen::VectorXd::Zero(n);
  if (a->ndim() != 1 || a->shape(0) != n)
    throw InvalidArgument(std::string(what) + " must have " + std::to_string(n) + " entries, has " +
                          std::to_string(a->size()));
  return Eigen::Map<const Eigen::VectorXd>(a->data(), n);
}

QuboModel model_from_coo(int n, const IndexArray& rows, const IndexArray& cols,
                         const DoubleArray& vals, const std::optional<DoubleArray>& linear,
                         double offset) {
  if (n < 0) throw InvalidArgument("num_variables must be >= 0");
  return QuboModel::from_couplings(n, vector_of(linear, n, "linear"),
                                   couplings_of(rows, cols, vals), offset);
}

QuboModel model_from_ising(const DoubleArray& h, const IndexArray& rows, const IndexArray& cols,
                           const DoubleArray& vals, double offset) {
  if (h.ndim() != 1) throw InvalidArgument("h must be a 1-d array");
  IsingModel ising;
  ising.h = Eigen::Map<const Eigen::VectorXd>(h.data(), h.shape(0));
  ising.j = couplings_of(rows, cols, vals);
  ising.offset = offset;
  if (!ising.h.allFinite()) throw InvalidArgument("h: a linear term is not finite");
  return QuboModel::from_ising(ising);
}

/// The symmetric coupling matrix (q_ij at (i, j) and (j, i), zero diagonal): a read-only view of a
/// dense model's own storage (kept alive by `owner`), a new array for a sparse one.
py::array coupling_matrix(const QuboModel& model, const py::object& owner) {
  const auto n = static_cast<py::ssize_t>(model.num_variables());
  if (model.storage() == Storage::kDense) {
    const Eigen::MatrixXd& d = model.dense_couplings();
    py::array view(
        py::dtype::of<double>(), {n, n},
        {static_cast<py::ssize_t>(sizeof(double)), static_cast<py::ssize_t>(sizeof(double)) * n},
        d.data(), owner);
    view.attr("setflags")(py::arg("write") = false);
    return view;
  }
  py::array_t<double> out({n, n});
  auto o = out.mutable_unchecked<2>();
  for (py::ssize_t i = 0; i < n; ++i)
    for (py::ssize_t j = 0; j < n; ++j) o(i, j) = 0.0;
  model.for_each_coupling([&](int i, int j, double q) {
    o(i, j) = q;
    o(j, i) = q;
  });
  return out;
}

py::array_t<double> linear_of(const QuboModel& model) {
  const Eigen::VectorXd& c = model.linear();
  py::array_t<double> out(c.size());
  std::copy(c.data(), c.data() + c.size(), out.mutable_data());
  return out;
}

// ---- Solver parameters by their CLI names -------------------------------------------------------

/// What one solve is asked to do: the common options, every solver's own, and the solver's name.
struct Request {
  std::string solver;
  SolveOptions options;
  SolverSettings settings;
  bool reads_given = false;
  py::object progress;  ///< a Python callable taking one dict, or None
};

template <class Enum>
Enum choice(const py::handle& value, const std::string& key,
            const std::map<std::string, Enum>& choices) {
  std::string s = py::str(value);
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const auto it = choices.find(s);
  if (it != choices.end()) return it->second;
  std::string names;
  for (const auto& [name, e] : choices) names += (names.empty() ? "" : ", ") + name;
  throw InvalidArgument(key + ": '" + s + "' is not one of " + names);
}

struct Parameter {
  std::string scope;  ///< "" for every solver, else the solver's name
  std::function<void(Request&, const py::handle&)> set;
};

const std::map<std::string, Parameter>& parameters() {
  static const std::map<std::string, Parameter> table = [] {
    std::map<std::string, Parameter> t;
    auto common = [&t](const std::string& name,
                       std::function<void(Request&, const py::handle&)> f) {
      t[name] = {"", std::move(f)};
    };
    auto own = [&t](const std::string& scope, const std::string& name,
                    std::function<void(Request&, const py::handle&)> f) {
      t[name] = {scope, std::move(f)};
    };
    common("seed",
           [](Request& r, const py::handle& v) { r.options.seed = v.cast<std::uint64_t>(); });
    common("progress", [](Request& r, const py::handle& v) {
      if (!PyCallable_Check(v.ptr())) throw py::cast_error("progress must be callable");
      r.progress = py::reinterpret_borrow<py::object>(v);
    });
    common("time_limit",
           [](Request& r, const py::handle& v) { r.options.time_limit_s = v.cast<double>(); });
    common("num_reads", [](Request& r, const py::handle& v) {
      r.options.num_reads = v.cast<int>();
      r.reads_given = true;
    });
    common("target_energy",
           [](Request& r, const py::handle& v) { r.options.target_energy = v.cast<double>(); });
    common("constraint_mode", [](Request& r, const py::handle& v) {
      r.options.constraint_mode = choice<ConstraintMode>(v, "constraint_mode",
                                                         {{"auto", ConstraintMode::kAuto},
                                                          {"native", ConstraintMode::kNative},
                                                          {"penalty", ConstraintMode::kPenalty}});
    });
    common("penalty_weight",
           [](Request& r, const py::handle& v) { r.options.penalty_weight = v.cast<double>(); });
    common("samples",
           [](Request& r, const py::handle& v) { r.options.max_samples = v.cast<int>(); });
    common("split_components",
           [](Request& r, const py::handle& v) { r.options.split_components = v.cast<bool>(); });
    common("memory_limit", [](Request& r, const py::handle& v) {
      r.options.memory_limit_bytes = v.cast<std::uint64_t>();
    });
    own("exact", "exact_max_variables",
        [](Request& r, const py::handle& v) { r.settings.exact.max_variables = v.cast<int>(); });
    own("sa", "sweeps",
        [](Request& r, const py::handle& v) { r.settings.anneal.num_sweeps = v.cast<int>(); });
    own("sa", "num_sweeps",
        [](Request& r, const py::handle& v) { r.settings.anneal.num_sweeps = v.cast<int>(); });
    own("sa", "schedule", [](Request& r, const py::handle& v) {
      r.settings.anneal.schedule = choice<AnnealSchedule>(
          v, "schedule",
          {{"geometric", AnnealSchedule::kGeometric}, {"linear", AnnealSchedule::kLinear}});
    });
    own("sa", "sweep_order", [](Request& r, const py::handle& v) {
      r.settings.anneal.order = choice<SweepOrder>(
          v, "sweep_order",
          {{"sequential", SweepOrder::kSequential}, {"random", SweepOrder::kRandom}});
    });
    own("sa", "start", [](Request& r, const py::handle& v) {
      r.settings.anneal.start = choice<AnnealStart>(v, "start",
                                                    {{"auto", AnnealStart::kAuto},
                                                     {"random", AnnealStart::kRandom},
                                                     {"greedy", AnnealStart::kGreedy}});
    });
    own("sa", "precision", [](Request& r, const py::handle& v) {
      r.settings.anneal.precision =
          choice<AnnealPrecision>(v, "precision",
                                  {{"auto", AnnealPrecision::kAuto},
                                   {"float", AnnealPrecision::kFloat},
                                   {"double", AnnealPrecision::kDouble},
                                   {"integer", AnnealPrecision::kInteger}});
    });
    own("sa", "beta_range", [](Request& r, const py::handle& v) {
      const auto b = v.cast<std::vector<double>>();
      if (b.size() != 2)
        throw InvalidArgument("beta_range must be (hot, cold), got " + std::to_string(b.size()) +
                              " values");
      r.settings.anneal.beta_range = std::make_pair(b[0], b[1]);
    });
    own("sa", "descent",
        [](Request& r, const py::handle& v) { r.settings.anneal.greedy_descent = v.cast<bool>(); });
    own("tabu", "tabu_method", [](Request& r, const py::handle& v) {
      r.settings.tabu.method = choice<TabuMethod>(v, "tabu_method",
                                                  {{"auto", TabuMethod::kAuto},
                                                   {"tabu", TabuMethod::kTabu},
                                                   {"breakout", TabuMethod::kBreakout}});
    });
    own("tabu", "tabu_iterations", [](Request& r, const py::handle& v) {
      r.settings.tabu.max_iterations = v.cast<std::int64_t>();
    });
    own("tabu", "tabu_stall", [](Request& r, const py::handle& v) {
      r.settings.tabu.stall_iterations = v.cast<std::int64_t>();
    });
    own("tabu", "tabu_tenure_divisor",
        [](Request& r, const py::handle& v) { r.settings.tabu.tenure_divisor = v.cast<int>(); });
    own("tabu", "tabu_tenure_random",
        [](Request& r, const py::handle& v) { r.settings.tabu.tenure_random = v.cast<int>(); });
    own("tabu", "tabu_elite",
        [](Request& r, const py::handle& v) { r.settings.tabu.elite_size = v.cast<int>(); });
    own("tabu", "breakout_jump_min", [](Request& r, const py::handle& v) {
      r.settings.tabu.breakout_jump_min_fraction = v.cast<double>();
    });
    own("tabu", "breakout_jump_max", [](Request& r, const py::handle& v) {
      r.settings.tabu.breakout_jump_max_fraction = v.cast<double>();
    });
    own("tabu", "breakout_stall",
        [](Request& r, const py::handle& v) { r.settings.tabu.breakout_stall = v.cast<int>(); });
    own("greedy", "greedy_max_moves", [](Request& r, const py::handle& v) {
      r.settings.greedy.max_moves_per_read = v.cast<std::int64_t>();
    });
    own("qaoa", "qaoa_layers",
        [](Request& r, const py::handle& v) { r.settings.qaoa.layers = v.cast<int>(); });
    own("qaoa", "qaoa_shots",
        [](Request& r, const py::handle& v) { r.settings.qaoa.shots = v.cast<int>(); });
    own("qaoa", "qaoa_init", [](Request& r, const py::handle& v) {
      r.settings.qaoa.init = choice<QaoaInit>(v, "qaoa_init",
                                              {{"interp", QaoaInit::kInterp},
                                               {"ramp", QaoaInit::kLinearRamp},
                                               {"fixed", QaoaInit::kFixed}});
    });
    own("qaoa", "gammas", [](Request& r, const py::handle& v) {
      r.settings.qaoa.gammas = v.cast<std::vector<double>>();
    });
    own("qaoa", "betas", [](Request& r, const py::handle& v) {
      r.settings.qaoa.betas = v.cast<std::vector<double>>();
    });
    own("qaoa", "qaoa_optimizer", [](Request& r, const py::handle& v) {
      r.settings.qaoa.optimizer =
          choice<QaoaOptimizer>(v, "qaoa_optimizer",
                                {{"lbfgs", QaoaOptimizer::kLbfgs},
                                 {"cobyla", QaoaOptimizer::kCobyla},
                                 {"nelder-mead", QaoaOptimizer::kNelderMead},
                                 {"none", QaoaOptimizer::kNone}});
    });
    own("qaoa", "qaoa_evaluations",
        [](Request& r, const py::handle& v) { r.settings.qaoa.max_evaluations = v.cast<int>(); });
    own("qaoa", "qaoa_ftol",
        [](Request& r, const py::handle& v) { r.settings.qaoa.ftol_rel = v.cast<double>(); });
    own("qaoa", "qaoa_precision", [](Request& r, const py::handle& v) {
      r.settings.qaoa.precision = choice<QaoaPrecision>(
          v, "qaoa_precision",
          {{"double", QaoaPrecision::kDouble}, {"float", QaoaPrecision::kFloat}});
    });
    own("qaoa", "mixer", [](Request& r, const py::handle& v) {
      r.settings.qaoa.mixer = choice<QaoaMixer>(
          v, "mixer", {{"xy-ring", QaoaMixer::kXyRing}, {"xy-complete", QaoaMixer::kXyComplete}});
    });
    own("qaoa", "qaoa_space", [](Request& r, const py::handle& v) {
      r.settings.qaoa.space = choice<QaoaSpace>(v, "qaoa_space",
                                                {{"auto", QaoaSpace::kAuto},
                                                 {"full", QaoaSpace::kFull},
                                                 {"subspace", QaoaSpace::kSubspace}});
    });
    own("qaoa", "qaoa_max_qubits",
        [](Request& r, const py::handle& v) { r.settings.qaoa.max_qubits = v.cast<int>(); });
    own("qaoa", "qaoa_rounds", [](Request& r, const py::handle& v) {
      r.settings.qaoa.decomposition_rounds = v.cast<int>();
    });
    own("qaoa", "qaoa_subproblem_qubits",
        [](Request& r, const py::handle& v) { r.settings.qaoa.subproblem_qubits = v.cast<int>(); });
    own("qaoa", "qaoa_stall",
        [](Request& r, const py::handle& v) { r.settings.qaoa.stall_rounds = v.cast<int>(); });
    own("qaoa", "qaoa_warm_epsilon",
        [](Request& r, const py::handle& v) { r.settings.qaoa.warm_epsilon = v.cast<double>(); });
    own("qaoa", "qaoa_transfer_evaluations", [](Request& r, const py::handle& v) {
      r.settings.qaoa.transfer_evaluations = v.cast<int>();
    });
    own("qaoa", "qaoa_warm_start",
        [](Request& r, const py::handle& v) { r.settings.qaoa.warm_start = v.cast<bool>(); });
    own("qaoa", "qaoa_descent",
        [](Request& r, const py::handle& v) { r.settings.qaoa.greedy_descent = v.cast<bool>(); });
    return t;
  }();
  return table;
}

/// The keyword names `solver` accepts, sorted.
std::vector<std::string> parameter_names(const std::string& solver) {
  std::vector<std::string> out;
  for (const auto& [name, p] : parameters())
    if (p.scope.empty() || p.scope == solver) out.push_back(name);
  return out;
}

/// Builds the request; `caller` names the Python method in a TypeError ("TabuSampler.sample_qubo").
Request request_of(const std::string& solver, const py::dict& kwargs, const std::string& caller) {
  Request r;
  r.solver = solver;
  for (const auto& [key, value] : kwargs) {
    const std::string name = py::str(key);
    const auto it = parameters().find(name);
    if (it == parameters().end() || (!it->second.scope.empty() && it->second.scope != solver)) {
      std::string msg = caller + "() got an unexpected keyword argument '" + name + "'";
      if (it != parameters().end()) msg += " (an option of the " + it->second.scope + " solver)";
      throw py::type_error(msg);
    }
    if (value.is_none()) continue;  // None: the library's default
    try {
      it->second.set(r, value);
    } catch (const py::cast_error&) {
      throw py::type_error(caller + "(): keyword argument '" + name + "' has the wrong type (" +
                           std::string(py::str(py::type::of(value).attr("__name__"))) + ")");
    }
  }
  // As `qprune solve`: sa and tabu with a time limit and no num_reads use the whole budget.
  const bool restarts = solver == "sa" || solver == "tabu";
  r.options.reads_until_time_limit =
      restarts && std::isfinite(r.options.time_limit_s) && !r.reads_given;
  return r;
}

// ---- Solving ------------------------------------------------------------------------------------

py::dict result_dict(const SolveResult& result, int n, bool interrupted_by_signal) {
  const auto rows = static_cast<py::ssize_t>(result.samples.size());
  py::array_t<std::int8_t> samples({rows, static_cast<py::ssize_t>(n)});
  py::array_t<double> energies(rows);
  py::array_t<std::int64_t> occurrences(rows);
  py::array_t<bool> feasible(rows);
  auto s = samples.mutable_unchecked<2>();
  for (py::ssize_t k = 0; k < rows; ++k) {
    const Sample& sample = result.samples[static_cast<std::size_t>(k)];
    for (py::ssize_t i = 0; i < n; ++i)
      s(k, i) = static_cast<std::int8_t>(sample.x[static_cast<std::size_t>(i)]);
    energies.mutable_at(k) = sample.energy;
    occurrences.mutable_at(k) = sample.num_occurrences;
    feasible.mutable_at(k) = sample.feasible;
  }
  py::dict d;
  d["samples"] = samples;
  d["energies"] = energies;
  d["num_occurrences"] = occurrences;
  d["feasible"] = feasible;
  d["solver"] = result.solver;
  d["status"] = std::string(to_string(result.status));
  d["message"] = result.message;
  d["seed"] = result.seed;
  d["wall_time_s"] = result.wall_time_s;
  d["counters"] = result.counters;
  d["info"] = result.info;
  d["interrupted_by_signal"] = interrupted_by_signal;
  return d;
}

/// The flag Ctrl-C raises: every solve gets it as SolveOptions::interrupt, and the module makes it
/// the process's interrupt flag (qprune/interrupt.hpp) unless the embedding program has one, so
/// problem building, calibration and checkpoint writing stop too (with Interrupted). One flag for
/// all calls: a Ctrl-C stops every call in progress, as it would stop the program.
std::atomic<bool> g_interrupt{false};

/// Runs `work` without the GIL on a worker thread while the calling thread waits and, every 50 ms,
/// takes the GIL for PyErr_CheckSignals (only the main thread can run Python's signal handlers; the
/// default SIGINT handler raises KeyboardInterrupt there). An exception raised by a handler is
/// cleared and raises the interrupt flag: the work stops at its next check (a solver with its best
/// answer so far) and the call returns true, "signalled". The work's own exception is rethrown.
bool run_watching_signals(const std::function<void()>& work,
                          const std::function<void()>& report = {}) {
  std::exception_ptr error;
  std::exception_ptr report_error;  // raised by the caller's progress callback
  bool done = false;
  bool signalled = false;
  std::mutex mutex;
  std::condition_variable finished;
  // With the GIL: Ctrl-C first, then the progress report; an exception from the callback stops
  // the work as Ctrl-C does and is raised once the worker has finished.
  auto tick = [&] {
    py::gil_scoped_acquire gil;
    if (!signalled && PyErr_CheckSignals() != 0) {
      PyErr_Clear();  // raised again by the caller, with the answer so far attached
      signalled = true;
      g_interrupt.store(true);
    }
    if (report && !report_error && !signalled) {
      try {
        report();
      } catch (...) {
        report_error = std::current_exception();
        g_interrupt.store(true);
      }
    }
  };
  {
    py::gil_scoped_release release;
    std::thread worker([&] {
      try {
        work();
      } catch (...) {
        error = std::current_exception();
      }
      const std::lock_guard<std::mutex> lock(mutex);
      done = true;
      finished.notify_all();
    });
    std::unique_lock<std::mutex> lock(mutex);
    while (!finished.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; })) {
      lock.unlock();
      tick();
      lock.lock();
    }
    lock.unlock();
    worker.join();
    tick();  // the last report (done == total)
  }
  if (signalled || report_error) g_interrupt.store(false);
  if (report_error) std::rethrow_exception(report_error);
  if (error) std::rethrow_exception(error);
  return signalled;
}

/// The latest progress of a worker, handed to a Python callback on the calling thread (the
/// worker never takes the GIL: a report is a copy under a lock, delivered every 50 ms).
class ProgressRelay {
 public:
  explicit ProgressRelay(py::object callback) : callback_(std::move(callback)) {}
  [[nodiscard]] bool active() const { return !callback_.is_none() && callback_; }
  void post(std::string_view stage, std::int64_t done, std::int64_t total, double best_energy) {
    const std::lock_guard<std::mutex> lock(mutex_);
    stage_.assign(stage);
    done_ = done;
    total_ = total;
    best_ = best_energy;
    fresh_ = true;
  }
  /// Calls the callback with {"stage", "done", "total", "best_energy"} if there is news (GIL held).
  void deliver() {
    py::dict d;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!fresh_) return;
      fresh_ = false;
      d["stage"] = stage_;
      d["done"] = done_;
      d["total"] = total_;
      d["best_energy"] = best_;
    }
    callback_(d);
  }

 private:
  py::object callback_;
  std::mutex mutex_;
  std::string stage_;
  std::int64_t done_ = 0;
  std::int64_t total_ = 0;
  double best_ = std::numeric_limits<double>::quiet_NaN();
  bool fresh_ = false;
};

/// Raises KeyboardInterrupt(message, answer) when `signalled`.
void raise_if_signalled(bool signalled, const std::string& message, const py::object& answer) {
  if (!signalled) return;
  const py::object e = py::reinterpret_steal<py::object>(
      PyObject_CallFunction(PyExc_KeyboardInterrupt, "sO", message.c_str(), answer.ptr()));
  if (!e) throw py::error_already_set();
  PyErr_SetObject(PyExc_KeyboardInterrupt, e.ptr());
  throw py::error_already_set();
}

/// Solves without the GIL, watching for Ctrl-C (run_watching_signals); an interrupted search
/// returns its best answer with interrupted_by_signal set (the Python layer raises
/// KeyboardInterrupt with the SampleSet attached).
py::dict solve(const QuboModel& model, const std::string& solver_name, const py::dict& kwargs,
               const std::string& caller) {
  Request req = request_of(solver_name, kwargs, caller);
  const std::unique_ptr<Solver> solver = make_solver(req.solver, req.settings);
  req.options.interrupt = &g_interrupt;
  ProgressRelay relay(req.progress);
  if (relay.active())
    req.options.progress = [&relay](const SolveProgress& p) {
      relay.post(p.stage, p.done, p.total, p.best_energy);
    };
  SolveResult result;
  const bool signalled = run_watching_signals(
      [&] { result = solver->solve(model, req.options); },
      relay.active() ? std::function<void()>([&] { relay.deliver(); }) : std::function<void()>());
  return result_dict(result, model.num_variables(), signalled);
}

/// Calls `work` watching for Ctrl-C; an Interrupted error it throws then becomes KeyboardInterrupt
/// through the translator.
template <class T, class F>
T interruptible(F&& work) {
  std::optional<T> out;
  if (run_watching_signals([&] { out.emplace(work()); }))
    raise_if_signalled(true, "interrupted; the finished result is in args[1]", py::cast(*out));
  return std::move(*out);
}

// ---- Pruning ------------------------------------------------------------------------------------

LayerProblem layer_problem(const Checkpoint& ckpt, const CalibrationStatsFile* stats, int layer,
                           const std::string& unit, double sparsity, bool mean_compensation,
                           const std::string& data_free, const std::string& objective,
                           int multiple_of, const std::string& head_shape) {
  LayerProblemSpec spec;
  spec.layer = layer;
  spec.unit = unit == "mlp"
                  ? UnitKind::kMlp
                  : (unit == "heads" ? head_unit_for(ckpt.config(), unit_kind_from_name(head_shape))
                                     : unit_kind_from_name(unit));
  spec.sparsity = sparsity;
  spec.mean_compensation = mean_compensation;
  if (data_free != "magnitude" && data_free != "isserlis")
    throw InvalidArgument("data_free must be magnitude or isserlis, is " + data_free);
  spec.data_free = data_free == "isserlis" ? DataFreeModel::kIsserlis : DataFreeModel::kMagnitude;
  if (objective != "no-refit" && objective != "refit")
    throw InvalidArgument("objective must be no-refit or refit, is " + objective);
  spec.objective = objective == "refit" ? PruneObjective::kRefit : PruneObjective::kNoRefit;
  spec.multiple_of = multiple_of;
  if (stats != nullptr) stats->check_against(ckpt.config(), checkpoint_config_hash(ckpt));
  return interruptible<LayerProblem>([&] { return build_layer_problem(ckpt, stats, spec); });
}

/// `qprune mask`'s compute_masks with the solver options given by their CLI names.
Masks compute_masks_py(const Checkpoint& ckpt, const CalibrationStatsFile* stats, double sparsity,
                       std::optional<double> head_sparsity, const std::string& unit,
                       const std::string& solver, const std::string& method, bool mean_compensation,
                       const std::string& data_free, const std::string& allocation, int multiple_of,
                       const py::dict& kwargs) {
  const Request req = request_of(solver, kwargs, "compute_masks");
  MaskRunOptions mo;
  mo.method = mask_method_from_name(method);
  if (unit != "mlp" && unit != "heads" && unit != "both" && unit != "experts")
    throw InvalidArgument("unit must be mlp, heads, both or experts, is " + unit);
  mo.mlp = unit == "mlp" || unit == "both";
  mo.heads = unit == "heads" || unit == "both";
  mo.experts = unit == "experts";
  mo.sparsity = sparsity;
  mo.head_sparsity = head_sparsity;
  mo.mean_compensation = mean_compensation;
  mo.data_free = data_free == "isserlis" ? DataFreeModel::kIsserlis : DataFreeModel::kMagnitude;
  mo.solver = solver;
  mo.solve = req.options;
  mo.settings = req.settings;
  mo.allocation = mask_allocation_from_name(allocation);
  mo.multiple_of = multiple_of;
  mo.solve.interrupt = &g_interrupt;
  // As `qprune mask`: Ctrl-C keeps the finished layers (the current one marked interrupted); they
  // come with the KeyboardInterrupt (args[1]), ready for write_masks.
  Masks masks;
  if (run_watching_signals([&] { masks = compute_masks(ckpt, stats, mo); }))
    raise_if_signalled(true, "compute_masks interrupted; the finished layers are in args[1]",
                       py::cast(masks));
  return masks;
}

/// A masks file from solutions found in Python: one entry per (problem, assignment), with the
/// header compute_masks would write for a uniform run with that solver and seed, each entry's
/// objective recomputed with the problem's energy and the diagonal baseline beside it.
Masks masks_from_solutions(const Checkpoint& ckpt, const CalibrationStatsFile* stats,
                           const std::vector<std::pair<const LayerProblem*, Assignment>>& solved,
                           double sparsity, const std::string& solver, std::uint64_t seed,
                           bool mean_compensation, const std::string& data_free) {
  Masks masks;
  masks.checkpoint = CheckpointIdentity::of(ckpt);
  masks.solver = solver;
  masks.seed = seed;
  masks.sparsity = sparsity;
  if (stats != nullptr) {
    stats->check_against(ckpt.config(), masks.checkpoint.config_hash);
    masks.calibration = std::filesystem::absolute(stats->path()).lexically_normal().string();
  }
  masks.run.recorded = true;
  masks.run.mean_compensation_requested = mean_compensation;
  masks.run.data_free = data_free;
  std::string source;
  for (const auto& [problem, x] : solved) {
    const QuboModel& m = problem->model;
    if (static_cast<int>(x.size()) != m.num_variables())
      throw InvalidArgument("layer " + std::to_string(problem->layer) + ": the assignment has " +
                            std::to_string(x.size()) + " entries, the problem " +
                            std::to_string(m.num_variables()) + " units");
    LayerMask e;
    e.layer = problem->layer;
    e.unit = problem->unit;
    e.num_units = problem->num_units();
    e.kept = kept_indices(x);
    e.objective = m.energy(x);
    e.baseline_objective = m.energy(diagonal_top_k(*problem));
    e.feasible = m.is_feasible(x);
    e.status = RunStatus::kCompleted;
    e.seed = layer_seed(seed, problem->layer, problem->unit);
    for (const CardinalityConstraint& c : m.constraints()) e.keep += c.k;
    masks.entries.push_back(std::move(e));
    if (std::find(masks.run.units.begin(), masks.run.units.end(), problem->unit) ==
        masks.run.units.end())
      masks.run.units.push_back(problem->unit);
    masks.mean_compensation = masks.mean_compensation || problem->centered;
    masks.approximate = masks.approximate || problem->approximate;
    if (source.empty() || source == "calibration") source = gram_source_name(problem->source);
  }
  if (!source.empty()) masks.objective_source = source;
  std::sort(masks.entries.begin(), masks.entries.end(), [](const LayerMask& a, const LayerMask& b) {
    return std::make_pair(static_cast<int>(a.unit), a.layer) <
           std::make_pair(static_cast<int>(b.unit), b.layer);
  });
  return masks;
}

/// `qprune calibrate CKPT --text FILE` (or `--token-ids`): the statistics of the text as the
/// model reads it (byte-level or tokenizer.json, library's checkpoint_tokens), or of the given
/// token ids, written to `out`. progress(dict) is called on the calling thread as windows finish.
void calibrate(const Checkpoint& ckpt, const std::optional<std::filesystem::path>& text,
               const std::filesystem::path& out, std::int64_t tokens, std::int64_t context,
               bool compact, const std::optional<IndexArray>& token_ids,
               const py::object& progress) {
  if (text.has_value() == token_ids.has_value())
    throw py::type_error("calibrate() takes one of text (a file) or token_ids (integers)");
  std::vector<std::int32_t> ids;
  if (token_ids) {
    const std::int64_t vocab = ckpt.config().vocab_size;
    if (token_ids->ndim() != 1)
      throw InvalidArgument("token_ids must be 1-d, got " + std::to_string(token_ids->ndim()) +
                            " dimensions");
    ids.reserve(static_cast<std::size_t>(token_ids->shape(0)));
    for (py::ssize_t k = 0; k < token_ids->shape(0); ++k) {
      const std::int64_t id = token_ids->at(k);
      if (id < 0 || id >= vocab)
        throw InvalidArgument("token_ids[" + std::to_string(k) + "] = " + std::to_string(id) +
                              " is outside the model's vocabulary [0, " + std::to_string(vocab) +
                              ")");
      ids.push_back(static_cast<std::int32_t>(id));
    }
  } else {
    std::ifstream in(*text, std::ios::binary);
    if (!in) throw IoError("cannot read " + text->string());
    ids = checkpoint_tokens(
        ckpt, std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  }
  CalibrationOptions co;
  co.max_tokens = tokens;
  co.context = context;
  ProgressRelay relay(progress);
  if (relay.active())
    co.progress = [&relay](std::int64_t done, std::int64_t total) {
      relay.post("calibrate tokens", done, total, std::numeric_limits<double>::quiet_NaN());
    };
  const bool signalled = run_watching_signals(
      [&] {
        const Transformer model(ckpt);
        write_calibration_statistics(collect_calibration_statistics(model, ids, co), ckpt, out,
                                     compact);
      },
      relay.active() ? std::function<void()>([&] { relay.deliver(); }) : std::function<void()>());
  raise_if_signalled(signalled, "calibrate interrupted; nothing was written", py::none());
}

void register_exceptions() {
  // pybind11 takes a plain function pointer of std::exception_ptr by value.
  // NOLINTNEXTLINE(performance-unnecessary-value-param)
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const ParseError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const ResourceError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const Interrupted& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
}

}  // namespace
}  // namespace qprune::python

PYBIND11_MODULE(_qprune, m) {
  using namespace qprune;
  using namespace qprune::python;
  m.doc() =
      "qprune's C++ library: models, solvers and the pruning pipeline (see qprune/__init__.py)";
  register_exceptions();
  if (interrupt_flag() == nullptr) set_interrupt_flag(&g_interrupt);

  py::class_<QuboModel>(m, "Model",
                        "A QUBO, E(x) = offset + sum_i c_i x_i + sum_{i<j} q_ij x_i x_j, with "
                        "optional 'exactly k of these' groups")
      .def_static("from_dense", &model_from_dense, py::arg("Q"), py::arg("linear") = py::none(),
                  py::arg("offset") = 0.0)
      .def_static("from_coo", &model_from_coo, py::arg("num_variables"), py::arg("rows"),
                  py::arg("cols"), py::arg("vals"), py::arg("linear") = py::none(),
                  py::arg("offset") = 0.0)
      .def_static("from_ising", &model_from_ising, py::arg("h"), py::arg("rows"), py::arg("cols"),
                  py::arg("vals"), py::arg("offset") = 0.0)
      .def_property_readonly("num_variables", &QuboModel::num_variables)
      .def_property_readonly("num_couplings", &QuboModel::num_couplings)
      .def_property_readonly("offset", &QuboModel::offset)
      .def_property_readonly("dense",
                             [](const QuboModel& q) { return q.storage() == Storage::kDense; })
      .def_property_readonly("linear", &linear_of)
      .def("coupling_matrix",
           [](const py::object& self) {
             return coupling_matrix(self.cast<const QuboModel&>(), self);
           })
      .def("energy",
           [](const QuboModel& q, const std::vector<std::uint8_t>& x) { return q.energy(x); })
      .def("is_feasible",
           [](const QuboModel& q, const std::vector<std::uint8_t>& x) { return q.is_feasible(x); })
      .def(
          "add_constraint",
          [](QuboModel& q, const std::vector<int>& variables, int k, const std::string& name) {
            q.add_constraint({name, variables, k});
          },
          py::arg("variables"), py::arg("k"), py::arg("name") = "")
      .def_property_readonly("constraints",
                             [](const QuboModel& q) {
                               py::list out;
                               for (const CardinalityConstraint& c : q.constraints())
                                 out.append(py::make_tuple(c.variables, c.k, c.name));
                               return out;
                             })
      .def_property_readonly("labels", [](const QuboModel& q) { return q.labels(); })
      .def_readonly("metadata", &QuboModel::metadata);

  m.def("solve", &solve, py::arg("model"), py::arg("solver"), py::arg("kwargs"),
        py::arg("caller") = "solve",
        "Solves `model` with the named solver; kwargs by their CLI names (parameter_names)");
  m.def("parameter_names", &parameter_names, py::arg("solver"));
  m.def("solver_names", &solver_names);

  py::class_<Checkpoint>(m, "Checkpoint")
      .def_static("open", &Checkpoint::open, py::arg("folder"))
      .def_property_readonly("folder", &Checkpoint::folder)
      .def_property_readonly("config",
                             [](const Checkpoint& c) {
                               const ModelConfig& k = c.config();
                               py::dict d;
                               d["architecture"] = k.architecture;
                               d["hidden_size"] = k.hidden_size;
                               d["intermediate_size"] = k.intermediate_size;
                               d["num_hidden_layers"] = k.num_hidden_layers;
                               d["num_attention_heads"] = k.num_attention_heads;
                               d["num_key_value_heads"] = k.num_key_value_heads;
                               d["head_dim"] = k.head_dim;
                               d["vocab_size"] = k.vocab_size;
                               return d;
                             })
      .def("tensor_names", &Checkpoint::tensor_names);

  py::class_<CalibrationStatsFile>(m, "CalibrationStats")
      .def_static("open", &CalibrationStatsFile::open, py::arg("path"))
      .def_property_readonly("path", &CalibrationStatsFile::path)
      .def_property_readonly("num_tokens", &CalibrationStatsFile::num_tokens)
      .def_property_readonly("num_layers", &CalibrationStatsFile::num_layers);

  py::class_<LayerProblem>(m, "LayerProblem")
      .def_readonly("model", &LayerProblem::model)
      .def_property_readonly("unit", [](const LayerProblem& p) { return unit_kind_name(p.unit); })
      .def_property_readonly("source",
                             [](const LayerProblem& p) { return gram_source_name(p.source); })
      .def_readonly("centered", &LayerProblem::centered)
      .def_readonly("approximate", &LayerProblem::approximate)
      .def_readonly("layer", &LayerProblem::layer)
      .def_readonly("unit_width", &LayerProblem::unit_width)
      .def_readonly("num_groups", &LayerProblem::num_groups)
      .def_readonly("name", &LayerProblem::name)
      .def_property_readonly("unit_cost",
                             [](const LayerProblem& p) {
                               return py::array_t<double>(p.unit_cost.size(), p.unit_cost.data());
                             })
      .def("diagonal_top_k", [](const LayerProblem& p) { return diagonal_top_k(p); });
  m.def("layer_problem", &layer_problem, py::arg("checkpoint"), py::arg("calib"), py::arg("layer"),
        py::arg("unit"), py::arg("sparsity"), py::arg("mean_compensation"), py::arg("data_free"),
        py::arg("objective"), py::arg("multiple_of"), py::arg("head_shape"));
  m.def(
      "layer_seed",
      [](std::uint64_t seed, int layer, const std::string& unit) {
        return layer_seed(seed, layer, unit_kind_from_name(unit));
      },
      py::arg("seed"), py::arg("layer"), py::arg("unit"));

  py::class_<LayerMask>(m, "LayerMask")
      .def_readonly("layer", &LayerMask::layer)
      .def_property_readonly("unit", [](const LayerMask& e) { return unit_kind_name(e.unit); })
      .def_readonly("num_units", &LayerMask::num_units)
      .def_readonly("kept", &LayerMask::kept)
      .def_readonly("objective", &LayerMask::objective)
      .def_readonly("baseline_objective", &LayerMask::baseline_objective)
      .def_readonly("feasible", &LayerMask::feasible)
      .def_readonly("time_s", &LayerMask::time_s)
      .def_property_readonly("status",
                             [](const LayerMask& e) { return std::string(to_string(e.status)); })
      .def_readonly("seed", &LayerMask::seed)
      .def_readonly("keep", &LayerMask::keep)
      .def_readonly("rerouted_error", &LayerMask::rerouted_error)
      .def_readonly("qubo_rerouted_error", &LayerMask::qubo_rerouted_error);
  py::class_<Masks>(m, "Masks")
      .def_readonly("solver", &Masks::solver)
      .def_readonly("seed", &Masks::seed)
      .def_readonly("sparsity", &Masks::sparsity)
      .def_readonly("objective_source", &Masks::objective_source)
      .def_readonly("mean_compensation", &Masks::mean_compensation)
      .def_readonly("entries", &Masks::entries);
  m.def("compute_masks", &compute_masks_py, py::arg("checkpoint"), py::arg("calib"),
        py::arg("sparsity"), py::arg("head_sparsity"), py::arg("unit"), py::arg("solver"),
        py::arg("method"), py::arg("mean_compensation"), py::arg("data_free"),
        py::arg("allocation"), py::arg("multiple_of"), py::arg("kwargs"));
  m.def("masks_from_solutions", &masks_from_solutions, py::arg("checkpoint"), py::arg("calib"),
        py::arg("solved"), py::arg("sparsity"), py::arg("solver"), py::arg("seed"),
        py::arg("mean_compensation"), py::arg("data_free"));
  m.def("calibrate", &calibrate, py::arg("checkpoint"), py::arg("text"), py::arg("out"),
        py::arg("tokens") = 0, py::arg("context") = 256, py::arg("compact") = false,
        py::arg("token_ids") = py::none(), py::arg("progress") = py::none());
  m.def("write_masks", &write_masks, py::arg("masks"), py::arg("path"));
  m.def("read_masks", &read_masks, py::arg("path"));
  m.def(
      "apply_masks",
      [](const Checkpoint& ckpt, const Masks& masks, const CalibrationStatsFile* stats,
         const std::filesystem::path& out, bool refit, bool overwrite) {
        ApplyOptions o;
        o.refit = refit;
        o.write.overwrite = overwrite;
        return interruptible<std::pair<std::int64_t, std::int64_t>>([&] {
          const ApplyReport r = apply_masks(ckpt, masks, stats, out, o);
          return std::make_pair(r.stored_parameters, r.effective_parameters());
        });
      },
      py::arg("checkpoint"), py::arg("masks"), py::arg("calib"), py::arg("out"),
      py::arg("refit") = false, py::arg("overwrite") = false);
}
