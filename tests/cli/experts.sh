# Expert pruning of a mixture-of-experts checkpoint (issue 22; docs/pruning_math.md section 12)
# through the CLI: calibrate a tiny Qwen2-MoE, mask --unit experts with the qubo method and every
# baseline, apply, and the pruned folder's config, tensors and forward pass; bad inputs (exit 2,
# naming the numbers); the same for a tiny DeepSeek-V3 with grouped routing.
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/checkpoints/tiny-qwen2-moe-norm  # 8 experts, top-3, layer 0 dense (mlp_only_layers)

for i in $(seq 1 600); do echo $(((i * 7 + i / 5) % 32)); done >"$TMP/ids.txt"
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --context 40 -q -o "$TMP/stats" >/dev/null

declare -A rerouted
for method in qubo diagonal frequency routed-weight exhaustive; do
  out=$("$QPRUNE" mask "$CKPT" --calib "$TMP/stats" --unit experts --sparsity 0.5 \
        --method "$method" --json -o "$TMP/$method.json" 2>/dev/null) || fail "mask --method $method"
  [[ $(jq '[.layers[] | select(.unit == "experts")] | length' <<<"$out") -eq 2 ]] ||
    fail "$method: expected entries for the two MoE layers"
  rerouted[$method]=$(jq '[.layers[].rerouted_error] | add' <<<"$out")
done
# The exhaustive search bounds every method on the exact re-routed error.
for method in qubo diagonal frequency routed-weight; do
  awk -v a="${rerouted[exhaustive]}" -v b="${rerouted[$method]}" 'BEGIN { exit !(a <= b * (1 + 1e-12)) }' ||
    fail "exhaustive ${rerouted[exhaustive]} above $method ${rerouted[$method]}"
done
jq -e '.entries[0].qubo_rerouted_error >= .entries[0].rerouted_error' "$TMP/qubo.json" >/dev/null ||
  fail "qubo masks should record the QUBO sample's own re-routed error, not below the final one"

"$QPRUNE" apply "$CKPT" --masks "$TMP/qubo.json" -o "$TMP/pruned" >/dev/null
jq -e '.num_experts == 4 and .num_experts_per_tok == 3' "$TMP/pruned/config.json" >/dev/null ||
  fail "pruned config.json should say 4 experts, 3 per token"
out=$("$QPRUNE" perplexity "$TMP/pruned" --token-ids "$TMP/ids.txt" --context 40 2>/dev/null)
expect_line "$out" "Perplexity" "[0-9.]*"
# Layer 1 keeps experts 0-3 only, renumbered in order; layer 0 (dense) is untouched.
python3 - "$TMP/pruned/model.safetensors" <<'PY' || fail "pruned tensors"
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
header = json.loads(blob[8:8 + struct.unpack("<Q", blob[:8])[0]])
experts = {k for k in header if ".mlp.experts." in k}
assert all(int(k.split(".")[5]) < 4 for k in experts), sorted(experts)[:5]
assert len(experts) == 2 * 4 * 3, len(experts)
assert header["model.layers.1.mlp.gate.weight"]["shape"] == [4, 16]
assert "model.layers.0.mlp.gate_proj.weight" in header
PY

