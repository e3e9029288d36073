# `qprune calibrate` and `qprune perplexity` on the checked-in tiny Llama through --token-ids: the
# token-window options (--tokens, --context, --batch, -q) they share, the statistics file feeding
# `qprune mask`, and the input errors (bad context, both inputs, --text without a byte tokenizer).
source "$(dirname "$0")/common.bash" "$@"
CKPT=$DATA/checkpoints/tiny-llama-gqa
awk 'BEGIN { for (i = 0; i < 100; ++i) print (i * 7 + 3) % 16 }' >"$TMP/ids.txt"

out=$("$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --tokens 60 --context 16 --batch 2 \
      -o "$TMP/stats.safetensors" 2>"$TMP/progress")
expect_line "$out" "Tokens" "60"
expect_line "$out" "Context" "16"
expect_line "$out" "Layers" "2"
expect_line "$out" "MLP channels" "12"
expect_line "$out" "Attention channels" "8"
grep -q "calibrate: 60/60 tokens" "$TMP/progress" || fail "no calibrate progress on stderr"
out=$("$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit mlp --sparsity 0.5 \
      --solver greedy -o "$TMP/masks.json" 2>/dev/null)
expect_line "$out" "Objective source" "calibration \(exact layer error\)"
# --compact: F32 statistics, about half the file, and the same masks.
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --tokens 60 --context 16 --batch 2 --compact \
  -q -o "$TMP/compact.safetensors" >/dev/null
full_size=$(stat -c %s "$TMP/stats.safetensors")
compact_size=$(stat -c %s "$TMP/compact.safetensors")
(( compact_size * 10 < full_size * 6 )) || fail "compact statistics $compact_size bytes vs $full_size"
"$QPRUNE" mask "$CKPT" --calib "$TMP/compact.safetensors" --unit mlp --sparsity 0.5 \
  --solver greedy -o "$TMP/masks_compact.json" >/dev/null 2>&1
[[ $(jq -c '[.entries[].kept]' "$TMP/masks.json") == "$(jq -c '[.entries[].kept]' "$TMP/masks_compact.json")" ]] ||
  { jq -c "[.entries[].kept]" "$TMP/masks.json" "$TMP/masks_compact.json" >&2; fail "compact statistics gave other masks"; }
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --context 16 -q -o "$TMP/all.safetensors" \
  >/dev/null 2>"$TMP/quiet"
[[ ! -s $TMP/quiet ]] || fail "calibrate -q wrote to stderr"

# Perplexity: every token but the first predicted once, whatever the batch size.
out=$("$QPRUNE" perplexity "$CKPT" --token-ids "$TMP/ids.txt" --context 16 --batch 1 2>"$TMP/progress")
expect_line "$out" "Tokens" "100"
expect_line "$out" "Predicted tokens" "99"
expect_line "$out" "Context" "16"
grep -Eq "^Bits per token *: " <<<"$out" || fail "token ids should report bits per token"
grep -q "perplexity: " "$TMP/progress" || fail "no perplexity progress on stderr"
ppl1=$(sed -n 's/^Perplexity *: //p' <<<"$out")
out=$("$QPRUNE" perplexity "$CKPT" --token-ids "$TMP/ids.txt" --context 16 --batch 5 -q 2>"$TMP/quiet")
[[ ! -s $TMP/quiet ]] || fail "perplexity -q wrote to stderr"
[[ $(sed -n 's/^Perplexity *: //p' <<<"$out") == "$ppl1" ]] || fail "perplexity depends on --batch"
out=$("$QPRUNE" perplexity "$CKPT" --token-ids "$TMP/ids.txt" --context 16 --tokens 40 -q)
expect_line "$out" "Tokens" "40"
expect_line "$out" "Predicted tokens" "39"

# Input errors.
expect_exit 2 "$QPRUNE" perplexity "$CKPT" --token-ids "$TMP/ids.txt" --context 1
expect_exit 2 "$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --context 0 -o "$TMP/x.safetensors"
expect_exit 2 "$QPRUNE" perplexity "$CKPT" --token-ids "$TMP/ids.txt" --text "$TMP/ids.txt"
expect_exit 2 "$QPRUNE" perplexity "$CKPT" --text "$TMP/ids.txt"
grep -q "no byte-level tokenizer" "$TMP/stderr" || fail "--text on a non-byte-level checkpoint"
