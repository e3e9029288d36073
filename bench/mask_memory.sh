#!/usr/bin/env bash
# Memory benchmark of `qprune mask`: does masking hold one layer at a time? Generates two synthetic
# checkpoints that differ only in the layer count (bench/make_synthetic_checkpoint.cpp), masks every
# MLP layer of each with the data-free modes and with a calibration statistics file, and reports
# for each run the maximum resident set size (/usr/bin/time -v) and the peak anonymous RSS
# (RssAnon sampled from /proc/PID/status every 50 ms: heap only, without the file-backed pages of
# the memory-mapped checkpoint and statistics, which the kernel can drop at any time). The claim
# holds when the larger model's peaks are not above the smaller one's beyond noise.
#
# Usage: bench/mask_memory.sh BUILD_DIR WORK_DIR
#   env: HIDDEN (2048) INTER (8192) HEADS (16) KV (4) VOCAB (32000) SMALL (2) LARGE (8)
#        MODES ("magnitude isserlis calib") SOLVER (greedy) TOKENS (256)
set -euo pipefail
BUILD=${1:?build dir}
WORK=${2:?work dir}
HIDDEN=${HIDDEN:-2048}; INTER=${INTER:-8192}; HEADS=${HEADS:-16}; KV=${KV:-4}
VOCAB=${VOCAB:-32000}; SMALL=${SMALL:-2}; LARGE=${LARGE:-8}
MODES=${MODES:-magnitude isserlis calib}; SOLVER=${SOLVER:-greedy}; TOKENS=${TOKENS:-256}
GEN="$BUILD/bench/make_synthetic_checkpoint"
QPRUNE="$BUILD/qprune"
mkdir -p "$WORK"

# Runs a command under /usr/bin/time -v while sampling RssAnon; prints "maxrss_kb peak_anon_kb s".
measure() {
  local log="$WORK/time.log"
  /usr/bin/time -v "$@" >"$WORK/cmd.out" 2>"$log" &
  local tpid=$!
  local peak=0 child="" v
  while kill -0 "$tpid" 2>/dev/null; do
    [[ -z "$child" ]] && child=$(pgrep -P "$tpid" | head -n1 || true)
    if [[ -n "$child" && -r /proc/$child/status ]]; then
      v=$(awk '/^RssAnon:/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)
      [[ -n "$v" && "$v" -gt "$peak" ]] && peak=$v
    fi
    sleep 0.05
  done
  wait "$tpid" || { cat "$log" >&2; return 1; }
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  echo "$rss $peak $wall"
}

for L in "$SMALL" "$LARGE"; do
  C="$WORK/ckpt_L$L"
  [[ -f "$C/config.json" ]] || "$GEN" ckpt --arch qwen2 --layers "$L" --hidden "$HIDDEN" \
    --intermediate "$INTER" --heads "$HEADS" --kv-heads "$KV" --vocab "$VOCAB" --dtype bf16 \
    --seed 1 -o "$C" >/dev/null 2>&1
  if [[ " $MODES " == *" calib "* && ! -f "$WORK/stats_L$L.safetensors" ]]; then
    "$GEN" stats --checkpoint "$C" --tokens "$TOKENS" -o "$WORK/stats_L$L.safetensors" >/dev/null
  fi
done

# Expected per-layer bytes (MLP, n = INTER units, H = HIDDEN):
#   M (n x n doubles) + Gram (n x n doubles) + down_proj as double (H x n x 8);
#   isserlis also gate/up as double (2 x n x H x 8); magnitude: no Gram (diagonal model).
n=$INTER; H=$HIDDEN
printf 'expected per layer: M %.0f MiB, Gram %.0f MiB, down_proj (double) %.0f MiB, gate+up (double) %.0f MiB\n' \
  "$(echo "$n*$n*8/1048576" | bc -l)" "$(echo "$n*$n*8/1048576" | bc -l)" \
  "$(echo "$H*$n*8/1048576" | bc -l)" "$(echo "2*$H*$n*8/1048576" | bc -l)"
printf 'layer weights in the file (bf16, all 7 tensors): %.0f MiB\n' \
  "$(echo "(3*$H*$n + 2*$H*$H + 2*$H*$H*$KV/$HEADS)*2/1048576" | bc -l)"

printf '%-10s %-7s %14s %14s %10s\n' mode layers max_rss_MiB peak_anon_MiB wall
for mode in $MODES; do
  for L in "$SMALL" "$LARGE"; do
    C="$WORK/ckpt_L$L"
    if [[ $mode == calib ]]; then
      args=(--calib "$WORK/stats_L$L.safetensors")
    else
      args=(--data-free "$mode")
    fi
    read -r rss anon wall < <(measure "$QPRUNE" mask "$C" --unit mlp --sparsity 0.4 \
      --solver "$SOLVER" "${args[@]}" -o "$WORK/m_${mode}_L$L.json")
    printf '%-10s %-7s %14.0f %14.0f %10s\n' "$mode" "$L" "$(echo "$rss/1024" | bc -l)" \
      "$(echo "$anon/1024" | bc -l)" "$wall"
  done
done
