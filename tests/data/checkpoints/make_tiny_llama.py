#!/usr/bin/env python3
"""Generates tests/data/checkpoints/tiny-llama-gqa/ (a 2-layer Llama with grouped-query attention,
F32, one safetensors file) and tiny-llama-gqa.stats.safetensors (its calibration statistics from
random inputs: MLP activations silu(gate x) * (up x) and a stand-in o_proj input), for the CLI
golden test tests/cli/prune_pipeline.sh. Standard library only; deterministic."""
import json, math, os, random, struct

HERE = os.path.dirname(os.path.abspath(__file__))
H, I, L, HEADS, KV, HD, V, T = 8, 12, 2, 4, 2, 2, 16, 32
rng = random.Random(1234)


def mat(r, c):
    return [[rng.randint(-64, 64) / 64.0 for _ in range(c)] for _ in range(r)]


def write_safetensors(path, tensors, metadata, dtype):
    fmt, size = ("<f", 4) if dtype == "F32" else ("<d", 8)
    header, data = {"__metadata__": metadata}, b""
    for name in sorted(tensors):
        shape, rows = tensors[name]
        flat = [v for row in rows for v in row] if isinstance(rows[0], list) else list(rows)
        begin = len(data)
        data += b"".join(struct.pack(fmt, v) for v in flat)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, len(data)]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
          "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": HEADS,
          "num_key_value_heads": KV, "vocab_size": V, "torch_dtype": "float32"}
folder = os.path.join(HERE, "tiny-llama-gqa")
os.makedirs(folder, exist_ok=True)
config_text = json.dumps(config, indent=2) + "\n"
with open(os.path.join(folder, "config.json"), "w") as f:
    f.write(config_text)
with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
    f.write('{"note": "copied byte for byte"}\n')

tensors = {"model.embed_tokens.weight": ([V, H], mat(V, H)),
           "model.norm.weight": ([H], [1.0] * H), "lm_head.weight": ([V, H], mat(V, H))}
weights = {}
for l in range(L):
    p = f"model.layers.{l}."
    for name, r, c in [("self_attn.q_proj", HEADS * HD, H), ("self_attn.k_proj", KV * HD, H),
                       ("self_attn.v_proj", KV * HD, H), ("self_attn.o_proj", H, HEADS * HD),
                       ("mlp.gate_proj", I, H), ("mlp.up_proj", I, H), ("mlp.down_proj", H, I)]:
        w = mat(r, c)
        weights[p + name] = w
        tensors[p + name + ".weight"] = ([r, c], w)
    tensors[p + "input_layernorm.weight"] = ([H], [1.0] * H)
    tensors[p + "post_attention_layernorm.weight"] = ([H], [1.0] * H)
write_safetensors(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"}, "F32")

h = 1469598103934665603
for b in config_text.encode():
    h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
model_hash = "fnv1a64:%016x" % h


def stats(acts):  # acts: list of T vectors
    n = len(acts[0])
    gram = [[sum(a[i] * a[j] for a in acts) for j in range(n)] for i in range(n)]
    mean = [sum(a[i] for a in acts) / len(acts) for i in range(n)]
    return gram, mean


out = {}
for l in range(L):
    p = f"model.layers.{l}."
    xs = [[rng.gauss(0, 1) for _ in range(H)] for _ in range(T)]
    mv = lambda w, x: [sum(wi * xi for wi, xi in zip(row, x)) for row in w]
    silu = lambda z: z / (1 + math.exp(-z))
    acts = [[silu(g) * u for g, u in zip(mv(weights[p + "mlp.gate_proj"], x),
                                         mv(weights[p + "mlp.up_proj"], x))] for x in xs]
    # Stand-in o_proj input: the value projection of each head's KV group (a real forward pass is
    # what `qprune calibrate` will do; any activations are valid statistics for the test).
    zs = []
    for x in xs:
        v = mv(weights[p + "self_attn.v_proj"], x)
        q = mv(weights[p + "self_attn.q_proj"], x)
        zs.append([v[(hh // (HEADS // KV)) * HD + c] * (1 + 0.1 * q[hh * HD + c])
                   for hh in range(HEADS) for c in range(HD)])
    for kind, a in (("mlp", acts), ("attn", zs)):
        g, m = stats(a)
        out[f"layers.{l}.{kind}.gram"] = ([len(m), len(m)], g)
        out[f"layers.{l}.{kind}.mean"] = ([len(m)], m)
write_safetensors(os.path.join(HERE, "tiny-llama-gqa.stats.safetensors"), out,
                  {"format": "pt", "qprune_format": "qprune-calibration", "version": "1",
                   "tokens": str(T), "num_layers": str(L), "model": model_hash}, "F64")
print(model_hash)
