# Out of memory is exit 4 with what was being allocated, and the memory budget respects
# `ulimit -v` (RLIMIT_AS minus VmSize), not only MemAvailable: the message names the limit that
# applied. Three cases under ulimit -v: a QAOA statevector refused up front, a QUBO file whose
# declared size fits the file but not the limit refused up front, and an allocation that no check
# predicts (a parse that outgrows the limit) still ending in exit 4, not 1 and not a crash.
source "$(dirname "$0")/common.bash" "$@"
# ASan reserves terabytes of shadow address space: ulimit -v cannot work under it.
if grep -qa __asan_init "$QPRUNE"; then
  echo "SKIP: memory_limits.sh needs ulimit -v, which ASan builds do not support" >&2
  exit 77
fi
avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
# The limit must be the smallest of the budgets for the message to name it: 4 GiB, or less on a
# machine with less memory free.
limit_kb=$((4 * 1024 * 1024))
(( avail_kb / 2 < limit_kb )) && limit_kb=$((avail_kb / 2))
(( limit_kb >= 1024 * 1024 )) || { echo "SKIP: less than 2 GiB of memory available" >&2; exit 77; }

# 1. QAOA on 30 variables: a 2^30-amplitude statevector (16 GiB + 8 GiB diagonal), refused up front.
# One connected chain (Beasley format), so no decomposition into components can shrink it.
{ echo "1"; echo "30 59"; for i in $(seq 1 30); do echo " $i $i -1"; done
  for i in $(seq 1 29); do echo " $i $((i + 1)) 2"; done; } >"$TMP/q30.txt"
expect_exit 4 bash -c "ulimit -v $limit_kb; exec \"\$0\" solve \"\$1\" --solver qaoa --qaoa-max-qubits 30" \
  "$QPRUNE" "$TMP/q30.txt"
grep -q "qaoa statevector" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "qaoa: what was refused"; }
grep -q "address-space limit (ulimit -v)" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "qaoa: which limit"; }

# 2. A qbsolv file declaring 400 million variables: plausible for its 26 MB (the readers allow
# 16 variables per byte, so a header alone cannot declare it), too many for the limit.
{ printf 'p qubo 0 400000000 1 0\n'
  awk 'BEGIN { for (i = 0; i < 420000; ++i)
                 print "c padding: comment lines that make the declared size plausible" }'
  printf '\n0 0 1.0\n'; } >"$TMP/huge.qubo"
expect_exit 4 bash -c "ulimit -v $limit_kb; exec \"\$0\" solve \"\$1\"" "$QPRUNE" "$TMP/huge.qubo"
grep -q "400000000 variables needs" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "qubo: what was refused"; }
grep -q "address-space limit (ulimit -v)" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "qubo: which limit"; }

# 3. Memory that no check predicts. The smallest limit under which `qprune info` reads a small file
# is found first (bisection, 8 MiB steps); 300 MiB above it, a 110 MB edge list outgrows the
# limit while it is read and parsed. Whatever allocation fails, the exit is 4 and says so.
printf '3 2\n1 2 1\n2 3 1\n' >"$TMP/small.gset"
runs_at() { bash -c "ulimit -v $1; exec \"\$0\" info \"\$1\" >/dev/null 2>&1" "$QPRUNE" "$TMP/small.gset"; }
lo=0 hi=$limit_kb
runs_at "$hi" || fail "qprune info does not run under ulimit -v $hi"
while (( hi - lo > 8192 )); do
  mid=$(((lo + hi) / 2))
  if runs_at "$mid"; then hi=$mid; else lo=$mid; fi
done
python3 - "$TMP/big.gset" <<'PY'
import sys
n = 4500  # every pair once: about 10 million edges, 110 MB of text
with open(sys.argv[1], "w") as f:
    f.write("%d %d\n" % (n, n * (n - 1) // 2))
    for a in range(1, n):
        f.write("".join("%d %d 1\n" % (a, b) for b in range(a + 1, n + 1)))
PY
expect_exit 4 bash -c "ulimit -v $((hi + 300 * 1024)); exec \"\$0\" info \"\$1\"" "$QPRUNE" "$TMP/big.gset"
grep -q "out of memory" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "big edge list: no 'out of memory'"; }
grep -q "ulimit -v" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "big edge list: which limit"; }
[[ $(wc -l <"$TMP/stderr") -eq 1 ]] || { cat "$TMP/stderr" >&2; fail "more than one line on stderr"; }
echo "memory_limits: ok (baseline ulimit -v ${hi} kB)"
