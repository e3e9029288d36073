# `qprune mask --method magnitude|diagonal` (baselines, no solver) on the checked-in tiny Llama:
# magnitude masks equal those of the data-free G = I problem solved exactly by `--solver exact`
# (an independent route to "top-k of ||W[:, i]||^2"); diagonal masks reach exactly the reported
# diagonal-score baseline in every layer; both report like a solver run; misuse is refused.
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/checkpoints/tiny-llama-gqa
STATS=$DATA/checkpoints/tiny-llama-gqa.stats.safetensors
# "layer unit kept..." of every entry of a masks file, one line each.
kept_lines() { tr -d ' \n' <"$1" | grep -o '"layer":[0-9]*,"unit":"[a-z_]*","num_units":[0-9]*,"kept":\[[0-9,]*\]'; }

out=$("$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 --method magnitude \
      -o "$TMP/magnitude.json" 2>/dev/null)
expect_line "$out" "Method" "magnitude"
expect_line "$out" "Solver" "none"
expect_line "$out" "Objective source" "calibration \(exact layer error\)"
expect_line "$out" "Feasible entries" "4"
grep -q '"solver": "magnitude"' "$TMP/magnitude.json" || fail "masks file should name the method"
"$QPRUNE" mask "$CKPT" --unit both --sparsity 0.5 --data-free magnitude --solver exact \
  -o "$TMP/exact.json" >/dev/null 2>&1
[[ $(kept_lines "$TMP/magnitude.json" | wc -l) -eq 4 ]] || fail "expected 4 entries"
[[ $(kept_lines "$TMP/magnitude.json") == "$(kept_lines "$TMP/exact.json")" ]] ||
  fail "magnitude masks differ from the exact optimum of the G = I problem"

out=$("$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 --method DIAGONAL \
      -o "$TMP/diagonal.json" 2>/dev/null)
expect_line "$out" "Method" "diagonal"
expect_line "$out" "Gain over baseline" "0"
n=0
while read -r line; do
  obj=$(sed -E 's/.*objective ([^ ]+) .*/\1/' <<<"$line")
  base=$(sed -E 's/.*baseline ([^ ]+).*/\1/' <<<"$line")
  [[ $obj == "$base" ]] || fail "diagonal mask is not the baseline: $line"
  n=$((n + 1))
done < <(grep -E "^Layer [0-9]+ " <<<"$out")
[[ $n -eq 4 ]] || fail "expected 4 layer lines, found $n"
# A solver run reports the same baseline (the same problem, the same diagonal mask).
out=$("$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 --solver greedy \
      -o "$TMP/greedy.json" 2>/dev/null)
expect_line "$out" "Method" "qubo"
expect_line "$out" "Solver" "greedy"
[[ $(sed -n 's/^Baseline total *: //p' <<<"$out") == \
   $(sed -n 's/^Baseline total *: //p' <<<"$("$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both \
     --sparsity 0.5 --method diagonal -o "$TMP/d2.json" 2>/dev/null)") ]] || fail "baseline totals differ"
# The masks apply like any other.
"$QPRUNE" apply "$CKPT" --masks "$TMP/magnitude.json" -o "$TMP/pruned" >/dev/null

expect_exit 2 "$QPRUNE" mask "$CKPT" --sparsity 0.5 --method magnitude --solver sa -o "$TMP/x.json"
grep -q "applies to --method qubo" "$TMP/stderr" || fail "--solver with a baseline should be refused"
expect_exit 2 "$QPRUNE" mask "$CKPT" --sparsity 0.5 --method wanda -o "$TMP/x.json"
grep -q "diagonal,exhaustive,frequency,magnitude,qubo,routed-weight" "$TMP/stderr" || fail "a wrong method should list the choices"

# A baseline draws no random numbers: an explicit --seed is accepted with one warning, and no
# warning is printed without it (nor for --method qubo, where the seed matters).
"$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 --method magnitude --seed 7 \
  -o "$TMP/seeded.json" >/dev/null 2>"$TMP/stderr" || fail "--seed with a baseline is no error"
[[ $(grep -c "warning: --seed has no effect with --method magnitude" "$TMP/stderr") -eq 1 ]] ||
  fail "expected one --seed warning with --method magnitude"
[[ $(kept_lines "$TMP/seeded.json") == "$(kept_lines "$TMP/magnitude.json")" ]] ||
  fail "the seed changed the magnitude masks"
"$QPRUNE" mask "$CKPT" --sparsity 0.5 --method diagonal --seed 7 -o "$TMP/seeded.json" \
  >/dev/null 2>"$TMP/stderr"
grep -q "warning: --seed has no effect with --method diagonal" "$TMP/stderr" ||
  fail "expected the --seed warning with --method diagonal"
for args in "--method magnitude" "--solver greedy --seed 7"; do
  # shellcheck disable=SC2086  # word splitting of $args is intended
  "$QPRUNE" mask "$CKPT" --sparsity 0.5 $args -o "$TMP/plain.json" >/dev/null 2>"$TMP/stderr"
  ! grep -q "seed has no effect" "$TMP/stderr" || fail "unexpected --seed warning with $args"
done
