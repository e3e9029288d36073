#!/usr/bin/env bash
# Full-size scale test of `qprune mask`: a synthetic checkpoint with exactly the shapes and dtype
# of DeepSeek-R1-Distill-Qwen-7B (Qwen2, 28 layers, hidden 3584, intermediate 18944, 28 heads,
# 4 KV heads, vocab 152064, BF16; ~15.2 GB) is generated once into WORK_DIR (reused when its
# config.json and every shard are present), then every MLP layer is masked at 40% sparsity with
# the data-free magnitude model, once per solver, under /usr/bin/time -v. Per run it prints the
# per-layer wall time (time between consecutive progress lines of `mask`, so it includes reading
# the layer's weights and building its problem) and solver time (the progress line's own figure),
# as median and maximum, the total wall time and the operating system's maximum resident set size.
#
# Usage: bench/scale.sh BUILD_DIR [WORK_DIR (/tmp/qprune-scale)] [--np N]
#   env: SOLVERS ("sa greedy") LAYERS (28) NICE (5) KEEP (1: keep the checkpoint; 0: delete it)
# With --np N > 1 the runs go through `mpirun --allow-run-as-root --oversubscribe -np N` (the
# maximum RSS /usr/bin/time reports is then the largest of mpirun's processes).
set -euo pipefail
BUILD=${1:?build dir}
WORK=${2:-/tmp/qprune-scale}
NP=1
if [[ ${3:-} == --np ]]; then NP=${4:?--np needs a count}; fi
SOLVERS=${SOLVERS:-sa greedy}; LAYERS=${LAYERS:-28}; NICE=${NICE:-5}; KEEP=${KEEP:-1}
GEN="$BUILD/bench/make_synthetic_checkpoint"
QPRUNE="$(realpath "$BUILD/qprune")"
CKPT="$WORK/ckpt"
mkdir -p "$WORK"

# A checkpoint is reused when config.json exists and every file the index names is complete
# (written to a temporary name and renamed, so a present file is whole).
checkpoint_valid() {
  [[ -f "$CKPT/config.json" ]] || return 1
  grep -q "\"num_hidden_layers\": *$LAYERS" "$CKPT/config.json" || return 1
  if [[ -f "$CKPT/model.safetensors.index.json" ]]; then
    local f
    for f in $(grep -o '"[^"]*\.safetensors"' "$CKPT/model.safetensors.index.json" | sort -u | tr -d '"'); do
      [[ -f "$CKPT/$f" ]] || return 1
    done
  else
    [[ -f "$CKPT/model.safetensors" ]] || return 1
  fi
}

need_gb=16
avail_gb=$(df -BG --output=avail "$WORK" | tail -n1 | tr -dc 0-9)
if ! checkpoint_valid; then
  if (( avail_gb < need_gb )); then
    echo "scale.sh: $WORK has ${avail_gb} GB free, the checkpoint needs ~${need_gb} GB" >&2
    exit 1
  fi
  rm -rf "$CKPT"
  echo "generating the checkpoint into $CKPT ..." >&2
  start=$(date +%s.%N)
  nice -n "$NICE" "$GEN" ckpt --arch qwen2 --layers "$LAYERS" --hidden 3584 --intermediate 18944 \
    --heads 28 --kv-heads 4 --vocab 152064 --dtype bf16 --seed 1 -o "$CKPT" >/dev/null
  printf 'generation: %.1f s, %s\n' "$(echo "$(date +%s.%N) - $start" | bc -l)" \
    "$(du -sh "$CKPT" | cut -f1)"
else
  echo "reusing the checkpoint in $CKPT ($(du -sh "$CKPT" | cut -f1))" >&2
fi

launcher=()
if (( NP > 1 )); then
  if ! command -v mpirun >/dev/null; then
    echo "scale.sh: --np $NP needs mpirun, which is not installed" >&2
    exit 1
  fi
  # Without MPI support every rank would mask all layers and write the same file.
  if ! "$QPRUNE" mask --help 2>&1 | grep -qi mpi; then
    echo "scale.sh: --np $NP: this qprune build does not mention MPI in 'mask --help'" >&2
    exit 1
  fi
  launcher=(mpirun --allow-run-as-root --oversubscribe -np "$NP")
fi

# median and maximum of the numbers on stdin
median_max() {
  sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) { print "- -"; exit }
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f %.2f\n", m, v[NR] }'
}

printf 'load average before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %4s %8s %12s %12s %12s %12s %10s %12s\n' solver np layers wall_med_s wall_max_s \
  solve_med_s solve_max_s total_s max_rss_MiB
for solver in $SOLVERS; do
  log="$WORK/time_${solver}_np$NP.log"
  lines="$WORK/progress_${solver}_np$NP.txt"
  start=$(date +%s.%N)
  # Each progress line is stamped with the time it arrived (seconds since the start).
  nice -n "$NICE" /usr/bin/time -v -o "$log" "${launcher[@]}" "$QPRUNE" mask "$CKPT" --unit mlp \
    --sparsity 0.4 --solver "$solver" --data-free magnitude -o "$WORK/masks_${solver}.json" \
    2>&1 >/dev/null | while IFS= read -r line; do
      printf '%s %s\n' "$(echo "$(date +%s.%N) - $start" | bc -l)" "$line"
    done >"$lines"
  [[ -s "$log" ]] && grep -q "Exit status: 0" "$log" || { cat "$log" "$lines" >&2; exit 1; }
  total=$(echo "$(date +%s.%N) - $start" | bc -l)
  n=$(grep -c ' layer [0-9]* mlp: ' "$lines" || true)
  # wall per layer: the gap between a progress line and the previous one (the first from start)
  read -r wmed wmax < <(grep ' layer [0-9]* mlp: ' "$lines" |
    awk '{print $1 - prev; prev = $1}' | median_max)
  read -r smed smax < <(grep ' layer [0-9]* mlp: ' "$lines" | awk '{print $NF}' | tr -d s |
    median_max)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  printf '%-7s %4s %8s %12s %12s %12s %12s %10.1f %12.0f\n' "$solver" "$NP" "$n" "$wmed" "$wmax" \
    "$smed" "$smax" "$total" "$(echo "$rss/1024" | bc -l)"
done
printf 'load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $KEEP == 0 ]]; then rm -rf "$CKPT"; fi
