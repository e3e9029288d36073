# A checkpoint whose tensors disagree with its config.json is refused when it is opened, by every
# command that reads one (mask, apply, export, calibrate), with exit 2 and one stderr line naming
# the shard, the tensor and the expected and found shapes; a shard shorter than its header declares
# is refused up front; a shard truncated while `mask` runs ends it with exit 3 (not SIGBUS), naming
# the shard, after the layers finished before were written.
source "$(dirname "$0")/common.bash" "$@"
SRC=$DATA/checkpoints/tiny-llama-gqa
"$QPRUNE" mask "$SRC" --unit mlp --sparsity 0.5 --method magnitude -o "$TMP/masks.json" >/dev/null 2>&1
awk 'BEGIN { for (i = 0; i < 40; ++i) print (i * 7 + 3) % 16 }' >"$TMP/ids.txt"

# refused DIR PATTERN: every command exits 2 with one line `qprune: error: DIR/...` matching PATTERN,
# and writes no output.
refused() {
  local dir=$1 pattern=$2
  local -a commands=(
    "mask $dir --unit mlp --sparsity 0.5 --method magnitude -o $TMP/out.json"
    "apply $dir --masks $TMP/masks.json -o $TMP/out"
    "export $dir --layer 0 --unit mlp --sparsity 0.5 -o $TMP/out.json"
    "calibrate $dir --token-ids $TMP/ids.txt --context 8 -q -o $TMP/out.safetensors")
  for c in "${commands[@]}"; do
    # shellcheck disable=SC2086  # the command lines above split on spaces on purpose
    expect_exit 2 "$QPRUNE" $c
    grep -q "^qprune: error: $dir[/:]" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "$c: no path"; }
    grep -qF -- "$pattern" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "$c: expected '$pattern'"; }
    [[ $(wc -l <"$TMP/stderr") -eq 1 ]] || { cat "$TMP/stderr" >&2; fail "$c: more than one line"; }
    [[ ! -e $TMP/out && ! -e $TMP/out.json && ! -e $TMP/out.safetensors ]] || fail "$c: wrote output"
  done
}

d=$(variant layers "cfg['num_hidden_layers'] = 1")
refused "$d" "model.safetensors: byte"
refused "$d" "expected layer numbers below num_hidden_layers = 1 (config.json), found layer 1 in tensor 'model.layers.1."

d=$(variant gqa "del cfg['num_key_value_heads']")
refused "$d" "expected tensor 'model.layers.0.self_attn.k_proj.weight' to have shape [8, 8] ([num_key_value_heads * head_dim, hidden_size] from config.json), found [4, 8]"

d=$(variant transposed "h['model.layers.1.mlp.down_proj.weight']['shape'] = [12, 8]")
refused "$d" "expected tensor 'model.layers.1.mlp.down_proj.weight' to have shape [8, 12] ([hidden_size, intermediate_size] from config.json), found [12, 8]"

d=$(variant abc "rename('model.layers.1.input_layernorm.weight', 'model.layers.abc.x')")
refused "$d" "found 'model.layers.abc.x'"

d=$(variant digits "rename('model.layers.1.input_layernorm.weight', 'model.layers.123456789012.input_layernorm.weight')")
refused "$d" "found 'model.layers.123456789012.input_layernorm.weight'"

d=$(variant missing "rename('model.layers.1.mlp.up_proj.weight', 'model.layers.1.mlp.up_proj.weight_old')")
refused "$d" "expected tensor 'model.layers.1.mlp.up_proj.weight' with shape [12, 8] ([intermediate_size, hidden_size] from config.json), found none; layer 1 of 2 lacks required tensors"

# Tensors the config does not describe are allowed, and apply carries them through.
d=$(variant extra "h['model.layers.0.self_attn.rotary_emb.inv_freq'] = {'dtype': 'F32', 'shape': [0], 'data_offsets': [0, 0]}; h['extra.ids'] = {'dtype': 'I64', 'shape': [0], 'data_offsets': [0, 0]}")
"$QPRUNE" mask "$d" --unit mlp --sparsity 0.5 --method magnitude -o "$TMP/extra.json" >/dev/null 2>&1
"$QPRUNE" apply "$d" --masks "$TMP/extra.json" -o "$TMP/extra_out" >/dev/null
python3 - "$TMP/extra_out/model.safetensors" <<'EOF' || fail "apply dropped the extra tensors"
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
h = json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])
assert 'model.layers.0.self_attn.rotary_emb.inv_freq' in h and 'extra.ids' in h
assert h['model.layers.0.mlp.down_proj.weight']['shape'] == [8, 6]
EOF

