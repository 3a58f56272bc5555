"""Read and write Bayesian networks as BIF (Interchange Format 0.15) and UAI files.

BIF (Cozman, 1998) is what the bnlearn repository ships its networks in::

    variable X { type discrete [ 2 ] { yes, no }; }
    probability ( X | A, B ) { (a1, b1) 0.9, 0.1; ...  }   # one row per parent states
    probability ( A ) { table 0.3, 0.7; }

A ``table`` entry under parents lists the child-major layout (all parent configurations
for the child's first state, then its second...), as pgmpy reads and writes it; a
``default`` entry fills rows that are not listed. The reader is a small tokenizer +
recursive-descent parser (no regex over the whole file, no pyparsing), so a 724-node
network loads in a fraction of a second and every syntax error names its line.

UAI (the UAI inference competition format, ``BAYES`` preamble) carries no state labels;
states read back as ``"0"``, ``"1"``, ...
"""
from __future__ import annotations

import gzip
import math
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelFormatError
from .bayesnet import BayesianNetwork

NETWORKS_DIR = Path(__file__).parent / "networks"
MAX_TABLE_ENTRIES = 2 ** 24  # one CPT larger than this (16.7M numbers) is refused, not allocated
_TOKEN = re.compile(r"//[^\n]*|/\*.*?\*/|/\*|\"[^\"]*\"|\"|[{}()\[\],;|]|[^\s{}()\[\],;|\"]+", re.S)
_INT = re.compile(r"[0-9]+")


class BIFSyntaxError(ModelFormatError):
    """A BIF or UAI file that does not parse or holds an invalid network; the message
    names the file and, where it can, the line and the variable. Also a ``ValueError``."""


def _read_text(source: str | Path, what: str = "BIF") -> tuple[str, str]:
    """The text of a BIF/UAI file, gunzipped when it is gzip-compressed (by content, so a
    ``.bif.gz`` that is plain text reads too); every failure names the file."""
    p = Path(source)
    where = str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} file at {where}") from None
    except OSError as e:
        raise ModelFormatError(f"cannot read {what} file {where}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise BIFSyntaxError(f"{where}: the gzip-compressed {what} file is truncated or "
                                 f"corrupt ({e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BIFSyntaxError(f"{where}, line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x} "
                             f"at offset {e.start}); is it really a {what} file?") from None
    return text.removeprefix("\ufeff"), where


def _tokens(text: str, where: str = "<string>") -> tuple[list[str], list[int]]:
    toks, lines = [], []
    line, last = 1, 0
    for m in _TOKEN.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        t = m.group()
        if t == '"':
            raise BIFSyntaxError(f"{where}, line {line}: a '\"' without its closing quote")
        if t == "/*":
            raise BIFSyntaxError(f"{where}, line {line}: a '/*' comment that is never closed")
        if t.startswith("//") or t.startswith("/*"):
            continue
        toks.append(t[1:-1] if t.startswith('"') else t)
        lines.append(line)
    return toks, lines


class _Parser:
    def __init__(self, text: str, where: str):
        self.toks, self.lines = _tokens(text, where)
        self.i = 0
        self.where = where

    def error(self, msg: str) -> BIFSyntaxError:
        line = self.lines[min(self.i, len(self.lines) - 1)] if self.lines else 1
        return BIFSyntaxError(f"{self.where}, line {line}: {msg}")

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> str:
        if self.i >= len(self.toks):
            raise self.error("unexpected end of file")
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, want: str) -> None:
        t = self.peek()
        if t != want:
            raise self.error(f"expected {want!r}, found {t!r}" if t is not None
                             else f"expected {want!r}, found the end of the file")
        self.i += 1

    def words_until(self, stops: str) -> list[str]:
        """Comma-separated items (each possibly several words) up to one of ``stops``."""
        items, cur = [], []
        while True:
            t = self.next()
            if t == ",":
                if not cur:
                    raise self.error("empty item in a list")
                items.append(" ".join(cur)); cur = []
            elif t in stops:
                if cur:
                    items.append(" ".join(cur))
                self.i -= 1
                return items
            elif t in "{}()[];|":
                raise self.error(f"unexpected {t!r} in a list")
            else:
                cur.append(t)

    def skip_statement(self) -> None:
        while self.next() != ";":
            pass

    def skip_block(self) -> None:
        self.expect("{")
        depth = 1
        while depth:
            t = self.next()
            depth += (t == "{") - (t == "}")

    def numbers(self, what: str) -> list[float]:
        """Comma-separated probabilities up to ``;``: each a finite number >= 0."""
        vals = []
        for item in self.words_until(";"):
            try:
                v = float(item)
            except ValueError:
                raise self.error(f"{what}: {item!r} is not a number") from None
            if not math.isfinite(v) or v < 0:
                raise self.error(f"{what}: probability {item!r} is not a finite number >= 0")
            vals.append(v)
        self.expect(";")
        return vals


