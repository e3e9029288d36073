#!/usr/bin/env bash
# Replays saved fuzz findings one by one and says what each is, in one line:
#   tests/fuzz/triage.sh [FILE...]   (default: every file in tests/fuzz/crashes/)
# A file's target is the first part of its name (<target>-<kind>-<hash>, as run.sh names them).
# Each runs alone under run.sh's limits (same environment overrides) and the line gives its size,
# the sanitizer's or libFuzzer's summary, the exception text if one escaped, and the first frame
# inside qprune (problems/, tests/fuzz/); a file that now runs clean says "fixed".
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${QPRUNE_FUZZ_BUILD:-build-fuzz}
timeout=${QPRUNE_FUZZ_TIMEOUT:-300}
rss_mb=${QPRUNE_FUZZ_RSS_MB:-2048}
malloc_mb=${QPRUNE_FUZZ_MALLOC_MB:-128}
files=("$@")
[[ ${#files[@]} -eq 0 ]] && files=(tests/fuzz/crashes/*)
for f in "${files[@]}"; do
  [[ -f $f ]] || continue
  target=$(basename "$f" | cut -d- -f1)
  bin=$build/tests/fuzz/fuzz_$target
  [[ -x $bin ]] || { echo "$f: no fuzz target '$target' in $build"; continue; }
  log=$(mktemp)
  "$bin" -timeout="$timeout" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" "$f" >"$log" 2>&1
  rc=$?
  summary=$(grep -m1 -E '^SUMMARY: |ERROR: libFuzzer: |==qprune-fuzz==' "$log" |
          sed 's/^SUMMARY: //' | sed -E 's/<[^<>]*(<[^<>]*>[^<>]*)*>/<>/g' | cut -c1-200)
  what=$(grep -m1 -E 'what\(\): ' "$log" | sed 's/.*what(): *//' | cut -c1-160)
  frame=$(grep -m1 -E '#[0-9]+ .* (/[^ ]*/)?(problems|tests/fuzz)/[^ ]*:[0-9]+' "$log" |
          grep -oE '(problems|tests/fuzz)/[^ ]*:[0-9]+' | head -1)
  size=$(stat -c %s "$f")
  if [[ $rc -eq 0 ]]; then
    echo "$f ($size B): fixed (runs clean)"
  else
    echo "$f ($size B): ${summary:-exit $rc}${what:+ | $what}${frame:+ | at $frame}"
  fi
  rm -f "$log"
done
