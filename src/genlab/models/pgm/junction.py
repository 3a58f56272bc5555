"""Junction tree (clique tree) inference (Lauritzen & Spiegelhalter, 1988; Hugin
propagation, Jensen et al., 1990; Shafer-Shenoy messages, 1990).

The tree is built once per network from a greedy min-fill elimination of the moral
graph: its maximal elimination cliques, joined by a maximum-weight spanning tree over
separator sizes. ``calibrate`` (every clique's belief, for ``marginals`` and EM) is
batched: ``B`` evidence sets are propagated together as a leading batch axis.
``query_batch`` answers one variable per evidence set more cheaply: the evidence-free
message along every edge is computed once, and each row sends only the messages its
evidence changes towards its query's clique, all rows that need an edge at once.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .factors import elimination_cliques, elimination_order, expand

MAX_ENTRIES = 1 << 22  # batch rows x largest clique table per chunk


def _einsum(ops: list[tuple[Sequence[int], np.ndarray]], out: Sequence[int], *,
            optimize: bool | None = None) -> np.ndarray:
    """einsum over variable ids (any ints; -1 is the batch axis); ``optimize`` defaults to
    a contraction path for more than two operands."""
    label: dict[int, int] = {}
    args: list = []
    for vs, t in ops:
        args += [t, [label.setdefault(v, len(label)) for v in vs]]
    args.append([label[v] for v in out])
    return np.einsum(*args, optimize=len(ops) > 2 if optimize is None else optimize)


class JunctionTree:
    """A calibrated-once clique tree over a ``BayesianNetwork``.

    Example::

        jt = JunctionTree(bn)
        jt.marginals({"xray": "yes"})                 # every variable's posterior
        jt.query_batch(["lung"] * 3, [{"xray": "yes"}, {"smoke": "no"}, {}])
    """

    def __init__(self, bn, *, heuristic: str = "min_fill"):
        bn.check_fitted()
        self.bn = bn
        card = np.array(bn.cardinalities)
        d = len(card)
        scopes = [tuple(bn.parents_[i]) + (i,) for i in range(d)]
        order = elimination_order(scopes, range(d), card, heuristic=heuristic)
        self.cliques = elimination_cliques(scopes, order)
        nc = len(self.cliques)
        member = np.zeros((nc, d), dtype=np.int32)
        for k, c in enumerate(self.cliques):
            member[k, list(c)] = 1
        weight = member @ member.T
        # Kruskal on separator sizes (ties by index): a maximum spanning tree of the cliques
        iu, ju = np.triu_indices(nc, 1)
        w = weight[iu, ju]
        sel = np.lexsort((ju, iu, -w))
        parent_uf = list(range(nc))

        def find(a: int) -> int:
            while parent_uf[a] != a:
                parent_uf[a] = parent_uf[parent_uf[a]]
                a = parent_uf[a]
            return a

        nbrs: list[list[int]] = [[] for _ in range(nc)]
        for e in sel:
            a, b = int(iu[e]), int(ju[e])
            ra, rb = find(a), find(b)
            if ra != rb:
                parent_uf[ra] = rb
                nbrs[a].append(b)
                nbrs[b].append(a)
        self.nbrs = nbrs
        # rooted traversal (one root per connected component)
        self.parent = [-1] * nc
        self.post: list[int] = []
        seen = [False] * nc
        for root in range(nc):
            if seen[root]:
                continue
            stack, pre = [root], []
            seen[root] = True
            while stack:
                c = stack.pop()
                pre.append(c)
                for n in nbrs[c]:
                    if not seen[n]:
                        seen[n] = True
                        self.parent[n] = c
                        stack.append(n)
            self.post += pre[::-1]
        self.sep = [tuple(sorted(set(self.cliques[c]) & set(self.cliques[self.parent[c]])))
                    if self.parent[c] >= 0 else () for c in range(nc)]
        # each table goes to the smallest clique holding its family
        self.psi = [np.ones([card[v] for v in c]) for c in self.cliques]
        size = [int(np.prod([card[v] for v in c])) for c in self.cliques]
        self.family_home = []
        for i, s in enumerate(scopes):
            k = min((k for k in range(nc) if set(s) <= set(self.cliques[k])), key=lambda k: size[k])
            self.psi[k] = self.psi[k] * expand(s, bn.cpds_[i], self.cliques[k])
            self.family_home.append(k)
        self.home = [min((k for k in range(nc) if v in self.cliques[k]), key=lambda k: size[k])
                     for v in range(d)]
        self.max_clique = max(size)
        self.card = card

    @property
    def treewidth(self) -> int:
        return max(len(c) for c in self.cliques) - 1

    def _evidence_arrays(self, evidence: Sequence[Mapping[str, Any]]) -> dict[int, np.ndarray]:
        bn, b = self.bn, len(evidence)
        out: dict[int, np.ndarray] = {}
        for r, ev in enumerate(evidence):
            for v, s in bn.evidence_codes(ev).items():
                if v not in out:
                    out[v] = np.ones((b, self.card[v]))
                out[v][r] = 0.0
                out[v][r, s] = 1.0
        return out

    def calibrate(self, evidence: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
        """Calibrated clique beliefs ``(B, *clique cards)`` for a batch of evidence sets
        (each belief normalised per row)."""
        ind = self._evidence_arrays(evidence)
        b = len(evidence)
        pot = []
        for k, c in enumerate(self.cliques):
            t = np.broadcast_to(self.psi[k], (b, *self.psi[k].shape)).copy()
            for v in c:
                if v in ind and self.home[v] == k:
                    t *= expand((-1, v), ind[v], (-1, *c))
            pot.append(t)
        up: list[np.ndarray | None] = [None] * len(self.cliques)
        for c in self.post:  # collect towards the roots
            p = self.parent[c]
            if p < 0:
                continue
            m = _einsum([((-1, *self.cliques[c]), pot[c])], (-1, *self.sep[c]))
            m = m / np.maximum(m.reshape(b, -1).sum(1), 1e-300).reshape(b, *([1] * len(self.sep[c])))
            up[c] = m
            pot[p] = _einsum([((-1, *self.cliques[p]), pot[p]), ((-1, *self.sep[c]), m)],
                             (-1, *self.cliques[p]))
        for c in reversed(self.post):  # distribute from the roots (Hugin: new / old separator)
            p = self.parent[c]
            if p < 0:
                continue
            new = _einsum([((-1, *self.cliques[p]), pot[p])], (-1, *self.sep[c]))
            new = new / np.maximum(new.reshape(b, -1).sum(1), 1e-300).reshape(b, *([1] * len(self.sep[c])))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(up[c] > 0, new / up[c], 0.0)
            pot[c] = _einsum([((-1, *self.cliques[c]), pot[c]), ((-1, *self.sep[c]), ratio)],
                             (-1, *self.cliques[c]))
        for k in range(len(pot)):
            z = pot[k].reshape(b, -1).sum(1)
            if not (z > 0).all():
                r = int(np.argmin(z > 0))
                raise ValueError(f"evidence set {r} ({dict(evidence[r])}) has probability zero")
            pot[k] = pot[k] / z.reshape(b, *([1] * (pot[k].ndim - 1)))
        return pot

    def family_posteriors(self, evidence: Sequence[Mapping[Any, Any]], weights: np.ndarray | None = None
                          ) -> list[np.ndarray]:
        """Expected family counts ``sum_r w_r p(x_v, x_pa(v) | evidence_r)`` per node,
        shaped like its table (for EM)."""
        d = len(self.card)
        out = [np.zeros(self.bn.cpds_[i].shape) for i in range(d)]
        w = np.ones(len(evidence)) if weights is None else np.asarray(weights, dtype=float)
        chunk = max(1, MAX_ENTRIES // self.max_clique)
        for s in range(0, len(evidence), chunk):
            beliefs = self.calibrate(evidence[s:s + chunk])
            ws = w[s:s + chunk]
            for i in range(d):
                k = self.family_home[i]
                fam = tuple(self.bn.parents_[i]) + (i,)
                out[i] += _einsum([((-1,), ws), ((-1, *self.cliques[k]), beliefs[k])], fam)
        return out

    def _marginal(self, beliefs: list[np.ndarray], v: int) -> np.ndarray:
        k = self.home[v]
        return _einsum([((-1, *self.cliques[k]), beliefs[k])], (-1, v))

    def marginals(self, evidence: Mapping[str, Any] | None = None) -> list[np.ndarray]:
        """Posterior marginal of every variable (in ``variables_`` order) given one evidence
        set, each a ``pgm.inference.Posterior`` (an array that names its states)."""
        from .inference import labelled

        beliefs = self.calibrate([evidence or {}])
        ev = self.bn.evidence_codes(evidence)
        return [labelled(self.bn, self._marginal(beliefs, v)[0], [v], ev) for v in range(len(self.card))]

    def query_batch(self, variables: Sequence[str], evidence: Sequence[Mapping[str, Any]]
                    ) -> list[np.ndarray]:
        """``p(variables[r] | evidence[r])`` for each ``r``, each a ``pgm.inference.Posterior``
        (an array that names its states).

        Shafer-Shenoy messages towards each query's home clique, computed only where they
        differ from the prior: a message out of a part of the tree that holds none of a
        row's evidence is the evidence-free one, computed once per tree (``_messages``).
        Each directed edge then runs one vectorised einsum for all the rows that need it,
        and each (home clique, query variable) pair one more; a row costs about the
        cliques between its evidence and its query, not the whole tree.
        """
        if len(variables) != len(evidence):
            raise ValueError(f"{len(variables)} query variables but {len(evidence)} evidence sets")
        q = [self.bn.index(v) for v in variables]
        codes = []
        for v, ev in zip(variables, evidence):
            c = self.bn.evidence_codes(ev)
            if self.bn.index(v) in c:
                raise ValueError(f"{v!r} is both queried and observed")
            codes.append(c)
        chunk = max(1, MAX_ENTRIES // self.max_clique)
        out: list[np.ndarray] = []
        for s in range(0, len(q), chunk):
            out += self._answer(q[s:s + chunk], codes[s:s + chunk], evidence, s)
        from .inference import labelled

        return [labelled(self.bn, p, [v], c) for p, v, c in zip(out, q, codes)]

    def _messages(self) -> dict:
        """The tree's directed edges in an order where every message's inputs come first
        (towards the roots, then away from them), each with its separator, the edges
        feeding it, the cliques on its source side, and its evidence-free message."""
        got = self.__dict__.get("_msg_cache")
        if got is not None:
            return got
        nc = len(self.cliques)
        src: list[int] = []
        dst: list[int] = []
        for c in self.post:
            if self.parent[c] >= 0:
                src.append(c)
                dst.append(self.parent[c])
        for c in reversed(self.post):
            if self.parent[c] >= 0:
                src.append(self.parent[c])
                dst.append(c)
        eid = {(a, b): e for e, (a, b) in enumerate(zip(src, dst))}
        inc = [[eid[(n, a)] for n in self.nbrs[a] if n != b] for a, b in zip(src, dst)]
        into = [[eid[(n, h)] for n in self.nbrs[h]] for h in range(nc)]
        seps = [tuple(sorted(set(self.cliques[a]) & set(self.cliques[b]))) for a, b in zip(src, dst)]
        sub = np.zeros((nc, nc), dtype=bool)  # sub[c]: the cliques below c (c included)
        for c in self.post:
            sub[c, c] = True
            if self.parent[c] >= 0:
                sub[self.parent[c]] |= sub[c]
        root = list(range(nc))
        for c in reversed(self.post):
            if self.parent[c] >= 0:
                root[c] = root[self.parent[c]]
        side = np.zeros((len(src), nc), dtype=bool)
        for e, (a, b) in enumerate(zip(src, dst)):
            side[e] = sub[a] if self.parent[a] == b else sub[root[a]] & ~sub[b]
        prior: list[np.ndarray] = []
        for e, a in enumerate(src):
            ops = [(self.cliques[a], self.psi[a])] + [(seps[f], prior[f]) for f in inc[e]]
            m = _einsum(ops, seps[e], optimize=False)
            prior.append(m / m.sum())
        got = self.__dict__["_msg_cache"] = {"src": src, "inc": inc, "into": into, "seps": seps,
                                              "side": side, "side_f": side.T.astype(np.float32),
                                              "prior": prior}
        return got

    def _answer(self, q: list[int], codes: list[dict], evidence: Sequence[Mapping[str, Any]],
                first: int) -> list[np.ndarray]:
        """Rows ``first ..`` of a ``query_batch`` (``evidence`` is the whole batch's, for
        error messages)."""
        t = self._messages()
        src, inc, seps, prior = t["src"], t["inc"], t["seps"], t["prior"]
        b, nc = len(q), len(self.cliques)
        ind: dict[int, np.ndarray] = {}  # observed variable -> (rows, states) indicator
        ev_home = np.zeros((b, nc), dtype=bool)
        for r, ev in enumerate(codes):
            for v, s in ev.items():
                a = ind.get(v)
                if a is None:
                    a = ind[v] = np.ones((b, self.card[v]))
                a[r] = 0.0
                a[r, s] = 1.0
                ev_home[r, self.home[v]] = True
        at: dict[int, list[int]] = {}
        for v in ind:
            at.setdefault(self.home[v], []).append(v)
        home = np.array([self.home[v] for v in q], dtype=np.intp)
        side = t["side"]
        # need[r, e]: row r's answer uses a message along e that its evidence changes
        need = ((ev_home.astype(np.float32) @ t["side_f"]) > 0) & ~side.T[home]  # BLAS, exact counts
        msg: dict[int, np.ndarray] = {}
        pos: dict[int, np.ndarray] = {}

        def incoming(f: int, rows: np.ndarray) -> tuple[tuple, np.ndarray]:
            which = need[rows, f]
            if not which.any():
                return seps[f], prior[f]
            if which.all():
                return (-1, *seps[f]), msg[f][pos[f][rows]]
            m = np.empty((len(rows), *prior[f].shape))
            m[...] = prior[f]
            m[which] = msg[f][pos[f][rows[which]]]
            return (-1, *seps[f]), m

        def operands(c: int, rows: np.ndarray, edges: Sequence[int]) -> list:
            ops = [(self.cliques[c], self.psi[c])]
            ops += [((-1, v), ind[v][rows]) for v in at.get(c, ())]
            ops += [incoming(f, rows) for f in edges]
            return ops

        for e, a in enumerate(src):
            rows = np.flatnonzero(need[:, e])
            if not len(rows):
                continue
            m = _einsum(operands(a, rows, inc[e]), (-1, *seps[e]), optimize=False)
            z = m.reshape(len(rows), -1).sum(1)
            m /= np.where(z > 0, z, 1.0).reshape(-1, *([1] * len(seps[e])))
            msg[e] = m
            pos[e] = np.full(b, -1, dtype=np.intp)
            pos[e][rows] = np.arange(len(rows))
        out: list = [None] * b
        groups: dict[tuple[int, int], list[int]] = {}
        for r, v in enumerate(q):
            groups.setdefault((int(home[r]), v), []).append(r)
        for (h, v), rs in groups.items():
            rows = np.array(rs, dtype=np.intp)
            ops = operands(h, rows, t["into"][h])
            if any(sc[:1] == (-1,) for sc, _ in ops):
                p = _einsum(ops, (-1, v), optimize=False)
            else:  # no row's evidence reaches this clique: the prior marginal
                p = np.broadcast_to(_einsum(ops, (v,), optimize=False), (len(rows), self.card[v]))
            z = p.sum(1)
            if not (z > 0).all():
                r = first + rs[int(np.argmin(z > 0))]
                raise ValueError(f"evidence set {r} ({dict(evidence[r])}) has probability zero")
            p = p / z[:, None]
            for i, r in enumerate(rs):
                out[r] = p[i]
        return out
