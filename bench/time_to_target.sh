#!/usr/bin/env bash
# Time to reach the published optimum / best-known value: for each instance and seed, one
# `qprune solve --target-energy` run; prints the median wall time over the seeds and how many
# seeds reached the target within the limit. Usage:
#   bench/time_to_target.sh QPRUNE SOLVER SEEDS LIMIT_S INSTANCE=VALUE... [-- SOLVER_OPTIONS...]
# INSTANCE is any path qprune reads (file#k allowed); VALUE the target energy (qprune minimises,
# so a published maximum V is -V).
set -euo pipefail
qprune=$1 solver=$2 seeds=$3 limit=$4
shift 4
cases=()
while (($#)) && [[ $1 != -- ]]; do cases+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
printf "| instance | target | %s reached | median s | max s |\n|---|---|---|---|---|\n" "$solver"
for c in "${cases[@]}"; do
  inst=${c%=*} target=${c##*=}
  times=() reached=0
  for ((s = 1; s <= seeds; s++)); do
    out=$("$qprune" solve "$inst" --solver "$solver" --seed "$s" --time-limit "$limit" \
          --target-energy "$target" "$@")
    best=$(sed -n 's/^Best energy *: //p' <<<"$out")
    wall=$(sed -n 's/^Wall time (s) *: //p' <<<"$out")
    if awk -v b="$best" -v t="$target" 'BEGIN {exit !(b <= t)}'; then
      reached=$((reached + 1)); times+=("$wall")
    else
      times+=(inf)
    fi
  done
  stats=$(printf "%s\n" "${times[@]}" | sort -g | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] == "inf" || v[NR/2+1] == "inf" ? "inf" : (v[NR/2]+v[NR/2+1])/2);
    printf "%s | %s", m, v[NR]}')
  printf "| %s | %s | %d/%d | %s |\n" "$(basename "$inst")" "$target" "$reached" "$seeds" "$stats"
done
