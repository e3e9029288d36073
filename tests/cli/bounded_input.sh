# Hostile inputs end quickly with one clear line and the documented exit code:
#   deeply nested JSON (80k levels, 160 KB) in every JSON input -> 2 (ParseError, not a crash);
#   declared sizes far beyond what the file holds -> 2 (ParseError, nothing allocated);
#   a gzip bomb past the inflated-size limit -> 4 (ResourceError naming the file and the limit);
#   a FIFO as an input -> 3 (IoError: the file cannot be read as a file, like a missing one;
#   its content was never looked at, so it is not a parse error).
# Every command runs under `timeout` so a regression that blocks or loops fails instead of hanging.
source "$(dirname "$0")/common.bash" "$@"
T="timeout 60"
CKPT=$DATA/checkpoints/tiny-llama-gqa
deep() { python3 -c "import sys; d=80000; sys.stdout.write('$1' + '['*d + ']'*d + '$2')"; }
expect_deep() {  # FILE CMD...: exit 2 naming FILE and the depth limit
  local file=$1; shift
  expect_exit 2 $T "$QPRUNE" "$@"
  grep -q "^qprune: error: $file.*nested at most 64 levels deep" "$TMP/stderr" ||
    { cat "$TMP/stderr" >&2; fail "deep JSON in $file"; }
  [[ $(wc -l <"$TMP/stderr") -eq 1 ]] || fail "$file: more than one line on stderr"
}

# ---- deep nesting ---------------------------------------------------------------------------
deep '' '' >"$TMP/bare.json"
expect_deep "$TMP/bare.json" info "$TMP/bare.json"
deep '{"format": "qprune-qubo", "format_version": 1, "linear": ' '}' >"$TMP/qubo.json"
expect_deep "$TMP/qubo.json" info "$TMP/qubo.json"
deep '{"solution": ' '}' >"$TMP/solution.json"
expect_deep "$TMP/solution.json" energy "$DATA/formats/toy.qubo" "$TMP/solution.json"
deep '{"format": "qprune-comparison", "runs": ' '}' >"$TMP/comparison.json"
expect_deep "$TMP/comparison.json" compare --replay "$TMP/comparison.json" --run 0
deep '{"format": "qprune-masks", "version": 1, "entries": ' '}' >"$TMP/masks.json"
expect_deep "$TMP/masks.json" apply "$CKPT" --masks "$TMP/masks.json" -o "$TMP/out1"
mkdir "$TMP/deep_config"
deep '{"hidden_size": ' '}' >"$TMP/deep_config/config.json"
cp "$CKPT/model.safetensors" "$TMP/deep_config/"
expect_deep "$TMP/deep_config/config.json" apply "$TMP/deep_config" --masks "$DATA/masks/toy.json" -o "$TMP/out2"
mkdir "$TMP/deep_index"
cp "$CKPT/config.json" "$TMP/deep_index/"
deep '{"weight_map": ' '}' >"$TMP/deep_index/model.safetensors.index.json"
expect_deep "$TMP/deep_index/model.safetensors.index.json" apply "$TMP/deep_index" --masks "$DATA/masks/toy.json" -o "$TMP/out3"
# A safetensors header whose shape nests 80k levels.
mkdir "$TMP/deep_shape"
cp "$CKPT/config.json" "$TMP/deep_shape/"
python3 - "$TMP/deep_shape/model.safetensors" <<'PY'
import struct, sys
d = 80000
h = ('{"a":{"dtype":"U8","shape":' + '[' * d + ']' * d + ',"data_offsets":[0,1]}}').encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + b'x')
PY
expect_deep "$TMP/deep_shape/model.safetensors" apply "$TMP/deep_shape" --masks "$DATA/masks/toy.json" -o "$TMP/out4"
grep -q "model.safetensors: byte [0-9]*: " "$TMP/stderr" || fail "no byte offset for the header"

