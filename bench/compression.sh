#!/usr/bin/env bash
# Compression sweep on the example model (examples/model): held-out perplexity after pruning at
# several sparsities, for masks from every mask source of `qprune mask` (the baselines
# `--method magnitude|diagonal` and the QUBO solvers greedy, sa, tabu, qaoa), each applied with
# and without `--refit`. Calibrates once (as examples/run does), then per sparsity and method:
# mask -> apply -> perplexity, and prints one Markdown table. Builds nothing: give it the binary.
#
# Units: MLP neurons at the requested sparsity and attention heads at the nearest sparsity this
# GQA model can express (8 heads in 2 KV groups: steps of 0.25, the same number dropped in every
# group; ties go to the lower one); the table prints both. HEADS=0 prunes the MLP only.
#
# Usage: bench/compression.sh QPRUNE [OUT_DIR]
#   env: SPARSITIES ("0.1 0.2 0.3 0.4 0.5") METHODS ("magnitude diagonal greedy sa tabu qaoa")
#        HEADS (1) SEED (1) CALIB_TOKENS (20000) CONTEXT (128)
#        SA_ARGS ("--reads 4") TABU_ARGS ("--reads 1 --tabu-iterations 50000") GREEDY_ARGS ("")
#        QAOA_ARGS ("--qaoa-max-qubits 14 -p 2 --qaoa-rounds 2") OMP_NUM_THREADS (1)
# One OpenMP thread by default: on a loaded shared machine the forward pass ran 4x faster in wall
# time with one thread than with two (10000 held-out tokens: 4.5 s vs 17.6 s, load ~13).
set -euo pipefail
QPRUNE=${1:?usage: bench/compression.sh QPRUNE [OUT_DIR]}
OUT=${2:-$(mktemp -d)}
cd "$(dirname "$0")/.."
MODEL=examples/model/checkpoint
SPARSITIES=${SPARSITIES:-0.1 0.2 0.3 0.4 0.5}
METHODS=${METHODS:-magnitude diagonal greedy sa tabu qaoa}
HEADS=${HEADS:-1}; SEED=${SEED:-1}; CALIB_TOKENS=${CALIB_TOKENS:-20000}; CONTEXT=${CONTEXT:-128}
SA_ARGS=${SA_ARGS:---reads 4}
TABU_ARGS=${TABU_ARGS:---reads 1 --tabu-iterations 50000}
GREEDY_ARGS=${GREEDY_ARGS:-}
QAOA_ARGS=${QAOA_ARGS:---qaoa-max-qubits 14 -p 2 --qaoa-rounds 2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
field() { sed -n "s/^$1 *: //p" "$2"; }

# Nearest expressible head sparsity: multiples of 1 / heads_per_group.
per_group=$(awk '/num_attention_heads/ {h=$2} /num_key_value_heads/ {k=$2} END {print (h+0)/(k+0)}' \
            FS='[:,]' "$MODEL/config.json")
head_sparsity() { awk -v s="$1" -v g="$per_group" 'BEGIN {printf "%.2f", int(s * g + 0.5 - 1e-9) / g}'; }

echo "== calibrate ($CALIB_TOKENS tokens of calibration.txt, context $CONTEXT)" >&2
"$QPRUNE" calibrate "$MODEL" --text examples/model/calibration.txt --tokens "$CALIB_TOKENS" \
  --context "$CONTEXT" -q -o "$OUT/stats.safetensors" >"$OUT/calibrate.txt"
ppl() { "$QPRUNE" perplexity "$1" --text examples/model/heldout.txt --context "$CONTEXT" -q >"$2"; }
ppl "$MODEL" "$OUT/ppl-original.txt"
params0=$(field Parameters "$OUT/ppl-original.txt")

method_args() {
  case $1 in
    magnitude|diagonal) echo "--method $1" ;;
    greedy) echo "--solver greedy $GREEDY_ARGS" ;;
    sa) echo "--solver sa $SA_ARGS" ;;
    tabu) echo "--solver tabu $TABU_ARGS" ;;
    qaoa) echo "--solver qaoa $QAOA_ARGS" ;;
    *) echo "unknown method $1" >&2; exit 2 ;;
  esac
}

rows="$OUT/rows.txt"; : >"$rows"
for s in $SPARSITIES; do
  if [[ $HEADS == 1 ]]; then
    hs=$(head_sparsity "$s")
    unit_args=(--unit both --head-sparsity "$hs")
  else
    hs=-; unit_args=(--unit mlp)
  fi
  for m in $METHODS; do
    run="$OUT/s$s-$m"
    echo "== sparsity $s (heads $hs), $m" >&2
    # shellcheck disable=SC2046  # method_args is a word list on purpose
    "$QPRUNE" mask "$MODEL" --calib "$OUT/stats.safetensors" "${unit_args[@]}" --sparsity "$s" \
      $(method_args "$m") --seed "$SEED" -o "$run.masks.json" >"$run.mask.txt" 2>/dev/null
    "$QPRUNE" apply "$MODEL" --masks "$run.masks.json" -o "$run.ckpt" >/dev/null
    "$QPRUNE" apply "$MODEL" --masks "$run.masks.json" -o "$run.refit" --refit >/dev/null
    ppl "$run.ckpt" "$run.ppl.txt"
    ppl "$run.refit" "$run.ppl-refit.txt"
    rm -rf "$run.ckpt" "$run.refit"
    printf "%s|%s|%s|%s|%s|%s|%s|%s\n" "$s" "$hs" "$(field Parameters "$run.ppl.txt")" "$m" \
      "$(field Perplexity "$run.ppl.txt")" "$(field Perplexity "$run.ppl-refit.txt")" \
      "$(field "Objective total" "$run.mask.txt")" "$(field "Solver time s" "$run.mask.txt")" \
      >>"$rows"
  done
done

echo
echo "Example model ($MODEL, $params0 parameters): held-out perplexity $(field Perplexity "$OUT/ppl-original.txt" | awk '{printf "%.3f", $1}') unpruned."
echo "Objective: sum over layers (MLP and heads) of the QUBO energy = calibration output error of the mask."
echo
echo "| MLP / head sparsity | Parameters kept | Method | Perplexity | Perplexity, refit | Objective sum | Mask time (s) |"
echo "| ------------------- | --------------: | ------ | ---------: | ----------------: | ------------: | ------------: |"
awk -F'|' -v p0="$params0" '{
  printf "| %.2f / %s | %d (%.1f %%) | %s | %.3f | %.3f | %.6g | %.3g |\n",
         $1, $2, $3, 100 * $3 / p0, $4, $5, $6, $7, $8 }' "$rows"
echo
echo "Outputs: $OUT" >&2
