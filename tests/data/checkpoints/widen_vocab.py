# A copy of a checkpoint with its embedding and lm_head widened (or cut) to VOCAB tokens, the new
# rows random multiples of 1/64: a model for the test tokenizers of tests/data/tokenizer.
# Usage: python3 widen_vocab.py SOURCE_FOLDER NEW_FOLDER VOCAB
import json, os, random, struct, sys
src, dst, V = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst)
cfg = json.load(open(os.path.join(src, "config.json")))
cfg["vocab_size"] = V
json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=1)
blob = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
rng = random.Random(5)
out, data = {}, b""
for name in sorted(k for k in header if k != "__metadata__"):
    info = header[name]
    if name in ("lm_head.weight", "model.embed_tokens.weight"):
        shape = [V, info["shape"][1]]
        raw = b"".join(struct.pack("<f", rng.randint(-64, 64) / 64.0) for _ in range(V * shape[1]))
    else:
        shape = info["shape"]
        b, e = info["data_offsets"]
        raw = blob[8 + n + b:8 + n + e]
    out[name] = {"dtype": info["dtype"], "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(out, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(os.path.join(dst, "model.safetensors"), "wb").write(struct.pack("<Q", len(text)) + text + data)
