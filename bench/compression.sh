#!/usr/bin/env bash
# Compression benchmark (BENCHMARKS.md, "Compression"): every unit-selection method under the same
# pipeline, and the pipeline's own choices, on the example model and on a second, independently
# trained model, over several calibration samples. Held-out perplexity and bits per byte on two
# texts the models never saw: held-out fortunes (the training domain) and zlib's documentation
# (another domain). Medians with the spread over calibration seeds.
#
#   bash bench/compression.sh [OUT_DIR]
#
# Environment: SECOND_MODEL (a checkpoint folder; default ../models/second/checkpoint beside the repository; the
# command that trains it is in examples/model/README.md), MODELS (the checkpoints to run, space
# separated; default the example model and SECOND_MODEL), SEEDS (default "1 2 3"), TOKENS (calibration tokens
# per run, default 20000), SPARSITY / HEAD_SPARSITY (default 0.4 / 0.5), QPRUNE (the binary),
# ONLY (a regular expression: run only the rows whose name matches; with APPEND=1 the runs are
# added to an existing OUT_DIR/runs.jsonl, e.g. to finish an interrupted benchmark).
# About an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${QPRUNE:-build/qprune}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
second=${SECOND_MODEL:-$(cd "$(dirname "$0")/.." && pwd)/../models/second/checkpoint}
seeds=${SEEDS:-1 2 3}
tokens=${TOKENS:-20000}
sparsity=${SPARSITY:-0.4}
head_sparsity=${HEAD_SPARSITY:-0.5}
calib=examples/model/calibration.txt
evals=(examples/model/heldout.txt examples/model/heldout_docs.txt)
if [[ -n ${MODELS:-} ]]; then
  read -r -a models <<<"$MODELS"
else
  models=(examples/model/checkpoint)
  if [[ -d $second ]]; then
    models+=("$second")
  else
    echo "second model not found at $second: skipped (train it with the command in BENCHMARKS.md)" >&2
  fi
fi

# name | prune options (the rest is the same for every row)
configs=(
  "magnitude|--method magnitude"
  "diagonal (Wanda-sp)|--method diagonal"
  "flap (fluctuation)|--method flap"
  "obs (ZipLM greedy)|--method obs"
  "tabu (refit objective)|--method tabu"
  "sa (refit objective)|--method sa"
  "qaoa (refit surrogate)|--method qaoa --reads 1"
  "obs, uniform allocation|--method obs --allocation uniform"
  "obs, layer target|--method obs --target layer"
  "obs, one-shot|--method obs --one-shot"
  "obs, uniform, layer, one-shot|--method obs --allocation uniform --target layer --one-shot"
  "sa QUBO, no refit, one-shot, uniform|--method sa --no-refit --allocation uniform --target layer --one-shot --reads 4"
)

runs=$out/runs.jsonl
[[ ${APPEND:-0} == 1 ]] || : >"$runs"
only=${ONLY:-.}
for model in "${models[@]}"; do
  for e in "${evals[@]}"; do
    [[ "original" =~ $only ]] || continue
    "$qprune" perplexity "$model" --text "$e" --context 128 --json -q |
      python3 -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'model': sys.argv[1], 'config': 'original', 'seed': 0, 'eval': sys.argv[2], 'perplexity': r['perplexity'], 'bits_per_byte': r['bits_per_byte'], 'parameters_stored': r['parameters'], 'parameters_effective': r['parameters']}))" "$model" "$e" >>"$runs"
  done
  for config in "${configs[@]}"; do
    name=${config%%|*}
    [[ $name =~ $only ]] || continue
    read -r -a opts <<<"${config#*|}"
    for seed in $seeds; do
      echo "== $model: $name, calibration seed $seed" >&2
      rm -rf "$out/pruned"
      start=$(date +%s.%N)
      "$qprune" prune "$model" --text "$calib" --tokens "$tokens" --calib-seed "$seed" --context 128 \
        --sparsity "$sparsity" --head-sparsity "$head_sparsity" --seed "$seed" "${opts[@]}" \
        --eval "${evals[0]}" --eval "${evals[1]}" -o "$out/pruned" --json -q >"$out/run.json"
      end=$(date +%s.%N)
      python3 - "$model" "$name" "$seed" "$start" "$end" "$out/run.json" >>"$runs" <<'EOF'
