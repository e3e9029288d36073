#!/usr/bin/env bash
# How well --time-limit holds, per solver: runs `qprune solve` with limits of 1 s and 3 s on
# instances big enough that every solver is still working when the limit comes, and checks the
# search's wall time as the run reports it (wall_time_s: from the start of solve(), after the file
# is read) against limit * 1.05 + 0.05 s, plus SLACK seconds for loaded machines (CI: 2 shared
# cores). Prints one line per run: solver, case, limit, reported wall time, overshoot, status,
# reads, the whole process's time (with parsing); exits 1 if any run broke the bound.
#   bench/time_limits.sh build/qprune [WORKDIR] [SLACK_S] [LIMITS]
# Instances (written once into WORKDIR): a dense n = 2000 QUBO with integer coefficients
# (bench/random_dense_instance.sh), a sparse n = 10000 one with 10 random couplings per variable,
# a dense n = 40 one for exact (2^40 states) and a dense n = 22 one for qaoa (decomposed at the
# default 20 qubits) and n = 20 (direct).
set -euo pipefail
QPRUNE=$1
WORK=${2:-$(mktemp -d)}
SLACK=${3:-0}
LIMITS=${4:-"1 3"}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
[[ -s "$WORK/dense2000.qubo" ]] || "$HERE/random_dense_instance.sh" 2000 1 >"$WORK/dense2000.qubo"
[[ -s "$WORK/dense40.qubo" ]] || "$HERE/random_dense_instance.sh" 40 2 >"$WORK/dense40.qubo"
[[ -s "$WORK/dense22.qubo" ]] || "$HERE/random_dense_instance.sh" 22 3 >"$WORK/dense22.qubo"
[[ -s "$WORK/dense20.qubo" ]] || "$HERE/random_dense_instance.sh" 20 4 >"$WORK/dense20.qubo"
if [[ ! -s "$WORK/sparse10k.qubo" ]]; then
  awk -v n=10000 -v d=10 'BEGIN {
    srand(5);
    printf "c random sparse QUBO: n=%d, %d couplings drawn per variable, integers in [-100, 100]\n", n, d;
    m = 0;
    for (i = 0; i < n; i++) for (t = 0; t < d; t++) {
      j = int(rand() * n); if (j == i) continue;
      a = i < j ? i : j; b = i < j ? j : i;
      if ((a, b) in seen) continue; seen[a, b] = 1; ea[m] = a; eb[m] = b; m++;
    }
    printf "p qubo 0 %d %d %d\n", n, n, m;
    for (i = 0; i < n; i++) printf "%d %d %d\n", i, i, int(rand() * 201) - 100;
    for (e = 0; e < m; e++) printf "%d %d %d\n", ea[e], eb[e], int(rand() * 201) - 100;
  }' >"$WORK/sparse10k.qubo"
fi

failed=0
# run CASE LIMIT FILE ARGS...: one solve, one line.
run() {
  local name=$1 limit=$2 file=$3; shift 3
  local t0 t1 code=0
  t0=$(date +%s.%N)
  # A run still going at 10 x the limit + 60 s is killed and reported (an old binary may not stop).
  timeout -k 5 "$(awk -v l="$limit" 'BEGIN { print 10 * l + 60 }')" \
    "$QPRUNE" solve "$WORK/$file" --time-limit "$limit" --samples 1 --json "$@" >"$WORK/out.json" \
    2>"$WORK/err.txt" || code=$?
  t1=$(date +%s.%N)
  if [[ $code -ne 0 ]]; then
    printf '%-28s limit %4.1f s  exit %d after %.1f s (%s)\n' "$name" "$limit" "$code" \
      "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(tail -1 "$WORK/err.txt")"
    failed=1
    return
  fi
  python3 - "$WORK/out.json" "$name" "$limit" "$SLACK" "$t0" "$t1" <<'PY' || failed=1
import json, sys
r = json.load(open(sys.argv[1]))
name, limit, slack, t0, t1 = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
wall = r["wall_time_s"]
bound = 1.05 * limit + 0.05 + slack
reads = r["counters"].get("reads", r["counters"].get("decomposition_rounds", "-"))
ok = wall <= bound or r["status"] != "time_limit"
print(f"{name:28s} limit {limit:4.1f} s  wall {wall:7.3f} s  over {wall - limit:+7.3f} s "
      f"({100 * (wall - limit) / limit:+6.1f} %)  {r['status']:11s} reads {reads!s:>9}  "
      f"process {float(t1) - float(t0):6.2f} s  {'ok' if ok else 'OVER ' + format(bound, '.3f')}")
sys.exit(0 if ok else 1)
PY
}

for L in $LIMITS; do
  run "sa dense2000" "$L" dense2000.qubo -s sa
  run "sa sparse10k" "$L" sparse10k.qubo -s sa
  run "sa dense2000 -r 1000000" "$L" dense2000.qubo -s sa -r 1000000
  run "tabu dense2000" "$L" dense2000.qubo -s tabu
  run "tabu dense2000 -r 1" "$L" dense2000.qubo -s tabu -r 1
  run "tabu dense2000 -r 1000000" "$L" dense2000.qubo -s tabu -r 1000000
  run "tabu sparse10k" "$L" sparse10k.qubo -s tabu
  run "greedy dense2000 -r 1000000" "$L" dense2000.qubo -s greedy -r 1000000
  run "random dense2000 -r 1000000" "$L" dense2000.qubo -s random -r 1000000
  run "exact dense40" "$L" dense40.qubo -s exact --exact-max-variables 48
  run "qaoa dense22 (decomposed)" "$L" dense22.qubo -s qaoa
  run "qaoa dense20 (direct)" "$L" dense20.qubo -s qaoa
done
exit $failed
