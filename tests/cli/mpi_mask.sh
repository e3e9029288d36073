# `mpirun -np 2 qprune mask` and `-np 1` write the masks of a plain `qprune mask` (MPI build):
# the example model (4 layers, MLP neurons and KV groups, 8 jobs spread dynamically over 2 ranks),
# with calibration statistics and SA, compared field by field without the solver wall times.
source "$(dirname "$0")/common.bash" "$@"
MODEL=$DATA/../../examples/model
"$QPRUNE" calibrate "$MODEL/checkpoint" --text "$MODEL/calibration.txt" --tokens 2000 --context 64 \
  -q -o "$TMP/stats.safetensors" >/dev/null
args=(mask "$MODEL/checkpoint" --calib "$TMP/stats.safetensors" --unit both --sparsity 0.4
      --head-shape kv_groups --head-sparsity 0.5 --solver sa --sweeps 200 --reads 2 --seed 7)
"$QPRUNE" "${args[@]}" -o "$TMP/plain.json" >"$TMP/plain.txt" 2>/dev/null
mpirun_np 2 "$QPRUNE" "${args[@]}" -o "$TMP/np2.json" >"$TMP/np2.txt" 2>"$TMP/np2.err"
mpirun_np 1 "$QPRUNE" "${args[@]}" -o "$TMP/np1.json" >/dev/null 2>&1
untimed() { jq -S 'del(.. | .time_s?)' "$1"; }
[[ $(jq '.entries | length' "$TMP/plain.json") -eq 8 ]] || fail "expected 8 entries"
diff <(untimed "$TMP/plain.json") <(untimed "$TMP/np2.json") >&2 || fail "-np 2 masks differ"
diff <(untimed "$TMP/plain.json") <(untimed "$TMP/np1.json") >&2 || fail "-np 1 masks differ"
# Rank 0 alone reports: one report, every layer's progress line once.
[[ $(grep -c "^Entries" "$TMP/np2.txt") -eq 1 ]] || fail "report printed more than once"
expect_line "$(cat "$TMP/np2.txt")" "Entries" "8"
[[ $(grep -c "^layer " "$TMP/np2.err") -eq 8 ]] || { cat "$TMP/np2.err" >&2; fail "progress lines"; }
# The same report lines apart from the times and the output path.
strip() { grep -v -e "time" -e "^Masks" "$1"; }
diff <(strip "$TMP/plain.txt") <(strip "$TMP/np2.txt") >&2 || fail "-np 2 report differs"
# A command that is not distributed runs once, on rank 0.
out=$(mpirun_np 2 "$QPRUNE" info "$DATA/formats/toy.qubo")
[[ $(grep -c "^Variables" <<<"$out") -eq 1 ]] || { echo "$out" >&2; fail "info ran on both ranks"; }
