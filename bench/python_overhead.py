#!/usr/bin/env python3
"""Overhead of the Python call (issue 20 goal): a dense QUBO as a numpy array in, a SampleSet out,
against the solver's own wall time inside the call, and against `qprune solve` on the same file.

Usage: PYTHONPATH=build/python python3 bench/python_overhead.py build/qprune [N] [REPEATS]

The instance is bench/random_dense_instance.sh N 1 (integer coefficients in [-100, 100], fully
dense), read into numpy as an upper-triangular Q with the linear terms on the diagonal (the same
model the CLI reads). Every run uses the default settings of `sa` (one read, automatic sweeps) and
seed 1. Overhead = time of sample_qubo() - the solver's wall time (SolveResult::wall_time_s): the
array conversion, model building, option parsing, the worker thread and the SampleSet.
"""
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import qprune


def main() -> None:
    cli = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    here = pathlib.Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"dense{n}.qubo"
        with open(path, "w") as f:
            subprocess.run(["bash", str(here / "random_dense_instance.sh"), str(n), "1"],
                           stdout=f, check=True)
        data = np.loadtxt(path, comments=("c", "p"), dtype=np.int64)
        Q = np.zeros((n, n))
        Q[data[:, 0], data[:, 1]] = data[:, 2]

        cli_runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            done = subprocess.run([cli, "solve", str(path), "--solver", "sa", "--seed", "1",
                                   "--json"], capture_output=True, text=True, check=True)
            elapsed = time.perf_counter() - t0
            doc = json.loads(done.stdout)
            cli_runs.append((elapsed, doc))

    sampler = qprune.SimulatedAnnealingSampler()
    py_runs = []
    faults = []
    for _ in range(repeats):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        ss = sampler.sample_qubo(Q, seed=1)
        total = time.perf_counter() - t0
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        py_runs.append((total, ss.info["timing"]["solve_s"], ss.first.energy))

    def find(doc, key):
        if isinstance(doc, dict):
            if key in doc:
                return doc[key]
            for v in doc.values():
                r = find(v, key)
                if r is not None:
                    return r
        return None

    print(f"instance: dense random QUBO, n = {n}, {n * (n - 1) // 2} couplings; sa defaults, "
          f"seed 1, {repeats} runs each (median)")
    cli_solve = statistics.median(find(d, "wall_time_s") for _, d in cli_runs)
    cli_total = statistics.median(t for t, _ in cli_runs)
    cli_read = statistics.median(find(d, "read_seconds") or 0.0 for _, d in cli_runs)
    cli_energy = find(cli_runs[0][1], "best_energy")
    print(f"CLI    : solve {cli_solve:.3f} s, reading the file {cli_read:.3f} s, "
          f"process {cli_total:.3f} s, best energy {cli_energy}")
    totals = [t for t, _, _ in py_runs]
    solves = [s for _, s, _ in py_runs]
    overheads = [t - s for t, s, _ in py_runs]
    py_total, py_solve, py_over = (statistics.median(v) for v in (totals, solves, overheads))
    print(f"Python : call {py_total:.3f} s, solve {py_solve:.3f} s, overhead {py_over * 1e3:.1f} ms "
          f"= {100 * py_over / py_solve:.2f} % of the solve, best energy {py_runs[0][2]}")
    print(f"         page faults per call (median) {statistics.median(faults):.0f} "
          f"(a fresh 32 MB model matrix is 7,800; memory the allocator kept is 0)")
    print(f"Python call vs CLI solve: {100 * (py_total - cli_solve) / cli_solve:+.2f} %")


if __name__ == "__main__":
    main()
