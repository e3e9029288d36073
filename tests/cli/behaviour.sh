# Behaviour-targeted pruning (issue 21; docs/pruning_math.md section 11) through the CLI: mask and
# export with --preserve/--suppress/--protect and --behaviour-weight, the masks file's record and
# --resume's check of it, the contrastive-diagonal baseline, perplexity on two texts with a
# reference, ablate-direction, and the bad inputs (exit 2 naming files and numbers).
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/checkpoints/tiny-llama-gqa
MODEL=$DATA/../../examples/model/checkpoint
FORT=$DATA/../../examples/model/heldout.txt
DOCS=$DATA/../../examples/model/heldout_docs.txt

# Two token sets for the tiny Llama (vocab 16): low ids vs high ids.
for i in $(seq 1 200); do echo $((i % 7)); done >"$TMP/a.txt"
for i in $(seq 1 240); do echo $((8 + (i * 5) % 8)); done >"$TMP/b.txt"
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/a.txt" --context 16 -q -o "$TMP/A.stats" >/dev/null
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/b.txt" --context 16 -q -o "$TMP/B.stats" >/dev/null

# Suppress with exact: the report names both files and lambda, every layer has relative errors.
out=$("$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
      --behaviour-weight 2 --unit both --sparsity 0.5 --solver exact -o "$TMP/s.json" 2>/dev/null)
expect_line "$out" "Behaviour" "suppress"
expect_line "$out" "Behaviour weight" "2"
expect_line "$out" "Contrasted statistics" ".*/A.stats"
expect_line "$out" "Feasible entries" "4"
[[ $(grep -c "relative errors *: preserved" <<<"$out") -eq 4 ]] || fail "expected 4 relative-error lines"
grep -q '"mode": "suppress"' "$TMP/s.json" || fail "masks file lacks the behaviour mode"
grep -q '"weight": 2' "$TMP/s.json" || fail "masks file lacks lambda"
grep -q '"contrast_relative_error"' "$TMP/s.json" || fail "masks file lacks per-layer errors"
# exact proves the optimum of the same problem, so sa/tabu/greedy never beat it.
ex=$(sed -n 's/^Objective total *: //p' <<<"$out")
for s in sa tabu greedy; do
  o=$("$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
      --behaviour-weight 2 --unit both --sparsity 0.5 --solver $s -o "$TMP/$s.json" 2>/dev/null |
      sed -n 's/^Objective total *: //p')
  awk -v o="$o" -v e="$ex" 'BEGIN { exit !(o >= e - 1e-9 * (e < 0 ? -e : e)) }' ||
    fail "$s objective $o below exact's proven optimum $ex"
done
# The masks apply like any other (B's statistics for the bias).
"$QPRUNE" apply "$CKPT" --masks "$TMP/s.json" -o "$TMP/pruned" >/dev/null

# Protect: the same form with lambda < 0 in the file; the objective is then >= 0 (PSD).
out=$("$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --protect "$TMP/A.stats" \
      --behaviour-weight 1 --sparsity 0.5 --solver exact -o "$TMP/p.json" 2>/dev/null)
expect_line "$out" "Behaviour" "protect"
expect_line "$out" "Behaviour weight" "-1"
# apply --refit fits the protect objective on both sets (docs/pruning_math.md 11.7; the weighted
# least squares itself is checked in tests/test_behaviour_contrast.cpp); --protect belongs there.
out=$("$QPRUNE" apply "$CKPT" --masks "$TMP/p.json" --refit -o "$TMP/pp")
expect_line "$out" "Refit fits" "the preserved and the protected set, .*/A.stats\\)"
expect_exit 2 "$QPRUNE" apply "$CKPT" --masks "$TMP/s.json" --refit --protect "$TMP/A.stats" \
  -o "$TMP/pq"
grep -q "is for --refit of masks computed with .mask --protect." "$TMP/stderr" ||
  fail "--protect with suppress masks should be refused"
expect_exit 3 "$QPRUNE" apply "$CKPT" --masks "$TMP/p.json" --refit --protect "$TMP/missing.stats" \
  -o "$TMP/pq"
grep -q "missing.stats" "$TMP/stderr" || fail "a missing protected statistics file should be named"

# The baseline: contrastive-diagonal, same report.
out=$("$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
      --sparsity 0.5 --method contrastive-diagonal -o "$TMP/cd.json" 2>/dev/null)
expect_line "$out" "Method" "contrastive-diagonal"
expect_line "$out" "Feasible entries" "2"

# Resume compares the contrast: another lambda or another file is refused by name.
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
  --behaviour-weight 3 --unit both --sparsity 0.5 --solver exact --resume -o "$TMP/s.json"
grep -q "behaviour.weight 2, this run asks for 3" "$TMP/stderr" || fail "resume should compare lambda"
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$TMP/B.stats" --unit both --sparsity 0.5 \
  --solver exact --resume -o "$TMP/s.json"
grep -q "behaviour.mode suppress, this run asks for none" "$TMP/stderr" ||
  fail "resume should refuse a contrast file for a single-set run"
"$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" --behaviour-weight 2 \
  --unit both --sparsity 0.5 --solver exact --resume -o "$TMP/s.json" >/dev/null 2>&1 ||
  fail "the same run should resume"

# Export: the contrastive problem like any layer problem, its metadata naming A, B and lambda;
# exact on the exported file reaches mask's layer objective.
"$QPRUNE" export "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" --behaviour-weight 2 \
  --layer 0 --sparsity 0.5 -o "$TMP/l0.json" >/dev/null
grep -q '"qprune.behaviour_weight":"2"' "$TMP/l0.json" || fail "export lacks the weight"
grep -q '"qprune.source":"contrastive"' "$TMP/l0.json" || fail "export lacks the source"
grep -q 'qprune.contrast_statistics.*A.stats' "$TMP/l0.json" || fail "export lacks A's file"
e=$("$QPRUNE" solve "$TMP/l0.json" --solver exact -q | sed -n 's/^Best energy *: //p')
m=$(tr -d ' \n' <"$TMP/s.json" | grep -o '"layer":0,"unit":"mlp"[^}]*"objective":[-0-9.e+]*' |
    sed 's/.*"objective"://')
awk -v a="$e" -v b="$m" 'BEGIN { d = a - b; if (d < 0) d = -d; s = (b < 0 ? -b : b);
  exit !(d <= 1e-9 * (s > 1 ? s : 1)) }' || fail "exported optimum $e differs from mask's $m"
