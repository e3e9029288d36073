#!/usr/bin/env bash
# Behaviour-targeted pruning benchmark (issue 21; BENCHMARKS.md "Behaviour-targeted pruning";
# docs/pruning_math.md section 11). On the example model, A = zlib's documentation (the behaviour
# to suppress: a stand-in, the issue's German model is not built yet) and B = fortunes (kept).
# Calibration: the first half of examples/model/heldout_docs.txt (A) and examples/model/
# calibration.txt (B); measurement on held-out text never calibrated on: the second half of
# heldout_docs.txt (A) and examples/model/heldout.txt (B). For every MLP sparsity: the plain
# pipeline calibrated on B, the contrastive QUBO over lambda (sa), the same at lambda 1 with tabu
# and greedy (objective gap per layer), the contrastive-diagonal baseline, and directional
# ablation at every layer (a weight edit, not sparsity dependent). Each row: bits per byte on held-
# out A and B, their increases over the original, selectivity = increase A / increase B.
#
#   bash bench/behaviour.sh [OUT_DIR]
#
# Environment: QPRUNE (binary, default build/qprune), SPARSITIES (default "0.05 0.1 0.2"),
# LAMBDAS (default "0.5 1 2 4"), TOKENS (calibration tokens per set, default 18000), EVAL_BYTES
# (bytes of each held-out text measured, default 18000). Writes OUT_DIR/rows.tsv,
# OUT_DIR/gaps.tsv, OUT_DIR/behaviour.md (the tables) and OUT_DIR/behaviour.svg (increase on A
# against increase on B). About 5 minutes on 2 cores.
#
# Another model and texts (the English+German model of issue 21: bench/behaviour.sh with
# MODEL_DIR=examples/model_de, see BENCHMARKS.md "Issue 21 on the English+German model"):
# MODEL (checkpoint), A_CALIB, A_HELDOUT, B_CALIB, B_HELDOUT (texts), A_NAME, B_NAME (plot
# labels), CONTEXT (window of calibrate / perplexity / ablate-direction, default 256),
# ABLATE_LAYERS (default "0 1 2 3"). MODEL_DIR=examples/model_de sets them all for that model
# (A = German, B = English, context 128). Protect mode (issue 21's second goal):
# PROTECT_LAMBDAS (default none) adds, at PROTECT_SPARSITY of the MLP (default 0.4) and
# PROTECT_HEAD_SPARSITY of the heads (default 0.5), the plain pipeline calibrated on B and
# `--protect A` at each lambda (rows "protect-plain-B", "protect-lL"; apply with B's statistics).
# REFIT=1 adds after every masked row the same masks applied with --refit (row "NAME+refit"; protect
# masks are refitted on both sets, docs/pruning_math.md 11.7). OUT_DIR/behaviour_lambda.svg plots
# the QUBO rows over lambda, one line per sparsity (increase on A, increase on B in %,
# selectivity), with the contrastive-diagonal baseline dashed at each sparsity.
set -euo pipefail
cd "$(dirname "$0")/.."
qprune=${QPRUNE:-build/qprune}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
sparsities=${SPARSITIES:-0.05 0.1 0.2}
lambdas=${LAMBDAS:-0.5 1 2 4}
tokens=${TOKENS:-18000}
eval_bytes=${EVAL_BYTES:-18000}
if [ "${MODEL_DIR:-}" = examples/model_de ]; then
  : "${MODEL:=examples/model_de/checkpoint}" "${CONTEXT:=128}"
  : "${A_CALIB:=examples/model_de/calibration_de.txt}" "${A_HELDOUT:=examples/model_de/heldout_de.txt}"
  : "${B_CALIB:=examples/model_de/calibration_en.txt}" "${B_HELDOUT:=examples/model_de/heldout_en.txt}"
  : "${A_NAME:=German}" "${B_NAME:=English}"
fi
model=${MODEL:-examples/model/checkpoint}
context=${CONTEXT:-256}
ablate_layers=${ABLATE_LAYERS:-0 1 2 3}
a_name=${A_NAME:-zlib docs} b_name=${B_NAME:-fortunes}
if [ -n "${A_CALIB:-}" ]; then
  cp "$A_CALIB" "$out/A_calib.txt"
  head -c "$eval_bytes" "$A_HELDOUT" >"$out/A_heldout.txt"
else
  docs=examples/model/heldout_docs.txt
  half=$(($(wc -c <"$docs") / 2))
  head -c "$half" "$docs" >"$out/A_calib.txt"
  tail -c +"$((half + 1))" "$docs" | head -c "$eval_bytes" >"$out/A_heldout.txt"
