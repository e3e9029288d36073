// The processes a qprune run is spread over. Built with QPRUNE_MPI and started by an MPI launcher
// (mpirun, srun), `mask`, `compare` and `calibrate` hand their work to an MPI JobRunner
// (cli/parallel/mpi_processes.cpp); otherwise, or without a launcher, there is one process and the
// serial runner (cli/parallel/serial_processes.cpp). The rest of the program sees only this header.
#pragma once
#ifdef QPRUNE_LAYER
#error "cli/parallel.hpp is part of the cli program; no library layer may include it"
#endif

#include <string>

#include "qprune/job_runner.hpp"

namespace qprune::cli {

/// Starts MPI when the program was started by an MPI launcher (environment of mpirun / srun) and
/// the build has MPI; then, unless OMP_NUM_THREADS is set, gives each process its share of the
/// node's cores as OpenMP threads. Call once, first thing in main.
void init_processes(int& argc, char**& argv);
/// Ends MPI (no-op without it). Call once before returning from main.
void finish_processes();

[[nodiscard]] int process_rank();   ///< 0 without MPI
[[nodiscard]] int process_count();  ///< 1 without MPI
/// The runner for distributed work: MPI with more than one process, else serial.
[[nodiscard]] JobRunner& process_runner();

/// Ends every process of the run after an error `message` already printed on this process's
/// stderr (MPI_Abort with `exit_code`); with one process it returns and the caller exits.
void abort_processes(int exit_code);

}  // namespace qprune::cli
