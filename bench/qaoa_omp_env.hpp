// What both qaoa benchmarks do first: choose libgomp's passive wait when the user has not chosen.
// The QAOA passes are short parallel regions (one per XY pair rotation in the subspace mode), and
// with the default active wait the threads spin at every barrier; on a machine whose cores other
// processes hold, a spinning thread waits for a descheduled one and a run took up to 8x longer
// (BENCHMARKS.md, "qaoa: depth study"). libgomp reads OMP_WAIT_POLICY once, when it is loaded, so
// the program sets it and executes itself again; an explicit setting is left alone.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace qprune::bench {

inline void default_passive_omp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  // The resolved path, not /proc/self/exe, so that the process keeps its name in ps and top.
  char path[4096];
  const ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (len <= 0) return;
  path[len] = '\0';
  execv(path, argv);
  std::perror("execv (continuing with the default OpenMP wait policy)");
}

}  // namespace qprune::bench
