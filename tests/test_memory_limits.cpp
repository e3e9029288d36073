// Limits up front: the solvers and the pruning builders refuse, before allocating, a structure
// that exceeds the memory budget, with a ResourceError naming what needs how much. The budget is
// given explicitly here (SolveOptions / *ProblemOptions::memory_limit_bytes), so each refusal is
// tested without allocating anything large: one byte below the need must throw, the exact need
// must pass (the byte counts below are worked out by hand from each structure's layout). The QUBO
// file readers get the same kind of limit (ReadOptions::memory_limit_bytes).
#include <doctest/doctest.h>

#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include "core/memory_check.hpp"
#include "qprune/anneal_solver.hpp"
#include "qprune/error.hpp"
#include "qprune/formats.hpp"
#include "qprune/greedy_solver.hpp"
#include "qprune/pruning.hpp"
#include "qprune/qaoa_solver.hpp"
#include "tests/test_files.hpp"
#include "tests/test_support.hpp"

using namespace qprune;

namespace {

// The ResourceError message of `f`, or "" when it does not throw one.
template <class F>
std::string resource_error(F&& f) {
  try {
    f();
  } catch (const ResourceError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("check_memory: refuses above the limit, says what, how much and what to change") {
  CHECK_NOTHROW(detail::check_memory(1000.0, "x", "y", 1000));
  const std::string msg = resource_error(
      [] { detail::check_memory(3221225472.0, "the thing", "do less", 1073741824); });
  CHECK(contains(msg, "the thing needs 3 GiB (3221225472 bytes)"));
  CHECK(contains(msg, "only 1 GiB (1073741824 bytes)"));
  CHECK(contains(msg, "the memory limit given"));
  CHECK(contains(msg, "; do less"));
  CHECK(detail::square_bytes(19000, 8) == 19000.0 * 19000.0 * 8.0);  // no int overflow
  if (std::filesystem::exists("/proc/meminfo")) {
    const std::uint64_t available = detail::available_memory_bytes();
    CHECK(available > 0);
    // The default budget is the smallest limit (MemAvailable, ulimit -v, cgroup): twice of it is
    // refused, naming that limit; a byte passes.
    const detail::MemoryBudget budget = detail::current_memory_budget();
    REQUIRE(budget.bytes);
    CHECK(contains(resource_error([&] {
                     detail::check_memory(2.0 * static_cast<double>(available), "w", "z");
                   }),
                   budget.source.substr(0, 12)));
    CHECK_NOTHROW(detail::check_memory(1.0, "w", "z"));
  }
}

TEST_CASE("memory_budget: the smallest of MemAvailable, ulimit -v - VmSize, cgroup limit - usage") {
  constexpr std::uint64_t kGiB = 1ULL << 30;
  detail::MemoryReadings r;
  CHECK(!detail::memory_budget(r).bytes);  // nothing known: no limit
  CHECK(detail::memory_budget(r).source.empty());
  r.mem_available = 8 * kGiB;
  CHECK(*detail::memory_budget(r).bytes == 8 * kGiB);
  CHECK(detail::memory_budget(r).source == "MemAvailable of /proc/meminfo");
  // ulimit -v 4 GiB with 1 GiB of address space already mapped: 3 GiB left, and it is smaller.
  r.address_limit = 4 * kGiB;
  r.vm_size = 1 * kGiB;
  detail::MemoryBudget b = detail::memory_budget(r);
  CHECK(*b.bytes == 3 * kGiB);
  CHECK(contains(b.source, "address-space limit (ulimit -v) of 4 GiB"));
  CHECK(contains(b.source, "minus VmSize 1 GiB"));
  // A cgroup with 2.5 GiB of 4 GiB used: 1.5 GiB, now the smallest.
  r.cgroup_limit = 4 * kGiB;
  r.cgroup_usage = 5 * kGiB / 2;
  b = detail::memory_budget(r);
  CHECK(*b.bytes == 3 * kGiB / 2);
  CHECK(contains(b.source, "cgroup memory limit of 4 GiB"));
  // Usage above the limit (or VmSize above ulimit -v) leaves 0, not a wrapped huge number.
  r.cgroup_usage = 5 * kGiB;
  CHECK(*detail::memory_budget(r).bytes == 0);
  // A smaller MemAvailable wins again over larger limits.
  r = {};
  r.mem_available = 1 * kGiB;
  r.address_limit = 64 * kGiB;
  r.vm_size = 1 * kGiB;
  r.cgroup_limit = 32 * kGiB;
  b = detail::memory_budget(r);
  CHECK(*b.bytes == 1 * kGiB);
  CHECK(b.source == "MemAvailable of /proc/meminfo");
  // check_memory with the default budget names the limit that applied.
  const std::string msg =
      resource_error([] { detail::check_memory(1e30, "the thing", "do less"); });
  const detail::MemoryBudget now = detail::current_memory_budget();
  if (now.bytes) CHECK(contains(msg, now.source));
}

TEST_CASE("allocation_context: std::bad_alloc becomes a ResourceError naming the allocation") {
  const std::string msg = resource_error([] {
    detail::allocation_context("the widget table", 3.0 * (1ULL << 30),
                               []() -> int { throw std::bad_alloc(); });
  });
  CHECK(
      contains(msg, "out of memory while allocating the widget table (3 GiB (3221225472 bytes))"));
  CHECK(detail::allocation_context("x", 1.0, [] { return 42; }) == 42);
  // A container asked for more than it can hold (std::length_error, nothing allocated; a real
  // huge allocation would abort under ASan) is caught too.
  CHECK(contains(resource_error([] {
                   detail::allocation_context("a huge vector", -1.0, [] {
                     std::vector<double> v;
                     v.reserve(v.max_size() + 1);
                     return v.size();
                   });
                 }),
                 "out of memory while allocating a huge vector"));
}

TEST_CASE("sa refuses dense coupling rows over the memory limit, by precision") {
  // n = 100 rows padded to 128 entries: 12800 entries of 8 (double) or 4 (float) bytes.
  const QuboModel model = test::random_model(100, 1.0, 5, 10, Storage::kDense);
  SolveOptions options;
  options.num_reads = 1;
  AnnealOptions anneal;
  anneal.num_sweeps = 2;
  anneal.precision = AnnealPrecision::kDouble;
  options.memory_limit_bytes = 102400 - 1;
  const std::string msg =
      resource_error([&] { (void)SimulatedAnnealing(anneal).solve(model, options); });
  CHECK(contains(msg, "sa: the dense coupling rows of 100 variables (8 bytes per entry) needs"));
  CHECK(contains(msg, "AnnealOptions::precision"));
  options.memory_limit_bytes = 102400;
  CHECK(SimulatedAnnealing(anneal).solve(model, options).has_solution());
  anneal.precision = AnnealPrecision::kFloat;
  options.memory_limit_bytes = 51200 - 1;
  CHECK_THROWS_AS((void)SimulatedAnnealing(anneal).solve(model, options), ResourceError);
  options.memory_limit_bytes = 51200;
  CHECK(SimulatedAnnealing(anneal).solve(model, options).has_solution());
}

TEST_CASE("greedy refuses a dense copy over the memory limit; a zero limit is invalid") {
  const QuboModel model = test::random_model(50, 1.0, 6, 10, Storage::kDense);
  SolveOptions options;
  options.memory_limit_bytes = 50 * 50 * 8 - 1;
  CHECK(contains(resource_error([&] { (void)GreedySolver().solve(model, options); }),
                 "greedy: the dense coupling rows of 50 variables needs"));
  options.memory_limit_bytes = 50 * 50 * 8;
  CHECK(GreedySolver().solve(model, options).has_solution());
  options.memory_limit_bytes = 0;
  CHECK_THROWS_AS((void)GreedySolver().solve(model, options), InvalidArgument);
}

TEST_CASE("qaoa refuses a statevector over the memory limit, directly and per subproblem") {
  // The documented need (QaoaSolver::solve): dimension x (8 bytes of diagonal + states x bytes
  // per amplitude), 2 states with L-BFGS (the adjoint pass), 1 with COBYLA.
  const auto need = [](int qubits, int states, int amplitude_bytes) {
    return (std::uint64_t{1} << qubits) * static_cast<std::uint64_t>(8 + states * amplitude_bytes);
  };
  const QuboModel model = test::random_model(10, 1.0, 8, 10, Storage::kDense);
  QaoaOptions qaoa;
  qaoa.layers = 1;
  qaoa.max_evaluations = 5;
  qaoa.shots = 10;
  SolveOptions options;
  struct Case {
    QaoaOptimizer optimizer;
    QaoaPrecision precision;
    std::uint64_t bytes;
  };
  for (const Case& c : {Case{QaoaOptimizer::kLbfgs, QaoaPrecision::kDouble, need(10, 2, 16)},
                        Case{QaoaOptimizer::kCobyla, QaoaPrecision::kFloat, need(10, 1, 8)}}) {
    INFO("need " << c.bytes);
    qaoa.optimizer = c.optimizer;
    qaoa.precision = c.precision;
    options.memory_limit_bytes = c.bytes - 1;
    CHECK(contains(resource_error([&] { (void)QaoaSolver(qaoa).solve(model, options); }),
                   "qaoa statevector (1024 amplitudes x"));
    options.memory_limit_bytes = c.bytes;
    CHECK(QaoaSolver(qaoa).solve(model, options).has_solution());
  }
  // Decomposed (12 variables, subproblems of max_qubits = 6): the limit reaches each subproblem.
  const QuboModel big = test::random_model(12, 1.0, 9, 10, Storage::kDense);
  qaoa.optimizer = QaoaOptimizer::kLbfgs;
  qaoa.precision = QaoaPrecision::kDouble;
  qaoa.max_qubits = 6;
  qaoa.decomposition_rounds = 2;
  qaoa.warm_start = false;  // subproblems on the engine
  options.memory_limit_bytes = need(6, 2, 16) - 1;
  CHECK(contains(resource_error([&] { (void)QaoaSolver(qaoa).solve(big, options); }),
                 "qaoa statevector (64 amplitudes x 2 states"));
  options.memory_limit_bytes = need(6, 2, 16);
  const SolveResult decomposed = QaoaSolver(qaoa).solve(big, options);
  CHECK(decomposed.info.at("decomposition") != "none");
  CHECK(decomposed.has_solution());
  // Warm-start subproblems: dimension x (4 bytes of masks + 8 of diagonal + 2 states x 16).
  qaoa.warm_start = true;
  options.memory_limit_bytes = 64 * (4 + 8 + 2 * 16) - 1;
  CHECK(contains(resource_error([&] { (void)QaoaSolver(qaoa).solve(big, options); }),
                 "qaoa warm-start statevector (64 amplitudes x 2 states"));
  options.memory_limit_bytes = 64 * (4 + 8 + 2 * 16);
  CHECK(QaoaSolver(qaoa).solve(big, options).has_solution());
}

TEST_CASE("penalty mode refuses the penalised copy over the memory limit") {
  // Sparse, 40 variables, no couplings, one group of 6: 15 pairs listed (16 bytes each), then the
  // smaller of dense (12800 bytes) and CSR (15 x 24 = 360 bytes): 600 bytes. 15 of 780 pairs
  // keep the penalised model sparse, so greedy makes no dense copy.
  QuboModel model = test::random_model(40, 0.0, 7, 10, Storage::kSparse);
  REQUIRE(model.num_couplings() == 0);
  model.add_constraint({"g", {0, 1, 2, 3, 4, 5}, 3});
  SolveOptions options;
  options.constraint_mode = ConstraintMode::kPenalty;
  options.memory_limit_bytes = 599;
  CHECK(contains(resource_error([&] { (void)GreedySolver().solve(model, options); }),
                 "greedy: the penalised copy of a model of 40 variables needs"));
  options.memory_limit_bytes = 600;
  CHECK(GreedySolver().solve(model, options).has_solution());
}

TEST_CASE("pruning builders refuse the error matrix over the memory limit") {
  // 3 output rows, 12 input channels: the MLP error matrix is 12 x 12 doubles = 1152 bytes.
  const Eigen::MatrixXd w = Eigen::MatrixXd::Random(3, 12);
  const Eigen::MatrixXd a = Eigen::MatrixXd::Random(20, 12);
  ActivationStats stats;
  stats.gram = a.transpose() * a;
  stats.num_tokens = 20;
  MlpProblemOptions mlp;
  mlp.layer = 4;
  mlp.memory_limit_bytes = 1152 - 1;
  CHECK(contains(resource_error([&] { (void)build_mlp_problem(w, stats, mlp); }),
                 "layer 4 mlp: the 12 x 12 error matrix needs"));
  mlp.memory_limit_bytes = 1152;
  CHECK(build_mlp_problem(w, stats, mlp).model.num_variables() == 12);
  // Heads: 4 heads of 3 channels; the channel x channel matrix is the same 1152 bytes.
  HeadProblemOptions heads;
  heads.layer = 2;
  heads.shape.num_heads = 4;
  heads.shape.num_kv_heads = 4;
  heads.shape.head_dim = 3;
  heads.memory_limit_bytes = 1152 - 1;
  CHECK(contains(resource_error([&] { (void)build_head_problem(w, stats, heads); }),
                 "layer 2 attention: the 12 x 12 error matrix needs"));
  heads.memory_limit_bytes = 1152;
  CHECK(build_head_problem(w, stats, heads).model.num_variables() == 4);
}

TEST_CASE("readers refuse a declared model over the memory limit before allocating it") {
  // 1000 variables at 16 bytes each (linear term and coupling row start): 16000 bytes.
  const std::filesystem::path dir = test::temp_dir("memory_limits");
  test::spit(dir / "big.qubo", "p qubo 0 1000 0 0\n");
  test::spit(dir / "big.coo", "0 999 1.5\n");
  for (const char* name : {"big.qubo", "big.coo"}) {
    INFO(name);
    ReadOptions options;
    options.memory_limit_bytes = 16000 - 1;
    const std::string path = (dir / name).string();
    CHECK(contains(resource_error([&] { (void)read_model(path, options); }),
                   path + ": a model of 1000 variables needs"));
    options.memory_limit_bytes = 16000;
    CHECK(read_model(path, options).num_variables() == 1000);
  }
  ReadOptions zero;
  zero.memory_limit_bytes = 0;
  CHECK_THROWS_AS(zero.validate(), InvalidArgument);
}
