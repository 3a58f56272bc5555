"""Discrete tables: the data Bayesian networks learn from.

genlab's ``Dataset`` stores tables as standardised floats; a Bayesian network needs
categorical columns with named states instead. A ``DiscreteTable`` holds integer state
codes ``(N, D)`` (``-1`` marks a missing value), the column names and each column's
state labels. ``as_table`` turns every input ``fit`` accepts into one:

* a ``DiscreteTable``;
* a CSV path (text columns become categories, numeric columns with more than
  ``max_categories`` distinct values are cut into ``bins`` quantile bins);
* a dict ``{column: sequence of labels}``;
* an integer array ``(N, D)`` of codes with ``names`` and ``states``;
* a genlab table ``Dataset`` (its float columns are cut into quantile bins).
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import DataError

MISSING = -1
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})


@dataclasses.dataclass
class DiscreteTable:
    """Categorical data: ``codes[i, j]`` is the state index of column ``names[j]`` in row
    ``i`` (``states[j][codes[i, j]]`` its label), or ``-1`` if missing."""

    codes: np.ndarray
    names: list[str]
    states: list[list[str]]
    name: str = "table"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    kind: str = "discrete"

    def __post_init__(self) -> None:
        self.codes = np.asarray(self.codes)
        if self.codes.ndim != 2 or not np.issubdtype(self.codes.dtype, np.integer):
            raise DataError(f"{self.name}: codes must be an integer array (N, D), got "
                            f"{self.codes.dtype} of shape {self.codes.shape}")
        self.codes = self.codes.astype(np.int64, copy=False)
        self.names = [str(n) for n in self.names]
        self.states = [[str(s) for s in st] for st in self.states]
        d = self.codes.shape[1]
        if len(self.names) != d or len(self.states) != d:
            raise DataError(f"{self.name}: {d} columns but {len(self.names)} names and "
                            f"{len(self.states)} state lists")
        if len(set(self.names)) != d:
            raise DataError(f"{self.name}: column names must be unique: {self.names}")
        if len(self.codes):
            card = np.array([len(s) for s in self.states])
            bad = (self.codes < MISSING) | (self.codes >= card)
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise DataError(f"{self.name}: row {i}, column {self.names[j]!r} has code "
                                f"{self.codes[i, j]}, outside 0..{card[j] - 1} (or -1 = missing)")

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.codes.shape[1],)

    @property
    def cardinalities(self) -> list[int]:
        return [len(s) for s in self.states]

    def has_missing(self) -> bool:
        return bool((self.codes == MISSING).any())

    def subset(self, index: Any) -> "DiscreteTable":
        return dataclasses.replace(self, codes=self.codes[index], meta=dict(self.meta))

    def labels(self) -> list[list[str]]:
        """Rows as state labels ('' for missing)."""
        lab = [np.array(s + [""], dtype=object) for s in self.states]
        return np.stack([lab[j][self.codes[:, j]] for j in range(len(self.names))], 1).tolist()

    def to_csv(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(self.names)
            w.writerows(self.labels())

    def split(self, fractions: Sequence[float], *, seed: int = 0) -> list["DiscreteTable"]:
        perm = np.random.default_rng(seed).permutation(len(self))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(self)).astype(int)
        return [self.subset(np.sort(p)) for p in np.split(perm, cuts)]

    def align(self, names: Sequence[str], states: Sequence[Sequence[str]]) -> np.ndarray:
        """Codes re-ordered to ``names`` and re-coded to ``states`` (a model's); a state
        the model has never seen is a ``DataError`` naming it."""
        pos = {n: j for j, n in enumerate(self.names)}
        missing = [n for n in names if n not in pos]
        if missing:
            raise DataError(f"{self.name}: the data has no column(s) {missing} "
                            f"(it has {self.names})")
        out = np.empty((len(self), len(names)), dtype=np.int64)
        for k, n in enumerate(names):
            j = pos[n]
            if list(self.states[j]) == list(states[k]):
                out[:, k] = self.codes[:, j]
                continue
            index = {s: i for i, s in enumerate(states[k])}
            unseen = [s for s in self.states[j] if s not in index]
            lut = np.array([index.get(s, -2) for s in self.states[j]] + [MISSING])
            col = lut[self.codes[:, j]]
            if (col == -2).any():
                used = sorted({self.states[j][c] for c in self.codes[col == -2, j]})
                raise DataError(f"{self.name}: column {n!r} has state(s) {used} the model "
                                f"does not know (its states: {list(states[k])})")
            del unseen
            out[:, k] = col
        return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Distinct inner quantile edges of finite floats, computed on ``values / 2**e`` so
    the interpolation cannot overflow for values near +-1e308."""
    _, e = np.frexp(np.max(np.abs(values)))
    q = np.quantile(np.ldexp(values, -int(e)), np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(np.ldexp(q, int(e)))


def _bin_labels(bounds: list[float]) -> list[str]:
    """``[lo, hi)`` labels, with as many digits as it takes to keep them distinct."""
    for digits in (4, 6, 8, 10, 12, 17):
        labels = [f"[{bounds[i]:.{digits}g}, {bounds[i + 1]:.{digits}g})"
                  for i in range(len(bounds) - 1)]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def _quantile_bins(values: np.ndarray, bins: int) -> tuple[np.ndarray, list[str], list[float]]:
    """Cut floats into at most ``bins`` quantile bins; returns codes, labels, edges."""
    ok = ~np.isnan(values)
    edges = _quantile_edges(values[ok], bins)
    codes = np.full(len(values), MISSING, dtype=np.int64)
    codes[ok] = np.searchsorted(edges, values[ok], side="right")
    bounds = [-np.inf, *edges.tolist(), np.inf]
    return codes, _bin_labels(bounds), edges.tolist()


def from_columns(columns: dict[str, Sequence[Any]], *, bins: int = 5, max_categories: int = 10,
                 missing: str = "error", name: str = "table") -> DiscreteTable:
    """Build a table from ``{column: values}``; see ``read_csv`` for the options."""
    if missing not in ("error", "keep", "drop"):
        raise ValueError(f"missing must be 'error', 'keep' or 'drop', got {missing!r}")
    if not columns:
        raise DataError(f"{name}: no columns")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise DataError(f"{name}: columns have different lengths {sorted(lengths)}")
    names, states, codes, binned = [], [], [], {}
    for col, raw in columns.items():
        vals = ["" if v is None else str(v).strip() for v in raw]
        miss = np.array([v.lower() in MISSING_TOKENS for v in vals])
        if miss.any() and missing == "error":
            row = int(np.argmax(miss))
            raise DataError(f"{name}: column {col!r} has {int(miss.sum())} missing value(s) "
                            f"(first at data row {row + 1}); pass missing='drop' to drop those "
                            "rows or missing='keep' to learn with EM")
        present = [v for v, m in zip(vals, miss) if not m]
        distinct = sorted(set(present))
        if not distinct:
            raise DataError(f"{name}: column {col!r} has no values")
        if all(_is_number(v) for v in distinct) and len(distinct) > max_categories:
            x = np.array([np.nan if m else float(v) for v, m in zip(vals, miss)])
            if np.isinf(x).any():
                row = int(np.argmax(np.isinf(x)))
                raise DataError(f"{name}: column {col!r} has an infinite value {vals[row]!r} "
                                f"(data row {row + 1}); a numeric column to bin must be finite")
            c, labels, edges = _quantile_bins(x, bins)
            binned[col] = edges
        else:
            if all(_is_number(v) for v in distinct):
                distinct = sorted(distinct, key=float)
            index = {s: i for i, s in enumerate(distinct)}
            c = np.array([MISSING if m else index[v] for v, m in zip(vals, miss)], dtype=np.int64)
            labels = distinct
        names.append(str(col))
        states.append(labels)
        codes.append(c)
    arr = np.stack(codes, 1)
    if missing == "drop":
        arr = arr[(arr != MISSING).all(1)]
        if not len(arr):
            raise DataError(f"{name}: every row has a missing value")
    return DiscreteTable(arr, names, states, name=name, meta={"bin_edges": binned})


def read_csv(path: str | Path, *, bins: int = 5, max_categories: int = 10,
             missing: str = "error", delimiter: str | None = None) -> DiscreteTable:
    """Read a CSV file with a header row as a ``DiscreteTable``.

    Args:
        path: the file.
        bins: quantile bins for numeric columns with more than ``max_categories`` values.
        max_categories: numeric columns with at most this many distinct values stay
            categorical (e.g. 0/1 flags).
        missing: ``'error'`` (default: a ``DataError`` naming the column and row),
            ``'drop'`` rows with a missing value, or ``'keep'`` them as ``-1`` (for EM).

    Raises:
        FileNotFoundError: no such file.
        DataError: a file that is not a CSV text table (a Bayesian network file such as
            ``.bif``/``.uai``, compressed or binary data), bad UTF-8, a ragged row,
            duplicate column names, missing values under ``missing='error'``; the
            message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    from ...data.loaders import read_csv_rows, require_text_file

    require_text_file(path, "a CSV table")
    header, rows = read_csv_rows(path, delimiter)
    cols = {h: [r[j] for r in rows] for j, h in enumerate(header)}
    return from_columns(cols, bins=bins, max_categories=max_categories, missing=missing,
                        name=str(path))


def as_table(data: Any, *, names: Sequence[str] | None = None,
             states: Sequence[Sequence[str]] | None = None, **options: Any) -> DiscreteTable:
    """Coerce ``data`` (see the module docstring) into a ``DiscreteTable``."""
    if isinstance(data, DiscreteTable):
        return data
    if isinstance(data, (str, Path)):
        return read_csv(data, **options)
    if isinstance(data, dict):
        return from_columns(data, **options)
    if hasattr(data, "kind") and hasattr(data, "x"):  # a genlab Dataset
        if data.kind != "table":
            raise DataError(f"a Bayesian network learns from tables; got {data.kind} data")
        x = data.x.numpy()
        cols = list(data.columns or [f"x{j}" for j in range(x.shape[1])])
        return from_columns({c: x[:, j].tolist() for j, c in enumerate(cols)},
                            name=data.name, **options)
    arr = np.asarray(data)
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.integer):
        if names is None:
            names = [f"x{j}" for j in range(arr.shape[1])]
        if states is None:
            states = [[str(i) for i in range(max(int(arr[:, j].max()) + 1, 2))]
                      for j in range(arr.shape[1])]
        return DiscreteTable(arr, list(names), [list(s) for s in states], name="array")
    raise DataError(f"cannot read {type(data).__name__} as a discrete table: pass a CSV path, "
                    "a dict of columns, an integer array (N, D) with names/states, or a "
                    "DiscreteTable")


def load_splits(path: str | Path, *, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                **options: Any) -> dict[str, DiscreteTable]:
    """A CSV as deterministic train/val/test ``DiscreteTable`` splits (80/10/10)."""
    table = read_csv(path, **options)
    return dict(zip(("train", "val", "test"), table.split(fractions, seed=seed)))
