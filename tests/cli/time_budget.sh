# Time budgets and exact energies in `qprune solve` (issue 17, point 3): with sa or tabu, a
# --time-limit and no --reads, new reads start until the limit (MQLib's -r) and the run says so;
# with --reads the count is kept; the help says it. An integer energy prints exactly, in the text
# report and in JSON (no exponent: "-1117175", not "-1.11717e+06"), a real one so that it reads
# back to the same double. And `solve --json` prints the document `-o FILE.json` writes, versioned
# and typed (docs/json.md).
source "$(dirname "$0")/common.bash" "$@"
grep -q "new reads start until the" <<<"$("$QPRUNE" solve --help)" ||
  fail "solve --help does not say that reads repeat until the time limit"

# Reads until the limit: a small instance whose reads take milliseconds runs many of them.
for solver in sa tabu; do
  "$QPRUNE" solve "$DATA/instances/gka1b.sparse" -s "$solver" --time-limit 0.5 --json >"$TMP/r.json"
  python3 - "$TMP/r.json" <<'PY' || fail "$solver: reads until the time limit"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "time_limit", r["status"]
assert r["counters"]["reads"] > 1, r["counters"]["reads"]
assert "until the time limit" in r["message"], r["message"]
PY
done
# With --reads the count is the user's: sa's reads complete before any reasonable limit.
out=$("$QPRUNE" solve "$DATA/instances/gka1b.sparse" -s sa --time-limit 60 --reads 3)
expect_line "$out" "Status" "completed"
expect_line "$out" "reads" "3"
expect_line "$out" "reads_completed" "3"

# Integer energies exactly, real ones round-tripping.
printf 'p qubo 0 3 3 1\n0 0 -1117170\n1 1 -5\n2 2 0.1\n0 1 -0.5\n' >"$TMP/big.qubo"
out=$("$QPRUNE" solve "$TMP/big.qubo" -s exact)
expect_line "$out" "Best energy" "-1117175.5"
printf 'p qubo 0 2 2 0\n0 0 -1117170\n1 1 -5\n' >"$TMP/int.qubo"
out=$("$QPRUNE" solve "$TMP/int.qubo" -s exact)
expect_line "$out" "Best energy" "-1117175"
json=$("$QPRUNE" solve "$TMP/int.qubo" -s exact --json)
grep -Eq '"best_energy": -1117175,?$' <<<"$json" || { echo "$json" >&2; fail "JSON best_energy"; }
grep -Eq '"energy": -1117175,?$' <<<"$json" || { echo "$json" >&2; fail "JSON sample energy"; }
grep -q 'e+' <<<"$json" && { echo "$json" >&2; fail "an exponent in the JSON report"; }
# One document for --json and -o FILE.json (docs/json.md): versioned, typed.
"$QPRUNE" solve "$TMP/int.qubo" -s sa -r 2 --json -o "$TMP/doc.json" >"$TMP/printed.json"
cmp -s <(jq -S . "$TMP/printed.json") <(jq -S . "$TMP/doc.json") || fail "solve --json and -o FILE.json differ"
jq -e '.format == "qprune-solve-result" and .version == 1 and (.qprune_version | type) == "string"
  and .feasible == true and .samples[0].feasible == true and (.info.sweeps | type) == "number"
  and (.info.sweeps_automatic | type) == "boolean" and (.info.beta_range | length) == 2
  and (.counters.reads | type) == "number"' "$TMP/doc.json" >/dev/null ||
  { cat "$TMP/doc.json" >&2; fail "the solve_result document's types"; }
printf '1\n1\n' >"$TMP/x.txt"
expect_line "$("$QPRUNE" energy "$TMP/int.qubo" "$TMP/x.txt")" "Energy" "-1117175"
true
