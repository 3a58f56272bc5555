"""Pairwise discrete Markov random fields: Ising / Potts grids and general pairwise graphs.

``log p~(x) = sum_i u_i(x_i) + sum_(a,b) w_ab(x_a, x_b)`` (Koller & Friedman, 2009, ch. 4;
Besag, 1974/1986). Provided: block Gibbs sampling over a greedy graph colouring (on a
4-connected grid: the checkerboard), exact ``log Z`` by variable elimination where the
treewidth allows, loopy belief propagation (Pearl, 1988; Yedidia et al., 2003),
pseudo-likelihood learning of tied grid parameters (Besag, 1975), and image denoising.

As a genlab model (``"mrf"``), it learns from images: pixels are quantised to ``n_states``
levels and a translation-invariant grid model (a bias per state, one ``K x K`` coupling per
neighbour direction) is fitted by pseudo-likelihood; ``sample`` returns images in [0, 1].
"""
from __future__ import annotations

import numpy as np

from .factors import elimination_order, induced_width

MAX_CLIQUE_ENTRIES = 1 << 24


# ----------------------------------------------------------------------------- the graph
class PairwiseGraph:
    """Unaries ``(N, K)`` and edge tables ``(E, K, K)`` of log-potentials on edges ``(E, 2)``."""

    def __init__(self, unary: np.ndarray, edges: np.ndarray, pair: np.ndarray):
        self.unary = np.asarray(unary, dtype=float)
        self.edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        self.pair = np.asarray(pair, dtype=float)
        n, k = self.unary.shape
        if self.pair.shape != (len(self.edges), k, k):
            raise ValueError(f"pair must be (E, K, K) = ({len(self.edges)}, {k}, {k}), got {self.pair.shape}")
        if len(self.edges) and (self.edges.min() < 0 or self.edges.max() >= n):
            raise ValueError("edges must index nodes 0..N-1")
        self.n, self.k = n, k
        self._blocks = None

    @classmethod
    def grid(cls, h: int, w: int, bias: np.ndarray, weights: np.ndarray) -> "PairwiseGraph":
        """A translation-invariant 4-connected grid: ``weights[0]`` couples horizontal
        neighbours ``(left, right)``, ``weights[1]`` vertical ones ``(up, down)``."""
        idx = np.arange(h * w).reshape(h, w)
        eh = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1)
        ev = np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)
        pair = np.concatenate([np.broadcast_to(weights[0], (len(eh), *weights[0].shape)),
                               np.broadcast_to(weights[1], (len(ev), *weights[1].shape))])
        return cls(np.broadcast_to(bias, (h * w, len(bias))).copy(), np.concatenate([eh, ev]), pair)

    @classmethod
    def ising(cls, h: int, w: int, coupling: float, field: float = 0.0) -> "PairwiseGraph":
        """Ising model with spins {-1, +1} as states {0, 1}: ``J s_a s_b + h s_i``."""
        s = np.array([-1.0, 1.0])
        j = coupling * np.outer(s, s)
        return cls.grid(h, w, field * s, np.stack([j, j]))

    def log_potential(self, x: np.ndarray) -> np.ndarray:
        """Unnormalised ``log p~(x)`` for states ``(B, N)``."""
        x = np.asarray(x)
        lp = self.unary[np.arange(self.n), x].sum(1)
        if len(self.edges):
            a, b = self.edges.T
            lp = lp + self.pair[np.arange(len(a)), x[:, a], x[:, b]].sum(1)
        return lp

    # -- block Gibbs
    def blocks(self) -> list[dict[str, np.ndarray]]:
        """Greedy colouring; per colour the nodes and their oriented incident edge tables."""
        if self._blocks is None:
            nbrs = [[] for _ in range(self.n)]
            for e, (a, b) in enumerate(self.edges):
                nbrs[a].append((e, b, 0))
                nbrs[b].append((e, a, 1))
            color = -np.ones(self.n, dtype=int)
            for v in range(self.n):
                used = {color[o] for _, o, _ in nbrs[v]}
                color[v] = next(c for c in range(len(used) + 1) if c not in used)
            self._blocks = []
            for c in range(color.max() + 1):
                nodes = np.flatnonzero(color == c)
                pos, es, others, flips = [], [], [], []
                for p, v in enumerate(nodes):
                    for e, o, f in nbrs[v]:
                        pos.append(p); es.append(e); others.append(o); flips.append(f)
                es = np.array(es, dtype=np.int64)
                tabs = self.pair[es] if len(es) else np.zeros((0, self.k, self.k))
                flips = np.array(flips, dtype=bool)
                tabs = np.where(flips[:, None, None], np.transpose(tabs, (0, 2, 1)), tabs)
                self._blocks.append({"nodes": nodes, "pos": np.array(pos, dtype=np.int64),
                                     "others": np.array(others, dtype=np.int64), "tabs": tabs})
        return self._blocks

    def conditional_logits(self, x: np.ndarray, blk: dict[str, np.ndarray],
                           extra: np.ndarray | None = None) -> np.ndarray:
        """``log p(x_i = k | neighbours)`` up to a constant for the block's nodes, ``(B, m, K)``."""
        logits = np.broadcast_to(self.unary[blk["nodes"]], (len(x), len(blk["nodes"]), self.k)).copy()
        if extra is not None:
            logits += extra[:, blk["nodes"]]
        if len(blk["pos"]):
            vals = blk["tabs"][np.arange(len(blk["pos"]))[None, :], :, x[:, blk["others"]]]
            np.add.at(logits, (slice(None), blk["pos"]), vals)
        return logits

    def gibbs(self, chains: int, sweeps: int, rng: np.random.Generator, *,
              init: np.ndarray | None = None, extra: np.ndarray | None = None) -> np.ndarray:
        """Block Gibbs: every sweep resamples each colour class at once. ``extra``
        ``(B, N, K)`` adds per-chain unaries (e.g. a denoising likelihood)."""
        x = rng.integers(0, self.k, (chains, self.n)) if init is None else np.array(init)
        for _ in range(sweeps):
            for blk in self.blocks():
                lg = self.conditional_logits(x, blk, extra)
                lg -= lg.max(-1, keepdims=True)
                p = np.exp(lg)
                cum = np.cumsum(p, -1)
                u = rng.random(lg.shape[:2]) * cum[..., -1]
                x[:, blk["nodes"]] = (u[..., None] >= cum[..., :-1]).sum(-1)
        return x

    # -- exact partition function
    def log_partition(self, *, heuristic: str = "min_fill") -> float:
        """Exact ``log Z`` by variable elimination in log-scaled arithmetic; a ``ValueError``
        when the elimination cliques would exceed ``MAX_CLIQUE_ENTRIES``."""
        from .inference import _eliminate

        scopes = [(i,) for i in range(self.n)] + [tuple(e) for e in self.edges]
        order = elimination_order(scopes, range(self.n), [self.k] * self.n, heuristic=heuristic)
        width = induced_width(scopes, order) + 1  # variables in the largest clique
        if self.k ** width > MAX_CLIQUE_ENTRIES:
            raise ValueError(f"exact log Z needs cliques of {width} variables ({self.k}^{width} "
                             "entries); use loopy BP or AIS instead")
        um = self.unary.max(1, keepdims=True)
        pm = self.pair.max((1, 2), keepdims=True)
        factors = [((i,), np.exp(self.unary[i] - um[i])) for i in range(self.n)]
        factors += [(tuple(map(int, e)), np.exp(self.pair[k] - pm[k])) for k, e in enumerate(self.edges)]
        rest, log_scale, _ = _eliminate(factors, order)
        total = log_scale + float(um.sum() + pm.sum())
        for _, t in rest:
            total += float(np.log(np.sum(t)))
        return total

    # -- loopy belief propagation
    def loopy_bp(self, *, max_iter: int = 200, damping: float = 0.5, tol: float = 1e-8,
                 extra: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Sum-product loopy BP (exact on trees). Returns node beliefs ``(N, K)`` and the
        iterations run. ``extra`` ``(N, K)`` adds unaries (evidence)."""
        un = self.unary + (0 if extra is None else extra)
        e = len(self.edges)
        a, b = self.edges.T
        src = np.concatenate([a, b])  # directed messages: 0..E-1 a->b, E..2E-1 b->a
        dst = np.concatenate([b, a])
        tabs = np.concatenate([self.pair, np.transpose(self.pair, (0, 2, 1))])  # [src state, dst state]
        rev = np.concatenate([np.arange(e, 2 * e), np.arange(e)])
        logm = np.zeros((2 * e, self.k))
        it = 0
        for it in range(1, max_iter + 1):
            inc = np.zeros((self.n, self.k))
            np.add.at(inc, dst, logm)
            h = un[src] + inc[src] - logm[rev]  # cavity at the source
            new = _logsumexp(h[:, :, None] + tabs, 1)
            new -= new.max(1, keepdims=True)
            upd = np.logaddexp(np.log(1 - damping) + new, np.log(damping) + logm) if damping else new
            upd -= upd.max(1, keepdims=True)
            delta = float(np.abs(upd - logm).max()) if e else 0.0
            logm = upd
            if delta < tol:
                break
        inc = np.zeros((self.n, self.k))
        np.add.at(inc, dst, logm)
        bel = un + inc
        bel = np.exp(bel - bel.max(1, keepdims=True))
        return bel / bel.sum(1, keepdims=True), it


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis, keepdims=True))).squeeze(axis)
