// cli/parallel.hpp with MPI (compiled only with -DQPRUNE_MPI=ON): the MPI JobRunner.
//
// Jobs are balanced dynamically. Rank 0 is the coordinator and works too: its main thread (the
// only thread that calls MPI, so MPI_THREAD_FUNNELED suffices) hands out jobs in the given order
// to the other ranks as they ask, and runs its own jobs one at a time in a second thread. A rank
// asks for a job with its previous result attached. Ordered sums are static (chunk c on rank
// c mod size, equal-cost chunks need no balancing): rank 0 receives the chunks in chunk order and
// adds them, so the total has the same bits for any number of ranks.
//
// A job that throws prints "qprune: error: rank R failed on LABEL: message" on its own rank and
// calls MPI_Abort with the error's exit code, which ends every rank at once (nobody waits for it).
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <numeric>
#include <string>
#include <thread>
#include <utility>

#include "cli/exit_codes.hpp"
#include "cli/parallel.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qprune::cli {
namespace {

bool g_active = false;  // MPI initialised by us
int g_rank = 0;
int g_size = 1;
int g_threads = 0;  // OpenMP threads per rank that we chose; 0: OMP_NUM_THREADS decides

bool started_by_launcher() {
  for (const char* name :
       {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

void apply_threads() {
#ifdef _OPENMP
  if (g_threads > 0) omp_set_num_threads(g_threads);  // per thread: call in every new thread
#endif
}

// Cores this rank may use: its affinity mask when the launcher bound it to fewer than the node's
// cores, else the node's cores divided by the ranks on the node.
int threads_per_rank() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int allowed = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = CPU_COUNT(&set);
  const int node = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  if (allowed <= 0) allowed = node;
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  int local_ranks = 1;
  MPI_Comm_size(local, &local_ranks);
  MPI_Comm_free(&local);
  if (allowed < node) return allowed;
  return std::max(1, allowed / local_ranks);
}

[[noreturn]] void fail(const std::string& what, int exit_code, const std::string& message) {
  const std::string line = std::string("qprune: ") + error_kind(exit_code) + ": rank " +
                           std::to_string(g_rank) + " failed on " + what + ": " + message + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::abort();  // MPI_Abort does not return
}

// Runs `body`; an exception ends the run through fail() naming `what`.
template <class Body>
void guarded(const std::string& what, Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    fail(what, exit_code_for(e), e.what());
  } catch (...) {
    fail(what, kExitFailure, "unknown exception");
  }
}

int message_size(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(INT_MAX))
    throw ResourceError("a job result of " + std::to_string(bytes) +
                        " bytes exceeds what one MPI message carries (2 GiB)");
  return static_cast<int>(bytes);
}

// Doubles in pieces small enough for an int count; same-tag messages between two ranks arrive in
// order, so the pieces reassemble.
constexpr std::size_t kPieceDoubles = std::size_t{1} << 27;
void send_doubles(std::span<const double> v, int to, int tag) {
  for (std::size_t i = 0; i < v.size(); i += kPieceDoubles)
    MPI_Send(v.data() + i, static_cast<int>(std::min(kPieceDoubles, v.size() - i)), MPI_DOUBLE, to,
             tag, MPI_COMM_WORLD);
}
void recv_doubles(std::span<double> v, int from, int tag) {
  for (std::size_t i = 0; i < v.size(); i += kPieceDoubles)
    MPI_Recv(v.data() + i, static_cast<int>(std::min(kPieceDoubles, v.size() - i)), MPI_DOUBLE,
             from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

class MpiJobRunner final : public JobRunner {
 public:
  [[nodiscard]] int num_processes() const override { return g_size; }
  [[nodiscard]] bool is_coordinator() const override { return g_rank == 0; }

  std::vector<std::string> run(const Jobs& jobs) override {
    const int base = next_tags();
    const int tag_request = base, tag_result = base + 1, tag_assign = base + 2;
    if (g_rank != 0) {
      MPI_Send(nullptr, 0, MPI_BYTE, 0, tag_request, MPI_COMM_WORLD);
      for (;;) {
        long long job = -1;
        MPI_Recv(&job, 1, MPI_LONG_LONG, 0, tag_assign, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (job < 0) return {};
        const auto i = static_cast<std::size_t>(job);
        std::string message(sizeof job, '\0');
        std::memcpy(message.data(), &job, sizeof job);
        guarded(jobs.label(i), [&] {
          message += jobs.run(i);
          (void)message_size(message.size());
        });
        MPI_Send(message.data(), static_cast<int>(message.size()), MPI_BYTE, 0, tag_result,
                 MPI_COMM_WORLD);
      }
    }

    std::vector<std::size_t> order = jobs.order;
    if (order.empty()) {
      order.resize(jobs.count);
      std::iota(order.begin(), order.end(), std::size_t{0});
    }
    std::size_t next = 0;
    auto take = [&]() -> long long {
      return next < order.size() ? static_cast<long long>(order[next++]) : -1;
    };
    std::vector<std::string> results(jobs.count);
    auto deliver = [&](std::size_t i, std::string bytes) {
      results[i] = std::move(bytes);
      // An exception must not leave this loop while the worker thread runs: end the run instead.
      if (jobs.done) guarded(jobs.label(i), [&] { jobs.done(i, results[i]); });
    };

    // Rank 0's own jobs, one at a time in a worker thread.
    std::thread worker;
    std::atomic<bool> finished{false};
    bool busy = false;
    std::size_t local_job = 0;
    std::string local_result;
    std::exception_ptr local_error;
    auto start_local = [&] {
      const long long j = take();
      if (j < 0) return;
      local_job = static_cast<std::size_t>(j);
      busy = true;
      finished = false;
      worker = std::thread([&] {
        apply_threads();
        try {
          local_result = jobs.run(local_job);
        } catch (...) {
          local_error = std::current_exception();
        }
        finished = true;
      });
    };
    start_local();

    int stopped = 0;  // ranks told that no job is left
    while (stopped < g_size - 1 || busy) {
      bool idle = true;
      if (busy && finished) {
        worker.join();
        busy = false;
        idle = false;
        if (local_error)
          guarded(jobs.label(local_job), [&] { std::rethrow_exception(local_error); });
        deliver(local_job, std::exchange(local_result, {}));
        start_local();
      }
      for (const int tag : {tag_result, tag_request}) {
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, &status);
        if (!flag) continue;
        idle = false;
        int bytes = 0;
        MPI_Get_count(&status, MPI_BYTE, &bytes);
        std::string message(static_cast<std::size_t>(bytes), '\0');
        MPI_Recv(message.data(), bytes, MPI_BYTE, status.MPI_SOURCE, tag, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        if (tag == tag_result) {
          long long job = -1;
          std::memcpy(&job, message.data(), sizeof job);
          deliver(static_cast<std::size_t>(job), message.substr(sizeof job));
        }
        const long long assign = take();
        MPI_Send(&assign, 1, MPI_LONG_LONG, status.MPI_SOURCE, tag_assign, MPI_COMM_WORLD);
        if (assign < 0) ++stopped;
      }
      if (idle) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return results;
  }

  void ordered_sum(const OrderedSum& sum, std::span<double> total) override {
    const int tag = next_tags();
    std::vector<double> buffer(sum.size);
    auto compute = [&](std::size_t c) {
      std::fill(buffer.begin(), buffer.end(), 0.0);
      guarded(sum.label(c), [&] { sum.partial(c, buffer); });
    };
    const auto size = static_cast<std::size_t>(g_size);
    if (g_rank != 0) {
      for (std::size_t c = static_cast<std::size_t>(g_rank); c < sum.count; c += size) {
        compute(c);
        send_doubles(buffer, 0, tag);
      }
      return;
    }
    std::fill(total.begin(), total.end(), 0.0);
    for (std::size_t c = 0; c < sum.count; ++c) {
      const int owner = static_cast<int>(c % size);
      if (owner == 0) {
        compute(c);
      } else {
        recv_doubles(buffer, owner, tag);
      }
      for (std::size_t i = 0; i < sum.size; ++i) total[i] += buffer[i];
      if (sum.added) sum.added(c);
    }
  }

 private:
  // Every call uses its own tags (all ranks make the same calls in the same order), so a rank
  // that is already in the next call cannot be mistaken for one still in this call.
  int next_tags() {
    const int base = 16 + 4 * (calls_ % 4096);
    ++calls_;
    return base;
  }
  int calls_ = 0;
};

}  // namespace

void init_processes(int& argc, char**& argv) {
  if (!started_by_launcher()) return;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  g_active = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    g_threads = threads_per_rank();
    apply_threads();
  }
}

void finish_processes() {
  if (g_active) MPI_Finalize();
  g_active = false;
}

int process_rank() { return g_rank; }
int process_count() { return g_size; }

JobRunner& process_runner() {
  static MpiJobRunner mpi;
  return g_size > 1 ? static_cast<JobRunner&>(mpi) : runner_or_serial(nullptr);
}

void abort_processes(int exit_code) {
  if (!g_active || g_size == 1) return;
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
}

}  // namespace qprune::cli