fi
b_calib=${B_CALIB:-examples/model/calibration.txt}
head -c "$eval_bytes" "${B_HELDOUT:-examples/model/heldout.txt}" >"$out/B_heldout.txt"
"$qprune" calibrate "$model" --text "$out/A_calib.txt" --tokens "$tokens" --context "$context" -q \
  -o "$out/A.stats" >/dev/null
"$qprune" calibrate "$model" --text "$b_calib" --tokens "$tokens" --context "$context" -q \
  -o "$out/B.stats" >/dev/null

measure() {  # measure NAME SPARSITY CHECKPOINT -> one row of rows.tsv
  "$qprune" perplexity "$3" --suppress-text "$out/A_heldout.txt" --preserve-text "$out/B_heldout.txt" \
    --reference "$model" --context "$context" -q --json >"$out/ppl.json"
  python3 - "$1" "$2" "$out/ppl.json" >>"$out/rows.tsv" <<'PY'
import json, sys
d = json.load(open(sys.argv[3]))
sel = d["selectivity"]
print("\t".join([sys.argv[1], sys.argv[2], "%.4f" % d["suppress_bits_per_byte"],
                 "%.4f" % d["preserve_bits_per_byte"], "%.4f" % d["suppress_increase"],
                 "%.4f" % d["preserve_increase"],
                 "%.2f" % sel if isinstance(sel, float) else "n/a"]))
PY
}
prune_and_measure() {  # NAME SPARSITY MASK_OPTIONS...; with REFIT=1 also the row NAME+refit
  local name=$1 s=$2
  shift 2
  "$qprune" mask "$model" --sparsity "$s" "$@" --json -o "$out/m.json" 2>/dev/null >"$out/mask_${name}_$s.json"
  "$qprune" apply "$model" --masks "$out/m.json" --calib "$out/B.stats" -o "$out/pruned" --overwrite >/dev/null
  measure "$name" "$s" "$out/pruned"
  if [ "${REFIT:-0}" = 1 ]; then  # suppress masks: refit on B; protect masks: on B + w A (11.7)
    "$qprune" apply "$model" --masks "$out/m.json" --calib "$out/B.stats" --refit -o "$out/pruned" \
      --overwrite >/dev/null
    measure "$name+refit" "$s" "$out/pruned"
  fi
}

printf "method\tsparsity\tA_bpb\tB_bpb\tA_increase\tB_increase\tselectivity\n" >"$out/rows.tsv"
measure original 0 "$model"
contrast=(--preserve "$out/B.stats" --suppress "$out/A.stats")
for s in $sparsities; do
  prune_and_measure "plain-B-sa" "$s" --calib "$out/B.stats" --solver sa
  prune_and_measure "contrastive-diagonal" "$s" "${contrast[@]}" --method contrastive-diagonal
  for l in $lambdas; do
    prune_and_measure "qubo-sa-l$l" "$s" "${contrast[@]}" --behaviour-weight "$l" --solver sa
  done
  for solver in tabu greedy; do
    prune_and_measure "qubo-$solver-l1" "$s" "${contrast[@]}" --behaviour-weight 1 --solver $solver
  done
done
for layer in $ablate_layers; do
  "$qprune" ablate-direction "$model" --suppress-text "$out/A_calib.txt" \
    --preserve-text "$b_calib" --tokens "$tokens" --context "$context" --layer "$layer" \
    -o "$out/ablated" --overwrite >/dev/null
  measure "direction-ablation-L$layer" 0 "$out/ablated"
done
if [ -n "${PROTECT_LAMBDAS:-}" ]; then
  ps=${PROTECT_SPARSITY:-0.4}
  heads=(--unit both --head-sparsity "${PROTECT_HEAD_SPARSITY:-0.5}")
  prune_and_measure "protect-plain-B" "$ps" --calib "$out/B.stats" "${heads[@]}" --solver sa
  for l in $PROTECT_LAMBDAS; do
    prune_and_measure "protect-l$l" "$ps" --preserve "$out/B.stats" --protect "$out/A.stats" \
      --behaviour-weight "$l" "${heads[@]}" --solver sa
  done
fi

python3 - "$out" "$sparsities" "$a_name" "$b_name" "$model" <<'PY'
import json, sys, os
out, sparsities = sys.argv[1], sys.argv[2].split()
a_name, b_name, model = sys.argv[3], sys.argv[4], sys.argv[5]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "rows.tsv"))][1:]
md = ["| method | MLP sparsity | A bpb | B bpb | A increase | B increase | selectivity |",
      "|---|---|---|---|---|---|---|"]
for r in rows:
    md.append("| " + " | ".join(r) + " |")
