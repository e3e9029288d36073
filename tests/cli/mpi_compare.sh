# `mpirun -np 2` and `-np 1 qprune compare` give the tables of a plain run (MPI build): 3 instances x 3
# solvers x 3 seeds = 27 cells spread over 2 ranks; runs.csv and summary.csv are compared without
# the columns that hold times and thread counts, and the printed table without its time columns.
source "$(dirname "$0")/common.bash" "$@"
I=$DATA/instances
args=(compare "$I/bqp50.txt#1" "$I/gka1b.sparse" "$DATA/formats/toy.qubo" --solvers sa,tabu,greedy
      --seeds 3 --seed 4 --sweeps 200 -q)
"$QPRUNE" "${args[@]}" -o "$TMP/plain" >"$TMP/plain.txt"
mpirun_np 2 "$QPRUNE" "${args[@]}" -o "$TMP/np2" >"$TMP/np2.txt"
mpirun_np 1 "$QPRUNE" "${args[@]}" -o "$TMP/np1" >"$TMP/np1.txt"
# runs.csv: run,instance,instance_spec,n,solver,seed,status,energy,feasible,wall_time_s,threads,...
untimed() { awk -F, -v OFS=, -v drop="$2" 'BEGIN { n = split(drop, d, " ") }
  { for (i = 1; i <= n; ++i) $d[i] = ""; print }' "$1"; }
[[ $(wc -l <"$TMP/plain/runs.csv") -eq 28 ]] || fail "expected 27 runs"
diff <(untimed "$TMP/plain/runs.csv" "10 11") <(untimed "$TMP/np2/runs.csv" "10 11") >&2 ||
  fail "runs.csv differs"
# summary.csv: ...,success_probability,median_time_s,tts99_s,feasibility_rate,threads,...
diff <(untimed "$TMP/plain/summary.csv" "15 16 18") <(untimed "$TMP/np2/summary.csv" "15 16 18") >&2 ||
  fail "summary.csv differs"
# The table: every column but the last two (median time, TTS99).
table() { sed -n '1,/^$/p' "$1" | awk 'NF > 2 { NF -= 2 } { print }'; }
diff <(table "$TMP/plain.txt") <(table "$TMP/np2.txt") >&2 || fail "table differs"
diff <(table "$TMP/plain.txt") <(table "$TMP/np1.txt") >&2 || fail "-np 1 table differs"
diff <(untimed "$TMP/plain/runs.csv" "10 11") <(untimed "$TMP/np1/runs.csv" "10 11") >&2 ||
  fail "-np 1 runs.csv differs"
