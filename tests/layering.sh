#!/usr/bin/env bash
# The library's layers (README "Architecture"): core (1) <- problems (2) <- solver (3) <- workflows
# (4) <- cli. This test proves that the build rejects an upward include, in three parts:
#   1. every header carries the guard of its layer (a header without one could be included from
#      anywhere unnoticed; public headers in include/qprune/ say their layer in the guard);
#   2. no include in the tree points up a layer (scanned, so a guard that was edited away or a
#      file in the wrong folder is caught too);
#   3. the compiler refuses a deliberately bad include, for a public and a private header, and
#      accepts the same file one layer up (so the refusal is the guard, not a broken setup).
# Usage: layering.sh SOURCE_DIR CXX "EIGEN_INCLUDE_DIRS"
set -u
root=$1
cxx=$2
eigen=$3
cd "$root" || exit 1
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

layer_names=(none core problems solver workflows cli)

# The rank of a repository file: its folder, or for a public header the rank in its guard.
rank_of() {
  local path=$1
  case $path in
    include/qprune/*)
      local r
      r=$(sed -n 's/^#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < \([0-9]\)$/\1/p' "$path" | head -1)
      echo "${r:-1}"
      ;;
    core/*) echo 1 ;;
    problems/*) echo 2 ;;
    solver/*) echo 3 ;;
    workflows/*) echo 4 ;;
    cli/*) echo 5 ;;
    *) echo 0 ;;
  esac
}

# 1. Guards.
public_core="error atomic_output interrupt job_runner run_status"
for h in $(git ls-files 'include/qprune/*.hpp' 'problems/*.hpp' 'solver/*.hpp' 'workflows/*.hpp' \
  'cli/*.hpp' 'core/*.hpp'); do
  r=$(rank_of "$h")
  case $h in
    core/*) continue ;;  # the bottom layer: anyone may include it
    include/qprune/*)
      name=$(basename "$h" .hpp)
      if ! grep -q 'QPRUNE_LAYER' "$h"; then
        case " $public_core " in
          *" $name "*) continue ;;
        esac
        fail "$h has no layer guard (public headers above core say their layer in one)"
      fi
      continue
      ;;
    cli/*)
      grep -q '^#ifdef QPRUNE_LAYER$' "$h" || fail "$h has no guard against library layers"
      continue
      ;;
  esac
  grep -q "^#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < $r\$" "$h" ||
    fail "$h has no guard of its layer ${layer_names[$r]} (#if defined(QPRUNE_LAYER) && QPRUNE_LAYER < $r)"
done

# 2. Every quoted include of the library's files points down or sideways.
scanned=0
for f in $(git ls-files 'include/qprune/*.hpp' 'core/*' 'problems/*' 'solver/*' 'workflows/*' |
  grep -E '\.(cpp|hpp)$'); do
  fr=$(rank_of "$f")
  while IFS= read -r inc; do
    case $inc in
      qprune/*) target=include/$inc ;;
      *) target=$inc ;;
    esac
    [ -f "$target" ] || { [ -f "$(dirname "$f")/$inc" ] && continue; }
    [ -f "$target" ] || fail "$f includes \"$inc\", which is not a file of the repository"
    tr=$(rank_of "$target")
    scanned=$((scanned + 1))
    if [ "$tr" -gt "$fr" ]; then
      fail "$f (${layer_names[$fr]}) includes $inc (${layer_names[$tr]}): an upward include"
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
echo "scanned $scanned includes of the library's own files"
[ "$scanned" -gt 200 ] || fail "only $scanned includes scanned: the scan is broken"

# The umbrella header names every public header.
for h in $(git ls-files 'include/qprune/*.hpp'); do
  [ "$h" = include/qprune/qprune.hpp ] && continue
  grep -q "^#include \"qprune/$(basename "$h")\"$" include/qprune/qprune.hpp ||
    fail "include/qprune/qprune.hpp leaves out $h"
done

# 3. The compiler refuses an upward include and accepts the same one from the layer above.
eigen_flags=()
for d in $eigen; do eigen_flags+=("-I$d"); done
try_compile() {  # LAYER HEADER -> compiler exit status, its message in $out
  out=$(printf '#include "%s"\n' "$2" |
    "$cxx" -std=c++20 -fsyntax-only -DQPRUNE_LAYER="$1" -Iinclude -I. "${eigen_flags[@]}" -x c++ - 2>&1)
}
check_pair() {  # HEADER RANK: refused from RANK-1, accepted from RANK
  if try_compile $(($2 - 1)) "$1"; then
    fail "a layer-$(($2 - 1)) file including $1 compiled; the guard does not work"
  elif ! grep -q 'may not include it' <<<"$out"; then
    fail "including $1 from layer $(($2 - 1)) failed for another reason: $(head -3 <<<"$out")"
  else
    echo "refused as it should: layer $(($2 - 1)) including $1"
  fi
  try_compile "$2" "$1" || fail "layer $2 including $1 did not compile: $(head -3 <<<"$out")"
}
check_pair qprune/solver.hpp 3
check_pair qprune/prune_pipeline.hpp 4
check_pair qprune/checkpoint_problems.hpp 2
check_pair solver/common/samples.hpp 3
check_pair workflows/pruning/pruned_writer.hpp 4

if [ "$failures" -gt 0 ]; then
  echo "$failures layering failure(s)"
  exit 1
fi
echo "layering: all checks passed"