# Greedy vs sa / tabu on the same lambda-1 problems, per layer.
gaps = ["| MLP sparsity | layer | greedy | sa | tabu | greedy above best |", "|---|---|---|---|---|---|"]
tsv = ["sparsity\tlayer\tgreedy\tsa\ttabu\tgap"]
for s in sparsities:
    obj = {}
    for solver, name in (("greedy", "qubo-greedy-l1"), ("sa", "qubo-sa-l1"), ("tabu", "qubo-tabu-l1")):
        d = json.load(open(os.path.join(out, "mask_%s_%s.json" % (name, s))))
        obj[solver] = {l["layer"]: l["objective"] for l in d["layers"]}
    for layer in sorted(obj["greedy"]):
        g, a, t = obj["greedy"][layer], obj["sa"][layer], obj["tabu"][layer]
        best = min(g, a, t)
        gap = (g - best) / abs(best) if best != 0 else 0.0
        gaps.append("| %s | %d | %.6g | %.6g | %.6g | %.2f %% |" % (s, layer, g, a, t, 100 * gap))
        tsv.append("%s\t%d\t%.17g\t%.17g\t%.17g\t%.6g" % (s, layer, g, a, t, gap))
open(os.path.join(out, "gaps.tsv"), "w").write("\n".join(tsv) + "\n")
open(os.path.join(out, "behaviour.md"), "w").write("\n".join(md) + "\n\n" + "\n".join(gaps) + "\n")
# SVG: increase on A (y) against increase on B (x), one colour per method family.
pts = [(float(r[5]), float(r[4]), r[0], r[1]) for r in rows
       if r[0] != "original" and not r[0].startswith("protect")]
xs = [p[0] for p in pts] + [0.0]; ys = [p[1] for p in pts] + [0.0]
x0, x1 = min(xs), max(xs); y0, y1 = min(ys), max(ys)
x1 += 0.05 * (x1 - x0 or 1); y1 += 0.05 * (y1 - y0 or 1)
W, H, M = 760, 520, 70
X = lambda v: M + (v - x0) / (x1 - x0 or 1) * (W - 2 * M)
Y = lambda v: H - M - (v - y0) / (y1 - y0 or 1) * (H - 2 * M)
colours = {"plain": "#555555", "contrastive-diagonal": "#1f77b4", "qubo-sa": "#d62728",
           "qubo-tabu": "#ff7f0e", "qubo-greedy": "#2ca02c", "direction": "#9467bd"}
def colour(name):
    for k, c in colours.items():
        if name.startswith(k): return c
    return "#000000"
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
       '<rect width="100%" height="100%" fill="white"/>',
       '<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>' % (M, H - M, W - M, H - M),
       '<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>' % (M, M, M, H - M),
       '<text x="%g" y="%g" text-anchor="middle">increase of bits per byte on held-out B (%s, preserved)</text>' % (W / 2, H - 25, b_name),
       '<text x="18" y="%g" transform="rotate(-90 18 %g)" text-anchor="middle">increase on held-out A (%s, suppressed)</text>' % (H / 2, H / 2, a_name),
       '<text x="%g" y="25" text-anchor="middle" font-size="13">Behaviour-targeted pruning, %s (up-left is selective)</text>' % (W / 2, model)]
for k in range(6):
    xv = x0 + k * (x1 - x0) / 5; yv = y0 + k * (y1 - y0) / 5
    svg.append('<text x="%g" y="%g" text-anchor="middle">%.3f</text>' % (X(xv), H - M + 15, xv))
    svg.append('<text x="%g" y="%g" text-anchor="end">%.3f</text>' % (M - 5, Y(yv) + 4, yv))
for xb, ya, name, s in pts:
    svg.append('<circle cx="%g" cy="%g" r="4" fill="%s"><title>%s s=%s</title></circle>' % (X(xb), Y(ya), colour(name), name, s))
    svg.append('<text x="%g" y="%g" font-size="8" fill="%s">%s%s</text>' % (X(xb) + 5, Y(ya) - 3, colour(name), name.replace("qubo-", ""), "" if s == "0" else " " + s))
for i, (k, c) in enumerate(colours.items()):
    svg.append('<circle cx="%g" cy="%g" r="4" fill="%s"/><text x="%g" y="%g">%s</text>' % (W - 190, 50 + 15 * i, c, W - 182, 54 + 15 * i, k))
svg.append("</svg>")
open(os.path.join(out, "behaviour.svg"), "w").write("\n".join(svg) + "\n")

