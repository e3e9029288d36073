# Every malformed QUBO/solution fixture makes the program exit 2 with one line on stderr naming the
# file and the line (`path:line: expected ..., found ...`).
source "$(dirname "$0")/common.bash" "$@"
count=0
for f in "$DATA"/bad/*; do
  name=$(basename "$f")
  case "$name" in
    sol_*|safetensors_*|config_*|make_*) continue ;;
  esac
  format=${name%%_*}
  expect_exit 2 "$QPRUNE" info "$f" --from "$format"
  grep -Eq "^qprune: error: $f:[0-9]+: expected " "$TMP/stderr" ||
    { cat "$TMP/stderr" >&2; fail "$name: no 'path:line: expected' message"; }
  [[ $(wc -l <"$TMP/stderr") -eq 1 ]] || fail "$name: more than one line on stderr"
  count=$((count + 1))
done
[[ $count -ge 30 ]] || fail "only $count fixtures found"
for f in "$DATA"/bad/sol_*; do
  expect_exit 2 "$QPRUNE" energy "$DATA/instances/gka1b.sparse" "$f"
  grep -q "^qprune: error: $f:" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "$f: no location"; }
done
expect_exit 3 "$QPRUNE" info "$TMP/does-not-exist.qubo"
