# Annealer-ready exports (issue 18 point 1). The MLP problem (12 neurons, keep 6) and the heads
# problem of layer 0 of the tiny GQA checkpoint, exported as qbsolv files with the keep-k group as
# a penalty. For each penalty rule (tuned, the default; provable; a weight given by hand):
#   - the header names the rule, weight, shifts, dynamic range and precision bits, and `tuned`
#     also the best known energy and a beta hint, with the same figures in `export --json`;
#   - `exact` on the penalised file (2^12 states, no groups: it does not know the constraint)
#     ends at the constrained optimum that `exact` finds on the JSON export, and its answer keeps
#     k units (import-solution without --repair accepts it): the file's minimiser is the
#     constrained optimum, checked by enumeration;
#   - tuned's best known energy is that optimum, and its weight is below the provable one.
# And the metadata survives `convert`; `--ising` writes the SPIN form (COO only); `--subproblem N`
# writes N units with the others fixed at a reference answer, and its answers map back.
source "$(dirname "$0")/common.bash" "$@"
ckpt="$DATA/checkpoints/tiny-llama-gqa"
stats="$ckpt.stats.safetensors"
meta() { sed -n "s/^c qprune\.$2=//p" "$1"; }
same() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a);
  exit !(d <= 1e-9 * (m > 1 ? m : 1)) }'; }
energy_of() { "$QPRUNE" solve "$1" --solver exact --json -o "$2" | jq .best_energy; }

for unit in mlp heads; do
  args=(--calib "$stats" --layer 0 --unit "$unit" --sparsity 0.5)
  "$QPRUNE" export "$ckpt" "${args[@]}" -o "$TMP/$unit.json" >/dev/null
  optimum=$(energy_of "$TMP/$unit.json" "$TMP/opt.txt")

  declare -A weight=()
  for rule in tuned provable given; do
    extra=(--penalty "$rule")
    [[ $rule == given ]] && extra=(--penalty-weight 1000)
    file="$TMP/$unit.$rule.qubo"
    "$QPRUNE" export "$ckpt" "${args[@]}" "${extra[@]}" --json -o "$file" >"$TMP/report.json"
    [[ $(meta "$file" penalty_rule) == "$rule" ]] || fail "$unit $rule: header rule $(meta "$file" penalty_rule)"
    [[ $(jq -r '.files[0].penalty.rule' "$TMP/report.json") == "$rule" ]] || fail "$unit $rule: --json rule"
    jq -e '.format == "qprune-export-report" and .version == 1 and (.qprune_version | type) == "string"' \
      "$TMP/report.json" >/dev/null || fail "export --json: format, version, qprune_version"
    weight[$rule]=$(meta "$file" penalty_weight)
    same "${weight[$rule]}" "$(jq '.files[0].penalty.weight' "$TMP/report.json")" ||
      fail "$unit $rule: header weight ${weight[$rule]} differs from the report's"
    for key in penalty_shifts dynamic_range precision_bits; do
      [[ -n $(meta "$file" "$key") ]] || fail "$unit $rule: no qprune.$key in the header"
    done
    if [[ $rule == tuned ]]; then
      same "$(meta "$file" best_known_energy)" "$optimum" ||
        fail "$unit: best known $(meta "$file" best_known_energy), optimum $optimum"
      [[ $(meta "$file" beta_range) =~ ^[0-9.e+-]+,[0-9.e+-]+$ ]] || fail "$unit: beta_range"
      [[ $(meta "$file" penalty_verified) == true ]] || fail "$unit: tuned weight not verified"
    fi
    # The file's unconstrained minimiser is the constrained optimum, and keeps k.
    got=$(energy_of "$file" "$TMP/x.txt")
    same "$got" "$optimum" || fail "$unit $rule: the file's minimum $got, constrained optimum $optimum"
    "$QPRUNE" import-solution "$ckpt" --calib "$stats" --qubo "$file" --solution "$TMP/x.txt" \
      -o "$TMP/m.json" >/dev/null || fail "$unit $rule: the file's minimiser is infeasible"
  done
  [[ ${weight[given]} == 1000 ]] || fail "$unit: given weight ${weight[given]}"
  awk -v t="${weight[tuned]}" -v p="${weight[provable]}" 'BEGIN { exit !(t < p) }' ||
    fail "$unit: tuned weight ${weight[tuned]} not below the provable ${weight[provable]}"
done

# convert keeps the penalty metadata (header comments of every text format).
"$QPRUNE" convert "$TMP/mlp.tuned.qubo" "$TMP/mlp.coo" >/dev/null
grep -q '^# qprune.best_known_energy=' "$TMP/mlp.coo" || fail "convert dropped qprune.best_known_energy"

# --ising: the SPIN form in COO, read back to the same energies (its minimiser: the optimum).
"$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.5 --ising \
  -o "$TMP/mlp.spin.coo" >/dev/null
head -1 "$TMP/mlp.spin.coo" | grep -qx '# vartype=SPIN' || fail "--ising wrote no '# vartype=SPIN'"
same "$(energy_of "$TMP/mlp.spin.coo" "$TMP/x.txt")" "$(energy_of "$TMP/mlp.json" "$TMP/opt.txt")" ||
  fail "--ising: the SPIN file's minimum is not the constrained optimum"
