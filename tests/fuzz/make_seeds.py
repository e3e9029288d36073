#!/usr/bin/env python3
"""Generated seed inputs for the fuzz targets: the shapes of known defect classes, so each target
starts next to them instead of hoping byte mutations of 1 KB fixtures ever get there.

    tests/fuzz/make_seeds.py TARGET CORPUS_DIR

writes gen_* files into CORPUS_DIR (skipping those already there; tests/fuzz/run.sh calls it for
each target before a run; nothing here is committed). Every file is at most 4 MiB (run.sh's
-max_len). What each target gets:

  JSON readers (json, masks, config, index, solution): the fixture with each top-level value in
    turn replaced by arrays nested 100,000 deep; the whole file nested 100,000 deep ([ ] and
    {"a": }); each list or object value widened to 50,000 elements (unique keys).
  safetensors, calibration: a valid file with 50,000 tensors (a ~3 MB header); the fixture with a
    __metadata__ value and a shape nested 100,000 deep.
  text QUBO formats: the fixtures with each integer of the first three lines (the declared sizes)
    set to 10^8, 2^31 - 1 and 2^62; `p qubo 0 100000000 0 0`; the last line repeated to ~3 MB.
  gzip: toy.qubo gzipped; the huge header gzipped; toy.qubo followed by a member inflating to
    1.5 GiB of newlines (1.5 MB on disk).
  checkpoint: the tiny test checkpoint as one input (config, index, shards; see fuzz_readers.hpp),
    unsharded and in two shards, plus configs whose sizes disagree with the tensor shapes.
"""
import json
import os
import struct
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
MAX_LEN = 4 << 20
DEPTH = 100_000
WIDTH = 50_000
SEPARATOR = b"\n@@qprune-file@@\n"  # kCheckpointPartSeparator of fuzz_readers.hpp


def read(rel):
    with open(os.path.join(DATA, rel), "rb") as f:
        return f.read()


def deep(depth=DEPTH, opener="[", closer="]", inner="0"):
    return opener * depth + inner + closer * depth


# ---- JSON -----------------------------------------------------------------------------------


def json_seeds(base_name, text):
    out = {}
    out["deep_array"] = deep().encode()
    out["deep_object"] = deep(opener='{"a":', closer="}").encode()
    out["deep_unclosed"] = ("[" * DEPTH).encode()
    try:
        doc = json.loads(text)
    except ValueError:
        return out
    if not isinstance(doc, dict):
        return out
    for key, value in doc.items():
        # The value as a marker, replaced by the deep text after dumping (json.dumps would
        # recurse too deep itself).
        marked = dict(doc)
        marked[key] = "@@DEEP@@"
        out[f"{base_name}_deep_{key}"] = json.dumps(marked).replace('"@@DEEP@@"', deep()).encode()
        if isinstance(value, list) and value:
            wide = dict(doc)
            wide[key] = [value[i % len(value)] for i in range(WIDTH)]
            out[f"{base_name}_wide_{key}"] = json.dumps(wide).encode()
        elif isinstance(value, dict) and value:
            items = list(value.items())
            wide = dict(doc)
            wide[key] = {f"{items[i % len(items)][0]}#{i}": items[i % len(items)][1]
                         for i in range(WIDTH)}
            out[f"{base_name}_wide_{key}"] = json.dumps(wide).encode()
    return out


# ---- safetensors ----------------------------------------------------------------------------


