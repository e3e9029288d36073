# No silent wrong results (issue #15): numbers out of range, degenerate statistics, malformed masks
# and non-finite forward passes are refused with exit 2 and a message naming the flag, the field,
# the layer or the numbers; a rounded head sparsity is announced on stderr.
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/checkpoints/tiny-llama-gqa  # hidden 8, 12 MLP neurons, 4 heads in 2 KV groups, 2 layers
QUBO=$DATA/formats/toy.txt
expect_stderr() {  # expect_stderr TEXT: the last command's stderr holds TEXT (fixed string)
  grep -qF -- "$1" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "stderr lacks '$1'"; }
}

# --- seeds: 0..2^64-1, anything else refused (CLI11 alone would wrap -1 and saturate 2^64).
for bad in -1 18446744073709551616 1e3 0x10 +5; do
  expect_exit 2 "$QPRUNE" solve "$QUBO" --seed="$bad"
  expect_stderr "expected an integer in 0..18446744073709551615"
done
expect_exit 2 "$QPRUNE" solve "$QUBO" --seed -1
out=$("$QPRUNE" solve "$QUBO" --seed 18446744073709551615)
expect_line "$out" "Seed" "18446744073709551615"
awk 'BEGIN { for (i = 0; i < 100; ++i) print (i * 7 + 3) % 16 }' >"$TMP/ids.txt"
expect_exit 2 "$QPRUNE" prune "$CKPT" --token-ids "$TMP/ids.txt" --sparsity 0.5 --calib-seed=-1 \
  -o "$TMP/pruned"
expect_stderr "--calib-seed: expected an integer in 0..18446744073709551615"

# --- a reversed --beta-range (HOT COLD, inverse temperatures grow as it cools) is refused.
expect_exit 2 "$QPRUNE" solve "$QUBO" --solver sa --beta-range 5 0.1
expect_stderr "--beta-range must be (hot, cold) with hot <= cold"
"$QPRUNE" solve "$QUBO" --solver sa --beta-range 0.1 5 >/dev/null

# --- validate() messages name the flag, not the library field.
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --context 16 -q -o "$TMP/stats.safetensors" \
  >/dev/null
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --sparsity 1 -o "$TMP/m.json"
expect_stderr "--sparsity must be in [0, 1)"
grep -q "Options::" "$TMP/stderr" && { cat "$TMP/stderr" >&2; fail "library field name in a CLI error"; }
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit both --sparsity 0.5 \
  --head-sparsity 1 -o "$TMP/m.json"
expect_stderr "--head-sparsity must be in [0, 1)"

# --- GQA head sparsity goes in whole KV groups: 0.3 of 2 groups keeps 1 (applied 0.5), said so.
"$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit both --sparsity 0.5 \
  --head-sparsity 0.3 --head-shape kv_groups --solver greedy -o "$TMP/m.json" >/dev/null 2>"$TMP/stderr"
expect_stderr "notice: --head-sparsity 0.3 is applied as head sparsity 0.5 (KV groups go in whole steps: 1 of 2 kept per layer)"
"$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit both --sparsity 0.5 \
  --head-shape kv_groups --solver greedy -o "$TMP/m.json" >/dev/null 2>"$TMP/stderr"
grep -q "notice:" "$TMP/stderr" && { cat "$TMP/stderr" >&2; fail "notice although 0.5 is exact"; }

# prune (uniform allocation) says the same before it starts.
set +e
"$QPRUNE" prune "$CKPT" --token-ids "$TMP/ids.txt" --context 16 --unit both --sparsity 0.5 \
  --head-sparsity 0.3 --head-shape kv_groups --allocation uniform -q -o "$TMP/pruned_notice" \
  >/dev/null 2>"$TMP/stderr"
set -e
expect_stderr "notice: --head-sparsity 0.3 is applied as head sparsity 0.5"

# --- masks files: every field validated, the error names the file and the field.
"$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit mlp --sparsity 0.5 --solver greedy \
  -o "$TMP/masks.json" 2>/dev/null >/dev/null
