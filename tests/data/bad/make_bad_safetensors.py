#!/usr/bin/env python3
"""Writes the malformed checkpoint fixtures of tests/data/bad/ (python3 standard library only).

Run once from anywhere: `python3 tests/data/bad/make_bad_safetensors.py`; the outputs are
committed next to this script, and tests/test_safetensors.cpp / test_checkpoint.cpp check that
each one gives its error (with the byte offset or the field name). Each file is a small valid
layout with exactly one defect, described in FIXTURES below.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def header_bytes(header):
    """Header JSON as the reference writes it: compact, padded with spaces to a multiple of 8."""
    text = json.dumps(header, separators=(",", ":")).encode()
    return text + b" " * ((8 - len(text) % 8) % 8)


def safetensors(header, data, declared_length=None):
    h = header_bytes(header) if isinstance(header, dict) else header
    n = len(h) if declared_length is None else declared_length
    return struct.pack("<Q", n) + h + data


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


GOOD = {"a": entry("F32", [2, 2], 0, 16), "b": entry("F32", [2], 16, 24)}
GOOD_DATA = f32(1, 2, 3, 4, 5, 6)


def fixtures():
    good = safetensors(GOOD, GOOD_DATA)
    yield "safetensors_truncated.safetensors", good[:-5]  # last 5 data bytes cut off
    yield "safetensors_short.safetensors", good[:5]  # not even the 8-byte length
    h = header_bytes(GOOD)
    # claims a header 1000 bytes longer than the file holds
    yield "safetensors_header_too_long.safetensors", safetensors(
        h, GOOD_DATA, declared_length=len(h) + len(GOOD_DATA) + 1000)
    yield "safetensors_header_over_limit.safetensors", safetensors(
        h, GOOD_DATA, declared_length=100_000_001)
    yield "safetensors_overlap.safetensors", safetensors(
        {"a": entry("F32", [2, 2], 0, 16), "b": entry("F32", [2], 12, 20)}, GOOD_DATA[:20])
    yield "safetensors_gap.safetensors", safetensors(
        {"a": entry("F32", [2, 2], 0, 16), "b": entry("F32", [2], 20, 28)}, f32(*range(7)))
    yield "safetensors_trailing.safetensors", safetensors(GOOD, GOOD_DATA + b"\0\0\0\0")
    yield "safetensors_size_mismatch.safetensors", safetensors(
        {"a": entry("F32", [2, 3], 0, 16), "b": entry("F32", [2], 16, 24)}, GOOD_DATA)
    yield "safetensors_not_json.safetensors", safetensors(b"{\"a\": nope}     ", b"")
    yield "safetensors_not_object.safetensors", safetensors(b"[1, 2, 3]", b"")
    yield "safetensors_unknown_dtype.safetensors", safetensors(
        {"a": entry("F32", [2, 2], 0, 16), "q": entry("X7_E9", [4], 16, 24)}, GOOD_DATA)
    yield "safetensors_bad_metadata.safetensors", safetensors(
        {"__metadata__": {"format": "pt", "step": 3}, **GOOD}, GOOD_DATA)
    yield "safetensors_shape_overflow.safetensors", safetensors(
        {"a": entry("F32", [2**62, 8], 0, 16), "b": entry("F32", [2], 16, 24)}, GOOD_DATA)
    yield "safetensors_nan.safetensors", safetensors(GOOD, f32(1, 2, float("nan"), 4, 5, 6))
    # config.json fixtures
    base = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "vocab_size": 10}
    missing = dict(base)
    del missing["intermediate_size"]
    yield "config_missing_field.json", (json.dumps(missing, indent=2) + "\n").encode()
    unknown = dict(base, architectures=["GPT2LMHeadModel"], model_type="gpt2")
    yield "config_unknown_architecture.json", (json.dumps(unknown, indent=2) + "\n").encode()


def main():
    for name, content in fixtures():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(content)
        print("%-45s %5d bytes" % (name, len(content)))


if __name__ == "__main__":
    main()
