"""qprune's solvers as samplers in the shape of dimod's (without depending on dimod).

Each sampler runs one qprune solver: ``sample_qubo(Q)``, ``sample_ising(h, J)`` and ``sample(bqm)``
return a :class:`~qprune.sampleset.SampleSet` (a real ``dimod.SampleSet`` when a dimod BQM is
passed and dimod is importable). Keyword parameters carry the names of the CLI's options
(``--reads`` is ``num_reads`` as in dimod, ``--time-limit`` is ``time_limit``, ``--beta-range`` is
``beta_range``, ...; ``sampler.parameters`` lists them); an unknown one is a TypeError naming it.

Energy convention (as dimod's): E(x) = offset + sum_(i,j) Q[i,j] x_i x_j over the given entries,
the diagonal being the linear terms; a dense array means E(x) = offset + x^T Q x. Ising:
E(s) = offset + sum_i h_i s_i + sum_(i,j) J[i,j] s_i s_j. Every reported energy is recomputed by
the library from the model it solved.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping
from typing import Any, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _qprune
from .sampleset import BINARY, SPIN, SampleSet

# Keywords every sample_* method takes besides the solver's parameters.
_MODEL_KEYWORDS = ("constraints", "offset")


# ---- Labels -------------------------------------------------------------------------------------

def _label_kind(v: Any) -> type:
    """The type that decides whether labels mix: bools and numpy integers count as int."""
    if isinstance(v, (bool, np.bool_, numbers.Integral)):
        return int
    return type(v)


def _normal_label(v: Any) -> Hashable:
    if isinstance(v, (np.integer, np.bool_)):
        return int(v)
    if isinstance(v, np.str_):
        return str(v)
    return v


class _Labels:
    """Variables in a fixed order and their indices. Labels of one kind that can be compared are
    sorted (0, 1, 2, ... or 'a', 'b', ...); others keep their first-seen order. Labels of mixed
    kinds (1 and 'a') are refused with a TypeError."""

    def __init__(self, labels: Iterable[Any], sort: bool = True):
        seen: Dict[Hashable, None] = {}
        kinds: Dict[type, Any] = {}
        for v in labels:
            v = _normal_label(v)
            try:
                hash(v)
            except TypeError:
                raise TypeError(f"variable label {v!r} is not hashable") from None
            if v not in seen:
                seen[v] = None
                kinds.setdefault(_label_kind(v), v)
        if len(kinds) > 1:
            examples = ", ".join(f"{e!r} ({k.__name__})" for k, e in kinds.items())
            raise TypeError(f"variable labels of mixed types: {examples}; use labels of one type")
        variables = list(seen)
        if sort:
            try:
                variables = sorted(variables)
            except TypeError:
                pass
        self.variables = variables
        self.index = {v: i for i, v in enumerate(variables)}

    def __len__(self) -> int:
        return len(self.variables)

    def of(self, v: Any) -> int:
        try:
            return self.index[_normal_label(v)]
        except KeyError:
            raise ValueError(f"unknown variable {v!r}") from None
        except TypeError:
            raise TypeError(f"variable label {v!r} is not hashable") from None


class _RangeLabels(_Labels):
    """The labels 0 .. n-1 of an array's rows: built without the per-label checks of _Labels
    (about 1 ms at n = 2000, a sixth of a dense array's whole conversion)."""

    def __init__(self, n: int):  # pylint: disable=super-init-not-called
        self.variables = list(range(n))

    def of(self, v: Any) -> int:
        v = _normal_label(v)
        if isinstance(v, int) and 0 <= v < len(self.variables):
            return v
        if isinstance(v, Hashable):
            raise ValueError(f"unknown variable {v!r}")
        raise TypeError(f"variable label {v!r} is not hashable")


def _range_labels(n: int) -> _Labels:
    return _RangeLabels(n)


# ---- Models from Python inputs ------------------------------------------------------------------

def _pair(key: Any) -> Tuple[Any, Any]:
    if not isinstance(key, tuple) or len(key) != 2:
        raise TypeError(f"a quadratic key must be a pair (u, v), got {key!r}")
    return key


def _coo_of_dict(terms: Mapping, labels: _Labels) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = len(terms)
    rows = np.empty(m, dtype=np.int64)
    cols = np.empty(m, dtype=np.int64)
    vals = np.empty(m, dtype=np.float64)
    for k, (key, w) in enumerate(terms.items()):
        u, v = _pair(key)
        rows[k] = labels.of(u)
        cols[k] = labels.of(v)
        vals[k] = _number(w, key)
    return rows, cols, vals


def _number(w: Any, where: Any) -> float:
    try:
        return float(w)
    except (TypeError, ValueError):
        raise TypeError(f"the bias of {where!r} is not a number: {w!r}") from None


def _is_coo(Q: Any) -> bool:
    return isinstance(Q, tuple) and len(Q) == 3


def _coo_arrays(Q: Tuple[Any, Any, Any]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    rows, cols, vals = (np.asarray(a) for a in Q)
    if rows.ndim != 1 or cols.ndim != 1 or vals.ndim != 1 or not (
            len(rows) == len(cols) == len(vals)):
        raise ValueError("COO triplets (rows, cols, vals) must be three 1-d arrays of one length, "
                         f"got shapes {rows.shape}, {cols.shape}, {vals.shape}")
    for name, a in (("rows", rows), ("cols", cols)):
        if len(a) and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"COO {name} must be integers, got {a.dtype}")
        if len(a) and a.min() < 0:
            raise ValueError(f"COO {name} has a negative index ({a.min()})")
    n = int(max(rows.max(initial=-1), cols.max(initial=-1))) + 1
    return rows.astype(np.int64), cols.astype(np.int64), vals.astype(np.float64), n


def _qubo_model(Q: Any, offset: float) -> Tuple[Any, _Labels]:
    """A library model and its labels from a dict, a dense array, COO triplets or scipy.sparse."""
    if isinstance(Q, Mapping):
        labels = _Labels(v for key in Q for v in _pair(key))
        rows, cols, vals = _coo_of_dict(Q, labels)
        return _qprune.Model.from_coo(len(labels), rows, cols, vals, None, offset), labels
    if hasattr(Q, "tocoo") and hasattr(Q, "shape"):  # scipy.sparse
        if len(Q.shape) != 2 or Q.shape[0] != Q.shape[1]:
            raise ValueError(f"Q must be a square matrix, got shape {tuple(Q.shape)}")
        c = Q.tocoo()
        model = _qprune.Model.from_coo(int(Q.shape[0]), np.asarray(c.row, np.int64),
                                       np.asarray(c.col, np.int64),
                                       np.asarray(c.data, np.float64), None, offset)
        return model, _range_labels(int(Q.shape[0]))
    if _is_coo(Q):
        rows, cols, vals, n = _coo_arrays(Q)
        return _qprune.Model.from_coo(n, rows, cols, vals, None, offset), _range_labels(n)
    a = np.asarray(Q)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise TypeError(f"Q must be a dict {{(u, v): bias}}, a numeric square array or COO "
                        f"triplets (rows, cols, vals); got {type(Q).__name__} of {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"Q must be a square 2-d array, got shape {a.shape}")
    # A C-contiguous float64 array is read in place by the library (no copy).
    return _qprune.Model.from_dense(a, None, offset), _range_labels(a.shape[0])


def _ising_model(h: Any, J: Any, offset: float) -> Tuple[Any, _Labels]:
    """The QUBO with the same energies as the Ising model (x = (1 + s) / 2)."""
    if isinstance(h, Mapping):
        h_items: Optional[Mapping] = h
        h_array = None
    else:
        h_items = None
        h_array = np.asarray(h, dtype=np.float64)
        if h_array.ndim != 1:
            raise ValueError(f"h must be a dict or a 1-d array, got shape {h_array.shape}")
    if isinstance(J, Mapping):
        j_labels = [v for key in J for v in _pair(key)]
        if h_items is not None:
            labels = _Labels(list(h_items) + j_labels)
        else:
            labels = _Labels(list(range(len(h_array))) + j_labels)
        rows, cols, vals = _coo_of_dict(J, labels)
    elif _is_coo(J):
        rows, cols, vals, n = _coo_arrays(J)
        labels = _Labels(list(h_items) if h_items is not None else range(max(n, len(h_array))))
        if h_items is not None:
            rows = np.array([labels.of(int(r)) for r in rows], dtype=np.int64)
            cols = np.array([labels.of(int(c)) for c in cols], dtype=np.int64)
    else:
        Jd = np.asarray(J, dtype=np.float64)
        if Jd.ndim != 2 or Jd.shape[0] != Jd.shape[1]:
            raise ValueError(f"J must be a dict, COO triplets or a square array, got shape "
                             f"{Jd.shape}")
        r, c = np.nonzero(Jd)
        rows, cols, vals = r.astype(np.int64), c.astype(np.int64), Jd[r, c]
        n = Jd.shape[0]
        labels = _Labels(list(h_items) if h_items is not None else range(max(n, len(h_array))))
        if len(labels) != n:
            raise ValueError(f"J is {n} x {n} but h has {len(labels)} variables")
    hv = np.zeros(len(labels))
    if h_items is not None:
        for v, w in h_items.items():
            hv[labels.of(v)] += _number(w, v)
    else:
        hv[:len(h_array)] = h_array
    return _qprune.Model.from_ising(hv, rows, cols, vals, offset), labels


def _add_constraints(model: Any, constraints: Any, labels: _Labels) -> None:
    if constraints is None:
        return
    try:
        groups = list(constraints)
    except TypeError:
        raise TypeError("constraints must be a list of (variables, k) pairs") from None
    for g, group in enumerate(groups):
        try:
            variables, k = group
        except (TypeError, ValueError):
            raise TypeError(f"constraint {g} must be a pair (variables, k), got {group!r}") \
                from None
        if not isinstance(k, numbers.Integral):
            raise TypeError(f"constraint {g}: k must be an integer, got {k!r}")
        model.add_constraint([labels.of(v) for v in variables], int(k), f"group.{g}")


# ---- Samplers -----------------------------------------------------------------------------------

class _Sampler:
    """One qprune solver as a dimod-style sampler; see the module docstring."""

    _solver = ""

    @property
    def parameters(self) -> Dict[str, List[Any]]:
        """The keyword parameters this sampler takes (the CLI's option names), as dimod lists
        them, plus `constraints` and `offset`."""
        names = list(_qprune.parameter_names(self._solver)) + list(_MODEL_KEYWORDS)
        return {name: [] for name in sorted(names)}

    @property
    def properties(self) -> Dict[str, Any]:
        return {"solver": self._solver}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _solve(self, model: Any, labels: _Labels, vartype: str, method: str,
               kwargs: Dict[str, Any]) -> SampleSet:
        start = time.perf_counter()
        caller = f"{type(self).__name__}.{method}"
        r = _qprune.solve(model, self._solver, kwargs, caller)
        samples = r["samples"]
        if vartype == SPIN:
            samples = (2 * samples - 1).astype(np.int8)
        info = {
            "solver": r["solver"],
            "status": r["status"],
            "message": r["message"],
            "seed": r["seed"],
            "timing": {"solve_s": r["wall_time_s"]},
            "counters": r["counters"],
            "solver_info": r["info"],
        }
        ss = SampleSet(samples, r["energies"], r["num_occurrences"], r["feasible"],
                       labels.variables, vartype, info)
        info["timing"]["total_s"] = time.perf_counter() - start
        if r["interrupted_by_signal"]:
            e = KeyboardInterrupt(f"{caller} interrupted; the best answer so far is in this "
                                  "exception's .sampleset (also args[1])", ss)
            e.sampleset = ss
            raise e
        return ss

    def _split(self, kwargs: Dict[str, Any]) -> Tuple[Any, float, Dict[str, Any]]:
        constraints = kwargs.pop("constraints", None)
        offset = kwargs.pop("offset", 0.0)
        return constraints, _number(offset, "offset"), kwargs

    def sample_qubo(self, Q: Any, **kwargs: Any) -> SampleSet:
        """Samples the QUBO E(x) = offset + sum_(u,v) Q[u,v] x_u x_v. Q: a dict {(u, v): bias}
        (labels of any one hashable type), a dense numeric array (x^T Q x), COO triplets as a tuple
        (rows, cols, vals) or a scipy.sparse matrix. Keywords: the solver's parameters,
        `constraints=[(variables, k), ...]` ("exactly k of these are 1") and `offset`."""
        self._check_keywords(kwargs, "sample_qubo")
        constraints, offset, kw = self._split(dict(kwargs))
        model, labels = _qubo_model(Q, offset)
        _add_constraints(model, constraints, labels)
        return self._solve(model, labels, BINARY, "sample_qubo", kw)

    def sample_ising(self, h: Any, J: Any, **kwargs: Any) -> SampleSet:
        """Samples E(s) = offset + sum_v h[v] s_v + sum_(u,v) J[u,v] s_u s_v over s in {-1, +1}.
        h: a dict or a 1-d array; J: a dict, COO triplets or a square array. Groups in
        `constraints` count the variables at +1."""
        self._check_keywords(kwargs, "sample_ising")
        constraints, offset, kw = self._split(dict(kwargs))
        model, labels = _ising_model(h, J, offset)
        _add_constraints(model, constraints, labels)
        return self._solve(model, labels, SPIN, "sample_ising", kw)

    def sample(self, bqm: Any, **kwargs: Any) -> Any:
        """Samples a binary quadratic model: any object with .linear, .quadratic, .offset and
        .vartype (dimod's BQM: then a dimod.SampleSet comes back), a qprune.LayerProblem (solved
        as the library built it, as `qprune mask` does) or a qprune._qprune.Model."""
        self._check_keywords(kwargs, "sample")
        constraints, offset, kw = self._split(dict(kwargs))
        held = getattr(bqm, "_model", bqm)
        if isinstance(held, _qprune.Model):
            if constraints is not None or offset:
                raise TypeError("constraints and offset are part of a qprune model already")
            return self._solve(held, _range_labels(held.num_variables), BINARY, "sample", kw)
        for attr in ("linear", "quadratic", "offset", "vartype"):
            if not hasattr(bqm, attr):
                raise TypeError(f"sample() needs a binary quadratic model with .linear, "
                                f".quadratic, .offset and .vartype; {type(bqm).__name__} has no "
                                f".{attr}")
        vartype = str(getattr(bqm.vartype, "name", bqm.vartype)).upper()
        if vartype not in (BINARY, SPIN):
            raise ValueError(f"vartype must be BINARY or SPIN, got {vartype!r}")
        variables = list(getattr(bqm, "variables", bqm.linear))
        labels = _Labels(list(variables) + [v for key in bqm.quadratic for v in _pair(key)],
                         sort=False)
        lin = np.zeros(len(labels))
        for v, w in bqm.linear.items():
            lin[labels.of(v)] += _number(w, v)
        rows, cols, vals = _coo_of_dict(dict(bqm.quadratic), labels)
        total_offset = _number(bqm.offset, "offset") + offset
        if vartype == BINARY:
            model = _qprune.Model.from_coo(len(labels), rows, cols, vals, lin, total_offset)
        else:
            model = _qprune.Model.from_ising(lin, rows, cols, vals, total_offset)
        _add_constraints(model, constraints, labels)
        ss = self._solve(model, labels, vartype, "sample", kw)
        if type(bqm).__module__.split(".")[0] == "dimod":
            try:
                import dimod
            except ImportError:  # pragma: no cover - a dimod object without dimod
                return ss
            return dimod.SampleSet.from_samples(
                (ss.record.sample, ss.variables), vartype, energy=ss.record.energy,
                num_occurrences=ss.record.num_occurrences, info=ss.info,
                feasible=ss.record.feasible)
        return ss

    def _check_keywords(self, kwargs: Dict[str, Any], method: str) -> None:
        allowed = set(_qprune.parameter_names(self._solver)) | set(_MODEL_KEYWORDS)
        for name in kwargs:
            if name not in allowed:
                msg = f"{type(self).__name__}.{method}() got an unexpected keyword argument {name!r}"
                owners = [s for s in _qprune.solver_names()
                          if name in _qprune.parameter_names(s)]
                if owners:
                    msg += f" (an option of the {owners[0]} solver)"
                raise TypeError(msg)


class SimulatedAnnealingSampler(_Sampler):
    """Simulated annealing (`qprune solve --solver sa`): num_reads, seed, time_limit, sweeps,
    beta_range, schedule, sweep_order, start, precision, descent, ..."""

    _solver = "sa"


class TabuSampler(_Sampler):
    """Tabu search with restarts and path relinking, or breakout local search (`--solver tabu`)."""

    _solver = "tabu"


class ExactSolver(_Sampler):
    """Exhaustive Gray-code enumeration (`--solver exact`): proves the optimum, one sample."""

    _solver = "exact"


class GreedySampler(_Sampler):
    """Steepest descent from random starts (`--solver greedy`); read 0 under groups starts from the
    greedy construction."""

    _solver = "greedy"


class QAOASampler(_Sampler):
    """Simulated QAOA on a statevector (`--solver qaoa`), decomposed above qaoa_max_qubits."""

    _solver = "qaoa"


class RandomSampler(_Sampler):
    """Uniformly random (feasible) assignments (`--solver random`): a baseline."""

    _solver = "random"