# Bad input: too few experts left for top-3, no statistics, a dense model, mlp of a MoE layer only.
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$TMP/stats" --unit experts --sparsity 0.75 -o "$TMP/x.json"
grep -q "fewer than num_experts_per_tok = 3" "$TMP/stderr" || fail "too-few-experts message"
expect_exit 2 "$QPRUNE" mask "$CKPT" --unit experts --sparsity 0.5 -o "$TMP/x.json"
grep -q "expert pruning needs the expert statistics" "$TMP/stderr" || fail "no-statistics message"
expect_exit 2 "$QPRUNE" mask "$DATA/checkpoints/tiny-llama-gqa" --unit experts --sparsity 0.5 -o "$TMP/x.json"
grep -q "has no experts" "$TMP/stderr" || fail "dense-model message"
expect_exit 2 "$QPRUNE" mask "$CKPT" --calib "$TMP/stats" --unit both --method frequency --sparsity 0.5 -o "$TMP/x.json"
grep -q "use --unit experts alone" "$TMP/stderr" || fail "frequency with --unit both"
# Masks keeping different expert counts per layer cannot be written (one num_experts in config).
jq '.entries[1].kept = [0,1,2,3,4] | .entries[1].keep = 5' "$TMP/qubo.json" >"$TMP/ragged.json"
expect_exit 2 "$QPRUNE" apply "$CKPT" --masks "$TMP/ragged.json" -o "$TMP/ragged"
grep -q "one number of experts for every layer" "$TMP/stderr" || fail "ragged experts message"
[[ ! -e $TMP/ragged ]] || fail "a refused apply left an output folder"

# DeepSeek-V3 (8 experts in 4 routing groups, top-2 within 2 groups, layer 0 dense, latent
# attention): every group keeps as many experts, the router bias loses the removed entries.
DS=$DATA/checkpoints/tiny-deepseek-v3
out=$("$QPRUNE" calibrate "$DS" --token-ids "$TMP/ids.txt" --context 40 -q -o "$TMP/ds_stats")
expect_line "$out" "Attention channels" "0"
declare -A ds
for method in qubo frequency routed-weight exhaustive; do
  out=$("$QPRUNE" mask "$DS" --calib "$TMP/ds_stats" --unit experts --sparsity 0.5 \
        --method "$method" --json -o "$TMP/ds_$method.json" 2>/dev/null) || fail "deepseek mask --method $method"
  ds[$method]=$(jq '[.layers[].rerouted_error] | add' <<<"$out")
  jq -e '[.entries[] | [.kept[] / 2 | floor] == [0,1,2,3]] | all' "$TMP/ds_$method.json" >/dev/null ||
    fail "deepseek $method: every routing group should keep one expert"
done
for method in qubo frequency routed-weight; do
  awk -v a="${ds[exhaustive]}" -v b="${ds[$method]}" 'BEGIN { exit !(a <= b * (1 + 1e-12)) }' ||
    fail "deepseek exhaustive ${ds[exhaustive]} above $method ${ds[$method]}"
done
"$QPRUNE" apply "$DS" --masks "$TMP/ds_qubo.json" -o "$TMP/ds_pruned" >/dev/null
jq -e '.n_routed_experts == 4 and .num_experts_per_tok == 2 and .n_group == 4' \
  "$TMP/ds_pruned/config.json" >/dev/null || fail "pruned DeepSeek config.json"
out=$("$QPRUNE" perplexity "$TMP/ds_pruned" --token-ids "$TMP/ids.txt" --context 40 2>/dev/null)
expect_line "$out" "Perplexity" "[0-9.]*"
python3 - "$TMP/ds_pruned/model.safetensors" <<'PY' || fail "pruned DeepSeek tensors"
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
header = json.loads(blob[8:8 + struct.unpack("<Q", blob[:8])[0]])
for layer in (1, 2):
    p = f"model.layers.{layer}.mlp."
    assert header[p + "gate.weight"]["shape"] == [4, 16]
    assert header[p + "gate.e_score_correction_bias"]["shape"] == [4]
    assert p + "experts.4.gate_proj.weight" not in header and p + "experts.3.down_proj.weight" in header
    assert header[p + "shared_experts.down_proj.weight"]["shape"] == [16, 6]
PY
# The dense layer's MLP neurons (--unit mlp: entries for the dense layers only; intermediate_size
# is theirs alone): kept all, the applied model computes exactly what the original does; half
# kept, intermediate_size becomes 6 and the MoE layers are untouched.
orig=$("$QPRUNE" perplexity "$DS" --token-ids "$TMP/ids.txt" --context 40 2>/dev/null |
       sed -n 's/^Perplexity *: //p')
