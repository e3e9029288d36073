#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, build-fuzz/) if needed and runs each for SECONDS.
#   tests/fuzz/run.sh [-j JOBS] [-k] SECONDS [TARGET...]   (no TARGET: all of them)
#     -j JOBS  targets run JOBS at a time (default 1; env QPRUNE_FUZZ_JOBS); each is one process.
#     -k       keep going after a finding (libFuzzer -fork=1 -ignore_crashes/timeouts/ooms): every
#              crash, timeout and out-of-memory input of the run is kept, not only the first.
#
# Targets: the QUBO formats (qbsolv coo json mqlib maxcut beasley biqmac qplib mtx), the checkpoint
# side (safetensors, index = model.safetensors.index.json over the tiny test checkpoint, config,
# masks, solution, calibration), gzip (the qbsolv reader fed gzip input), and checkpoint: one input
# holds config.json, the index (empty: unsharded) and one or two shards, separated by the line
# "@@qprune-file@@" (fuzz_readers.hpp); it is laid out as a folder in /dev/shm, opened with
# Checkpoint::open, every tensor of every shard is read, and each layer's views as mask/apply build
# them (DecoderLayerWeights::read, the data-free MLP and head problems) are made.
#
# Seeds: the readers' good and bad fixtures of tests/data, the saved regression inputs of
# tests/data/fuzz_regressions/<target>/, and generated ones (tests/fuzz/make_seeds.py: JSON
# nested 100,000 deep, 50,000-key safetensors headers, huge declared sizes in text headers, a gzip
# bomb, checkpoints whose config disagrees with the tensors), all in build-fuzz/corpus/<target>/,
# kept and grown across runs (the build folder is not committed).
# Mutation: libFuzzer's own with a dictionary per target (tests/fuzz/*.dict), plus the
# structure-aware mutators of tests/fuzz/mutators.cpp (nesting, repetition, huge sizes, bombs).
#
# Limits (environment overrides in brackets), chosen to catch the defect classes of issue #15:
#   -max_len=4 MiB [QPRUNE_FUZZ_MAX_LEN]: room for 10^5-deep nesting, 5*10^4-key headers and
#     bombs; the old 16 KiB could reach none of them.
#   CPU-time budget per input, 1 s + 2 us per input byte [QPRUNE_FUZZ_CPU_BASE_MS,
#     QPRUNE_FUZZ_CPU_US_PER_BYTE] (fuzz_target.cpp: an ITIMER_PROF timer; "superlinear time" in
#     the log): measured on this build (-O1, ASan, UBSan), the slowest linear reader (json) needs
#     about 1.2 us/byte and coo 0.6 us/byte, so 2 us/byte + 1 s leaves 2x to 3x headroom at every
#     size, while an O(n^2) pass over 10^4..10^5 items of a MB-sized input runs minutes (the
#     50,000-key safetensors header: stopped at its 9 s budget). CPU time, not wall time: on a
#     machine shared by many jobs (load 13 on 2 cores here) a linear 4 MB input took 25 s of wall
#     time for 2.3 s of CPU, so a wall-clock limit measures the load, not the reader.
#   -timeout=300 s wall [QPRUNE_FUZZ_TIMEOUT]: only a backstop for an input that hangs without
#     using CPU (the budget above catches the ones that spin).
#   -rss_limit_mb=2048 [QPRUNE_FUZZ_RSS_MB]: a reader may not use more than 2 GiB on a 4 MiB input.
#   -malloc_limit_mb=128 [QPRUNE_FUZZ_MALLOC_MB]: twice the 64 MiB memory limit the readers get
#     (fuzz_readers.hpp), so one allocation beyond it means a reader allocated from a declared size
#     its memory check does not cover, or inflated a bomb into one string; caught even when the
#     pages are never touched (a reserve for 10^8 declared entries costs no RSS). 1 GiB missed the
#     256 MiB reserve of the maxcut reader's `4 100000000` header.
#   -report_slow_units=300: wall-clock "slow unit" reports off like the timeout (the load, again).
# libFuzzer stops a target at its first finding (unless -k): a crash, leak, timeout or
# out-of-memory input, copied to tests/fuzz/crashes/<target>-<kind>-<hash>; move it into
# tests/data/fuzz_regressions/<target>/ with the fix (gzip findings go to qbsolv/: the same reader).
# Prints one line per target as it ends: runs, seconds, coverage (edges), features, findings; the
# exit status is 1 when any target found something.
# Environment also: QPRUNE_FUZZ_BUILD (build folder, default build-fuzz), QPRUNE_FUZZ_NICE
# (default 10), QPRUNE_FUZZ_NO_GEN=1 (no generated seeds).
set -euo pipefail
cd "$(dirname "$0")/../.."
usage() {
  echo "usage: tests/fuzz/run.sh [-j JOBS] [-k] SECONDS [TARGET...]" >&2
  exit 2
}
jobs=${QPRUNE_FUZZ_JOBS:-1}
keep_going=0
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    -j) [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage; jobs=$2; shift 2 ;;
    -j*) [[ ${1#-j} =~ ^[1-9][0-9]*$ ]] || usage; jobs=${1#-j}; shift ;;
    -k) keep_going=1; shift ;;
    *) usage ;;
  esac
done
[[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || usage
seconds=$1
shift
all_targets=(qbsolv coo json mqlib maxcut beasley biqmac qplib mtx safetensors index config masks
             solution calibration checkpoint gzip)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "run.sh: unknown target '$t'" >&2; exit 2; }
done
build=${QPRUNE_FUZZ_BUILD:-build-fuzz}
nice_level=${QPRUNE_FUZZ_NICE:-10}
max_len=${QPRUNE_FUZZ_MAX_LEN:-4194304}
timeout=${QPRUNE_FUZZ_TIMEOUT:-300}
rss_mb=${QPRUNE_FUZZ_RSS_MB:-2048}
malloc_mb=${QPRUNE_FUZZ_MALLOC_MB:-128}

if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DQPRUNE_FUZZ=ON -DQPRUNE_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
nice -n "$nice_level" cmake --build "$build" -j "$(nproc)" "${build_targets[@]}" >/dev/null

# Seed files per target (globs under tests/data).
seeds_for() {
  local d=tests/data
  case $1 in
    qbsolv) echo $d/formats/*.qubo $d/bad/qbsolv_* ;;
    coo) echo $d/formats/*.coo $d/bad/coo_* ;;
    json) echo $d/formats/toy.json $d/bad/json_* ;;
    mqlib) echo $d/formats/*.mqlib $d/bad/mqlib_* ;;
    maxcut) echo $d/formats/*.gset $d/instances/g05_60.0 $d/bad/maxcut_* ;;
    beasley) echo $d/formats/toy.txt $d/instances/bqp50.txt $d/bad/beasley_* ;;
    biqmac) echo $d/formats/*.sparse $d/instances/gka*.sparse $d/bad/biqmac_* ;;
    qplib) echo $d/formats/*.qplib $d/instances/*.qplib $d/bad/qplib_* ;;
    mtx) echo $d/formats/*.mtx $d/bad/mtx_* ;;
    safetensors) echo $d/checkpoints/tiny-llama-gqa/model.safetensors $d/bad/safetensors_* ;;
    index) echo $d/checkpoints/tiny-llama-gqa.index.json ;;
    config) echo $d/checkpoints/tiny-llama-gqa/config.json $d/bad/config_* ;;
    masks) echo $d/masks/*.json ;;
    solution) echo $d/instances/*.sol $d/bad/sol_* $d/bad/sol_*.json ;;
    calibration) echo $d/checkpoints/tiny-llama-gqa.stats.safetensors ;;
    checkpoint) ;;  # generated only (make_seeds.py): the fixtures are folders, not one input
    gzip) ;;        # generated only (make_seeds.py); the qbsolv regressions below are plain text
  esac
}
# Regression folders a target replays (gzip reads with the qbsolv reader).
regressions_for() {
  case $1 in
    gzip) echo tests/data/fuzz_regressions/qbsolv ;;
    *) echo "tests/data/fuzz_regressions/$1" ;;
  esac
}

# Dictionary per target: JSON tokens and keys for the JSON-based readers (and the checkpoint
# input's part separator), text-format keywords and edge numbers for the others.
dict_for() {
  case $1 in
    json | masks | index | config | solution | safetensors | calibration | checkpoint)
      echo tests/fuzz/json.dict ;;
    *) echo tests/fuzz/text.dict ;;
  esac
}

# Runs one target; prints its result line. Returns 1 when it found something.
run_target() {
  local t=$1
  local corpus=$build/corpus/$t artifacts=$build/artifacts/$t log=$build/logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  rm -f "$artifacts"/*
  for f in $(seeds_for "$t") "$(regressions_for "$t")"/*; do
    [[ -f $f && $(stat -c %s "$f") -le $max_len ]] && cp -n "$f" "$corpus/seed_$(basename "$f")"
  done
  if [[ ${QPRUNE_FUZZ_NO_GEN:-0} != 1 ]]; then
    nice -n "$nice_level" python3 tests/fuzz/make_seeds.py "$t" "$corpus" >/dev/null
  fi
  # Per-target scratch folder for the input files (memory when /dev/shm exists), removed after
  # the target: a process that crashes cannot remove its own.
  local scratch
  scratch=$(mktemp -d /dev/shm/qprune_fuzz_scratch.XXXXXX 2>/dev/null || mktemp -d)
  local mode=()
  [[ $keep_going == 1 ]] && mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  local start elapsed
  start=$(date +%s)
  set +e
  QPRUNE_FUZZ_SCRATCH=$scratch nice -n "$nice_level" "$build/tests/fuzz/fuzz_$t" "$corpus" \
    "${mode[@]}" \
    -max_total_time="$seconds" -max_len="$max_len" -len_control=0 -timeout="$timeout" \
    -report_slow_units="$timeout" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" \
    -dict="$(dict_for "$t")" -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  set -e
  rm -rf "$scratch"
  elapsed=$(( $(date +%s) - start ))
  local runs cov ft
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # Fork mode prints no final stats: the last "#N:" status line counts the runs.
  [[ -z $runs ]] && runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  local findings=() a summary
  for a in "$artifacts"/*; do
    [[ -f $a ]] || continue
    cp "$a" "tests/fuzz/crashes/$t-$(basename "$a")"
    findings+=("tests/fuzz/crashes/$t-$(basename "$a")")
  done
  if [[ ${#findings[@]} -gt 0 ]]; then
    summary="${findings[*]} (log: $log)"
  else
    summary=none
  fi
  printf '%-12s %10s %8s %8s %8s  %s\n' "$t" "${runs:-?}" "$elapsed" "${cov:-?}" "${ft:-?}" \
    "$summary"
  [[ ${#findings[@]} -eq 0 ]]
}

mkdir -p tests/fuzz/crashes
printf '%-12s %10s %8s %8s %8s  %s\n' target runs seconds cov ft findings
status=0
for t in "${targets[@]}"; do
  if [[ $jobs -le 1 ]]; then
    run_target "$t" || status=1
  else
    # jobs -p lists finished jobs until wait -n reaps them, so no exit status is lost.
    while [[ $(jobs -p | wc -l) -ge $jobs ]]; do wait -n || status=1; done
    run_target "$t" &
  fi
done
while [[ -n $(jobs -p) ]]; do wait -n || status=1; done
exit $status
