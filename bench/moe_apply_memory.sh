#!/usr/bin/env bash
# Issue 22 goal: `qprune apply` removing half the experts of one MoE layer with DeepSeek-V3's
# expert shapes (256 experts of width 2048, hidden 7168, BF16: 22.8 GB, Qwen2-MoE tensor layout,
# random weights) streams it in well under 2 GiB of memory. Writes the synthetic layer
# (make_synthetic_checkpoint, about 4 minutes), masks keeping 128 random experts, runs apply under
# /usr/bin/time -v and prints its wall time and peak RSS; removes the 34 GB it wrote at the end.
#
#   bash bench/moe_apply_memory.sh [WORK_DIR]     (needs ~35 GB free in WORK_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${QPRUNE_BUILD_DIR:-build}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
trap 'rm -rf "$work/ck" "$work/pruned"' EXIT
"$build/bench/make_synthetic_checkpoint" ckpt --arch qwen2_moe --layers 1 --hidden 7168 \
  --heads 56 --kv-heads 8 --vocab 256 --intermediate 18432 --experts 256 --top-k 8 \
  --expert-width 2048 --shards 8 -o "$work/ck"
"$build/bench/make_synthetic_checkpoint" expert-masks --checkpoint "$work/ck" --keep 128 \
  -o "$work/masks.json"
/usr/bin/time -v "$build/qprune" apply "$work/ck" --masks "$work/masks.json" -o "$work/pruned" \
  2>"$work/time.txt" >/dev/null
echo "input  : $(du -sh "$work/ck" | cut -f1), output: $(du -sh "$work/pruned" | cut -f1)," \
  "num_experts $(jq .num_experts "$work/pruned/config.json")"
grep -E "Elapsed|Maximum resident" "$work/time.txt"
