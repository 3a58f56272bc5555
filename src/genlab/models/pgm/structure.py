"""Structure learning: hill climbing on BIC / BDeu / K2 (with a tabu list, a maximum
in-degree, black and white lists), Chow-Liu trees and the PC algorithm (Koller & Friedman,
2009, ch. 18; Chow & Liu, 1968; Spirtes, Glymour & Scheines, 2000).

Hill climbing keeps a cache of local scores and a matrix of move gains; after a move only
the gains of the one or two nodes whose parent sets changed are recomputed, and
acyclicity comes from a reachability matrix, so a step costs O(D) local scores, not O(D^2).
"""
from __future__ import annotations

from collections import deque
from math import lgamma, log
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.special import gammaln

from .learning import family_counts


class Scorer:
    """Decomposable scores of a DAG on data codes ``(N, D)``, with a cache."""

    def __init__(self, codes: np.ndarray, card: Sequence[int], score: str = "bic", *,
                 equivalent_sample_size: float = 10.0):
        if score not in ("bic", "bdeu", "k2", "ll"):
            raise ValueError(f"score must be bic, bdeu, k2 or ll, got {score!r}")
        self.codes = np.ascontiguousarray(codes, dtype=np.int64)
        self.card = np.asarray(card)
        self.n = len(codes)
        self.score = score
        self.ess = equivalent_sample_size
        self.cache: dict[tuple[int, tuple[int, ...]], float] = {}

    def local(self, v: int, parents: Iterable[int]) -> float:
        key = (v, tuple(sorted(parents)))
        s = self.cache.get(key)
        if s is None:
            s = self.cache[key] = self._local(v, list(key[1]))
        return s

    def _local(self, v: int, parents: list[int]) -> float:
        n = family_counts(self.codes, v, parents, self.card)  # (q, r)
        q, r = n.shape
        nj = n.sum(1)
        if self.score in ("bic", "ll"):
            nz = n[n > 0]
            ll = float((nz * np.log(nz)).sum() - (nj[nj > 0] * np.log(nj[nj > 0])).sum())
            return ll if self.score == "ll" else ll - 0.5 * log(self.n) * q * (r - 1)
        if self.score == "k2":
            return float(q * lgamma(r) - gammaln(nj + r).sum() + gammaln(n + 1).sum())
        a, b = self.ess / q, self.ess / (q * r)  # BDeu
        return float(q * lgamma(a) - gammaln(nj + a).sum() + gammaln(n + b).sum() - q * r * lgamma(b))

    def total(self, parents: Sequence[Sequence[int]]) -> float:
        return sum(self.local(v, ps) for v, ps in enumerate(parents))


def _reach(adj: np.ndarray) -> np.ndarray:
    """Transitive closure: ``R[a, b]`` iff a directed path a -> ... -> b exists."""
    r = adj.astype(bool)
    while True:
        nxt = r | ((r.astype(np.int32) @ adj.astype(np.int32)) > 0)
        if (nxt == r).all():
            return r
        r = nxt