# ---- declared sizes -------------------------------------------------------------------------
printf 'p qubo 0 100000000 0 0\n' >"$TMP/huge.qubo"
start=$(date +%s)
expect_exit 2 $T "$QPRUNE" info "$TMP/huge.qubo"
grep -q "^qprune: error: $TMP/huge.qubo:1: expected maxNodes at most 1048944 for a file of 23 bytes" \
  "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "declared maxNodes"; }
printf '3 1000000000\n1 1 1\n' >"$TMP/huge.mqlib"
expect_exit 2 $T "$QPRUNE" info "$TMP/huge.mqlib"
grep -q "expected the number of entries m at most" "$TMP/stderr" || fail "declared m"
(( $(date +%s) - start < 20 )) || fail "declared-size refusals took $(( $(date +%s) - start )) s"
# A sparse file may still declare many unused variables (2^20 free): read at once.
printf 'p qubo 0 1000000 1 0\n999999 999999 -1\n' >"$TMP/sparse.qubo"
out=$($T "$QPRUNE" info "$TMP/sparse.qubo")
expect_line "$out" "Variables" "1000000"

# ---- gzip -----------------------------------------------------------------------------------
python3 -c "
import gzip
with gzip.open('$TMP/bomb.qubo.gz', 'wb') as f:
    f.write(b'p qubo 0 3 0 0\n')
    for _ in range(64): f.write(b'c ' + b'0' * (1 << 20) + b'\n')
"
[[ $(stat -c %s "$TMP/bomb.qubo.gz") -lt 200000 ]] || fail "the bomb is not small"
expect_exit 4 env QPRUNE_MAX_INFLATED_BYTES=1000000 $T "$QPRUNE" info "$TMP/bomb.qubo.gz"
grep -q "^qprune: error: $TMP/bomb.qubo.gz: gzip data inflates to more than 1000000 bytes" \
  "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "bomb message"; }
expect_exit 2 env QPRUNE_MAX_INFLATED_BYTES=junk $T "$QPRUNE" info "$TMP/bomb.qubo.gz"
gzip -c "$DATA/formats/toy.qubo" >"$TMP/toy.qubo.gz"
QPRUNE_MAX_INFLATED_BYTES=1000000 $T "$QPRUNE" info "$TMP/toy.qubo.gz" >"$TMP/gz.txt"
"$QPRUNE" info "$DATA/formats/toy.qubo" >"$TMP/plain.txt"
diff <(grep -v -e '^File' -e '^Metadata source' "$TMP/gz.txt") <(grep -v -e '^File' -e '^Metadata source' "$TMP/plain.txt") ||
  fail "gzip and plain info differ"

# ---- FIFOs ----------------------------------------------------------------------------------
mkfifo "$TMP/pipe.qubo"
expect_exit 3 $T "$QPRUNE" info "$TMP/pipe.qubo"
grep -q "^qprune: error: $TMP/pipe.qubo: not a regular file (a FIFO)" "$TMP/stderr" ||
  { cat "$TMP/stderr" >&2; fail "FIFO input"; }
expect_exit 3 $T "$QPRUNE" energy "$DATA/formats/toy.qubo" "$TMP/pipe.qubo"
mkdir "$TMP/fifo_ckpt"
mkfifo "$TMP/fifo_ckpt/config.json"
expect_exit 3 $T "$QPRUNE" apply "$TMP/fifo_ckpt" --masks "$DATA/masks/toy.json" -o "$TMP/out5"
grep -q "config.json: not a regular file (a FIFO)" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "FIFO config"; }
rm "$TMP/fifo_ckpt/config.json"
cp "$CKPT/config.json" "$TMP/fifo_ckpt/"
mkfifo "$TMP/fifo_ckpt/model.safetensors"
expect_exit 3 $T "$QPRUNE" apply "$TMP/fifo_ckpt" --masks "$DATA/masks/toy.json" -o "$TMP/out6"
grep -q "model.safetensors: not a regular file (a FIFO)" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "FIFO shard"; }
expect_exit 3 $T "$QPRUNE" apply "$CKPT" --masks "$TMP/pipe.qubo" -o "$TMP/out7"
echo "bounded_input: ok"
