#!/usr/bin/env bash
# Issue 22 goal: expert statistics of one MoE layer with DeepSeek-V3's expert shapes (256 experts
# of width 2048, top-8, hidden 7168, BF16: 22.8 GB, Qwen2-MoE tensor layout, random weights) from
# random token ids, then expert masks re-scored by the exact re-routed error. The forward pass reads
# one expert per thread at a time, so the 45 GB of F32 experts never sit in memory together.
# Writes the synthetic layer (make_synthetic_checkpoint, about 4 minutes; reuses WORK_DIR/ck when
# it is there), runs calibrate with 1 and 2 OpenMP threads and mask --unit experts under
# /usr/bin/time -v, and prints wall time, CPU time and peak RSS of each. Removes the checkpoint at
# the end unless KEEP=1. The mask step (MASK_ARGS, default --method routed-weight) builds the
# exact re-routed scorer: every expert's output on the S sampled inputs, reduced per sample to the
# Gram of the 256 outputs (256 x 257 / 2 doubles per sample: 270 MB at S = 1024), built in chunks
# of samples whose outputs fit 2 GiB. MASK_ARGS="--solver sa --time-limit 600" runs the QUBO and
# the swap descent on the exact error instead. THREADS (default "1 2"): the calibrate runs.
#
#   bash bench/moe_calibrate_memory.sh [WORK_DIR] [TOKENS]   (needs ~25 GB free in WORK_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${QPRUNE_BUILD_DIR:-build}
work=${1:-$(mktemp -d)}
tokens=${2:-1024}
mkdir -p "$work"
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf "$work/ck"' EXIT
if [[ ! -f "$work/ck/config.json" ]]; then
  "$build/bench/make_synthetic_checkpoint" ckpt --arch qwen2_moe --layers 1 --hidden 7168 \
    --heads 56 --kv-heads 8 --vocab 256 --intermediate 18432 --experts 256 --top-k 8 \
    --expert-width 2048 --shards 8 -o "$work/ck"
fi
python3 -c "import random; random.seed(22); print('\n'.join(str(random.randrange(256)) for _ in range($tokens)))" \
  >"$work/ids.txt"
report() {  # label, time -v output
  echo "$1: $(grep -E 'Elapsed' "$2" | sed 's/.*: //') wall," \
    "user $(grep 'User time' "$2" | sed 's/.*: //') s, sys $(grep 'System time' "$2" | sed 's/.*: //') s," \
    "peak RSS $(grep 'Maximum resident' "$2" | sed 's/.*: //') kB"
}
echo "load before: $(uptime)"
for threads in ${THREADS:-1 2}; do
  OMP_NUM_THREADS=$threads /usr/bin/time -v "$build/qprune" calibrate "$work/ck" \
    --token-ids "$work/ids.txt" --context 256 -q -o "$work/stats.$threads" \
    2>"$work/time.calibrate.$threads" >/dev/null
  report "calibrate $tokens tokens, OMP_NUM_THREADS=$threads" "$work/time.calibrate.$threads"
done
stats=$(ls "$work"/stats.* | tail -1)
if [[ -f "$work/stats.1" && -f "$work/stats.2" ]]; then
  cmp "$work/stats.1" "$work/stats.2" && echo "statistics with 1 and 2 threads: identical files"
fi
mask_args=${MASK_ARGS:---method routed-weight}
# shellcheck disable=SC2086
/usr/bin/time -v "$build/qprune" mask "$work/ck" --calib "$stats" --unit experts \
  --sparsity 0.5 $mask_args -o "$work/masks.json" 2>"$work/time.mask" >"$work/mask.out"
report "mask --unit experts --sparsity 0.5 $mask_args" "$work/time.mask"
cat "$work/mask.out"
echo "load after: $(uptime)"