def parse_bif(text: str, *, where: str = "<string>", atol: float = 1e-6) -> BayesianNetwork:
    """Parse BIF text into a validated ``BayesianNetwork``.

    Raises:
        BIFSyntaxError: the text does not parse or describes an invalid network (a
            table whose rows do not sum to one, a cycle...); the message starts with
            ``where`` and names the line and the variable where it can.
    """
    p = _Parser(text, where)
    states: dict[str, list[str]] = {}
    blocks: list[tuple[str, list[str], list[tuple[Any, list[float], int]], int]] = []
    while p.peek() is not None:
        kw = p.next()
        if kw == "network":
            while p.peek() not in ("{", None):
                p.next()
            p.skip_block()
        elif kw == "variable":
            name = " ".join(p.words_until("{"))
            if not name:
                raise p.error("a variable without a name")
            p.expect("{")
            while p.peek() != "}":
                t = p.next()
                if t == "type":
                    at = f"{where}, line {p.lines[p.i - 1]}"
                    if p.next() != "discrete":
                        raise p.error(f"variable {name!r}: only discrete variables are supported")
                    p.expect("[")
                    n = p.next()
                    p.expect("]")
                    p.expect("{")
                    st = p.words_until("}")
                    p.expect("}")
                    p.expect(";")
                    if not _INT.fullmatch(n) or int(n) != len(st):
                        raise BIFSyntaxError(f"{at}: variable {name!r} declares [{n}] states "
                                             f"but lists {len(st)}")
                    if not st:
                        raise BIFSyntaxError(f"{at}: variable {name!r} has no states")
                    if len(set(st)) != len(st):
                        dup = next(x for x in st if st.count(x) > 1)
                        raise BIFSyntaxError(f"{at}: variable {name!r} lists state {dup!r} twice")
                    if name in states:
                        raise BIFSyntaxError(f"{at}: variable {name!r} is declared twice")
                    states[name] = st
                elif t == "property":
                    p.skip_statement()
                else:
                    raise p.error(f"unexpected {t!r} in variable {name!r}")
            p.expect("}")
            if name not in states:
                raise p.error(f"variable {name!r} has no 'type discrete [...] {{...}};' line")
        elif kw == "probability":
            line = p.lines[p.i - 1]
            p.expect("(")
            head = p.words_until(")|")
            if p.peek() == "|":
                p.next()
                parents = p.words_until(")")
            else:
                parents = []
            p.expect(")")
            if len(head) != 1:
                raise p.error(f"probability block must name one child, got {head}")
            p.expect("{")
            entries = []
            what = f"probability of {head[0]!r}"
            while p.peek() != "}":
                t = p.next()
                if t in ("table", "default"):
                    entries.append((t, p.numbers(what), p.lines[p.i - 1]))
                elif t == "(":
                    key = p.words_until(")")
                    p.expect(")")
                    entries.append((tuple(key), p.numbers(what), p.lines[p.i - 1]))
                elif t == "property":
                    p.skip_statement()
                else:
                    raise p.error(f"unexpected {t!r} in the probability block of {head[0]!r}")
            p.expect("}")
            blocks.append((head[0], parents, entries, line))
        else:
            raise p.error(f"expected 'network', 'variable' or 'probability', found {kw!r}")

    parents_of: dict[str, list[str]] = {}
    cpds: dict[str, np.ndarray] = {}
    for child, parents, entries, line in blocks:
        at = f"{where}, line {line}"
        for v in [child, *parents]:
            if v not in states:
                raise BIFSyntaxError(f"{at}: probability of {child!r} uses undeclared variable {v!r}")
        if child in cpds:
            raise BIFSyntaxError(f"{at}: a second probability block for {child!r}")
        if child in parents or len(set(parents)) != len(parents):
            raise BIFSyntaxError(f"{at}: the parents of {child!r} must be distinct and not "
                                 f"{child!r} itself, got {parents}")
        r = len(states[child])
        pc = [len(states[q]) for q in parents]
        q = math.prod(pc)
        if q * r > MAX_TABLE_ENTRIES:
            raise BIFSyntaxError(f"{at}: the table of {child!r} would hold {q * r} numbers, more "
                                 f"than genlab reads ({MAX_TABLE_ENTRIES})")
        table = np.full((q, r), np.nan)
        filled = np.zeros(q, dtype=bool)
        default = None
        index = [{s: k for k, s in enumerate(states[v])} for v in parents]
        for key, vals, eline in entries:
            if key == "table":
                if len(vals) != q * r:
                    raise BIFSyntaxError(f"{where}, line {eline}: table of {child!r} has "
                                         f"{len(vals)} numbers, expected {q * r}")
                if filled.any():
                    raise BIFSyntaxError(f"{where}, line {eline}: a table entry for {child!r} "
                                         "after rows or another table")
                table = np.asarray(vals).reshape(r, q).T.copy()
                filled[:] = True
            elif key == "default":
                if len(vals) != r:
                    raise BIFSyntaxError(f"{where}, line {eline}: default row of {child!r} has "
                                         f"{len(vals)} numbers, expected {r}")
                if default is not None:
                    raise BIFSyntaxError(f"{where}, line {eline}: a second default row for {child!r}")
                default = vals
            else:
                if len(key) != len(parents):
                    raise BIFSyntaxError(f"{where}, line {eline}: row {key} of {child!r} names "
                                         f"{len(key)} parent states, expected {len(parents)}")
                if len(vals) != r:
                    raise BIFSyntaxError(f"{where}, line {eline}: row {key} of {child!r} has "
                                         f"{len(vals)} numbers, expected {r}")
                row = 0
                for k, s in enumerate(key):
                    if s not in index[k]:
                        raise BIFSyntaxError(f"{where}, line {eline}: {parents[k]!r} has no state "
                                             f"{s!r} (states: {states[parents[k]]})")
                    row = row * pc[k] + index[k][s]
                if filled[row]:
                    raise BIFSyntaxError(f"{where}, line {eline}: row {key} of {child!r} is given twice")
                table[row] = vals
                filled[row] = True
        if default is not None:
            table[~filled] = default
        elif not filled.all():
            raise BIFSyntaxError(f"{at}: the table of {child!r} leaves parent configurations "
                                 "without probabilities")
        sums = table.sum(1)
        bad = np.abs(sums - 1) > atol
        if bad.any():
            k = int(np.argmax(bad))
            config = ", ".join(states[v][i] for v, i in zip(parents, np.unravel_index(k, pc))) \
                if parents else ""
            raise BIFSyntaxError(f"{at}: the probabilities of {child!r}"
                                 f"{f' given ({config})' if parents else ''} sum to "
                                 f"{sums[k]:.10g}, not 1 (tolerance {atol:g})")
        cpds[child] = table.reshape(*pc, r)
        parents_of[child] = list(parents)
    if not states:
        raise BIFSyntaxError(f"{where}: no variables: not a BIF network")
    missing = [v for v in states if v not in cpds]
    if missing:
        raise BIFSyntaxError(f"{where}: no probability block for {missing[:5]}")
    try:
        return BayesianNetwork.from_cpds(states, parents_of, cpds, atol=atol)
    except ValueError as e:
        raise BIFSyntaxError(f"{where}: {e}") from None


