# SIGTERM at random moments (0.05..1.5 s) during apply, calibrate, prune and mask on the example
# model: each run exits 5 (or 0 when it finished first) and leaves the old output or a complete
# new one, never a mix, and no temporary file or folder beside it. A second signal also exits 5.
# The time from the signal to the exit is printed (latency; not asserted beyond a generous bound,
# benchmarks are not tests).
source "$(dirname "$0")/common.bash" "$@"
MODEL=$DATA/../../examples/model/checkpoint
TEXT=$DATA/../../examples/model/calibration.txt
cat "$TEXT" "$TEXT" "$TEXT" >"$TMP/long.txt"  # enough tokens for calibrate to take a while
"$QPRUNE" calibrate "$MODEL" --text "$TEXT" --tokens 2048 --context 128 -q \
  -o "$TMP/stats.safetensors" >/dev/null
"$QPRUNE" mask "$MODEL" --calib "$TMP/stats.safetensors" --unit both --sparsity 0.5 --solver greedy \
  -o "$TMP/masks.json" >/dev/null 2>&1
"$QPRUNE" apply "$MODEL" --masks "$TMP/masks.json" --refit -o "$TMP/apply_out" >/dev/null
"$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 1024 --sparsity 0.5 --method magnitude -o "$TMP/prune_out" \
  >/dev/null 2>&1
cp "$TMP/stats.safetensors" "$TMP/calib_out.safetensors"
cp "$TMP/masks.json" "$TMP/mask_out.json"
sum_of() { if [[ -d $1 ]]; then (cd "$1" && find . -type f -exec cksum {} + | sort); else cksum <"$1"; fi; }

# run_interrupted NAME OUTPUT DELAY CMD...: CMD writes OUTPUT (which exists, complete); SIGTERM
# after DELAY seconds. Sets $code.
run_interrupted() {
  local name=$1 out=$2 delay=$3; shift 3
  local old; old=$(sum_of "$out")
  "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" &
  local pid=$!
  sleep "$delay"
  local t0; t0=$(date +%s.%N)
  kill -TERM "$pid" 2>/dev/null || true
  set +e; wait "$pid"; code=$?; set -e
  local t1; t1=$(date +%s.%N)
  echo "$name: delay $delay s, exit $code, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s from signal to exit"
  awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 20) }' || fail "$name: the signal took effect only after $t0..$t1"
  [[ $code -eq 0 || $code -eq 5 ]] || { cat "$TMP/$name.stderr" >&2; fail "$name: exit $code after SIGTERM"; }
  local left; left=$(find "$TMP" -name '*.qprune-tmp-*')
  [[ -z "$left" ]] || fail "$name: temporaries left after exit $code: $left"
  if [[ $code -eq 5 && $name != mask ]]; then
    [[ "$(sum_of "$out")" == "$old" ]] || fail "$name: interrupted, but the old output changed"
  fi
}

delays=(0.05 0.3 0.8 1.5)
if [[ -n ${RANDOM_DELAYS:-} ]]; then  # RANDOM_DELAYS=1: four random delays in 0.05..1.5 s
  delays=(); for _ in 1 2 3 4; do delays+=("$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.05 + 1.45 * r / 32767 }')"); done
fi
for d in "${delays[@]}"; do
  run_interrupted apply "$TMP/apply_out" "$d" \
    "$QPRUNE" apply "$MODEL" --masks "$TMP/masks.json" --refit --overwrite -o "$TMP/apply_out"
  # Complete either way: it loads and has every shard of the index.
  "$QPRUNE" perplexity "$TMP/apply_out" --text "$TEXT" --tokens 300 --context 64 -q >/dev/null ||
    fail "apply: the output does not load after exit $code"

  run_interrupted calibrate "$TMP/calib_out.safetensors" "$d" \
    "$QPRUNE" calibrate "$MODEL" --text "$TMP/long.txt" --context 128 -q -o "$TMP/calib_out.safetensors"
  "$QPRUNE" mask "$MODEL" --calib "$TMP/calib_out.safetensors" --unit mlp --sparsity 0.5 \
    --solver greedy -o "$TMP/check.json" >/dev/null 2>&1 || fail "calibrate: statistics unreadable"

  rm -rf "$TMP/prune_new"
  run_interrupted prune "$TMP/prune_out" "$d" \
    "$QPRUNE" prune "$MODEL" --text "$TMP/long.txt" --tokens 30000 --sparsity 0.5 --method magnitude \
    -o "$TMP/prune_new"
  if [[ $code -eq 5 ]]; then
    [[ ! -e "$TMP/prune_new" ]] || fail "prune: interrupted, but an output folder exists"
  else
    "$QPRUNE" perplexity "$TMP/prune_new" --text "$TEXT" --tokens 300 --context 64 -q >/dev/null ||
      fail "prune: the output does not load"
  fi

  # mask: the finished layers are written (a complete masks file) when interrupted.
  run_interrupted mask "$TMP/mask_out.json" "$d" \
    "$QPRUNE" mask "$MODEL" --calib "$TMP/stats.safetensors" --unit both --sparsity 0.5 \
    --solver sa --sweeps 200000 -o "$TMP/mask_out.json"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/mask_out.json" ||
    fail "mask: the masks file is not complete JSON"
done

# A second signal ends at once, also with exit 5.
"$QPRUNE" calibrate "$MODEL" --text "$TMP/long.txt" --context 128 -q -o "$TMP/second.safetensors" \
  >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -TERM "$pid"; kill -TERM "$pid" 2>/dev/null || true
set +e; wait "$pid"; code=$?; set -e
[[ $code -eq 5 || $code -eq 0 ]] || fail "second signal: exit $code, expected 5"
