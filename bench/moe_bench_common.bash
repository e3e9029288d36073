# Shared by the expert-pruning benchmarks (moe_experts.sh, moe_sequential.sh); sourced after
# $qprune is set. The held-out texts (never calibrated on), bits per byte, and the three disjoint
# thirds of the calibration text (whole lines) that serve as calibration seeds.
heldout=examples/model/heldout.txt
docs=examples/model/heldout_docs.txt

bpb() {  # bits per byte of checkpoint $1 on text $2
  "$qprune" perplexity "$1" --text "$2" --context 128 2>/dev/null | sed -n 's/^Bits per byte *: //p'
}

split_calibration_thirds() {  # writes $1/calib1.txt .. calib3.txt
  python3 - examples/model/calibration.txt "$1" <<'PY'
import sys
lines = open(sys.argv[1], "rb").read().splitlines(keepends=True)
third = (len(lines) + 2) // 3
for p in range(3):
    open(f"{sys.argv[2]}/calib{p + 1}.txt", "wb").write(b"".join(lines[p * third:(p + 1) * third]))
PY
}
