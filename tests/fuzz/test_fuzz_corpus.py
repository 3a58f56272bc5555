"""Inputs the fuzz suite (``test_fuzz_loaders.py``) found breaking a loader, pinned as
plain tests. Each was a raw exception (EOFError, IndexError, SyntaxError, a reshape
ValueError, csv.Error...), an error blaming the wrong thing, or a silently wrong load on
the code before issue 13; now each is a successful, correct load or a GenlabError whose
message names the file."""
from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from genlab.data.loaders import load_array, load_table
from genlab.errors import GenlabError
from genlab.models.pgm import BayesianNetwork, read_bif, read_csv, read_uai
from genlab.models.pgm.bif import to_bif


def _refused(fn, path, *args, **kwargs) -> str:
    with pytest.raises(GenlabError) as e:
        fn(path, *args, **kwargs)
    msg = str(e.value)
    assert path.name in msg and "\n" not in msg, msg
    return msg


def _one_variable() -> BayesianNetwork:
    return BayesianNetwork.from_cpds({"v0": ["s0", "s1"]}, {}, {"v0": [0.25, 0.75]})


# ----------------------------------------------------------------------------- .npy
def test_npy_header_with_a_nul_byte(tmp_path):
    """test_arrays_never_unpickle_and_name_the_file(kind='flip', pos=60, byte=0): numpy's
    header parser raised SyntaxError / tokenize.TokenError."""
    buf = io.BytesIO()
    np.save(buf, np.array([[0.0]]))
    raw = bytearray(buf.getvalue())
    raw[60] = 0
    p = tmp_path / "arr.npy"
    p.write_bytes(bytes(raw))
    _refused(load_array, p)


def test_npy_table_whose_squares_overflow(tmp_path):
    """test_arrays_round_trip(a=[[0.0], [0.0], [1.6421143998800675e+154]]): x**2 overflowed
    in the standard deviation, so std was inf and the table came out wrong."""
    a = np.array([[0.0], [0.0], [1.6421143998800675e154]])
    p = tmp_path / "ok.npy"
    np.save(p, a)
    ds = load_array(p)
    std, mean = np.array(ds.meta["std"]), np.array(ds.meta["mean"])
    assert np.isfinite(std).all()
    assert np.allclose(ds.x.double().numpy() * std + mean, a, rtol=0, atol=1e-6 * std[0])


# ----------------------------------------------------------------------------- CSV
def test_csv_values_at_the_float64_limit(tmp_path):
    """test_load_table_round_trip explicit examples: a DataError blamed "NaN or infinite
    values" that genlab's own standardisation had made."""
    for rows in ([[1.7976931348623157e308], [-1.7976931348623157e308], [1e308]],
                 [[1e308, 1.0], [1.5e308, 2.0]]):
        p = tmp_path / "table.csv"
        p.write_text(",".join("ab"[: len(rows[0])]) + "\n"
                     + "\n".join(",".join(map(repr, r)) for r in rows) + "\n")
        ds = load_table(p)
        assert np.isfinite(ds.meta["mean"]).all() and np.isfinite(ds.meta["std"]).all()


def test_csv_field_larger_than_the_csv_module_allows(tmp_path):
    """test_load_table_random_bytes(data=b'a\\n' + b'x' * 140000): a raw _csv.Error."""
    p = tmp_path / "fuzz.csv"
    p.write_bytes(b"a\n" + b"x" * 140000 + b"\n")
    _refused(load_table, p)


def test_pgm_bins_with_equal_4_digit_labels(tmp_path):
    """test_pgm_read_csv_round_trip: 1.0, 1.00001, ... cut into 5 bins gave the states
    '[1, 1)' three times, which no model can tell apart."""
    p = tmp_path / "cats.csv"
    p.write_text("a\n" + "\n".join(repr(1 + k * 1e-5) for k in range(12)) + "\n")
    t = read_csv(p, bins=5)
    assert len(set(t.states[0])) == len(t.states[0])


def test_bif_network_saved_as_csv(tmp_path):
    """test_network_files_are_not_data(fmt='bif', suffix='.csv'): load_table blamed a text
    column 'network genlab {', and read_csv trained a network on the BIF's lines."""
    p = tmp_path / "net.csv"
    p.write_text(to_bif(_one_variable()))
    for fn in (load_table, read_csv):
        assert "Bayesian network file (BIF)" in _refused(fn, p)


# ----------------------------------------------------------------------------- .bif.gz
@pytest.mark.parametrize("cut", [0.5, 0.9375])
def test_truncated_bif_gz(tmp_path, cut):
    """test_bif_gz_truncated_or_junk(cut=0.5 / 0.9375): a raw EOFError."""
    full = gzip.compress(to_bif(_one_variable()).encode())
    p = tmp_path / "net.bif.gz"
    p.write_bytes(full[: int(cut * len(full))])
    _refused(read_bif, p)


def test_bif_gz_of_junk_bytes(tmp_path):
    """test_bif_gz_truncated_or_junk(raw=b'\\x00'): a raw gzip.BadGzipFile."""
    p = tmp_path / "junk.bif.gz"
    p.write_bytes(b"\x00")
    _refused(read_bif, p)


def test_empty_bif_gz(tmp_path):
    """test_bif_gz_truncated_or_junk(cut=0.0): an empty file read as a network with no
    variables, silently."""
    p = tmp_path / "net.bif.gz"
    p.write_bytes(b"")
    assert "no variables" in _refused(read_bif, p)


# ----------------------------------------------------------------------------- UAI
# test_uai_mutations_and_junk found five failures on mutated write_uai output; these are
# the smallest files that hit each of them.
@pytest.mark.parametrize("text, old", [
    ("BAYES\n1\n2\n1\n1 3\n\n2\n0.5 0.5\n", "IndexError in names[sc[-1]]"),
    ("BAYES\n2\n2 2\n2\n1 0\n2 7 1\n\n2\n0.5 0.5\n\n4\n0.5 0.5 0.5 0.5\n", "IndexError in names[j]"),
    ("BAYES\n1\n2\n1\n1 0\n\n1\n1.0\n", "ValueError: cannot reshape array"),
    ("BAYES\n2\n2 2\n0\n", "ValueError: no table for variable(s), without the file"),
    ("BAYES\n1\n2\n1\n1 0\n\n2\n0.5 0\n", "ValueError: row 0 sums to 0.5, without the file"),
], ids=["child-index", "parent-index", "reshape", "no-tables", "sum"])
def test_mutated_uai(tmp_path, text, old):
    p = tmp_path / "case.uai"
    p.write_text(text)
    _refused(read_uai, p)
