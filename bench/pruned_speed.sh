#!/usr/bin/env bash
# Speed of pruned models (issue 19 point 5): tokens per second of prompt processing (pp) and of
# generation (tg), original vs pruned at 40 % of MLP neurons + 50 % of attention heads removed,
# under llama.cpp (bench/llama_speed.mjs: node-llama-cpp's prebuilt CPU library) and in qprune's
# own forward pass (`qprune perplexity`, whose report gives the seconds of its forward passes;
# qprune has no KV cache and no generation loop, so it has a pp figure only).
#
# Three sets of models, built once under WORK:
#   example: examples/model/checkpoint (4 layers, hidden 128, ~1 M parameters) and its prunes by
#            `qprune prune --sparsity 0.4 --head-sparsity 0.5 --allocation uniform|global` (the
#            calibration of examples/run), each converted with `qprune gguf` (the global one's
#            padded Hugging Face folder converts unpadded, as llama.cpp's `deci` architecture),
#            plus the uniform one with --multiple-of 32 (320 kept neurons, not 307: llama.cpp's
#            BF16 matrix products are faster when the inner dimension is a multiple of 32);
#   overhead: synthetic models of the example's shape with 1 and 4 layers (random weights), so the
#            per-token cost splits into a per-layer part and a fixed part (llama.cpp only);
#   7b-layer: one Llama-2-7B-shaped layer (hidden 4096, intermediate 11008, 32 heads, 32 KV heads,
#            vocabulary 256 so embedding and output are negligible, BF16) from
#            bench/make_synthetic_checkpoint, masked data-free (`qprune mask --method magnitude`:
#            the widths matter for speed, not which units) to 40 % MLP + 50 % heads, uniform; plus
#            the same rounded with --multiple-of 256 (6656 kept neurons; llama.cpp only). With one
#            layer, global allocation is the uniform one.
# Measurement: ROUNDS rounds; in each, every model in turn (original, then the prunes) for every
# thread count in THREADS (the overhead set at the first only), so the models of a round see the
# same machine load. After a warm-up pass, one timed pass per model and round for the 7B layer,
# the median of REPS passes for the tiny models (a pp pass of those takes ~20 ms). The report
# gives medians over rounds of tok/s and of the per-round ratio to the original (with the range
# of that ratio), and the load average.
#
# Usage: bench/pruned_speed.sh   (from anywhere; run under `flock /tmp/qprune-build.lock` to keep
#        builds out while measuring)
#   env: BUILD (build) WORK (/tmp/qprune-speed) ROUNDS (5) REPS (3) THREADS ("1 2")
#        SETS ("example overhead 7b-layer") PROMPT (512) GEN (128) GEN_7B (32)
#        QP_TOKENS (16384) QP_TOKENS_7B (512)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
WORK=${WORK:-/tmp/qprune-speed}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-1 2}
SETS=${SETS:-example overhead 7b-layer}
PROMPT=${PROMPT:-512}
GEN=${GEN:-128}
GEN_7B=${GEN_7B:-32}
QP_TOKENS=${QP_TOKENS:-16384}
REPS=${REPS:-3}  # timed passes per invocation for the tiny models (median), whose passes are short
QP_TOKENS_7B=${QP_TOKENS_7B:-512}
QPRUNE=$BUILD/qprune
GEN_CKPT=$BUILD/bench/make_synthetic_checkpoint
EX=examples/model/checkpoint
BYTE_TOKENIZER=examples/model/checkpoint/tokenizer_config.json  # byte vocabulary for the GGUFs
[[ -d tests/clients/node_modules/node-llama-cpp ]] || { echo "run bash .ci/setup first" >&2; exit 1; }
mkdir -p "$WORK"
has_set() { [[ " $SETS " == *" $1 "* ]]; }

# ---- models ----
if has_set example; then
  [[ -f $WORK/ex_original.gguf ]] || "$QPRUNE" gguf "$EX" -o "$WORK/ex_original.gguf" -q >/dev/null
  for a in uniform global u32; do
    if [[ ! -f $WORK/ex_$a.gguf ]]; then
      rm -rf "${WORK:?}/ex_$a"
      alloc=(--allocation "$a")
      [[ $a == u32 ]] && alloc=(--allocation uniform --multiple-of 32)
      "$QPRUNE" prune "$EX" --text examples/model/calibration.txt --tokens 20000 --context 128 \
        --sparsity 0.4 --head-sparsity 0.5 "${alloc[@]}" -q --json -o "$WORK/ex_$a" >"$WORK/ex_$a.prune.json"
      "$QPRUNE" gguf "$WORK/ex_$a" -o "$WORK/ex_$a.gguf" -q --json >"$WORK/ex_$a.gguf.json"
    fi
  done
fi
if has_set overhead; then
  for L in 1 4; do
    if [[ ! -f $WORK/tiny$L.gguf ]]; then
      rm -rf "${WORK:?}/tiny$L"
      "$GEN_CKPT" ckpt --arch qwen2 --layers "$L" --hidden 128 --intermediate 512 --heads 8 \
        --kv-heads 2 --vocab 256 --dtype bf16 --seed 1 -o "$WORK/tiny$L" >/dev/null 2>&1
      cp "$BYTE_TOKENIZER" "$WORK/tiny$L/"
      "$QPRUNE" gguf "$WORK/tiny$L" -o "$WORK/tiny$L.gguf" -q >/dev/null
    fi
  done
