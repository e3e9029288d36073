# `qprune perplexity --text` and `qprune calibrate --text` on checkpoints that carry a Hugging Face
# tokenizer.json (the test tokenizers of tests/data/tokenizer/): the token count is the reference
# implementation's (expected.json, plus bos where the tokenizer adds one); a bad tokenizer.json and
# a folder with no tokenizer at all exit 2 with a message naming the file or both options.
source "$(dirname "$0")/common.bash" "$@"
TOK=$DATA/tokenizer
# The tiny Llama of tests/data/checkpoints with its embedding and lm_head widened to 660 tokens
# (the byte-level test vocabulary; the SentencePiece-style one has 648).
make_ckpt() {  # make_ckpt DIR VOCAB_SIZE
python3 "$DATA/checkpoints/widen_vocab.py" "$DATA/checkpoints/tiny-llama-gqa" "$1" "$2"
}
make_ckpt "$TMP/ckpt" 660

ckpt_with() {  # ckpt_with NAME TOKENIZER_JSON [TOKENIZER_CONFIG]: a copy of the checkpoint
  mkdir -p "$TMP/$1"
  cp "$TMP/ckpt/config.json" "$TMP/ckpt/model.safetensors" "$TMP/$1/"
  cp "$2" "$TMP/$1/tokenizer.json"
  [[ $# -lt 3 ]] || cp "$3" "$TMP/$1/tokenizer_config.json"
}
expected_count() { jq ".$1.mixed | length" "$TOK/expected.json"; }

for name in bytelevel_qwen2 bytelevel_llama3 bytelevel_gpt2; do
  ckpt_with "$name" "$TOK/$name.json"
  want=$(expected_count "$name")
  # Llama 3's template starts with a special token: bos first.
  [[ $name != bytelevel_llama3 ]] || want=$((want + 1))
  out=$("$QPRUNE" perplexity "$TMP/$name" --text "$TOK/mixed.txt" --context 64 -q)
  expect_line "$out" "Tokens" "$want"
  expect_line "$out" "Predicted tokens" "$((want - 1))"
  grep -Eq "^Bits per token *: " <<<"$out" || fail "$name: tokenizer.json text should report bits per token"
done
ckpt_with sentencepiece "$TOK/sentencepiece.json" "$TOK/sentencepiece_config.json"
out=$("$QPRUNE" perplexity "$TMP/sentencepiece" --text "$TOK/mixed.txt" --context 64 -q)
expect_line "$out" "Tokens" "$(($(expected_count sentencepiece) + 1))"  # add_bos_token

out=$("$QPRUNE" calibrate "$TMP/bytelevel_qwen2" --text "$TOK/mixed.txt" --tokens 500 --context 50 -q \
      -o "$TMP/stats.safetensors")
expect_line "$out" "Tokens" "500"
[[ -s $TMP/stats.safetensors ]] || fail "calibrate --text wrote no statistics"

# Errors: exit 2, one line naming the file and what was expected.
for bad in truncated unknown_model merge_not_in_vocab unknown_regex; do
  ckpt_with "bad_$bad" "$TOK/bad/$bad.json"
  expect_exit 2 "$QPRUNE" perplexity "$TMP/bad_$bad" --text "$TOK/mixed.txt" -q
  grep -q "bad_$bad/tokenizer.json" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "$bad: file not named"; }
done
grep -q "unknown expression" "$TMP/stderr" || fail "unknown regex not named"
mkdir "$TMP/none" && cp "$TMP/ckpt/config.json" "$TMP/ckpt/model.safetensors" "$TMP/none/"
expect_exit 2 "$QPRUNE" perplexity "$TMP/none" --text "$TOK/mixed.txt"
grep -q "no tokenizer.json and no byte-level tokenizer" "$TMP/stderr" || fail "missing tokenizer message"
grep -q -- "--token-ids" "$TMP/stderr" || fail "missing tokenizer message should name --token-ids"
# A tokenizer whose ids exceed the model's vocab_size.
make_ckpt "$TMP/small" 600
cp "$TOK/bytelevel_gpt2.json" "$TMP/small/tokenizer.json"
expect_exit 2 "$QPRUNE" perplexity "$TMP/small" --text "$TOK/mixed.txt"
grep -q "outside the model's vocab_size 600" "$TMP/stderr" || fail "id beyond vocab_size not refused"
echo "ok"
