# `qprune solve` shows a progress line on stderr only when stderr is a terminal, and not with -q or
# --json. The terminal cases run under a pseudo-terminal from script(1) (util-linux) when it is
# installed. A time-limited tabu search (reads end at the limit, after the line's 0.1 s delay)
# makes the line appear however fast the machine is.
source "$(dirname "$0")/common.bash" "$@"
MODEL="$DATA/instances/bqp50.txt#1"
ARGS=(-s tabu --tabu-iterations 1000000000000 --time-limit 0.5 --reads 2)

# Not a terminal: stderr is empty, the report is complete.
"$QPRUNE" solve "$MODEL" "${ARGS[@]}" >"$TMP/out.txt" 2>"$TMP/err.txt"
[[ ! -s "$TMP/err.txt" ]] || { od -c "$TMP/err.txt" | head >&2; fail "progress written to a file"; }
expect_line "$(cat "$TMP/out.txt")" "Status" "time_limit"

if ! command -v script >/dev/null; then
  echo "script(1) not installed: terminal cases skipped"
  exit 0
fi
# run_pty OUT CMD: runs CMD under a pseudo-terminal (stdout and stderr both on it), output in OUT.
run_pty() { local out=$1; shift; script -qec "$*" /dev/null >"$out" </dev/null; }
printf -v cmd '%q ' "$QPRUNE" solve "$MODEL" "${ARGS[@]}"
run_pty "$TMP/tty.txt" "$cmd"
grep -q $'\rsolve: tabu reads 2/2 (100%), best -[0-9]' "$TMP/tty.txt" ||
  { od -c "$TMP/tty.txt" | head -20 >&2; fail "no progress line on a terminal"; }
grep -Eq '^Status +: time_limit' "$TMP/tty.txt" || fail "no report on a terminal"

run_pty "$TMP/quiet.txt" "$cmd -q"
! grep -q 'solve: tabu reads' "$TMP/quiet.txt" || fail "progress printed with -q"
grep -Eq '^Status +: time_limit' "$TMP/quiet.txt" || fail "no report with -q"

run_pty "$TMP/json.txt" "$cmd --json"
! grep -q 'solve: tabu reads' "$TMP/json.txt" || fail "progress printed with --json"
