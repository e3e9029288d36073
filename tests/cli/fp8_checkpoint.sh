# The released DeepSeek-V3 / R1 layout through the CLI, on tests/data/checkpoints/
# tiny-deepseek-v3-fp8 (make_tiny_fp8.py: F8_E4M3 weights in [8, 4] blocks with weight_scale_inv,
# and an MTP layer model.layers.3.*): calibrate says what it read; expert masks applied keep the
# experts' FP8 bytes and scales and drop the MTP layer (one line saying why); dense-MLP masks write
# the sliced projections as BF16 and list them in modules_to_not_convert; bad FP8 inputs exit 2
# with one line naming the tensor or field.
source "$(dirname "$0")/common.bash" "$@"
SRC=$DATA/checkpoints/tiny-deepseek-v3-fp8

for i in $(seq 1 600); do echo $(((i * 7 + i / 5) % 32)); done >"$TMP/ids.txt"
out=$("$QPRUNE" calibrate "$SRC" --token-ids "$TMP/ids.txt" --context 40 -q -o "$TMP/stats")
expect_line "$out" "MTP layers" "1 \(model.layers.3, not run by the forward pass\)"
expect_line "$out" "Weights" "FP8 e4m3, 8 x 4 blocks, dequantised when read"

# Experts: half of them, then the pruned folder's tensors, config and forward pass.
"$QPRUNE" mask "$SRC" --calib "$TMP/stats" --unit experts --sparsity 0.5 -o "$TMP/experts.json" \
  >/dev/null 2>&1
out=$("$QPRUNE" apply "$SRC" --masks "$TMP/experts.json" -o "$TMP/experts")
expect_line "$out" "MTP layers" "dropped 1 MTP layer \(model.layers.3.\*\) and set num_nextn_predict_layers to 0: n_routed_experts is now 4 for every layer, and the MTP layer's MoE block still has 8 experts"
jq -e '.n_routed_experts == 4 and .num_nextn_predict_layers == 0 and
       .quantization_config.weight_block_size == [8, 4] and
       (.quantization_config | has("modules_to_not_convert") | not)' \
  "$TMP/experts/config.json" >/dev/null || fail "expert apply config.json"
python3 - "$SRC/model.safetensors" "$TMP/experts/model.safetensors" "$TMP/experts.json" <<'PY' ||
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return h, b[8 + n:]
(h0, d0), (h1, d1) = load(sys.argv[1]), load(sys.argv[2])
def raw(h, d, name):
    a, b = h[name]["data_offsets"]
    return d[a:b]
assert not [k for k in h1 if k.startswith("model.layers.3.")], "MTP tensors left"
masks = json.load(open(sys.argv[3]))
for e in masks["entries"]:
    p = "model.layers.%d.mlp.experts." % e["layer"]
    assert len([k for k in h1 if k.startswith(p)]) == 4 * 3 * 2  # weight + scale per projection
    for j, old in enumerate(e["kept"]):
        for proj in ("gate_proj", "up_proj", "down_proj"):
            for t in (".weight", ".weight_scale_inv"):
                new, src = "%s%d.%s%s" % (p, j, proj, t), "%s%d.%s%s" % (p, old, proj, t)
                assert h1[new]["dtype"] == h0[src]["dtype"] == ("F8_E4M3" if t == ".weight" else "F32")
                assert raw(h1, d1, new) == raw(h0, d0, src), new
PY
  fail "expert apply tensors"
out=$("$QPRUNE" perplexity "$TMP/experts" --token-ids "$TMP/ids.txt" --context 40 2>/dev/null)
expect_line "$out" "Perplexity" "[0-9.]+"

# Dense MLP (layer 0): sliced FP8 projections become BF16 without scale; the MTP layer stays.
"$QPRUNE" mask "$SRC" --calib "$TMP/stats" --unit mlp --sparsity 0.25 -o "$TMP/mlp.json" >/dev/null 2>&1
out=$("$QPRUNE" apply "$SRC" --masks "$TMP/mlp.json" -o "$TMP/mlp")
expect_line "$out" "Dequantised to BF16" "3"
jq -e '.intermediate_size == 9 and .num_nextn_predict_layers == 1 and
       .quantization_config.modules_to_not_convert == ["model.layers.0.mlp.down_proj",
         "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj"]' \
  "$TMP/mlp/config.json" >/dev/null || fail "dense apply config.json"
