#!/usr/bin/env bash
# Uniform vs global MLP sparsity allocation on the example model (BENCHMARKS.md "Global sparsity
# allocation"): calibrate, then for each allocation mask (sa) -> apply -> held-out perplexity.
# Usage: bench/global_allocation.sh [qprune binary] [output folder]; SPARSITY, SEEDS override.
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${1:-build/qprune}
out=${2:-$(mktemp -d)}
model=examples/model/checkpoint
sparsity=${SPARSITY:-0.4}
field() { sed -n "s/^$1 *: //p" "$2"; }
[[ -f $out/stats.safetensors ]] ||
  "$qprune" calibrate "$model" --text examples/model/calibration.txt --tokens 20000 --context 128 \
    -o "$out/stats.safetensors" >/dev/null
"$qprune" perplexity "$model" --text examples/model/heldout.txt --context 128 -q >"$out/ppl-original.txt"
printf "%-34s %5s %12s %12s %10s %14s %14s\n" variant seed objective parameters effective perplexity bits/byte
printf "%-34s %5s %12s %12s %10s %14.4f %14.4f\n" original - - "$(field Parameters "$out/ppl-original.txt")" - \
  "$(field Perplexity "$out/ppl-original.txt")" "$(field "Bits per byte" "$out/ppl-original.txt")"
for seed in ${SEEDS:-1}; do
  for variant in "uniform" "global --cost-scale relative" "global --cost-scale absolute"; do
    name=$(tr ' ' '_' <<<"$variant" | sed 's/--cost-scale_//')
    # shellcheck disable=SC2086
    "$qprune" mask "$model" --calib "$out/stats.safetensors" --unit mlp --sparsity "$sparsity" \
      --allocation $variant --solver sa --reads 4 --seed "$seed" -o "$out/$name.$seed.json" \
      >"$out/mask-$name.$seed.txt" 2>/dev/null
    rm -rf "$out/pruned-$name.$seed"
    "$qprune" apply "$model" --masks "$out/$name.$seed.json" -o "$out/pruned-$name.$seed" \
      >"$out/apply-$name.$seed.txt"
    "$qprune" perplexity "$out/pruned-$name.$seed" --text examples/model/heldout.txt --context 128 -q \
      >"$out/ppl-$name.$seed.txt"
    printf "%-34s %5s %12.6g %12s %10s %14.4f %14.4f\n" "$name" "$seed" \
      "$(field "Objective total" "$out/mask-$name.$seed.txt")" \
      "$(field "Parameters stored" "$out/apply-$name.$seed.txt")" \
      "$(field "Parameters effective" "$out/apply-$name.$seed.txt")" \
      "$(field Perplexity "$out/ppl-$name.$seed.txt")" "$(field "Bits per byte" "$out/ppl-$name.$seed.txt")"
    grep -E '^ *"keep"' "$out/$name.$seed.json" | tr -dc '0-9\n' | paste -sd' ' | sed 's/^/    keeps per layer: /'
  done
done
