# SIGINT to every rank of `mpirun -np 2 qprune mask` (what srun, or `kill -INT` on the ranks,
# does): each rank stops its current layer, rank 0 writes the layers finished so far (the current
# ones with status interrupted), the run exits 5, and `--resume` under mpirun finishes the file
# (every entry completed, the finished ones kept as they were). A SIGINT to mpirun itself is not
# tested: OpenMPI 4.1 does not forward it but ends the job (SIGCONT to the ranks, SIGTERM
# odls_base_sigkill_timeout = 1 s later, SIGKILL 1 s after that) and exits 1 whatever the ranks
# return, so whether the masks get written depends on that second.
source "$(dirname "$0")/common.bash" "$@"
MODEL=$DATA/../../examples/model
# SA long enough (about half a second per MLP layer here) that the other layers are still running
# when the first one is reported.
args=(mask "$MODEL/checkpoint" --unit both --sparsity 0.4 --head-shape kv_groups
      --head-sparsity 0.5 --solver sa --sweeps 100000 --reads 1 --seed 7 -o "$TMP/masks.json")
"${MPIRUN[@]}" -np 2 "$QPRUNE" "${args[@]}" >"$TMP/out.txt" 2>"$TMP/err.txt" &
pid=$!
# Signal both ranks as soon as rank 0 reports its first finished layer: the handlers are installed
# by then, one entry is complete and the next layers (largest first) are being solved.
for _ in $(seq 1200); do
  grep -q "^layer " "$TMP/err.txt" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
grep -q "^layer " "$TMP/err.txt" || { kill "$pid"; cat "$TMP/err.txt" >&2; fail "no layer finished"; }
ranks=$(pgrep -P "$pid" | tr '\n' ' ') || fail "no ranks under mpirun"
# shellcheck disable=SC2086  # one pid per word
kill -INT $ranks
set +e; wait "$pid"; code=$?; set -e
[[ $code -eq 5 ]] || { cat "$TMP/err.txt" >&2; fail "exit code $code after SIGINT, expected 5"; }
[[ -f $TMP/masks.json ]] || fail "no masks file written"
statuses=$(jq -r '.entries[].status' "$TMP/masks.json")
grep -q interrupted <<<"$statuses" || fail "expected an interrupted entry, found: $statuses"
! grep -qv -e '^interrupted$' -e '^completed$' <<<"$statuses" || fail "statuses: $statuses"
[[ $(grep -c "^Entries" "$TMP/out.txt") -eq 1 ]] || fail "report printed more than once"
completed=$(grep -c '^completed$' <<<"$statuses") || fail "expected a completed entry"
[[ -z $(find "$TMP" -name '.masks.json.tmp*') ]] || fail "a temporary file was left"

cp "$TMP/masks.json" "$TMP/interrupted.json"
"${MPIRUN[@]}" -np 2 "$QPRUNE" "${args[@]}" --resume >"$TMP/out.txt" 2>/dev/null ||
  fail "resume under mpirun failed"
expect_line "$(cat "$TMP/out.txt")" "Entries" "8"
expect_line "$(cat "$TMP/out.txt")" "Resumed entries" "$completed"
[[ $(jq '[.entries[] | select(.status == "completed")] | length' "$TMP/masks.json") -eq 8 ]] ||
  fail "resumed file has unfinished entries"
# The entries finished before the signal are taken over unchanged.
finished() { jq -S '[.entries[] | select(.status == "completed")]' "$1"; }
diff <(finished "$TMP/interrupted.json") \
     <(jq -S --argjson old "$(finished "$TMP/interrupted.json")" \
          '[.entries[] | select(. as $e | $old | any(.layer == $e.layer and .unit == $e.unit))]' \
          "$TMP/masks.json") >&2 || fail "finished entries changed on resume"
