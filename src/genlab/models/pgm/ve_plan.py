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
# A rank-labelled plan puts off a label whose bucket would iterate over more than this
# many entries, for up to DEFER_PASSES later passes (4x the limit each): a near-free
# repair of the whole-network order (insurance: 10.6k -> 6.1k entries a query).
DEFER_ENTRIES = 1024
DEFER_PASSES = 3


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


def _ranked(bn, heuristic: str):
    """For networks of at most 52 variables with a usable whole-network order: every
    variable relabelled by its position in that order (so a query's elimination order is
    its variables' labels in ascending order, and labels are einsum subscripts), each
    table's subscripts and label mask, per label the mask of the tables holding it, the
    cardinalities by label, and two memos the planner fills as it goes (evidence-sliced
    tables; a label mask's sorted labels and size). ``None`` where that does not apply."""
    key = ("ve_ranked", heuristic)
    if key not in bn._cache:
        d = len(bn.variables_)
        glob = _global_order(bn, heuristic) if d <= 52 else None
        if glob is None:
            bn._cache[key] = None
        else:
            rank = [0] * d
            for r, v in enumerate(glob):
                rank[v] = r
            famt = [(*ps, i) for i, ps in enumerate(bn.parents_)]
            subs = [tuple(rank[v] for v in f) for f in famt]
            fam = [sum(1 << r for r in sc) for sc in subs]
            fac = [0] * d
            for i, sc in enumerate(subs):
                for r in sc:
                    fac[r] |= 1 << i
            card = [int(bn.cardinalities[v]) for v in glob]
            bn._cache[key] = (rank, famt, subs, fam, fac, card, {}, {}, _ancestor_masks(bn))
    return bn._cache[key]


def _plan(bn, q: tuple, ev: tuple, heuristic: str) -> dict:
    """Which tables a query ``p(q | ev)`` needs, and its einsum steps; cached per
    (query, evidence variables, heuristic) pattern.

    1. Barren nodes (not ancestors of ``q`` or ``ev``) sum to one: dropped.
    2. Slicing the evidence out of the tables cuts the factor graph; only the connected
       component(s) holding ``q`` change the normalised posterior (the rest is a constant,
       as d-separation says). Tables outside it that hold evidence are kept in ``check``
       for a cheap test that the evidence does not contradict a single table.
    3. The order is the whole network's, restricted to the component (no search per
       query); a costly plan also tries a min-weight order of its own (``REORDER_*``).

    A plan's tables are slots: ``ids`` (``None``: slot ``i`` is table ``i``) and
    ``sliced`` (slot, table, evidence positions) say how to fill them; each of ``steps``
    (input slots, output subscripts) appends its result as the next slot; ``sub`` holds
    every slot's subscripts and ``final`` the slots left for the last call.
    """
    plans = bn._cache.setdefault("ve_plans", {})
    key = (q, ev, heuristic)
    got = plans.get(key)
    if got is not None:
        if not got["reordered"] and got["cost"] > REORDER_COST:
            _reorder(got)
        return got
    ranked = bn._cache.get(("ve_ranked", heuristic), False)
    if ranked is False:
        ranked = _ranked(bn, heuristic)
    got = _plan_ranked(bn, q, ev, ranked) if ranked is not None else _plan_general(bn, q, ev, heuristic)
    if got["cost"] > REORDER_FIRST_COST and not got["reordered"]:
        _reorder(got)
    if len(plans) > 4096:
        plans.clear()
    plans[key] = got
    return got


def _component(qm: int, evm: int, tables: int, fac: Sequence[int], fam: Sequence[int]
               ) -> tuple[int, int]:
    """Grow the query's component of the evidence-cut factor graph, label by label: from
    the labels in ``qm``, through the tables in ``tables`` (``fac[label]``: the tables
    holding a label; ``fam[table]``: its labels), never through an observed label
    (``evm``). Returns the component's labels and tables as bit masks."""
    comp = todo = qm
    inside = 0
    while todo:
        low = todo & -todo
        todo ^= low
        f = fac[low.bit_length() - 1] & tables & ~inside
        inside |= f
        while f:
            lf = f & -f
            f ^= lf
            new = fam[lf.bit_length() - 1] & ~evm & ~comp
            if new:
                comp |= new
                todo |= new
    return comp, inside


