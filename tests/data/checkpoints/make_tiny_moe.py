#!/usr/bin/env python3
"""Tiny random mixture-of-experts checkpoints and their reference outputs (issue 22, point 2).

Writes, under tests/data/checkpoints/:
  tiny-qwen2-moe/        Qwen2MoeForCausalLM, norm_topk_prob false, top-2 of 8
  tiny-qwen2-moe-norm/   the same shapes, norm_topk_prob true, top-3 of 8 (own seed)
  tiny-mixtral/          MixtralForCausalLM, top-2 of 4
  tiny-deepseek-v3/      DeepseekV3ForCausalLM, MLA attention, grouped sigmoid routing
  tiny-deepseek-v3-yarn/ the same weights and input ids, config.rope_scaling yarn (section 4)
each with config.json, model.safetensors (F32, no tokenizer) and reference.safetensors.

Run with /usr/bin/python3 (numpy only); deterministic. This file is an independent reference: it
was written from the formulas below, not from Hugging Face code, and computes in float64 from the
F32-rounded weights. Everything is laid out as in Hugging Face: a Linear weight W is [out, in] and
y = x W^T (+ b).

reference.safetensors (B = 2 sequences of T = 12 tokens, N = B*T = 24 rows, row n = b*T + t):
  input_ids                 I32 [2, 12]
  logits                    F32 [2, 12, vocab]
  for every MoE layer L (0-based decoder-layer index):
  layer.L.moe_input         F32 [24, hidden]  the block input = post_attention_layernorm output
  layer.L.router_logits     F32 [24, E]       raw gate logits x W_gate^T (before softmax/sigmoid)
  layer.L.topk_ids          I32 [24, k]       experts used, ascending expert id within a row
  layer.L.topk_weights      F32 [24, k]       their final weights (same order), i.e. exactly the
                                              factor that multiplies each expert's output
                                              (DeepSeek-V3: already times routed_scaling_factor)
  layer.L.moe_output        F32 [24, hidden]  the block output before the residual add (routed
                                              experts plus any shared expert)
The seed of each folder is the first one, counting up from a fixed base, for which every routing
decision (expert and group choices) wins by at least 1e-3 (in logit units for softmax routers, in
score units for DeepSeek-V3), so an F32 implementation routes identically; the seed and the
smallest margin are in reference.safetensors' __metadata__.

Common to all families (Hugging Face LlamaRMSNorm / Qwen2MoeRMSNorm / MixtralRMSNorm /
DeepseekV3RMSNorm, *DecoderLayer.forward, *Model.forward, *ForCausalLM.forward):
  h_0 = embed_tokens[input_ids]
  per layer:  a = RMSNorm_in(h);  h = h + Attn(a);  m = RMSNorm_post(h);  h = h + FFN(m)
  logits = lm_head(RMSNorm_final(h))              (lm_head untied, no bias)
  RMSNorm(x) = w * x / sqrt(mean(x^2) + eps), eps = rms_norm_eps = 1e-6, mean over the last axis.
  MLP(x) = down( silu(gate(x)) * up(x) ), silu(z) = z / (1 + exp(-z)), no biases.
  Attention is full causal (query t sees keys 0..t), softmax over keys, no sliding window,
  position ids 0..T-1 per sequence, no KV cache.

Rotary embedding, Llama style ("rotate_half"; Qwen2MoeRotaryEmbedding, MixtralRotaryEmbedding,
rotate_half, apply_rotary_pos_emb): for head dim d and i < d/2,
  inv_freq_i = rope_theta^(-2i/d),  a = pos * inv_freq_i,
  x'[i]     = x[i] cos a - x[i + d/2] sin a
  x'[i+d/2] = x[i + d/2] cos a + x[i] sin a
Rotary embedding, interleaved (DeepSeek-V3, see below): pairs (x[2i], x[2i+1]) rotate by a:
  x'[2i] = x[2i] cos a - x[2i+1] sin a,   x'[2i+1] = x[2i] sin a + x[2i+1] cos a.

Grouped-query attention (Qwen2-MoE, Mixtral; Qwen2MoeAttention / MixtralAttention, repeat_kv,
eager_attention_forward): head_dim = hidden / num_attention_heads = 4; q = x Wq^T (+ bq),
k = x Wk^T (+ bk), v = x Wv^T (+ bv), each split head-major into heads of head_dim (q head h =
rows [h*4, h*4+4) of Wq); rope (rotate_half) on q and k; query head h uses KV head
h // (num_attention_heads / num_key_value_heads); score = q.k / sqrt(head_dim); the heads'
outputs concatenated in head order go through o_proj (no bias). Qwen2-MoE has q/k/v biases
(Qwen2 style; config qkv_bias true), Mixtral none.

1. Qwen2-MoE (transformers models/qwen2_moe: Qwen2MoeDecoderLayer.__init__, Qwen2MoeMLP,
   Qwen2MoeSparseMoeBlock.forward / Qwen2MoeTopKRouter.forward; configuration_qwen2_moe.py).
   Layer L is sparse iff L not in mlp_only_layers and num_experts > 0 and
   (L + 1) % decoder_sparse_step == 0; otherwise FFN = MLP with intermediate_size named
   mlp.{gate,up,down}_proj. Here layer 0 dense (intermediate 12), layers 1 and 2 sparse.
   Sparse block, per token x (= moe_input row):
     l = x Wg^T  (mlp.gate.weight [E, hidden], no bias)            -> router_logits
     p = softmax(l) over all E experts
     S = the k experts with the largest p (k = num_experts_per_tok)
     w_e = p_e                       if norm_topk_prob is false (weights do NOT sum to 1)
     w_e = p_e / sum_{j in S} p_j    if norm_topk_prob is true
     routed = sum_{e in S} w_e * MLP_e(x)   (mlp.experts.e.{gate,up,down}_proj, moe_intermediate_size)
     shared = sigmoid(x . wsg) * MLP_shared(x)   (mlp.shared_expert_gate.weight [1, hidden];
              mlp.shared_expert.{gate,up,down}_proj, shared_expert_intermediate_size)
     moe_output = routed + shared
2. Mixtral (transformers models/mixtral: MixtralSparseMoeBlock.forward,
   MixtralBlockSparseTop2MLP.forward; configuration_mixtral.py). Every layer sparse:
     l = x Wg^T  (block_sparse_moe.gate.weight [E, hidden])        -> router_logits
     p = softmax(l); S = top-k of p; w_e = p_e / sum_{j in S} p_j  (always renormalised, sums to 1)
     moe_output = sum_{e in S} w_e * w2_e( silu(w1_e x) * (w3_e x) )
       (block_sparse_moe.experts.e.w1 = gate [I, hidden], w3 = up [I, hidden], w2 = down [hidden, I])
     No shared expert. sliding_window null: full causal attention.
3. DeepSeek-V3 (transformers models/deepseek_v3/modeling_deepseek_v3.py: DeepseekV3TopkRouter
   .get_topk_indices/.forward, DeepseekV3MoE.moe/.forward, DeepseekV3Attention.forward,
   apply_rotary_pos_emb_interleave, DeepseekV3DecoderLayer.__init__; configuration_deepseek_v3.py;
   and deepseek-ai/DeepSeek-V3 inference/model.py: Gate.forward, MoE.forward, MLA.forward,
   apply_rotary_emb, precompute_freqs_cis).
   FFN of layer L: dense MLP (intermediate_size) if L < first_k_dense_replace, else the MoE
   block (HF tests only L >= first_k_dense_replace; DeepSeek-V2-derived code such as vLLM's
   also needs L % moe_layer_freq == 0, always true with moe_layer_freq = 1). Here layer 0 dense.
   Routing, per token x (E = n_routed_experts = 8, G = n_group = 4 groups of E/G = 2 consecutive
   experts: group g = experts [g*E/G, (g+1)*E/G)):
     l = x Wg^T  (mlp.gate.weight [E, hidden], no bias)            -> router_logits
     s = sigmoid(l)                                   (scores, used for the weights)
     c = s + b   (b = mlp.gate.e_score_correction_bias [E], F32)  (used ONLY to choose)
     group score G_g = sum of the 2 largest c in group g  (top-2 even with a bias; the original
                       code's max-per-group applies only to bias-free models)
     keep the topk_group = 2 groups with the largest G_g
     S = the k = num_experts_per_tok experts with the largest c among the kept groups' experts
         (others excluded, i.e. set to -inf as in inference/model.py. HF sets them to 0.0
         instead; that differs only if some c < 0. Here b > 0, so c > 0 and both agree.)
     w_e = s_e / sum_{j in S} s_j   (norm_topk_prob true; HF adds 1e-20 to the denominator)
     w_e = w_e * routed_scaling_factor (2.5)          -> topk_weights (sum to 2.5)
     moe_output = sum_{e in S} w_e * MLP_e(x) + MLP_shared(x)
       (mlp.experts.e.{gate,up,down}_proj with moe_intermediate_size; mlp.shared_experts.
        {gate,up,down}_proj with moe_intermediate_size * n_shared_experts; the shared expert is
        not gated and not scaled.)
     With topk_group = n_group this is plain top-k over c (checked below).
   Multi-head latent attention, per token x (= input_layernorm output), H = 4 heads,
   dn = qk_nope_head_dim = 4, dr = qk_rope_head_dim = 4, dv = v_head_dim = 4,
   rq = q_lora_rank = 12, rkv = kv_lora_rank = 8; no biases (attention_bias false):
     q   = q_b_proj( RMSNorm_qa( q_a_proj(x) ) )      q_a_proj [rq, hidden], q_a_layernorm [rq],
                                                      q_b_proj [H*(dn+dr), rq]
         head h = q[h*(dn+dr) : (h+1)*(dn+dr)] = [q_nope (dn) | q_rope (dr)]
     ckv = kv_a_proj_with_mqa(x)                      [rkv + dr, hidden]
         c = ckv[:rkv],  k_rope = ckv[rkv:]           (k_rope: ONE rope key shared by all heads,
                                                       not normalised)
     kv  = kv_b_proj( RMSNorm_kva(c) )                kv_a_layernorm [rkv], kv_b_proj [H*(dn+dv), rkv]
         head h = kv[h*(dn+dv) : (h+1)*(dn+dv)] = [k_nope (dn) | v (dv)]
     rope (INTERLEAVED pairs, inv_freq_i = rope_theta^(-2i/dr)) on q_rope and k_rope;
     score_h(t, s) = (q_nope_h(t) . k_nope_h(s) + q_rope_h(t) . k_rope(s)) * scale,
         scale = 1 / sqrt(dn + dr) = 1/sqrt(8)  (no yarn mscale^2 factor: rope_scaling is null)
     out_h(t) = sum_s softmax_s(score_h(t, .)) v_h(s);  o_proj( [out_0 | ... | out_{H-1}] )
         o_proj [hidden, H*dv].
   Rotary layout: the released Hugging Face DeepSeek-V3 weights are in the layout of
   inference/model.py, whose apply_rotary_emb rotates consecutive pairs (view_as_complex over
   the last axis); inference/convert.py renames HF tensors without permuting rows. HF
   transformers reproduces this with rope_interleave = true (its default), which permutes
   [x0 x1 x2 x3 ...] -> [x0 x2 ... | x1 x3 ...] before rotate_half; the same permutation of q and
   k leaves every dot product equal to the interleaved rotation implemented here (checked below).
   qk_rope_head_dim = 4 (two pairs; config head_dim = qk_rope_head_dim = 4 and qk_head_dim =
   dn + dr = 8, as Hugging Face's config stores them) so that the layouts differ: with a single
   pair (dr = 2) interleaved and rotate_half coincide. The generator checks that the same weights
   run with rotate_half on q_rope and k_rope give logits that differ from the reference by at
   least 1e-2 (max |difference| in reference.safetensors' __metadata__,
   rope_layout_max_logit_diff), far above F32 rounding, so a forward pass with the wrong rope
   layout fails against this reference.
4. DeepSeek-V3 with yarn rope_scaling (tiny-deepseek-v3-yarn; YaRN, Peng et al. 2023,
   arXiv:2309.00071, in the form of DeepSeek's own modeling_deepseek.py that DeepSeek-V3/R1 ship
   with). Written here from the formulas, in float64. d = qk_rope_head_dim, theta = rope_theta,
   s = factor, L = original_max_position_embeddings, plain frequencies w_i = theta^(-2i/d),
   i < d/2, wavelength 2 pi / w_i:
     corr(r)   = the (fractional) index i at which r full turns fit into L, i.e. the solution of
                 L * w_i / (2 pi) = r:  i = d ln(L / (2 pi r)) / (2 ln theta)
     lo = max(floor(corr(beta_fast)), 0),  hi = min(ceil(corr(beta_slow)), d - 1)
                 (the code's bounds: whole indices, clamped to [0, d - 1]; hi += 0.001 if lo = hi)
     gamma_i   = clip((i - lo) / (hi - lo), 0, 1)       (0: fast, kept; 1: slow, interpolated)
     w'_i      = (1 - gamma_i) w_i + gamma_i w_i / s
     m(s, x)   = 0.1 x ln s + 1 (1 when s <= 1)
     rope with w' and cos, sin both multiplied by m(s, mscale) / m(s, mscale_all_dim)
     attention scale 1 / sqrt(dn + dr) multiplied by m(s, mscale_all_dim)^2 (mscale_all_dim != 0)
   (The paper's own ramp is linear in the number of turns r_i = L w_i / (2 pi) between beta_slow
   and beta_fast; the released code ramps linearly in the index between the rounded bounds, which
   is what the models were trained and are run with, so this reference follows the code.)
   The config's factor 4, L = 1024, mscale 1, mscale_all_dim 0.85 give lo = 0, hi = 2 (corr =
   0.354, 1.106), gamma = [0, 0.5]: one frequency kept, one blended half-way, a cos/sin factor of
   1.019 and a softmax factor of 1.250. The generator checks that the logits differ from
   tiny-deepseek-v3's by far more than the tests' tolerance, and that dropping any one of the
   three parts (frequencies, cos/sin factor, softmax factor) or the rounding of the bounds changes
   them by at least 1e-3 (yarn_ablation_* in reference.safetensors' __metadata__).
"""
import json
import math
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
B, T = 2, 12
EPS = 1e-6
MIN_MARGIN = 1e-3
WEIGHT_SCALE = 0.3
ROPE_LAYOUT_MIN_DIFF = 1e-2


