"""Query plans for variable elimination (``pgm.inference.query``).

A plan depends only on the query variables, the evidence *variables* and the heuristic,
so it is worked out once per pattern and cached on the network: which tables take part
(barren nodes and the evidence-cut components without the query are dropped), the
elimination order, and the einsum subscripts of every bucket. Running a plan is then a
few small einsum calls on the evidence-sliced tables.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

try:  # einsum without the Python wrapper: the tables here are small, calls are many
    from numpy._core.multiarray import c_einsum as _c_einsum
except ImportError:  # pragma: no cover - older numpy
    _c_einsum = np.einsum
from .factors import elimination_order, induced_width

# a query whose plan iterates over more table entries than this tries its own order too
REORDER_COST = 4096

def _plan(bn, q: tuple, ev: tuple, heuristic: str) -> dict:
    """Which tables a query ``p(q | ev)`` needs, and the elimination order; cached per
    (query, evidence variables, heuristic) pattern.

    1. Barren nodes (not ancestors of ``q`` or ``ev``) sum to one: dropped.
    2. Slicing the evidence out of the tables cuts the factor graph; only the connected
       component(s) holding ``q`` change the normalised posterior (the rest is a constant,
       as d-separation says). Tables outside it are kept as ``~i`` (negative ids) for a
       cheap check that the evidence does not contradict a single table.
    """
    plans = bn._cache.setdefault("ve_plans", {})
    key = (q, ev, heuristic)
    got = plans.get(key)
    if got is not None:
        return got
    anc = _ancestor_masks(bn)
    m = 0
    for v in (*q, *ev):
        m |= anc[v]
    keep = [i for i in range(m.bit_length()) if m >> i & 1]
    fam = _family_masks(bn)
    evm = 0
    for v in ev:
        evm |= 1 << v
    comp = 0
    for v in q:
        comp |= 1 << v
    qm = comp
    pending = [(i, fam[i] & ~evm) for i in keep]
    pending = [(i, f) for i, f in pending if f]
    inside_set = set()
    grew = True
    while grew:  # grow the query's component of the evidence-cut factor graph
        grew, rest = False, []
        for i, f in pending:
            if f & comp:
                inside_set.add(i)
                if f & ~comp:
                    comp |= f
                    grew = True
            else:
                rest.append((i, f))
        pending = rest
    inside = [i for i in keep if i in inside_set]
    use = [i if i in inside_set else ~i for i in keep]
    scopes = {i: [v for v in (*bn.parents_[i], i) if not evm >> v & 1] for i in inside}
    em = comp & ~qm
    elim = {v for v in range(em.bit_length()) if em >> v & 1}
    glob = _global_order(bn, heuristic)
    if glob is not None and len(elim) <= 48:
        order = [v for v in glob if em >> v & 1]
    else:
        order = elimination_order([tuple(scopes[i]) for i in inside], elim, bn.cardinalities,
                                  heuristic=heuristic)
    comp = sorted(elim | set(q))
    local = len(comp) <= 52
    loc = {v: k for k, v in enumerate(comp)} if local else {v: v for v in comp}
    if local:
        order = [loc[v] for v in order]

    def evpos(i: int):
        if not fam[i] & evm:
            return None
        return tuple(v if evm >> v & 1 else None for v in (*bn.parents_[i], i))

    got = {"use": [(i, evpos(i), tuple(loc[v] for v in scopes[i])) for i in inside],
           "check": [(~i, evpos(~i)) for i in use if i < 0 and fam[~i] & evm],
           "order": order, "q": [loc[v] for v in q], "local": local,
           "steps": None, "final": None}
    if local:
        lscopes = [u[2] for u in got["use"]]
        lcard = [int(bn.cardinalities[v]) for v in comp]
        got["steps"], got["final"], cost = _symbolic_steps(lscopes, order, lcard)
        got["cost"] = got["global_cost"] = cost
        if cost > REORDER_COST:
            # The whole-network order can be far from the best one for this pruned graph
            # (insurance: intermediate tables of 7 variables); a large query is worth a
            # per-query min-weight order, kept if it does less einsum work.
            alt = elimination_order(lscopes, order, lcard, heuristic="min_weight")
            steps, final, alt_cost = _symbolic_steps(lscopes, alt, lcard)
            if alt_cost < cost:
                got["order"], got["steps"], got["final"], got["cost"] = alt, steps, final, alt_cost
    if len(plans) > 4096:
        plans.clear()
    plans[key] = got
    return got


def _symbolic_steps(scopes: list[tuple], order: Sequence[int], card: Sequence[int]
                    ) -> tuple[list, list, int]:
    """The bucket elimination of ``order`` over factor ``scopes`` (labels < 52), worked out
    once on the scopes alone: ``steps`` of ``(input slots, their subscripts, output
    subscripts)``; the new table goes to the next slot. ``final``: slots left at the end.
    ``cost``: the entries the einsum calls iterate over (output size x eliminated card)."""
    slots = list(scopes)
    alive = [True] * len(slots)
    where: dict[int, list[int]] = {}
    for k, sc in enumerate(slots):
        for v in sc:
            where.setdefault(v, []).append(k)
    steps = []
    cost = 0
    for v in order:
        idx = [k for k in where.pop(v, ()) if alive[k]]
        if not idx:
            continue
        for k in idx:
            alive[k] = False
        out = tuple(dict.fromkeys(u for k in idx for u in slots[k] if u != v))
        steps.append((idx, [slots[k] for k in idx], out))
        c = card[v]
        for u in out:
            c *= card[u]
        cost += c
        k = len(slots)
        slots.append(out)
        alive.append(True)
        for u in out:
            where[u].append(k)
    return steps, [(k, slots[k]) for k in range(len(slots)) if alive[k]], cost


def _run_steps(tabs: list[np.ndarray], steps: list, final: list, q: list, *,
               rescale: bool = False) -> np.ndarray:
    for idx, subs, out in steps:
        args: list = []
        for k, sc in zip(idx, subs):
            args += (tabs[k], sc)
        t = _c_einsum(*args, out)
        if rescale and t.size:
            m = t.max()
            if m > 0:
                t = t / m
        tabs.append(t)
    args = []
    for k, sc in final:
        args += (tabs[k], sc)
    return _c_einsum(*args, q) if len(final) <= 8 else np.einsum(*args, q, optimize=True)


def _family_masks(bn) -> list[int]:
    """Per variable, the bit mask of itself and its parents (its table's scope)."""
    fam = bn._cache.get("family_masks")
    if fam is None:
        fam = []
        for i, ps in enumerate(bn.parents_):
            m = 1 << i
            for p in ps:
                m |= 1 << p
            fam.append(m)
        bn._cache["family_masks"] = fam
    return fam


def _ancestor_masks(bn) -> list[int]:
    """Per variable, the bit mask of itself and its ancestors (computed once per DAG)."""
    anc = bn._cache.get("ancestor_masks")
    if anc is None:
        anc = [0] * len(bn.variables_)
        for i in bn.topo_order():
            m = 1 << i
            for p in bn.parents_[i]:
                m |= anc[p]
            anc[i] = m
        bn._cache["ancestor_masks"] = anc
    return anc


def _global_order(bn, heuristic: str, max_width: int = 12) -> list[int] | None:
    """One elimination order of the whole moral graph (computed once per DAG). Restricted
    to a query's variables it is a valid order whose induced width is no larger (a
    subgraph's fill is a subgraph of the whole fill), so small queries skip the per-query
    heuristic; ``None`` when that width exceeds ``max_width`` (then each query orders its
    own pruned graph, which may be far narrower)."""
    key = ("global_order", heuristic)
    if key not in bn._cache:
        scopes = [tuple(ps) + (i,) for i, ps in enumerate(bn.parents_)]
        order = elimination_order(scopes, range(len(scopes)), bn.cardinalities, heuristic=heuristic)
        bn._cache[key] = order if induced_width(scopes, order) <= max_width else None
    return bn._cache[key]
