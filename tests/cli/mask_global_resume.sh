# `mask --allocation global` and `mask --resume` on the checked-in tiny Llama (2 layers, 12
# neurons, GQA): the global keep counts sum to the budget, apply pads to the widest layer and says
# so; a masks file cut after its first entry (as an interrupted run leaves it) or with its last
# entry marked interrupted, finished with --resume, equals the uninterrupted run in every field
# but the solver times; a resume with other options is refused naming the field.
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/checkpoints/tiny-llama-gqa
STATS=$DATA/checkpoints/tiny-llama-gqa.stats.safetensors
solve=(--solver sa --seed 3 --sweeps 200)

out=$("$QPRUNE" mask "$CKPT" --calib "$STATS" --unit mlp --sparsity 0.5 --allocation global \
      --cost-scale absolute "${solve[@]}" -o "$TMP/global.json" 2>/dev/null)
expect_line "$out" "Allocation" "global"
grep -q '"allocation": "global"' "$TMP/global.json" || fail "masks file lacks the allocation"
keeps=$(sed -n 's/^ *"keep": \([0-9]*\).*/\1/p' "$TMP/global.json")
[[ $(wc -l <<<"$keeps") -eq 2 ]] || fail "expected 2 keep counts, found: $keeps"
[[ $(awk '{ s += $1 } END { print s }' <<<"$keeps") -eq 12 ]] || fail "keeps $keeps do not sum to 12"
widest=$(sort -n <<<"$keeps" | tail -1)
out=$("$QPRUNE" apply "$CKPT" --masks "$TMP/global.json" -o "$TMP/pruned")
expect_line "$out" "intermediate_size" "$widest"
grep -q "\"intermediate_size\": $widest" "$TMP/pruned/config.json" || fail "config width"
if [[ $(sort -u <<<"$keeps" | wc -l) -gt 1 ]]; then
  expect_line "$out" "Allocation" "global allocation, padded to widest layer: [0-9]+ parameters stored, [0-9]+ effective \(non-zero\)"
else
  expect_line "$out" "Allocation" "uniform"
fi
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 --allocation global -o "$TMP/x.json"
grep -q "MLP neurons only" "$TMP/stderr" || fail "global heads message"

# The uninterrupted run, then the same run resumed from cut files.
run_both() { "$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 "${solve[@]}" "$@"; }
run_both -o "$TMP/full.json" >/dev/null 2>&1
no_time() { grep -v '"time_s"' "$1"; }
# Keep only the first entry (the file layout is nlohmann's dump(2): entries close with `    },`).
awk 'cut == 2 { print; next }
     /^  "entries": \[/ { cut = 1 }
     cut == 1 && /^    },$/ { print "    }"; cut = 3; next }
     cut == 3 { if ($0 ~ /^  \]/) { print; cut = 2 } ; next }
     { print }' "$TMP/full.json" >"$TMP/resume.json"
[[ $(grep -c '"layer":' "$TMP/resume.json") -eq 1 ]] || fail "cut file should hold one entry"
out=$(run_both --resume -o "$TMP/resume.json" 2>/dev/null)
expect_line "$out" "Resumed entries" "1"
expect_line "$out" "Entries" "4"
diff <(no_time "$TMP/full.json") <(no_time "$TMP/resume.json") >&2 || fail "resumed masks differ"
# The last entry marked interrupted: solved again, the three others kept.
tac "$TMP/full.json" | sed '0,/"status": "completed"/s//"status": "interrupted"/' | tac >"$TMP/stale.json"
grep -q '"status": "interrupted"' "$TMP/stale.json" || fail "no interrupted entry made"
expect_exit 2 "$QPRUNE" apply "$CKPT" --masks "$TMP/stale.json" -o "$TMP/never"
grep -q "interrupted solve" "$TMP/stderr" || fail "apply should refuse an interrupted entry"
out=$(run_both --resume -o "$TMP/stale.json" 2>/dev/null)
expect_line "$out" "Resumed entries" "3"
diff <(no_time "$TMP/full.json") <(no_time "$TMP/stale.json") >&2 || fail "re-solved masks differ"
# Other options: refused, naming the field; the file is left as it was.
cp "$TMP/resume.json" "$TMP/keep.json"
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$STATS" --unit both --sparsity 0.5 --solver greedy --seed 3 --resume -o "$TMP/resume.json"
grep -q "(field 'solver')" "$TMP/stderr" || fail "solver mismatch message"
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$STATS" --unit mlp --sparsity 0.25 "${solve[@]}" --resume -o "$TMP/resume.json"
grep -q "(field 'sparsity')" "$TMP/stderr" || fail "sparsity mismatch message"
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$STATS" --unit mlp --sparsity 0.5 "${solve[@]}" --resume -o "$TMP/resume.json"
grep -q "(field 'unit')" "$TMP/stderr" || fail "unit mismatch message"
cmp -s "$TMP/resume.json" "$TMP/keep.json" || fail "a refused resume changed the file"