def _plan_ranked(bn, q: tuple, ev: tuple, ranked) -> dict:
    """``_plan`` on a network relabelled by ``_ranked``: the component is grown by bit
    masks, tables keep their ids as slots, and the steps eliminate the component's labels
    in ascending order."""
    rank, famt, subs, fam, fac, card, sliced_memo, out_memo, anc = ranked
    m = evm = qm = evt = 0
    for v in q:
        m |= anc[v]
        qm |= 1 << rank[v]
    for v in ev:
        m |= anc[v]
        r = rank[v]
        evm |= 1 << r
        evt |= fac[r]
    comp, inside = _component(qm, evm, m, fac, fam)
    masks = list(fam)
    sub = list(subs)
    sliced = []
    check = []
    e = evt & m
    while e:
        lf = e & -e
        e ^= lf
        i = lf.bit_length() - 1
        got = sliced_memo.get((i, evm & fam[i]))
        if got is None:  # evidence positions, subscripts and mask of the sliced table
            got = sliced_memo[(i, evm & fam[i])] = (
                tuple([v if evm >> rank[v] & 1 else None for v in famt[i]]),
                tuple([r for r in subs[i] if not evm >> r & 1]), fam[i] & ~evm)
        if inside & lf:
            sliced.append((i, i, got[0]))
            sub[i] = got[1]
            masks[i] = got[2]
        else:
            check.append((i, got[0]))
    # bucket elimination in ascending label order, on the masks alone; a label whose
    # bucket would make a table over DEFER_ENTRIES entries waits for a later pass (up to
    # DEFER_PASSES, the limit growing 4x each), when other eliminations may have shrunk it
    d = len(fam)
    alive = inside
    newer: list[int] = []  # the slots made by steps and not used yet
    steps = []
    cost = 0
    em = comp & ~qm
    limit = DEFER_ENTRIES
    deferred = False
    for last in [False] * DEFER_PASSES + [True]:
        later = 0
        while em:
            low = em & -em
            em ^= low
            v = low.bit_length() - 1
            sm = fac[v] & alive
            if newer:
                for k in newer:
                    if masks[k] & low:
                        sm |= 1 << k
            if not sm:
                continue
            idx = []
            om = 0
            rest = sm
            while rest:
                ls = rest & -rest
                rest ^= ls
                k = ls.bit_length() - 1
                idx.append(k)
                om |= masks[k]
            om ^= low
            got = out_memo.get(om)
            if got is None:  # the output's labels in ascending order and its size
                c = 1
                for u in _bits(om):
                    c *= card[u]
                got = out_memo[om] = (tuple(_bits(om)), c)
            c = got[1] * card[v]
            if c > limit and not last:
                later |= low
                continue
            cost += c
            alive &= ~sm
            for k in idx:
                if k >= d:
                    newer.remove(k)
            k = len(masks)
            steps.append((idx, got[0]))
            masks.append(om)
            sub.append(got[0])
            newer.append(k)
            alive |= 1 << k
        if not later:
            break
        deferred = True
        em = later
        limit *= 4
    return {"ids": None, "sliced": sliced, "check": check, "q": [rank[v] for v in q],
            "steps": steps, "final": _bits(alive), "sub": sub, "cost": cost, "global_cost": cost,
            "order": None, "inside": inside, "card": card, "n_tabs": d, "reordered": False,
            "local": True, "deferred": deferred}


def _plan_general(bn, q: tuple, ev: tuple, heuristic: str) -> dict:
    """``_plan`` for networks over 52 variables or without a usable whole-network order:
    the component's labels are renumbered from 0 (einsum subscripts while it holds at
    most 52 variables; else they stay the variable ids, ``steps`` is ``None`` and the
    query runs the generic elimination of ``pgm.inference`` on ``sub``)."""
    anc, fam, famt, fac_of, card = _static(bn)
    m = evm = qm = 0
    for v in q:
        m |= anc[v]
        qm |= 1 << v
    for v in ev:
        m |= anc[v]
        evm |= 1 << v
    comp, inside = _component(qm, evm, m, fac_of, fam)
    em = comp & ~qm
    cvars = _bits(comp)
    local = len(cvars) <= 52
    loc = {v: k for k, v in enumerate(cvars)} if local else {v: v for v in cvars}
    ids, sliced, sub = [], [], []
    for k, i in enumerate(_bits(inside)):
        f = famt[i]
        ids.append(i)
        if fam[i] & evm:
            sliced.append((k, i, tuple([v if evm >> v & 1 else None for v in f])))
            sub.append(tuple([loc[v] for v in f if not evm >> v & 1]))
        else:
            sub.append(tuple([loc[v] for v in f]))
    check = [(i, tuple([v if evm >> v & 1 else None for v in famt[i]]))
             for i in _bits(m & ~inside) if fam[i] & evm]
    glob = _global_order(bn, heuristic)
    if glob is not None and len(cvars) - len(q) <= 48:
        order = [loc[v] for v in glob if em >> v & 1]
    else:
        gorder = elimination_order([tuple(cvars[k] for k in sc) if local else sc for sc in sub],
                                   _bits(em), bn.cardinalities, heuristic=heuristic)
        order = [loc[v] for v in gorder]
    got = {"ids": ids, "sliced": sliced, "check": check, "order": order,
           "q": [loc[v] for v in q], "local": local, "steps": None, "final": None,
           "sub": sub, "cost": 0, "reordered": True}
    if local:
        lcard = [card[v] for v in cvars]
        steps, final, full, cost = _symbolic_steps(sub, range(len(sub)), order, lcard)
        got.update(steps=steps, final=final, sub=full, cost=cost, global_cost=cost,
                   inside=(1 << len(sub)) - 1, card=lcard, n_tabs=len(sub), reordered=False)
    return got