"$QPRUNE" export "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" --layer 0 \
  --sparsity 0.5 -o "$TMP/l0.qubo" >/dev/null  # penalised (tuned) form of the indefinite problem
# import-solution rebuilds the contrastive problem from the files the metadata names: the exact
# answer of the JSON file and of the penalised qbsolv-format file both come back as mask's layer
# objective, with the contrast recorded in the masks (so apply/resume see it).
"$QPRUNE" solve "$TMP/l0.json" --solver exact -o "$TMP/l0.sol" >/dev/null
out=$("$QPRUNE" import-solution "$CKPT" --qubo "$TMP/l0.json" --solution "$TMP/l0.sol" \
      -o "$TMP/imp.json")
expect_line "$out" "Solution feasible" "yes"
o=$(sed -n 's/^Objective *: //p' <<<"$out")
awk -v a="$o" -v b="$m" 'BEGIN { d = a - b; if (d < 0) d = -d; s = (b < 0 ? -b : b);
  exit !(d <= 1e-9 * (s > 1 ? s : 1)) }' || fail "imported objective $o differs from mask's $m"
grep -q '"mode": "suppress"' "$TMP/imp.json" || fail "imported masks lack the contrast"
grep -q '"calibration": ".*B.stats"' "$TMP/imp.json" || fail "imported masks lack B's file"
# The penalised file (lambda 1): its exact answer imports to the constrained optimum at lambda 1.
"$QPRUNE" export "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" --layer 0 \
  --sparsity 0.5 -o "$TMP/l0w1.json" >/dev/null
e1=$("$QPRUNE" solve "$TMP/l0w1.json" --solver exact -q | sed -n 's/^Best energy *: //p')
"$QPRUNE" solve "$TMP/l0.qubo" --solver exact -o "$TMP/l0q.sol" >/dev/null
out=$("$QPRUNE" import-solution "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
      --qubo "$TMP/l0.qubo" --solution "$TMP/l0q.sol" -o "$TMP/impq.json")
o=$(sed -n 's/^Objective *: //p' <<<"$out")
awk -v a="$o" -v b="$e1" 'BEGIN { d = a - b; if (d < 0) d = -d; s = (b < 0 ? -b : b);
  exit !(d <= 1e-9 * (s > 1 ? s : 1)) }' || fail "penalised file's answer $o is not the optimum $e1"
# The wrong mode, and a base masks file with another objective, are refused by name.
expect_exit 2 "$QPRUNE" import-solution "$CKPT" --protect "$TMP/A.stats" --qubo "$TMP/l0.json" \
  --solution "$TMP/l0.sol" -o "$TMP/x.json"
grep -q "is a suppress problem" "$TMP/stderr" || fail "--protect on a suppress file accepted"
expect_exit 2 "$QPRUNE" import-solution "$CKPT" --qubo "$TMP/l0.json" --solution "$TMP/l0.sol" \
  --base "$TMP/p.json" -o "$TMP/x.json"
grep -q "have different objectives: protect" "$TMP/stderr" || fail "mixed objectives accepted"

# Bad input: exit 2 with the files and numbers named.
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/B.stats" \
  --sparsity 0.5 -o "$TMP/x.json"
grep -q "same file" "$TMP/stderr" || fail "the same file twice should be refused"
cp "$TMP/B.stats" "$TMP/B2.stats"
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/B2.stats" \
  --sparsity 0.5 -o "$TMP/x.json"
grep -q "are identical (same 240 tokens" "$TMP/stderr" || fail "identical statistics should be refused"
head -n 5 "$TMP/a.txt" >"$TMP/few.txt"
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/few.txt" -q -o "$TMP/few.stats" >/dev/null
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/few.stats" \
  --sparsity 0.5 -o "$TMP/x.json"
