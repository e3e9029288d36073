#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, build-fuzz/) if needed and runs each for SECONDS.
#   tests/fuzz/run.sh SECONDS [TARGET...]      (no TARGET: all of them, one after the other)
# Each target starts from a seed corpus taken from tests/data (the readers' good and bad fixtures
# plus the saved regression inputs of tests/data/fuzz_regressions/<target>/), kept and grown in
# build-fuzz/corpus/<target>/ across runs. Limits: -rss_limit_mb=2048, -timeout=10 s per input,
# inputs up to 16 KiB; a dictionary per target (tests/fuzz/*.dict). libFuzzer stops a target at
# its first finding: a crash, leak, timeout or out-of-memory input, copied to
# tests/fuzz/crashes/<target>-<kind>-<hash>; move it into tests/data/fuzz_regressions/<target>/
# with the fix. Prints one line per target: runs, seconds, coverage (edges), features, findings;
# the exit status is 1 when any target found something.
# Environment: QPRUNE_FUZZ_BUILD (build folder, default build-fuzz), QPRUNE_FUZZ_NICE (default 10).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: tests/fuzz/run.sh SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
all_targets=(qbsolv coo json mqlib maxcut beasley biqmac qplib safetensors index config masks solution
             calibration)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")
build=${QPRUNE_FUZZ_BUILD:-build-fuzz}
nice_level=${QPRUNE_FUZZ_NICE:-10}

if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DQPRUNE_FUZZ=ON -DQPRUNE_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
nice -n "$nice_level" cmake --build "$build" -j "$(nproc)" "${build_targets[@]}" >/dev/null

# Seed files per target (globs under tests/data; at most 16 KiB each, as -max_len).
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
    safetensors) echo $d/checkpoints/tiny-llama-gqa/model.safetensors $d/bad/safetensors_* ;;
    index) echo $d/checkpoints/tiny-llama-gqa.index.json ;;
    config) echo $d/checkpoints/tiny-llama-gqa/config.json $d/bad/config_* ;;
    masks) echo $d/masks/*.json ;;
    solution) echo $d/instances/*.sol $d/bad/sol_* $d/bad/sol_*.json ;;
    calibration) echo $d/checkpoints/tiny-llama-gqa.stats.safetensors ;;
  esac
}

# Dictionary per target: JSON tokens and keys for the JSON-based readers, text-format keywords
# and edge numbers for the others.
dict_for() {
  case $1 in
    json | masks | index | config | solution | safetensors | calibration) echo tests/fuzz/json.dict ;;
    *) echo tests/fuzz/text.dict ;;
  esac
}

mkdir -p tests/fuzz/crashes
printf '%-12s %10s %8s %8s %8s  %s\n' target runs seconds cov ft findings
status=0
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  artifacts=$build/artifacts/$t
  log=$build/logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  rm -f "$artifacts"/*
  for f in $(seeds_for "$t") tests/data/fuzz_regressions/"$t"/*; do
    [[ -f $f && $(stat -c %s "$f") -le 16384 ]] && cp -n "$f" "$corpus/seed_$(basename "$f")"
  done
  start=$(date +%s)
  set +e
  nice -n "$nice_level" "$build/tests/fuzz/fuzz_$t" "$corpus" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -timeout=10 -max_len=16384 -dict="$(dict_for "$t")" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  set -e
  elapsed=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  findings=()
  for a in "$artifacts"/*; do
    [[ -f $a ]] || continue
    cp "$a" "tests/fuzz/crashes/$t-$(basename "$a")"
    findings+=("tests/fuzz/crashes/$t-$(basename "$a")")
  done
  if [[ ${#findings[@]} -gt 0 ]]; then
    status=1
    summary="${findings[*]} (log: $log)"
  else
    summary=none
  fi
  printf '%-12s %10s %8s %8s %8s  %s\n' "$t" "${runs:-?}" "$elapsed" "${cov:-?}" "${ft:-?}" \
    "$summary"
done
exit $status
