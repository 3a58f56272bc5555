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

# A plan that iterates over more table entries than this also tries its own min-weight
# order: at once when it is this large on first use, else when it is used a second time
# (a one-off query would spend more planning than it saves; a repeated one earns it back).
REORDER_COST = 4096
REORDER_FIRST_COST = 65536


def _static(bn) -> tuple:
    """Per-network tables the planner reads (computed once per DAG): ancestor masks,
    family masks, family tuples, per variable the mask of the tables that mention it,
    and the cardinalities."""
    st = bn._cache.get("ve_static")
    if st is None:
        fam = _family_masks(bn)
        famt = [(*ps, i) for i, ps in enumerate(bn.parents_)]
        fac_of = [0] * len(famt)
        for i, f in enumerate(famt):
            for v in f:
                fac_of[v] |= 1 << i
        st = bn._cache["ve_static"] = (_ancestor_masks(bn), fam, famt, fac_of,
                                       [int(c) for c in bn.cardinalities])
    return st


def _bits(m: int) -> list[int]:
    """Set bit positions of ``m``, ascending."""
    out = []
    while m:
        low = m & -m
        out.append(low.bit_length() - 1)
        m ^= low
    return out


def _plan(bn, q: tuple, ev: tuple, heuristic: str) -> dict:
    """Which tables a query ``p(q | ev)`` needs, and the elimination order; cached per
    (query, evidence variables, heuristic) pattern.

    1. Barren nodes (not ancestors of ``q`` or ``ev``) sum to one: dropped.
    2. Slicing the evidence out of the tables cuts the factor graph; only the connected
       component(s) holding ``q`` change the normalised posterior (the rest is a constant,
       as d-separation says). Tables outside it that hold evidence are kept in ``check``
       for a cheap test that the evidence does not contradict a single table.
    3. The order is the whole network's, restricted to the component (no search per
       query); a costly plan also tries a min-weight order of its own (``REORDER_*``).
    """
    plans = bn._cache.setdefault("ve_plans", {})
    key = (q, ev, heuristic)
    got = plans.get(key)
    if got is not None:
        if not got["reordered"] and got["cost"] > REORDER_COST:
            _reorder(got)
        return got
    anc, fam, famt, fac_of, card = _static(bn)
    m = evm = qm = 0
    for v in q:
        m |= anc[v]
        qm |= 1 << v
    for v in ev:
        m |= anc[v]
        evm |= 1 << v
    # grow the query's component of the evidence-cut factor graph, variable by variable
    comp = todo = qm
    inside = 0
    while todo:
        low = todo & -todo
        todo ^= low
        f = fac_of[low.bit_length() - 1] & m & ~inside
        inside |= f
        while f:
            lf = f & -f
            f ^= lf
            new = fam[lf.bit_length() - 1] & ~evm & ~comp
            if new:
                comp |= new
                todo |= new
    em = comp & ~qm
    cvars = _bits(comp)
    local = len(cvars) <= 52
    loc = {v: k for k, v in enumerate(cvars)} if local else {v: v for v in cvars}
    use, lscopes = [], []
    for i in _bits(inside):
        f = famt[i]
        if fam[i] & evm:
            evpos = tuple(v if evm >> v & 1 else None for v in f)
            sc = tuple(loc[v] for v in f if not evm >> v & 1)
        else:
            evpos, sc = None, tuple(loc[v] for v in f)
        use.append((i, evpos, sc))
        lscopes.append(sc)
    check = [(i, tuple(v if evm >> v & 1 else None for v in famt[i]))
             for i in _bits(m & ~inside) if fam[i] & evm]
    glob = _global_order(bn, heuristic)
    n_elim = len(cvars) - len(q)
    if glob is not None and n_elim <= 48:
        order = [loc[v] for v in glob if em >> v & 1]
    else:
        gorder = elimination_order([tuple(cvars[k] for k in sc) if local else sc for sc in lscopes],
                                   _bits(em), bn.cardinalities, heuristic=heuristic)
        order = [loc[v] for v in gorder]
    got = {"use": use, "check": check, "order": order, "q": [loc[v] for v in q], "local": local,
           "steps": None, "final": None, "reordered": True}
    if local:
        lcard = [card[v] for v in cvars]
        got["steps"], got["final"], cost = _symbolic_steps(lscopes, order, lcard)
        got["cost"] = got["global_cost"] = cost
        got["lscopes"], got["lcard"], got["reordered"] = lscopes, lcard, False
        if cost > REORDER_FIRST_COST:
            _reorder(got)
    if len(plans) > 4096:
        plans.clear()
    plans[key] = got
    return got


def _reorder(plan: dict) -> None:
    """The whole-network order can be far from the best one for a pruned graph
    (insurance: intermediate tables of 7 variables); try a min-weight order of the plan's
    own and keep it if it does less einsum work."""
    lscopes, lcard = plan["lscopes"], plan["lcard"]
    alt = elimination_order(lscopes, plan["order"], lcard, heuristic="min_weight")
    steps, final, cost = _symbolic_steps(lscopes, alt, lcard)
    if cost < plan["cost"]:
        plan["order"], plan["steps"], plan["final"], plan["cost"] = alt, steps, final, cost
    plan["reordered"] = True


def _symbolic_steps(scopes: list[tuple], order: Sequence[int], card: Sequence[int]
                    ) -> tuple[list, list, int]:
    """The bucket elimination of ``order`` over factor ``scopes`` (labels < 52), worked out
    once on the scopes alone: ``steps`` of ``(input slots, their subscripts, output
    subscripts)``; the new table goes to the next slot. ``final``: slots left at the end.
    ``cost``: the entries the einsum calls iterate over (output size x eliminated card)."""
    slots = list(scopes)
    masks = []
    where: dict[int, list[int]] = {}
    for k, sc in enumerate(slots):
        m = 0
        for v in sc:
            m |= 1 << v
            if v in where:
                where[v].append(k)
            else:
                where[v] = [k]
        masks.append(m)
    alive = [True] * len(slots)
    steps = []
    cost = 0
    for v in order:
        ks = where.pop(v, None)
        if not ks:
            continue
        idx = [k for k in ks if alive[k]]
        if not idx:
            continue
        om = 0
        for k in idx:
            alive[k] = False
            om |= masks[k]
        om &= ~(1 << v)
        k = len(slots)
        out, c, rest = [], card[v], om
        while rest:  # the output's labels in ascending order, its size, its slot
            low = rest & -rest
            rest ^= low
            u = low.bit_length() - 1
            out.append(u)
            c *= card[u]
            where[u].append(k)
        cost += c
        out = tuple(out)
        steps.append((idx, [slots[j] for j in idx], out))
        slots.append(out)
        masks.append(om)
        alive.append(True)
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
        if heuristic in ("min_fill", "min_size", "min_weight"):  # stops early once too wide
            bn._cache[key] = elimination_order(scopes, range(len(scopes)), bn.cardinalities,
                                               heuristic=heuristic, max_width=max_width)
        else:
            order = elimination_order(scopes, range(len(scopes)), bn.cardinalities, heuristic=heuristic)
            bn._cache[key] = order if induced_width(scopes, order) <= max_width else None
    return bn._cache[key]