grep -q "few.stats: 5 tokens for 12 mlp channels: the Gram has rank at most 5 < 12" "$TMP/stderr" ||
  fail "a set smaller than the layer should be refused with the numbers"
"$QPRUNE" calibrate "$MODEL" --text "$FORT" --tokens 600 -q -o "$TMP/other.stats" >/dev/null
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/other.stats" \
  --sparsity 0.5 -o "$TMP/x.json"
grep -q "different checkpoints: .*B.stats has model fnv1a64:.*other.stats has" "$TMP/stderr" ||
  fail "statistics of another checkpoint should be refused naming both"
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
  --behaviour-weight 150 --sparsity 0.5 -o "$TMP/x.json"
grep -q "behaviour-weight must be in (0, 100], is 150" "$TMP/stderr" || fail "lambda > 100 accepted"
expect_exit 2 "$QPRUNE" mask "$CKPT" --suppress "$TMP/A.stats" --sparsity 0.5 -o "$TMP/x.json"
grep -q "needs the preserved set's statistics: --preserve" "$TMP/stderr" || fail "no --preserve"
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
  --protect "$TMP/A.stats" --sparsity 0.5 -o "$TMP/x.json"
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$TMP/B.stats" --sparsity 0.5 \
  --method contrastive-diagonal -o "$TMP/x.json"
grep -q "needs a behaviour contrast" "$TMP/stderr" || fail "baseline without contrast accepted"
expect_exit 2 "$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" \
  --sparsity 0.5 --allocation global -o "$TMP/x.json"
grep -q "allocation global is not defined for a behaviour contrast" "$TMP/stderr" ||
  fail "global allocation with a contrast accepted"
: >"$TMP/empty.txt"
expect_exit 2 "$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/empty.txt" -o "$TMP/e.stats"
# A lambda above a layer's saturation weight is warned about with the figure.
"$QPRUNE" mask "$CKPT" --preserve "$TMP/B.stats" --suppress "$TMP/A.stats" --behaviour-weight 100 \
  --sparsity 0.5 --solver exact -o "$TMP/big.json" >/dev/null 2>"$TMP/stderr"
grep -q "warning: layer 0 mlp: --behaviour-weight 100 is above [0-9.e+-]*, where" "$TMP/stderr" ||
  { cat "$TMP/stderr" >&2; fail "no saturation warning at lambda 100"; }

# Perplexity on two texts with a reference (byte-level example model): the masks of the example
# model applied, then bits per byte on each, increases and selectivity.
head -c 3000 "$DOCS" >"$TMP/docs.txt"
head -c 3000 "$FORT" >"$TMP/fort.txt"
out=$("$QPRUNE" perplexity "$MODEL" --suppress-text "$TMP/docs.txt" --preserve-text "$TMP/fort.txt" \
      --reference "$MODEL" --context 128 -q)
expect_line "$out" "Suppressed increase" "0"
expect_line "$out" "Selectivity" "undefined \(no increase on the preserved text\)"
a=$(sed -n 's/^Suppressed bits per byte *: //p' <<<"$out")
a1=$("$QPRUNE" perplexity "$MODEL" --text "$TMP/docs.txt" --context 128 -q |
     sed -n 's/^Bits per byte *: //p')
[[ $a == "$a1" ]] || fail "two-text bits per byte $a differ from --text's $a1"
"$QPRUNE" perplexity "$MODEL" --suppress-text "$TMP/docs.txt" --preserve-text "$TMP/fort.txt" \
  --context 128 -q --json >"$TMP/p.json"
grep -q '"suppress_bits_per_byte"' "$TMP/p.json" || fail "JSON lacks suppress_bits_per_byte"
expect_exit 2 "$QPRUNE" perplexity "$MODEL" --suppress-text "$TMP/docs.txt" -q
expect_exit 2 "$QPRUNE" perplexity "$MODEL" --suppress-text "$TMP/empty.txt" \
  --preserve-text "$TMP/fort.txt" -q
grep -q "empty.txt: 0 tokens" "$TMP/stderr" || fail "an empty text should be named"

# ablate-direction writes a checkpoint with the same shapes; its report names the layer.
out=$("$QPRUNE" ablate-direction "$MODEL" --suppress-text "$TMP/docs.txt" \
      --preserve-text "$TMP/fort.txt" --layer 1 --context 128 -o "$TMP/ablated")
expect_line "$out" "Layer" "1"
expect_line "$out" "Tensors edited" "9"
"$QPRUNE" perplexity "$TMP/ablated" --text "$TMP/fort.txt" --context 128 -q >/dev/null
expect_exit 2 "$QPRUNE" ablate-direction "$MODEL" --suppress-text "$TMP/docs.txt" \
  --preserve-text "$TMP/docs.txt" --layer 1 -o "$TMP/ablated2"
grep -q "same mean residual stream" "$TMP/stderr" || fail "identical texts should be refused"
echo "behaviour: ok"
