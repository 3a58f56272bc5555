"""Cleaning for tables: type standardisation, missing values and outliers.

``clean_table`` works column by column, in this order:

1. **Types.** Every column is parsed to numbers where it can be: ``" 3.5 "`` -> 3.5,
   ``"1,234"`` -> 1234 (comma as a thousands separator only), ``true/false`` and
   ``yes/no`` -> 1/0. The tokens ``"" NA N/A NaN null None ?`` (any case) and
   non-finite numbers (inf) count as missing. A column where any other value fails to
   parse stays a ``"text"`` column.
2. **Missing values.** ``"error"`` (raise, naming the column), ``"drop"`` (drop every row
   with a missing value in any column), ``"mean"`` / ``"median"`` / ``"mode"`` (impute per
   column; text columns always use the mode).
3. **Outliers** (numeric, non-boolean columns only): ``"quantile"`` clips to the given
   quantiles, ``"zscore"`` clips to ``mean +- z * std``. Statistics are computed after
   step 2.

Every step is recorded in a ``CleaningReport``.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
TRUE_TOKENS = frozenset({"true", "yes"})
FALSE_TOKENS = frozenset({"false", "no"})
MISSING_CHOICES = ("error", "drop", "mean", "median", "mode")
OUTLIER_CHOICES = (None, "quantile", "zscore")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


@dataclasses.dataclass
class ColumnReport:
    """What cleaning found and did in one column."""

    name: str
    dtype: str  # "numeric", "boolean", "text" or "empty"
    missing: int = 0
    action: str = "none"
    outliers: int = 0
    example: str | None = None  # first value that made a column "text"


@dataclasses.dataclass
class CleaningReport:
    """Per-column summary of ``clean_table``.

    Attributes:
        columns: one ``ColumnReport`` per column, in input order.
        rows_in: rows before cleaning.
        rows_out: rows after cleaning (fewer only with ``missing="drop"``).
    """

    columns: list[ColumnReport]
    rows_in: int
    rows_out: int

    @property
    def rows_dropped(self) -> int:
        return self.rows_in - self.rows_out

    def __getitem__(self, name: str) -> ColumnReport:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r} in the cleaning report")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (for ``Dataset.meta`` and run records)."""
        return {"rows_in": self.rows_in, "rows_out": self.rows_out,
                "columns": [dataclasses.asdict(c) for c in self.columns]}

    def __str__(self) -> str:
        head = ("column", "type", "missing", "action", "outliers clipped")
        rows = [(c.name, c.dtype, str(c.missing), c.action, str(c.outliers)) for c in self.columns]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*r) for r in rows]
        lines.append(f"rows: {self.rows_in} in, {self.rows_out} out "
                     f"({self.rows_dropped} dropped)")
        return "\n".join(lines)


def parse_value(value: Any) -> tuple[str, float | None]:
    """Classify one cell.

    Args:
        value: a string, number, bool or None.

    Returns:
        ``(kind, number)`` where kind is ``"missing"``, ``"bool"``, ``"number"`` or
        ``"text"``; number is the parsed float (``None`` for missing/text).
    """
    if value is None:
        return "missing", None
    if isinstance(value, (bool, np.bool_)):
        return "bool", float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return ("number", v) if math.isfinite(v) else ("missing", None)
    s = str(value).strip()
    low = s.lower()
    if low in MISSING_TOKENS:
        return "missing", None
    if low in TRUE_TOKENS:
        return "bool", 1.0
    if low in FALSE_TOKENS:
        return "bool", 0.0
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    try:
        v = float(s)
    except ValueError:
        return "text", None
    return ("number", v) if math.isfinite(v) else ("missing", None)


