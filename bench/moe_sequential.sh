#!/usr/bin/env bash
# Sequential expert calibration against one-shot (issue 22; BENCHMARKS.md "Expert pruning"). One-shot
# masks choose every MoE layer's experts on the ORIGINAL model's block inputs; sequential masks
# choose layer L on the inputs the model pruned in layers < L produces (`calibrate --expert-masks`,
# the removed experts never routed to), layer by layer, as `prune` does for neurons and heads.
# For every calibration part (three disjoint thirds of examples/model/calibration.txt), sparsity
# and method (the QUBO by sa, then swaps on the exact re-routed error; the frequency and
# routed-weight baselines, which are sequential too, so that every method sees the same
# pipeline): both masks, apply, bits per byte on the two held-out texts (fortunes, zlib's manual),
# never calibrated on.
#
#   bash bench/moe_sequential.sh [OUT_DIR]
#
# Environment: QPRUNE (default build/qprune), MODEL (default examples/model_moe/checkpoint),
# SPARSITIES (default "0.5 0.75"), METHODS (default "sa frequency routed-weight"), PARTS (default
# "1 2 3"). Writes OUT_DIR/rows.tsv and OUT_DIR/sequential.md (means over the parts).
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${QPRUNE:-build/qprune}
model=${MODEL:-examples/model_moe/checkpoint}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
sparsities=${SPARSITIES:-0.5 0.75}
methods=${METHODS:-sa frequency routed-weight}
parts=${PARTS:-1 2 3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source bench/moe_bench_common.bash
split_calibration_thirds "$tmp"
layers=$(jq '.num_hidden_layers' "$model/config.json")
printf 'part\tsparsity\tmethod\tmode\tfortunes_bpb\tdocs_bpb\tseconds\n' >"$out/rows.tsv"
for part in $parts; do
  calib=(--text "$tmp/calib$part.txt" --context 128 -q)
  "$qprune" calibrate "$model" "${calib[@]}" -o "$tmp/stats" >/dev/null
  for s in $sparsities; do
    for m in $methods; do
      case $m in
        sa | tabu) args=(--solver "$m" --seed "$part") ;;
        *) args=(--method "$m") ;;
      esac
      mask() {  # statistics file $1 -> masks $2 (every MoE layer)
        "$qprune" mask "$model" --calib "$1" --unit experts --sparsity "$s" "${args[@]}" \
          -o "$2" >/dev/null 2>&1
      }
      start=$(date +%s.%N)
      mask "$tmp/stats" "$tmp/oneshot.json"
      oneshot_s=$(echo "$(date +%s.%N) - $start" | bc)
      # Sequential: layer L's entry from statistics taken under the entries of the layers before.
      start=$(date +%s.%N)
      jq '.entries = []' "$tmp/oneshot.json" >"$tmp/seq.json"
      for ((l = 0; l < layers; l++)); do
        if [[ $l == 0 ]]; then
          cp "$tmp/stats" "$tmp/stats_l"
        else
          "$qprune" calibrate "$model" "${calib[@]}" --expert-masks "$tmp/seq.json" \
            -o "$tmp/stats_l" >/dev/null
        fi
        mask "$tmp/stats_l" "$tmp/layer.json"
        jq --slurpfile m "$tmp/layer.json" --argjson l "$l" \
          '.entries += [$m[0].entries[] | select(.layer == $l)]' "$tmp/seq.json" >"$tmp/seq2.json"
        mv "$tmp/seq2.json" "$tmp/seq.json"
      done
      seq_s=$(echo "$(date +%s.%N) - $start" | bc)
      for mode in oneshot seq; do
        "$qprune" apply "$model" --masks "$tmp/$mode.json" -o "$tmp/pruned" --overwrite >/dev/null
        secs=$oneshot_s
        [[ $mode == seq ]] && secs=$seq_s
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n' "$part" "$s" "$m" "$mode" \
          "$(bpb "$tmp/pruned" "$heldout")" "$(bpb "$tmp/pruned" "$docs")" "$secs" >>"$out/rows.tsv"
      done
      tail -2 "$out/rows.tsv"
    done
  done
done
python3 - "$out/rows.tsv" >"$out/sequential.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
groups = {}
for r in rows:
    groups.setdefault((r["sparsity"], r["method"], r["mode"]), []).append(r)
print("| experts removed | method | one-shot fortunes bpb | sequential fortunes bpb | change |"
      " one-shot docs bpb | sequential docs bpb | change | seconds one-shot / sequential |")
print("|---|---|---|---|---|---|---|---|---|")
for (s, m, mode) in sorted(groups):
    if mode != "oneshot":
        continue
    a, b = groups[(s, m, "oneshot")], groups[(s, m, "seq")]
    mean = lambda rs, k: statistics.mean(float(r[k]) for r in rs)
    fa, fb, da, db = (mean(a, "fortunes_bpb"), mean(b, "fortunes_bpb"), mean(a, "docs_bpb"),
                      mean(b, "docs_bpb"))
    print(f"| {float(s) * 100:.0f} % | {m} | {fa:.4f} | {fb:.4f} | {100 * (fb / fa - 1):+.2f} % |"
          f" {da:.4f} | {db:.4f} | {100 * (db / da - 1):+.2f} % |"
          f" {mean(a, 'seconds'):.1f} / {mean(b, 'seconds'):.1f} |")
print(f"\nMeans over {len(set(r['part'] for r in rows))} calibration parts.")
PY
cat "$out/sequential.md"
