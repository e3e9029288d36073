#!/usr/bin/env bash
# Wall time of `qprune mask` on the example model without MPI, with `mpirun -np 1` and `-np 2`
# (and more with NPS="1 2 4"), alternating the configurations REPEAT times and printing the median
# of each; also checks that every run wrote the same masks (without the time fields).
# Usage: bash bench/mpi_mask.sh [QPRUNE] ; env: REPEAT (3), NPS ("1 2"), SWEEPS (2000), READS (4).
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${1:-build/qprune}
repeat=${REPEAT:-3}
nps=${NPS:-1 2}
mpirun=(mpirun --oversubscribe)
[[ $(id -u) -eq 0 ]] && mpirun+=(--allow-run-as-root)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=examples/model
"$qprune" calibrate "$model/checkpoint" --text "$model/calibration.txt" --tokens 20000 --context 128 \
  -q -o "$tmp/stats.safetensors" >/dev/null
args=(mask "$model/checkpoint" --calib "$tmp/stats.safetensors" --unit both --sparsity 0.4
      --head-sparsity 0.5 --solver sa --sweeps "${SWEEPS:-2000}" --reads "${READS:-4}" --seed 1)
configs=(plain)
for n in $nps; do configs+=("np$n"); done
for ((r = 0; r < repeat; ++r)); do
  for c in "${configs[@]}"; do
    start=$(date +%s.%N)
    if [[ $c == plain ]]; then
      "$qprune" "${args[@]}" -o "$tmp/$c.json" >/dev/null 2>&1
    else
      "${mpirun[@]}" -np "${c#np}" "$qprune" "${args[@]}" -o "$tmp/$c.json" >/dev/null 2>&1
    fi
    echo "$c $(echo "$(date +%s.%N) - $start" | bc)" >>"$tmp/times"
    cmp -s <(jq -S 'del(.. | .time_s?)' "$tmp/plain.json") <(jq -S 'del(.. | .time_s?)' "$tmp/$c.json") ||
      { echo "masks of $c differ from the plain run" >&2; exit 1; }
  done
done
echo "config median_wall_s (of $repeat)"
for c in "${configs[@]}"; do
  echo "$c $(awk -v c="$c" '$1 == c { print $2 }' "$tmp/times" | sort -g |
            awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