def read_bif(source: str | Path, *, atol: float = 1e-6) -> BayesianNetwork:
    """Read a ``.bif`` or ``.bif.gz`` file, or a network shipped with genlab by name
    (``asia``, ``cancer``, ``earthquake``, ``sachs``, ``alarm``).

    Raises:
        FileNotFoundError: no such file (nor shipped network).
        BIFSyntaxError: the file is not gzip/UTF-8 text that parses as a valid network;
            the message names the file (and the line where it can).
    """
    p = Path(source)
    if not p.exists() and (NETWORKS_DIR / f"{source}.bif.gz").is_file():
        p = NETWORKS_DIR / f"{source}.bif.gz"
    if not p.is_file():
        shipped = sorted(f.name.split(".")[0] for f in NETWORKS_DIR.glob("*.bif.gz"))
        raise FileNotFoundError(f"no BIF file at {source} (networks shipped with genlab: {shipped})")
    text, where = _read_text(p, "BIF")
    return parse_bif(text, where=where, atol=atol)


def _fmt(x: float) -> str:
    return repr(float(x))


def to_bif(bn: BayesianNetwork, *, name: str = "genlab") -> str:
    """BIF text of a network; reading it back gives identical tables (floats as ``repr``)."""
    bn.check_fitted()
    out = [f"network {name} {{\n}}"]
    for v, st in zip(bn.variables_, bn.states_):
        out.append(f"variable {v} {{\n  type discrete [ {len(st)} ] {{ {', '.join(st)} }};\n}}")
    for i, v in enumerate(bn.variables_):
        ps = bn.parents_[i]
        t = bn.cpds_[i]
        if not ps:
            out.append(f"probability ( {v} ) {{\n  table {', '.join(map(_fmt, t))};\n}}")
            continue
        lines = [f"probability ( {v} | {', '.join(bn.variables_[p] for p in ps)} ) {{"]
        for idx in np.ndindex(*t.shape[:-1]):
            key = ", ".join(bn.states_[p][k] for p, k in zip(ps, idx))
            lines.append(f"  ({key}) {', '.join(map(_fmt, t[idx]))};")
        out.append("\n".join(lines) + "\n}")
    return "\n".join(out) + "\n"


