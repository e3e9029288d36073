#!/usr/bin/env bash
# The cost of --multiple-of N on the example model (BENCHMARKS.md "Kept counts in multiples"):
# calibrate, then for each allocation (uniform, global) and N (1, 32, 64) mask (sa, same seed)
# -> apply -> held-out perplexity; prints the objective total (the layers' calibration output
# error, summed), its change against N = 1 (measured: same solver and seed), the rounding's
# predicted cost from the report (diagonal costs), the MLP sparsity reached and the perplexity.
# Usage: bench/multiple_of.sh [qprune binary] [output folder]; SPARSITY, SEED, MULTIPLES override.
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${1:-build/qprune}
out=${2:-$(mktemp -d)}
model=examples/model/checkpoint
sparsity=${SPARSITY:-0.4}
seed=${SEED:-1}
field() { sed -n "s/^$1 *: //p" "$2"; }
[[ -f $out/stats.safetensors ]] ||
  "$qprune" calibrate "$model" --text examples/model/calibration.txt --tokens 20000 --context 128 \
    -o "$out/stats.safetensors" >/dev/null
printf "%-8s %4s %-20s %9s %12s %10s %10s %10s %10s\n" allocation N keeps reached objective \
  measured predicted perplexity bits/byte
for allocation in uniform global; do
  base=""
  for n in ${MULTIPLES:-1 32 64}; do
    name=$allocation.$n
    "$qprune" mask "$model" --calib "$out/stats.safetensors" --unit mlp --sparsity "$sparsity" \
      --allocation "$allocation" --multiple-of "$n" --solver sa --reads 4 --seed "$seed" \
      -o "$out/$name.json" >"$out/mask-$name.txt" 2>/dev/null
    rm -rf "$out/pruned-$name"
    "$qprune" apply "$model" --masks "$out/$name.json" -o "$out/pruned-$name" >/dev/null
    "$qprune" perplexity "$out/pruned-$name" --text examples/model/heldout.txt --context 128 -q \
      >"$out/ppl-$name.txt"
    objective=$(field "Objective total" "$out/mask-$name.txt")
    [[ -n $base ]] || base=$objective
    keeps=$(grep -E '^ *"keep"' "$out/$name.json" | tr -dc '0-9\n' | paste -sd' ')
    reached=$(field "MLP sparsity reached" "$out/mask-$name.txt")
    predicted=$(field "Rounding cost predicted" "$out/mask-$name.txt")
    printf "%-8s %4s %-20s %9s %12.6g %10.4g %10s %10.4f %10.4f\n" "$allocation" "$n" "$keeps" \
      "${reached:-$sparsity}" "$objective" "$(awk -v a="$objective" -v b="$base" 'BEGIN{print a-b}')" \
      "${predicted:--}" "$(field Perplexity "$out/ppl-$name.txt")" \
      "$(field "Bits per byte" "$out/ppl-$name.txt")"
  done
done
