"""Discrete factors and elimination orders, shared by variable elimination, the junction
tree and MRFs.

A factor is a pair ``(vars, table)``: a tuple of integer variable ids and an ndarray whose
axis ``k`` runs over the states of ``vars[k]``. Products are ``np.einsum`` calls with
locally relabelled subscripts (einsum knows only 52 labels; networks have hundreds of
variables).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

Factor = tuple[tuple[int, ...], np.ndarray]


def product(factors: Sequence[Factor], keep: Sequence[int], *, op: str = "sum") -> Factor:
    """Multiply ``factors`` and sum (``op='sum'``) or max (``op='max'``) out every variable
    not in ``keep``. Returns a factor over ``keep`` (in the order given)."""
    keep = tuple(keep)
    if op == "sum":
        label: dict[int, int] = {}
        args: list = []
        for vs, t in factors:
            args += [t, [label.setdefault(v, len(label)) for v in vs]]
        for v in keep:
            label.setdefault(v, len(label))
        if len(label) > 52:
            raise ValueError("factor product over more than 52 variables")
        args.append([label[v] for v in keep])
        return keep, np.einsum(*args, optimize=len(factors) > 2)
    # max-product: build the full product by broadcasting, then max over the dropped axes
    allv = list(dict.fromkeys([v for vs, _ in factors for v in vs] + list(keep)))
    full = None
    for vs, t in factors:
        b = expand(vs, t, allv)
        full = b if full is None else full * b
    drop = tuple(i for i, v in enumerate(allv) if v not in keep)
    res = full.max(axis=drop) if drop else full
    rest = [v for v in allv if v in keep]
    return keep, np.transpose(res, [rest.index(v) for v in keep])


def expand(vs: Sequence[int], t: np.ndarray, allv: Sequence[int]) -> np.ndarray:
    """View ``t`` (axes ``vs``) broadcastable against a table over ``allv``."""
    order = sorted(range(len(vs)), key=lambda k: list(allv).index(vs[k]))
    t = np.transpose(t, order)
    present = {vs[k] for k in order}
    shape, it = [], iter(t.shape)
    for v in allv:
        shape.append(next(it) if v in present else 1)
    return t.reshape(shape)


def reduce(f: Factor, evidence: dict[int, int]) -> Factor:
    """Slice the observed variables out of a factor."""
    vs, t = f
    if not any(v in evidence for v in vs):
        return f
    index = tuple(evidence[v] if v in evidence else slice(None) for v in vs)
    return tuple(v for v in vs if v not in evidence), t[index]


def elimination_order(scopes: Iterable[Sequence[int]], eliminate: Iterable[int],
                      card: Sequence[int] | np.ndarray, *, heuristic: str = "min_fill",
                      max_width: int | None = None) -> list[int] | None:
    """Greedy elimination order of ``eliminate`` on the interaction graph of ``scopes``.

    Heuristics (Koller & Friedman, 2009, §9.4.3): ``min_fill`` (fewest added edges),
    ``weighted_min_fill`` (fill edges weighted by the product of the two cardinalities),
    ``min_size`` (fewest neighbours), ``min_weight`` (smallest product of neighbour
    cardinalities). Ties break on the variable id, so orders are deterministic.
    With ``max_width`` (``min_fill`` / ``min_size`` / ``min_weight``), stop and return
    ``None`` as soon as a variable with more neighbours than that is eliminated.
    """
    if heuristic not in ("min_fill", "weighted_min_fill", "min_size", "min_weight"):
        raise ValueError(f"unknown elimination heuristic {heuristic!r}; choose min_fill, "
                         "weighted_min_fill, min_size or min_weight")
    if heuristic in ("min_fill", "min_size"):
        return _order_bitset(scopes, eliminate, heuristic, max_width=max_width)
    if heuristic == "min_weight":
        return _order_bitset(scopes, eliminate, heuristic, card, max_width=max_width)
    adj: dict[int, set[int]] = {}
    for s in scopes:
        for v in s:
            adj.setdefault(v, set()).update(u for u in s if u != v)
    todo = set(eliminate)
    for v in todo:
        adj.setdefault(v, set())

    def cost(v: int) -> float:
        nb = list(adj[v])
        if heuristic == "min_size":
            return len(nb)
        if heuristic == "min_weight":
            return float(np.prod([card[u] for u in nb])) if nb else 0.0
        c = 0.0
        for i, a in enumerate(nb):
            na = adj[a]
            for b in nb[i + 1:]:
                if b not in na:
                    c += card[a] * card[b] if heuristic == "weighted_min_fill" else 1
        return c

    costs = {v: cost(v) for v in todo}
    order = []
    while todo:
        v = min(todo, key=lambda u: (costs[u], u))
        nb = adj.pop(v)
        for a in nb:
            adj[a].discard(v)
            adj[a].update(nb - {a})
        todo.discard(v)
        order.append(v)
        touched = set(nb)
        for a in nb:
            touched |= adj[a]
        for a in touched & todo:
            costs[a] = cost(a)
    return order


def _order_bitset(scopes: Iterable[Sequence[int]], eliminate: Iterable[int], heuristic: str,
                  card: Sequence[int] | np.ndarray | None = None, max_width: int | None = None
                  ) -> list[int] | None:
    """``min_fill`` / ``min_size`` / ``min_weight`` with neighbour sets as integer bit masks
    (variables relabelled in id order, so ties still break on the id): the same order as
    the set-based loop, several times faster on the small graphs of single queries.
    ``min_weight`` compares exact integer products of the neighbours' cardinalities."""
    scopes = [tuple(s) for s in scopes]
    ids = sorted({v for s in scopes for v in s} | set(eliminate))
    loc = {v: k for k, v in enumerate(ids)}
    cards = [int(card[v]) for v in ids] if heuristic == "min_weight" else []
    adj = [0] * len(ids)
    for s in scopes:
        m = 0
        for v in s:
            m |= 1 << loc[v]
        for v in s:
            adj[loc[v]] |= m
    for k in range(len(ids)):
        adj[k] &= ~(1 << k)
    todo = {loc[v] for v in eliminate}

    def cost(k: int) -> int:
        nb = adj[k]
        if heuristic == "min_size":
            return nb.bit_count()
        if heuristic == "min_weight":
            w, rest = 1 if nb else 0, nb
            while rest:
                low = rest & -rest
                w *= cards[low.bit_length() - 1]
                rest ^= low
            return w
        c, rest = 0, nb
        while rest:
            low = rest & -rest
            a = low.bit_length() - 1
            rest ^= low
            c += (rest & ~adj[a]).bit_count()  # pairs (a, b), b after a, not yet adjacent
        return c

    costs = {k: cost(k) for k in todo}
    order = []
    while todo:
        k = min(todo, key=lambda u: (costs[u], u))
        nb = adj[k]
        if max_width is not None and nb.bit_count() > max_width:
            return None  # wider than asked for: the caller has no use for the rest
        bit = 1 << k
        rest = nb
        touched = nb
        while rest:
            low = rest & -rest
            a = low.bit_length() - 1
            rest ^= low
            adj[a] = (adj[a] | nb) & ~low & ~bit
            touched |= adj[a]
        adj[k] = 0
        todo.discard(k)
        order.append(ids[k])
        # min_size / min_weight look at a variable's own neighbours only: those changed
        # for the eliminated variable's neighbours; fill counts change one step further
        rest = (touched if heuristic == "min_fill" else nb) & ~bit
        while rest:
            low = rest & -rest
            a = low.bit_length() - 1
            rest ^= low
            if a in todo:
                costs[a] = cost(a)
    return order