# ----------------------------------------------------------------------------------------------
# safetensors writer (header keys sorted, header padded with spaces to a multiple of 8 bytes)

def write_safetensors(path, tensors, metadata):
    """tensors: name -> array (F32 or I32), or (safetensors dtype text, array) for other dtypes."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if isinstance(a, tuple):
            dtype, a = a
        elif a.dtype == np.float32:
            dtype = "F32"
        elif a.dtype == np.int32:
            dtype = "I32"
        else:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_folder(name, config, weights, reference, ref_metadata):
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_safetensors(os.path.join(folder, "model.safetensors"), weights, {"format": "pt"})
    write_safetensors(os.path.join(folder, "reference.safetensors"), reference,
                      dict({"format": "pt"}, **ref_metadata))


# ----------------------------------------------------------------------------------------------
# Weights: stored F32, used as float64 copies of the F32 values

class Weights:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.f32 = {}

    def mat(self, name, *shape, scale=WEIGHT_SCALE):
        self.f32[name] = (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(self, name, n):
        self.f32[name] = (1.0 + 0.1 * self.rng.standard_normal(n)).astype(np.float32)

    def vec(self, name, values):
        self.f32[name] = np.asarray(values, dtype=np.float32)

    def __getitem__(self, name):
        return self.f32[name].astype(np.float64)


def rms_norm(x, w):
    return w * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS)


def silu(z):
    return z / (1.0 + np.exp(-z))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def mlp(W, prefix, x):
    g, u, d = (W[prefix + p + ".weight"] for p in ("gate_proj", "up_proj", "down_proj"))
    return (silu(x @ g.T) * (x @ u.T)) @ d.T


def rope_half(x, theta):
    """x [..., T, d], Llama layout: dims i and i + d/2 form a pair."""
    d = x.shape[-1]
    inv = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    a = np.arange(x.shape[-2], dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(a), np.sin(a)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def rope_interleaved(x, theta, freqs=None):
    """x [..., T, d], DeepSeek layout: dims 2i and 2i + 1 form a pair (a complex number).
    freqs: None for plain rope, else (inverse frequencies [d/2], magnitude of cos and sin)."""
    d = x.shape[-1]
    inv = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    mag = 1.0
    if freqs is not None:
        inv, mag = freqs
    a = np.arange(x.shape[-2], dtype=np.float64)[:, None] * inv[None, :]
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * (mag * np.exp(1j * a))
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = z.real, z.imag
    return out


def yarn_m(s, x):
    return 0.1 * x * math.log(s) + 1.0 if s > 1 else 1.0


def yarn(cfg, parts=("freqs", "cos_sin", "softmax", "round")):
    """DeepSeek-V3's yarn (section 4): ((inverse frequencies, cos/sin magnitude), softmax factor).
    parts: the pieces applied (all of them but in the generator's ablation checks)."""
    rs = cfg["rope_scaling"]
    d, theta, s, L = cfg["qk_rope_head_dim"], cfg["rope_theta"], rs["factor"], \
        rs["original_max_position_embeddings"]
    w = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    corr = lambda r: d * math.log(L / (2 * math.pi * r)) / (2 * math.log(theta))
    lo, hi = corr(rs["beta_fast"]), corr(rs["beta_slow"])
    if "round" in parts:
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, d - 1)
    if lo == hi:
        hi += 0.001
    gamma = np.clip((np.arange(d // 2) - lo) / (hi - lo), 0.0, 1.0)
    if "freqs" in parts:
        w = (1 - gamma) * w + gamma * w / s
    mag = yarn_m(s, rs["mscale"]) / yarn_m(s, rs["mscale_all_dim"]) if "cos_sin" in parts else 1.0
    soft = yarn_m(s, rs["mscale_all_dim"]) ** 2 if "softmax" in parts else 1.0
    return (w, mag), soft


def causal_attention(q, k, v, scale):
    """q, k [heads, T, dk], v [heads, T, dv] -> [T, heads*dv]."""
    s = np.einsum("htd,hsd->hts", q, k) * scale
    n = q.shape[1]
    s = np.where(np.tril(np.ones((n, n), dtype=bool))[None], s, -np.inf)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    p = s / s.sum(axis=-1, keepdims=True)
    o = np.einsum("hts,hsd->htd", p, v)
    return o.transpose(1, 0, 2).reshape(n, -1)


# ----------------------------------------------------------------------------------------------
# Routers. Each returns (ids ascending, weights in that order, smallest decision margin).

def topk_desc(values, k):
    order = np.argsort(-values, kind="stable")
    return order[:k], values[order[k - 1]] - values[order[k]]


def route_softmax(logits, k, normalise):
    p = np.exp(logits - logits.max())
    p /= p.sum()
    sel, margin = topk_desc(logits, k)
    w = p[sel]
    if normalise:
        w = w / w.sum()
    order = np.argsort(sel)
    return sel[order], w[order], margin


def route_deepseek(logits, bias, k, n_group, topk_group, scaling, normalise, fill=-np.inf):
    """fill: the value given to experts of dropped groups (-inf as in inference/model.py,
    0.0 as in HF get_topk_indices)."""
    s = sigmoid(logits)
    c = s + bias
    per = len(c) // n_group
    grouped = c.reshape(n_group, per)
    gscore = np.sort(grouped, axis=1)[:, ::-1][:, :2].sum(axis=1)
    margins = []
    if topk_group < n_group:
        gsel, gm = topk_desc(gscore, topk_group)
        margins.append(gm)
    else:
        gsel = np.arange(n_group)
    keep = np.zeros(len(c), dtype=bool)
    for g in gsel:
        keep[g * per:(g + 1) * per] = True
    masked = np.where(keep, c, fill)
    sel, m = topk_desc(masked, k)
    margins.append(m)
    w = s[sel]
    if normalise:
        w = w / w.sum()
    w = w * scaling
    order = np.argsort(sel)
    return sel[order], w[order], min(margins)


# ----------------------------------------------------------------------------------------------
# Forward passes

class Recorder:
    def __init__(self):
        self.tensors, self.margin = {}, math.inf

    def moe(self, layer, x, logits, ids, weights, out, margin):
        p = f"layer.{layer}."
        self.tensors[p + "moe_input"] = x.astype(np.float32)
        self.tensors[p + "router_logits"] = logits.astype(np.float32)
        self.tensors[p + "topk_ids"] = ids.astype(np.int32)
        self.tensors[p + "topk_weights"] = weights.astype(np.float32)
        self.tensors[p + "moe_output"] = out.astype(np.float32)
        self.margin = min(self.margin, margin)


def gqa_attention(W, prefix, x, cfg, biases):
    """x [T, hidden] -> [T, hidden]; Qwen2-MoE / Mixtral attention."""
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg["hidden_size"] // nh

    def proj(name, heads):
        y = x @ W[prefix + name + ".weight"].T
        if biases:
            y = y + W[prefix + name + ".bias"]
        return y.reshape(len(x), heads, hd).transpose(1, 0, 2)

    q = rope_half(proj("q_proj", nh), cfg["rope_theta"])
    k = rope_half(proj("k_proj", nkv), cfg["rope_theta"])
    v = proj("v_proj", nkv)
    rep = nh // nkv
    k, v = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)  # head h -> kv head h // rep
    o = causal_attention(q, k, v, 1.0 / math.sqrt(hd))
    return o @ W[prefix + "o_proj.weight"].T


def mla_attention(W, prefix, x, cfg, check_absorbed=False, rope=rope_interleaved, yarn_parts=None):
    """x [T, hidden] -> [T, hidden]; DeepSeek-V3 multi-head latent attention. rope: the rotary
    layout, interleaved as in DeepSeek-V3; rope_half only for the layout self-check. yarn_parts:
    the parts of yarn applied when cfg has rope_scaling (None: all)."""
    n, nh = len(x), cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    rkv = cfg["kv_lora_rank"]
    q = rms_norm(x @ W[prefix + "q_a_proj.weight"].T, W[prefix + "q_a_layernorm.weight"])
    q = (q @ W[prefix + "q_b_proj.weight"].T).reshape(n, nh, dn + dr).transpose(1, 0, 2)
    q_nope, q_rope = q[..., :dn], q[..., dn:]
    ckv = x @ W[prefix + "kv_a_proj_with_mqa.weight"].T
    c, k_rope = ckv[:, :rkv], ckv[:, rkv:]
    c_norm = rms_norm(c, W[prefix + "kv_a_layernorm.weight"])
    kv = (c_norm @ W[prefix + "kv_b_proj.weight"].T).reshape(n, nh, dn + dv).transpose(1, 0, 2)
    k_nope, v = kv[..., :dn], kv[..., dn:]
    theta = cfg["rope_theta"]
    scale = 1.0 / math.sqrt(dn + dr)
    if cfg.get("rope_scaling") is None:
        q_rope = rope(q_rope, theta)
        k_rope = rope(k_rope[None], theta)  # one shared rope key
    else:
        assert cfg["rope_scaling"]["type"] == "yarn" and rope is rope_interleaved
        freqs, soft = yarn(cfg) if yarn_parts is None else yarn(cfg, yarn_parts)
        q_rope = rope(q_rope, theta, freqs)
        k_rope = rope(k_rope[None], theta, freqs)
        scale = scale * soft
    q_full = np.concatenate([q_nope, q_rope], axis=-1)
    k_full = np.concatenate([k_nope, np.repeat(k_rope, nh, axis=0)], axis=-1)
    o = causal_attention(q_full, k_full, v, scale)
    if check_absorbed:
        # The weight-absorbed form of inference/model.py (attn_impl "absorb"): queries projected
        # into the latent space, attention over the normalised latents, values expanded after.
        wkv_b = W[prefix + "kv_b_proj.weight"].reshape(nh, dn + dv, rkv)
        q_lat = np.einsum("htd,hdc->htc", q_nope, wkv_b[:, :dn])
        s = (np.einsum("htc,sc->hts", q_lat, c_norm) +
             np.einsum("htr,sr->hts", q_rope, k_rope[0])) * scale
        s = np.where(np.tril(np.ones((n, n), dtype=bool))[None], s, -np.inf)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        o2 = np.einsum("hts,sc->htc", p, c_norm)
        o2 = np.einsum("htc,hdc->htd", o2, wkv_b[:, dn:]).transpose(1, 0, 2).reshape(n, -1)
        assert np.abs(o - o2).max() < 1e-12, "MLA: naive and absorbed forms differ"
    return o @ W[prefix + "o_proj.weight"].T


def forward(W, cfg, family, ids, rec=None, mla_rope=rope_interleaved, yarn_parts=None):
    """ids [B, T] -> logits [B, T, vocab]. mla_rope: DeepSeek-V3's rope layout (self-check only);
    yarn_parts: the parts of yarn applied (ablation self-check only)."""
    h = W["model.embed_tokens.weight"][ids]  # [B, T, hidden]
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        a = rms_norm(h, W[p + "input_layernorm.weight"])
        for b in range(len(ids)):
            if family == "deepseek_v3":
                h[b] = h[b] + mla_attention(W, p + "self_attn.", a[b], cfg, check_absorbed=True,
                                            rope=mla_rope, yarn_parts=yarn_parts)
            else:
                h[b] = h[b] + gqa_attention(W, p + "self_attn.", a[b], cfg,
                                            biases=(family == "qwen2_moe"))
        m = rms_norm(h, W[p + "post_attention_layernorm.weight"])
        x = m.reshape(-1, cfg["hidden_size"])
        out = ffn(W, cfg, family, L, p, x, rec)
        h = h + out.reshape(h.shape)
    h = rms_norm(h, W["model.norm.weight"])
    return h @ W["lm_head.weight"].T


def is_moe_layer(cfg, family, L):
    if family == "qwen2_moe":
        return (L not in cfg["mlp_only_layers"] and cfg["num_experts"] > 0 and
                (L + 1) % cfg["decoder_sparse_step"] == 0)
    if family == "mixtral":
        return True
    return L >= cfg["first_k_dense_replace"] and L % cfg["moe_layer_freq"] == 0


def ffn(W, cfg, family, L, p, x, rec):
    if not is_moe_layer(cfg, family, L):
        return mlp(W, p + "mlp.", x)
    if family == "mixtral":
        gate, k = W[p + "block_sparse_moe.gate.weight"], cfg["num_experts_per_tok"]
    else:
        gate, k = W[p + "mlp.gate.weight"], cfg["num_experts_per_tok"]
    logits = x @ gate.T
    out = np.zeros_like(x)
    all_ids, all_w, margin = [], [], math.inf
    for n in range(len(x)):
        if family == "qwen2_moe":
            ids, w, mg = route_softmax(logits[n], k, cfg["norm_topk_prob"])
        elif family == "mixtral":
            ids, w, mg = route_softmax(logits[n], k, True)
        else:
            bias = W[p + "mlp.gate.e_score_correction_bias"]
            args = (k, cfg["n_group"], cfg["topk_group"], cfg["routed_scaling_factor"],
                    cfg["norm_topk_prob"])
            ids, w, mg = route_deepseek(logits[n], bias, *args)
            # HF's 0.0 fill for dropped groups must choose the same experts here.
            ids_hf, _, _ = route_deepseek(logits[n], bias, *args, fill=0.0)
            assert (ids == ids_hf).all(), "DeepSeek: -inf and 0.0 group masks disagree"
            assert (sigmoid(logits[n]) + bias > 0).all()
            # With every group kept, grouped routing is plain top-k over the biased scores.
            ids_all, _, _ = route_deepseek(logits[n], bias, k, cfg["n_group"], cfg["n_group"],
                                           cfg["routed_scaling_factor"], True)
            plain = np.sort(np.argsort(-(sigmoid(logits[n]) + bias), kind="stable")[:k])
            assert (ids_all == plain).all(), "DeepSeek: topk_group = n_group is not plain top-k"
        for e, we in zip(ids, w):
            if family == "mixtral":
                pe = f"{p}block_sparse_moe.experts.{e}."
                y = (silu(x[n] @ W[pe + "w1.weight"].T) * (x[n] @ W[pe + "w3.weight"].T)) @ \
                    W[pe + "w2.weight"].T
            else:
                y = mlp(W, f"{p}mlp.experts.{e}.", x[n])
            out[n] += we * y
        all_ids.append(ids)
        all_w.append(w)
        margin = min(margin, mg)
    if family == "qwen2_moe":
        g = sigmoid(x @ W[p + "mlp.shared_expert_gate.weight"].T)  # [N, 1]
        out += g * mlp(W, p + "mlp.shared_expert.", x)
    elif family == "deepseek_v3":
        out += mlp(W, p + "mlp.shared_experts.", x)
    weights = np.array(all_w)
    if family == "mixtral" or (family == "qwen2_moe" and cfg["norm_topk_prob"]):
        assert np.abs(weights.sum(axis=1) - 1).max() < 1e-12
    if family == "deepseek_v3":
        assert np.abs(weights.sum(axis=1) - cfg["routed_scaling_factor"]).max() < 1e-12
    if rec is not None:
        rec.moe(L, x, logits, np.array(all_ids), weights, out, margin)
    return out


# ----------------------------------------------------------------------------------------------
# Families: config and random weights

def qwen2_moe_config(norm):
    return {
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
        "vocab_size": 32, "hidden_size": 16, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 12,
        "hidden_act": "silu", "rms_norm_eps": EPS, "rope_theta": 10000.0, "rope_scaling": None,
        "max_position_embeddings": 64, "initializer_range": 0.02, "use_cache": True,
        "tie_word_embeddings": False, "torch_dtype": "float32", "attention_dropout": 0.0,
        "qkv_bias": True, "use_sliding_window": False, "sliding_window": None,
        "max_window_layers": 3, "layer_types": ["full_attention"] * 3,
        "num_experts": 8, "num_experts_per_tok": 3 if norm else 2, "moe_intermediate_size": 6,
        "shared_expert_intermediate_size": 10, "decoder_sparse_step": 1,
        "mlp_only_layers": [0], "norm_topk_prob": norm,
        "output_router_logits": False, "router_aux_loss_coef": 0.001,
    }


def qwen2_moe_weights(cfg, seed):
    W = Weights(seed)
    H, V, hd = cfg["hidden_size"], cfg["vocab_size"], cfg["hidden_size"] // cfg["num_attention_heads"]
    nq, nkv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    W.mat("model.embed_tokens.weight", V, H)
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        W.norm(p + "input_layernorm.weight", H)
        W.norm(p + "post_attention_layernorm.weight", H)
        for name, rows in (("q_proj", nq), ("k_proj", nkv), ("v_proj", nkv)):
            W.mat(p + f"self_attn.{name}.weight", rows, H)
            W.mat(p + f"self_attn.{name}.bias", rows)
        W.mat(p + "self_attn.o_proj.weight", H, nq)
        if is_moe_layer(cfg, "qwen2_moe", L):
            W.mat(p + "mlp.gate.weight", cfg["num_experts"], H)
            for e in range(cfg["num_experts"]):
                add_mlp(W, f"{p}mlp.experts.{e}.", H, cfg["moe_intermediate_size"])
            add_mlp(W, p + "mlp.shared_expert.", H, cfg["shared_expert_intermediate_size"])
            W.mat(p + "mlp.shared_expert_gate.weight", 1, H)
        else:
            add_mlp(W, p + "mlp.", H, cfg["intermediate_size"])
    W.norm("model.norm.weight", H)
    W.mat("lm_head.weight", V, H)
    return W


def mixtral_config():
    return {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "vocab_size": 32, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4,
        "intermediate_size": 8, "hidden_act": "silu", "rms_norm_eps": EPS,
        "rope_theta": 10000.0, "rope_scaling": None, "max_position_embeddings": 64,
        "initializer_range": 0.02, "use_cache": True, "tie_word_embeddings": False,
        "torch_dtype": "float32", "attention_dropout": 0.0, "sliding_window": None,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None,
        "num_local_experts": 4, "num_experts_per_tok": 2,
        "output_router_logits": False, "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0,
    }


def mixtral_weights(cfg, seed):
    W = Weights(seed)
    H, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    hd = cfg["head_dim"]
    nq, nkv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    W.mat("model.embed_tokens.weight", V, H)
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        W.norm(p + "input_layernorm.weight", H)
        W.norm(p + "post_attention_layernorm.weight", H)
        for name, rows in (("q_proj", nq), ("k_proj", nkv), ("v_proj", nkv)):
            W.mat(p + f"self_attn.{name}.weight", rows, H)
        W.mat(p + "self_attn.o_proj.weight", H, nq)
        W.mat(p + "block_sparse_moe.gate.weight", cfg["num_local_experts"], H)
        for e in range(cfg["num_local_experts"]):
            pe = f"{p}block_sparse_moe.experts.{e}."
            W.mat(pe + "w1.weight", I, H)
            W.mat(pe + "w2.weight", H, I)
            W.mat(pe + "w3.weight", I, H)
    W.norm("model.norm.weight", H)
    W.mat("lm_head.weight", V, H)
    return W


def deepseek_v3_config():
    return {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "vocab_size": 32, "hidden_size": 16, "num_hidden_layers": 3, "intermediate_size": 12,
        "hidden_act": "silu", "rms_norm_eps": EPS, "rope_theta": 10000.0, "rope_scaling": None,
        "rope_interleave": True, "max_position_embeddings": 64, "initializer_range": 0.02,
        "use_cache": True, "tie_word_embeddings": False, "torch_dtype": "float32",
        "attention_bias": False, "attention_dropout": 0.0, "pretraining_tp": 1,
        "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": None,
        "num_attention_heads": 4, "num_key_value_heads": 4,
        "q_lora_rank": 12, "kv_lora_rank": 8, "qk_nope_head_dim": 4, "qk_rope_head_dim": 4,
        "v_head_dim": 4, "qk_head_dim": 8, "head_dim": 4,
        "first_k_dense_replace": 1, "moe_layer_freq": 1, "moe_intermediate_size": 6,
        "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2,
        "n_group": 4, "topk_group": 2, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
        "scoring_func": "sigmoid", "topk_method": "noaux_tc", "num_nextn_predict_layers": 0,
    }


def deepseek_v3_yarn_config():
    """tiny-deepseek-v3's config with rope_scaling yarn, in the released DeepSeek-V3's keys (its
    values: factor 40, original_max_position_embeddings 4096, mscale = mscale_all_dim = 1), scaled
    so that every part changes the logits of 12 tokens; max_position_embeddings = factor * L as
    in the released config (the forward pass does not use it)."""
    cfg = deepseek_v3_config()
    cfg["rope_scaling"] = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024,
                           "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 0.85}
    cfg["max_position_embeddings"] = 4096
    return cfg


def deepseek_v3_weights(cfg, seed):
    W = Weights(seed)
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    rq, rkv, E = cfg["q_lora_rank"], cfg["kv_lora_rank"], cfg["n_routed_experts"]
    W.mat("model.embed_tokens.weight", V, H)
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        W.norm(p + "input_layernorm.weight", H)
        W.norm(p + "post_attention_layernorm.weight", H)
        a = p + "self_attn."
        W.mat(a + "q_a_proj.weight", rq, H)
        W.norm(a + "q_a_layernorm.weight", rq)
        W.mat(a + "q_b_proj.weight", nh * (dn + dr), rq)
        W.mat(a + "kv_a_proj_with_mqa.weight", rkv + dr, H)
        W.norm(a + "kv_a_layernorm.weight", rkv)
        W.mat(a + "kv_b_proj.weight", nh * (dn + dv), rkv)
        W.mat(a + "o_proj.weight", H, nh * dv)
        if is_moe_layer(cfg, "deepseek_v3", L):
            W.mat(p + "mlp.gate.weight", E, H)
            # Positive and spread out, so it changes choices while sigmoid + bias stays > 0.
            W.vec(p + "mlp.gate.e_score_correction_bias", W.rng.uniform(0.02, 0.3, E))
            for e in range(E):
                add_mlp(W, f"{p}mlp.experts.{e}.", H, cfg["moe_intermediate_size"])
            add_mlp(W, p + "mlp.shared_experts.", H,
                    cfg["moe_intermediate_size"] * cfg["n_shared_experts"])
        else:
            add_mlp(W, p + "mlp.", H, cfg["intermediate_size"])
    W.norm("model.norm.weight", H)
    W.mat("lm_head.weight", V, H)
    return W


def add_mlp(W, prefix, H, I):
    W.mat(prefix + "gate_proj.weight", I, H)
    W.mat(prefix + "up_proj.weight", I, H)
    W.mat(prefix + "down_proj.weight", H, I)


# ----------------------------------------------------------------------------------------------
# Self-checks that do not depend on the model under test

def check_rope():
    rng = np.random.default_rng(7)
    for rope in (rope_half, rope_interleaved):
        q = rng.standard_normal((1, 12, 6))
        k = rng.standard_normal((1, 12, 6))
        # Rotating the same vectors at every position: q_t . k_s depends only on t - s.
        qr = rope(np.repeat(q[:, :1], 12, axis=1), 50.0)
        kr = rope(np.repeat(k[:, :1], 12, axis=1), 50.0)
        d = np.einsum("htd,hsd->ts", qr, kr)
        assert abs(d[5, 2] - d[9, 6]) < 1e-12 and abs(d[3, 3] - (q[0, 0] @ k[0, 0])) < 1e-12
        assert np.allclose(np.linalg.norm(qr, axis=-1), np.linalg.norm(q[:, :1], axis=-1))
    # The two layouts agree on head dim 2 and differ beyond it.
    x = rng.standard_normal((1, 12, 2))
    assert np.abs(rope_half(x, 100.0) - rope_interleaved(x, 100.0)).max() < 1e-12
    x = rng.standard_normal((1, 12, 4))
    assert np.abs(rope_half(x, 100.0) - rope_interleaved(x, 100.0)).max() > 1e-3
    # HF rope_interleave: permuting [x0 x1 x2 x3 ...] -> [x0 x2 ... | x1 x3 ...] and then
    # rotate_half is the interleaved rotation followed by the same permutation (so q.k agree).
    for d in (4, 8):
        x = rng.standard_normal((3, 12, d))
        perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])
        hf = rope_half(x[..., perm], 100.0)
        assert np.abs(hf - rope_interleaved(x, 100.0)[..., perm]).max() < 1e-12


