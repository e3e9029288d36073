# `mpirun -np 2 qprune calibrate` writes the same statistics file, bit for bit, as `-np 1` and a
# plain run (MPI build): 8 chunks of 2 batches of 2 windows, summed on rank 0 in chunk order.
source "$(dirname "$0")/common.bash" "$@"
MODEL=$DATA/../../examples/model
common=(calibrate "$MODEL/checkpoint" --text "$MODEL/calibration.txt" --tokens 1000 --context 32
        --batch 2 -q)
args=("${common[@]}" --chunk 2)
"$QPRUNE" "${args[@]}" -o "$TMP/plain.safetensors" >"$TMP/plain.txt"
mpirun_np 2 "$QPRUNE" "${args[@]}" -o "$TMP/np2.safetensors" >"$TMP/np2.txt"
mpirun_np 1 "$QPRUNE" "${args[@]}" -o "$TMP/np1.safetensors" >/dev/null
cmp "$TMP/plain.safetensors" "$TMP/np2.safetensors" || fail "-np 2 statistics differ"
cmp "$TMP/plain.safetensors" "$TMP/np1.safetensors" || fail "-np 1 statistics differ"
expect_line "$(cat "$TMP/np2.txt")" "Tokens" "1000"
[[ $(grep -c "^Tokens *:" "$TMP/np2.txt") -eq 1 ]] || fail "report printed more than once"
# Another chunking is another summation order: close, but a different file.
"$QPRUNE" "${common[@]}" --chunk 1 -o "$TMP/chunk1.safetensors" >/dev/null
! cmp -s "$TMP/plain.safetensors" "$TMP/chunk1.safetensors" || echo "note: --chunk 1 gave the same bits" >&2
