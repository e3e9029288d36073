# Outputs are never written into an input: every writing command refuses an output that is, or is
# inside, an input (the checkpoint folder, statistics, masks, token ids, QUBO files), also through
# a symlink, with exit 2 and the input unchanged (checksums before/after). Folder outputs are
# replaced whole: `apply --overwrite` onto a folder with a stale model.safetensors leaves none of
# it. A symlink planted at a temporary name is not followed, and no temporary is left beside an
# output.
source "$(dirname "$0")/common.bash" "$@"
cp -r "$DATA/checkpoints/tiny-llama-gqa" "$TMP/ckpt"
CKPT=$TMP/ckpt
awk 'BEGIN { for (i = 0; i < 100; ++i) print (i * 7 + 3) % 16 }' >"$TMP/ids.txt"
cp "$DATA/instances/gka1b.sparse" "$TMP/in.sparse"
"$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --tokens 60 --context 16 -q \
  -o "$TMP/stats.safetensors" >/dev/null
"$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit mlp --sparsity 0.5 --solver greedy \
  -o "$TMP/masks.json" >/dev/null 2>&1
"$QPRUNE" export "$CKPT" --calib "$TMP/stats.safetensors" --layer 0 --sparsity 0.5 \
  -o "$TMP/layer0.json" >/dev/null
ln -s "$CKPT" "$TMP/ckpt_link"
ln -s "$TMP/in.sparse" "$TMP/in_link.sparse"
sums() { (cd "$TMP" && find ckpt stats.safetensors masks.json ids.txt in.sparse layer0.json -type f \
  -exec cksum {} + | sort); }
before=$(sums)

# refused CMD...: exit 2, the message names the input, every input unchanged.
refused() {
  expect_exit 2 "$@"
  grep -q "an input is never overwritten" "$TMP/stderr" || { cat "$TMP/stderr" >&2; fail "no guard message: $*"; }
  [[ "$(sums)" == "$before" ]] || fail "an input changed: $*"
}
for out in "$CKPT/config.json" "$CKPT/new.safetensors" "$TMP/ckpt_link/config.json" "$TMP/stats.safetensors"; do
  [[ $out == "$TMP/stats.safetensors" ]] ||  # calibrate writes statistics, it does not read them
    refused "$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --context 16 -q -o "$out"
  refused "$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit mlp --sparsity 0.5 --solver greedy -o "$out"
  refused "$QPRUNE" export "$CKPT" --calib "$TMP/stats.safetensors" --layer 0 --sparsity 0.5 -o "$out"
  refused "$QPRUNE" import-solution "$CKPT" --calib "$TMP/stats.safetensors" --qubo "$TMP/layer0.json" --solution "$TMP/ids.txt" -o "$out"
done
refused "$QPRUNE" calibrate "$CKPT" --token-ids "$TMP/ids.txt" --context 16 -q -o "$TMP/ids.txt"
refused "$QPRUNE" mask "$CKPT" --calib "$TMP/stats.safetensors" --unit mlp --sparsity 0.5 --solver greedy -o "$CKPT"
refused "$QPRUNE" export "$CKPT" --calib "$TMP/stats.safetensors" --all --sparsity 0.5 -o "$CKPT/problems"
refused "$QPRUNE" export "$CKPT" --calib "$TMP/stats.safetensors" --all --sparsity 0.5 -o "$TMP"
refused "$QPRUNE" import-solution "$CKPT" --calib "$TMP/stats.safetensors" --qubo "$TMP/layer0.json" --solution "$TMP/ids.txt" -o "$TMP/layer0.json"
for out in "$CKPT" "$CKPT/pruned" "$TMP/ckpt_link" "$TMP"; do
  refused "$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" --overwrite -o "$out"
  refused "$QPRUNE" prune "$CKPT" --token-ids "$TMP/ids.txt" --context 16 --method magnitude -o "$out"
done
refused "$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" -o "$TMP/masks.json"
refused "$QPRUNE" prune "$CKPT" --token-ids "$TMP/ids.txt" --context 16 --method magnitude \
  --masks "$CKPT/masks.json" -o "$TMP/p"
refused "$QPRUNE" solve "$TMP/in.sparse" --solver greedy -o "$TMP/in.sparse"
refused "$QPRUNE" solve "$TMP/in.sparse" --solver greedy -o "$TMP/in_link.sparse"
refused "$QPRUNE" convert "$TMP/in.sparse" "$TMP/in.sparse" --to coo
refused "$QPRUNE" convert "$TMP/in_link.sparse" "$TMP/in.sparse" --to coo
refused "$QPRUNE" convert "$TMP/in.sparse" "$TMP/./in_link.sparse" --to coo
refused "$QPRUNE" compare "$TMP/in.sparse" --solvers greedy --seeds 1 -q -o "$TMP"
[[ ! -e "$TMP/p" ]] || fail "prune wrote although refused"