def _standardise(name: str, values: np.ndarray) -> tuple[np.ndarray, ColumnReport]:
    """Parse one column to float64 (NaN = missing) or keep it as text (None = missing)."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"column {name!r} must be 1-D, got shape {values.shape}")
    if values.dtype.kind in "biuf":
        out = values.astype(np.float64)
        out[~np.isfinite(out)] = np.nan
        dtype = "boolean" if values.dtype.kind == "b" else "numeric"
        return out, ColumnReport(name, dtype, missing=int(np.isnan(out).sum()))
    if values.dtype.kind not in "OUS":
        raise DataError(f"column {name!r} has unsupported dtype {values.dtype}")
    parsed = [parse_value(v.decode() if isinstance(v, bytes) else v) for v in values.tolist()]
    kinds = Counter(k for k, _ in parsed)
    missing = kinds["missing"]
    if kinds["text"]:
        example = next(str(v) for v, (k, _) in zip(values.tolist(), parsed) if k == "text")
        text = np.array([None if k == "missing" else str(v).strip()
                         for v, (k, _) in zip(values.tolist(), parsed)], dtype=object)
        return text, ColumnReport(name, "text", missing=missing, example=example)
    out = np.array([np.nan if n is None else n for _, n in parsed], dtype=np.float64)
    if missing == len(out):
        dtype = "empty"
    elif kinds["bool"] and not kinds["number"]:
        dtype = "boolean"
    else:
        dtype = "numeric"
    return out, ColumnReport(name, dtype, missing=missing)


def _exponents(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Powers of two ``e`` with ``|x| / 2**e <= 1`` (per ``axis``): dividing by them with
    ``np.ldexp`` is exact and keeps sums of squares from overflowing near 1e308."""
    big = np.max(np.abs(x), axis=axis) if x.size else np.zeros(())
    _, e = np.frexp(np.where(np.isfinite(big), big, 0.0))
    return e.astype(np.int64)


