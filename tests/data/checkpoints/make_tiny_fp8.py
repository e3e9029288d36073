#!/usr/bin/env python3
"""A tiny DeepSeek-V3 checkpoint in the layout of the released DeepSeek-V3 / R1 weights: block-wise
FP8 (F8_E4M3) linear weights with F32 weight_scale_inv companions, and a multi-token-prediction
(MTP) layer stored as model.layers.<num_hidden_layers>.*.

Writes tests/data/checkpoints/tiny-deepseek-v3-fp8/ (config.json, model.safetensors,
reference.safetensors). Run with /usr/bin/python3 (numpy only); deterministic.

The model is make_tiny_moe.py's tiny-deepseek-v3 (same shapes and config) with:
  quantization_config = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                         "weight_block_size": [8, 4]}   (rows, cols: deliberately not square)
  num_nextn_predict_layers = 1
Every linear weight but the router (mlp.gate.weight), embed_tokens and lm_head is stored as
F8_E4M3 bytes Wq with W[i][j] = e4m3(Wq[i][j]) * scale_inv[i // 8][j // 4], scale_inv F32 of shape
[ceil(rows / 8), ceil(cols / 4)]. Several dims (12, 6) are not multiples of the block: partial
blocks at the bottom and right edges. Per block scale_inv = max|W_block| / 448 (rounded to F32;
for the dense layer 0's mlp.{gate,up,down}_proj rounded up to a power of two, so that those
dequantised weights are exact in BF16) and Wq = the e4m3 value nearest W / scale_inv.

e4m3 here is OCP E4M3FN, decoded by its definition (independently of the C++ under test):
  byte b: sign s = b >> 7, exponent e = (b >> 3) & 15, mantissa m = b & 7;
  e == 15 and m == 7: NaN (0x7F, 0xFF; there are no infinities);
  e == 0: (-1)^s * m / 8 * 2^-6 (subnormal);  otherwise (-1)^s * (1 + m / 8) * 2^(e - 7).
  Largest finite value 0x7E = 448.

The MTP layer (model.layers.3.*, unused by Transformers' forward and so by the reference) holds
what DeepSeek-V3's layer 61 holds: a full MoE decoder layer (its attention, router, 8 experts,
shared experts, norms; linear weights FP8 like the others) plus embed_tokens, enorm, hnorm,
eh_proj [hidden, 2 * hidden] (FP8), shared_head.norm and shared_head.head.

reference.safetensors, computed by make_tiny_moe.py's float64 forward from the DEQUANTISED
weights (each e4m3 value times its scale in float64, rounded once to F32, as a reader that returns
F32 does):
  input_ids, logits, layer.L.* as in make_tiny_moe.py;
  fp8_e4m3_values F32 [256]: the decoded value of every byte (NaN at 0x7F and 0xFF).
"""
import json
import math
import os

import numpy as np

import make_tiny_moe as M

NAME = "tiny-deepseek-v3-fp8"
BLOCK = (8, 4)
E4M3_MAX = 448.0
# The dense layer's MLP: power-of-two scales, so its dequantised weights (4 significant bits) are
# exact in BF16 and an apply that writes them as BF16 keeps the model's logits.
POW2_PREFIX = "model.layers.0.mlp."


def e4m3_value(b):
    s, e, m = b >> 7, (b >> 3) & 15, b & 7
    if e == 15 and m == 7:
        return math.nan
    v = m / 8 * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return -v if s else v


E4M3 = np.array([e4m3_value(b) for b in range(256)], dtype=np.float64)


def check_e4m3_table():
    assert E4M3[0x7E] == 448.0 and E4M3[0xFE] == -448.0
    assert E4M3[0x01] == 2.0 ** -9 and E4M3[0x08] == 2.0 ** -6 and E4M3[0x38] == 1.0
    assert np.isnan(E4M3[0x7F]) and np.isnan(E4M3[0xFF]) and np.isnan(E4M3).sum() == 2
    finite = E4M3[~np.isnan(E4M3)]
    # 127 distinct magnitudes (+0 and -0 coincide as values) in 254 finite codes.
    assert len(np.unique(np.abs(finite))) == 127
    # Bytes 0x00..0x7E increase strictly: the encoding is monotone in the magnitude.
    assert (np.diff(E4M3[:0x7F]) > 0).all()


