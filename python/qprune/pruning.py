"""Pruning from Python: a checkpoint's layer problems as numpy arrays, masks and pruned checkpoints.

The functions call the library functions the CLI commands use, so for the same seed the results
equal the CLI's: ``compute_masks`` is ``qprune mask``, ``apply_masks`` is ``qprune apply``, and a
layer problem solved by a sampler with ``seed=layer_seed(run_seed, layer, unit)`` gives the mask
``qprune mask --seed run_seed`` writes for that layer.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _qprune

Checkpoint = _qprune.Checkpoint
CalibrationStats = _qprune.CalibrationStats
Masks = _qprune.Masks


def open_checkpoint(path: "os.PathLike[str] | str") -> Checkpoint:
    """Opens a Hugging Face checkpoint folder (config.json + safetensors), read-only."""
    return _qprune.Checkpoint.open(os.fspath(path))


def read_calibration(path: "os.PathLike[str] | str") -> CalibrationStats:
    """Opens a calibration statistics file (`qprune calibrate -o`); tensors are read lazily."""
    return _qprune.CalibrationStats.open(os.fspath(path))


def calibrate(checkpoint: Checkpoint, text: "os.PathLike[str] | str | None",
              out: "os.PathLike[str] | str", tokens: int = 0, context: int = 256,
              compact: bool = False, token_ids: Optional[Sequence[int]] = None,
              progress: Optional[Callable[[dict], Any]] = None) -> CalibrationStats:
    """`qprune calibrate CKPT --text TEXT -o OUT`: runs the model over the text (one token per byte
    for a byte-level model, else the checkpoint's tokenizer.json), or over ``token_ids`` when
    ``text`` is None, and writes the statistics file; returns it opened. ``progress``: called
    with {"stage", "done", "total", "best_energy"} (tokens) on this thread while it runs; an
    exception it raises stops the run and nothing is written. Ctrl-C: KeyboardInterrupt, nothing
    written."""
    ids = None if token_ids is None else np.asarray(token_ids)
    if ids is not None and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"token_ids must be integers, got {ids.dtype}")
    _qprune.calibrate(checkpoint, None if text is None else os.fspath(text), os.fspath(out),
                      tokens, context, compact, ids, progress)
    return read_calibration(out)


def layer_seed(seed: int, layer: int, unit: str = "mlp") -> int:
    """The seed `qprune mask --seed seed` gives one layer's solve."""
    return _qprune.layer_seed(seed, layer, unit)


class LayerProblem:
    """One layer's pruning problem: which units to keep, x_i = 1 keeps unit i.

    Energy (the layer's output error for the mask): E(x) = offset + x^T Q x, with ``Q`` upper
    triangular and the linear terms on its diagonal (dimod's convention: ``sample_qubo(p.Q,
    offset=p.offset, constraints=p.constraints)``); equivalently E(x) = offset + linear . x +
    x^T couplings x / 2 with ``couplings`` the symmetric coupling matrix (zero diagonal; a
    read-only view of the library's own storage, no copy). ``constraints``: the keep-k groups as
    [(units, k)], ``keep`` their total k. ``sampler.sample(problem)`` solves the model exactly as
    the library built it.
    """

    def __init__(self, problem: Any):
        self._problem = problem
        self._model = problem.model

    @property
    def couplings(self) -> np.ndarray:
        return self._model.coupling_matrix()

    @property
    def Q(self) -> np.ndarray:
        q = np.triu(self._model.coupling_matrix(), 1)
        q[np.diag_indices_from(q)] = self._model.linear
        return q

    @property
    def linear(self) -> np.ndarray:
        return self._model.linear

    @property
    def offset(self) -> float:
        return self._model.offset

    @property
    def constraints(self) -> List[Tuple[List[int], int]]:
        return [(list(v), k) for v, k, _ in self._model.constraints]

    group = constraints

    @property
    def keep(self) -> int:
        return sum(k for _, k in self.constraints)

    @property
    def num_units(self) -> int:
        return self._model.num_variables

    @property
    def labels(self) -> List[str]:
        return list(self._model.labels)

    @property
    def metadata(self) -> dict:
        p = self._problem
        return {"layer": p.layer, "unit": p.unit, "source": p.source, "centered": p.centered,
                "approximate": p.approximate, "unit_width": p.unit_width,
                "num_groups": p.num_groups, "name": p.name, **dict(self._model.metadata)}

    layer = property(lambda self: self._problem.layer)
    unit = property(lambda self: self._problem.unit)
    unit_cost = property(lambda self: self._problem.unit_cost,
                         doc="M_ii: the error of removing unit i alone")

    def energy(self, x: Sequence[int]) -> float:
        """E(x) as the library computes it (0/1 entries, one per unit)."""
        return self._model.energy(np.asarray(x, dtype=np.uint8).tolist())

    def is_feasible(self, x: Sequence[int]) -> bool:
        return self._model.is_feasible(np.asarray(x, dtype=np.uint8).tolist())

    def diagonal_top_k(self) -> np.ndarray:
        """The Wanda/FLAP-like baseline mask: the units whose removal alone costs most."""
        return np.asarray(self._problem.diagonal_top_k(), dtype=np.int8)

    def __repr__(self) -> str:
        return (f"LayerProblem(layer {self.layer}, {self.unit}, {self.num_units} units, keep "
                f"{self.keep}, {self._problem.source})")


def layer_problem(checkpoint: Checkpoint, layer: int = 0, unit: str = "mlp",
                  calib: Optional[CalibrationStats] = None, sparsity: float = 0.5,
                  mean_compensation: bool = True, data_free: str = "magnitude",
                  objective: str = "no-refit", multiple_of: int = 1,
                  head_shape: str = "heads_per_group") -> LayerProblem:
    """Builds one layer's problem as `qprune mask` / `qprune export` do (unit: mlp, heads,
    kv_groups, heads_per_group; without `calib` a data-free model, approximate)."""
    return LayerProblem(_qprune.layer_problem(checkpoint, calib, layer, unit, sparsity,
                                              mean_compensation, data_free, objective,
                                              multiple_of, head_shape))


def compute_masks(checkpoint: Checkpoint, calib: Optional[CalibrationStats] = None, *,
                  sparsity: float, head_sparsity: Optional[float] = None, unit: str = "mlp",
                  solver: str = "sa", method: str = "qubo",
                  mean_compensation: bool = True, data_free: str = "magnitude",
                  allocation: str = "uniform", multiple_of: int = 1, **kwargs: Any) -> Masks:
    """Every layer's mask, exactly as `qprune mask` (seed, num_reads and the solver's options by
    their CLI names; unit: mlp, heads, both or experts (MoE checkpoints; methods qubo, diagonal,
    frequency, routed-weight, exhaustive))."""
    return _qprune.compute_masks(checkpoint, calib, sparsity, head_sparsity, unit, solver, method,
                                 mean_compensation, data_free, allocation, multiple_of, kwargs)


def _assignment(answer: Any, n: int) -> List[int]:
    if hasattr(answer, "record"):  # a SampleSet: its best row
        x = np.asarray(answer.record.sample[0])
    elif isinstance(answer, dict):
        x = np.array([answer[i] for i in range(n)])
    else:
        x = np.asarray(answer)
    if x.shape != (n,):
        raise ValueError(f"an answer for {n} units must have {n} entries, got shape {x.shape}")
    if x.min(initial=0) < 0:  # SPIN
        x = (x + 1) // 2
    return x.astype(np.uint8).tolist()


def masks_from_solutions(checkpoint: Checkpoint,
                         solutions: Iterable[Tuple[LayerProblem, Any]],
                         calib: Optional[CalibrationStats] = None, *, sparsity: float,
                         solver: str, seed: int = 0, mean_compensation: bool = True,
                         data_free: str = "magnitude") -> Masks:
    """A masks file's content from (problem, answer) pairs solved in Python; an answer is a
    SampleSet (its first row), a 0/1 array or a dict unit -> value. Objectives are recomputed."""
    solved = [(p._problem, _assignment(a, p.num_units)) for p, a in solutions]
    return _qprune.masks_from_solutions(checkpoint, calib, solved, sparsity, solver, seed,
                                        mean_compensation, data_free)


def write_masks(masks: Masks, path: "os.PathLike[str] | str") -> None:
    """Writes a masks file (JSON, docs/masks.md), atomically."""
    _qprune.write_masks(masks, os.fspath(path))


def read_masks(path: "os.PathLike[str] | str") -> Masks:
    return _qprune.read_masks(os.fspath(path))


def apply_masks(checkpoint: Checkpoint, masks: Masks, out: "os.PathLike[str] | str",
                calib: Optional[CalibrationStats] = None, refit: bool = False,
                overwrite: bool = False) -> Tuple[int, int]:
    """Writes the pruned checkpoint into `out` as `qprune apply` does; returns the parameters
    stored and effective."""
    return _qprune.apply_masks(checkpoint, masks, calib, os.fspath(out), refit, overwrite)