import json, sys
model, name, seed, start, end, path = sys.argv[1:]
r = json.load(open(path))
for e in r["eval"]:
    print(json.dumps({"model": model, "config": name, "seed": int(seed), "eval": e["file"],
                      "perplexity": e["perplexity"], "bits_per_byte": e["bits_per_byte"],
                      "parameters_stored": r["parameters_stored"],
                      "parameters_effective": r["parameters_effective"],
                      "refit_error_total": r["objective_total"],
                      "obs_total": r.get("obs_total"), "diagonal_total": r["diagonal_total"],
                      "seconds": float(end) - float(start), "layers": r["layers"]}))
EOF
    done
  done
done
rm -rf "$out/pruned" "$out/run.json"

python3 - "$runs" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
models = list(dict.fromkeys(r["model"] for r in rows))
evals = list(dict.fromkeys(r["eval"] for r in rows))
def cell(values, fmt="{:.3f}"):
    if len(values) == 1:
        return fmt.format(values[0])
    return (fmt + " ({}-{})").format(statistics.median(values), fmt.format(min(values)),
                                     fmt.format(max(values)))
for model in models:
    print(f"\n### {model}\n")
    head = "| pipeline | params stored / effective |"
    for e in evals:
        head += f" ppl {e.split('/')[-1]} | bpb {e.split('/')[-1]} |"
    print(head + " refit error (sum) | s/run |")
    print("|" + "---|" * (head.count("|") + 1))
    configs = list(dict.fromkeys(r["config"] for r in rows if r["model"] == model))
    for c in configs:
        sel = [r for r in rows if r["model"] == model and r["config"] == c]
        first = sel[0]
        line = f"| {c} | {first['parameters_stored']:,} / {first['parameters_effective']:,} |"
        for e in evals:
            s = [r for r in sel if r["eval"] == e]
            line += f" {cell([r['perplexity'] for r in s])} | {cell([r['bits_per_byte'] for r in s])} |"
        s0 = [r for r in sel if r["eval"] == evals[0]]
        if "refit_error_total" in first:
            line += f" {cell([r['refit_error_total'] for r in s0], '{:.4g}')} |"
            line += f" {statistics.median([r['seconds'] for r in s0]):.1f} |"
        else:
            line += " | |"
        print(line)
    # Per layer, for the refit-objective solvers: their error against their own greedy start and
    # the diagonal mask on the same statistics (same run).
    for c in configs:
        if not c.startswith(("tabu", "sa (")):
            continue
        print(f"\n{c}: per-layer refit error relative to the OBS greedy start and to the diagonal "
              "mask, same statistics (median over seeds; negative = better)\n")
        print("| layer | unit | vs greedy | vs diagonal |")
        print("|---|---|---|---|")
        sel = [r for r in rows if r["model"] == model and r["config"] == c and r["eval"] == evals[0]]
        keys = [(l["layer"], l["unit"]) for l in sel[0]["layers"]]
        for k in keys:
            g, d = [], []
            for r in sel:
                l = next(x for x in r["layers"] if (x["layer"], x["unit"]) == k)
                if l["obs_refit_error"] is None:  # the allocation kept the whole layer
                    continue
                g.append(100 * (l["refit_error"] - l["obs_refit_error"]) / l["obs_refit_error"])
                d.append(100 * (l["refit_error"] - l["diagonal_refit_error"]) / l["diagonal_refit_error"])
            if not g:
                print(f"| {k[0]} | {k[1]} | (kept whole) | |")
                continue
            print(f"| {k[0]} | {k[1]} | {statistics.median(g):+.2f} % (worst {max(g):+.2f} %) "
                  f"| {statistics.median(d):+.2f} % (worst {max(d):+.2f} %) |")
EOF
echo "runs: $runs" >&2
