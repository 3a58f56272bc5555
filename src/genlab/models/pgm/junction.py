"""Junction tree (clique tree) inference, calibrated once for many queries
(Lauritzen & Spiegelhalter, 1988; Hugin propagation, Jensen et al., 1990).

The tree is built once per network from a greedy min-fill elimination of the moral
graph: its maximal elimination cliques, joined by a maximum-weight spanning tree over
separator sizes. Calibration is batched: ``B`` evidence sets (each a dict, any variables)
are propagated together as a leading batch axis, so a thousand different queries cost
one vectorised pass per clique instead of a thousand eliminations.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .factors import elimination_order, expand

MAX_ENTRIES = 1 << 22  # batch rows x largest clique table per chunk


def _einsum(ops: list[tuple[Sequence[int], np.ndarray]], out: Sequence[int]) -> np.ndarray:
    label: dict[int, int] = {}
    args: list = []
    for vs, t in ops:
        args += [t, [label.setdefault(v, len(label)) for v in vs]]
    args.append([label[v] for v in out])
    return np.einsum(*args, optimize=len(ops) > 2)


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
        adj = [set() for _ in range(d)]
        for s in scopes:
            for v in s:
                adj[v].update(u for u in s if u != v)
        cliques: list[frozenset[int]] = []
        for v in order:
            c = frozenset(adj[v] | {v})
            for a in adj[v]:
                adj[a].discard(v)
                adj[a].update(adj[v] - {a})
            adj[v] = set()
            cliques.append(c)
        cliques.sort(key=len, reverse=True)
        maximal: list[frozenset[int]] = []
        for c in cliques:
            if not any(c <= m for m in maximal):
                maximal.append(c)
        self.cliques = [tuple(sorted(c)) for c in maximal]
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
        """Posterior marginal of every variable (in ``variables_`` order) given one evidence set."""
        beliefs = self.calibrate([evidence or {}])
        return [self._marginal(beliefs, v)[0] for v in range(len(self.card))]

    def query_batch(self, variables: Sequence[str], evidence: Sequence[Mapping[str, Any]]
                    ) -> list[np.ndarray]:
        """``p(variables[r] | evidence[r])`` for each ``r``, calibrated in vectorised chunks."""
        if len(variables) != len(evidence):
            raise ValueError(f"{len(variables)} query variables but {len(evidence)} evidence sets")
        q = [self.bn.index(v) for v in variables]
        for v, ev in zip(variables, evidence):
            if v in ev:
                raise ValueError(f"{v!r} is both queried and observed")
        chunk = max(1, MAX_ENTRIES // self.max_clique)
        out: list[np.ndarray] = []
        for s in range(0, len(q), chunk):
            beliefs = self.calibrate(evidence[s:s + chunk])
            cache: dict[int, np.ndarray] = {}
            for r, v in enumerate(q[s:s + chunk]):
                if v not in cache:
                    cache[v] = self._marginal(beliefs, v)
                out.append(cache[v][r])
        return out
