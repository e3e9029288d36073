#!/usr/bin/env python3
"""Builds the test tokenizers of tests/test_tokenizer.cpp: BPE merges learned from the example
model's calibration text (examples/model/calibration.txt), written as tokenizer.json files in the
layouts Hugging Face uses:
  bytelevel_gpt2.json        ByteLevel pre-tokenizer with use_regex (GPT-2), merges as "a b"
  bytelevel_gpt2_prefix.json the same with add_prefix_space
  bytelevel_llama3.json      Sequence[Split(Llama 3 regex), ByteLevel], ignore_merges, merges as [a, b]
  bytelevel_qwen2.json       NFC normalizer, Sequence[Split(Qwen2 regex), ByteLevel]
  sentencepiece.json         Llama 2 style: Prepend("▁") + Replace(" ", "▁"), byte_fallback, <0xXX>
  sentencepiece_metaspace.json  the same vocabulary with the Metaspace pre-tokenizer (prepend_scheme
                             "first", split false) of newer Llama 2 conversions, no normalizer
All byte-level ones share one vocabulary (256 byte symbols, then one token per merge, then the added
tokens <|endoftext|>, <|im_start|>, <|im_end|> (special) and [EXTRA] (not special)). Training is
the plain BPE loop (most frequent pair, ties to the smallest pair), so the output is deterministic.
Usage: python3 make_test_tokenizers.py (writes next to itself; needs the `regex` module). Then run
reference_tokenizer.py to compute the expected ids."""
import collections
import json
import os

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
NUM_MERGES = 400
SP_MERGES = 300


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def learn(words, num_merges):
    """words: Counter of tuples of symbols. Returns the merges in order."""
    words = {w: c for w, c in words.items()}
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return merges


def added(id_, content, special):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": not special, "special": special}


def bpe_model(vocab, merges, as_arrays, **extra):
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False}
    model.update(extra)
    model["vocab"] = vocab
    model["merges"] = [[a, b] for a, b in merges] if as_arrays else [f"{a} {b}" for a, b in merges]
    return model


def write(name, doc):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    text = open(os.path.join(ROOT, "examples", "model", "calibration.txt"), encoding="utf-8").read()
    b2u = bytes_to_unicode()

    # Byte-level BPE.
    words = collections.Counter()
    for piece in regex.findall(GPT2, text):
        words[tuple(b2u[b] for b in piece.encode("utf-8"))] += 1
    merges = learn(words, NUM_MERGES)
    vocab = {}
    for ch in b2u.values():
        vocab[ch] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    n = len(vocab)
    added_tokens = [added(n, "<|endoftext|>", True), added(n + 1, "<|im_start|>", True),
                    added(n + 2, "<|im_end|>", True), added(n + 3, "[EXTRA]", False)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": False}

    def doc(normalizer, pre, model, post=None):
        return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
                "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post,
                "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                            "use_regex": True}, "model": model}

    def split(pattern):
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            byte_level]}

    write("bytelevel_gpt2.json",
          doc(None, dict(byte_level, use_regex=True), bpe_model(vocab, merges, False)))
    write("bytelevel_gpt2_prefix.json",
          doc(None, dict(byte_level, use_regex=True, add_prefix_space=True),
              bpe_model(vocab, merges, False)))
    llama3_post = {"type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                              {"Sequence": {"id": "A", "type_id": 0}}],
                   "pair": [], "special_tokens": {}}
    write("bytelevel_llama3.json",
          doc(None, split(LLAMA3), bpe_model(vocab, merges, True, ignore_merges=True), llama3_post))
    write("bytelevel_qwen2.json",
          doc({"type": "NFC"}, split(QWEN2), bpe_model(vocab, merges, False)))

    # SentencePiece-style BPE (Llama 2): text -> "▁" + text with spaces as "▁"; words for training
    # start before every "▁", so no merge has a right side starting with "▁".
    sp = "▁" + text.replace(" ", "▁")
    chars = collections.Counter(sp)
    base = sorted(c for c, k in chars.items() if k >= 3 and c not in "\r")
    sp_words = collections.Counter(tuple(w) for w in regex.findall(r"▁?[^▁]*", sp) if w)
    sp_words = collections.Counter({tuple(c for c in w): k for w, k in sp_words.items()
                                    if all(c in base for c in w)})
    sp_merges = learn(sp_words, SP_MERGES)
    assert not any(b.startswith("▁") for _, b in sp_merges)
    sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        sp_vocab[f"<0x{b:02X}>"] = len(sp_vocab)
    for c in base:
        sp_vocab.setdefault(c, len(sp_vocab))
    for a, b in sp_merges:
        sp_vocab.setdefault(a + b, len(sp_vocab))
    sp_doc = {"version": "1.0", "truncation": None, "padding": None,
              "added_tokens": [added(0, "<unk>", True), added(1, "<s>", True), added(2, "</s>", True)],
              "normalizer": {"type": "Sequence", "normalizers": [
                  {"type": "Prepend", "prepend": "▁"},
                  {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
              "pre_tokenizer": None,
              "post_processor": {"type": "TemplateProcessing",
                                 "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                            {"Sequence": {"id": "A", "type_id": 0}}],
                                 "pair": [], "special_tokens": {}},
              "decoder": None,
              "model": bpe_model(sp_vocab, sp_merges, False, unk_token="<unk>", fuse_unk=True,
                                 byte_fallback=True)}
    write("sentencepiece.json", sp_doc)
    meta_doc = dict(sp_doc, normalizer=None, pre_tokenizer={
        "type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False})
    write("sentencepiece_metaspace.json", meta_doc)
    write("sentencepiece_config.json", {"add_bos_token": True, "add_eos_token": False,
                                        "bos_token": "<s>", "eos_token": "</s>"})
    print(f"byte-level: {len(vocab)} tokens, {len(merges)} merges; sentencepiece: "
          f"{len(sp_vocab)} tokens, {len(sp_merges)} merges")


if __name__ == "__main__":
    main()
