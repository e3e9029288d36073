#!/usr/bin/env bash
# Time from SIGTERM to exit of long qprune commands on one 7B-shaped layer (hidden 4096,
# intermediate 11008, 32 heads; bf16 weights from a repeated random 256-value pattern: the timing
# does not depend on the values). Signals land inside the long kernels: the data-free problem
# build of `mask` (W^T W and the Isserlis Gram, n = 11008), the forward pass and Gram accumulation
# of `calibrate`, and the writing of `apply`. Prints one line per command; exit 5 is expected.
#   bench/interrupt_latency.sh build/qprune [WORKDIR]
set -euo pipefail
QPRUNE=$1
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
python3 - "$WORK/ckpt" <<'PY'
import json, os, random, struct, sys
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
H, I, L, V, NH = 4096, 11008, 1, 256, 32
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
       "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": NH,
       "num_key_value_heads": NH, "vocab_size": V, "torch_dtype": "bfloat16",
       "rms_norm_eps": 1e-6, "tie_word_embeddings": True}
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
json.dump({"tokenizer_class": "ByteLevel", "qprune_byte_level": True, "vocab_size": 256},
          open(os.path.join(out, "tokenizer_config.json"), "w"))
random.seed(1)
pattern = b"".join(struct.pack("<BB", random.randrange(256), random.choice([0x3c, 0x3d, 0xbc, 0xbd]))
                   for _ in range(256))
ones = struct.pack("<BB", 0x80, 0x3f)  # bf16 1.0
tensors = [("model.embed_tokens.weight", [V, H], False), ("model.norm.weight", [H], True)]
for l in range(L):
    p = f"model.layers.{l}."
    tensors += [(p + "input_layernorm.weight", [H], True),
                (p + "post_attention_layernorm.weight", [H], True)]
    for n in ("q", "k", "v", "o"):
        tensors.append((p + f"self_attn.{n}_proj.weight", [H, H], False))
    tensors += [(p + "mlp.gate_proj.weight", [I, H], False), (p + "mlp.up_proj.weight", [I, H], False),
                (p + "mlp.down_proj.weight", [H, I], False)]
header, off = {}, 0
for name, shape, _ in tensors:
    n = 2
    for d in shape: n *= d
    header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}; off += n
h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for name, shape, norm in tensors:
        n = 1
        for d in shape: n *= d
        if norm: f.write(ones * n)
        else:
            full, rest = divmod(n, 256)
            chunk = pattern * 4096
            for _ in range(full // 4096): f.write(chunk)
            f.write(pattern * (full % 4096)); f.write(pattern[: 2 * rest])
PY
head -c 200000 /dev/urandom | base64 >"$WORK/text.txt"
# measure NAME DELAY CMD...: SIGTERM after DELAY s; prints the exit code, the wall seconds from the
# signal to the exit, and the CPU seconds the process used after the signal (all threads; on a
# loaded machine the wall time grows with the load, the CPU time does not).
ticks=$(getconf CLK_TCK)
measure() {
  local name=$1 delay=$2; shift 2
  /usr/bin/time -f "%U %S" -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local tpid=$!
  sleep "$delay"
  local pid; pid=$(pgrep -P "$tpid")
  local cpu0; cpu0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  local t0; t0=$(date +%s.%N)
  kill -TERM "$pid"
  set +e; wait "$tpid"; set -e
  local t1; t1=$(date +%s.%N)
  local code; code=$(sed -n 's/^Command exited with non-zero status //p' "$WORK/$name.time")
  printf '%-10s signal after %4.1f s: exit %s, %.2f s wall and %.2f s CPU from signal to exit; left: %s\n' \
    "$name" "$delay" "${code:-0}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$(awk -v c0="$cpu0" -v hz="$ticks" '{ u = $1 + $2 } END { print u - c0 / hz }' "$WORK/$name.time" | tail -1)" \
    "$(cd "$WORK" && ls -d ./*qprune-tmp* 2>/dev/null | tr '\n' ' ')"
}
measure mask 8 "$QPRUNE" mask "$WORK/ckpt" --unit mlp --sparsity 0.5 --data-free isserlis \
  --method diagonal -o "$WORK/masks.json"
measure calibrate 8 "$QPRUNE" calibrate "$WORK/ckpt" --text "$WORK/text.txt" --tokens 4096 \
  --context 256 -q -o "$WORK/stats.safetensors"
"$QPRUNE" mask "$WORK/ckpt" --unit mlp --sparsity 0.5 --method magnitude -o "$WORK/mag.json" \
  >/dev/null 2>&1
measure apply 1 "$QPRUNE" apply "$WORK/ckpt" --masks "$WORK/mag.json" -o "$WORK/pruned"
