# --multiple-of N on the example model (intermediate_size 512): `mask` uniform and global and
# `prune` keep a multiple of 32 MLP neurons in every layer (read from the masks file), the report
# shows the sparsity asked and reached and the rounding's predicted cost (text and typed JSON, the
# same figure as the masks file's run record); bad multiples (0, negative, above 512) exit 2 naming
# the option.
source "$(dirname "$0")/common.bash" "$@"
MODEL=$DATA/../../examples/model/checkpoint
TEXT=$DATA/../../examples/model/calibration.txt

# keeps FILE: the MLP entries' "keep" counts of a masks file, one a line.
keeps() {
  python3 -c 'import json,sys
for e in json.load(open(sys.argv[1]))["entries"]:
    if e["unit"] == "mlp": print(e["keep"], len(e["kept"]))' "$1"
}
check_multiples() {  # FILE N LAYERS
  local k n count=0
  while read -r k n; do
    ((k % $2 == 0 && k > 0 && k == n)) || fail "$1: keep $k (kept $n) is not a positive multiple of $2"
    count=$((count + 1))
  done < <(keeps "$1")
  [[ $count -eq $3 ]] || fail "$1: $count MLP entries, expected $3"
}

# Uniform: 40 % of 512 keeps 307, rounded to 320 (307 - 288 = 19 > 16).
out=$("$QPRUNE" mask "$MODEL" --sparsity 0.4 --multiple-of 32 --method diagonal -o "$TMP/u.json" 2>/dev/null)
check_multiples "$TMP/u.json" 32 4
[[ $(keeps "$TMP/u.json" | awk '{print $1}' | sort -u) == 320 ]] || fail "uniform keeps $(keeps "$TMP/u.json")"
expect_line "$out" "Multiple of" "32"
expect_line "$out" "MLP sparsity asked" "0.4"
expect_line "$out" "MLP sparsity reached" "0.375"
expect_line "$out" "MLP kept" "1280"
expect_line "$out" "MLP kept unrounded" "1228"
expect_line "$out" "Rounding cost predicted" "-?[0-9.e+-]+"
expect_line "$out" "Rounding cost basis" "diagonal removal costs .*"
# Keeping more neurons than asked can only lower the predicted cost.
cost=$(sed -nE 's/^Rounding cost predicted *: //p' <<<"$out")
awk -v c="$cost" 'BEGIN { exit !(c < 0) }' || fail "uniform rounding up predicted cost $cost"
"$QPRUNE" mask "$MODEL" --sparsity 0.4 --multiple-of 32 --method diagonal -o "$TMP/u2.json" --json \
  >"$TMP/report.json" 2>/dev/null
python3 - "$TMP/u.json" "$TMP/report.json" <<'PY' || fail "JSON report"
import json, sys
r = json.load(open(sys.argv[2]))
run = json.load(open(sys.argv[1]))["run"]
assert r["multiple_of"] == 32 and isinstance(r["multiple_of"], int), r
assert r["sparsity_reached"] == 0.375 and r["sparsity_asked"] == 0.4, r
assert isinstance(r["rounding_cost_predicted"], float), r
assert r["rounding_cost_predicted"] == run["rounding_cost"], (r, run)
assert run["multiple_of"] == 32 and run["effective_sparsity"] == 0.375, run
for l in r["layers"]:
    assert l["kept"] == 320 and l["unrounded_keep"] == 307, l
PY

# Global: 40 % of 2048 = 819 neurons asked; blocks of 32 reach 800 or 832, 832 is nearer.
out=$("$QPRUNE" mask "$MODEL" --sparsity 0.4 --multiple-of 32 --allocation global --solver greedy \
      -o "$TMP/g.json" 2>/dev/null)
check_multiples "$TMP/g.json" 32 4
total=$(keeps "$TMP/g.json" | awk '{ s += $1 } END { print s }')
[[ $total -eq 1216 ]] || fail "global keeps $total, expected 2048 - 832 = 1216"
expect_line "$out" "MLP sparsity reached" "0.40625"
expect_line "$out" "MLP kept unrounded" "1229"
expect_line "$out" "Rounding cost predicted" "-?[0-9.e+-]+"
# --resume with another multiple is refused, naming the field.
expect_exit 2 "$QPRUNE" mask "$MODEL" --sparsity 0.4 --multiple-of 64 --allocation global --solver greedy \
  --resume -o "$TMP/g.json"
grep -q "multiple_of" "$TMP/stderr" || fail "resume message: $(cat "$TMP/stderr")"

# prune: the same rule in the end-to-end command (global, OBS path costs).
out=$("$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 1024 --unit mlp --sparsity 0.4 --multiple-of 64 \
      --masks "$TMP/p.json" -o "$TMP/pruned" 2>/dev/null)
check_multiples "$TMP/p.json" 64 4
expect_line "$out" "Multiple of" "64"
expect_line "$out" "MLP sparsity reached" "0.4375|0.40625|0.375"
expect_line "$out" "Rounding cost basis" "OBS greedy removal-path costs .*"
out=$("$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 1024 --unit mlp --sparsity 0.4 --multiple-of 32 \
      --allocation uniform --masks "$TMP/pu.json" -o "$TMP/pruned-u" 2>/dev/null)
check_multiples "$TMP/pu.json" 32 4
expect_line "$out" "MLP sparsity reached" "0.375"

# Bad multiples: exit 2, the option named.
for bad in 0 -4; do
  expect_exit 2 "$QPRUNE" mask "$MODEL" --sparsity 0.4 --multiple-of "$bad" --method diagonal -o "$TMP/x.json"
  grep -q -- "--multiple-of must be >= 1" "$TMP/stderr" || fail "message for $bad: $(cat "$TMP/stderr")"
  expect_exit 2 "$QPRUNE" prune "$MODEL" --text "$TEXT" --tokens 256 --sparsity 0.4 --multiple-of "$bad" -o "$TMP/x"
  grep -q -- "--multiple-of must be >= 1" "$TMP/stderr" || fail "prune message for $bad: $(cat "$TMP/stderr")"
done
for alloc in uniform global; do
  expect_exit 2 "$QPRUNE" mask "$MODEL" --sparsity 0.4 --multiple-of 513 --allocation "$alloc" --method diagonal -o "$TMP/x.json"
  grep -q -- "--multiple-of 513 exceeds the 512 units" "$TMP/stderr" || fail "message: $(cat "$TMP/stderr")"
done
[[ ! -e $TMP/x.json && ! -e $TMP/x ]] || fail "an output was written for a bad multiple"
echo "multiple_of OK"
