"""SampleSet: the answer of a qprune sampler, in the shape of dimod's SampleSet.

``record`` is a numpy record array with the fields ``sample`` (int8, one column per variable),
``energy`` (float64, recomputed by the library from the model), ``num_occurrences`` (int64) and
``feasible`` (bool: every "exactly k" group holds). Rows are ranked as the solver ranks its
samples: feasible first, then by energy, so ``first`` is the best feasible answer when there is one.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

BINARY = "BINARY"
SPIN = "SPIN"

SampleTuple = collections.namedtuple("Sample", ["sample", "energy", "num_occurrences", "feasible"])


class SampleSet:
    """Samples, energies and the run's information; see the module docstring."""

    def __init__(self, samples: np.ndarray, energies: np.ndarray, num_occurrences: np.ndarray,
                 feasible: np.ndarray, variables: Sequence[Any], vartype: str = BINARY,
                 info: Optional[Dict[str, Any]] = None):
        samples = np.asarray(samples, dtype=np.int8)
        n = len(variables)
        if samples.ndim != 2 or samples.shape[1] != n:
            raise ValueError(f"samples must be (rows, {n}), got shape {samples.shape}")
        rows = samples.shape[0]
        dtype = [("sample", np.int8, (n,)), ("energy", np.float64),
                 ("num_occurrences", np.int64), ("feasible", np.bool_)]
        record = np.empty(rows, dtype=dtype)
        record["sample"] = samples
        record["energy"] = energies
        record["num_occurrences"] = num_occurrences
        record["feasible"] = feasible
        self.record = record.view(np.recarray)
        self.variables = list(variables)
        self.vartype = vartype
        self.info = dict(info or {})

    # -- dimod's accessors -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.record)

    def __iter__(self) -> Iterator[Dict[Any, int]]:
        return iter(self.samples())

    def __repr__(self) -> str:
        status = self.info.get("status", "?")
        best = self.record.energy[0] if len(self) else float("nan")
        return (f"SampleSet({len(self)} samples, {len(self.variables)} variables, "
                f"{self.vartype}, status {status}, best energy {best!r})")

    def _sample_dict(self, row: int) -> Dict[Any, int]:
        values = self.record.sample[row].tolist()
        return dict(zip(self.variables, values))

    @property
    def first(self) -> SampleTuple:
        """The best row (feasible first, then lowest energy) as (sample dict, energy, ...)."""
        if not len(self):
            raise ValueError("the SampleSet is empty")
        r = self.record[0]
        return SampleTuple(self._sample_dict(0), float(r.energy), int(r.num_occurrences),
                           bool(r.feasible))

    def samples(self, n: Optional[int] = None) -> List[Dict[Any, int]]:
        """The first n samples (all by default) as dicts variable -> value, in record order."""
        rows = len(self) if n is None else min(n, len(self))
        return [self._sample_dict(i) for i in range(rows)]

    def data(self, fields: Optional[Sequence[str]] = None, sorted_by: Optional[str] = "energy",
             name: str = "Sample", reverse: bool = False,
             sample_dict_cast: bool = True) -> Iterator[Any]:
        """Iterates over the rows as named tuples of `fields` (default: all), like dimod."""
        fields = list(fields or ["sample", "energy", "num_occurrences", "feasible"])
        unknown = [f for f in fields if f not in self.record.dtype.names]
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; the fields are {self.record.dtype.names}")
        Row = collections.namedtuple(name, fields)
        order = np.arange(len(self))
        if sorted_by is not None:
            order = np.argsort(self.record[sorted_by], kind="stable")
        if reverse:
            order = order[::-1]
        for i in order:
            values = []
            for f in fields:
                if f == "sample":
                    values.append(self._sample_dict(int(i)) if sample_dict_cast
                                  else self.record.sample[i])
                else:
                    values.append(self.record[f][i].item())
            yield Row(*values)

    def to_pandas_dataframe(self, sample_column: bool = False):
        """One row per sample, one column per variable (or one `sample` column of dicts), plus
        energy, num_occurrences and feasible. Needs pandas."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ImportError("to_pandas_dataframe needs pandas (apt-get install "
                              "python3-pandas)") from e
        extra = {f: self.record[f] for f in ("energy", "num_occurrences", "feasible")}
        if sample_column:
            return pd.DataFrame(dict(sample=self.samples(), **extra))
        df = pd.DataFrame(self.record.sample, columns=self.variables)
        for k, v in extra.items():
            df[k] = v
        return df

    def change_vartype(self, vartype: str) -> "SampleSet":
        """The same samples as BINARY (0/1) or SPIN (-1/+1); energies are unchanged."""
        vartype = str(getattr(vartype, "name", vartype)).upper()
        if vartype == self.vartype:
            return self
        if vartype not in (BINARY, SPIN):
            raise ValueError(f"vartype must be BINARY or SPIN, got {vartype!r}")
        s = self.record.sample.astype(np.int8)
        s = 2 * s - 1 if vartype == SPIN else (s + 1) // 2
        return SampleSet(s, self.record.energy, self.record.num_occurrences, self.record.feasible,
                         self.variables, vartype, self.info)