# A shard shorter than its header declares: refused when opened, naming the shard.
cp -r "$SRC" "$TMP/short"
truncate -s -4 "$TMP/short/model.safetensors"
expect_exit 2 "$QPRUNE" mask "$TMP/short" --unit mlp --sparsity 0.5 --method magnitude -o "$TMP/out.json"
grep -q "^qprune: error: $TMP/short/model.safetensors: byte .*file truncated" "$TMP/stderr" ||
  { cat "$TMP/stderr" >&2; fail "short shard"; }

# A shard truncated while mask runs: 6 layers, one shard each, each layer's solve made slow enough
# (sa, 300 reads: ~0.5 s here) that layers 1 and 2 leave this script time to react; once layer 0
# is reported, the shards of layers 3 to 5 are cut to their headers. The run ends with exit 3
# naming a cut shard, and the masks file holds the layers that finished (layer 0 first, not all).
cat >"$TMP/make_big.py" <<'EOF'
import json, os, struct, sys
d = sys.argv[1]
os.makedirs(d)
H, I, L, V = 16, 64, 6, 16
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": 4,
           "num_key_value_heads": 4, "vocab_size": V}, open(d + '/config.json', 'w'))
def shard(name, tensors):
    header, data = {}, b''
    for t, shape in tensors:
        n = 1
        for s in shape: n *= s
        vals = struct.pack('<%df' % n, *[((k * 37 + len(t)) % 19 - 9) / 16 for k in range(n)])
        header[t] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(vals)]}
        data += vals
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    open(d + '/' + name, 'wb').write(struct.pack('<Q', len(text)) + text + data)
weight_map = {}
files = ['model-%05d-of-%05d.safetensors' % (k + 1, L + 1) for k in range(L + 1)]
for l in range(L):
    p = 'model.layers.%d.' % l
    ts = [(p + 'input_layernorm.weight', [H]), (p + 'post_attention_layernorm.weight', [H]),
          (p + 'self_attn.q_proj.weight', [H, H]), (p + 'self_attn.k_proj.weight', [H, H]),
          (p + 'self_attn.v_proj.weight', [H, H]), (p + 'self_attn.o_proj.weight', [H, H]),
          (p + 'mlp.gate_proj.weight', [I, H]), (p + 'mlp.up_proj.weight', [I, H]),
          (p + 'mlp.down_proj.weight', [H, I])]
    shard(files[l], ts)
    weight_map.update({t: files[l] for t, _ in ts})
g = [('model.embed_tokens.weight', [V, H]), ('model.norm.weight', [H]), ('lm_head.weight', [V, H])]
shard(files[L], g)
weight_map.update({t: files[L] for t, _ in g})
json.dump({"metadata": {}, "weight_map": weight_map}, open(d + '/model.safetensors.index.json', 'w'))
EOF
python3 "$TMP/make_big.py" "$TMP/big"
set +e
"$QPRUNE" mask "$TMP/big" --unit mlp --sparsity 0.5 --solver sa --reads 300 \
  -o "$TMP/cut.json" >/dev/null 2>"$TMP/cut.err" &
pid=$!
for _ in $(seq 1 600); do grep -q "^layer 0 " "$TMP/cut.err" && break; sleep 0.02; done
for l in 4 5 6; do
  f=$TMP/big/model-0000$l-of-00007.safetensors
  truncate -s "$(( $(od -An -t u8 -N 8 "$f") + 8 ))" "$f"
done
wait $pid
rc=$?
set -e
[[ $rc -eq 3 ]] || { cat "$TMP/cut.err" >&2; fail "mask on a shard cut mid-run exited $rc, expected 3"; }
grep -Eq "^qprune: error: (layer [345] mlp: )?$TMP/big/model-0000[456]-of-00007.safetensors: cannot read tensor 'model\.layers\.[345]\..*' \(bytes [0-9]+ to [0-9]+\): the file is [0-9]+ bytes now" "$TMP/cut.err" ||
  { cat "$TMP/cut.err" >&2; fail "no IoError naming the cut shard"; }
n=$(jq '.entries | length' "$TMP/cut.json")
(( n >= 1 && n < 6 )) || fail "$n entries written, expected the finished layers (1 to 5)"
[[ $(jq -r '.entries[0].layer' "$TMP/cut.json") == 0 ]] || fail "layer 0 not written"
# Once the shards are whole again, --resume keeps the written layers and finishes the others.
rm -r "$TMP/big"
python3 "$TMP/make_big.py" "$TMP/big"
out=$("$QPRUNE" mask "$TMP/big" --unit mlp --sparsity 0.5 --solver sa --reads 300 --resume \
      -o "$TMP/cut.json" 2>/dev/null) || fail "resume after the cut failed"
expect_line "$out" "Resumed entries" "$n"
[[ $(jq '.entries | length' "$TMP/cut.json") == 6 ]] || fail "resume did not finish all 6 layers"