def hill_climb(codes: np.ndarray, card: Sequence[int], *, score: str = "bic",
               max_indegree: int | None = None, tabu_length: int = 100, max_iter: int = 10_000,
               epsilon: float = 1e-4, black_list: Iterable[tuple[int, int]] = (),
               white_list: Iterable[tuple[int, int]] | None = None,
               fixed_edges: Iterable[tuple[int, int]] = (), start: Sequence[Sequence[int]] | None = None,
               equivalent_sample_size: float = 10.0, patience: int | None = None) -> list[list[int]]:
    """Greedy search over DAGs by single-edge additions, deletions and reversals.

    Args:
        codes: complete data ``(N, D)``; card: states per column.
        score: ``bic``, ``bdeu`` or ``k2``.
        max_indegree: most parents per node (``None``: unbounded).
        tabu_length: the inverses of the last moves are forbidden (escapes plateaus).
        black_list: edges ``(u, v)`` never added; white_list: if given, the only edges
            that may be added; fixed_edges: edges always present.
        start: initial parent lists (default: the fixed edges only).
        patience: non-improving tabu moves tried after a local optimum before stopping
            (default ``min(tabu_length, 2 * D)``; 0 = plain greedy hill climbing).
    Returns:
        parent lists, one per column.
    """
    d = len(card)
    sc = Scorer(codes, card, score, equivalent_sample_size=equivalent_sample_size)
    adj = np.zeros((d, d), dtype=bool)
    for v, ps in enumerate(start or [[] for _ in range(d)]):
        adj[list(ps), v] = True
    fixed = np.zeros((d, d), dtype=bool)
    for u, v in fixed_edges:
        fixed[u, v] = adj[u, v] = True
    allowed = ~np.eye(d, dtype=bool)
    for u, v in black_list:
        allowed[u, v] = False
    if white_list is not None:
        w = np.zeros((d, d), dtype=bool)
        for u, v in white_list:
            w[u, v] = True
        allowed &= w | fixed
    max_in = d if max_indegree is None else max_indegree
    patience = min(tabu_length, 2 * d) if patience is None else patience
    gain_add = np.full((d, d), -np.inf)
    gain_del = np.full((d, d), -np.inf)

    def refresh(v: int) -> None:
        ps = list(np.flatnonzero(adj[:, v]))
        base = sc.local(v, ps)
        gain_add[:, v] = -np.inf
        gain_del[:, v] = -np.inf
        for u in range(d):
            if u == v:
                continue
            if adj[u, v]:
                gain_del[u, v] = sc.local(v, [p for p in ps if p != u]) - base
            elif allowed[u, v] and len(ps) < max_in:
                gain_add[u, v] = sc.local(v, ps + [u]) - base

    for v in range(d):
        refresh(v)
    tabu: deque = deque(maxlen=tabu_length)
    current = sc.total([np.flatnonzero(adj[:, v]) for v in range(d)])
    best_score, best_adj, stall = current, adj.copy(), 0
    for _ in range(max_iter):
        reach = _reach(adj)
        best, op = -np.inf, None
        # additions: u -> v is legal unless v already reaches u
        # (ties, e.g. the two orientations of a score-equivalent edge, go to the earlier
        # column as the parent: rounding makes the order stable, not the float noise)
        g = np.where(~reach.T & ~adj, gain_add, -np.inf)
        for (u, v) in zip(*np.unravel_index(np.argsort(-np.round(g, 6), axis=None, kind="stable")[:8], g.shape)):
            if g[u, v] > best and ("+", u, v) not in tabu:
                best, op = g[u, v], ("+", int(u), int(v))
                break
        # deletions
        g = np.where(adj & ~fixed, gain_del, -np.inf)
        for (u, v) in zip(*np.unravel_index(np.argsort(-np.round(g, 6), axis=None, kind="stable")[:8], g.shape)):
            if g[u, v] > best and ("-", u, v) not in tabu:
                best, op = g[u, v], ("-", int(u), int(v))
                break
        # reversals: u -> v becomes v -> u unless another path u ~> v exists
        for u, v in zip(*np.nonzero(adj & ~fixed)):
            if not allowed[v, u] or ("r", u, v) in tabu:
                continue
            if adj[:, u].sum() >= max_in:
                continue
            kids = np.flatnonzero(adj[u])
            if any(w != v and reach[w, v] for w in kids):
                continue
            gain = gain_del[u, v] + (sc.local(u, list(np.flatnonzero(adj[:, u])) + [v])
                                     - sc.local(u, list(np.flatnonzero(adj[:, u]))))
            if gain > best + 1e-6:
                best, op = gain, ("r", int(u), int(v))
        if op is None:
            break
        if best < epsilon:  # a local optimum: walk on through non-improving moves (tabu
            stall += 1       # search) for up to `patience` steps, keeping the best DAG seen
            if stall > patience:
                break
        current += best
        kind, u, v = op
        if kind == "+":
            adj[u, v] = True
            tabu.append(("-", u, v))
            refresh(v)
        elif kind == "-":
            adj[u, v] = False
            tabu.append(("+", u, v))
            refresh(v)
        else:
            adj[u, v] = False
            adj[v, u] = True
            tabu.append(("r", v, u))
            refresh(v)
            refresh(u)
        if current > best_score + epsilon:
            best_score, best_adj, stall = current, adj.copy(), 0
    return [list(map(int, np.flatnonzero(best_adj[:, v]))) for v in range(d)]


