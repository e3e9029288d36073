"""One layer's pruning problem of the example model, solved by two samplers and compared.

Usage: compare_samplers.py [CHECKPOINT] [CALIBRATION_TEXT]

The problem is the layer's output error for a keep-mask x (x_i = 1 keeps MLP neuron i) with one
"keep exactly k" group: its Q is a numpy array, E(x) = offset + x^T Q x. Simulated annealing and
tabu search solve it; the Wanda/FLAP-like diagonal baseline is printed beside them.
"""
import pathlib
import sys
import tempfile

import numpy as np
import qprune

model_dir = pathlib.Path(__file__).resolve().parents[1] / "model"
checkpoint = sys.argv[1] if len(sys.argv) > 1 else model_dir / "checkpoint"
text = sys.argv[2] if len(sys.argv) > 2 else model_dir / "calibration.txt"

ckpt = qprune.open_checkpoint(checkpoint)
with tempfile.TemporaryDirectory() as tmp:
    stats = qprune.calibrate(ckpt, text, pathlib.Path(tmp) / "stats.safetensors", tokens=4096)
    problem = qprune.layer_problem(ckpt, layer=0, unit="mlp", calib=stats, sparsity=0.4)
print(problem, "Q:", problem.Q.shape, "keep:", problem.keep)

baseline = problem.energy(problem.diagonal_top_k())
print(f"{'diagonal baseline':>18}: energy {baseline:.6g}")
for sampler, options in [(qprune.SimulatedAnnealingSampler(), {"num_reads": 4}),
                         (qprune.TabuSampler(), {"num_reads": 2, "tabu_iterations": 20000})]:
    ss = sampler.sample_qubo(problem.Q, offset=problem.offset, constraints=problem.constraints,
                             seed=1, **options)
    x = ss.record.sample[0].astype(np.float64)
    check = problem.offset + x @ problem.Q @ x  # recomputed in numpy
    assert abs(check - ss.first.energy) <= 1e-9 * abs(check) and ss.first.feasible
    print(f"{type(sampler).__name__:>18}: energy {ss.first.energy:.6g} "
          f"({100 * (baseline - ss.first.energy) / baseline:+.2f}% vs baseline), "
          f"kept {int(x.sum())}/{problem.num_units}, {ss.info['timing']['solve_s']:.3f} s, "
          f"status {ss.info['status']}")