for s in 0 0.5; do
  "$QPRUNE" mask "$DS" --calib "$TMP/ds_stats" --unit mlp --sparsity $s -o "$TMP/ds_mlp.json" \
    >/dev/null 2>&1 || fail "deepseek mask --unit mlp --sparsity $s"
  jq -e '[.entries[].layer] == [0]' "$TMP/ds_mlp.json" >/dev/null ||
    fail "deepseek --unit mlp should mask the dense layer 0 only"
  "$QPRUNE" apply "$DS" --masks "$TMP/ds_mlp.json" -o "$TMP/ds_mlp" --overwrite >/dev/null ||
    fail "deepseek apply of dense-layer MLP masks (sparsity $s)"
  ppl=$("$QPRUNE" perplexity "$TMP/ds_mlp" --token-ids "$TMP/ids.txt" --context 40 2>/dev/null |
        sed -n 's/^Perplexity *: //p')
  if [[ $s == 0 ]]; then
    [[ $ppl == "$orig" ]] || fail "deepseek: all MLP units kept gives perplexity $ppl, original $orig"
  else
    jq -e '.intermediate_size == 6 and .n_routed_experts == 8' "$TMP/ds_mlp/config.json" \
      >/dev/null || fail "deepseek dense-layer MLP: config"
    cmp -s <(python3 -c "import json,struct,sys;b=open(sys.argv[1],'rb').read();h=json.loads(b[8:8+struct.unpack('<Q',b[:8])[0]]);print(sorted((k,v['shape']) for k,v in h.items() if k.startswith('model.layers.1.')))" "$TMP/ds_mlp/model.safetensors") \
      <(python3 -c "import json,struct,sys;b=open(sys.argv[1],'rb').read();h=json.loads(b[8:8+struct.unpack('<Q',b[:8])[0]]);print(sorted((k,v['shape']) for k,v in h.items() if k.startswith('model.layers.1.')))" "$DS/model.safetensors") ||
      fail "deepseek dense-layer MLP: the MoE layer's tensors changed"
  fi
done
expect_exit 2 "$QPRUNE" mask "$DS" --calib "$TMP/ds_stats" --unit experts --sparsity 0.25 -o "$TMP/x.json"
grep -q "not a multiple of n_group = 4" "$TMP/stderr" || fail "deepseek group-multiple message"
expect_exit 2 "$QPRUNE" mask "$DS" --calib "$TMP/ds_stats" --unit heads --sparsity 0.5 -o "$TMP/x.json"
grep -q "multi-head latent attention" "$TMP/stderr" || fail "deepseek heads message"
# --expert-masks: the model routed around the removed experts computes what the applied folder
# does (perplexity to 1e-6); calibrate under them (sequential expert calibration) writes
# statistics; masks with MLP entries are refused by name.
p_masked=$("$QPRUNE" perplexity "$DS" --expert-masks "$TMP/ds_qubo.json" --token-ids "$TMP/ids.txt" \
           --context 40 2>/dev/null | sed -n 's/^Perplexity *: //p')
p_applied=$("$QPRUNE" perplexity "$TMP/ds_pruned" --token-ids "$TMP/ids.txt" --context 40 2>/dev/null |
            sed -n 's/^Perplexity *: //p')
awk -v a="$p_masked" -v b="$p_applied" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * b) }' ||
  fail "perplexity --expert-masks $p_masked, applied $p_applied"
[[ $p_masked != "$orig" ]] || fail "--expert-masks left the model unchanged"
"$QPRUNE" calibrate "$DS" --token-ids "$TMP/ids.txt" --context 40 -q --expert-masks "$TMP/ds_qubo.json" \
  -o "$TMP/ds_stats_masked" >/dev/null || fail "calibrate --expert-masks"
expect_exit 2 "$QPRUNE" perplexity "$DS" --expert-masks "$TMP/ds_mlp.json" --token-ids "$TMP/ids.txt"
grep -q "routes around removed experts only" "$TMP/stderr" || fail "--expert-masks with MLP entries message"

