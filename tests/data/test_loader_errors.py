"""The generic loaders route files by what they are and name the file in every error
(issue 13, points 13 and 16): network files are refused as data, a .csv that is really
gzip or a .npy that is not npy says so, and finite values near 1e308 load instead of
being blamed on "NaN or infinite values" created by genlab's own standardisation."""
from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from genlab.data import clean_table, load_array, load_splits, load_table
from genlab.errors import DataError

UAI = "BAYES\n2\n2 2\n2\n1 0\n2 0 1\n\n2\n0.3 0.7\n\n4\n0.9 0.1 0.2 0.8\n"
BIF = ("network n {\n}\nvariable a {\n  type discrete [ 2 ] { yes, no };\n}\n"
       "probability ( a ) {\n  table 0.3, 0.7;\n}\n")


def _msg(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as e:
        fn(*args, **kwargs)
    return str(e.value)


# ----------------------------------------------------------------------------- point 13: routing
@pytest.mark.parametrize("name, text, what", [
    ("model.uai", UAI, "UAI"), ("model.bif", BIF, "BIF"),
    ("model.csv", UAI, "UAI"), ("model.txt", BIF, "BIF"), ("model.smi", UAI, "UAI"),
], ids=["uai", "bif", "uai-as-csv", "bif-as-txt", "uai-as-smi"])
def test_generic_loader_refuses_network_files(tmp_path, name, text, what):
    p = tmp_path / name
    p.write_text(text)
    msg = _msg(load_splits, p)  # .uai/.bif were "don't know how to load"; .csv/.txt loaded
    assert f"{name} is a Bayesian network file ({what}), not a data table" in msg
    assert ("read_uai()" if what == "UAI" else "read_bif()") in msg


def test_load_table_refuses_network_content(tmp_path):
    p = tmp_path / "net.csv"
    p.write_text(BIF)
    assert "net.csv is a Bayesian network file (BIF)" in _msg(load_table, p)


def test_gzip_csv_is_named_as_gzip(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    msg = _msg(load_table, p)  # was "'utf-8' codec can't decode byte 0x8b"
    assert "t.csv is not a CSV table: it looks like gzip-compressed data; decompress it first" in msg


def test_binary_csv_with_nul_bytes_is_refused(tmp_path):
    p = tmp_path / "nul.csv"
    p.write_bytes(b"a,b\n1,2\n\x00\x00\x00\n")
    assert "nul.csv is not a CSV table: it looks like binary data" in _msg(load_table, p)


def test_non_utf8_csv_names_file_line_and_byte(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("a,b\n1,2\n3,caf\xe9\n".encode("latin-1"))
    msg = _msg(load_table, p)
    assert "latin.csv is not UTF-8 text: byte 0xe9" in msg and "(line 3)" in msg


@pytest.mark.parametrize("content, what", [
    (b"a,b\n1,2\n", "text"), (b"\x89PNG\r\n\x1a\n....", "a PNG image"),
    (b"\x80\x04\x95pickle", "pickled Python objects"), (b"", "text"),
], ids=["csv", "png", "pickle", "empty"])
def test_npy_that_is_not_npy_says_what_it_is(tmp_path, content, what):
    p = tmp_path / "x.npy"
    p.write_bytes(content)
    msg = _msg(load_array, p)  # was "Cannot load file containing pickled data ..."
    assert f"x.npy is not a NumPy .npy/.npz file: it looks like {what}" in msg


def test_npy_with_a_corrupt_header_names_the_file(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 1)))
    raw = bytearray(buf.getvalue())
    raw[60] = 0  # a NUL inside the header dict: numpy raised SyntaxError / TokenError
    p = tmp_path / "nul.npy"
    p.write_bytes(bytes(raw))
    assert "cannot read array file" in _msg(load_array, p) and "nul.npy" in _msg(load_array, p)


def test_npy_truncated_data_and_huge_shape_are_errors_not_allocations(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros((100, 3)))
    p = tmp_path / "cut.npy"
    p.write_bytes(buf.getvalue()[:-8])
    msg = _msg(load_array, p)
    assert "cut.npy is truncated" in msg and "(100, 3)" in msg
    from numpy.lib import format as npformat

    fake = io.BytesIO()  # a header promising 8 TB of float64, then 16 bytes
    npformat.write_array_header_1_0(fake, {"descr": "<f8", "fortran_order": False,
                                           "shape": (10 ** 12,)})
    p.write_bytes(fake.getvalue() + b"\x00" * 16)
    assert "truncated" in _msg(load_array, p)


def test_object_arrays_are_refused_and_never_unpickled(tmp_path):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    msg = _msg(load_array, p)
    assert "obj.npy holds Python objects" in msg and "pickle" in msg
    z = tmp_path / "obj.npz"
    np.savez(z, x=np.array([{"a": 1}], dtype=object))
    assert "obj.npz" in _msg(load_array, z) and "pickle" in _msg(load_array, z)


def test_empty_axis_array_is_an_error(tmp_path):
    p = tmp_path / "empty.npy"
    np.save(p, np.zeros((3, 0)))
    assert "empty.npy: unsupported shape (3, 0)" in _msg(load_array, p)


def test_csv_field_over_the_csv_limit_names_the_file(tmp_path):
    p = tmp_path / "wide.csv"
    p.write_text("a\n" + "x" * 140_000 + "\n")
    msg = _msg(load_table, p)  # was a raw _csv.Error
    assert "wide.csv, line" in msg and "field larger than field limit" in msg


def test_cleaning_errors_name_the_file(tmp_path):
    p = tmp_path / "gaps.csv"
    p.write_text("a,b\n1,2\nNA,3\n")
    msg = _msg(load_table, p)
    assert msg.startswith(f"{p}: column 'a' has 1 missing value")


@pytest.mark.parametrize("labels", [["²", "³", "²"], ["100000000000000000000", "7", "100000000000000000000"]])
def test_odd_integer_labels_load(tmp_path, labels):
    p = tmp_path / "lab.csv"
    p.write_text("x,y\n" + "\n".join(f"{i},{v}" for i, v in enumerate(labels)) + "\n")
    ds = load_table(p, label="y")  # '²'.isdigit() made int() fail; 1e20 overflowed int64
    assert len(ds.classes) == 2 and ds.y.tolist()[0] == ds.y.tolist()[2]
    assert [ds.classes[i] for i in ds.y.tolist()] == [str(int(v)) if v.isascii() else v
                                                      for v in labels]


def test_sniff_file(tmp_path):
    from genlab.data.loaders import sniff_file

    cases = {"a.uai": (b"x", "network"), "b.bif.gz": (b"x", "network"),
             "c.csv": (UAI.encode(), "network"), "d.csv": (b"a,b\n1,2\n", "text"),
             "e.dat": (gzip.compress(BIF.encode()), "network"), "f.dat": (b"PK\x03\x04", "binary"),
             "g.csv": (b"BAYES\nfoo,bar\n", "text"), "h.csv": (b"network,x\n1,2\n", "text")}
    for name, (raw, kind) in cases.items():
        (tmp_path / name).write_bytes(raw)
        assert sniff_file(tmp_path / name).kind == kind, name


# ----------------------------------------------------------------------------- point 16: overflow
def test_csv_near_the_float64_limit_loads_with_finite_statistics(tmp_path):
    p = tmp_path / "huge.csv"
    rows = [(1.7976931348623157e308, 1), (-1.7976931348623157e308, 2), (1e308, 3)]
    p.write_text("a,b\n" + "\n".join(f"{a!r},{b}" for a, b in rows) + "\n")
    ds = load_table(p)  # was "contains NaN or infinite values"
    mean, std = np.array(ds.meta["mean"]), np.array(ds.meta["std"])
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()
    x = np.array(rows, dtype=np.float64)
    half = ds.x.double().numpy() * (std / 2) + mean / 2
    assert np.allclose(half, x / 2, rtol=1e-6)


def test_all_positive_huge_column_is_not_silently_flattened(tmp_path):
    p = tmp_path / "pos.csv"
    p.write_text("a\n1e308\n1.5e308\n1.7e308\n")
    ds = load_table(p)
    assert len(set(ds.x[:, 0].tolist())) == 3 and np.isfinite(ds.meta["std"]).all()


def test_npy_table_whose_squares_overflow_loads(tmp_path):
    p = tmp_path / "sq.npy"
    np.save(p, np.array([[0.0], [0.0], [1.6421143998800675e154]]))
    ds = load_array(p)  # x**2 overflowed in the std: std inf, every z 0 or NaN
    assert np.isfinite(ds.meta["std"]).all()
    assert ds.x[:, 0].tolist()[2] > 1.0 and ds.x[0, 0] == ds.x[1, 0]


def test_huge_image_array_is_min_max_scaled_without_overflow(tmp_path):
    p = tmp_path / "img.npy"
    np.save(p, np.array([[[1e308, -1.7e308], [0.0, 1.7e308]]]))
    with pytest.warns(UserWarning, match="rescaling"):
        ds = load_array(p)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0 and np.isfinite(ds.x.numpy()).all()


def test_imputation_and_outliers_near_the_limit():
    col = np.array(["1e308", "1.5e308", "NA"], dtype=object)
    out, rep = clean_table({"a": col}, missing="median")
    assert out["a"][2] == pytest.approx(1.25e308)
    out, rep = clean_table({"a": col}, missing="mean")
    assert out["a"][2] == pytest.approx(1.25e308)
    big = np.array([1.7e308, -1.7e308] * 5 + [1.6e308])
    out, rep = clean_table({"a": big}, outliers="zscore", z=0.5)
    assert np.isfinite(out["a"]).all() and rep["a"].outliers > 0


def test_scaled_statistics_match_numpy_on_ordinary_data():
    from genlab.data.cleaning import scaled_mean_std, standardize_columns

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)) * [1, 1e-8, 1e8, 0]
    z, mean, std = standardize_columns(x)
    assert np.array_equal(mean, x.mean(0))
    assert np.array_equal(std[:3], x.std(0)[:3]) and std[3] == 1.0
    assert np.allclose(z[:, :3], (x[:, :3] - x.mean(0)[:3]) / x.std(0)[:3], rtol=0, atol=1e-15)
    m, s = scaled_mean_std(x[:, 0])
    assert m == x[:, 0].mean() and s == x[:, 0].std()
