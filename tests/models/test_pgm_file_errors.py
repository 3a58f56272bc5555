"""Network files are not data, and bad network files say which file and line (issue 13,
points 13 and 14): every error is a GenlabError naming the file, never a raw EOFError,
UnicodeDecodeError, reshape ValueError or IndexError from deep inside."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from genlab.errors import DataError, GenlabError, ModelFormatError
from genlab.models.pgm import BayesianNetwork, read_bif, read_csv, read_uai, write_bif, write_uai
from genlab.models.pgm.bif import BIFSyntaxError, parse_bif, to_bif

TINY_UAI = "BAYES\n2\n2 2\n2\n1 0\n2 0 1\n\n2\n0.3 0.7\n\n4\n0.9 0.1 0.2 0.8\n"
TINY_BIF = """network tiny {
}
variable a {
  type discrete [ 2 ] { yes, no };
}
variable b {
  type discrete [ 2 ] { on, off };
}
probability ( a ) {
  table 0.3, 0.7;
}
probability ( b | a ) {
  (yes) 0.9, 0.1;
  (no) 0.2, 0.8;
}
"""


@pytest.fixture(scope="module")
def asia():
    return read_bif("asia")


def _err(fn, *args, cls=GenlabError, **kwargs) -> str:
    with pytest.raises(cls) as e:
        fn(*args, **kwargs)
    return str(e.value)


# ----------------------------------------------------------------------------- point 13: routing
def test_bif_syntax_error_is_a_genlab_model_format_error():
    assert issubclass(BIFSyntaxError, ModelFormatError) and issubclass(BIFSyntaxError, ValueError)
    assert issubclass(BIFSyntaxError, GenlabError)


def test_training_on_a_uai_file_is_refused_not_read_as_a_one_column_csv(asia, tmp_path):
    p = tmp_path / "model.uai"
    write_uai(asia, p)
    msg = _err(BayesianNetwork.load_splits, p, cls=DataError)
    assert "model.uai" in msg and "Bayesian network file (UAI)" in msg and "read_uai()" in msg
    with pytest.raises(DataError, match="Bayesian network file"):
        BayesianNetwork().fit(str(p))
    with pytest.raises(DataError, match="Bayesian network file"):
        read_csv(p)


def test_cli_train_bayesnet_on_a_network_file_fails_with_a_clear_message(asia, tmp_path, capsys):
    from genlab.cli import main

    p = tmp_path / "model.uai"
    write_uai(asia, p)
    assert main(["train", "bayesnet", "--data", str(p), "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "model.uai is a Bayesian network file (UAI)" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["net.bif", "net.bif.gz"])
def test_bif_files_are_not_data(asia, tmp_path, name):
    p = write_bif(asia, tmp_path / name)
    msg = _err(read_csv, p, cls=DataError)
    assert name in msg and "Bayesian network file (BIF)" in msg and "read_bif()" in msg


@pytest.mark.parametrize("fmt", ["bif", "bif.gz", "uai"])
def test_network_content_is_sniffed_whatever_the_name(asia, tmp_path, fmt):
    p = tmp_path / "observations.csv"
    if fmt == "uai":
        write_uai(asia, tmp_path / "x.uai")
        p.write_bytes((tmp_path / "x.uai").read_bytes())
    elif fmt == "bif":
        p.write_text(to_bif(asia))
    else:
        p.write_bytes(gzip.compress(to_bif(asia).encode()))
    msg = _err(BayesianNetwork.load_splits, p, cls=DataError)
    assert "observations.csv is a Bayesian network file" in msg
    assert ("UAI" if fmt == "uai" else "BIF") in msg


def test_a_gzip_or_binary_csv_is_named_as_such(tmp_path):
    p = tmp_path / "table.csv"
    p.write_bytes(gzip.compress(b"a,b\nx,y\n"))
    msg = _err(read_csv, p, cls=DataError)
    assert "table.csv" in msg and "gzip-compressed" in msg


def test_csv_with_duplicate_column_names_is_refused_not_merged(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("a,a\n1,2\n3,4\n")
    msg = _err(read_csv, p, cls=DataError)  # used to load one column 'a' = [2, 4]
    assert "dup.csv" in msg and "unique" in msg


def test_leading_blank_lines_do_not_shift_the_header(tmp_path):
    p = tmp_path / "blank.csv"
    p.write_text("\n\na,b\nx,1\ny,2\n")
    t = read_csv(p)
    assert t.names == ["a", "b"] and t.labels() == [["x", "1"], ["y", "2"]]


def test_quantile_bins_have_distinct_labels_and_survive_huge_values(tmp_path):
    p = tmp_path / "close.csv"
    vals = [1 + k * 1e-5 for k in range(12)]
    p.write_text("a\n" + "\n".join(repr(v) for v in vals) + "\n")
    t = read_csv(p, bins=5)
    assert len(set(t.states[0])) == len(t.states[0]) == 5
    p.write_text("a\n" + "\n".join(repr(v) for v in [1.7e308, -1.7e308, *range(10)]) + "\n")
    t = read_csv(p, bins=3)
    edges = t.meta["bin_edges"]["a"]
    assert np.isfinite(edges).all()
    assert t.codes[:2, 0].tolist() == [len(edges), 0]


def test_infinite_value_in_a_binned_column_is_an_error(tmp_path):
    p = tmp_path / "inf.csv"
    p.write_text("a\n" + "\n".join(str(k) for k in range(12)) + "\ninf\n")
    msg = _err(read_csv, p, cls=DataError)
    assert "inf.csv" in msg and "infinite" in msg and "row 13" in msg


# ----------------------------------------------------------------------------- point 14: BIF
def test_truncated_bif_gz_names_the_file(asia, tmp_path):
    full = gzip.compress(to_bif(asia).encode())
    p = tmp_path / "cut.bif.gz"
    p.write_bytes(full[: len(full) // 2])
    msg = _err(read_bif, p, cls=BIFSyntaxError)  # was EOFError
    assert "cut.bif.gz" in msg and "truncated or corrupt" in msg


def test_corrupt_gzip_names_the_file(asia, tmp_path):
    full = bytearray(gzip.compress(to_bif(asia).encode()))
    full[20:30] = b"\x00" * 10
    p = tmp_path / "bad.bif.gz"
    p.write_bytes(bytes(full))
    assert "bad.bif.gz" in _err(read_bif, p, cls=BIFSyntaxError)  # was zlib.error / BadGzipFile


def test_binary_bif_gz_that_is_not_gzip_names_the_file(tmp_path):
    p = tmp_path / "junk.bif.gz"
    p.write_bytes(b"PK\x03\x04\xff\xfe\x00binary")
    msg = _err(read_bif, p, cls=BIFSyntaxError)  # was gzip.BadGzipFile
    assert "junk.bif.gz" in msg and "UTF-8" in msg


def test_plain_text_bif_named_gz_still_reads(tmp_path):
    p = tmp_path / "plain.bif.gz"
    p.write_text(TINY_BIF)
    assert read_bif(p).variables_ == ["a", "b"]


def test_non_utf8_bif_names_file_and_line(tmp_path):
    p = tmp_path / "latin1.bif"
    p.write_bytes(TINY_BIF.replace("yes", "s\xed").encode("latin-1"))
    msg = _err(read_bif, p, cls=BIFSyntaxError)  # was UnicodeDecodeError
    assert "latin1.bif, line 4" in msg and "0xed" in msg


@pytest.mark.parametrize("bad, what", [
    ("table 0.3, 0.7;", "table -0.3, 1.3;"),
    ("table 0.3, 0.7;", "table nan, 0.7;"),
    ("table 0.3, 0.7;", "table inf, 0.7;"),
    ("table 0.3, 0.7;", "table 1e999, 0.7;"),
])
def test_negative_or_non_finite_bif_probabilities_name_line_and_variable(tmp_path, bad, what):
    p = tmp_path / "neg.bif"
    p.write_text(TINY_BIF.replace(bad, what))
    msg = _err(read_bif, p, cls=BIFSyntaxError)
    assert "neg.bif, line 10" in msg and "'a'" in msg and "finite number >= 0" in msg


def test_bif_state_count_errors(tmp_path):
    for text, want in [
        (TINY_BIF.replace("[ 2 ] { yes, no }", "[ 0 ] { }"), "no states"),
        (TINY_BIF.replace("[ 2 ] { yes, no }", "[ ² ] { yes, no }"), "declares [²] states"),
        (TINY_BIF.replace("{ yes, no }", "{ yes, yes }"), "state 'yes' twice"),
    ]:
        msg = _err(parse_bif, text, where="states.bif", cls=BIFSyntaxError)  # '²' was int() ValueError
        assert msg.startswith("states.bif, line 4") and want in msg, msg


def test_bif_rows_given_twice_or_not_summing_to_one(tmp_path):
    twice = TINY_BIF.replace("(no) 0.2, 0.8;", "(yes) 0.2, 0.8;")
    msg = _err(parse_bif, twice, where="t.bif", cls=BIFSyntaxError)  # was silently overwritten
    assert "t.bif, line 14" in msg and "given twice" in msg
    bad_sum = TINY_BIF.replace("(no) 0.2, 0.8;", "(no) 0.2, 0.7;")
    msg = _err(parse_bif, bad_sum, where="t.bif", cls=BIFSyntaxError)
    assert "t.bif, line 12" in msg and "'b' given (no) sum to 0.9" in msg


def test_bif_unterminated_string_and_comment(tmp_path):
    msg = _err(parse_bif, TINY_BIF.replace("network tiny", 'network "tiny'), where="q.bif",
               cls=BIFSyntaxError)
    assert msg.startswith("q.bif, line 1") and "closing quote" in msg
    msg = _err(parse_bif, TINY_BIF + "/* never closed", where="c.bif", cls=BIFSyntaxError)
    assert "c.bif, line 16" in msg and "never closed" in msg


def test_bif_with_a_cycle_or_self_parent_names_the_file():
    text = TINY_BIF.replace("probability ( b | a )", "probability ( b | b )")
    msg = _err(parse_bif, text, where="self.bif", cls=BIFSyntaxError)
    assert msg.startswith("self.bif, line 12") and "parents of 'b'" in msg


def test_huge_bif_table_is_refused_before_allocating():
    head = "".join(f"variable p{i} {{ type discrete [ 4 ] {{ a, b, c, d }}; }}\n" for i in range(14))
    parents = ", ".join(f"p{i}" for i in range(14))
    text = head + f"variable c {{ type discrete [ 2 ] {{ x, y }}; }}\nprobability ( c | {parents} ) {{ default 0.5, 0.5; }}\n"
    msg = _err(parse_bif, text, where="big.bif", cls=BIFSyntaxError)
    assert "big.bif" in msg and "more than genlab reads" in msg


def test_missing_bif_file_is_still_file_not_found():
    with pytest.raises(FileNotFoundError, match="shipped"):
        read_bif("no-such-network")


# ----------------------------------------------------------------------------- point 14: UAI
def _uai(tmp_path, text, name="net.uai"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_tiny_uai_reads(tmp_path):
    bn = read_uai(_uai(tmp_path, TINY_UAI))
    assert bn.parents_ == [[], [0]] and np.allclose(bn.cpds_[1], [[0.9, 0.1], [0.2, 0.8]])


@pytest.mark.parametrize("text, want", [
    (TINY_UAI.replace("4\n0.9 0.1 0.2 0.8", "3\n0.9 0.1 0.2"),
     "line 11: table 1 ('x1') declares 3 entries, but its scope [0, 1] with cardinalities [2, 2] needs 4"),
    (TINY_UAI.replace("2 0 1\n", "2 0 5\n"), "line 6: a variable index in the scope of table 1 is 5, it must be in 0..1"),
    (TINY_UAI.replace("2 2\n2\n", "2 0\n2\n"), "line 3: the cardinality of variable 1 is 0, it must be >= 1"),
    (TINY_UAI.replace("0.3 0.7", "-0.3 1.3"), "line 9: table 0 ('x0'): probability '-0.3' is not a finite number >= 0"),
    (TINY_UAI.replace("0.3 0.7", "0.3 abc"), "line 9: table 0 ('x0'): 'abc' is not a number"),
    (TINY_UAI.replace("0.3 0.7", "0.3 0.6"), "table 0 ('x0'): row 0 sums to 0.9, not 1"),
    (TINY_UAI.replace("BAYES", "MARKOV"), "a UAI MARKOV network"),
    (TINY_UAI.replace("BAYES", "BAYESIAN"), "line 1: not a UAI network: the preamble is 'BAYESIAN'"),
    (TINY_UAI.replace("\n2\n1 0\n", "\n3\n1 0\n"), "line 4: a BAYES network has one table per variable: 2 variables but 3 tables"),
    (TINY_UAI.replace("1 0\n2 0 1", "1 1\n2 0 1"), "tables 0 and 1 both end in variable 1"),
    (TINY_UAI.replace("2 0 1", "2 1 1"), "the scope of table 1 repeats a variable"),
    (TINY_UAI + "0.5\n", "line 13: unexpected '0.5' after the last table"),
    (TINY_UAI[:40], "the file ends before"),
    ("", "the file is empty"),
    ("BAYES\n2.5\n", "line 2: expected the number of variables (a whole number), found '2.5'"),
], ids=["count", "scope-index", "cardinality-0", "negative", "non-numeric", "sum", "markov",
        "preamble", "table-count", "two-tables", "repeated-scope", "trailing", "truncated",
        "empty", "float-count"])
def test_bad_uai_files_name_file_line_and_variable(tmp_path, text, want):
    msg = _err(read_uai, _uai(tmp_path, text, "bad.uai"), cls=BIFSyntaxError)
    assert "bad.uai" in msg and want in msg, msg


def test_uai_cycle_and_names_mismatch(tmp_path):
    cyc = "BAYES\n2\n2 2\n2\n2 1 0\n2 0 1\n\n4\n0.5 0.5 0.5 0.5\n\n4\n0.5 0.5 0.5 0.5\n"
    msg = _err(read_uai, _uai(tmp_path, cyc, "cyc.uai"), cls=BIFSyntaxError)
    assert "cyc.uai: " in msg and "cycle" in msg
    msg = _err(read_uai, _uai(tmp_path, TINY_UAI, "n.uai"), names=["only"], cls=BIFSyntaxError)
    assert "n.uai" in msg and "2 distinct names" in msg


def test_non_utf8_and_truncated_gzip_uai(tmp_path):
    p = tmp_path / "bin.uai"
    p.write_bytes(b"BAYES\n1\n2\n1\n1 0\n2\n0.5 \xff0.5\n")
    assert "bin.uai, line 7" in _err(read_uai, p, cls=BIFSyntaxError)
    p = tmp_path / "cut.uai.gz"
    p.write_bytes(gzip.compress(TINY_UAI.encode())[:-12])
    assert "cut.uai.gz" in _err(read_uai, p, cls=BIFSyntaxError)
