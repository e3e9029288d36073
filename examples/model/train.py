#!/usr/bin/python3
"""Trains the qprune example model: a tiny byte-level Qwen2 decoder on the Debian `fortunes` texts.

Writes, next to this script:
  checkpoint/        config.json, two BF16 safetensors shards + model.safetensors.index.json,
                     tokenizer_config.json (byte level: token id = byte value), generation_config.json
  heldout.txt        held-out fortunes (never trained on), for perplexity
  calibration.txt    a sample of training fortunes, for `qprune calibrate`
and tests/data/model/reference.safetensors: a fixed input with the F32 logits of the trained model
(computed from the BF16 weights converted back to F32, as the C++ forward pass reads them) and the
per-token log-probs of a held-out prefix in the windowing `qprune perplexity` uses.

Run with Debian's python (python3-torch): /usr/bin/python3 examples/model/train.py [--measure]
With --german (issue 21's English+German model): trains on the English fortunes plus the German
ones of fortunes-de and writes examples/model_de/ (checkpoint, heldout_{en,de}.txt,
calibration_{en,de}.txt, training_summary.json) instead; see examples/model_de/README.md.
With --moe (issue 22's mixture-of-experts model): the same attention, embeddings and data split,
but every MLP a Qwen2-MoE sparse block (Hugging Face `Qwen2MoeForCausalLM`: a softmax router over
16 experts, the top 2 of them per token, plus a sigmoid-gated shared expert), trained with
Transformers' load-balancing auxiliary loss applied per layer (per_layer_balancing_loss says why);
writes examples/model_moe/ (checkpoint, training_summary.json with the experts' routing
frequencies on the held-out text) and tests/data/model_moe/reference.safetensors. Its held-out and
calibration texts are those of examples/model (the script checks that they are byte-identical and
does not copy them); see examples/model_moe/README.md.
Training is deterministic up to thread scheduling (fixed seed, 2 threads); it is not part of the
test suite.
"""

import argparse
import json
import math
import os
import random
import struct
import sys
import time

# On a machine shared with other jobs, spinning OpenMP workers cost 5-7x (measured): let them sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FORTUNE_DIR = "/usr/share/games/fortunes"
GERMAN_DIR = "/usr/share/games/fortunes/de"  # Debian package fortunes-de (UTF-8)
# German files left out: ASCII pictures, and English/German phrase pairs (both languages).
GERMAN_SKIP = ("asciiart", "translations")

# Model shape (Qwen2 architecture).
HIDDEN = 128
LAYERS = 4
HEADS = 8
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
INTERMEDIATE = 512
VOCAB = 256
ROPE_THETA = 10000.0
RMS_EPS = 1e-6
CONTEXT = 128
SEED = 1234

HELDOUT_BYTES = 80_000
CALIBRATION_BYTES = 50_000
BILINGUAL_HELDOUT_BYTES = 30_000      # per language (--german)
BILINGUAL_CALIBRATION_BYTES = 30_000
# Mixture of experts (--moe): Qwen2-MoE fields of the same names (Transformers'
# configuration_qwen2_moe.py); every layer sparse (decoder_sparse_step 1, mlp_only_layers []).
NUM_EXPERTS = 16
NUM_EXPERTS_PER_TOK = 2
MOE_INTERMEDIATE = 64
SHARED_EXPERT_INTERMEDIATE = 128
NORM_TOPK_PROB = False       # the Qwen2-MoE default: the top-k softmax weights are not renormalised
ROUTER_AUX_LOSS_COEF = 0.001

PPL_REF_BYTES = 1024   # held-out prefix whose per-token log-probs go to the test data
PPL_REF_CONTEXT = 128
LOGITS_REF_BYTES = 64


# ------------------------------------------------------------------------------------------------
# Data

def load_fortunes(folder=FORTUNE_DIR, skip=("ascii-art",)):
    """Every fortune of the package (plain files, not the .dat indices or .u8 copies, nor
    subfolders such as fortunes-de's de/), as UTF-8 bytes."""
    fortunes = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if "." in name or name in skip or os.path.islink(path) or not os.path.isfile(path):
            continue  # ascii-art is pictures, not English text
        with open(path, "rb") as f:
            data = f.read()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:  # older fortune files are Latin-1
            data = data.decode("latin-1").encode("utf-8")
        for chunk in data.split(b"\n%\n"):
            chunk = chunk.strip(b"%\n")
            if chunk:
                fortunes.append(chunk + b"\n%\n")
    return fortunes


