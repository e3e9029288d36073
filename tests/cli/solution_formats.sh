# Answers come back in every solver's own format, and the export metadata survives convert.
# The MLP problem (12 neurons) of layer 0 of the tiny GQA checkpoint is exported, solved by `exact`, and its
# answer imported as a 0/1 list: those masks are the reference. Then (1) the same answer written
# in each solution format's layout (docs/formats.md, "Solution files": CBC, GLPK -w, HiGHS,
# Gurobi, CPLEX, qbsolv, MQLib -ps, dimod) imports to the same masks, detected from the content
# and forced with --from; (2) the problem converted to every writable format still carries
# layer, unit and sparsity, so import-solution needs no --sparsity and gives the same masks;
# (3) a file without metadata is refused unless all of --layer, --unit, --sparsity are given;
# (4) numbers print exactly (qprune.sparsity=0.4, integer energies as integers).
source "$(dirname "$0")/common.bash" "$@"
ckpt="$DATA/checkpoints/tiny-llama-gqa"
stats="$ckpt.stats.safetensors"
import() { "$QPRUNE" import-solution "$ckpt" --calib "$stats" "$@"; }
# kept_of MASKS: the kept lists of a masks file, on one line.
kept_of() { tr -d ' \n' <"$1" | grep -o '"kept":\[[^]]*\]'; }

"$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.5 \
  -o "$TMP/l0.json" >/dev/null
"$QPRUNE" solve "$TMP/l0.json" --solver exact -o "$TMP/x.txt" >/dev/null
import --qubo "$TMP/l0.json" --solution "$TMP/x.txt" -o "$TMP/ref.json" >/dev/null
want=$(kept_of "$TMP/ref.json")
[[ -n $want ]] || fail "no kept list in the reference masks"
n=$(wc -l <"$TMP/x.txt")

# The LP writers' names of the variables (the labels made safe), in file order.
"$QPRUNE" convert "$TMP/l0.json" "$TMP/l0.lp" --to lp-linear >/dev/null
awk '/^Binary/ { on = 1; next } /^End/ { on = 0 } on { for (i = 1; i <= NF; i++) print $i }' \
  "$TMP/l0.lp" >"$TMP/names"
[[ $(wc -l <"$TMP/names") -eq $n ]] || fail "expected $n names in the Binary section"
paste -d' ' "$TMP/names" "$TMP/x.txt" >"$TMP/named"

# (1) Each format's layout, written from the answer.
{ echo "Optimal - objective value 0.00000000"
  awk '$2 == 1 { printf "%7d %s 1 0\n", NR - 1, $1 }' "$TMP/named"
  echo "      $n qp1 1 0"; } >"$TMP/cbc.sol"
{ printf 'c Problem:    \nc Rows:       0\nc Columns:    %d\nc\ns mip 0 %d o 0\n' $((n + 1)) $((n + 1))
  awk '{ print "j", NR, $1 }' "$TMP/x.txt"; echo "j $((n + 1)) 1"; echo "e o f"; } >"$TMP/glpk.sol"
{ printf 'Model status\nOptimal\n\n# Primal solution values\nFeasible\nObjective 0\n# Columns %d\n' $((n + 1))
  cat "$TMP/named"; echo "qpone 1"; printf '# Rows 0\n\n# Dual solution values\nNone\n'; } >"$TMP/highs.sol"
{ printf '# Solution for model obj\n# Objective value = 0\n'; cat "$TMP/named"; } >"$TMP/gurobi.sol"
{ printf '<?xml version = "1.0" encoding="UTF-8" standalone="yes"?>\n<CPLEXSolution version="1.2">\n <variables>\n'
  awk '{ printf "  <variable name=\"%s\" index=\"%d\" value=\"%s\"/>\n", $1, NR - 1, $2 }' "$TMP/named"
  printf ' </variables>\n</CPLEXSolution>\n'; } >"$TMP/cplex.sol"
{ echo "$n Number of bits in solution"; tr -d '\n' <"$TMP/x.txt"; echo
  printf '%8.5f Energy of solution\n1 Number of Partitioned calls\n' 0; } >"$TMP/qbsolv.out"
{ echo "12,BURER2002,\"l0.mqlib\",0,0.01,[]"; echo; echo "Solution:"; paste -sd' ' "$TMP/x.txt"; } >"$TMP/mqlib.out"
# dimod packs 32 variables to an uint32, variable k of a word in bit k.
awk -v n="$n" '{ w[int((NR - 1) / 32)] += $1 * 2 ^ ((NR - 1) % 32) }
  END { words = int((n + 31) / 32); row = ""; labels = ""
        for (k = 0; k < words; k++) row = row (k ? ", " : "") w[k]
        for (k = 0; k < n; k++) labels = labels (k ? ", " : "") k
        printf "{\"type\": \"SampleSet\", \"version\": {\"sampleset_schema\": \"3.2.0\"}, "
        printf "\"num_variables\": %d, \"num_rows\": 1, \"sample_data\": {\"type\": \"array\", ", n
        printf "\"data\": [[%s]], \"data_type\": \"uint32\", \"shape\": [1, %d], ", row, words
        printf "\"use_bytes\": false}, \"sample_type\": \"int8\", \"sample_packed\": true, "
        printf "\"vectors\": {}, \"variable_labels\": [%s], \"variable_type\": \"BINARY\", \"info\": {}}\n", labels }' \
  "$TMP/x.txt" >"$TMP/dimod.json"
