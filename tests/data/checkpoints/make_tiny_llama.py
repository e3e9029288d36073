#!/usr/bin/env python3
"""Generates tests/data/checkpoints/tiny-llama-gqa/ (a 2-layer Llama with grouped-query attention,
F32, one safetensors file) and tiny-llama-gqa.stats.safetensors (its calibration statistics from
random inputs: MLP activations silu(gate x) * (up x) and a stand-in o_proj input), for the CLI
golden test tests/cli/prune_pipeline.sh. Standard library only; deterministic.

Then tiny-llama-llama3/ (config.json, model.safetensors, reference.safetensors): a 2-layer Llama
with rope_scaling llama3 (Llama 3.1-3.3) and its float64 reference logits, written last so that
the files above stay byte for byte as they were. It needs numpy (/usr/bin/python3 with Debian's
python3-numpy) and borrows make_tiny_moe.py's writer, RMSNorm and attention; see llama3_reference
below for the formulas. tiny-llama-gqa's head_dim 2 has one rotary frequency, which cannot show
llama3's three bands, hence a model of its own (head_dim 8, four frequencies)."""
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


# ----------------------------------------------------------------------------------------------
# tiny-llama-llama3: rope_scaling llama3, independent float64 reference.
#
# Llama 3.1's frequency scaling (Meta's llama-models apply_scaling; Transformers'
# _compute_llama3_parameters), written here from the formulas: plain frequencies
# w_i = rope_theta^(-2i/d), i < d/2, wavelength lambda_i = 2 pi / w_i, L =
# original_max_position_embeddings, a = low_freq_factor, b = high_freq_factor, s = factor:
#   lambda_i < L / b (fast, short wavelengths):  w'_i = w_i
#   lambda_i > L / a (slow, long wavelengths):   w'_i = w_i / s
#   otherwise, with g = (L / lambda_i - a) / (b - a) in [0, 1]:  w'_i = (1 - g) w_i / s + g w_i
# which is one formula with g clipped to [0, 1]: w'_i = ((1 - g) / s + g) w_i. cos and sin are not
# scaled (attention factor 1) and neither is the softmax. Rotate-half layout as every Llama.
# rope_theta 100, d 8: lambda = 6.28, 19.9, 62.8, 199; L 48, a 1, b 4: bands fast (g > 1), medium
# (g = 0.47), slow, slow. The generator checks that the logits without rope_scaling differ by at
# least 1e-2 (logits_no_rope_scaling is in the reference too).

def llama3_reference():
    import numpy as np
    from make_tiny_moe import Weights, causal_attention, rms_norm, silu, write_folder

    B3, T3 = 2, 12
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
           "intermediate_size": 12, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 32, "rms_norm_eps": 1e-6,
           "rope_theta": 100.0, "max_position_embeddings": 192, "hidden_act": "silu",
           "tie_word_embeddings": False, "torch_dtype": "float32", "attention_bias": False,
           "mlp_bias": False,
           "rope_scaling": {"factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 48, "rope_type": "llama3"}}
    Hd, hd, nh, nkv = cfg["hidden_size"], cfg["head_dim"], 4, 2
    W = Weights(3101)
    W.mat("model.embed_tokens.weight", 32, Hd)
    for layer in range(2):
        p = f"model.layers.{layer}."
        W.norm(p + "input_layernorm.weight", Hd)
        W.norm(p + "post_attention_layernorm.weight", Hd)
        W.mat(p + "self_attn.q_proj.weight", nh * hd, Hd)
        W.mat(p + "self_attn.k_proj.weight", nkv * hd, Hd)
        W.mat(p + "self_attn.v_proj.weight", nkv * hd, Hd)
        W.mat(p + "self_attn.o_proj.weight", Hd, nh * hd)
        for name, r, c in (("gate_proj", 12, Hd), ("up_proj", 12, Hd), ("down_proj", Hd, 12)):
            W.mat(p + "mlp." + name + ".weight", r, c)
    W.norm("model.norm.weight", Hd)
    W.mat("lm_head.weight", 32, Hd)
    ids = W.rng.integers(0, 32, size=(B3, T3))

    def freqs(scaled):
        w = cfg["rope_theta"] ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
        if not scaled:
            return w
        rs = cfg["rope_scaling"]
        lam = 2 * np.pi / w
        g = (rs["original_max_position_embeddings"] / lam - rs["low_freq_factor"]) / \
            (rs["high_freq_factor"] - rs["low_freq_factor"])
        g = np.clip(g, 0.0, 1.0)
        return ((1 - g) / rs["factor"] + g) * w

    def rope(x, w):  # x [heads, T, hd], rotate-half pairs (i, i + hd/2)
        a = np.arange(x.shape[1], dtype=np.float64)[:, None] * w[None, :]
        c, s_ = np.cos(a), np.sin(a)
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return np.concatenate([x1 * c - x2 * s_, x2 * c + x1 * s_], axis=-1)

    def forward(scaled):
        w = freqs(scaled)
        h = W["model.embed_tokens.weight"][ids]
        for layer in range(2):
            p = f"model.layers.{layer}."
            a = rms_norm(h, W[p + "input_layernorm.weight"])
            for b in range(B3):
                x = a[b]
                proj = lambda n, k: (x @ W[p + f"self_attn.{n}.weight"].T).reshape(
                    T3, k, hd).transpose(1, 0, 2)
                q, k, v = rope(proj("q_proj", nh), w), rope(proj("k_proj", nkv), w), \
                    proj("v_proj", nkv)
                k, v = np.repeat(k, nh // nkv, axis=0), np.repeat(v, nh // nkv, axis=0)
                o = causal_attention(q, k, v, 1.0 / np.sqrt(hd))
                h[b] = h[b] + o @ W[p + "self_attn.o_proj.weight"].T
            m = rms_norm(h, W[p + "post_attention_layernorm.weight"])
            h = h + (silu(m @ W[p + "mlp.gate_proj.weight"].T) * (m @ W[p + "mlp.up_proj.weight"].T)) \
                @ W[p + "mlp.down_proj.weight"].T
        return rms_norm(h, W["model.norm.weight"]) @ W["lm_head.weight"].T

    # The bands: 6.28 < 48 / 4 (kept), 48 / 4 <= 19.9 <= 48 (blended), 62.8 and 199 > 48 (divided).
    w0, w1 = freqs(False), freqs(True)
    assert w1[0] == w0[0] and 0.4 < (w1[1] / w0[1] - 0.25) / 0.75 < 0.6
    assert np.allclose(w1[2:], w0[2:] / 4)
    logits, plain = forward(True), forward(False)
    diff = np.abs(logits - plain).max()
    assert diff >= 1e-2, f"llama3 changes the logits by only {diff:.3g}"
    assert np.abs(logits[:, 0] - plain[:, 0]).max() < 1e-12  # position 0: angle 0 either way
    ref = {"input_ids": ids.astype(np.int32), "logits": logits.astype(np.float32),
           "logits_no_rope_scaling": plain.astype(np.float32)}
    meta = {"generator": "tests/data/checkpoints/make_tiny_llama.py", "seed": "3101",
            "compute": "float64 from F32 weights", "rope_scaling_max_logit_diff": "%.6g" % diff}
    write_folder("tiny-llama-llama3", cfg, W.f32, ref, meta)
    print(f"tiny-llama-llama3: logits std {logits.std():.3f}, llama3 changes them by {diff:.3g}")


llama3_reference()