def split_fortunes(fortunes, heldout_bytes=HELDOUT_BYTES, calibration_bytes=CALIBRATION_BYTES):
    """Shuffled with a fixed seed; held-out fortunes first until heldout_bytes, the rest train."""
    rng = random.Random(SEED)
    order = list(range(len(fortunes)))
    rng.shuffle(order)
    heldout, train = [], []
    size = 0
    for i in order:
        if size < heldout_bytes:
            heldout.append(fortunes[i])
            size += len(fortunes[i])
        else:
            train.append(fortunes[i])
    calibration, size = [], 0
    for f in train:  # train is already shuffled: its first fortunes are a random sample
        if size >= calibration_bytes:
            break
        calibration.append(f)
        size += len(f)
    return b"".join(train), b"".join(heldout), b"".join(calibration)


# ------------------------------------------------------------------------------------------------
# Model (Qwen2 semantics, written out so that the C++ forward pass has a plain reference)

class RMSNorm(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + RMS_EPS))


def rope_tables(seq_len, dtype):
    inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float32) / HEAD_DIM))
    t = torch.arange(seq_len, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Expert(torch.nn.Module):
    """One gated SiLU MLP of width n: down(silu(gate x) * up x) (Qwen2MoeMLP)."""

    def __init__(self, n):
        super().__init__()
        self.gate_proj = torch.nn.Linear(HIDDEN, n, bias=False)
        self.up_proj = torch.nn.Linear(HIDDEN, n, bias=False)
        self.down_proj = torch.nn.Linear(n, HIDDEN, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class SparseMoeBlock(torch.nn.Module):
    """Transformers' Qwen2MoeSparseMoeBlock: router logits = gate(x); p = softmax(logits) in F32
    over all experts; the top NUM_EXPERTS_PER_TOK experts by p, with weights p (renormalised to
    sum 1 only if NORM_TOPK_PROB); output = sum over the chosen experts of weight * expert(x)
    + sigmoid(shared_expert_gate(x)) * shared_expert(x). Returns (output, router logits [tokens,
    experts]); like Transformers, only the tokens routed to an expert go through it."""

    def __init__(self):
        super().__init__()
        self.gate = torch.nn.Linear(HIDDEN, NUM_EXPERTS, bias=False)
        self.experts = torch.nn.ModuleList([Expert(MOE_INTERMEDIATE) for _ in range(NUM_EXPERTS)])
        self.shared_expert = Expert(SHARED_EXPERT_INTERMEDIATE)
        self.shared_expert_gate = torch.nn.Linear(HIDDEN, 1, bias=False)

    def forward(self, h):
        shape = h.shape
        x = h.reshape(-1, HIDDEN)
        router_logits = self.gate(x)
        weights = F.softmax(router_logits, dim=-1, dtype=torch.float32)
        weights, chosen = torch.topk(weights, NUM_EXPERTS_PER_TOK, dim=-1)
        if NORM_TOPK_PROB:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        weights = weights.to(x.dtype)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            tokens, slot = torch.where(chosen == e)  # a token chooses an expert at most once
            if tokens.numel():
                out = out.index_add(0, tokens, expert(x[tokens]) * weights[tokens, slot, None])
        out = out + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out.reshape(shape), router_logits


def load_balancing_loss(router_logits):
    """Transformers' load_balancing_loss_func (Switch Transformer eqs. 4-6) without padding: the
    router logits of all layers concatenated ([layers x tokens, experts]), p = softmax;
    f[k, e] = share of rows whose k-th choice is e, P[e] = mean p[:, e];
    loss = NUM_EXPERTS * sum_{k,e} f[k, e] P[e] (1 per top-k slot when perfectly balanced)."""
    p = F.softmax(torch.cat(router_logits, dim=0), dim=-1)
    _, chosen = torch.topk(p, NUM_EXPERTS_PER_TOK, dim=-1)
    tokens_per_expert = F.one_hot(chosen, NUM_EXPERTS).float().mean(0)  # [top_k, experts]
    return (tokens_per_expert * p.mean(0)[None]).sum() * NUM_EXPERTS


def per_layer_balancing_loss(router_logits):
    """The auxiliary loss --moe trains with: load_balancing_loss of each layer's router logits
    alone, averaged over the layers (2 when every layer is balanced), as Megatron-LM's routers
    compute it per layer. Qwen2MoeForCausalLM calls load_balancing_loss_func on all layers at
    once, which pools expert e of every layer into one count and so balances only the pooled
    counts: trained that way (3000 steps, coefficient 0.001) this model left 2-7 of the 16 experts
    per layer under 1 % of the held-out choices (9 under 0.1 %); per layer, every expert has at
    least 1.3 % (1/16 = 6.25 % when balanced) at the same held-out loss (examples/model_moe)."""
    return sum(load_balancing_loss([rl]) for rl in router_logits) / len(router_logits)


class Layer(torch.nn.Module):
    """One decoder layer; its MLP is dense (Qwen2) or, with moe, a SparseMoeBlock (Qwen2-MoE)."""

    def __init__(self, moe=False):
        super().__init__()
        lin = torch.nn.Linear
        self.input_layernorm = RMSNorm(HIDDEN)
        self.q_proj = lin(HIDDEN, HEADS * HEAD_DIM, bias=True)
        self.k_proj = lin(HIDDEN, KV_HEADS * HEAD_DIM, bias=True)
        self.v_proj = lin(HIDDEN, KV_HEADS * HEAD_DIM, bias=True)
        self.o_proj = lin(HEADS * HEAD_DIM, HIDDEN, bias=False)
        self.post_attention_layernorm = RMSNorm(HIDDEN)
        self.moe = moe
        if moe:
            self.mlp = SparseMoeBlock()
        else:
            self.gate_proj = lin(HIDDEN, INTERMEDIATE, bias=False)
            self.up_proj = lin(HIDDEN, INTERMEDIATE, bias=False)
            self.down_proj = lin(INTERMEDIATE, HIDDEN, bias=False)

    def forward(self, x, cos, sin, router_logits=None):
        """router_logits: a list to which a sparse layer appends its router logits."""
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, t, HEADS, HEAD_DIM).transpose(1, 2)
        k = self.k_proj(h).view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
        v = self.v_proj(h).view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = HEADS // KV_HEADS
        # Query head h reads KV head h // rep (as Transformers' repeat_kv).
        k = k[:, :, None].expand(b, KV_HEADS, rep, t, HEAD_DIM).reshape(b, HEADS, t, HEAD_DIM)
        v = v[:, :, None].expand(b, KV_HEADS, rep, t, HEAD_DIM).reshape(b, HEADS, t, HEAD_DIM)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD_DIM)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(b, t, HEADS * HEAD_DIM)
        x = x + self.o_proj(o)
        h = self.post_attention_layernorm(x)
        if self.moe:
            out, logits = self.mlp(h)
            if router_logits is not None:
                router_logits.append(logits)
            return x + out
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(torch.nn.Module):
    def __init__(self, moe=False):
        super().__init__()
        self.moe = moe
        self.embed_tokens = torch.nn.Embedding(VOCAB, HIDDEN)
        self.layers = torch.nn.ModuleList([Layer(moe) for _ in range(LAYERS)])
        self.norm = RMSNorm(HIDDEN)
        for m in self.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
                torch.nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    torch.nn.init.zeros_(m.bias)

    def forward(self, ids, router_logits=None):
        """Logits; with moe and a list router_logits, each layer's router logits are appended."""
        x = self.embed_tokens(ids)
        cos, sin = rope_tables(ids.shape[1], x.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, router_logits)
        return self.norm(x) @ self.embed_tokens.weight.T  # tied lm_head