def mutual_information(codes: np.ndarray, card: Sequence[int]) -> np.ndarray:
    """Pairwise empirical mutual information (nats), ``(D, D)``."""
    codes = np.asarray(codes)  # a tensor of codes (BayesianNetwork.sample) too
    d, n = codes.shape[1], len(codes)
    mi = np.zeros((d, d))
    for a in range(d):
        pa = np.bincount(codes[:, a], minlength=card[a]) / n
        for b in range(a + 1, d):
            pb = np.bincount(codes[:, b], minlength=card[b]) / n
            j = np.bincount(codes[:, a] * card[b] + codes[:, b],
                            minlength=card[a] * card[b]).reshape(card[a], card[b]) / n
            nz = j > 0
            mi[a, b] = mi[b, a] = float((j[nz] * np.log(j[nz] / np.outer(pa, pb)[nz])).sum())
    return mi


def chow_liu(codes: np.ndarray, card: Sequence[int], *, root: int = 0) -> list[list[int]]:
    """The maximum-likelihood tree (Chow & Liu, 1968): a maximum spanning tree of pairwise
    mutual information, directed away from ``root``."""
    d = codes.shape[1]
    mi = mutual_information(codes, card)
    parents: list[list[int]] = [[] for _ in range(d)]
    in_tree = np.zeros(d, dtype=bool)
    in_tree[root] = True
    best = mi[root].copy()
    src = np.full(d, root)
    for _ in range(d - 1):  # Prim
        cand = np.where(in_tree, -np.inf, best)
        v = int(np.argmax(cand))
        parents[v] = [int(src[v])]
        in_tree[v] = True
        upd = (mi[v] > best) & ~in_tree
        best[upd] = mi[v][upd]
        src[upd] = v
    return parents


def ci_test(codes: np.ndarray, card: Sequence[int], x: int, y: int, z: Sequence[int], *,
            method: str = "chi_square") -> float:
    """p-value of ``X independent of Y given Z`` (Pearson chi-square or G-test), with
    degrees of freedom ``(r_x - 1)(r_y - 1) prod r_z``."""
    from scipy.stats import chi2

    codes = np.asarray(codes)  # a tensor of codes (BayesianNetwork.sample) too
    zi = np.zeros(len(codes), dtype=np.int64)
    qz = 1
    for v in z:
        zi = zi * card[v] + codes[:, v]
        qz *= int(card[v])
    rx, ry = int(card[x]), int(card[y])
    n = np.bincount((zi * rx + codes[:, x]) * ry + codes[:, y],
                    minlength=qz * rx * ry).reshape(qz, rx, ry).astype(float)
    nz = n.sum((1, 2), keepdims=True)
    exp = n.sum(2, keepdims=True) * n.sum(1, keepdims=True) / np.maximum(nz, 1)
    ok = exp > 0
    if method == "chi_square":
        stat = float((((n - exp) ** 2)[ok] / exp[ok]).sum())
    else:
        pos = n > 0
        stat = float(2 * (n[pos] * np.log(n[pos] / exp[pos])).sum())
    dof = max((rx - 1) * (ry - 1) * qz, 1)
    return float(chi2.sf(stat, dof))


