#!/usr/bin/env bash
# Full-size scale test of `qprune prune`: the synthetic checkpoint with the shapes of
# DeepSeek-R1-Distill-Qwen-7B that bench/scale.sh generates (Qwen2, 28 layers, hidden 3584,
# intermediate 18944, 28 heads in 4 KV groups, vocab 152064, BF16, ~15.2 GB; reused when present),
# calibrated on TOKENS random token ids in windows of CONTEXT and pruned end to end by one command
# under /usr/bin/time -v: wall time, peak resident memory, the disk used beside the input and the
# output while it ran (sampled every 10 s), and the output's size.
#
# With ~2000 calibration tokens a 7B MLP layer keeps more channels than there are tokens (11366
# neurons at a uniform 40 %), so a least-squares refit would fit the calibration text, not
# the model: qprune refuses it (`--ridge` or more text lift that), and this run prunes without
# refit, choosing by the diagonal (Wanda-sp) score on the pruned model's own inputs, with the
# global allocation on the same costs.
#
# Usage: bench/prune_scale.sh BUILD_DIR [WORK_DIR (/tmp/qprune-scale)]
#   env: TOKENS (2048) CONTEXT (512) SPARSITY (0.4) HEAD_SPARSITY (0.428571: 4 of 7 heads per KV
#        group kept on average) METHOD (diagonal) EXTRA (more prune options, e.g. "--allocation
#        uniform") KEEP_OUTPUT (0)
set -euo pipefail
BUILD=${1:?build dir}
WORK=${2:-/tmp/qprune-scale}
TOKENS=${TOKENS:-2048}; CONTEXT=${CONTEXT:-512}; SPARSITY=${SPARSITY:-0.4}
HEAD_SPARSITY=${HEAD_SPARSITY:-0.428571}; METHOD=${METHOD:-diagonal}; EXTRA=${EXTRA:-}
QPRUNE="$(realpath "$BUILD/qprune")"
CKPT="$WORK/ckpt"
mkdir -p "$WORK"
if [[ ! -f $CKPT/config.json ]]; then
  echo "generating the checkpoint into $CKPT ..." >&2
  "$BUILD/bench/make_synthetic_checkpoint" ckpt --arch qwen2 --layers 28 --hidden 3584 \
    --intermediate 18944 --heads 28 --kv-heads 4 --vocab 152064 --dtype bf16 --seed 1 -o "$CKPT" >/dev/null
fi
awk -v n="$TOKENS" 'BEGIN { srand(1); for (i = 0; i < n; ++i) printf "%d ", int(rand() * 152064); print "" }' \
  >"$WORK/ids.txt"
rm -rf "$WORK/out"
base=$(du -sm "$WORK" | cut -f1)
# Disk beside the input: everything under WORK but the checkpoint and the ids, sampled.
( while true; do du -sm "$WORK" 2>/dev/null | cut -f1; sleep 10; done ) >"$WORK/disk.log" &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
# shellcheck disable=SC2086
/usr/bin/time -v -o "$WORK/time.log" "$QPRUNE" prune "$CKPT" --token-ids "$WORK/ids.txt" \
  --tokens "$TOKENS" --context "$CONTEXT" --sparsity "$SPARSITY" --head-sparsity "$HEAD_SPARSITY" \
  --method "$METHOD" --no-refit $EXTRA -o "$WORK/out" >"$WORK/prune.txt" 2>"$WORK/progress.txt"
kill $sampler 2>/dev/null || true
out_mb=$(du -sm "$WORK/out" | cut -f1)
peak=$(sort -n "$WORK/disk.log" | tail -1)
grep -E "global allocation: MLP" "$WORK/progress.txt" || true
grep -E "^(Parameters|Forward|Select|Write)" "$WORK/prune.txt"
grep -E "Elapsed|Maximum resident" "$WORK/time.log"
echo "disk: output $out_mb MB; peak beside input and output $((peak - base - out_mb > 0 ? peak - base - out_mb : 0)) MB (sampled every 10 s)"
[[ ${KEEP_OUTPUT:-0} == 1 ]] || rm -rf "$WORK/out"