def write_bif(bn: BayesianNetwork, path: str | Path) -> Path:
    path = Path(path)
    text = to_bif(bn, name=path.name.split(".")[0] or "genlab")
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- UAI
def write_uai(bn: BayesianNetwork, path: str | Path) -> Path:
    """UAI ``BAYES`` format: scope = parents then child, last variable fastest."""
    bn.check_fitted()
    card = bn.cardinalities
    lines = ["BAYES", str(len(card)), " ".join(map(str, card)), str(len(card))]
    for i, ps in enumerate(bn.parents_):
        lines.append(" ".join(map(str, [len(ps) + 1, *ps, i])))
    lines.append("")
    for t in bn.cpds_:
        lines.append(str(t.size))
        lines.append(" ".join(map(_fmt, t.ravel())))
        lines.append("")
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    return Path(path)


class _UAITokens:
    """Whitespace-separated tokens of a UAI file with their line numbers."""

    def __init__(self, text: str, where: str):
        self.where = where
        self.toks: list[str] = []
        self.lines: list[int] = []
        line, last = 1, 0
        for m in re.finditer(r"\S+", text):
            line += text.count("\n", last, m.start())
            last = m.start()
            self.toks.append(m.group())
            self.lines.append(line)
        self.i = 0

    def error(self, msg: str, *, at: int | None = None) -> BIFSyntaxError:
        k = self.i - 1 if at is None else at
        line = self.lines[min(max(k, 0), len(self.lines) - 1)] if self.lines else 1
        return BIFSyntaxError(f"{self.where}, line {line}: {msg}")

    def next(self, what: str) -> str:
        if self.i >= len(self.toks):
            raise BIFSyntaxError(f"{self.where}: the file ends before {what} (truncated?)")
        self.i += 1
        return self.toks[self.i - 1]

    def integer(self, what: str, low: int = 0, high: int | None = None) -> int:
        t = self.next(what)
        if not _INT.fullmatch(t):
            raise self.error(f"expected {what} (a whole number), found {t!r}")
        v = int(t)
        if v < low or (high is not None and v > high):
            rng = f">= {low}" if high is None else f"in {low}..{high}"
            raise self.error(f"{what} is {v}, it must be {rng}")
        return v

    def probability(self, what: str) -> float:
        t = self.next(what)
        try:
            v = float(t)
        except ValueError:
            raise self.error(f"{what}: {t!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise self.error(f"{what}: probability {t!r} is not a finite number >= 0")
        return v


def read_uai(path: str | Path, *, names: list[str] | None = None, atol: float = 1e-6) -> BayesianNetwork:
    """Read a UAI ``BAYES`` file (variables named ``x0``, ``x1``... unless ``names``).

    Raises:
        FileNotFoundError: no such file.
        BIFSyntaxError: the file is not a valid UAI Bayesian network (wrong preamble,
            counts that do not match, a scope index out of range, a bad or negative
            probability, rows that do not sum to one...); the message names the file,
            and the line and variable where it can.
    """
    text, where = _read_text(path, "UAI")
    u = _UAITokens(text, where)
    if not u.toks:
        raise BIFSyntaxError(f"{where}: the file is empty, not a UAI network")
    pre = u.next("the preamble")
    if pre.upper() == "MARKOV":
        raise BIFSyntaxError(f"{where}: a UAI MARKOV network (undirected factors); read_uai reads "
                             "Bayesian networks, whose preamble is BAYES")
    if pre.upper() != "BAYES":
        raise u.error(f"not a UAI network: the preamble is {pre[:40]!r}, expected 'BAYES'")
    n = u.integer("the number of variables", 1)
    card = [u.integer(f"the cardinality of variable {i}", 1) for i in range(n)]
    nf = u.integer("the number of tables", 0)
    if nf != n:
        raise u.error(f"a BAYES network has one table per variable: {n} variables but {nf} tables")
    scopes: list[list[int]] = []
    owner: dict[int, int] = {}
    for f in range(nf):
        k = u.integer(f"the scope size of table {f}", 1, n)
        start = u.i
        sc = [u.integer(f"a variable index in the scope of table {f}", 0, n - 1) for _ in range(k)]
        if len(set(sc)) != k:
            raise u.error(f"the scope of table {f} repeats a variable: {sc}", at=start)
        if sc[-1] in owner:
            raise u.error(f"tables {owner[sc[-1]]} and {f} both end in variable {sc[-1]} (the "
                          "child): each variable needs exactly one table", at=start)
        owner[sc[-1]] = f
        scopes.append(sc)
    label = names if names is not None else [f"x{i}" for i in range(n)]
    if len(label) != n or len(set(map(str, label))) != n:
        raise BIFSyntaxError(f"{where}: names= must give {n} distinct names (the file has {n} "
                             f"variables), got {len(label)}")
    label = [str(v) for v in label]
    tables = []
    for f, sc in enumerate(scopes):
        child = label[sc[-1]]
        want = math.prod(card[j] for j in sc)
        cnt = u.integer(f"the number of entries of table {f} ({child!r})")
        if cnt != want:
            raise u.error(f"table {f} ({child!r}) declares {cnt} entries, but its scope {sc} with "
                          f"cardinalities {[card[j] for j in sc]} needs {want}")
        tables.append(np.array([u.probability(f"table {f} ({child!r})") for _ in range(cnt)],
                               dtype=np.float64))
    if u.i < len(u.toks):
        raise u.error(f"unexpected {u.toks[u.i][:40]!r} after the last table", at=u.i)
    states = {label[i]: [str(k) for k in range(card[i])] for i in range(n)}
    parents, cpds = {}, {}
    for f, (sc, t) in enumerate(zip(scopes, tables)):
        child = label[sc[-1]]
        parents[child] = [label[j] for j in sc[:-1]]
        cpds[child] = t.reshape([card[j] for j in sc])
        sums = cpds[child].reshape(-1, card[sc[-1]]).sum(1)
        bad = np.abs(sums - 1) > atol
        if bad.any():
            row = int(np.argmax(bad))
            raise BIFSyntaxError(f"{where}: table {f} ({child!r}): row {row} sums to "
                                 f"{sums[row]:.10g}, not 1 (tolerance {atol:g})")
    try:
        return BayesianNetwork.from_cpds(states, parents, cpds, atol=atol)
    except ValueError as e:
        raise BIFSyntaxError(f"{where}: {e}") from None
