// cli/parallel.hpp for a build without MPI: one process, the library's serial runner.
#include "cli/parallel.hpp"

namespace qprune::cli {

void init_processes(int&, char**&) {}
void finish_processes() {}
int process_rank() { return 0; }
int process_count() { return 1; }
JobRunner& process_runner() { return runner_or_serial(nullptr); }
void abort_processes(int) {}

}  // namespace qprune::cli
