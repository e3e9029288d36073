#!/usr/bin/env bash
# Gset Max-Cut quality of several solver configurations, interleaved: for each seed, for each graph,
# every configuration runs once (one thread, one read searching the whole time limit for tabu, new
# reads until the limit for sa), so a change in machine load hits all of them alike. Prints one
# line per run (with the 1-minute load average), then the mean gap to the best-known cut
# (../shared/benchmarks/known_values.csv) per graph and overall for each configuration. Usage:
#   bench/gset_gap.sh [QPRUNE] [TIME_LIMIT_S] [SEEDS] [GRAPHS] [CONFIG]...
# e.g. bench/gset_gap.sh build/qprune 5 3 "G11 G12 G13 G14 G15 G16 G17 G18 G19 G20 G22 G43" \
#        "tabu --tabu-method tabu" "tabu --tabu-method breakout" "sa"
# A CONFIG is `SOLVER [FLAGS...]`; its label in the tables is the CONFIG itself. The run stops
# early when the best-known cut is reached (--target-energy). QPRUNE_BENCHMARKS overrides where the
# shared benchmark collection is (default: ../shared/benchmarks beside the clone).
set -euo pipefail
qprune=${1:-build/qprune}
limit=${2:-5}
seeds=${3:-3}
graphs=${4:-"G11 G12 G13 G14 G15 G16 G17 G18 G19 G20 G22 G43"}
shift $(($# < 4 ? $# : 4))
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=("tabu --tabu-method tabu" "tabu --tabu-method breakout" "sa")
# The shared collection sits beside the clone; QPRUNE_BENCHMARKS names it from elsewhere (a worktree).
bench=${QPRUNE_BENCHMARKS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/benchmarks}
if [[ ! -d $bench/gset ]]; then
  echo "skipped: $bench/gset not found (the shared benchmark instances are not in a user's clone)"
  exit 0
fi
export OMP_NUM_THREADS=1
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "| seed | graph | config | best-known | cut | gap %% | wall (s) | status | load |\n"
printf "|---|---|---|---|---|---|---|---|---|\n"
for seed in $(seq 1 "$seeds"); do
  for g in $graphs; do
    known=$(awk -F, -v g="$g" '$1=="gset" && $2==g {print $5}' "$bench/known_values.csv")
    for config in "${configs[@]}"; do
      read -r -a words <<<"$config"
      solver=${words[0]}
      # tabu: one read searching the whole limit; sa: new reads until the limit (no --reads).
      reads=()
      [[ $solver == tabu ]] && reads=(--reads 1)
      out=$("$qprune" solve "$bench/gset/$g.txt" --from maxcut --solver "$solver" "${words[@]:1}" \
            "${reads[@]}" --seed "$seed" --time-limit "$limit" --target-energy "-$known")
      best=$(sed -n 's/^Best energy *: -//p' <<<"$out")
      wall=$(sed -n 's/^Wall time (s) *: //p' <<<"$out")
      status=$(sed -n 's/^Status *: //p' <<<"$out")
      load=$(cut -d' ' -f1 /proc/loadavg)
      gap=$(awk -v k="$known" -v b="$best" 'BEGIN {printf "%.3f", 100 * (k - b) / k}')
      printf "| %s | %s | %s | %s | %s | %s | %.2f | %s | %s |\n" \
        "$seed" "$g" "$config" "$known" "$best" "$gap" "$wall" "$status" "$load"
      printf "%s\t%s\t%s\n" "$g" "$config" "$gap" >>"$runs"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# Mean gap per graph (columns: configurations) and overall.
awk -F'\t' -v graphs="$graphs" '
  { sum[$1 FS $2] += $3; n[$1 FS $2]++; all[$2] += $3; alln[$2]++
    if (!($2 in seen)) { seen[$2] = 1; order[++nc] = $2 } }
  END {
    ng = split(graphs, g, " ")
    printf "| graph |"; for (c = 1; c <= nc; c++) printf " %s |", order[c]; printf "\n|---|"
    for (c = 1; c <= nc; c++) printf "---|"; printf "\n"
    for (i = 1; i <= ng; i++) {
      printf "| %s |", g[i]
      for (c = 1; c <= nc; c++) printf " %.3f |", sum[g[i] FS order[c]] / n[g[i] FS order[c]]
      printf "\n"
    }
    printf "| **mean** |"; for (c = 1; c <= nc; c++) printf " **%.3f** |", all[order[c]] / alln[order[c]]
    printf "\n"
  }' "$runs"