# ------------------------------------------------------------------------------------------------
# Files

def hf_state_dict(model):
    """Hugging Face Qwen2 (Qwen2-MoE for a moe model) tensor names -> tensors (lm_head tied: not
    stored)."""
    out = {"model.embed_tokens.weight": model.embed_tokens.weight,
           "model.norm.weight": model.norm.weight}
    for i, layer in enumerate(model.layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = layer.input_layernorm.weight
        out[p + "post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            mod = getattr(layer, n)
            out[p + f"self_attn.{n}.weight"] = mod.weight
            if mod.bias is not None:
                out[p + f"self_attn.{n}.bias"] = mod.bias
        if layer.moe:
            block = layer.mlp
            out[p + "mlp.gate.weight"] = block.gate.weight
            out[p + "mlp.shared_expert_gate.weight"] = block.shared_expert_gate.weight
            experts = [(f"mlp.experts.{e}.", ex) for e, ex in enumerate(block.experts)]
            for prefix, ex in experts + [("mlp.shared_expert.", block.shared_expert)]:
                for n in ("gate_proj", "up_proj", "down_proj"):
                    out[p + prefix + f"{n}.weight"] = getattr(ex, n).weight
            continue
        for n in ("gate_proj", "up_proj", "down_proj"):
            out[p + f"mlp.{n}.weight"] = getattr(layer, n).weight
    return {k: v.detach() for k, v in out.items()}


def tensor_bytes(t):
    """(safetensors dtype, little-endian bytes) of a BF16/F32/I32 tensor."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float32:
        return "F32", t.numpy().astype("<f4").tobytes()
    if t.dtype == torch.int32:
        return "I32", t.numpy().astype("<i4").tobytes()
    raise ValueError(f"unsupported dtype {t.dtype}")


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: 8-byte header length, JSON header (padded to 8), raw data."""
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs, offset = [], 0
    for name in sorted(tensors):
        dtype, data = tensor_bytes(tensors[name])
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return offset


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_checkpoint(model, folder):
    os.makedirs(folder, exist_ok=True)
    sd = {k: v.to(torch.bfloat16) for k, v in hf_state_dict(model).items()}
    # Shard 1: embeddings and the first half of the layers; shard 2: the rest and the final norm.
    def shard_of(name):
        if name.startswith("model.layers."):
            return 1 if int(name.split(".")[2]) < LAYERS // 2 else 2
        return 1 if name == "model.embed_tokens.weight" else 2
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    total = 0
    weight_map = {}
    for s in (1, 2):
        part = {k: v for k, v in sd.items() if shard_of(k) == s}
        total += write_safetensors(os.path.join(folder, names[s - 1]), part)
        for k in part:
            weight_map[k] = names[s - 1]
    write_json(os.path.join(folder, "model.safetensors.index.json"),
               {"metadata": {"total_size": total},
                "weight_map": dict(sorted(weight_map.items()))})
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": None,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 1024,
        "max_window_layers": LAYERS,
        "model_type": "qwen2",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": RMS_EPS,
        "rope_scaling": None,
        "rope_theta": ROPE_THETA,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }
    if model.moe:
        config.update({
            "architectures": ["Qwen2MoeForCausalLM"],
            "model_type": "qwen2_moe",
            "decoder_sparse_step": 1,
            "mlp_only_layers": [],
            "moe_intermediate_size": MOE_INTERMEDIATE,
            "norm_topk_prob": NORM_TOPK_PROB,
            "num_experts": NUM_EXPERTS,
            "num_experts_per_tok": NUM_EXPERTS_PER_TOK,
            "output_router_logits": False,
            "router_aux_loss_coef": ROUTER_AUX_LOSS_COEF,
            "shared_expert_intermediate_size": SHARED_EXPERT_INTERMEDIATE,
        })
    write_json(os.path.join(folder, "config.json"), dict(sorted(config.items())))
    write_json(os.path.join(folder, "generation_config.json"),
               {"do_sample": True, "temperature": 0.8, "max_new_tokens": 256})
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        "tokenizer_class": "ByteLevel",
        "qprune_byte_level": True,
        "description": "Byte-level tokenizer without special tokens: token id = byte value "
                       "(0-255) of the UTF-8/ASCII text; decoding concatenates the bytes.",
        "vocab_size": VOCAB,
        "model_max_length": 1024,
    })


