# The pruning pipeline end to end on the checked-in tiny Llama (GQA: 4 heads, 2 KV groups):
# `qprune mask` -> `export` (layer 0) -> an external-style 0/1 answer written with awk from a known
# feasible mask -> `import-solution --base` -> `apply`, then the output config and files; plus an
# infeasible answer repaired, masks for another checkpoint, and a sparsity GQA cannot express.
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/checkpoints/tiny-llama-gqa
STATS=$DATA/checkpoints/tiny-llama-gqa.stats.safetensors
before=$(cd "$CKPT" && cat config.json model.safetensors tokenizer_config.json | cksum)

out=$("$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 \
      --head-shape heads_per_group --solver sa --seed 3 --sweeps 200 -o "$TMP/masks.json" 2>"$TMP/progress")
expect_line "$out" "Objective source" "calibration \(exact layer error\)"
expect_line "$out" "Mean compensation" "yes"
expect_line "$out" "Entries" "4"
expect_line "$out" "Feasible entries" "4"
grep -q "^layer 1 heads_per_group: kept 2/4 objective" "$TMP/progress" || fail "no progress line"

# Export layer 0's MLP problem (JSON keeps labels and the constraint; qbsolv carries the penalty).
out=$("$QPRUNE" export "$CKPT" --calib "$STATS" --layer 0 --unit mlp --sparsity 0.5 -o "$TMP/l0.json")
expect_line "$out" "Files" "1"
"$QPRUNE" export "$CKPT" --calib "$STATS" --layer 0 --unit mlp --sparsity 0.5 -o "$TMP/l0.qubo" >/dev/null
grep -q "^c qprune.layer=0" "$TMP/l0.qubo" || fail "qbsolv export lacks the layer comment"
"$QPRUNE" export "$CKPT" --calib "$STATS" --all --unit mlp --sparsity 0.5 --format lp -o "$TMP/all" >/dev/null
[[ -f $TMP/all/layer_0.mlp.lp && -f $TMP/all/layer_1.mlp.lp ]] || fail "export --all files"
grep -q "= 6" "$TMP/all/layer_1.mlp.lp" || fail "LP export lacks the keep-6 constraint"

# An external solver's answer: keep units 0..5 of 12 (one value per line, file order).
awk 'BEGIN { for (i = 0; i < 12; ++i) print (i < 6 ? 1 : 0) }' >"$TMP/sol.txt"
out=$("$QPRUNE" import-solution "$CKPT" --calib "$STATS" --qubo "$TMP/l0.qubo" --solution "$TMP/sol.txt" \
      --base "$TMP/masks.json" -o "$TMP/merged.json")
expect_line "$out" "Solution feasible" "yes"
expect_line "$out" "Kept" "6"
grep -q '"solver": "sa"' "$TMP/merged.json" || fail "merged masks lost the base"

# Infeasible (8 kept): refused, then repaired by dropping 2.
sed 's/^0$/1/' "$TMP/sol.txt" | awk 'NR <= 8 { print 1; next } { print 0 }' >"$TMP/over.txt"
expect_exit 2 "$QPRUNE" import-solution "$CKPT" --calib "$STATS" --qubo "$TMP/l0.json" --solution "$TMP/over.txt" -o "$TMP/x.json"
grep -q "keeps 8 (needs 6)" "$TMP/stderr" || fail "infeasible message"
out=$("$QPRUNE" import-solution "$CKPT" --calib "$STATS" --qubo "$TMP/l0.json" --solution "$TMP/over.txt" --repair -o "$TMP/rep.json")
expect_line "$out" "Repaired" "yes"
expect_line "$out" "Kept" "6"

# Apply the merged masks.
out=$("$QPRUNE" apply "$CKPT" --masks "$TMP/merged.json" -o "$TMP/pruned")
expect_line "$out" "intermediate_size" "6"
expect_line "$out" "num_attention_heads" "2"
expect_line "$out" "num_key_value_heads" "2"
expect_line "$out" "head_dim" "2"
grep -q '"intermediate_size": 6' "$TMP/pruned/config.json" || fail "config intermediate_size"
grep -q '"head_dim": 2' "$TMP/pruned/config.json" || fail "config head_dim not explicit"
grep -q '"mlp_bias": true' "$TMP/pruned/config.json" || fail "config mlp_bias"
cmp -s "$CKPT/tokenizer_config.json" "$TMP/pruned/tokenizer_config.json" || fail "tokenizer copy"
out=$("$QPRUNE" apply "$CKPT" --masks "$TMP/merged.json" --refit -o "$TMP/refit")
grep -q "^Layer 0 mlp refit *: error" <<<"$out" || fail "refit line"
after=$(cd "$CKPT" && cat config.json model.safetensors tokenizer_config.json | cksum)
[[ $before == "$after" ]] || fail "the input checkpoint changed"

# Masks for another checkpoint; a sparsity GQA cannot express; one that leaves nothing.
expect_exit 2 "$QPRUNE" apply "$TMP/pruned" --masks "$TMP/merged.json" -o "$TMP/again"
grep -q "masks were computed for checkpoint" "$TMP/stderr" || fail "identity message"
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$STATS" --unit heads --sparsity 0.25 -o "$TMP/m.json"
grep -q "nearest expressible" "$TMP/stderr" || fail "GQA message"
expect_exit 2 "$QPRUNE" mask "$CKPT" --unit mlp --sparsity 0.99 -o "$TMP/m.json"
grep -q "leaves no unit" "$TMP/stderr" || fail "no-unit message"
# Data-free masks are labelled approximate.
out=$("$QPRUNE" mask "$CKPT" --unit mlp --sparsity 0.5 --data-free isserlis -o "$TMP/df.json" 2>/dev/null)
expect_line "$out" "Objective source" "isserlis \(approximate\)"
expect_line "$out" "Mean compensation" "no"