def check_rope_layout(W, cfg, ids, logits):
    """DeepSeek-V3: the same weights with rotate_half instead of interleaved rope must give clearly
    different logits, so the reference tells the two layouts apart. Returns the max |difference|."""
    assert cfg["qk_rope_head_dim"] >= 4, "one rotated pair: the layouts coincide"
    half = forward(W, cfg, "deepseek_v3", ids, mla_rope=rope_half)
    diff = np.abs(half - logits)
    # Position 0 attends only to itself at angle 0, where the layouts agree exactly.
    assert diff[:, 0].max() < 1e-12
    assert diff.max() >= ROPE_LAYOUT_MIN_DIFF, f"rope layouts differ by only {diff.max():.3g}"
    return diff.max()


YARN_MIN_DIFF = 1e-3


def check_yarn():
    """The yarn formulas on the released DeepSeek-V3 config: lo, hi and the blend."""
    cfg = {"qk_rope_head_dim": 64, "rope_theta": 10000.0,
           "rope_scaling": {"factor": 40, "original_max_position_embeddings": 4096,
                            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}}
    (w, mag), soft = yarn(cfg)
    plain = 10000.0 ** (-np.arange(0, 64, 2) / 64)
    # corr(32) = 10.37 -> 10, corr(1) = 22.97 -> 23: indices <= 10 kept, >= 23 divided by 40.
    assert np.abs(w[:11] - plain[:11]).max() == 0 and np.allclose(w[23:], plain[23:] / 40)
    assert plain[22] / 40 < w[22] < plain[22] and mag == 1.0
    assert abs(soft - (0.1 * math.log(40) + 1) ** 2) < 1e-15