# ------------------------------------------------------------------------------------------------
# Evaluation

def window_logprobs(model, ids, context):
    """Log-prob of every token but the first, predicted in windows of `context` tokens that
    overlap by one (window k covers tokens [k(L-1), k(L-1)+L)), so each token is predicted once."""
    out = []
    start = 0
    n = len(ids)
    with torch.no_grad():
        while start + 1 < n:
            w = torch.tensor(ids[start:start + context], dtype=torch.long)[None]
            logp = model(w).log_softmax(-1)[0]
            out.append(logp[:-1].gather(1, w[0, 1:, None])[:, 0])
            start += context - 1
    return torch.cat(out)


def routing_frequencies(model, ids, context):
    """Per layer, the share of the top-k choices that go to each expert ([layers, experts], rows
    sum to 1; 1 / NUM_EXPERTS each when balanced) over `ids` in disjoint windows of `context`."""
    counts = torch.zeros(LAYERS, NUM_EXPERTS, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(ids), context):
            logits = []
            model(torch.tensor(ids[start:start + context], dtype=torch.long)[None], logits)
            for i, rl in enumerate(logits):
                chosen = torch.topk(rl.float().softmax(-1), NUM_EXPERTS_PER_TOK, dim=-1)[1]
                counts[i] += torch.bincount(chosen.reshape(-1), minlength=NUM_EXPERTS).double()
    return counts / counts.sum(1, keepdim=True)


