# convert keeps every energy: a model goes through every writable format and back, and
# `qprune energy` of the same assignments agrees; energy reproduces published optima.
source "$(dirname "$0")/common.bash" "$@"
src="$DATA/instances/gka1b.sparse"
printf '1 0 1 1 0 0 1 0 1 1 1 0 0 0 1 0 1 1 0 1\n' >"$TMP/x.txt"
want=$("$QPRUNE" energy "$src" "$TMP/x.txt" | sed -n 's/^Energy *: //p')
for ext in qubo coo json mqlib; do
  "$QPRUNE" convert "$src" "$TMP/m.$ext" >/dev/null
  got=$("$QPRUNE" energy "$TMP/m.$ext" "$TMP/x.txt" | sed -n 's/^Energy *: //p')
  [[ "$got" == "$want" ]] || fail "$ext: energy $got, expected $want"
done
"$QPRUNE" convert "$src" "$TMP/m.lp" >/dev/null
grep -q "^Binary" "$TMP/m.lp" || fail "LP file has no Binary section"
# The converted file is written whole or not at all: no temporary file is left behind.
[[ -z $(ls "$TMP" | grep -v -E '^(x\.txt|m\.(qubo|coo|json|mqlib|lp)|stdout|stderr)$') ]] ||
  fail "stray files: $(ls "$TMP")"
# Published values reproduced by `qprune energy` of the published solution vectors
# (known_values.csv; maximisation formats read negated).
expect_line "$("$QPRUNE" energy "$DATA/instances/bqp100.txt#1" "$DATA/instances/bqp100.1.sol")" "Energy" "-7970"
expect_line "$("$QPRUNE" energy "$DATA/instances/be100.1.sparse" "$DATA/instances/be100.1.sol")" "Energy" "-19412"
expect_line "$("$QPRUNE" energy "$DATA/instances/g05_60.0" "$DATA/instances/g05_60.0.sol" --from maxcut)" "Energy" "-536"
out=$("$QPRUNE" solve "$DATA/instances/gka1b.sparse" --solver exact -o "$TMP/best.json" --json)
grep -q '"status": "optimal"' <<<"$out" || fail "solve --json lacks the status"
expect_line "$("$QPRUNE" energy "$DATA/instances/gka1b.sparse" "$TMP/best.json")" "Energy" "-133"
