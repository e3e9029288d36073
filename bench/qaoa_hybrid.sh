#!/usr/bin/env bash
# The hybrid qaoa (warm-start QAOA inside the energy-impact decomposition, issue 17 point 5)
# end to end through `qprune solve --json`:
#  1. random dense n = 22 QUBOs (bench/random_dense_instance.sh 22 SEED, integers in [-100, 100];
#     seed 3 is the instance of bench/time_limits.sh): exact's optimum, greedy, qaoa with its
#     defaults (decomposed above 20 qubits) and with --qaoa-no-warm-start; energy and the run's
#     wall_time_s, median of RUNS runs;
#  2. the pruning layers of the example model (examples/model: MLP of layers 0-3 at sparsity 0.4,
#     heads of layers 0-3 at 0.5; calibrated with 20000 tokens, context 128, as examples/run):
#     sa and qaoa with the same seeds, interleaved (sa seed s, qaoa seed s, sa seed s + 1, ...),
#     best energy and wall_time_s per run; the table gives medians over SEEDS seeds and the ratio
#     of the medians.
#   bench/qaoa_hybrid.sh build/qprune [WORKDIR] [RUNS] [SEEDS]
set -euo pipefail
QPRUNE=$1
WORK=${2:-$(mktemp -d)}
RUNS=${3:-3}
SEEDS=${4:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
mkdir -p "$WORK"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

# solve FILE ARGS...: "energy wall_time_s" of one run.
solve() {
  local file=$1; shift
  "$QPRUNE" solve "$file" --json --samples 1 -q "$@" >"$WORK/out.json"
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(r["samples"][0]["energy"], r["wall_time_s"])' "$WORK/out.json"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "== random dense n = 22: energy (median wall_time_s over $RUNS runs)"
printf '%-6s %12s %12s %22s %22s\n' seed exact greedy "qaoa (warm start)" "qaoa --qaoa-no-warm-start"
for seed in 3 4 5 6 7; do
  f="$WORK/dense22_$seed.qubo"
  [[ -s $f ]] || "$HERE/random_dense_instance.sh" 22 "$seed" >"$f"
  exact=$(solve "$f" --solver exact | cut -d' ' -f1)
  greedy=$(solve "$f" --solver greedy --seed 1 | cut -d' ' -f1)
  : >"$WORK/warm" && : >"$WORK/plain"
  for ((r = 0; r < RUNS; r++)); do
    solve "$f" --solver qaoa --seed 1 >>"$WORK/warm"
    solve "$f" --solver qaoa --seed 1 --qaoa-no-warm-start >>"$WORK/plain"
  done
  warm_e=$(head -1 "$WORK/warm" | cut -d' ' -f1)
  plain_e=$(head -1 "$WORK/plain" | cut -d' ' -f1)
  warm_t=$(cut -d' ' -f2 "$WORK/warm" | median)
  plain_t=$(cut -d' ' -f2 "$WORK/plain" | median)
  printf '%-6s %12s %12s %12s (%7.3f s) %12s (%7.2f s)\n' "$seed" "$exact" "$greedy" "$warm_e" \
    "$warm_t" "$plain_e" "$plain_t"
done

CKPT=$ROOT/examples/model/checkpoint
STATS=$WORK/stats.safetensors
if [[ ! -s $STATS ]]; then
  "$QPRUNE" calibrate "$CKPT" --text "$ROOT/examples/model/calibration.txt" --tokens 20000 \
    --context 128 -o "$STATS" -q >/dev/null
fi
echo "== example model pruning layers: median over seeds 1..$SEEDS, sa and qaoa interleaved"
printf '%-12s %4s %18s %18s %9s %9s %7s %s\n' layer n "sa energy" "qaoa energy" "sa t (s)" \
  "qaoa t" "t ratio" "qaoa <= sa (runs)"
for layer in 0 1 2 3; do
  for unit in mlp heads; do
    sparsity=0.4
    [[ $unit == heads ]] && sparsity=0.5
    f="$WORK/layer${layer}_$unit.json"
    [[ -s $f ]] || "$QPRUNE" export "$CKPT" --calib "$STATS" --layer "$layer" --unit "$unit" \
      --sparsity "$sparsity" -o "$f" >/dev/null
    : >"$WORK/sa" && : >"$WORK/qaoa"
    for ((s = 1; s <= SEEDS; s++)); do
      solve "$f" --solver sa --seed "$s" >>"$WORK/sa"
      solve "$f" --solver qaoa --seed "$s" >>"$WORK/qaoa"
    done
    n=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["num_variables"])' "$WORK/out.json")
    sa_e=$(cut -d' ' -f1 "$WORK/sa" | median)
    qa_e=$(cut -d' ' -f1 "$WORK/qaoa" | median)
    sa_t=$(cut -d' ' -f2 "$WORK/sa" | median)
    qa_t=$(cut -d' ' -f2 "$WORK/qaoa" | median)
    wins=$(paste -d' ' "$WORK/sa" "$WORK/qaoa" | awk '{ d = $3 - $1; m = ($1 < 0 ? -$1 : $1);
      if (d <= 1e-9 * (m > 1 ? m : 1)) w++ } END { print w + 0 }')
    printf '%-12s %4s %18.10g %18.10g %9.4f %9.4f %7.2f %s/%s\n' "layer$layer.$unit" "$n" "$sa_e" \
      "$qa_e" "$sa_t" "$qa_t" "$(awk -v a="$qa_t" -v b="$sa_t" 'BEGIN { print a / b }')" "$wins" "$SEEDS"
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
