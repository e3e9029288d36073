"""Prunes the example model end to end from Python: calibrate, solve every layer's problem with a
sampler, write the masks, apply them, and check the pruned checkpoint.

Usage: prune_model.py OUTPUT_FOLDER [--sparsity S] [--seed N]

The same as `qprune calibrate`, `qprune mask --solver sa --seed N` and `qprune apply`: each
layer's seed is qprune.layer_seed(N, layer, "mlp"), so the masks equal the CLI's.
"""
import argparse
import json
import pathlib

import qprune

parser = argparse.ArgumentParser()
parser.add_argument("output")
parser.add_argument("--sparsity", type=float, default=0.4)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
out = pathlib.Path(args.output)
out.mkdir(parents=True, exist_ok=True)
model_dir = pathlib.Path(__file__).resolve().parents[1] / "model"

ckpt = qprune.open_checkpoint(model_dir / "checkpoint")
stats = qprune.calibrate(ckpt, model_dir / "calibration.txt", out / "stats.safetensors")
sampler = qprune.SimulatedAnnealingSampler()
solved = []
for layer in range(ckpt.config["num_hidden_layers"]):
    problem = qprune.layer_problem(ckpt, layer=layer, unit="mlp", calib=stats,
                                   sparsity=args.sparsity)
    ss = sampler.sample(problem, seed=qprune.layer_seed(args.seed, layer, "mlp"))
    baseline = problem.energy(problem.diagonal_top_k())
    print(f"layer {layer}: kept {problem.keep}/{problem.num_units}, error {ss.first.energy:.6g} "
          f"(diagonal baseline {baseline:.6g})")
    solved.append((problem, ss))
masks = qprune.masks_from_solutions(ckpt, solved, stats, sparsity=args.sparsity, solver="sa",
                                    seed=args.seed)
qprune.write_masks(masks, out / "masks.json")
stored, _ = qprune.apply_masks(ckpt, masks, out / "pruned", stats, overwrite=True)
config = json.loads((out / "pruned" / "config.json").read_text())
print(f"pruned checkpoint: {out / 'pruned'} ({stored} parameters, intermediate_size "
      f"{config['intermediate_size']})")
assert qprune.open_checkpoint(out / "pruned").config["intermediate_size"] == config[
    "intermediate_size"]