# apply --overwrite onto a folder holding a stale single-file checkpoint: replaced whole.
mkdir "$TMP/pruned"
printf 'stale' >"$TMP/pruned/model.safetensors"
printf 'old' >"$TMP/pruned/notes.txt"
expect_exit 2 "$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" -o "$TMP/pruned"
"$QPRUNE" apply "$CKPT" --masks "$TMP/masks.json" --overwrite -o "$TMP/pruned" >/dev/null
[[ ! -e "$TMP/pruned/notes.txt" && "$(head -c 5 "$TMP/pruned/model.safetensors" | tr -d "\\0")" != stale ]] ||
  fail "stale files survived"
[[ -f "$TMP/pruned/config.json" ]] || fail "no config.json"
# The same onto a stale single file beside a sharded checkpoint (the example model has 2 shards):
# the old model.safetensors would shadow the new shards.
MODEL=$DATA/../../examples/model/checkpoint
"$QPRUNE" prune "$MODEL" --text "$DATA/../../examples/model/calibration.txt" --tokens 256 --sparsity 0.5 --no-refit \
  --method magnitude --masks "$TMP/ex_masks.json" -o "$TMP/ex_pruned" >/dev/null 2>&1
printf 'stale' >"$TMP/ex_pruned2.tmp"; mkdir "$TMP/ex_out"; mv "$TMP/ex_pruned2.tmp" "$TMP/ex_out/model.safetensors"
"$QPRUNE" apply "$MODEL" --masks "$TMP/ex_masks.json" --overwrite -o "$TMP/ex_out" >/dev/null
[[ ! -e "$TMP/ex_out/model.safetensors" && -f "$TMP/ex_out/model-00001-of-00002.safetensors" ]] ||
  fail "a stale model.safetensors survived beside the new shards: $(ls "$TMP/ex_out")"
"$QPRUNE" perplexity "$TMP/pruned" --token-ids "$TMP/ids.txt" --context 16 -q >/dev/null ||
  fail "the replaced checkpoint does not load"

# Two runs into one -o at the same time: each has its own temporary folder, the last rename wins,
# and the result is one complete checkpoint (the widths of one of the two masks files), no mix.
"$QPRUNE" mask "$MODEL" --unit mlp --sparsity 0.25 --method magnitude -o "$TMP/m25.json" >/dev/null 2>&1
"$QPRUNE" mask "$MODEL" --unit mlp --sparsity 0.75 --method magnitude -o "$TMP/m75.json" >/dev/null 2>&1
for _ in 1 2 3; do
  "$QPRUNE" apply "$MODEL" --masks "$TMP/m25.json" --overwrite -o "$TMP/race" >/dev/null 2>"$TMP/race_a" & a=$!
  "$QPRUNE" apply "$MODEL" --masks "$TMP/m75.json" --overwrite -o "$TMP/race" >/dev/null 2>"$TMP/race_b" & b=$!
  wait $a || fail "race: the first apply failed: $(cat "$TMP/race_a")"
  wait $b || fail "race: the second apply failed: $(cat "$TMP/race_b")"
  width=$(sed -nE 's/.*"intermediate_size": *([0-9]+).*/\1/p' "$TMP/race/config.json")
  [[ $width == 384 || $width == 128 ]] || fail "race: intermediate_size $width"
  out=$("$QPRUNE" perplexity "$TMP/race" --text "$DATA/../../examples/model/heldout.txt" \
        --tokens 200 --context 64 -q) || fail "race: the output does not load"
  expect_line "$out" "Parameters" "$( [[ $width == 384 ]] && echo 788352 || echo 395136 )"
done

# A symlink planted at the old predictable temporary names is never followed.
printf 'victim' >"$TMP/victim"
for name in sol.txt.tmp-qprune .sol.txt.tmp.1.0 sol.txt.qprune-tmp-; do ln -s "$TMP/victim" "$TMP/$name"; done
"$QPRUNE" solve "$TMP/in.sparse" --solver greedy -o "$TMP/sol.txt" >/dev/null
[[ "$(cat "$TMP/victim")" == victim ]] || fail "a planted symlink was followed"
[[ -s "$TMP/sol.txt" ]] || fail "no solution written"

# compare -o: replaced whole; a folder holding other files is refused, not emptied.
"$QPRUNE" compare "$TMP/in.sparse" --solvers greedy --seeds 1 -q -o "$TMP/cmp" >/dev/null
"$QPRUNE" compare "$TMP/in.sparse" --solvers greedy --seeds 1 -q -o "$TMP/cmp" >/dev/null
[[ $(ls "$TMP/cmp" | wc -l) -eq 6 ]] || fail "compare folder: $(ls "$TMP/cmp")"
printf 'mine' >"$TMP/cmp/mine.txt"
expect_exit 2 "$QPRUNE" compare "$TMP/in.sparse" --solvers greedy --seeds 1 -q -o "$TMP/cmp"
[[ -f "$TMP/cmp/mine.txt" ]] || fail "compare removed a file it did not write"

# No temporary anywhere.
left=$(find "$TMP" -name '*qprune-tmp-?*' | grep -v 'sol.txt.qprune-tmp-$' || true)
[[ -z "$left" ]] || fail "temporaries left: $left"
[[ "$(sums)" == "$before" ]] || fail "an input changed"