# Export of expert problems: --all writes the MoE layers only; the JSON export (one keep-1 group
# per routing group) solved by exact, and the penalised qbsolv export's unconstrained minimiser
# (2^8 states), are the same constrained optimum; import-solution maps both back to masks whose
# objective is that optimum, scored by the exact re-routed error as `mask` scores its sets (the
# exhaustive masks' set imported gives their recorded error).
"$QPRUNE" export "$DS" --calib "$TMP/ds_stats" --unit experts --sparsity 0.5 --all -o "$TMP/ds_ex" >/dev/null
[[ $(ls "$TMP/ds_ex" | tr '\n' ' ') == "layer_1.experts.json layer_2.experts.json " ]] ||
  fail "export --unit experts --all: expected the two MoE layers, got $(ls "$TMP/ds_ex")"
[[ $(jq '.constraints | length' "$TMP/ds_ex/layer_1.experts.json") == 4 ]] || fail "expert export: 4 group constraints"
opt=$("$QPRUNE" solve "$TMP/ds_ex/layer_1.experts.json" --solver exact --json -o "$TMP/ds_opt.txt" | jq .best_energy)
"$QPRUNE" export "$DS" --calib "$TMP/ds_stats" --unit experts --sparsity 0.5 --layer 1 -o "$TMP/ds_l1.qubo" >/dev/null
"$QPRUNE" solve "$TMP/ds_l1.qubo" --solver exact -o "$TMP/ds_pen.txt" >/dev/null
for answer in ds_opt ds_pen; do
  "$QPRUNE" import-solution "$DS" --calib "$TMP/ds_stats" --qubo "$TMP/ds_ex/layer_1.experts.json" \
    --solution "$TMP/$answer.txt" -o "$TMP/$answer.masks.json" >/dev/null || fail "import-solution $answer"
  jq -e --argjson opt "$opt" '.entries[0] | .unit == "experts" and .layer == 1 and
      (.objective - $opt | fabs) <= 1e-9 * ($opt | fabs) and .rerouted_error > 0' \
    "$TMP/$answer.masks.json" >/dev/null || fail "import-solution $answer: objective or re-routed error"
done
cmp -s <(jq -c .entries[0].kept "$TMP/ds_opt.masks.json") <(jq -c .entries[0].kept "$TMP/ds_pen.masks.json") ||
  fail "the penalised export's minimiser is not the constrained optimum"
jq -r '[range(8)] | map(. as $e | if ($e | IN('"$(jq -c '.entries[0].kept[]' "$TMP/ds_exhaustive.json" | paste -sd,)"')) then 1 else 0 end) | join(" ")' \
  -n >"$TMP/ds_exh.txt"
"$QPRUNE" import-solution "$DS" --calib "$TMP/ds_stats" --qubo "$TMP/ds_ex/layer_1.experts.json" \
  --solution "$TMP/ds_exh.txt" --base "$TMP/ds_exhaustive.json" -o "$TMP/ds_merged.json" >/dev/null ||
  fail "import-solution of the exhaustive set"
jq -e --slurpfile m "$TMP/ds_exhaustive.json" '.entries | length == 2 and
    ((.[0].rerouted_error - $m[0].entries[0].rerouted_error) | fabs) <= 1e-9 * $m[0].entries[0].rerouted_error' \
  "$TMP/ds_merged.json" >/dev/null || fail "imported exhaustive set: re-routed error differs from mask's"
"$QPRUNE" apply "$DS" --masks "$TMP/ds_merged.json" -o "$TMP/ds_imported" >/dev/null || fail "apply imported expert masks"
echo "experts: ok (exhaustive ${rerouted[exhaustive]}, qubo ${rerouted[qubo]}, frequency ${rerouted[frequency]}; deepseek exhaustive ${ds[exhaustive]}, qubo ${ds[qubo]}, frequency ${ds[frequency]})"
