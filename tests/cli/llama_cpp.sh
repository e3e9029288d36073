# qprune's GGUF files in the real llama.cpp (node-llama-cpp 3.22.1's prebuilt Linux x64 library,
# installed by .ci/setup into tests/clients/node_modules):
#  1. the example model, original and pruned 40 % MLP + 50 % heads (uniform: llama; global
#     allocation: deci with per-layer widths), loads, and llama.cpp's perplexity on held-out text
#     equals `qprune perplexity`'s to 1e-3 relative; the global model's GGUF stores exactly the
#     parameters the pruned model uses (the padding of the Hugging Face folder left out);
#  2. a masks file applied straight to GGUF (`gguf --masks`, KV groups removed) agrees with
#     `apply` + `perplexity` the same way;
#  3. tokenizer.json vocabularies written to GGUF tokenise the 10 KB mixed-script text in
#     llama.cpp exactly as the independent Python reference does (tests/data/tokenizer/
#     expected.json): GPT-2, Llama 3 and both SentencePiece-style files as given, Qwen2 on the text
#     normalised to NFC (llama.cpp does not normalise; `qprune gguf` warns about it).
# Without node-llama-cpp the test is skipped with a message (exit 77); under CI (CI=true) it fails.
source "$(dirname "$0")/common.bash" "$@"
clients=$(cd "$(dirname "$0")/../clients" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ ! -d $clients/node_modules/@node-llama-cpp/linux-x64 ]] || ! command -v node >/dev/null; then
  why="node-llama-cpp is not installed in tests/clients (run .ci/setup)"
  [[ ${CI:-} == true ]] && fail "$why; CI must run this test"
  echo "SKIPPED: $why" >&2
  exit 77
fi
llama() { (cd "$clients" && node "$@"); }
model=$root/examples/model/checkpoint
heldout=$root/examples/model/heldout.txt
head -c 3000 "$heldout" >"$TMP/heldout.txt"
od -An -tu1 -v "$TMP/heldout.txt" >"$TMP/heldout.ids"  # the byte-level model's token ids
# close A B: |A - B| <= 1e-3 |B|.
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * b) }'; }
# compare NAME FOLDER GGUF: qprune's perplexity of FOLDER and llama.cpp's of GGUF agree.
compare() {
  local ours theirs
  ours=$("$QPRUNE" perplexity "$2" --text "$TMP/heldout.txt" --context 128 --json -q | jq .perplexity)
  theirs=$(llama llama_perplexity.mjs "$3" "$TMP/heldout.ids" 128 | jq .perplexity)
  echo "$1: qprune $ours, llama.cpp $theirs"
  close "$ours" "$theirs" || fail "$1: perplexities differ by more than 1e-3"
}

# 1. Original, uniform and global.
"$QPRUNE" gguf "$model" -o "$TMP/original.gguf" --json -q >"$TMP/original.json"
[[ $(jq -r .architecture "$TMP/original.json") == qwen2 ]] || fail "original should be qwen2"
compare original "$model" "$TMP/original.gguf"
prune=(--text "$root/examples/model/calibration.txt" --tokens 8000 --context 128 --sparsity 0.4
       --head-sparsity 0.5 -q --json)
for allocation in uniform global; do
  "$QPRUNE" prune "$model" "${prune[@]}" --allocation "$allocation" -o "$TMP/$allocation" \
    >"$TMP/$allocation-prune.json"
  "$QPRUNE" gguf "$TMP/$allocation" -o "$TMP/$allocation.gguf" --json -q >"$TMP/$allocation.json"
  compare "$allocation" "$TMP/$allocation" "$TMP/$allocation.gguf"
done
[[ $(jq -r .architecture "$TMP/uniform.json") == llama ]] || fail "uniform should be llama"
[[ $(jq -r .architecture "$TMP/global.json") == deci ]] || fail "global should be deci"
[[ $(jq '.mlp_widths | unique | length' "$TMP/global.json") -gt 1 ]] ||
  fail "global allocation should give per-layer MLP widths"