def unigram_bits_per_byte(train, heldout):
    counts = torch.bincount(torch.tensor(list(train)), minlength=VOCAB).double() + 1.0
    logp = (counts / counts.sum()).log()
    return float(-logp[torch.tensor(list(heldout))].mean() / math.log(2))


def round_to_bf16_(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())


def write_reference(model, heldout_ids, ref_dir, source):
    """Test references (F32 compute on the BF16-rounded weights): the logits of the first
    LOGITS_REF_BYTES held-out bytes and the per-token log-probs of the first PPL_REF_BYTES."""
    os.makedirs(ref_dir, exist_ok=True)
    ids = heldout_ids[:LOGITS_REF_BYTES]
    with torch.no_grad():
        logits = model(torch.tensor(ids, dtype=torch.long)[None])[0]
    ppl_ids = heldout_ids[:PPL_REF_BYTES]
    ppl_lp = window_logprobs(model, ppl_ids, PPL_REF_CONTEXT)
    write_safetensors(os.path.join(ref_dir, "reference.safetensors"), {
        "logits_input_ids": torch.tensor(ids, dtype=torch.int32),
        "logits": logits.float(),
        "ppl_input_ids": torch.tensor(ppl_ids, dtype=torch.int32),
        "ppl_logprobs": ppl_lp.float(),
    }, metadata={"format": "pt", "ppl_context": str(PPL_REF_CONTEXT), "source": source})


# ------------------------------------------------------------------------------------------------

