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
import re
from pathlib import Path
from typing import Any

import numpy as np

from .bayesnet import BayesianNetwork

NETWORKS_DIR = Path(__file__).parent / "networks"
_TOKEN = re.compile(r"//[^\n]*|/\*.*?\*/|\"[^\"]*\"|[{}()\[\],;|]|[^\s{}()\[\],;|\"]+", re.S)


class BIFSyntaxError(ValueError):
    """A BIF file that does not parse; the message names the file and line."""


def _read_text(source: str | Path) -> tuple[str, str]:
    p = Path(source)
    if p.suffix == ".gz" or str(source).endswith(".gz"):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            return f.read(), str(p)
    return p.read_text(encoding="utf-8"), str(p)


def _tokens(text: str) -> tuple[list[str], list[int]]:
    toks, lines = [], []
    line, last = 1, 0
    for m in _TOKEN.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        t = m.group()
        if t.startswith("//") or t.startswith("/*"):
            continue
        toks.append(t[1:-1] if t.startswith('"') else t)
        lines.append(line)
    return toks, lines


class _Parser:
    def __init__(self, text: str, where: str):
        self.toks, self.lines = _tokens(text)
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

    def numbers(self) -> list[float]:
        vals = []
        for item in self.words_until(";"):
            try:
                vals.append(float(item))
            except ValueError:
                raise self.error(f"{item!r} is not a number") from None
        self.expect(";")
        return vals


def parse_bif(text: str, *, where: str = "<string>", atol: float = 1e-6) -> BayesianNetwork:
    """Parse BIF text into a validated ``BayesianNetwork``."""
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
            p.expect("{")
            while p.peek() != "}":
                t = p.next()
                if t == "type":
                    if p.next() != "discrete":
                        raise p.error(f"variable {name!r}: only discrete variables are supported")
                    p.expect("[")
                    n = p.next()
                    p.expect("]")
                    p.expect("{")
                    st = p.words_until("}")
                    p.expect("}")
                    p.expect(";")
                    if not n.isdigit() or int(n) != len(st):
                        raise p.error(f"variable {name!r} declares [{n}] states but lists {len(st)}")
                    if name in states:
                        raise p.error(f"variable {name!r} is declared twice")
                    states[name] = st
                elif t == "property":
                    p.skip_statement()
                else:
                    raise p.error(f"unexpected {t!r} in variable {name!r}")
            p.expect("}")
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
            while p.peek() != "}":
                t = p.next()
                if t in ("table", "default"):
                    entries.append((t, p.numbers(), p.lines[p.i - 1]))
                elif t == "(":
                    key = p.words_until(")")
                    p.expect(")")
                    entries.append((tuple(key), p.numbers(), p.lines[p.i - 1]))
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
        r = len(states[child])
        pc = [len(states[q]) for q in parents]
        q = int(np.prod(pc)) if pc else 1
        table = np.full((q, r), np.nan)
        index = [{s: k for k, s in enumerate(states[v])} for v in parents]
        for key, vals, eline in entries:
            if key == "table":
                if len(vals) != q * r:
                    raise BIFSyntaxError(f"{where}, line {eline}: table of {child!r} has "
                                         f"{len(vals)} numbers, expected {q * r}")
                table = np.asarray(vals).reshape(r, q).T.copy()
            elif key == "default":
                if len(vals) != r:
                    raise BIFSyntaxError(f"{where}, line {eline}: default row of {child!r} has "
                                         f"{len(vals)} numbers, expected {r}")
                table[np.isnan(table[:, 0])] = vals
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
                table[row] = vals
        if np.isnan(table).any():
            raise BIFSyntaxError(f"{at}: the table of {child!r} leaves parent configurations "
                                 "without probabilities")
        cpds[child] = table.reshape(*pc, r)
        parents_of[child] = list(parents)
    missing = [v for v in states if v not in cpds]
    if missing:
        raise BIFSyntaxError(f"{where}: no probability block for {missing[:5]}")
    try:
        return BayesianNetwork.from_cpds(states, parents_of, cpds, atol=atol)
    except ValueError as e:
        raise BIFSyntaxError(f"{where}: {e}") from None


def read_bif(source: str | Path, *, atol: float = 1e-6) -> BayesianNetwork:
    """Read a ``.bif`` or ``.bif.gz`` file, or a network shipped with genlab by name
    (``asia``, ``cancer``, ``earthquake``, ``sachs``, ``alarm``)."""
    p = Path(source)
    if not p.exists() and (NETWORKS_DIR / f"{source}.bif.gz").is_file():
        p = NETWORKS_DIR / f"{source}.bif.gz"
    if not p.is_file():
        shipped = sorted(f.name.split(".")[0] for f in NETWORKS_DIR.glob("*.bif.gz"))
        raise FileNotFoundError(f"no BIF file at {source} (networks shipped with genlab: {shipped})")
    text, where = _read_text(p)
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


def read_uai(path: str | Path, *, names: list[str] | None = None, atol: float = 1e-6) -> BayesianNetwork:
    """Read a UAI ``BAYES`` file (variables named ``x0``, ``x1``... unless ``names``)."""
    text, where = _read_text(path)
    toks = text.split()
    try:
        if toks[0].upper() != "BAYES":
            raise ValueError(f"preamble is {toks[0]!r}, expected 'BAYES'")
        it = iter(toks[1:])
        n = int(next(it))
        card = [int(next(it)) for _ in range(n)]
        nf = int(next(it))
        scopes = [[int(next(it)) for _ in range(int(next(it)))] for _ in range(nf)]
        tables = [np.array([float(next(it)) for _ in range(int(next(it)))]) for _ in range(nf)]
    except (StopIteration, ValueError, IndexError) as e:
        raise BIFSyntaxError(f"{where}: not a valid UAI BAYES file ({e or 'truncated'})") from None
    names = names or [f"x{i}" for i in range(n)]
    states = {names[i]: [str(k) for k in range(card[i])] for i in range(n)}
    parents, cpds = {}, {}
    for sc, t in zip(scopes, tables):
        child = names[sc[-1]]
        parents[child] = [names[j] for j in sc[:-1]]
        cpds[child] = t.reshape([card[j] for j in sc])
    return BayesianNetwork.from_cpds(states, parents, cpds, atol=atol)