def quantise(w, pow2=False):
    """w float64 [rows, cols] -> (codes uint8, scale_inv float32 [ceil(rows/br), ceil(cols/bc)],
    dequantised float64). pow2: each scale rounded up to a power of two."""
    br, bc = BLOCK
    rows, cols = w.shape
    sr, sc = -(-rows // br), -(-cols // bc)
    scale = np.zeros((sr, sc), dtype=np.float32)
    codes = np.zeros(w.shape, dtype=np.uint8)
    finite = np.array([b for b in range(256) if not np.isnan(E4M3[b])], dtype=np.uint8)
    values = E4M3[finite]
    for i in range(sr):
        for j in range(sc):
            blk = w[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
            scale[i, j] = np.float32(np.abs(blk).max() / E4M3_MAX)
            if pow2:
                scale[i, j] = np.float32(2.0 ** math.ceil(math.log2(scale[i, j])))
            x = blk / np.float64(scale[i, j])
            idx = np.abs(x[..., None] - values).argmin(axis=-1)
            codes[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = finite[idx]
    expanded = np.repeat(np.repeat(scale.astype(np.float64), br, 0), bc, 1)[:rows, :cols]
    deq = E4M3[codes] * expanded
    assert np.abs(deq - w).max() <= np.abs(w).max() * 2 ** -3  # 3 mantissa bits
    return codes, scale, deq


def is_quantised(name):
    if not name.endswith(".weight") or name.endswith("norm.weight"):
        return False
    if name.endswith("mlp.gate.weight") or "embed_tokens" in name:
        return False
    return name != "lm_head.weight" and not name.endswith("shared_head.head.weight")


def mtp_weights(cfg, seed):
    """The tensors of the MTP layer model.layers.<num_hidden_layers>.* (F32 before quantising)."""
    L = cfg["num_hidden_layers"]
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    bigger = dict(cfg, num_hidden_layers=L + 1)
    W = M.deepseek_v3_weights(bigger, seed)
    p = f"model.layers.{L}."
    out = {k: v for k, v in W.f32.items() if k.startswith(p)}
    assert any(".mlp.experts." in k for k in out), "the MTP layer must be a MoE layer"
    rng = np.random.default_rng(seed + 1)
    out[p + "embed_tokens.weight"] = (rng.standard_normal((V, H)) * 0.3).astype(np.float32)
    for n in ("enorm", "hnorm", "shared_head.norm"):
        out[p + n + ".weight"] = (1.0 + 0.1 * rng.standard_normal(H)).astype(np.float32)
    out[p + "eh_proj.weight"] = (rng.standard_normal((H, 2 * H)) * 0.3).astype(np.float32)
    out[p + "shared_head.head.weight"] = (rng.standard_normal((V, H)) * 0.3).astype(np.float32)
    return out


def main():
    check_e4m3_table()
    cfg = M.deepseek_v3_config()
    cfg["num_nextn_predict_layers"] = 1
    cfg["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3",
                                  "quant_method": "fp8", "weight_block_size": list(BLOCK)}
    base = 2601
    for seed in range(base, base + 1000):
        W = M.deepseek_v3_weights(cfg, seed)
        stored = {}
        for name in list(W.f32):
            if is_quantised(name):
                codes, scale, deq = quantise(W[name], pow2=name.startswith(POW2_PREFIX))
                stored[name] = ("F8_E4M3", codes)
                stored[name + "_scale_inv"] = ("F32", scale)
                W.f32[name] = deq.astype(np.float32)  # the F32 a reader returns
            else:
                stored[name] = ("F32", W.f32[name])
        ids = W.rng.integers(0, cfg["vocab_size"], size=(M.B, M.T))
        rec = M.Recorder()
        logits = M.forward(W, cfg, "deepseek_v3", ids, rec)
        if rec.margin >= M.MIN_MARGIN:
            break
    else:
        raise RuntimeError(f"{NAME}: no seed with routing margins >= {M.MIN_MARGIN}")
    assert np.isfinite(logits).all() and logits.std() > 0.1, "logits are trivial"
    for name, a in mtp_weights(cfg, seed + 5000).items():
        if is_quantised(name):
            codes, scale, _ = quantise(a.astype(np.float64))
            stored[name] = ("F8_E4M3", codes)
            stored[name + "_scale_inv"] = ("F32", scale)
        else:
            stored[name] = ("F32", a)
    partial = [n for n, (d, a) in stored.items()
               if d == "F8_E4M3" and (a.shape[0] % BLOCK[0] or a.shape[1] % BLOCK[1])]
    assert partial, "some FP8 tensors must end in partial blocks"
    ref = {k: ("F32" if v.dtype == np.float32 else "I32", v) for k, v in rec.tensors.items()}
    ref["input_ids"] = ("I32", ids.astype(np.int32))
    ref["logits"] = ("F32", logits.astype(np.float32))
    ref["fp8_e4m3_values"] = ("F32", E4M3.astype(np.float32))
    meta = {"format": "pt", "generator": "tests/data/checkpoints/make_tiny_fp8.py",
            "seed": str(seed), "min_routing_margin": "%.6g" % rec.margin,
            "compute": "float64 from the dequantised weights rounded to F32"}
    folder = os.path.join(M.HERE, NAME)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    M.write_safetensors(os.path.join(folder, "model.safetensors"), stored, {"format": "pt"})
    M.write_safetensors(os.path.join(folder, "reference.safetensors"), ref, meta)
    n8 = sum(1 for d, _ in stored.values() if d == "F8_E4M3")
    print(f"{NAME}: seed {seed}, min routing margin {rec.margin:.4g}, logits std "
          f"{logits.std():.3f}, {len(stored)} tensors ({n8} F8_E4M3, {len(partial)} with partial "
          f"blocks)")


if __name__ == "__main__":
    main()