python3 - "$TMP/mlp/model.safetensors" <<'PY' || fail "dense apply tensors"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
for proj, shape in (("gate_proj", [9, 16]), ("up_proj", [9, 16]), ("down_proj", [16, 9])):
    t = h["model.layers.0.mlp.%s.weight" % proj]
    assert t["dtype"] == "BF16" and t["shape"] == shape, t
    assert "model.layers.0.mlp.%s.weight_scale_inv" % proj not in h
assert h["model.layers.1.self_attn.q_a_proj.weight"]["dtype"] == "F8_E4M3"
assert "model.layers.3.eh_proj.weight_scale_inv" in h
PY
out=$("$QPRUNE" perplexity "$TMP/mlp" --token-ids "$TMP/ids.txt" --context 40 2>/dev/null)
expect_line "$out" "Perplexity" "[0-9.]+"

# Bad inputs (variant: tests/cli/common.bash).
# refused DIR PATTERN: calibrate and apply exit 2 with one stderr line containing PATTERN.
refused() {
  local c
  for c in "calibrate $1 --token-ids $TMP/ids.txt --context 8 -q -o $TMP/out.safetensors" \
           "apply $1 --masks $TMP/experts.json -o $TMP/out"; do
    # shellcheck disable=SC2086  # the command lines above split on spaces on purpose
    expect_exit 2 "$QPRUNE" $c
    grep -qF -- "$2" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "$c: expected '$2'"; }
    [[ $(wc -l <"$TMP/stderr") -eq 1 ]] || { cat "$TMP/stderr" >&2; fail "$c: more than one line"; }
    [[ ! -e $TMP/out && ! -e $TMP/out.safetensors ]] || fail "$c: wrote output"
  done
}
W=model.layers.1.mlp.experts.5.down_proj.weight
d=$(variant no_scale "rename('${W}_scale_inv', 'model.layers.1.mlp.old_scale')")
refused "$d" "expected tensor '${W}_scale_inv' with shape [2, 2] (the block scales of F8_E4M3 tensor '$W' [16, 6], weight_block_size [8, 4] in config.json), found none"
d=$(variant scale_shape "h['${W}_scale_inv']['shape'] = [4, 1]")
refused "$d" "expected tensor '${W}_scale_inv' to have shape [2, 2] (the block scales of F8_E4M3 tensor '$W' [16, 6], weight_block_size [8, 4] in config.json), found [4, 1]"
d=$(variant square_blocks "cfg['quantization_config']['weight_block_size'] = [4, 4]")
refused "$d" "expected tensor 'model.layers.0.mlp.down_proj.weight_scale_inv' to have shape [4, 3] (the block scales of F8_E4M3 tensor 'model.layers.0.mlp.down_proj.weight' [16, 12], weight_block_size [4, 4] in config.json), found [2, 3]"
d=$(variant one_block "cfg['quantization_config']['weight_block_size'] = [128]")
refused "$d" "expected field 'quantization_config.weight_block_size' to be two positive integers [rows, cols], found"
d=$(variant zero_block "cfg['quantization_config']['weight_block_size'] = [0, 4]")
refused "$d" "expected field 'quantization_config.weight_block_size' to be two positive integers [rows, cols], found"
d=$(variant e5m2 "cfg['quantization_config']['fmt'] = 'e5m2'")
refused "$d" "expected field 'quantization_config.fmt' to be \"e4m3\""
d=$(variant unquantised "del cfg['quantization_config']")
refused "$d" "F8_E4M3 needs quantization_config with quant_method \"fp8\" in config.json), found F8_E4M3"
d=$(variant no_mtp "cfg['num_nextn_predict_layers'] = 0")
refused "$d" "expected layer numbers below num_hidden_layers = 3 (config.json), found layer 3 in tensor 'model.layers.3."
