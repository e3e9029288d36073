# A rank that fails ends the whole `mpirun -np 2` run within seconds, with the layer and the error
# on stderr and the error's exit code (MPI build); layers finished before it are written. The bad input is real: a statistics
# file whose layer L MLP Gram holds a NaN, which only that layer's job reads. Without MPI the same
# input gives the plain error.
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/../../examples/model/checkpoint
"$QPRUNE" calibrate "$CKPT" --text "$CKPT/../calibration.txt" --tokens 1000 --context 64 -q \
  -o "$TMP/stats.safetensors" >/dev/null
# nan_in STATS LAYER: writes a NaN into the first value of layers.LAYER.mlp.gram (safetensors: an
# 8-byte header length, the JSON header, then the data at the header's offsets).
nan_in() {
  local header_len begin
  header_len=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  begin=$(dd if="$1" bs=1 skip=8 count="$header_len" 2>/dev/null |
          jq ".[\"layers.$2.mlp.gram\"].data_offsets[0]")
  printf '\x00\x00\x00\x00\x00\x00\xf8\x7f' |
    dd of="$1" bs=1 seek=$((8 + header_len + begin)) conv=notrunc 2>/dev/null
}
# Rank 0 starts the first job in the order (layer 0 MLP) itself and rank 1 gets the second
# (layer 1 MLP), so a bad layer 1 fails on rank 1, a bad layer 0 on rank 0.
for layer in 1 0; do
  cp "$TMP/stats.safetensors" "$TMP/bad$layer.safetensors"
  nan_in "$TMP/bad$layer.safetensors" "$layer"
  args=(mask "$CKPT" --calib "$TMP/bad$layer.safetensors" --unit both --head-shape kv_groups
        --sparsity 0.5 --solver sa --sweeps 2000 --reads 4 --seed 1 -o "$TMP/masks.json")
  expect_exit 2 "$QPRUNE" "${args[@]}"
  grep -q "layers.$layer.mlp.gram" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "plain error"; }
  rm -f "$TMP/masks.json"  # the layers finished before the error
  # `timeout` ends a hang with 124; the run must end by itself well before.
  expect_exit 2 timeout 60 "${MPIRUN[@]}" -np 2 "$QPRUNE" "${args[@]}"
  # The failed layer is named (on whichever rank ran it), and the layers that finished before it
  # are written for --resume, the failed one never.
  grep -Eq "^qprune: error: (rank [01]:? (failed on )?)?layer $layer mlp: .*layers\.$layer\.mlp\.gram" \
    "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "expected the error of layer $layer mlp"; }
  if [[ -e $TMP/masks.json ]]; then
    [[ $(jq "[.entries[] | select(.layer == $layer and .unit == \"mlp\")] | length" \
         "$TMP/masks.json") == 0 ]] || fail "the failed layer $layer mlp was written"
    rm -f "$TMP/masks.json"
  fi
done
