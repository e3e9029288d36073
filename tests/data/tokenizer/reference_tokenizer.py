#!/usr/bin/env python3
"""Independent reference for tests/test_tokenizer.cpp: encodes text with a tokenizer.json the way
Hugging Face `tokenizers` does, written from its documented behaviour, with the `regex` module
running the pre-tokenizer's own regular expression (the C++ code matches the known expressions by
hand instead) and unicodedata for NFC. Covers what the test tokenizers use: added tokens split out
first (leftmost-longest), normalizers NFC / Prepend / Replace, pre-tokenizers ByteLevel (with or
without use_regex and add_prefix_space) and Sequence[Split(regex, Isolated), ByteLevel], and the
BPE model (merges by rank, leftmost first; ignore_merges; byte_fallback with <0xXX>; unk, fuse_unk).
BPE here is the plain loop "merge the lowest-ranked adjacent pair, leftmost first, until none is
left" (quadratic, fine for tests); for the SentencePiece-style tokenizer the text is cut before
every "▁" first, which is exact because no merge of that vocabulary has a right side starting
with "▁" (make_test_tokenizers.py asserts it).
Usage: python3 reference_tokenizer.py   writes expected.json next to itself: for every test
tokenizer, the ids of mixed.txt and of each string in cases.json."""
import json
import os
import unicodedata

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


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


class Reference:
    def __init__(self, path):
        doc = json.load(open(path, encoding="utf-8"))
        m = doc["model"]
        self.vocab = dict(m["vocab"])
        self.ranks = {}
        for i, merge in enumerate(m["merges"]):
            a, b = merge.split(" ") if isinstance(merge, str) else merge
            self.ranks[(a, b)] = i
        self.ignore_merges = m.get("ignore_merges", False)
        self.byte_fallback = m.get("byte_fallback", False)
        self.unk = m.get("unk_token")
        self.fuse_unk = m.get("fuse_unk", False)
        self.added = {t["content"]: t["id"] for t in doc["added_tokens"]}
        order = sorted(self.added, key=lambda s: -len(s))
        self.added_re = regex.compile("|".join(regex.escape(s) for s in order)) if order else None
        self.normalizers = []
        norm = doc["normalizer"]
        for n in ([] if norm is None else norm["normalizers"] if norm["type"] == "Sequence" else [norm]):
            self.normalizers.append(n)
        self.splits, self.byte_level, self.prefix_space, self.metaspace = [], False, False, None
        pre = doc["pre_tokenizer"]
        for p in ([] if pre is None else pre["pretokenizers"] if pre["type"] == "Sequence" else [pre]):
            if p["type"] == "Split":
                self.splits.append(regex.compile(p["pattern"]["Regex"]))
            elif p["type"] == "ByteLevel":
                self.byte_level = True
                self.prefix_space = p["add_prefix_space"]
                if p.get("use_regex", True):
                    self.splits.append(regex.compile(GPT2))
            elif p["type"] == "Metaspace":
                assert not p["split"]
                self.metaspace = p["prepend_scheme"]
            else:
                raise ValueError(p["type"])
        self.b2u = bytes_to_unicode()

    def normalize(self, s):
        for n in self.normalizers:
            if n["type"] == "NFC":
                s = unicodedata.normalize("NFC", s)
            elif n["type"] == "Prepend":
                s = n["prepend"] + s if s else s
            elif n["type"] == "Replace":
                s = s.replace(n["pattern"]["String"], n["content"])
            else:
                raise ValueError(n["type"])
        return s

    def bpe(self, symbols):
        while len(symbols) > 1:
            best = None
            for i in range(len(symbols) - 1):
                r = self.ranks.get((symbols[i], symbols[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2:]
        return symbols

    def encode_word(self, word):
        if self.byte_level:
            mapped = "".join(self.b2u[b] for b in word.encode("utf-8"))
            if self.ignore_merges and mapped in self.vocab:
                return [self.vocab[mapped]]
            return [self.vocab[s] for s in self.bpe(list(mapped))]
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        # Characters not in the vocabulary become their UTF-8 bytes <0xXX> (or unk).
        symbols, ids_of = [], {}
        for ch in word:
            if ch in self.vocab:
                symbols.append(ch)
            elif self.byte_fallback:
                symbols.extend(f"<0x{b:02X}>" for b in ch.encode("utf-8"))
            else:
                if not (self.fuse_unk and symbols and symbols[-1] == self.unk):
                    symbols.append(self.unk)
        ids = []
        # Byte tokens and unk never merge with neighbours here (no merge names them), so BPE runs on
        # the runs of ordinary characters between them.
        run = []
        for s in symbols + [None]:
            if s is not None and not (s.startswith("<0x") and len(s) == 6) and s != self.unk:
                run.append(s)
                continue
            ids.extend(self.vocab[t] for t in self.bpe(run))
            run = []
            if s is not None:
                ids.append(self.vocab[s])
        return ids

    def metaspace_text(self, s, at_start):
        s = s.replace(" ", "▁")
        scheme = self.metaspace
        if (scheme == "always" or (scheme == "first" and at_start)) and not s.startswith("▁"):
            s = "▁" + s
        return s

    def encode(self, text):
        pieces, pos = [], 0
        if self.added_re is not None:
            for m in self.added_re.finditer(text):
                pieces.append((text[pos:m.start()], False))
                pieces.append((m.group(), True))
                pos = m.end()
        pieces.append((text[pos:], False))
        ids = []
        for k, (piece, is_added) in enumerate(pieces):
            if is_added:
                ids.append(self.added[piece])
                continue
            if not piece:
                continue
            s = self.normalize(piece)
            if self.metaspace is not None:
                s = self.metaspace_text(s, k == 0)
            if self.prefix_space and not s.startswith(" "):
                s = " " + s
            words = [s]
            for rx in self.splits:
                words = [w for word in words for w in rx.findall(word)]
            if not self.splits and not self.byte_level:
                # SentencePiece style: one word, cut before every "▁" (exact, see above).
                words = [w for word in words for w in regex.findall(r"▁?[^▁]*", word) if w]
            for w in words:
                ids.extend(self.encode_word(w))
        return ids


def main():
    text = open(os.path.join(HERE, "mixed.txt"), encoding="utf-8", newline="").read()
    cases = json.load(open(os.path.join(HERE, "cases.json"), encoding="utf-8"))
    out = {}
    for name in ["bytelevel_gpt2", "bytelevel_gpt2_prefix", "bytelevel_llama3", "bytelevel_qwen2",
                 "sentencepiece", "sentencepiece_metaspace"]:
        ref = Reference(os.path.join(HERE, name + ".json"))
        out[name] = {"mixed": ref.encode(text), "cases": [ref.encode(c) for c in cases]}
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        f.write("{\n")
        for i, (name, v) in enumerate(out.items()):
            f.write(f' "{name}": {{\n  "mixed": {json.dumps(v["mixed"])},\n  "cases": [\n')
            f.write(",\n".join("   " + json.dumps(c) for c in v["cases"]))
            f.write("\n  ]\n }" + ("," if i + 1 < len(out) else "") + "\n")
        f.write("}\n")
    for name, v in out.items():
        print(name, len(v["mixed"]), "tokens for mixed.txt")


if __name__ == "__main__":
    main()
