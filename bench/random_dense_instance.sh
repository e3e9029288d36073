#!/usr/bin/env bash
# Writes the fully dense random QUBO of the speed and time-to-target benchmarks in qbsolv format:
# n variables, every c_i and q_ij an integer uniform in [-100, 100], from a fixed awk seed.
# Usage: bench/random_dense_instance.sh N SEED > file.qubo
set -euo pipefail
n=${1:-1000} seed=${2:-1}
awk -v n="$n" -v seed="$seed" 'BEGIN {
  srand(seed);
  printf "c random dense QUBO: n=%d, integer coefficients uniform in [-100, 100], awk srand(%d)\n", n, seed;
  printf "p qubo 0 %d %d %d\n", n, n, n * (n - 1) / 2;
  for (i = 0; i < n; i++) printf "%d %d %d\n", i, i, int(rand() * 201) - 100;
  for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) printf "%d %d %d\n", i, j, int(rand() * 201) - 100;
}'
