"""clean_table: type standardisation, missing values, outliers, the report."""
from __future__ import annotations

import numpy as np
import pytest

from genlab.data import CleaningReport, clean_table, load_table
from genlab.errors import DataError


def _messy():
    return {
        "price": np.array([" 3.5 ", "1,234", "NA", "2", "?", "4"], dtype=object),
        "flag": np.array(["yes", "no", "true", "", "FALSE", "yes"], dtype=object),
        "city": np.array(["a", "b", "a", None, "c", "a"], dtype=object),
        "n": np.array([1.0, np.inf, 3.0, 4.0, 5.0, 6.0]),
    }


def test_type_standardisation_and_report():
    with pytest.raises(DataError, match="column 'price' has 2 missing value.*first rows: \\[2, 4\\]"):
        clean_table(_messy())
    out, rep = clean_table(_messy(), missing="mode")
    assert isinstance(rep, CleaningReport)
    assert [c.dtype for c in rep.columns] == ["numeric", "boolean", "text", "numeric"]
    assert [c.missing for c in rep.columns] == [2, 1, 1, 1]
    assert out["price"][:2].tolist() == [3.5, 1234.0]
    assert out["flag"].tolist() == [1, 0, 1, 1, 0, 1]  # mode of 1,0,1,0,1 is 1
    assert out["city"][3] == "a"
    text = str(rep)
    assert "price" in text and "imputed mode" in text and "rows: 6 in, 6 out" in text


def test_mean_median_and_drop():
    col = {"x": np.array(["1", "2", "", "9"], dtype=object), "y": np.arange(4.0)}
    out, rep = clean_table(col, missing="mean")
    assert out["x"][2] == pytest.approx(4.0) and rep["x"].action.startswith("imputed mean")
    out, _ = clean_table(col, missing="median")
    assert out["x"][2] == pytest.approx(2.0)
    out, rep = clean_table(col, missing="drop")
    assert out["y"].tolist() == [0.0, 1.0, 3.0]
    assert rep.rows_in == 4 and rep.rows_out == 3 and rep.rows_dropped == 1
    assert rep["x"].action == "rows dropped" and rep["y"].action == "none"


def test_quantile_outliers_clipped_and_counted():
    x = np.concatenate([np.linspace(0, 1, 98), [50.0, -40.0]])
    out, rep = clean_table({"x": x}, outliers="quantile", quantiles=(0.02, 0.98))
    # the 2% tails of 100 values: the two extremes plus the outermost grid point each side
    lo, hi = np.quantile(x, [0.02, 0.98])
    assert rep["x"].outliers == 4 == int(((x < lo) | (x > hi)).sum())
    assert out["x"].max() == pytest.approx(hi) and out["x"].min() == pytest.approx(lo)
    assert out["x"].max() < 1.0 and out["x"].min() > 0.0
    assert "clipped" in rep["x"].action


def test_zscore_outliers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    x[[10, 20]] = [30.0, -25.0]
    out, rep = clean_table(x[:, None], ["v"], outliers="zscore", z=4.0)
    assert rep["v"].outliers == 2
    assert out.shape == (500, 1) and out.dtype == np.float64
    assert np.abs(out[[10, 20], 0]).max() < 30.0
    untouched = np.delete(np.arange(500), [10, 20])
    assert np.array_equal(out[untouched, 0], x[untouched])


def test_booleans_are_not_clipped_and_bad_options():
    col = {"b": np.array([True] * 99 + [False])}
    _, rep = clean_table(col, outliers="quantile")
    assert rep["b"].dtype == "boolean" and rep["b"].outliers == 0
    with pytest.raises(DataError, match="missing="):
        clean_table(col, missing="guess")
    with pytest.raises(DataError, match="outliers="):
        clean_table(col, outliers="iqr")
    with pytest.raises(DataError, match="different lengths"):
        clean_table({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(DataError, match="no values at all"):
        clean_table({"a": np.array(["", "NA"], dtype=object)}, missing="mean")


def test_csv_through_clean_table(tmp_path):
    rows = ["a,b"] + [f"{i},{i % 5}" for i in range(1, 60)] + ["1000,", "2,null"]
    p = tmp_path / "d.csv"
    p.write_text("\n".join(rows) + "\n")
    ds = load_table(p, clean={"missing": "median", "outliers": "quantile",
                              "quantiles": (0.0, 0.95)})
    cols = {c["name"]: c for c in ds.meta["cleaning"]["columns"]}
    assert cols["b"]["missing"] == 2 and cols["b"]["action"].startswith("imputed median")
    # a = 1..59, 1000, 2: the 95% quantile is 57, so 58, 59 and 1000 are clipped
    assert cols["a"]["outliers"] == 3 and "57" in cols["a"]["action"]
    assert ds.meta["cleaning"]["rows_out"] == 61 and len(ds) == 61
