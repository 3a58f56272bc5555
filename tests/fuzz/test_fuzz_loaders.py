"""Property-based fuzzing of every data loader and parser (issue 13: nothing silently wrong).

For any input bytes the only outcomes allowed are a successful load or a ``GenlabError``
whose message names the file; never another exception type, never a hang, never a load
whose rows differ from what the file holds. Inputs are random bytes, random text, and
valid files that are mutated or truncated; structured inputs are checked round trip.

Every run is deterministic (``derandomize=True``, no example database). Examples that
once broke a loader are pinned with ``@example`` here and in ``test_fuzz_corpus.py``.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import math
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from genlab.data.datasets import load_splits
from genlab.data.loaders import load_array, load_image_folder, load_table
from genlab.data.text import text_file_splits
from genlab.errors import GenlabError
from genlab.models.pgm import BayesianNetwork, read_bif, read_csv, read_uai, write_uai
from genlab.models.pgm.bif import parse_bif, to_bif

HANG_SECONDS = 20


def fuzz(n: int):
    """Deterministic hypothesis settings: ``n`` examples, no deadline, no database."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    """Fail (TimeoutError, not a GenlabError) if the body runs longer than ``seconds``."""
    def boom(*_):
        raise TimeoutError(f"a loader ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def attempt(fn, path, *args, **kwargs):
    """``fn(path, *args, **kwargs)``, or None if it raised a GenlabError naming ``path``'s file.
    Any other exception (or a message without the file name) fails the test."""
    name = Path(path).name
    with no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(path, *args, **kwargs)
        except GenlabError as e:
            assert name in str(e), f"{type(e).__name__} does not name {name}: {e}"
            assert "\n" not in str(e).strip(), f"message is not one line: {e!r}"
            return None


@contextlib.contextmanager
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def write(d: Path, name: str, data: bytes | str) -> Path:
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    p.write_bytes(data)
    return p


def csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def assert_standardised(ds, x: np.ndarray) -> None:
    """``ds`` holds ``x`` standardised: ``z * std + mean == x`` up to float32 rounding of
    ``z``. Compared in halved units, where nothing overflows even at 1.8e308."""
    mean, std = np.array(ds.meta["mean"]), np.array(ds.meta["std"])
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    z = ds.x.double().numpy()
    half = z * (std / 2.0) + mean / 2.0
    tol = 1e-6 * (std / 2.0) * math.sqrt(len(x)) + 1e-12 * np.abs(mean / 2.0) + 1e-300
    assert (np.abs(half - x / 2.0) <= tol).all(), (x, 2 * half)


# ----------------------------------------------------------------------------- strategies
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False)
extreme = st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 1e308, -1e308,
                           5e-324, -0.0, 0.0, 1e-300, 2.0 ** 1023])
numbers = st.one_of(finite, extreme, st.integers(-10 ** 6, 10 ** 6).map(float))
junk = st.one_of(st.binary(max_size=600),
                 st.text(max_size=300).map(lambda s: s.encode("utf-8")),
                 st.sampled_from([b"", b"\x1f\x8b\x08\x00", b"\x93NUMPY", b"PK\x03\x04",
                                  b"\x89PNG\r\n\x1a\n", b"BAYES\n", b"network x {", b"\xff\xfe"]))


@st.composite
def tables(draw):
    d = draw(st.integers(1, 4))
    header = draw(st.lists(names, min_size=d, max_size=d, unique=True))
    n = draw(st.integers(1, 12))
    x = draw(st.lists(st.lists(numbers, min_size=d, max_size=d), min_size=n, max_size=n))
    return header, np.array(x, dtype=np.float64)


@st.composite
def networks(draw):
    """A random small Bayesian network: a DAG over 1-4 variables, CPTs from integers."""
    n = draw(st.integers(1, 4))
    var = [f"v{i}" for i in range(n)]
    states = {v: [f"s{k}" for k in range(draw(st.integers(1, 3)))] for v in var}
    parents = {v: [p for p in var[:i] if draw(st.booleans())] for i, v in enumerate(var)}
    cpds = {}
    for v in var:
        shape = [len(states[p]) for p in parents[v]] + [len(states[v])]
        w = np.array(draw(st.lists(st.integers(0, 9), min_size=math.prod(shape),
                                   max_size=math.prod(shape))), dtype=float).reshape(shape) + 0.5
        cpds[v] = w / w.sum(-1, keepdims=True)
    return BayesianNetwork.from_cpds(states, parents, cpds)


def same_network(a: BayesianNetwork, b: BayesianNetwork) -> bool:
    return (a.variables_ == b.variables_ and a.states_ == b.states_ and a.parents_ == b.parents_
            and all(np.allclose(x, y, atol=1e-12) for x, y in zip(a.cpds_, b.cpds_)))


def mutate_tokens(draw, text: str) -> str:
    """Delete, duplicate or replace a few whitespace-separated tokens of ``text``."""
    toks = text.split(" ")
    replacement = st.sampled_from(["", "-1", "0", "2", "1e999", "nan", "x", "{", "}", ";", ",",
                                   "(", ")", "|", "99999", "0.5", '"', "/*", "BAYES", "MARKOV",
                                   "\n", "variable", "probability", "table", "default", "²", "\x00",
                                   "type", "discrete", "[", "]", "network", "property"])
    for _ in range(draw(st.integers(1, 4))):
        if not toks:
            break
        i = draw(st.integers(0, len(toks) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "replace"]))
        if op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks.insert(i, toks[i])
        else:
            toks[i] = draw(replacement)
    return " ".join(toks)


# ----------------------------------------------------------------------------- CSV tables
@fuzz(250)
@given(data=junk, suffix=st.sampled_from([".csv", ".tsv"]))
@example(data=b"a,b\n1,2\n\x00", suffix=".csv")
@example(data=b"a\n" + b"x" * 140000 + b"\n", suffix=".csv")
def test_load_table_random_bytes(data, suffix):
    with folder() as d:
        p = write(d, "fuzz" + suffix, data)
        attempt(load_table, p)
        attempt(load_table, p, clean="median", drop_text=True)
        if suffix == ".csv":  # the generic loader: molecule sniffing, then the table loader
            attempt(load_splits, p)


@fuzz(150)
@given(table=tables(), label=st.booleans(), delimiter=st.sampled_from([",", ";", "\t"]))
@example(table=(["a"], np.array([[1.7976931348623157e308], [-1.7976931348623157e308],
                                 [1e308]])), label=False, delimiter=",")
@example(table=(["a", "b"], np.array([[1e308, 1.0], [1.5e308, 2.0]])), label=False,
         delimiter=",")
def test_load_table_round_trip(table, label, delimiter):
    header, x = table
    y = np.arange(len(x)) % 3
    rows = [[repr(v) for v in r] + ([str(c)] if label else []) for r, c in zip(x.tolist(), y)]
    head = header + (["target"] if label and "target" not in header else [])
    if len(head) != len(rows[0]):
        return
    with folder() as d:
        p = write(d, "table.csv", csv_text(head, rows).replace(",", delimiter)
                  if delimiter != "," else csv_text(head, rows))
        ds = attempt(load_table, p, label="target" if label else None)
    assert ds is not None, "a finite numeric table must load"
    assert ds.columns == header and tuple(ds.x.shape) == x.shape
    mean, std = np.array(ds.meta["mean"]), np.array(ds.meta["std"])
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    assert_standardised(ds, x)
    if label:
        assert ds.y.tolist() == y.tolist()


# ----------------------------------------------------------------------------- PGM CSV
labels = st.sampled_from(["a", "b", "yes", "no", "1", "2", "x y", "Élan", "3.5", "-0"])


@st.composite
def discrete_tables(draw):
    d = draw(st.integers(1, 3))
    header = draw(st.lists(names, min_size=d, max_size=d, unique=True))
    n = draw(st.integers(1, 15))
    cols = []
    for _ in range(d):
        if draw(st.booleans()):
            cols.append(draw(st.lists(labels, min_size=n, max_size=n)))
        else:
            cols.append([repr(v) for v in draw(st.lists(numbers, min_size=n, max_size=n))])
    return header, [list(r) for r in zip(*cols)]


@fuzz(200)
@given(data=junk)
@example(data=b"\n\na,b\n1,2\n")
@example(data=b"a,a\n1,2\n")
def test_pgm_read_csv_random_bytes(data):
    with folder() as d:
        p = write(d, "fuzz.csv", data)
        attempt(read_csv, p, missing="keep")


@fuzz(150)
@given(table=discrete_tables(), bins=st.integers(2, 6))
@example(table=(["a"], [[repr(v)] for v in [1.0, 1.00001, 1.00002, 1.00003, 1.00004, 1.00005,
                                             1.00006, 1.00007, 1.00008, 1.00009, 1.0001, 1.00011]]),
         bins=5)
@example(table=(["a"], [[repr(v)] for v in [1.7e308, -1.7e308, 1e308, -1e308, 0.0, 1.0, 2.0,
                                             3.0, 4.0, 5.0, 6.0, 7.0]]), bins=3)
def test_pgm_read_csv_round_trip(table, bins):
    header, rows = table
    with folder() as d:
        p = write(d, "cats.csv", csv_text(header, rows))
        t = attempt(read_csv, p, bins=bins, max_categories=10)
    assert t is not None, "a table of labels and finite numbers must load"
    assert t.names == header and t.codes.shape == (len(rows), len(header))
    for j, col in enumerate(header):
        assert len(set(t.states[j])) == len(t.states[j]), f"duplicate state labels {t.states[j]}"
        values = [r[j].strip() for r in rows]
        edges = t.meta["bin_edges"].get(col)
        if edges is None:
            assert [t.states[j][c] for c in t.codes[:, j]] == values
        else:
            want = np.searchsorted(np.array(edges), [float(v) for v in values], side="right")
            assert t.codes[:, j].tolist() == want.tolist()


# ----------------------------------------------------------------------------- image folders
@st.composite
def image_folders(draw):
    k = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["L", "RGB"]))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    c = 1 if mode == "L" else 3
    imgs = [np.array(draw(st.lists(st.integers(0, 255), min_size=h * w * c, max_size=h * w * c)),
                     dtype=np.uint8).reshape((h, w) if c == 1 else (h, w, 3)) for _ in range(k)]
    bad = draw(st.lists(st.tuples(st.sampled_from(["random", "truncated"]), st.binary(max_size=200),
                                  st.floats(0, 1)), max_size=3))
    return mode, imgs, bad


def png_bytes(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@fuzz(100)
@given(spec=image_folders(), on_error=st.sampled_from(["raise", "skip"]))
def test_image_folder_with_bad_files(spec, on_error):
    mode, imgs, bad = spec
    with folder() as d:
        expected = {}
        for i, a in enumerate(imgs):
            write(d, f"good{i}.png", png_bytes(a))
            expected[f"good{i}.png"] = a
        for i, (how, raw, cut) in enumerate(bad):
            if how == "random":
                write(d, f"bad{i}.png", raw)
            else:  # a valid image cut short; if it still decodes it must decode right
                full = png_bytes(imgs[i % len(imgs)])
                write(d, f"bad{i}.png", full[: int(cut * len(full))])
                expected[f"bad{i}.png"] = imgs[i % len(imgs)]
        ds = attempt(load_image_folder, d, on_error=on_error)
        if ds is None:
            return
        skipped = {Path(s).name for s in ds.meta["skipped"]}
        kept = sorted(p.name for p in d.iterdir() if p.name not in skipped)
        assert len(ds) == len(kept)
        for row, name in zip(ds.x.numpy(), kept):
            if name not in expected:
                continue  # random bytes Pillow reads as some image: nothing to compare with
            a = expected[name].astype(np.float32) / 255.0
            want = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
            if row.shape[0] == 3 and want.shape[0] == 1:
                want = np.repeat(want, 3, 0)
            assert row.shape == want.shape and np.allclose(row, want, atol=1e-6), name


# ----------------------------------------------------------------------------- .npy / .npz
class Canary:
    """Unpickling this records it: the loaders must never unpickle."""

    def __reduce__(self):
        return (_sing, ())


SUNG: list[int] = []


def _sing():
    SUNG.append(1)
    return "sung"


def npy_bytes(a, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


arrays = st.one_of(
    st.integers(1, 5).flatmap(lambda n: st.integers(1, 4).flatmap(lambda dd: st.lists(
        finite, min_size=n * dd, max_size=n * dd).map(lambda v: np.array(v).reshape(n, dd)))),
    st.integers(1, 4).flatmap(lambda n: st.lists(st.integers(0, 255), min_size=n * 9,
                                                 max_size=n * 9).map(
        lambda v: np.array(v, dtype=np.uint8).reshape(n, 3, 3))),
)


@fuzz(250)
@given(kind=st.sampled_from(["random", "truncate", "flip", "object", "npz-object", "npz-cut"]),
       a=arrays, raw=st.binary(max_size=300), cut=st.floats(0, 1), pos=st.integers(0, 127),
       byte=st.integers(0, 255), suffix=st.sampled_from([".npy", ".npz"]))
def test_arrays_never_unpickle_and_name_the_file(kind, a, raw, cut, pos, byte, suffix):
    obj = np.array([Canary(), 1], dtype=object)
    full = None
    if kind == "random":
        data = raw
    elif kind == "truncate":
        full = npy_bytes(a)
        data = full[: int(cut * len(full))]
    elif kind == "flip":
        data = bytearray(npy_bytes(a))
        data[pos % len(data)] = byte
        data = bytes(data)
    elif kind == "object":
        data = npy_bytes(obj, allow_pickle=True)
    elif kind == "npz-object":
        buf = io.BytesIO()
        np.savez(buf, x=obj)
        data = buf.getvalue()
    else:
        full = npz_bytes(x=a, y=np.arange(len(a)))
        data = full[: int(cut * len(full))]
    with folder() as d:
        p = write(d, "arr" + suffix, data)
        ds = attempt(load_array, p)
        attempt(load_splits, p)
    assert not SUNG, "a loader unpickled a Python object"
    if kind in ("object", "npz-object"):
        assert ds is None
    if ds is not None and kind in ("truncate", "npz-cut"):
        assert data == full, "a truncated array file loaded"


@fuzz(60)
@given(a=arrays)
def test_arrays_round_trip(a):
    with folder() as d:
        p = write(d, "ok.npy", npy_bytes(a))
        ds = attempt(load_array, p)
    assert ds is not None
    if a.ndim == 3:
        assert np.array_equal((ds.x[:, 0].numpy() * 255).round().astype(np.uint8), a)
    else:
        assert_standardised(ds, a)


# ----------------------------------------------------------------------------- text corpora
@fuzz(100)
@given(data=junk, layout=st.sampled_from(["text", "lines"]))
@example(data=b"\x00\x00abc", layout="text")
def test_text_file_random_bytes(data, layout):
    with folder() as d:
        p = write(d, "corpus.txt", data)
        attempt(text_file_splits, p, block_size=4, layout=layout)
        attempt(load_splits, p, block_size=4)


@fuzz(60)
@given(text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   min_size=100, max_size=600),
       block=st.integers(1, 4))
def test_text_file_windows_are_the_text(text, block):
    from genlab.data.tokenizers import from_config

    with folder() as d:
        p = write(d, "prose.txt", text)
        splits = attempt(text_file_splits, p, block_size=block)
    want = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if splits is None:
        return
    assert sum(s.meta["chars"] for s in splits.values()) == len(want)
    start = 0
    for key in ("train", "val", "test"):
        s = splits[key]
        cfg = s.meta["tokenizer"]
        tok = from_config(cfg["tokenizer"], cfg["vocab"], cfg["merges"])
        part = want[start:start + s.meta["chars"]]
        start += s.meta["chars"]
        for k, row in enumerate(s.x.tolist()):
            assert tok.decode(row) == part[k * block: k * block + block + 1]


@fuzz(60)
@given(lines=st.lists(st.text(st.characters(blacklist_categories=("Cs",),
                                            blacklist_characters="\r\n\x00"), max_size=12),
                      min_size=5, max_size=30, unique=True))
def test_text_lines_are_the_items(lines):
    with folder() as d:
        p = write(d, "names.txt", "\n".join(lines))
        splits = attempt(text_file_splits, p, layout="lines")
    if splits is None:
        return
    got = [i for s in splits.values() for i in s.meta["items"]]
    text = "\n".join(lines).removeprefix("\ufeff")
    want = list(dict.fromkeys(l.strip() for l in text.splitlines() if l.strip()))
    assert sorted(got) == sorted(want) and len(got) == len(set(got))


# ----------------------------------------------------------------------------- SMILES files
VALID = ["CCO", "c1ccccc1", "CC(=O)O", "O=C=O", "CCN(CC)CC", "C1CC1", "CC(C)O", "c1ccncc1",
         "CC(=O)[O-].[Na+]", "OCC(O)CO", "CCCC", "CC=O", "C#N", "CCl", "c1ccc2ccccc2c1", "OC(=O)CN",
         "C1CCOC1", "CS(C)=O", "CC(C)(C)O", "[NH4+].[Cl-]", "OCCO", "CCOC(C)=O"]


@st.composite
def smiles_lines(draw):
    """Distinct valid SMILES (enough for an 80/10/10 split) shuffled with junk lines."""
    good = draw(st.lists(st.sampled_from(VALID), min_size=8, max_size=len(VALID), unique=True))
    junk = draw(st.lists(st.text(st.characters(blacklist_categories=("Cs",),
                                               blacklist_characters="\r\n"), max_size=15),
                         max_size=8))
    return draw(st.permutations(good + junk))


@fuzz(60)
@given(lines=smiles_lines(), suffix=st.sampled_from([".smi", ".csv"]))
def test_smiles_file_keeps_every_molecule(lines, suffix):
    pytest.importorskip("rdkit")
    from genlab.chem.mol import clean
    from genlab.data.molecule_files import smiles_file_splits

    lines = [l for l in lines if "smiles" not in l.lower()]
    with folder() as d:
        if suffix == ".smi":
            text = "\n".join(lines)
            p = write(d, "mols.smi", text)
            text = text.removeprefix("\ufeff")
            firsts = [(n, l.split()[0]) for n, l in enumerate(text.split("\n"), 1) if l.split()]
        else:
            rows = [[l, str(i)] for i, l in enumerate(lines)]
            p = write(d, "mols.csv", csv_text(["smiles", "id"], rows))
            firsts = [(n + 2, l.strip()) for n, l in enumerate(lines)]
        splits = attempt(smiles_file_splits, p)
    if splits is None:
        return
    want = list(dict.fromkeys(c for c in (clean(s) for _, s in firsts) if c is not None))
    got = [m for s in splits.values() for m in s.meta["items"]]
    assert sorted(got) == sorted(want)
    report = splits["train"].meta
    assert report["invalid"] == sum(clean(s) is None for _, s in firsts)


@fuzz(60)
@given(data=junk, suffix=st.sampled_from([".smi", ".csv"]))
def test_smiles_file_random_bytes(data, suffix):
    pytest.importorskip("rdkit")
    from genlab.data.molecule_files import smiles_file_splits

    with folder() as d:
        p = write(d, "junk" + suffix, b"smiles\n" + data if suffix == ".csv" else data)
        attempt(smiles_file_splits, p)


# ----------------------------------------------------------------------------- BIF text
@fuzz(100)
@given(bn=networks())
def test_bif_round_trip(bn):
    text = to_bif(bn)
    assert same_network(parse_bif(text, where="net.bif"), bn)


@fuzz(250)
@given(bn=networks(), data=st.data())
def test_bif_mutations_and_junk(bn, data):
    text = to_bif(bn)
    cases = [mutate_tokens(data.draw, text),
             text[: data.draw(st.integers(0, len(text)))],
             data.draw(st.text(max_size=200))]
    with folder() as d:
        for i, t in enumerate(cases):
            attempt(lambda where: parse_bif(t, where=where), f"case{i}.bif")  # noqa: B023 — called at once
            p = write(d, f"file{i}.bif", t)
            attempt(read_bif, p)


@fuzz(100)
@given(bn=networks(), cut=st.floats(0, 1), raw=st.binary(max_size=200))
def test_bif_gz_truncated_or_junk(bn, cut, raw):
    full = gzip.compress(to_bif(bn).encode())
    with folder() as d:
        p = write(d, "net.bif.gz", full[: int(cut * len(full))])
        got = attempt(read_bif, p)
        if got is not None:
            assert same_network(got, bn)
        attempt(read_bif, write(d, "junk.bif.gz", raw))
        attempt(read_bif, write(d, "junk.bif", raw))


# ----------------------------------------------------------------------------- UAI text
@fuzz(100)
@given(bn=networks())
def test_uai_round_trip(bn):
    with folder() as d:
        p = d / "net.uai"
        write_uai(bn, p)
        back = attempt(read_uai, p, names=bn.variables_)
    assert back is not None
    assert back.parents_ == bn.parents_
    assert all(np.allclose(a, b, atol=1e-12) for a, b in zip(back.cpds_, bn.cpds_))


@fuzz(250)
@given(bn=networks(), data=st.data())
def test_uai_mutations_and_junk(bn, data):
    with folder() as d:
        good = d / "good.uai"
        write_uai(bn, good)
        text = good.read_text()
        cases = [mutate_tokens(data.draw, text.replace("\n", " \n ")),
                 text[: data.draw(st.integers(0, len(text)))],
                 data.draw(st.text(max_size=200)),
                 "BAYES " + " ".join(map(str, data.draw(st.lists(st.integers(-2, 5), max_size=30))))]
        for i, t in enumerate(cases):
            p = write(d, f"case{i}.uai", t)
            got = attempt(read_uai, p)
            if got is not None and t == text:
                assert [len(s) for s in got.states_] == [len(s) for s in bn.states_]


# ----------------------------------------------------------------------------- routing
@fuzz(30)
@given(bn=networks(), fmt=st.sampled_from(["bif", "uai"]), suffix=st.sampled_from(
    [".csv", ".txt", ".dat", ".npy", ".smi", ".bif", ".uai"]))
def test_network_files_are_not_data(bn, fmt, suffix):
    """A BIF/UAI network given where data is expected is a DataError saying so, whatever
    its name; never a one-column table trained in silence."""
    with folder() as d:
        p = d / f"net{suffix}"
        if fmt == "bif":
            p.write_text(to_bif(bn))
        else:
            write_uai(bn, p)
        for fn in (load_splits, read_csv, load_table):
            with no_hang(), pytest.raises(GenlabError) as err:
                fn(p)
            msg = str(err.value)
            assert p.name in msg and "Bayesian network file" in msg, msg