def pc(codes: np.ndarray, card: Sequence[int], *, significance: float = 0.01,
       method: str = "chi_square", max_cond_vars: int = 3) -> list[list[int]]:
    """PC algorithm (stable variant): skeleton by conditional-independence tests with growing
    conditioning sets, v-structures from the separating sets, Meek's rules R1-R3, and the
    remaining undirected edges oriented along a node order (a DAG in the equivalence class
    when one exists)."""
    from itertools import combinations

    codes = np.asarray(codes)  # a tensor of codes (BayesianNetwork.sample) too
    d = codes.shape[1]
    adj = ~np.eye(d, dtype=bool)
    sepset: dict[frozenset, tuple[int, ...]] = {}
    for size in range(max_cond_vars + 1):
        snapshot = adj.copy()
        any_tested = False
        for x in range(d):
            for y in range(d):
                if x == y or not adj[x, y]:
                    continue
                nb = [w for w in np.flatnonzero(snapshot[x]) if w != y]
                if len(nb) < size:
                    continue
                any_tested = True
                for z in combinations(nb, size):
                    if ci_test(codes, card, x, y, z, method=method) > significance:
                        adj[x, y] = adj[y, x] = False
                        sepset[frozenset((x, y))] = z
                        break
        if not any_tested:
            break
    directed = np.zeros((d, d), dtype=bool)  # directed[u, v]: u -> v oriented
    und = adj.copy()
    for y in range(d):  # v-structures x -> y <- z
        nb = np.flatnonzero(adj[y])
        for i, x in enumerate(nb):
            for z in nb[i + 1:]:
                if not adj[x, z] and y not in sepset.get(frozenset((x, z)), (y,)):
                    for a in (x, z):
                        if und[a, y]:
                            directed[a, y] = True
                            und[a, y] = und[y, a] = False
    changed = True
    while changed:  # Meek rules
        changed = False
        for a in range(d):
            for b in range(d):
                if not und[a, b]:
                    continue
                # R1: c -> a - b, c not adjacent to b  =>  a -> b
                r1 = any(directed[c, a] and not adj[c, b] and c != b for c in range(d))
                # R2: a -> c -> b  =>  a -> b
                r2 = any(directed[a, c] and directed[c, b] for c in range(d))
                # R3: a - c -> b, a - e -> b, c, e non-adjacent  =>  a -> b
                cs = [c for c in range(d) if und[a, c] and directed[c, b]]
                r3 = any(not adj[c, e] for i, c in enumerate(cs) for e in cs[i + 1:])
                if r1 or r2 or r3:
                    directed[a, b] = True
                    und[a, b] = und[b, a] = False
                    changed = True
    parents = [list(map(int, np.flatnonzero(directed[:, v]))) for v in range(d)]
    # orient what is left without creating cycles
    for a in range(d):
        for b in range(a + 1, d):
            if und[a, b]:
                reach = _reach(directed)
                u, v = (a, b) if not reach[b, a] else (b, a)
                directed[u, v] = True
                und[a, b] = und[b, a] = False
                parents[v].append(u)
    # a PC output can still hold a cycle when tests contradict; break it by dropping edges
    while True:
        reach = _reach(directed)
        cyc = np.flatnonzero(np.diag(reach))
        if not len(cyc):
            break
        v = int(cyc[0])
        u = int(next(p for p in np.flatnonzero(directed[:, v]) if reach[v, p]))
        directed[u, v] = False
    return [list(map(int, np.flatnonzero(directed[:, v]))) for v in range(d)]


def structural_hamming_distance(a: Iterable[tuple[Any, Any]], b: Iterable[tuple[Any, Any]]) -> int:
    """Edges to add, delete or reverse to turn DAG ``a`` into DAG ``b``."""
    a, b = set(a), set(b)
    sa, sb = {frozenset(e) for e in a}, {frozenset(e) for e in b}
    rev = sum(1 for (u, v) in a if (v, u) in b)
    return len(sa ^ sb) + rev


def learn_structure(table, cfg) -> dict[str, list[str]]:
    """Parents per column name for a complete ``DiscreteTable`` and a ``BayesNetConfig``."""
    codes, card, names = table.codes, table.cardinalities, table.names
    if cfg.structure == "empty":
        ps = [[] for _ in names]
    elif cfg.structure == "chow_liu":
        ps = chow_liu(codes, card)
    elif cfg.structure == "pc":
        ps = pc(codes, card, significance=cfg.significance, method=cfg.ci_test,
                max_cond_vars=min(cfg.max_indegree, 3))
    else:
        ps = hill_climb(codes, card, score=cfg.score, max_indegree=cfg.max_indegree,
                        tabu_length=cfg.tabu_length, max_iter=cfg.max_iter,
                        equivalent_sample_size=cfg.equivalent_sample_size)
    return {names[v]: [names[p] for p in pv] for v, pv in enumerate(ps)}