for format in cbc glpk highs gurobi cplex qbsolv mqlib dimod; do
  answer=$(ls "$TMP/$format".*)
  for from in "" "--from $format"; do
    # shellcheck disable=SC2086
    out=$(import --qubo "$TMP/l0.json" --solution "$answer" $from -o "$TMP/m.json") ||
      fail "import-solution from $format ($from) failed"
    expect_line "$out" "Solution feasible" "yes"
    [[ $(kept_of "$TMP/m.json") == "$want" ]] || fail "$format answer: masks $(kept_of "$TMP/m.json"), want $want"
  done
  got=$("$QPRUNE" energy "$TMP/l0.json" "$answer" --solution-from "$format" | sed -n 's/^Energy *: //p')
  ref=$("$QPRUNE" energy "$TMP/l0.json" "$TMP/x.txt" | sed -n 's/^Energy *: //p')
  [[ $got == "$ref" ]] || fail "energy of the $format answer: $got, of the list: $ref"
done
# The LP names match the LP file too (write-only: its energy is not made up).
out=$(import --qubo "$TMP/l0.lp" --solution "$TMP/cbc.sol" -o "$TMP/m.json")
expect_line "$out" "File energy" "not computed .*write-only.*"
[[ $(kept_of "$TMP/m.json") == "$want" ]] || fail "cbc answer through the LP file: other masks"
# A wrong name is an error naming the file and line.
sed 's/^\(x_[^ ]*\) /y\1 /' "$TMP/gurobi.sol" >"$TMP/bad.sol"
expect_exit 2 import --qubo "$TMP/l0.json" --solution "$TMP/bad.sol" -o "$TMP/m.json"
grep -q "bad.sol:3: expected a variable of the model" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "unknown name message"; }

# (2) The metadata survives convert into every writable format.
for format in qbsolv coo mqlib lp lp-linear mps json; do
  case $format in qbsolv) ext=qubo ;; lp-linear) ext=linear.lp ;; *) ext=$format ;; esac
  file="$TMP/c.$ext"
  "$QPRUNE" convert "$TMP/l0.json" "$file" --to "$format" >/dev/null
  grep -q "qprune.sparsity=0.5\|\"qprune.sparsity\": *\"0.5\"" "$file" || fail "$format lost qprune.sparsity"
  out=$(import --qubo "$file" --solution "$TMP/x.txt" -o "$TMP/m.json") || fail "import from $format"
  [[ $(kept_of "$TMP/m.json") == "$want" ]] || fail "$format: masks $(kept_of "$TMP/m.json"), want $want"
  # ... and a second convert keeps it (read back from the header comments).
  if [[ $format == qbsolv || $format == coo || $format == mqlib ]]; then
    "$QPRUNE" convert "$file" "$TMP/again.json" --from "$format" >/dev/null
    grep -q '"qprune.layer": *"0"' "$TMP/again.json" || fail "$format -> json lost qprune.layer"
  fi
done

# (3) No metadata: refused (exit 2, saying what to give), never a guessed sparsity.
grep -v 'qprune\.' "$TMP/c.qubo" >"$TMP/bare.qubo"
expect_exit 2 import --qubo "$TMP/bare.qubo" --solution "$TMP/x.txt" -o "$TMP/m.json"
grep -q "give --layer, --unit and --sparsity" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "no-metadata message"; }
expect_exit 2 import --qubo "$TMP/bare.qubo" --solution "$TMP/x.txt" --layer 0 --unit mlp -o "$TMP/m.json"
out=$(import --qubo "$TMP/bare.qubo" --solution "$TMP/x.txt" --layer 0 --unit mlp \
  --sparsity 0.5 -o "$TMP/m.json")
[[ $(kept_of "$TMP/m.json") == "$want" ]] || fail "explicit options: other masks"

# (4) Exact numbers: a short decimal stays short; an integer energy prints as an integer.
"$QPRUNE" export "$ckpt" --calib "$stats" --layer 0 --unit mlp --sparsity 0.4 -o "$TMP/m4.qubo" >/dev/null
grep -qx 'c qprune.sparsity=0.4' "$TMP/m4.qubo" || fail "sparsity not written as 0.4: $(grep sparsity "$TMP/m4.qubo")"
cp "$DATA/instances/bqp50.txt" "$TMP/bqp50.txt"
printf '%s\n' 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 >"$TMP/ones.txt"
out=$("$QPRUNE" energy "$TMP/bqp50.txt#1" "$TMP/ones.txt")
grep -Eq '^Energy *: -?[0-9]+$' <<<"$out" || { echo "$out" >&2; fail "integer energy not printed as an integer"; }
