#!/usr/bin/env bash
# Issue 18 point 1: what a neal user gets from qprune's penalty-form exports. For every layer of
# the example model, MLP and heads units, each sparsity and each calibration seed: the
# constrained optimum of the layer problem (the best of tabu and sa with native swap moves on the
# JSON export, which keeps the keep-k group; exact for the 8-head problems), then the same layer
# exported as a qbsolv file with `--penalty provable` and with `--penalty tuned` (the default),
# annealed by the neal-class reference (build/bench/neal_export: neal's algorithm, 10 reads of
# 1000 sweeps at neal's default beta range, and over the file's beta hint). Prints one row per
# file: the best and median read's gap to the optimum in %, and whether the best read keeps k
# units (`qprune import-solution` without --repair accepts it) with its masks' layer error.
#
# Usage: bench/neal_exports.sh [QPRUNE] [NEAL_EXPORT] [SPARSITIES] [SEEDS] [HEAD_SPARSITIES]
#   defaults: build/qprune build/bench/neal_export "0.3 0.4 0.5" "1 2 3" "0.25 0.5"
#   (8 heads in 2 KV groups: heads go in steps of 25 %)
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${1:-build/qprune}
neal=${2:-build/bench/neal_export}
sparsities=${3:-"0.3 0.4 0.5"}
seeds=${4:-"1 2 3"}
head_sparsities=${5:-"0.25 0.5"}
ckpt=examples/model/checkpoint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
layers=$(jq .num_hidden_layers "$ckpt/config.json")

printf '%-5s %-5s %-4s %-5s %-9s %-8s %10s %10s %-9s\n' seed layer unit spars penalty schedule \
  best_gap% med_gap% feasible
for seed in $seeds; do
  # Calibration seed s: 15000 bytes of the calibration text from byte 15000 (s - 1) on.
  dd if=examples/model/calibration.txt of="$tmp/calib.txt" bs=15000 skip=$((seed - 1)) count=1 \
    status=none
  "$qprune" calibrate "$ckpt" --text "$tmp/calib.txt" --context 128 \
    -o "$tmp/stats.safetensors" -q >/dev/null
  for ((layer = 0; layer < layers; ++layer)); do
    for unit in mlp heads; do
      list=$sparsities
      [[ $unit == heads ]] && list=$head_sparsities
      for s in $list; do
        common=(--calib "$tmp/stats.safetensors" --layer "$layer" --unit "$unit" --sparsity "$s")
        "$qprune" export "$ckpt" "${common[@]}" -o "$tmp/p.json" >/dev/null 2>&1
        if [[ $unit == heads ]]; then
          ref=$("$qprune" solve "$tmp/p.json" -s exact --json | jq .best_energy)
        else
          a=$("$qprune" solve "$tmp/p.json" -s tabu --time-limit 2 --seed "$seed" --json | jq .best_energy)
          b=$("$qprune" solve "$tmp/p.json" -s sa --time-limit 2 --seed "$seed" --json | jq .best_energy)
          ref=$(awk -v a="$a" -v b="$b" 'BEGIN { print (a < b ? a : b) }')
        fi
        for rule in provable tuned; do
          "$qprune" export "$ckpt" "${common[@]}" --penalty "$rule" --seed "$seed" \
            -o "$tmp/p.qubo" >/dev/null
          schedules=(default)
          [[ $rule == tuned ]] && schedules+=(hint)
          for schedule in "${schedules[@]}"; do
            out=$("$neal" "$tmp/p.qubo" --reads 10 --seed "$seed" --schedule "$schedule" \
              --reference "$ref" --write-best "$tmp/best.txt")
            best=$(sed -n 's/^gap_best_pct //p' <<<"$out")
            med=$(sed -n 's/^gap_median_pct //p' <<<"$out")
            if "$qprune" import-solution "$ckpt" "${common[@]:0:2}" --qubo "$tmp/p.qubo" \
              --solution "$tmp/best.txt" -o "$tmp/m.json" >/dev/null 2>&1; then
              feasible=yes
            else
              feasible=no
            fi
            printf '%-5s %-5s %-4s %-5s %-9s %-8s %10s %10s %-9s\n' "$seed" "$layer" "$unit" \
              "$s" "$rule" "$schedule" "$best" "$med" "$feasible"
          done
        done
      done
    done
  done
done
