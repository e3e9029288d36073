# rope_scaling through the CLI: `qprune perplexity` on tiny-deepseek-v3-yarn (yarn) and
# tiny-llama-llama3 (llama3) equals the perplexity of their float64 reference logits, and differs
# from the unscaled model's; `qprune calibrate` runs on the yarn checkpoint; a malformed
# rope_scaling and an unsupported type are refused with exit 2, naming the field or the type,
# while `apply` still works on them.
source "$(dirname "$0")/common.bash" "$@"

# mean NLL of sequence 0 of a reference.safetensors (F32 logits [2, 12, vocab], I32 input_ids),
# from the logits named $2, and the ids file of that sequence.
reference_nll() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, math, struct, sys
blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header, data = json.loads(blob[8:8 + n]), blob[8 + n:]
def tensor(name, fmt):
    t = header[name]
    begin, end = t["data_offsets"]
    return t["shape"], struct.unpack("<%d%s" % ((end - begin) // 4, fmt), data[begin:end])
(_, T, V), logits = tensor(sys.argv[2], "f")
_, ids = tensor("input_ids", "i")
with open(sys.argv[3], "w") as f:
    f.write("\n".join(str(i) for i in ids[:T]) + "\n")
nll = 0.0
for t in range(T - 1):
    row = logits[t * V:(t + 1) * V]
    m = max(row)
    nll += m + math.log(sum(math.exp(x - m) for x in row)) - row[ids[t + 1]]
print("%.6f" % (nll / (T - 1)))
PY
}
# close A B: |A - B| <= 1e-4 (the logits agree to 1e-5).
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(d <= 1e-4 && -d <= 1e-4) }'; }

for name in tiny-deepseek-v3-yarn tiny-llama-llama3; do
  CKPT=$DATA/checkpoints/$name
  want=$(reference_nll "$CKPT/reference.safetensors" logits "$TMP/ids.txt")
  out=$("$QPRUNE" perplexity "$CKPT" --token-ids "$TMP/ids.txt" --context 12 2>/dev/null) ||
    fail "$name: perplexity"
  expect_line "$out" "Predicted tokens" "11"
  got=$(sed -n 's/^Mean NLL (nats\/token) *: //p' <<<"$out")
  close "$got" "$want" || fail "$name: mean NLL $got, the reference's $want"
done
# The unscaled reference is clearly another model: a forward pass ignoring rope_scaling fails above.
CKPT=$DATA/checkpoints/tiny-llama-llama3
plain=$(reference_nll "$CKPT/reference.safetensors" logits_no_rope_scaling "$TMP/ids.txt")
scaled=$(reference_nll "$CKPT/reference.safetensors" logits "$TMP/ids.txt")
close "$plain" "$scaled" && fail "llama3: the scaled and unscaled references agree ($plain)"
plain=$(reference_nll "$DATA/checkpoints/tiny-deepseek-v3/reference.safetensors" logits "$TMP/ids.txt")
scaled=$(reference_nll "$DATA/checkpoints/tiny-deepseek-v3-yarn/reference.safetensors" logits "$TMP/ids.txt")
close "$plain" "$scaled" && fail "yarn: the scaled and unscaled references agree ($plain)"

# calibrate on the yarn checkpoint (DeepSeek-V3: MLA attention, MoE layers 1 and 2).
CKPT=$DATA/checkpoints/tiny-deepseek-v3-yarn
for i in $(seq 1 200); do echo $(((i * 7 + i / 5) % 32)); done >"$TMP/long.txt"
out=$("$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/long.txt" --context 40 -q \
      -o "$TMP/stats.safetensors") || fail "calibrate on the yarn checkpoint"
expect_line "$out" "Tokens" "200"
expect_line "$out" "Layers" "3"

# A malformed field: exit 2 naming it; an unsupported type: exit 2 naming it. Both still apply.
cp -r "$CKPT" "$TMP/bad"
sed -i 's/"factor": 4.0/"factor": -4.0/' "$TMP/bad/config.json"
expect_exit 2 "$QPRUNE" perplexity "$TMP/bad" --token-ids "$TMP/ids.txt" --context 12
grep -q "rope_scaling: expected field 'factor' to be a finite number > 0, found" "$TMP/stderr" ||
  fail "malformed factor message"
sed -i 's/"factor": -4.0/"factor": 4.0/; s/"type": "yarn"/"type": "dynamic"/' "$TMP/bad/config.json"
expect_exit 2 "$QPRUNE" calibrate "$TMP/bad" --token-ids "$TMP/long.txt" --context 40 -q \
  -o "$TMP/x.safetensors"
grep -q "rope_scaling type 'dynamic' on deepseek_v3" "$TMP/stderr" || fail "unsupported type message"
[[ ! -e $TMP/x.safetensors ]] || fail "a refused run left an output"
"$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit mlp --sparsity 0.5 --solver greedy \
  -o "$TMP/masks.json" >/dev/null 2>&1 || fail "mask on the yarn checkpoint"
# (Masks name the checkpoint's config: magnitude masks need no forward pass.)
"$QPRUNE" mask "$TMP/bad" --unit mlp --sparsity 0.5 --method magnitude -o "$TMP/bad_masks.json" \
  >/dev/null 2>&1 || fail "mask --method magnitude on a refused rope_scaling"
"$QPRUNE" apply "$TMP/bad" --masks "$TMP/bad_masks.json" -o "$TMP/applied" >/dev/null 2>&1 ||
  fail "apply on a checkpoint whose rope_scaling the forward pass refuses"
jq -e '.rope_scaling.type == "dynamic"' "$TMP/applied/config.json" >/dev/null ||
  fail "apply changed rope_scaling"
# The pruned yarn checkpoint keeps its rope_scaling and runs.
"$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" -o "$TMP/pruned" >/dev/null 2>&1 || fail "apply"
jq -e '.rope_scaling.type == "yarn" and .rope_scaling.mscale_all_dim == 0.85' \
  "$TMP/pruned/config.json" >/dev/null || fail "pruned config.json lost rope_scaling"
out=$("$QPRUNE" perplexity "$TMP/pruned" --token-ids "$TMP/ids.txt" --context 12 2>/dev/null) ||
  fail "perplexity of the pruned yarn checkpoint"
expect_line "$out" "Predicted tokens" "11"
