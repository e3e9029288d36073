#!/usr/bin/env bash
# Expert pruning benchmark (issue 22; BENCHMARKS.md "Expert pruning"; docs/pruning_math.md
# section 12). On a Qwen2-MoE checkpoint (default the example MoE model, 4 MoE layers of 16
# experts, top-2, a shared expert): for every calibration part (three disjoint thirds of
# examples/model/calibration.txt, the "seeds"), every sparsity (25 / 50 / 75 % of the routed
# experts) and every method (the QUBO solved by sa and by tabu, then re-scored and improved on the
# exact re-routed error; the baselines frequency (NAEE-style usage), routed-weight and diagonal;
# exhaustive, the optimum of the re-routed error on the samples): mask --unit experts, apply,
# and measure bits per byte on two held-out texts never calibrated on (examples/model/heldout.txt:
# fortunes; heldout_docs.txt: zlib's documentation, another kind of text).
#
#   bash bench/moe_experts.sh [OUT_DIR]
#
# Environment: QPRUNE (default build/qprune), MODEL (default examples/model_moe/checkpoint),
# SPARSITIES (default "0.25 0.5 0.75"), METHODS (default "sa tabu frequency routed-weight diagonal
# exhaustive"), PARTS (default "1 2 3"). Writes OUT_DIR/rows.tsv (one row per part, sparsity and
# method) and OUT_DIR/moe.md (means over the parts). About 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${QPRUNE:-build/qprune}
model=${MODEL:-examples/model_moe/checkpoint}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
sparsities=${SPARSITIES:-0.25 0.5 0.75}
methods=${METHODS:-sa tabu frequency routed-weight diagonal exhaustive}
parts=${PARTS:-1 2 3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source bench/moe_bench_common.bash
split_calibration_thirds "$tmp"
base_h=$(bpb "$model" "$heldout")
base_d=$(bpb "$model" "$docs")
printf 'part\tsparsity\tmethod\tkept\trerouted_rel\tqubo_rerouted_rel\tfortunes_bpb\tdocs_bpb\tseconds\n' \
  >"$out/rows.tsv"
printf '0\t0\toriginal\t16\t0\t\t%s\t%s\t0\n' "$base_h" "$base_d" >>"$out/rows.tsv"
for part in $parts; do
  "$qprune" calibrate "$model" --text "$tmp/calib$part.txt" --context 128 -q \
    -o "$tmp/stats$part" >/dev/null
  for s in $sparsities; do
    for m in $methods; do
      case $m in
        sa | tabu) args=(--solver "$m" --seed "$part") ;;
        *) args=(--method "$m") ;;
      esac
      start=$(date +%s.%N)
      json=$("$qprune" mask "$model" --calib "$tmp/stats$part" --unit experts --sparsity "$s" \
             "${args[@]}" --json -o "$tmp/m.json" 2>/dev/null)
      secs=$(echo "$(date +%s.%N) - $start" | bc)
      rm -rf "$tmp/pruned"
      "$qprune" apply "$model" --masks "$tmp/m.json" -o "$tmp/pruned" >/dev/null
      kept=$(jq '.layers[0].kept' <<<"$json")
      # Mean over the layers of the relative re-routed errors (the QUBO's own best: sa/tabu only).
      rel=$(jq '[.layers[].rerouted_relative_error] | add / length' <<<"$json")
      qrel=$(jq 'if .layers[0].qubo_rerouted_error then
                   [.layers[] | .qubo_rerouted_error / .rerouted_error * .rerouted_relative_error]
                   | add / length else "" end' <<<"$json")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n' "$part" "$s" "$m" "$kept" "$rel" "$qrel" \
        "$(bpb "$tmp/pruned" "$heldout")" "$(bpb "$tmp/pruned" "$docs")" "$secs" >>"$out/rows.tsv"
      echo "part $part sparsity $s $m: $(tail -1 "$out/rows.tsv" | cut -f5-)" >&2
    done
  done
done

python3 - "$out/rows.tsv" "$out/moe.md" <<'PY'
import csv, math, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
base = rows[0]
bh, bd = float(base["fortunes_bpb"]), float(base["docs_bpb"])
groups = {}
for r in rows[1:]:
    groups.setdefault((float(r["sparsity"]), r["method"]), []).append(r)
lines = [f"Original: fortunes {bh:.4f} bits per byte (perplexity {2 ** bh:.4f}), "
         f"docs {bd:.4f}.", "",
         "| experts removed | method | kept / 16 | re-routed error (QUBO's own) | fortunes bpb | "
         "fortunes ppl | vs exhaustive | docs bpb | docs vs exhaustive | seconds |",
         "|---|---|---|---|---|---|---|---|---|---|"]
mean = lambda rs, k: statistics.mean(float(r[k]) for r in rs)
for (s, m), rs in sorted(groups.items()):
    ex = groups.get((s, "exhaustive"))
    h, d = mean(rs, "fortunes_bpb"), mean(rs, "docs_bpb")
    rel = mean(rs, "rerouted_rel")
    q = f" ({100 * mean(rs, 'qubo_rerouted_rel'):.2f} %)" if rs[0]["qubo_rerouted_rel"] else ""
    vs = vd = "n/a"
    if ex:
        # perplexity ratio to the exhaustive masks' (2^bpb), in percent
        vs = f"{100 * (2 ** (h - mean(ex, 'fortunes_bpb')) - 1):+.2f} %"
        vd = f"{100 * (2 ** (d - mean(ex, 'docs_bpb')) - 1):+.2f} %"
    lines.append(f"| {100 * s:.0f} % | {m} | {rs[0]['kept']} | {100 * rel:.2f} %{q} | {h:.4f} | "
                 f"{2 ** h:.4f} | {vs} | {d:.4f} | {vd} | {mean(rs, 'seconds'):.1f} |")
lines.append("")
lines.append(f"Means over {len(next(iter(groups.values())))} calibration parts; 'vs exhaustive': "
             "the perplexity relative to the exhaustive masks' (same part, same sparsity).")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
