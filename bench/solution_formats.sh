#!/usr/bin/env bash
# Reading answers in each solution format (docs/formats.md, "Solution files"): a model of N
# unlabelled variables (qbsolv, linear terms only, so reading the model is a small share) and one
# random answer written in every format; `qprune energy MODEL ANSWER` is timed RUNS times per
# format, the formats interleaved within each round. Prints the median wall time per format and its
# ratio to the plain 0/1 list. BENCHMARKS.md, "Issue 18: answers come back".
# Usage: bench/solution_formats.sh QPRUNE N RUNS
set -euo pipefail
qprune=$1 n=$2 runs=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" "$n" <<'PY'
import json, os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(5)
x = [rng.randint(0, 1) for _ in range(n)]
names = [f"x{i + 1}" for i in range(n)]
def write(name, text):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
write("model.qubo", f"p qubo 0 {n} {n} 0\n" + "".join(f"{i} {i} {1 if i % 2 else -1}\n" for i in range(n)))
write("list.txt", "".join(f"{v}\n" for v in x))
write("cbc.sol", "Optimal - objective value 0\n" +
      "".join(f"{i:7d} {names[i]} 1 0\n" for i in range(n) if x[i]))
write("glpk.sol", f"c Problem:\ns mip 0 {n} o 0\n" + "".join(f"j {i + 1} {x[i]}\n" for i in range(n)) + "e o f\n")
write("highs.sol", f"Model status\nOptimal\n\n# Primal solution values\nFeasible\nObjective 0\n# Columns {n}\n" +
      "".join(f"{names[i]} {x[i]}\n" for i in range(n)) + "# Rows 0\n")
write("gurobi.sol", "# Solution for model obj\n" + "".join(f"{names[i]} {x[i]}\n" for i in range(n)))
write("cplex.sol", '<?xml version="1.0"?>\n<CPLEXSolution version="1.2">\n <variables>\n' +
      "".join(f'  <variable name="{names[i]}" index="{i}" value="{x[i]}"/>\n' for i in range(n)) +
      " </variables>\n</CPLEXSolution>\n")
write("qbsolv.out", f"{n} Number of bits in solution\n" + "".join(map(str, x)) + "\n0 Energy of solution\n")
write("mqlib.out", "1,X,\"m\",0,0,[]\n\nSolution:\n" + " ".join(map(str, x)) + "\n")
words = [0] * ((n + 31) // 32)
for i, v in enumerate(x):
    words[i // 32] |= v << (i % 32)
write("dimod.json", json.dumps({"type": "SampleSet", "version": {"sampleset_schema": "3.2.0"},
    "num_variables": n, "num_rows": 1, "sample_data": {"type": "array", "data": [words],
    "data_type": "uint32", "shape": [1, len(words)], "use_bytes": False}, "sample_type": "int8",
    "sample_packed": True, "vectors": {}, "variable_labels": list(range(n)),
    "variable_type": "BINARY", "info": {}}))
PY
python3 - "$qprune" "$dir" "$runs" <<'PY'
import os, statistics, subprocess, sys, time
qprune, d, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = ["list.txt", "cbc.sol", "glpk.sol", "highs.sol", "gurobi.sol", "cplex.sol", "qbsolv.out",
         "mqlib.out", "dimod.json"]
model = os.path.join(d, "model.qubo")
times = {f: [] for f in files}
energies = {}
model_only = []
for _ in range(runs):
    t0 = time.perf_counter()
    subprocess.run([qprune, "info", model], check=True, stdout=subprocess.DEVNULL)
    model_only.append(time.perf_counter() - t0)
    for f in files:
        t0 = time.perf_counter()
        out = subprocess.run([qprune, "energy", model, os.path.join(d, f)], check=True,
                             capture_output=True, text=True).stdout
        times[f].append(time.perf_counter() - t0)
        energies[f] = [l for l in out.splitlines() if l.startswith("Energy")][0]
assert len(set(energies.values())) == 1, energies  # every format read to the same answer
base = statistics.median(times["list.txt"])
print(f"{'(model only)':12s} {'':10s} median {statistics.median(model_only):.3f} s  "
      "(qprune info MODEL: the floor every row includes)")
for f in files:
    m = statistics.median(times[f])
    mb = os.path.getsize(os.path.join(d, f)) / 1e6
    print(f"{f:12s} {mb:7.2f} MB  median {m:.3f} s  {m / base:5.2f}x the list")
PY