fi
if has_set 7b-layer; then
  if [[ ! -f $WORK/l7b_m256.gguf ]]; then
    rm -rf "${WORK:?}/l7b" "${WORK:?}/l7b_uniform"
    "$GEN_CKPT" ckpt --arch llama --layers 1 --hidden 4096 --intermediate 11008 --heads 32 \
      --kv-heads 32 --vocab 256 --dtype bf16 --seed 1 -o "$WORK/l7b" >/dev/null 2>&1
    cp "$BYTE_TOKENIZER" "$WORK/l7b/"
    "$QPRUNE" mask "$WORK/l7b" --method magnitude --unit both --sparsity 0.4 --head-sparsity 0.5 \
      -o "$WORK/l7b_masks.json" >/dev/null
    "$QPRUNE" mask "$WORK/l7b" --method magnitude --unit both --sparsity 0.4 --head-sparsity 0.5 \
      --multiple-of 256 -o "$WORK/l7b_m256_masks.json" >/dev/null
    "$QPRUNE" apply "$WORK/l7b" --masks "$WORK/l7b_masks.json" -o "$WORK/l7b_uniform" >/dev/null
    "$QPRUNE" gguf "$WORK/l7b" -o "$WORK/l7b_original.gguf" -q >/dev/null
    "$QPRUNE" gguf "$WORK/l7b" --masks "$WORK/l7b_masks.json" -o "$WORK/l7b_uniform.gguf" -q >/dev/null
    "$QPRUNE" gguf "$WORK/l7b" --masks "$WORK/l7b_m256_masks.json" -o "$WORK/l7b_m256.gguf" -q >/dev/null
  fi
  # Token ids for qprune's forward pass (any ids below 256 will do).
  [[ -f $WORK/ids.txt ]] || awk 'BEGIN { s = 1; for (i = 0; i < 4096; ++i) { s = (s * 1103515245 + 12345) % 2147483648; printf "%d ", int(s / 65536) % 256 } print "" }' >"$WORK/ids.txt"
fi

# ---- measurement ----
RESULTS=$WORK/results.jsonl
LOADLOG=$WORK/load.txt
: >"$RESULTS"
: >"$LOADLOG"
# llama SET MODEL GGUF THREADS PROMPT GEN REPS
llama() {
  node bench/llama_speed.mjs "$3" --threads "$4" --prompt "$5" --gen "$6" --reps "$7" |
    jq -c --arg set "$1" --arg model "$2" --argjson round "$r" \
      '{set: $set, model: $model, round: $round, engine: "llama.cpp", threads, pp_tok_s, tg_tok_s}' >>"$RESULTS"
}
# qp SET MODEL FOLDER THREADS INPUT_OPTION INPUT TOKENS
qp() {
  OMP_NUM_THREADS=$4 "$QPRUNE" perplexity "$3" "$5" "$6" --tokens "$7" --context 128 --json -q |
    jq -c --arg set "$1" --arg model "$2" --argjson round "$r" --argjson t "$4" \
      '{set: $set, model: $model, round: $round, engine: "qprune", threads: $t,
        pp_tok_s: (.predicted_tokens / .seconds)}' >>"$RESULTS"
}
echo "start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOADLOG" >&2
for ((r = 1; r <= ROUNDS; ++r)); do
  for t in $THREADS; do
    if has_set example; then
      for m in original uniform global u32; do llama example "$m" "$WORK/ex_$m.gguf" "$t" "$PROMPT" "$GEN" "$REPS"; done
      qp example original "$EX" "$t" --text examples/model/heldout.txt "$QP_TOKENS"
      for m in uniform global u32; do
        qp example "$m" "$WORK/ex_$m" "$t" --text examples/model/heldout.txt "$QP_TOKENS"
      done
    fi
    if has_set overhead && [[ $t == "${THREADS%% *}" ]]; then
      for L in 1 4; do llama overhead "layers$L" "$WORK/tiny$L.gguf" "$t" "$PROMPT" "$GEN" "$REPS"; done
    fi
    if has_set 7b-layer; then
      for m in original uniform m256; do llama 7b-layer "$m" "$WORK/l7b_$m.gguf" "$t" "$PROMPT" "$GEN_7B" 1; done
      qp 7b-layer original "$WORK/l7b" "$t" --token-ids "$WORK/ids.txt" "$QP_TOKENS_7B"
      qp 7b-layer uniform "$WORK/l7b_uniform" "$t" --token-ids "$WORK/ids.txt" "$QP_TOKENS_7B"
    fi
  done
  echo "round $r $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOADLOG" >&2
done

# ---- report: medians over rounds, per-round ratios to the original ----
python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
base = {"example": "original", "overhead": "layers4", "7b-layer": "original"}
keys = sorted({(r["set"], r["engine"], r["threads"]) for r in rows},
              key=lambda k: (list(base).index(k[0]), k[1], k[2]))
print(f"{'set':9} {'engine':9} {'thr':>3} {'phase':5} {'model':9} {'tok/s':>10} {'ratio':>6} {'ratio range':>13}")
for s, e, t in keys:
    sel = [r for r in rows if (r["set"], r["engine"], r["threads"]) == (s, e, t)]
    models = list(dict.fromkeys(r["model"] for r in sel))
    for phase in ("pp", "tg"):
        f = phase + "_tok_s"
        if f not in sel[0]: continue
        for m in models:
            v = {r["round"]: r[f] for r in sel if r["model"] == m}
            b = {r["round"]: r[f] for r in sel if r["model"] == base[s]}
            ratios = [v[k] / b[k] for k in v if k in b]
            print(f"{s:9} {e:9} {t:>3} {phase:5} {m:9} {statistics.median(v.values()):10.1f} "
                  f"{statistics.median(ratios):6.3f} {min(ratios):6.3f}-{max(ratios):6.3f}")
EOF
echo "end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOADLOG"