def scaled_mean_std(values: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation of finite floats, computed in a scaled
    copy so values near the float64 limit (1e308) do not overflow to inf.

    Args:
        values: a non-empty float array.
        axis: as in ``np.mean`` (``None``: over everything).
    Returns:
        ``(mean, std)``; bit-identical to ``values.mean(axis)`` / ``values.std(axis)``
        whenever those do not overflow or underflow.
    """
    x = np.asarray(values, dtype=np.float64)
    e = _exponents(x, axis)
    ek = e if axis is None else np.expand_dims(e, axis)
    xs = np.ldexp(x, -ek)
    return np.ldexp(xs.mean(axis=axis), e), np.ldexp(xs.std(axis=axis), e)


def _scaled_quantile(values: np.ndarray, q: Any) -> Any:
    """``np.quantile`` (``q=None``: ``np.median``) without overflow in the interpolation."""
    e = _exponents(values)
    xs = np.ldexp(values, -e)
    return np.ldexp(np.median(xs) if q is None else np.quantile(xs, q), e)


def standardize_columns(x: np.ndarray, *, min_std: float = 1e-12
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise each column of a finite ``(N, D)`` array without overflow.

    Args:
        x: finite numbers, ``N >= 1`` rows.
        min_std: columns whose standard deviation is at most this are only centred
            (their std is reported as 1).
    Returns:
        ``(z, mean, std)``: float64 ``z = (x - mean) / std`` and the per-column statistics,
        all finite even for values near 1e308 (the arithmetic runs on ``x / 2**e``).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not len(x):
        raise DataError(f"standardize_columns needs a non-empty (N, D) array, got shape {x.shape}")
    e = _exponents(x, 0)
    xs = np.ldexp(x, -e[None, :])
    m, s = xs.mean(axis=0), xs.std(axis=0)
    mean, std = np.ldexp(m, e), np.ldexp(s, e)
    const = ~(std > min_std)
    centred = xs - m
    z = np.empty_like(x)
    z[:, ~const] = centred[:, ~const] / s[~const]
    z[:, const] = np.ldexp(centred[:, const], e[None, const])
    std[const] = 1.0
    return z, mean, std


def _is_missing(col: np.ndarray) -> np.ndarray:
    if col.dtype == object:
        return np.array([v is None for v in col], dtype=bool)
    return np.isnan(col)


def _mode(values: np.ndarray) -> Any:
    counts = Counter(values.tolist())
    best = max(counts.values())
    return sorted(v for v, c in counts.items() if c == best)[0]  # ties: smallest


def clean_table(
    columns: Mapping[str, Any] | np.ndarray,
    names: Sequence[str] | None = None,
    *,
    missing: str = "error",
    outliers: str | None = None,
    quantiles: tuple[float, float] = (0.01, 0.99),
    z: float = 4.0,
) -> tuple[dict[str, np.ndarray] | np.ndarray, CleaningReport]:
    """Standardise types, handle missing values and clip outliers.

    Args:
        columns: ``{name: 1-D array}`` (any dtype, strings included) or a 2-D array
            whose columns are named by ``names``.
        names: column names for a 2-D array (default ``col0, col1, ...``).
        missing: ``"error"``, ``"drop"``, ``"mean"``, ``"median"`` or ``"mode"``.
        outliers: ``None``, ``"quantile"`` or ``"zscore"``.
        quantiles: ``(low, high)`` for ``outliers="quantile"``.
        z: the z-score limit for ``outliers="zscore"``.

    Returns:
        ``(cleaned, report)``. ``cleaned`` has the input's form: a dict of float64 arrays
        (object arrays for text columns), or a 2-D float64 array (object if any column is
        text).

    Raises:
        DataError: missing values with ``missing="error"`` (naming the column and count),
            an all-missing column, ragged columns or bad options.
    """
    if missing not in MISSING_CHOICES:
        raise DataError(f"missing={missing!r} is not one of {MISSING_CHOICES}")
    if outliers not in OUTLIER_CHOICES:
        raise DataError(f"outliers={outliers!r} is not one of {OUTLIER_CHOICES}")
    lo_q, hi_q = quantiles
    if not 0 <= lo_q < hi_q <= 1:
        raise DataError(f"quantiles must satisfy 0 <= low < high <= 1, got {quantiles}")
    if not z > 0:
        raise DataError(f"z must be > 0, got {z}")

    as_array = not isinstance(columns, Mapping)
    if as_array:
        arr = np.asarray(columns)
        if arr.ndim != 2:
            raise DataError(f"clean_table needs a 2-D array, got shape {arr.shape}")
        names = list(names) if names is not None else [f"col{i}" for i in range(arr.shape[1])]
        if len(names) != arr.shape[1]:
            raise DataError(f"{len(names)} names for {arr.shape[1]} columns")
        columns = {n: arr[:, i] for i, n in enumerate(names)}
    lengths = {n: len(np.asarray(v)) for n, v in columns.items()}
    if not lengths:
        raise DataError("clean_table got no columns")
    if len(set(lengths.values())) > 1:
        raise DataError(f"columns have different lengths: {lengths}")
    n_rows = next(iter(lengths.values()))

    data: dict[str, np.ndarray] = {}
    reports: list[ColumnReport] = []
    for name, values in columns.items():
        data[name], rep = _standardise(name, values)
        reports.append(rep)

    # -- missing values
    for rep in reports:
        if rep.missing == 0:
            continue
        col = data[rep.name]
        where = np.flatnonzero(_is_missing(col))[:5].tolist()
        if missing == "error":
            raise DataError(
                f"column {rep.name!r} has {rep.missing} missing value(s) of {n_rows} rows "
                f"(first rows: {where}); choose how to handle them with "
                "clean='drop', 'mean', 'median' or 'mode'"
            )
        if rep.dtype == "empty" and missing != "drop":
            raise DataError(f"column {rep.name!r} has no values at all; remove the column")
    keep = np.ones(n_rows, dtype=bool)
    if missing == "drop":
        for rep in reports:
            if rep.missing:
                keep &= ~_is_missing(data[rep.name])
                rep.action = "rows dropped"
        data = {n: c[keep] for n, c in data.items()}
        if not keep.any():
            raise DataError("dropping rows with missing values left no rows")
    elif missing in ("mean", "median", "mode"):
        for rep in reports:
            if not rep.missing:
                continue
            col = data[rep.name]
            gaps = _is_missing(col)
            present = col[~gaps]
            how = missing
            if rep.dtype in ("text", "boolean") or missing == "mode":
                how = "mode"
                fill = _mode(present)
            elif missing == "mean":
                fill = float(scaled_mean_std(present)[0])
            else:
                fill = float(_scaled_quantile(present, None))
            col = col.copy()
            col[gaps] = fill
            data[rep.name] = col
            rep.action = f"imputed {how} ({fill if isinstance(fill, str) else f'{fill:.4g}'})"

    # -- outliers
    if outliers is not None:
        for rep in reports:
            if rep.dtype != "numeric":
                continue
            col = data[rep.name]
            ok = ~np.isnan(col)
            if not ok.any():
                continue
            if outliers == "quantile":
                lo, hi = _scaled_quantile(col[ok], [lo_q, hi_q])
            else:
                mu, sd = (float(v) for v in scaled_mean_std(col[ok]))
                lo, hi = mu - z * sd, mu + z * sd
            n_out = int(((col[ok] < lo) | (col[ok] > hi)).sum())
            if n_out:
                data[rep.name] = np.where(ok, np.clip(col, lo, hi), col)
                rep.outliers = n_out
                clip = f"clipped to [{lo:.4g}, {hi:.4g}]"
                rep.action = clip if rep.action == "none" else f"{rep.action}; {clip}"

    report = CleaningReport(reports, rows_in=n_rows, rows_out=int(keep.sum()))
    if as_array:
        kinds = {c.dtype for c in reports}
        out = np.stack([data[n] for n in names], axis=1).astype(
            object if "text" in kinds else np.float64)
        return out, report
    return data, report