def _reorder(plan: dict) -> None:
    """The whole-network order can be far from the best one for a pruned graph
    (insurance: intermediate tables of 7 variables); try a min-weight order of the plan's
    own and keep it if it does less einsum work. A rank-labelled plan whose deferrals
    backfired also gets its plain ascending order back if that is cheaper."""
    n, card = plan["n_tabs"], plan["card"]
    slots = _bits(plan["inside"])
    scopes = [plan["sub"][k] for k in slots]
    labels = {v for sc in scopes for v in sc} - set(plan["q"])
    orders = [elimination_order(scopes, sorted(labels), card, heuristic="min_weight")]
    if plan.get("deferred"):
        orders.append(sorted(labels))
    for alt in orders:
        steps, final, full, cost = _symbolic_steps(plan["sub"][:n], slots, alt, card)
        if cost < plan["cost"]:
            plan.update(order=alt, steps=steps, final=final, sub=full, cost=cost)
    plan["reordered"] = True


def _symbolic_steps(sub: list[tuple], slots: Sequence[int], order: Sequence[int],
                    card: Sequence[int]) -> tuple[list, list, list, int]:
    """The bucket elimination of ``order`` over the tables in ``slots`` (indices into
    ``sub``, their subscripts: labels < 52), worked out once on the scopes alone.
    Returns ``steps`` of ``(input slots, output subscripts)``, each result going to the
    next slot after ``len(sub)``; ``final``: the slots left at the end; ``sub`` extended
    with the new slots' subscripts; ``cost``: the entries the einsum calls iterate over
    (output size x eliminated card)."""
    sub = list(sub)
    masks: dict[int, int] = {}
    where: dict[int, list[int]] = {}
    for k in slots:
        m = 0
        for v in sub[k]:
            m |= 1 << v
            if v in where:
                where[v].append(k)
            else:
                where[v] = [k]
        masks[k] = m
    steps = []
    cost = 0
    for v in order:
        ks = where.pop(v, None)
        if not ks:
            continue
        idx = [k for k in ks if k in masks]
        if not idx:
            continue
        om = 0
        for k in idx:
            om |= masks.pop(k)
        om &= ~(1 << v)
        k = len(sub)
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
        steps.append((idx, out))
        sub.append(out)
        masks[k] = om
    return steps, sorted(masks), sub, cost


def _run_steps(tabs: list[np.ndarray], plan: dict, *, rescale: bool = False) -> np.ndarray:
    """Run a plan's einsum steps on its filled table slots (appending each result);
    returns the unnormalised posterior over the plan's query labels."""
    sub = plan["sub"]
    for idx, out in plan["steps"]:
        if len(idx) == 2:  # the common case, without building an argument list
            a, b = idx
            t = _c_einsum(tabs[a], sub[a], tabs[b], sub[b], out)
        else:
            args: list = []
            for k in idx:
                args += (tabs[k], sub[k])
            t = _c_einsum(*args, out)
        if rescale and t.size:
            m = t.max()
            if m > 0:
                t = t / m
        tabs.append(t)
    final, q = plan["final"], plan["q"]
    if len(final) == 1 and list(sub[final[0]]) == q:  # the last step's table is the answer
        return tabs[final[0]]
    args = []
    for k in final:
        args += (tabs[k], sub[k])
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
