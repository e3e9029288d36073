"""qprune from Python: its QUBO solvers as dimod-style samplers, and structured pruning of LLM
checkpoints with the layer problems as numpy arrays.

    import numpy as np, qprune
    Q = np.array([[-1.0, 2.0], [0.0, -1.0]])          # E(x) = x^T Q x
    ss = qprune.SimulatedAnnealingSampler().sample_qubo(Q, num_reads=10, seed=1)
    print(ss.first.sample, ss.first.energy)            # {0: 1, 1: 0} -1.0

Samplers: SimulatedAnnealingSampler, TabuSampler, ExactSolver, GreedySampler, QAOASampler,
RandomSampler (qprune.samplers). Pruning: open_checkpoint, read_calibration, calibrate, layer_problem,
compute_masks, masks_from_solutions, write_masks, apply_masks (qprune.pruning). Solves release the
GIL; Ctrl-C stops a solve and raises KeyboardInterrupt with the best answer so far in
``e.sampleset``. Library errors arrive as ValueError (bad input), OSError (files), MemoryError (too
large) or RuntimeError, with the library's message.
"""

from . import _qprune
from .pruning import (CalibrationStats, Checkpoint, LayerProblem, Masks, apply_masks,
                      calibrate, compute_masks, layer_problem, layer_seed, masks_from_solutions,
                      open_checkpoint, read_calibration, read_masks, write_masks)
from .samplers import (ExactSolver, GreedySampler, QAOASampler, RandomSampler,
                       SimulatedAnnealingSampler, TabuSampler)
from .sampleset import BINARY, SPIN, SampleSet

Model = _qprune.Model
solver_names = _qprune.solver_names

__all__ = [
    "BINARY", "SPIN", "SampleSet", "Model", "solver_names",
    "SimulatedAnnealingSampler", "TabuSampler", "ExactSolver", "GreedySampler", "QAOASampler",
    "RandomSampler",
    "Checkpoint", "CalibrationStats", "Masks", "LayerProblem", "open_checkpoint",
    "read_calibration", "calibrate", "layer_problem", "layer_seed", "compute_masks", "masks_from_solutions",
    "write_masks", "read_masks", "apply_masks",
]
