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
# Out-of-range numbers name the option, the bound and the value (not CLI11's whole double range).
expect_exit 2 "$QPRUNE" solve "$DATA/instances/gka1b.sparse" --time-limit -1
grep -q "^--time-limit: must be > 0, got -1" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "time-limit"; }
expect_exit 2 "$QPRUNE" solve "$DATA/instances/gka1b.sparse" -s qaoa --qaoa-ftol abc
grep -q "^--qaoa-ftol: expected a number, got 'abc'" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "ftol"; }
expect_exit 2 "$QPRUNE" solve "$DATA/instances/gka1b.sparse" --penalty-weight -0.5
grep -q "^--penalty-weight: must be >= 0, got -0.5" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "penalty"; }