expect_exit 2 "$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.5 --ising \
  -o "$TMP/mlp.spin.qubo"
grep -q "cannot say that its variables are spins" "$TMP/stderr" || fail "--ising .qubo: no clear error"

# --subproblem N: N units free, the others fixed at a reference answer; the file's energies are
# the layer's, so exact on it is at or below the reference's energy (qprune.best_known_energy),
# and its answer maps back through import-solution to masks with that same objective.
for ext in json qubo; do
  "$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.5 --subproblem 6 \
    -o "$TMP/sub.$ext" >/dev/null
done
vars=$(sed -n 's/^c qprune\.subproblem_variables=//p' "$TMP/sub.qubo")
[[ $(tr ',' '\n' <<<"$vars" | wc -l) -eq 6 ]] || fail "--subproblem 6: variables '$vars'"
[[ $(jq .num_variables "$TMP/sub.json") -eq 6 ]] || fail "--subproblem 6: the JSON has $(jq .num_variables "$TMP/sub.json") variables"
reference=$(sed -n 's/^c qprune\.best_known_energy=//p' "$TMP/sub.qubo")
sub_min=$(energy_of "$TMP/sub.json" "$TMP/sub_x.txt")
same "$sub_min" "$(energy_of "$TMP/sub.qubo" "$TMP/sub_x.txt")" || fail "--subproblem: json and qubo minima differ"
awk -v a="$sub_min" -v r="$reference" 'BEGIN { exit !(a <= r + 1e-9 * (r < 0 ? -r : r)) }' ||
  fail "--subproblem: its minimum $sub_min is above the reference $reference"
"$QPRUNE" import-solution "$ckpt" --calib "$stats" --qubo "$TMP/sub.qubo" \
  --solution "$TMP/sub_x.txt" --json -o "$TMP/sub_masks.json" >"$TMP/import.json"
same "$(jq .objective "$TMP/import.json")" "$sub_min" ||
  fail "--subproblem: imported objective $(jq .objective "$TMP/import.json"), file minimum $sub_min"
expect_exit 2 "$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.5 \
  --subproblem 12 -o "$TMP/sub12.qubo"
grep -q "has only 12 units" "$TMP/stderr" || fail "--subproblem 12: no clear error"

# --format qasm: the QAOA circuit of the written (penalised) problem, angles optimised by the qaoa
# solver (tests/test_qasm_format.cpp checks the circuit's state against the engine's) or given.
"$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.5 --qaoa-layers 2 \
  -o "$TMP/mlp.qasm" >/dev/null
head -1 "$TMP/mlp.qasm" | grep -qx 'OPENQASM 3.0;' || fail "qasm: no OPENQASM 3.0 header"
[[ $(grep -c '^rx(' "$TMP/mlp.qasm") -eq 24 ]] || fail "qasm: expected 2 layers x 12 rx gates"
grep -q '^c = measure q;$' "$TMP/mlp.qasm" || fail "qasm: no measurement"
grep -q '^// qprune.qaoa_gammas=' "$TMP/mlp.qasm" || fail "qasm: the angles are not recorded"
"$QPRUNE" convert "$TMP/mlp.json" "$TMP/given.qasm" --qaoa-gammas 0.5,0.25 --qaoa-betas 0.3,0.2 >/dev/null
grep -qx '// qprune.qaoa_betas=0.3,0.2' "$TMP/given.qasm" || fail "qasm: given betas not written"
expect_exit 2 "$QPRUNE" convert "$TMP/mlp.json" "$TMP/bad.qasm" --qaoa-gammas 0.5 --qaoa-betas 0.3,0.2
grep -q "one value each per layer" "$TMP/stderr" || fail "qasm: mismatched angles without a clear error"

# --scale-to 1: the file's largest |coefficient| is 1, its energies the layer's times the scale it
# names (qprune.energy_scale), best known energy included.
"$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.5 --scale-to 1 \
  -o "$TMP/scaled.qubo" >/dev/null
scale=$(meta "$TMP/scaled.qubo" energy_scale)
[[ -n $scale ]] || fail "--scale-to: no qprune.energy_scale"
largest=$(awk '!/^[cp]/ { v = $3 < 0 ? -$3 : $3; if (v > m) m = v } END { print m }' "$TMP/scaled.qubo")
same "$largest" 1 || fail "--scale-to 1: largest |coefficient| $largest"
optimum=$(energy_of "$TMP/mlp.json" "$TMP/opt.txt")
same "$(energy_of "$TMP/scaled.qubo" "$TMP/x.txt")" "$(awk -v s="$scale" -v e="$optimum" 'BEGIN { printf "%.17g", s * e }')" ||
  fail "--scale-to: the file's minimum is not scale x the optimum"
same "$(meta "$TMP/scaled.qubo" best_known_energy)" "$(awk -v s="$scale" -v e="$optimum" 'BEGIN { printf "%.17g", s * e }')" ||
  fail "--scale-to: best known energy not scaled"