check_masks() {  # check_masks JQ_EDIT EXPECTED_TEXT
  jq "$1" "$TMP/masks.json" >"$TMP/bad_masks.json"
  expect_exit 2 "$QPRUNE" apply "$CKPT" --masks "$TMP/bad_masks.json" -o "$TMP/out_bad"
  expect_stderr "$TMP/bad_masks.json"
  expect_stderr "$2"
  [[ ! -e $TMP/out_bad ]] || fail "apply wrote an output for bad masks ($1)"
}
check_masks '.entries[0].status = "banana"' '"entries[0].status" to be one of optimal, completed'
check_masks '.entries[0].kept |= reverse' '"entries[0].kept" to hold increasing unit indices'
check_masks '.entries[1].kept[0] = 12' 'in [0, 12) (entries[1].num_units), found 12'
check_masks '.entries[0].keep = 5' '"entries[0].kept" to hold 5 units (entries[0].keep, feasible), found 6'
check_masks '.entries[0].keep = 99' '"entries[0].keep" in [0, 12]'
check_masks '.entries[0].feasible = "yes"' '"entries[0].feasible" to be true or false'
check_masks '.sparsity = -0.5' '"sparsity" in [0, 1)'

# --- apply --refit: degenerate statistics refused, too few tokens refused / warned with numbers.
python3 - "$TMP/stats.safetensors" "$TMP/zero.safetensors" <<'PY'
import json, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
for name, t in header.items():  # every Gram and mean of the MLP: zero
    if name.startswith("layers.") and ".mlp." in name:
        b, e = t["data_offsets"]
        data[8 + n + b:8 + n + e] = bytes(e - b)
open(sys.argv[2], "wb").write(data)
PY
expect_exit 2 "$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" --calib "$TMP/zero.safetensors" \
  --refit -o "$TMP/out_zero"
expect_stderr "zero.safetensors: layer 0 mlp statistics"
expect_stderr "the Gram matrix is all zeros"
# 1 token for 6 kept channels: refused with the numbers, nothing written.
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --tokens 1 --context 16 -q \
  -o "$TMP/one.safetensors" >/dev/null
expect_exit 2 "$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" --calib "$TMP/one.safetensors" \
  --refit -o "$TMP/out_one"
expect_stderr "1 calibration tokens for 6 kept channels of layer 0 mlp.down_proj"
[[ ! -e $TMP/out_one ]] || fail "apply --refit wrote an output with 1 token"
# 20 tokens for 6 kept channels (< 4x): applied, with a warning naming the numbers.
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --tokens 20 --context 16 -q \
  -o "$TMP/twenty.safetensors" >/dev/null
"$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" --calib "$TMP/twenty.safetensors" --refit \
  -o "$TMP/out_twenty" >/dev/null 2>"$TMP/stderr"
expect_stderr "warning: only 20 calibration tokens for 6 kept channels of layer 0 mlp.down_proj"
# Enough tokens (100 >= 4 x 6): no warning.
"$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" --refit -o "$TMP/out_ok" >/dev/null 2>"$TMP/stderr"
grep -q "warning" "$TMP/stderr" && { cat "$TMP/stderr" >&2; fail "warning with enough tokens"; }

# --- finite but huge weights: perplexity and calibrate stop naming the layer (exit 2), no -nan.
cp -r "$CKPT" "$TMP/huge"
python3 - "$TMP/huge/model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
for name in ("model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight"):
    t = header[name]
    rows, cols = t["shape"]
    b, _ = t["data_offsets"]
    # +-1e20 by row: some gate is positive for every token, silu(g) * u ~ 1e40 overflows F32.
    values = [1e20 if r % 2 == 0 else -1e20 for r in range(rows) for _ in range(cols)]
    data[8 + n + b:8 + n + b + 4 * rows * cols] = struct.pack("<%df" % (rows * cols), *values)
open(path, "wb").write(data)
PY
expect_exit 2 "$QPRUNE" perplexity "$TMP/huge" --token-ids "$TMP/ids.txt" --context 16
expect_stderr "non-finite values (Inf/NaN) in layer 1 MLP (down_proj input)"
grep -qi "nan *$" "$TMP/stdout" && fail "perplexity printed nan"
expect_exit 2 "$QPRUNE" calibrate "$TMP/huge" --token-ids "$TMP/ids.txt" --context 16 -q \
  -o "$TMP/huge.safetensors"
expect_stderr "layer 1 MLP (down_proj input)"
[[ ! -e $TMP/huge.safetensors ]] || fail "calibrate wrote statistics from a non-finite forward pass"
echo "silent_results: ok"
