#!/usr/bin/env bash
# Reading a file with two qprune binaries (e.g. main before issue 17 and this branch), interleaved:
# `qprune info FILE` (read the model, print its statistics) RUNS times each; prints the median
# wall time of each binary and the throughput in MB/s. BENCHMARKS.md, "Issue 17: parsing at disk
# speed". Usage: bench/parse_formats.sh BEFORE AFTER RUNS FILE...
set -euo pipefail
before=$1 after=$2 runs=$3
shift 3
for file in "$@"; do
  python3 - "$before" "$after" "$runs" "$file" <<'PY'
import os, subprocess, sys, time, statistics
before, after, runs, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
times = {before: [], after: []}
for _ in range(runs):
    for binary in (before, after):
        t0 = time.perf_counter()
        subprocess.run([binary, "info", path], check=True, stdout=subprocess.DEVNULL)
        times[binary].append(time.perf_counter() - t0)
mb = os.path.getsize(path) / 1e6
b, a = statistics.median(times[before]), statistics.median(times[after])
print(f"{os.path.basename(path):24s} {mb:6.2f} MB  before {b:.3f} s ({mb / b:6.1f} MB/s)"
      f"  after {a:.3f} s ({mb / a:6.1f} MB/s)  before/after {b / a:.2f}x")
PY
done
