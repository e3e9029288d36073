# `qprune compare`: a small comparison on checked-in instances prints the table, writes runs.csv,
# summary.csv, comparison.json and three SVG plots with the documented columns, reaches the
# published optima (Biq Mac, Wiegele 2007) with exact, and --replay reproduces runs exactly.
source "$(dirname "$0")/common.bash" "$@"
inst="$DATA/instances"
"$QPRUNE" compare "$inst/gka1b.sparse" "$inst/bqp50.txt#1" --solvers exact,greedy,sa --seeds 2 \
  --reference "$inst/known_values.csv" --max-n exact=32 --sweeps 100 --seed 3 -o "$TMP/out" \
  >"$TMP/table" 2>"$TMP/progress" || fail "compare exited $?"
# Table: header, then one row per (instance, solver); exact proves the published -133 of gka1b.
grep -Eq '^Instance +n +Solver +Runs +Best +Median +Worst +Reference +Kind ' "$TMP/table" ||
  fail "no table header: $(cat "$TMP/table")"
grep -Eq '^gka1b +20 +exact +2/2 +-133 +-133 +-133 +-133 +known_optimal +0\.000 +0\.000 +1\.00 ' \
  "$TMP/table" || fail "no exact row for gka1b: $(cat "$TMP/table")"
grep -Eq '^bqp50\.1 +50 +exact +0/2 .* -2098 +known_optimal ' "$TMP/table" ||
  fail "exact is not skipped on bqp50.1 (n = 50 > 32): $(cat "$TMP/table")"
[[ $(grep -c '^\[[0-9]*/12\]' "$TMP/progress") -eq 12 ]] || fail "progress: $(cat "$TMP/progress")"
# Files and their columns.
for f in runs.csv summary.csv comparison.json gap_vs_time.svg success.svg tts.svg; do
  [[ -s "$TMP/out/$f" ]] || fail "missing $f"
done
[[ $(head -1 "$TMP/out/runs.csv") == "run,instance,instance_spec,n,solver,seed,status,energy,feasible,wall_time_s,threads,gap_abs,gap_rel,success,message" ]] ||
  fail "runs.csv header: $(head -1 "$TMP/out/runs.csv")"
[[ $(wc -l <"$TMP/out/runs.csv") -eq 13 ]] || fail "runs.csv should have 12 runs"
[[ $(head -1 "$TMP/out/summary.csv") == "solver,instance,n,runs,runs_solved,best,median,worst,reference,reference_kind,best_gap_abs,best_gap_rel,median_gap_rel,success_probability,median_time_s,tts99_s,feasibility_rate,threads,qaoa_layers,qaoa_expected_energy,qaoa_approximation_ratio,qaoa_optimum_probability,note" ]] ||
  fail "summary.csv header: $(head -1 "$TMP/out/summary.csv")"
[[ $(wc -l <"$TMP/out/summary.csv") -eq 7 ]] || fail "summary.csv should have 6 cells"
grep -q '^0,gka1b,.*,20,exact,3,optimal,-133,1,' "$TMP/out/runs.csv" || fail "run 0 row"
grep -q '"format": "qprune-comparison"' "$TMP/out/comparison.json" || fail "comparison.json format"
# Version 2 (docs/json.md): the machine, typed info, each run's best sample and its trace.
jq -e '.version == 2 and (.qprune_version | type) == "string" and (.machine.hardware_threads | type) == "number"
  and all(.runs[]; (.feasible | type) == "boolean" and (.x | type) == "array"
                    and (.trace | type) == "array" and (.info | type) == "object")
  and any(.runs[]; (.x | length) == .num_variables and (.trace | length) >= 1
                   and (.trace[-1][1] >= .energy))' "$TMP/out/comparison.json" >/dev/null ||
  fail "comparison.json version 2: machine, x, trace"
grep -q '"--sweeps"' "$TMP/out/comparison.json" || fail "solver arguments not recorded"
for f in gap_vs_time success tts; do
  head -c 4 "$TMP/out/$f.svg" | grep -q '<svg' || fail "$f.svg is not SVG"
  tail -1 "$TMP/out/$f.svg" | grep -q '</svg>' || fail "$f.svg is not closed"
done
# Replay: an SA run (the recorded --sweeps 100 and seed are used again) and a greedy run.
for k in 5 9 10; do
  out=$("$QPRUNE" compare --replay "$TMP/out/comparison.json" --run $k)
  expect_line "$out" "Energy matches" "yes"
  want=$(awk -F, -v k=$k 'NR == k + 2 { print $8 }' "$TMP/out/runs.csv")
  expect_line "$out" "Replayed energy" "$want"
done
# Run 6 (exact on bqp50.1) was skipped by --max-n: the replay skips it again.
out=$("$QPRUNE" compare --replay "$TMP/out/comparison.json" --run 6)
expect_line "$out" "Replayed status" "skipped"
expect_line "$out" "Energy matches" "yes"
# Markdown table.
"$QPRUNE" compare "$inst/gka1b.sparse" --solvers greedy --seeds 1 --markdown -q >"$TMP/md"
grep -Eq '^\| Instance +\| n +\| Solver ' "$TMP/md" || fail "markdown header: $(cat "$TMP/md")"
grep -Eq '^\| -+ \| -+: \|' "$TMP/md" || fail "markdown rule: $(cat "$TMP/md")"
# Errors: unknown solver, replay index out of range, nothing to compare.
expect_exit 2 "$QPRUNE" compare "$inst/gka1b.sparse" --solvers sa,nosuch
grep -q "nosuch" "$TMP/stderr" || fail "unknown solver not named"
expect_exit 2 "$QPRUNE" compare --replay "$TMP/out/comparison.json" --run 99
expect_exit 2 "$QPRUNE" compare --solvers sa
# A checkpoint layer is an instance too; exact proves its optimum and the others are held to it.
ckpt="$DATA/checkpoints/tiny-llama-gqa"
out=$("$QPRUNE" compare "$ckpt:layer=0:unit=mlp:sparsity=0.5:calib=$DATA/checkpoints/tiny-llama-gqa.stats.safetensors" \
      --solvers exact,greedy,sa --seeds 2 -q)
grep -q "tiny-llama-gqa.layer0.mlp.s50" <<<"$out" || { echo "$out" >&2; fail "layer instance missing from the table"; }

