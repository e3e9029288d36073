# SIGINT during `qprune solve` stops the search cleanly: the best answer so far is written with
# status `interrupted`, its energy equals `qprune energy` of its assignment, and the exit code is 5.
source "$(dirname "$0")/common.bash" "$@"
# A dense random 300-variable QUBO; tabu without an iteration cap runs until the time limit.
awk 'BEGIN { srand(7); n = 300; printf "p qubo 0 %d %d %d\n", n, n, n * (n - 1) / 2;
  for (i = 0; i < n; i++) printf "%d %d %d\n", i, i, int(rand() * 201) - 100;
  for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) printf "%d %d %d\n", i, j, int(rand() * 201) - 100 }' \
  >"$TMP/big.qubo"
"$QPRUNE" solve "$TMP/big.qubo" --solver tabu --tabu-iterations 1000000000000 --time-limit 60 \
  -o "$TMP/result.json" >"$TMP/out.txt" 2>&1 &
pid=$!
sleep 1.5
kill -INT "$pid"
set +e; wait "$pid"; code=$?; set -e
[[ $code -eq 5 ]] || { cat "$TMP/out.txt" >&2; fail "exit code $code after SIGINT, expected 5"; }
expect_line "$(cat "$TMP/out.txt")" "Status" "interrupted"
reported=$(sed -n 's/^Best energy *: //p' "$TMP/out.txt")
[[ -f "$TMP/result.json" ]] || fail "no result written"
grep -q '"status": "interrupted"' "$TMP/result.json" || fail "result file lacks the status"
expect_line "$("$QPRUNE" energy "$TMP/big.qubo" "$TMP/result.json")" "Energy" "$reported"
