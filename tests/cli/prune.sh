# `qprune prune` end to end on the example model (a small calibration sample, so that it runs in
# seconds): the report's lines, the written checkpoint's widths and parameter counts, --eval on a
# held-out text (the pruned model stays close to the original: perplexity between the original's
# and twice it), the masks file, the one-shot and no-refit modes, the input left untouched, and
# bad input: an unknown method, an inexpressible head sparsity, too few tokens, an existing output.
source "$(dirname "$0")/common.bash" "$@"
MODEL=$DATA/../../examples/model/checkpoint
TEXT=$DATA/../../examples/model/calibration.txt
HELD=$DATA/../../examples/model/heldout.txt
head -c 6000 "$HELD" >"$TMP/held.txt"
before=$(cd "$MODEL" && cat ./* | cksum)

out=$("$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 4096 --sparsity 0.4 --head-sparsity 0.5 \
      --eval "$TMP/held.txt" --masks "$TMP/masks.json" -o "$TMP/pruned" 2>"$TMP/progress")
expect_line "$out" "Mode" "sequential"
expect_line "$out" "Method" "obs"
expect_line "$out" "Objective" "refit"
expect_line "$out" "Refit target" "residual"
expect_line "$out" "Allocation" "global \(stream\)"
expect_line "$out" "Calibration tokens" "4096"
expect_line "$out" "Parameters original" "984960"
grep -q "^global allocation: MLP keeps" "$TMP/progress" || fail "no allocation line"
grep -q "^layer 3 mlp: kept " "$TMP/progress" || fail "no per-layer progress"
# Global allocation: 40 % of all 2048 neurons and 50 % of all 32 heads go.
kept=$(grep -E "^Layer [0-3] mlp " <<<"$out" | sed -E 's/.*kept ([0-9]+)\/512.*/\1/' | paste -sd+ | bc)
[[ $kept -eq 1229 ]] || fail "MLP neurons kept $kept, expected 1229"
heads=$(grep -E "^Layer [0-3] heads_per_group " <<<"$out" | sed -E 's/.*kept ([0-9]+)\/8.*/\1/' | paste -sd+ | bc)
[[ $heads -eq 16 ]] || fail "heads kept $heads, expected 16"
stored=$(sed -nE 's/^Parameters stored *: //p' <<<"$out")
effective=$(sed -nE 's/^Parameters effective *: //p' <<<"$out")
[[ $effective -le $stored && $stored -le 984960 ]] || fail "stored $stored / effective $effective"
# The written checkpoint loads and its parameter count is the stored one.
p=$("$QPRUNE" perplexity "$TMP/pruned" --text "$TMP/held.txt" --context 128 -q)
expect_line "$p" "Parameters" "$stored"
ppl=$(sed -nE 's/^Perplexity [^:]*: //p' <<<"$out")
orig=$("$QPRUNE" perplexity "$MODEL" --text "$TMP/held.txt" --context 128 -q | sed -nE 's/^Perplexity *: //p')
awk -v p="$ppl" -v o="$orig" 'BEGIN { exit !(p >= o && p < 2 * o) }' || fail "perplexity $ppl vs original $orig"
grep -q '"solver": "obs"' "$TMP/masks.json" || fail "masks file"

# One-shot, uniform, no refit: the physically smaller checkpoint of the old pipeline.
out=$("$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 4096 --sparsity 0.5 --head-sparsity 0.5 \
      --one-shot --no-refit --allocation uniform --method diagonal -q -o "$TMP/oneshot")
expect_line "$out" "Mode" "one-shot"
expect_line "$out" "Objective" "no-refit"
grep -q '"intermediate_size": 256' "$TMP/oneshot/config.json" || fail "uniform width"
grep -q '"num_attention_heads": 4' "$TMP/oneshot/config.json" || fail "uniform heads"

after=$(cd "$MODEL" && cat ./* | cksum)
[[ $before == "$after" ]] || fail "the input checkpoint changed"

# Bad input.
expect_exit 2 "$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 4096 --method annealing -o "$TMP/x"
grep -q "method 'annealing' is unknown" "$TMP/stderr" || fail "unknown method message"
expect_exit 2 "$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 4096 --head-sparsity 0.4 --allocation uniform -o "$TMP/x"
grep -q "nearest expressible" "$TMP/stderr" || fail "head sparsity message"
expect_exit 2 "$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 200 --head-sparsity 0.5 --allocation uniform -o "$TMP/x"
grep -q "200 calibration tokens for" "$TMP/stderr" || fail "too few tokens message"
expect_exit 2 "$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 4096 -o "$TMP/pruned"
[[ ! -e $TMP/x ]] || fail "a failed run left an output"
# A config field the forward pass does not implement: refused up front, naming it (prune, and every
# other command that runs the model).
cp -r "$MODEL" "$TMP/gelu"
sed -i 's/"hidden_act": "silu"/"hidden_act": "gelu_pytorch_tanh"/' "$TMP/gelu/config.json"
expect_exit 2 "$QPRUNE" prune "$TMP/gelu" --text "$TEXT" --tokens 4096 -o "$TMP/x"
grep -q "hidden_act 'gelu_pytorch_tanh' (only silu)" "$TMP/stderr" || fail "hidden_act message"
sed -i 's/"rope_scaling": null/"rope_scaling": {"type": "yarn", "factor": 4.0}/' "$TMP/gelu/config.json"
expect_exit 2 "$QPRUNE" perplexity "$TMP/gelu" --text "$TMP/held.txt"
grep -q "rope_scaling" "$TMP/stderr" || fail "rope_scaling message"
[[ ! -e $TMP/x ]] || fail "a refused run left an output"
# The spill folders of finished and failed runs are gone.
if compgen -G "$TMP/*.qprune-tmp-*" >/dev/null; then fail "a temporary folder was left: $(ls -d "$TMP"/*.qprune-tmp-*)"; fi