# SVG over lambda and sparsity: three panels (A increase, B increase in %, selectivity) against
# lambda (log scale), one line per sparsity for the QUBO sa rows (solid; +refit dotted where run),
# the contrastive-diagonal baseline of the same sparsity as a dashed horizontal line.
import math
b_orig = float(next(r for r in rows if r[0] == "original")[3])
def metrics(r):
    sel = float(r[6]) if r[6] not in ("n/a", "") else float("nan")
    return [float(r[4]), 100.0 * float(r[5]) / b_orig, sel]
series = {}  # (sparsity, refit) -> [(lambda, metrics)]
for r in rows:
    name = r[0]
    if not name.startswith("qubo-sa-l"): continue
    refit = name.endswith("+refit")
    lam = float(name[len("qubo-sa-l"):].replace("+refit", ""))
    series.setdefault((r[1], refit), []).append((lam, metrics(r)))
base = {(r[1], r[0].endswith("+refit")): metrics(r) for r in rows
        if r[0].startswith("contrastive-diagonal")}
if series:
    lams = sorted({l for v in series.values() for l, _ in v})
    lx0, lx1 = math.log(lams[0]), math.log(lams[-1]) if lams[-1] > lams[0] else math.log(lams[0]) + 1
    titles = ["increase on A (%s), bits per byte" % a_name, "increase on B (%s), %%" % b_name,
              "selectivity (A increase / B increase)"]
    PW, PH, PM = 330, 300, 55
    W2 = 3 * PW + 40
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    spars = sorted({k[0] for k in series}, key=float)
    g = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W2, PH + 70),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%g" y="20" text-anchor="middle" font-size="13">Contrastive QUBO (sa) over lambda and sparsity, %s; dashed: contrastive-diagonal, dotted: +refit</text>' % (W2 / 2, model)]
    for p in range(3):
        ox = 20 + p * PW
        vals = [m[p] for v in series.values() for _, m in v if not math.isnan(m[p])]
        vals += [m[p] for m in base.values() if not math.isnan(m[p])] + [0.0]
        v0, v1 = min(vals), max(vals)
        v1 += 0.05 * (v1 - v0 or 1)
        X2 = lambda l: ox + PM + (math.log(l) - lx0) / ((lx1 - lx0) or 1) * (PW - PM - 15)
        Y2 = lambda v: 40 + PH - PM - (v - v0) / ((v1 - v0) or 1) * (PH - PM - 10)
        g.append('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>' % (ox + PM, Y2(v0), ox + PW - 15, Y2(v0)))
        g.append('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>' % (ox + PM, Y2(v0), ox + PM, Y2(v1)))
        g.append('<text x="%g" y="%g" text-anchor="middle">%s</text>' % (ox + PW / 2, 48, titles[p]))
        g.append('<text x="%g" y="%g" text-anchor="middle">lambda</text>' % (ox + PW / 2, PH + 28))
        for l in lams:
            g.append('<text x="%g" y="%g" text-anchor="middle">%g</text>' % (X2(l), Y2(v0) + 14, l))
        for k in range(5):
            v = v0 + k * (v1 - v0) / 4
            g.append('<text x="%g" y="%g" text-anchor="end">%.3g</text>' % (ox + PM - 4, Y2(v) + 4, v))
        for i, sp in enumerate(spars):
            c = palette[i % len(palette)]
            for refit in (False, True):
                pts2 = sorted(series.get((sp, refit), []))
                pts2 = [(l, m[p]) for l, m in pts2 if not math.isnan(m[p])]
                if pts2:
                    g.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>' % (
                        c, ' stroke-dasharray="2,3"' if refit else "",
                        " ".join("%g,%g" % (X2(l), Y2(v)) for l, v in pts2)))
                    for l, v in pts2:
                        g.append('<circle cx="%g" cy="%g" r="3" fill="%s"><title>s=%s lambda=%g%s: %.4g</title></circle>' % (
                            X2(l), Y2(v), c, sp, l, " +refit" if refit else "", v))
                bm = base.get((sp, refit))
                if bm and not math.isnan(bm[p]):
                    g.append('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-dasharray="6,4"/>' % (
                        ox + PM, Y2(bm[p]), ox + PW - 15, Y2(bm[p]), c))
    for i, sp in enumerate(spars):
        g.append('<rect x="%g" y="%g" width="12" height="4" fill="%s"/><text x="%g" y="%g">MLP sparsity %s</text>' % (
            40 + 130 * i, PH + 50, palette[i % len(palette)], 56 + 130 * i, PH + 55, sp))
    g.append("</svg>")
    open(os.path.join(out, "behaviour_lambda.svg"), "w").write("\n".join(g) + "\n")
PY
cat "$out/behaviour.md"
echo "tables, TSV and plot in $out" >&2
