# Every subcommand's --help works and teaches the conventions.
source "$(dirname "$0")/common.bash" "$@"
out=$("$QPRUNE" --help)
grep -q "sum_{i<j} q_ij x_i x_j" <<<"$out" || fail "top-level help lacks the energy convention"
grep -q "Exit codes" <<<"$out" || fail "top-level help lacks the exit codes"
for cmd in info convert solve energy; do
  out=$("$QPRUNE" "$cmd" --help) || fail "$cmd --help failed"
  grep -q "qbsolv" <<<"$out" || fail "$cmd --help does not list the formats"
done
grep -q "exact:" <<<"$("$QPRUNE" solve --help)" || fail "solve --help does not list the solvers"
expect_exit 2 "$QPRUNE" solve "$DATA/instances/gka1b.sparse" --solver nosuchsolver
grep -q "exact" "$TMP/stderr" || fail "a wrong solver name should list the valid ones"
expect_exit 2 "$QPRUNE" frobnicate
