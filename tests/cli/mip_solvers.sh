# Open-source MIP solvers read qprune's linearised exports (`--to lp-linear`, free `.mps`) and
# reach the optimum (qprune's exact solver, or the published one): CBC and GLPK (Debian coinor-cbc,
# glpk-utils) and HiGHS (npm `highs`, installed by .ci/setup into tests/clients/node_modules). Each
# solver's own answer file (CBC's -solu output, glpsol -w, HiGHS's solution file) is read back by
# `qprune energy --solution-from TOOL` and its energy recomputed, so a solver's objective is not
# taken on trust; for the layer problems the answer also goes through `import-solution` (the LP/MPS
# file's metadata gives layer, unit and sparsity) and must give exact's masks. Instances: Beasley
# bqp50.1 (proven optimum -2098, couplings of both signs), and the calibrated MLP and heads problems
# of layer 0 of the tiny GQA checkpoint (keep-k equality constraints, an offset). A missing solver
# is skipped with a message (exit 77 after the others ran); under CI (CI=true) a missing solver
# fails the test instead.
source "$(dirname "$0")/common.bash" "$@"
clients=$(cd "$(dirname "$0")/../clients" && pwd)
ckpt="$DATA/checkpoints/tiny-llama-gqa"
cp "$DATA/instances/bqp50.txt" "$TMP/bqp50.txt"
"$QPRUNE" convert "$TMP/bqp50.txt#1" "$TMP/bqp50.json" >/dev/null
for unit in mlp heads; do
  "$QPRUNE" export "$ckpt" --calib "$ckpt.stats.safetensors" --layer 0 --unit "$unit" \
    --sparsity 0.5 -o "$TMP/$unit.json" >/dev/null
done

# energy_of FILE.json ANSWER FORMAT: the energy qprune computes for the answer.
energy_of() { "$QPRUNE" energy "$1" "$2" --solution-from "$3" | sed -n 's/^Energy *: //p'; }
# same A B: equal to 1e-9 relative (the files print 17 significant digits).
same() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a);
  exit !(d <= 1e-9 * (m > 1 ? m : 1)) }'; }
# kept_of MASKS: the kept lists of a masks file, on one line.
kept_of() { tr -d ' \n' <"$1" | grep -o '"kept":\[[^]]*\]'; }

solve_with() {  # solve_with TOOL FILE ANSWER -> writes the tool's answer file, prints its objective
  local tool=$1 file=$2 answer=$3
  case $tool in
    cbc)
      cbc "$file" -solve -solu "$answer" >"$TMP/cbc.log" 2>&1 || { cat "$TMP/cbc.log" >&2; return 1; }
      grep -q '^Optimal' "$answer" || { cat "$answer" >&2; return 1; }
      sed -n 's/^Optimal - objective value *//p' "$answer" ;;
    glpk)
      local flag=--lp; [[ $file == *.mps ]] && flag=--freemps
      glpsol "$flag" "$file" -w "$answer" >"$TMP/glpk.log" 2>&1 || { cat "$TMP/glpk.log" >&2; return 1; }
      grep -q 'INTEGER OPTIMAL SOLUTION FOUND' "$TMP/glpk.log" || { cat "$TMP/glpk.log" >&2; return 1; }
      awk '$1 == "s" { print $6 }' "$answer" ;;
    highs)
      node "$clients/highs_solve.cjs" "$file" "$answer" || return 1
      grep -qx 'Optimal' "$answer" || { cat "$answer" >&2; return 1; }
      sed -n 's/^Objective //p' "$answer" ;;
  esac
}

available() {  # available TOOL: the solver can run here
  case $1 in
    cbc) command -v cbc >/dev/null ;;
    glpk) command -v glpsol >/dev/null ;;
    highs) command -v node >/dev/null && [[ -d $clients/node_modules/highs ]] ;;
  esac
}

skipped=()
for tool in cbc glpk highs; do
  if ! available "$tool"; then
    skipped+=("$tool")
    continue
  fi
  for problem in bqp50 mlp heads; do
    if [[ $problem == bqp50 ]]; then  # 2^50 states: the proven optimum of known_values.csv
      want=$(awk -F, '$1 == "beasley-orlib" && $2 == "bqp50.1" { print -$5 }' \
        "$DATA/instances/known_values.csv")
    else
      want=$("$QPRUNE" solve "$TMP/$problem.json" --solver exact -o "$TMP/exact.txt" |
        sed -n 's/^Best energy *: //p')
      "$QPRUNE" import-solution "$ckpt" --calib "$ckpt.stats.safetensors" --qubo "$TMP/$problem.json" \
        --solution "$TMP/exact.txt" -o "$TMP/exact_masks.json" >/dev/null
      [[ -n $(kept_of "$TMP/exact_masks.json") ]] || fail "no kept list in exact's masks"
    fi
    for form in lp mps; do
      file="$TMP/$problem.$form"
      to=lp-linear; [[ $form == mps ]] && to=mps
      "$QPRUNE" convert "$TMP/$problem.json" "$file" --to "$to" >/dev/null
      answer="$TMP/$tool.$problem.$form.sol"
      objective=$(solve_with "$tool" "$file" "$answer") || fail "$tool could not solve $problem.$form"
      got=$(energy_of "$TMP/$problem.json" "$answer" "$tool") || fail "$tool's answer for $problem.$form unreadable"
      same "$got" "$want" || fail "$tool on $problem.$form: answer's energy $got, exact's optimum $want"
      same "$objective" "$want" || fail "$tool on $problem.$form: objective $objective, exact's $want"
      [[ $problem == bqp50 ]] && continue
      # The answer round-trips to masks through the LP/MPS file itself (its metadata).
      "$QPRUNE" import-solution "$ckpt" --calib "$ckpt.stats.safetensors" --qubo "$file" \
        --solution "$answer" -o "$TMP/masks.json" >/dev/null || fail "$tool: import-solution of $problem.$form"
      [[ $(kept_of "$TMP/masks.json") == "$(kept_of "$TMP/exact_masks.json")" ]] ||
        fail "$tool on $problem.$form: masks $(kept_of "$TMP/masks.json"), exact's $(kept_of "$TMP/exact_masks.json")"
    done
  done
done
if ((${#skipped[@]})); then
  why="SKIPPED solvers: ${skipped[*]} (install: apt-get install coinor-cbc glpk-utils; npm ci --prefix tests/clients, as .ci/setup does)"
  [[ ${CI:-} == true ]] && fail "$why; CI must run them"
  echo "$why" >&2
  exit 77
fi