def check_yarn_parts(W, cfg, ids, logits, base_logits):
    """Each part of yarn (and the rounding of the correction range) changes the logits."""
    diffs = {"all": np.abs(logits - base_logits).max()}
    full = ("freqs", "cos_sin", "softmax", "round")
    for part in full:
        other = forward(W, cfg, "deepseek_v3", ids, yarn_parts=tuple(p for p in full if p != part))
        diffs[part] = np.abs(other - logits).max()
    for part, diff in diffs.items():
        assert diff >= YARN_MIN_DIFF, f"yarn without {part}: logits differ by only {diff:.3g}"
    return diffs


def check_causal(W, cfg, family, ids, logits):
    """Changing the last token of sequence 0 leaves that sequence's earlier logits unchanged."""
    ids2 = ids.copy()
    ids2[0, -1] = (ids2[0, -1] + 1) % cfg["vocab_size"]
    logits2 = forward(W, cfg, family, ids2)
    assert np.abs(logits2[0, :-1] - logits[0, :-1]).max() < 1e-12
    assert np.abs(logits2[1] - logits[1]).max() < 1e-12
    assert np.abs(logits2[0, -1] - logits[0, -1]).max() > 1e-6


# ----------------------------------------------------------------------------------------------

def build(name, family, cfg, make_weights, base_seed, base=None):
    """base: (name, seed, ids, logits) of the folder whose weights a rope_scaling variant shares
    (its seed only: the variant must route with the same margins, else the build fails)."""
    if base is not None:
        W = make_weights(cfg, base[1])
        ids = W.rng.integers(0, cfg["vocab_size"], size=(B, T))
        assert (ids == base[2]).all()
        rec = Recorder()
        logits = forward(W, cfg, family, ids, rec)
        assert rec.margin >= MIN_MARGIN, f"{name}: routing margin {rec.margin:.3g} with the base seed"
        seed = base[1]
    for seed in range(base_seed, base_seed + 1000) if base is None else ():
        W = make_weights(cfg, seed)
        ids = W.rng.integers(0, cfg["vocab_size"], size=(B, T))
        rec = Recorder()
        logits = forward(W, cfg, family, ids, rec)
        if rec.margin >= MIN_MARGIN:
            break
    else:
        if base is None:
            raise RuntimeError(f"{name}: no seed with routing margins >= {MIN_MARGIN}")
    check_causal(W, cfg, family, ids, logits)
    assert np.isfinite(logits).all() and logits.std() > 0.1, "logits are trivial"
    ref = dict(rec.tensors)
    ref["input_ids"] = ids.astype(np.int32)
    ref["logits"] = logits.astype(np.float32)
    meta = {"generator": "tests/data/checkpoints/make_tiny_moe.py", "seed": str(seed),
            "min_routing_margin": "%.6g" % rec.margin, "compute": "float64 from F32 weights"}
    extra = ""
    if family == "deepseek_v3" and cfg.get("rope_scaling") is None:
        layout_diff = check_rope_layout(W, cfg, ids, logits)
        meta["rope_layout_max_logit_diff"] = "%.6g" % layout_diff
        extra = f", rotate_half vs interleaved max logit diff {layout_diff:.4g}"
    if base is not None:
        diffs = check_yarn_parts(W, cfg, ids, logits, base[3])
        for part, diff in diffs.items():
            meta["yarn_ablation_" + part] = "%.6g" % diff
        meta["base_checkpoint"] = base[0]
        extra = ", yarn changes the logits by " + ", ".join(
            f"{part} {diff:.3g}" for part, diff in diffs.items())
    write_folder(name, cfg, W.f32, ref, meta)
    moe_layers = sorted({int(k.split(".")[1]) for k in rec.tensors})
    print(f"{name}: seed {seed}, MoE layers {moe_layers}, min routing margin {rec.margin:.4g}, "
          f"logits std {logits.std():.3f}, {len(W.f32)} tensors{extra}")
    return name, seed, ids, logits


def main():
    check_rope()
    check_yarn()
    build("tiny-qwen2-moe", "qwen2_moe", qwen2_moe_config(False), qwen2_moe_weights, 2201)
    build("tiny-qwen2-moe-norm", "qwen2_moe", qwen2_moe_config(True), qwen2_moe_weights, 2301)
    build("tiny-mixtral", "mixtral", mixtral_config(), mixtral_weights, 2401)
    base = build("tiny-deepseek-v3", "deepseek_v3", deepseek_v3_config(), deepseek_v3_weights,
                 2501)
    build("tiny-deepseek-v3-yarn", "deepseek_v3", deepseek_v3_yarn_config(), deepseek_v3_weights,
          2501, base=base)


if __name__ == "__main__":
    main()