def main():
    global HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, HEAD_DIM, LAYERS
    ap = argparse.ArgumentParser()
    ap.add_argument("--measure", action="store_true", help="time 10 steps and exit")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    # A second, independently trained model (BENCHMARKS.md, compression): another initialisation
    # and batch order (--seed) and other widths, written to --out only. The data split keeps SEED,
    # so held-out and calibration texts are the same fortunes for every model.
    ap.add_argument("--out", help="write only the checkpoint and training_summary.json here")
    ap.add_argument("--seed", type=int, default=SEED, help="initialisation and batch seed")
    ap.add_argument("--hidden", type=int, default=HIDDEN)
    ap.add_argument("--intermediate", type=int, default=INTERMEDIATE)
    ap.add_argument("--heads", type=int, default=HEADS)
    ap.add_argument("--kv-heads", type=int, default=KV_HEADS)
    ap.add_argument("--layers", type=int, default=LAYERS)
    # The bilingual model of issue 21 (examples/model_de): English fortunes plus the German ones of
    # fortunes-de, each language split by fortune with the same fixed seed; writes the checkpoint,
    # held-out and calibration texts per language and the summary to --out (default
    # examples/model_de), no test references.
    ap.add_argument("--german", action="store_true",
                    help=f"also train on the German fortunes of {GERMAN_DIR} (fortunes-de)")
    # The mixture-of-experts model of issue 22 (examples/model_moe): Qwen2-MoE sparse blocks in
    # place of the MLPs, the English data split of the first model; writes the checkpoint and the
    # summary to --out (default examples/model_moe) and tests/data/model_moe/reference.safetensors.
    ap.add_argument("--moe", action="store_true",
                    help=f"Qwen2-MoE: {NUM_EXPERTS} experts of width {MOE_INTERMEDIATE}, top "
                         f"{NUM_EXPERTS_PER_TOK}, a shared expert of width "
                         f"{SHARED_EXPERT_INTERMEDIATE}")
    args = ap.parse_args()
    if args.moe and args.german:
        ap.error("--moe and --german do not combine")
    HIDDEN, INTERMEDIATE, LAYERS = args.hidden, args.intermediate, args.layers
    HEADS, KV_HEADS = args.heads, args.kv_heads
    if HIDDEN % HEADS or HEADS % KV_HEADS or (HIDDEN // HEADS) % 2:
        ap.error("--hidden must be an even multiple of --heads, --heads a multiple of --kv-heads")
    HEAD_DIM = HIDDEN // HEADS

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    fortunes = load_fortunes()
    if args.german:
        german = load_fortunes(GERMAN_DIR, GERMAN_SKIP)
        texts = {"en": split_fortunes(fortunes, BILINGUAL_HELDOUT_BYTES, BILINGUAL_CALIBRATION_BYTES),
                 "de": split_fortunes(german, BILINGUAL_HELDOUT_BYTES, BILINGUAL_CALIBRATION_BYTES)}
        # One language after the other: training windows are (but for one) monolingual.
        train = texts["en"][0] + texts["de"][0]
        heldout = texts["en"][1]
        for lang, n in (("en", len(fortunes)), ("de", len(german))):
            print(f"{lang}: fortunes {n}, train {len(texts[lang][0])} B, held-out "
                  f"{len(texts[lang][1])} B, calibration {len(texts[lang][2])} B", flush=True)
    else:
        train, heldout, calibration = split_fortunes(fortunes)
        print(f"fortunes {len(fortunes)}, train {len(train)} B, held-out {len(heldout)} B, "
              f"calibration {len(calibration)} B", flush=True)
    if args.moe:
        # The MoE model shares the first model's texts instead of copying them: check they match.
        for name, text in (("heldout.txt", heldout), ("calibration.txt", calibration)):
            with open(os.path.join(HERE, name), "rb") as f:
                if f.read() != text:
                    sys.exit(f"examples/model/{name} differs from this split of the fortunes")
        print("held-out and calibration texts are byte-identical to examples/model's", flush=True)

    model = Model(args.moe)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters {n_params}", flush=True)
    data = torch.tensor(list(train), dtype=torch.long)
    gen = torch.Generator().manual_seed(args.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    steps = 10 if args.measure else args.steps
    warmup = min(100, steps // 10)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        starts = torch.randint(0, len(data) - CONTEXT - 1, (args.batch,), generator=gen)
        batch = torch.stack([data[s:s + CONTEXT + 1] for s in starts])
        router_logits = [] if args.moe else None
        logits = model(batch[:, :-1], router_logits)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        aux = None
        if args.moe:  # as Qwen2MoeForCausalLM's loss with output_router_logits, balanced per layer
            aux = per_layer_balancing_loss(router_logits)
            total = loss + ROUTER_AUX_LOSS_COEF * aux
        else:
            total = loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1 or args.measure:
            el = time.time() - t0
            print(f"step {step} loss {loss.item():.4f} bpb {loss.item() / math.log(2):.3f} "
                  + (f"aux {aux.item():.4f} " if aux is not None else "")
                  + f"lr {lr_at(step):.2e} elapsed {el:.0f}s ({el / (step + 1):.3f} s/step)",
                  flush=True)
    train_seconds = time.time() - t0
    if args.measure:
        return

    # From here on the model holds exactly the BF16 values the checkpoint stores.
    round_to_bf16_(model)
    model.eval()
    heldout_ids = list(heldout)
    lp = window_logprobs(model, heldout_ids, CONTEXT)
    bpb = float(-lp.mean() / math.log(2))
    uni = unigram_bits_per_byte(train, heldout)
    summary = {
        "parameters": n_params,
        "train_seconds": round(train_seconds, 1),
        "steps": steps, "batch": args.batch, "context": CONTEXT,
        "heldout_bytes": len(heldout),
        "heldout_bits_per_byte": round(bpb, 4),
        "heldout_perplexity": round(2 ** bpb, 4),
        "unigram_bits_per_byte": round(uni, 4),
        "unigram_perplexity": round(2 ** uni, 4),
    }
    if args.german:
        del summary["heldout_bytes"], summary["heldout_bits_per_byte"], summary["heldout_perplexity"]
        del summary["unigram_bits_per_byte"], summary["unigram_perplexity"]
        summary["train_bytes"] = {lang: len(texts[lang][0]) for lang in texts}
        for lang in texts:
            tr, ho, cal = texts[lang]
            b = float(-window_logprobs(model, list(ho), CONTEXT).mean() / math.log(2))
            u = unigram_bits_per_byte(train, ho)
            summary[f"heldout_{lang}"] = {"bytes": len(ho), "bits_per_byte": round(b, 4),
                                         "perplexity": round(2 ** b, 4),
                                         "unigram_bits_per_byte": round(u, 4)}
        summary.update({"seed": args.seed, "hidden": HIDDEN, "intermediate": INTERMEDIATE,
                        "heads": HEADS, "kv_heads": KV_HEADS, "layers": LAYERS,
                        "lr": args.lr})
    if args.moe:
        # Parameters one token goes through: all but the experts it does not choose.
        per_expert = sum(p.numel() for p in model.layers[0].mlp.experts[0].parameters())
        freq = routing_frequencies(model, heldout_ids, CONTEXT)
        summary.update({
            "active_parameters_per_token":
                n_params - LAYERS * (NUM_EXPERTS - NUM_EXPERTS_PER_TOK) * per_expert,
            "final_train_loss_bits_per_byte": round(loss.item() / math.log(2), 4),
            "final_router_aux_loss": round(aux.item(), 4),
            "router_aux_loss": "load_balancing_loss_func of Transformers applied to each layer's "
                               "router logits and averaged over the layers (2 when balanced)",
            "seed": args.seed, "hidden": HIDDEN, "heads": HEADS, "kv_heads": KV_HEADS,
            "layers": LAYERS, "lr": args.lr,
            "num_experts": NUM_EXPERTS, "num_experts_per_tok": NUM_EXPERTS_PER_TOK,
            "moe_intermediate_size": MOE_INTERMEDIATE,
            "shared_expert_intermediate_size": SHARED_EXPERT_INTERMEDIATE,
            "router_aux_loss_coef": ROUTER_AUX_LOSS_COEF,
            "heldout_routing": {
                "description": f"per layer, the share of the top-{NUM_EXPERTS_PER_TOK} choices "
                               f"made on the held-out text (disjoint windows of {CONTEXT} bytes) "
                               f"that go to each expert 0-{NUM_EXPERTS - 1}; rows sum to 1, "
                               f"1/{NUM_EXPERTS} = {1 / NUM_EXPERTS:.4f} each when balanced",
                "min": round(float(freq.min()), 4), "max": round(float(freq.max()), 4),
                "layers": [[round(float(v), 4) for v in row] for row in freq],
            },
        })
    print(json.dumps(summary, indent=2), flush=True)

    if args.german:
        out = args.out or os.path.join(os.path.dirname(HERE), "model_de")
        write_checkpoint(model, os.path.join(out, "checkpoint"))
        for lang in texts:
            for kind, data in (("heldout", texts[lang][1]), ("calibration", texts[lang][2])):
                with open(os.path.join(out, f"{kind}_{lang}.txt"), "wb") as f:
                    f.write(data)
        write_json(os.path.join(out, "training_summary.json"), summary)
        print(f"wrote {out}: checkpoint, heldout_en/de.txt, calibration_en/de.txt")
        return

    if args.moe:
        out = args.out or os.path.join(os.path.dirname(HERE), "model_moe")
        write_checkpoint(model, os.path.join(out, "checkpoint"))
        write_json(os.path.join(out, "training_summary.json"), summary)
        if args.out:  # another model than the published one: leave the test references alone
            print(f"wrote {out}: checkpoint, training_summary.json")
            return
        write_reference(model, heldout_ids, os.path.join(ROOT, "tests", "data", "model_moe"),
                        "examples/model/train.py --moe")
        print(f"wrote {out}: checkpoint, training_summary.json; "
              "tests/data/model_moe/reference.safetensors")
        return

    if args.out:
        summary.update({"seed": args.seed, "hidden": HIDDEN, "intermediate": INTERMEDIATE,
                        "heads": HEADS, "kv_heads": KV_HEADS, "layers": LAYERS})
        write_checkpoint(model, os.path.join(args.out, "checkpoint"))
        write_json(os.path.join(args.out, "training_summary.json"), summary)
        print(f"wrote {args.out}/checkpoint")
        return

    write_checkpoint(model, os.path.join(HERE, "checkpoint"))
    with open(os.path.join(HERE, "heldout.txt"), "wb") as f:
        f.write(heldout)
    with open(os.path.join(HERE, "calibration.txt"), "wb") as f:
        f.write(calibration)
    write_json(os.path.join(HERE, "training_summary.json"), summary)

    write_reference(model, heldout_ids, os.path.join(ROOT, "tests", "data", "model"),
                    "examples/model/train.py")
    print("wrote checkpoint, heldout.txt, calibration.txt, tests/data/model/reference.safetensors")


if __name__ == "__main__":
    sys.exit(main())