def safetensors(tensors, metadata=None, header_text=None):
    """tensors: list of (name, dtype, shape, bytes); offsets tiled in order."""
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = (header_text if header_text is not None else json.dumps(header)).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def parse_safetensors(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", None)
    tensors = []
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        tensors.append((name, info["dtype"], info["shape"], data[b:e]))
    return tensors, metadata


def safetensors_seeds(fixture):
    tensors, metadata = parse_safetensors(read(fixture))
    out = {}
    many = tensors + [(f"t.{i}", "F32", [1], struct.pack("<f", 1.0)) for i in range(WIDTH)]
    out["wide_50k_tensors"] = safetensors(many, metadata)
    marked = {"__metadata__": {"format": "@@DEEP@@"}}
    b, e = 0, 0
    for name, dtype, shape, raw in tensors:
        b, e = e, e + len(raw)
        marked[name] = {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}
    text = json.dumps(marked).replace('"@@DEEP@@"', deep())
    out["deep_metadata"] = safetensors(tensors, header_text=text)
    name0 = tensors[0][0]
    marked2 = json.loads(json.dumps(marked))
    marked2["__metadata__"] = {"format": "pt"}
    marked2[name0]["shape"] = "@@DEEP@@"
    text = json.dumps(marked2).replace('"@@DEEP@@"', deep())
    out["deep_shape"] = safetensors(tensors, header_text=text)
    return out


# ---- text QUBO formats ----------------------------------------------------------------------

TEXT_FIXTURES = {
    "qbsolv": ["formats/toy.qubo"],
    "coo": ["formats/toy.coo"],
    "mqlib": ["formats/toy.mqlib"],
    "maxcut": ["formats/square.gset"],
    "beasley": ["formats/toy.txt"],
    "biqmac": ["formats/toy.sparse"],
    "qplib": ["formats/toy.qplib"],
    "mtx": ["formats/toy.mtx", "formats/toy_general.mtx"],
}
HUGE = [b"100000000", b"2147483647", b"4611686018427387904"]


def text_seeds(fixture):
    import re
    text = read(fixture)
    out = {}
    lines = text.split(b"\n")
    content = [i for i, l in enumerate(lines) if re.search(rb"\d", l)][:3]
    for li in content:
        for m_index, m in enumerate(re.finditer(rb"\d+", lines[li])):
            for h_index, huge in enumerate(HUGE):
                changed = list(lines)
                changed[li] = lines[li][:m.start()] + huge + lines[li][m.end():]
                out[f"huge_l{li}_n{m_index}_{h_index}"] = b"\n".join(changed)
    last = next((l for l in reversed(lines) if l.strip()), b"")
    if last:
        out["long_repeat"] = text + (last + b"\n") * ((3 << 20) // (len(last) + 1))
    return out


# ---- gzip -----------------------------------------------------------------------------------


def gzip_member(text, repeat=0, fill=b"\n"):
    # Z_RLE: a run compresses as well as with the default strategy, four times faster.
    z = zlib.compressobj(9, zlib.DEFLATED, 31, 9, zlib.Z_RLE if repeat else zlib.Z_DEFAULT_STRATEGY)
    out = [z.compress(text)]
    chunk = fill * (1 << 20)
    for _ in range(repeat >> 20):
        out.append(z.compress(chunk))
    out.append(z.flush())
    return b"".join(out)


def gzip_seeds():
    toy = read("formats/toy.qubo")
    return {
        "toy_gz": gzip_member(toy),
        "huge_header_gz": gzip_member(b"p qubo 0 100000000 0 0\n"),
        # A callable: built (seconds) only when the corpus lacks it.
        "bomb_1536MiB_newlines_gz": lambda: gzip_member(toy) + gzip_member(b"", repeat=3 << 29),
    }


# ---- checkpoint -----------------------------------------------------------------------------


def checkpoint_seeds():
    folder = "checkpoints/tiny-llama-gqa"
    config = json.loads(read(folder + "/config.json"))
    blob = read(folder + "/model.safetensors")
    tensors, metadata = parse_safetensors(blob)
    shards = [
        safetensors([t for t in tensors if i == (".layers.1." in t[0])], metadata) for i in (0, 1)]
    weight_map = {t[0]: f"model-0000{1 + (('.layers.1.' in t[0]))}-of-00002.safetensors"
                  for t in tensors}
    index = json.dumps({"metadata": {"total_size": sum(len(t[3]) for t in tensors)},
                        "weight_map": weight_map}, indent=2).encode()

    def join(cfg, idx, parts):
        return SEPARATOR.join([json.dumps(cfg, indent=2).encode(), idx] + parts)

    out = {"single": join(config, b"", [blob]), "two_shards": join(config, index, shards)}
    # Configs that disagree with the tensors (the loader must compare, not trust either).
    for key, value in [("intermediate_size", 24), ("intermediate_size", 6), ("hidden_size", 16),
                       ("num_attention_heads", 8), ("num_attention_heads", 2),
                       ("num_key_value_heads", 4), ("num_key_value_heads", 1), ("head_dim", 4),
                       ("head_dim", 1), ("num_hidden_layers", 3), ("vocab_size", 32)]:
        cfg = dict(config, **{key: value})
        out[f"single_{key}_{value}"] = join(cfg, b"", [blob])
        out[f"two_shards_{key}_{value}"] = join(cfg, index, shards)
    return out


def seeds_for(target):
    if target in ("json", "masks", "config", "index", "solution"):
        base = {"json": "formats/toy.json", "masks": "masks/toy.json",
                "config": "checkpoints/tiny-llama-gqa/config.json",
                "index": "checkpoints/tiny-llama-gqa.index.json",
                "solution": "bad/sol_json_wrong_length.json"}[target]
        return json_seeds(os.path.splitext(os.path.basename(base))[0], read(base))
    if target == "safetensors":
        return safetensors_seeds("checkpoints/tiny-llama-gqa/model.safetensors")
    if target == "calibration":
        return safetensors_seeds("checkpoints/tiny-llama-gqa.stats.safetensors")
    if target in TEXT_FIXTURES:
        out = {}
        for fixture in TEXT_FIXTURES[target]:
            out.update(text_seeds(fixture))
        if target == "qbsolv":
            out["p_qubo_0_100000000_0_0"] = b"p qubo 0 100000000 0 0\n"
        return out
    if target == "gzip":
        return gzip_seeds()
    if target == "checkpoint":
        return checkpoint_seeds()
    raise SystemExit(f"make_seeds.py: unknown target {target}")


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: tests/fuzz/make_seeds.py TARGET CORPUS_DIR")
    target, corpus = sys.argv[1], sys.argv[2]
    os.makedirs(corpus, exist_ok=True)
    made = 0
    for name, content in seeds_for(target).items():
        path = os.path.join(corpus, "gen_" + name.replace("/", "_"))
        if os.path.exists(path):
            continue
        if callable(content):
            content = content()
        if len(content) > MAX_LEN:
            continue
        with open(path, "wb") as f:
            f.write(content)
        made += 1
    print(f"{target}: {made} generated seeds in {corpus}")


if __name__ == "__main__":
    main()