# The Hugging Face folder pads to the widest layer; the GGUF stores what the model uses.
effective=$(jq .parameters_effective "$TMP/global-prune.json")
stored_hf=$(jq .parameters_stored "$TMP/global-prune.json")
stored_gguf=$(jq .stored_parameters "$TMP/global.json")
echo "global: Hugging Face folder $stored_hf parameters, effective $effective, GGUF $stored_gguf"
[[ $stored_gguf -eq $effective && $effective -lt $stored_hf ]] ||
  fail "global GGUF stores $stored_gguf parameters, the pruned model uses $effective"

# 2. Masks straight to GGUF: KV groups removed (llama.cpp's llama architecture, q/k interleaved).
"$QPRUNE" calibrate "$model" --text "$root/examples/model/calibration.txt" --tokens 4000 \
  --context 128 -q -o "$TMP/stats.safetensors" >/dev/null
"$QPRUNE" mask "$model" --calib "$TMP/stats.safetensors" --unit both --sparsity 0.4 \
  --head-sparsity 0.5 --head-shape kv_groups -o "$TMP/masks.json" >/dev/null 2>&1
"$QPRUNE" apply "$model" --masks "$TMP/masks.json" -o "$TMP/applied" >/dev/null
"$QPRUNE" gguf "$model" --masks "$TMP/masks.json" -o "$TMP/masks.gguf" -q >/dev/null
compare "masks (kv groups)" "$TMP/applied" "$TMP/masks.gguf"

# 3. Tokenizers: llama.cpp's ids against the reference.
TOK=$(cd "$DATA/tokenizer" && pwd)
# The tiny Llama with the test vocabularies' 660 tokens.
python3 "$DATA/checkpoints/widen_vocab.py" "$DATA/checkpoints/tiny-llama-gqa" "$TMP/tok-ckpt" 660
python3 - "$TOK/mixed.txt" "$TMP/mixed-nfc.txt" <<'PY'
import sys, unicodedata
text = open(sys.argv[1], encoding="utf-8", errors="surrogateescape", newline="").read()
open(sys.argv[2], "w", encoding="utf-8", errors="surrogateescape", newline="").write(
    unicodedata.normalize("NFC", text))
PY
for name in bytelevel_gpt2 bytelevel_llama3 bytelevel_qwen2 sentencepiece sentencepiece_metaspace; do
  mkdir "$TMP/$name"
  cp "$TMP/tok-ckpt/config.json" "$TMP/tok-ckpt/model.safetensors" "$TMP/$name/"
  cp "$TOK/$name.json" "$TMP/$name/tokenizer.json"
  "$QPRUNE" gguf "$TMP/$name" -o "$TMP/$name.gguf" -q >/dev/null 2>"$TMP/$name.err"
  text=$TOK/mixed.txt
  if [[ $name == bytelevel_qwen2 ]]; then
    grep -q "NFC" "$TMP/$name.err" || fail "qwen2: gguf should warn that llama.cpp does not NFC"
    text=$TMP/mixed-nfc.txt
  fi
  llama llama_tokenize.mjs "$TMP/$name.gguf" "$text" >"$TMP/$name.ids"
  jq -e --slurpfile got "$TMP/$name.ids" ".$name.mixed == \$got[0]" "$TOK/expected.json" >/dev/null ||
    fail "$name: llama.cpp's token ids differ from the reference"
  echo "$name: llama.cpp's ids equal the reference's ($(jq length "$TMP/$name.ids") tokens)"
done
# The SentencePiece-style vocabulary has 648 tokens, the model 660 rows: the file pads the
# vocabulary (llama.cpp sizes the embedding by it), and the whole model loads and computes what
# qprune computes (the tiny Llama: F32, llama architecture).
jq -r '.sentencepiece.mixed[:400] | map(tostring) | join(" ")' "$TOK/expected.json" >"$TMP/sp.ids"
compare_ids() {
  local ours theirs
  ours=$("$QPRUNE" perplexity "$1" --token-ids "$TMP/sp.ids" --context 64 --json -q | jq .perplexity)
  theirs=$(llama llama_perplexity.mjs "$2" "$TMP/sp.ids" 64 | jq .perplexity)
  echo "sentencepiece model: qprune $ours, llama.cpp $theirs"
  close "$ours" "$theirs" || fail "sentencepiece model: perplexities differ by more than 1e-3"
}
compare_ids "$TMP/sentencepiece" "$TMP/sentencepiece.gguf"