def _elimination_cliques_masks(scopes: Iterable[Sequence[int]], order: Sequence[int]) -> list[int]:
    """Each variable of ``order`` with its neighbours when it is eliminated from the
    interaction graph of ``scopes``, as bit masks."""
    adj: dict[int, int] = {}
    for s in scopes:
        s = [int(v) for v in s]
        m = 0
        for v in s:
            m |= 1 << v
        for v in s:
            adj[v] = adj.get(v, 0) | m
    found = []
    for v in order:
        v = int(v)
        bit = 1 << v
        c = adj.pop(v, 0) | bit
        found.append(c)
        rest = c & ~bit
        while rest:
            low = rest & -rest
            a = low.bit_length() - 1
            rest ^= low
            adj[a] = (adj.get(a, 0) | c) & ~bit
    return found


def elimination_cliques(scopes: Iterable[Sequence[int]], order: Sequence[int]) -> list[tuple[int, ...]]:
    """The maximal cliques of the triangulation that eliminating ``order`` makes of the
    interaction graph of ``scopes`` (each variable with its neighbours when it goes), as
    sorted tuples, largest first (ties in elimination order): a junction tree's nodes."""
    found = sorted(_elimination_cliques_masks(scopes, order), key=int.bit_count, reverse=True)
    kept: list[int] = []
    for c in found:
        if not any(c & k == c for k in kept):
            kept.append(c)
    out = []
    for c in kept:
        vs = []
        while c:
            low = c & -c
            c ^= low
            vs.append(low.bit_length() - 1)
        out.append(tuple(vs))
    return out


def induced_width(scopes: Iterable[Sequence[int]], order: Sequence[int]) -> int:
    """Largest neighbour count met when eliminating ``order`` (the induced width; the
    largest intermediate factor spans width + 1 variables)."""
    return max((c.bit_count() - 1 for c in _elimination_cliques_masks(scopes, order)), default=0)

