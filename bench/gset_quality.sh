#!/usr/bin/env bash
# Gset G1-G10 Max-Cut quality: best cut found by a solver within a time limit, against the
# best-known values of ../shared/benchmarks/known_values.csv. Usage:
#   bench/gset_quality.sh [QPRUNE_BINARY] [SOLVER] [TIME_LIMIT_S]
# The run stops early when the best-known cut is reached (--target-energy).
set -euo pipefail
qprune=${1:-build/qprune}
solver=${2:-tabu}
limit=${3:-60}
bench=$(cd "$(dirname "$0")/.." && pwd)/../shared/benchmarks
if [[ ! -d $bench/gset ]]; then
  echo "skipped: $bench/gset not found (the shared benchmark instances are not in a user's clone)"
  exit 0
fi
extra=()
[[ $solver == tabu ]] && extra=(--tabu-iterations 1000000000000)
[[ $solver == sa ]] && extra=(--sweeps 20000)
printf "| graph | best-known cut | %s cut | gap %% | time to best (s) | status |\n|---|---|---|---|---|---|\n" "$solver"
for g in G1 G2 G3 G4 G5 G6 G7 G8 G9 G10; do
  known=$(awk -F, -v g="$g" '$1=="gset" && $2==g {print $5}' "$bench/known_values.csv")
  out=$("$qprune" solve "$bench/gset/$g.txt" --from maxcut --solver "$solver" --reads 2 --seed 1 \
        --time-limit "$limit" --target-energy "-$known" "${extra[@]}")
  best=$(sed -n 's/^Best energy *: -//p' <<<"$out")
  wall=$(sed -n 's/^Wall time (s) *: //p' <<<"$out")
  status=$(sed -n 's/^Status *: //p' <<<"$out")
  gap=$(awk -v k="$known" -v b="$best" 'BEGIN {printf "%.3f", 100 * (k - b) / k}')
  printf "| %s | %s | %s | %s | %.2f | %s |\n" "$g" "$known" "$best" "$gap" "$wall" "$status"
done
