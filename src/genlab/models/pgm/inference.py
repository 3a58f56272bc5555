"""Exact inference in Bayesian networks by variable elimination (Zhang & Poole, 1994;
Koller & Friedman, 2009, ch. 9) and max-product elimination for MAP / MPE (ch. 13).

Each query first drops every node that is not an ancestor of the query or evidence
variables (barren nodes sum to one), slices the evidence out of the tables, keeps only
the connected component of the query in what is left (the rest is a constant: the
d-separated part), then eliminates in a greedy min-fill (or other) order: the network's
one global order restricted to the component when that is narrow, else the component's
own. The plan (tables, order, einsum subscripts of every step) depends only on the query
and evidence *variables*, so it is cached per pattern; the numbers are a few small
unoptimised einsum calls. ``query`` rescales only if a product underflows;
``log_evidence`` rescales every step and keeps the scales in log space, so tiny evidence
probabilities on large networks neither underflow nor lose precision.

Evidence of probability zero is an error when it shows in the query's component or
contradicts a single table; a contradiction spread over several tables outside the
component (d-separated from the query) is not detected by ``query``.

For many queries under the same or different evidence, ``JunctionTree``
(``pgm.junction``) calibrates once and answers every marginal.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .factors import Factor, elimination_order, product, reduce
from .ve_plan import _plan, _run_steps


_ALL = slice(None)


def _query_vars(bn, variables: Sequence[str] | str) -> list[int]:
    if isinstance(variables, str):
        return [bn.index(variables)]
    q = [bn.index(v) for v in variables]
    if len(set(q)) != len(q):
        raise ValueError(f"query variables repeat: {list(variables)}")
    return q


def _einsum_product(factors: Sequence[Factor], keep: Sequence[int]) -> np.ndarray:
    """Sum-product of small factors in one unoptimised einsum call: no contraction-path
    search, which costs more than the arithmetic on the small buckets of a pruned query."""
    label: dict[int, int] = {}
    args: list = []
    for vs, t in factors:
        args += [t, [label.setdefault(v, len(label)) for v in vs]]
    args.append([label.setdefault(v, len(label)) for v in keep])
    if len(label) > 52:
        return product(factors, keep)[1]
    return np.einsum(*args, optimize=False)


def _sum_eliminate(factors: list[Factor], order: Sequence[int]) -> list[Factor]:
    """Sum-product elimination for single queries: a variable -> factor index keeps each
    step's bookkeeping proportional to its bucket; tables are rescaled only when they
    drift towards under/overflow (the posterior is normalised at the end)."""
    facs: list = list(factors)
    where: dict[int, list[int]] = {}
    for k, (vs, _) in enumerate(facs):
        for v in vs:
            where.setdefault(v, []).append(k)
    for v in order:
        idx = where.pop(v, None)
        if not idx:
            continue
        inv = []
        for k in idx:
            f = facs[k]
            if f is None:
                continue
            facs[k] = None
            inv.append(f)
        if not inv:
            continue
        scope = tuple(dict.fromkeys(u for vs, _ in inv for u in vs if u != v))
        t = _einsum_product(inv, scope) if len(inv) <= 8 else product(inv, scope)[1]
        if t.size:
            m = t.max()
            if 0 < m < 1e-100 or m > 1e100:
                t = t / m
        k = len(facs)
        facs.append((scope, t))
        for u in scope:
            where[u].append(k)
    return [f for f in facs if f is not None]


def _eliminate(factors: list[Factor], order: Sequence[int], *, op: str = "sum",
               fast: bool = False) -> tuple[list[Factor], float, list]:
    """Eliminate ``order`` from ``factors``; returns the remaining factors, the log of the
    scales divided out, and (for ``op='max'``) the argmax trace."""
    log_scale = 0.0
    trace = []
    buckets = list(factors)
    for v in order:
        inv = [f for f in buckets if v in f[0]]
        if not inv:
            continue
        buckets = [f for f in buckets if v not in f[0]]
        scope = tuple(dict.fromkeys(u for vs, _ in inv for u in vs if u != v))
        if op == "max":
            full_scope = scope + (v,)
            _, full = product(inv, full_scope, op="max")
            trace.append((v, scope, full.argmax(-1)))
            t = full.max(-1)
        elif fast and len(inv) <= 8:
            t = _einsum_product(inv, scope)
        else:
            _, t = product(inv, scope)
        m = float(t.max()) if t.size else 0.0
        if m > 0:  # keep factors near 1; the scale goes to log space
            t = t / m
            log_scale += float(np.log(m))
        buckets.append((scope, t))
    return buckets, log_scale, trace


def query(bn, variables: Sequence[str] | str, evidence: Mapping[str, Any] | None = None, *,
          joint: bool = True, elimination: str = "min_fill") -> Any:
    """Posterior ``p(variables | evidence)``.

    Args:
        bn: a ``BayesianNetwork``.
        variables: a name or list of names.
        evidence: ``{name: state label or index}``.
        joint: return the joint table (axes in the order of ``variables``); else a dict
            ``{name: marginal vector}``.
        elimination: ``min_fill`` (default), ``weighted_min_fill``, ``min_size``, ``min_weight``.
    Returns:
        an ndarray of shape ``(card(v) for v in variables)`` summing to one, or a dict.
    Raises:
        ValueError: unknown variable or state, a variable both queried and observed, or
            evidence of probability zero.
    """
    bn.check_fitted()
    q = _query_vars(bn, variables)
    ev = bn.evidence_codes(evidence)
    both = [bn.variables_[v] for v in q if v in ev]
    if both:
        raise ValueError(f"{both} are both queried and observed")
    if not joint:
        return {bn.variables_[v]: query(bn, [bn.variables_[v]], evidence, elimination=elimination)
                for v in q}
    plan = _plan(bn, tuple(q), tuple(sorted(ev)), elimination)
    cpds = bn.cpds_
    for i, evpos in plan["check"]:
        if not cpds[i][tuple([_ALL if v is None else ev[v] for v in evpos])].any():
            raise ValueError(f"the evidence {dict(evidence or {})} has probability zero")
    tabs = list(cpds) if plan["ids"] is None else [cpds[i] for i in plan["ids"]]
    for k, i, evpos in plan["sliced"]:
        tabs[k] = cpds[i][tuple([_ALL if v is None else ev[v] for v in evpos])]
    if plan["steps"] is not None:  # a precomputed sequence of small einsum calls
        t = _run_steps(tabs, plan)
        z = t.sum()
        if not z > 0:  # underflow, or evidence of probability zero: rescale each step
            del tabs[plan["n_tabs"]:]
            t = _run_steps(tabs, plan, rescale=True)
            z = t.sum()
    else:
        rest = _sum_eliminate(list(zip(plan["sub"], tabs)), plan["order"])  # ids as labels
        t = _einsum_product(rest, q) if len(rest) <= 8 else product(rest, q)[1]
        z = t.sum()
    if not z > 0:
        raise ValueError(f"the evidence {dict(evidence or {})} has probability zero")
    return t / z


def log_evidence(bn, evidence: Mapping[Any, Any] | None, *, elimination: str = "min_fill") -> float:
    """``log p(evidence)``; keys may be names or variable ids."""
    ev = {k if isinstance(k, (int, np.integer)) else bn.index(k): v
          for k, v in (evidence or {}).items()}
    ev = {int(k): (int(v) if isinstance(v, (int, np.integer)) else bn.state_index(bn.variables_[k], v))
          for k, v in ev.items()}
    if not ev:
        return 0.0
    keep = bn.ancestors(list(ev))
    factors = [reduce((tuple(bn.parents_[i]) + (i,), bn.cpds_[i]), ev) for i in sorted(keep)]
    elim = keep - set(ev)
    order = elimination_order([f[0] for f in factors], elim, bn.cardinalities,
                              heuristic=elimination)
    rest, log_scale, _ = _eliminate(factors, order)
    total = log_scale
    for _, t in rest:
        s = float(np.sum(t))
        total += np.log(s) if s > 0 else -np.inf
    return float(total)


def map_query(bn, variables: Sequence[str] | None = None,
              evidence: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Most probable assignment.

    ``variables=None``: the MPE over every unobserved variable, by max-product elimination
    with a trace-back. A list: the MAP of those variables with the others summed out
    (their joint posterior's argmax; exponential in ``len(variables)``).
    Returns ``{name: state label}``.
    """
    bn.check_fitted()
    ev = bn.evidence_codes(evidence)
    if variables is not None:
        q = _query_vars(bn, variables)
        t = query(bn, [bn.variables_[v] for v in q], evidence)
        idx = np.unravel_index(int(np.argmax(t)), t.shape)
        return {bn.variables_[v]: bn.states_[v][k] for v, k in zip(q, idx)}
    factors = [reduce(f, ev) for f in bn.factors()]
    free = [i for i in range(len(bn.variables_)) if i not in ev]
    order = elimination_order([f[0] for f in factors], free, bn.cardinalities)
    rest, _, trace = _eliminate(factors, order, op="max")
    if np.prod([float(np.max(t)) for _, t in rest]) <= 0:
        raise ValueError(f"the evidence {dict(evidence or {})} has probability zero")
    assign = dict(ev)
    for v, scope, arg in reversed(trace):
        assign[v] = int(arg[tuple(assign[u] for u in scope)])
    return {bn.variables_[v]: bn.states_[v][assign[v]] for v in free}


def marginals(bn, evidence: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """Every variable's posterior marginal (junction tree, one calibration)."""
    from .junction import JunctionTree

    jt = JunctionTree(bn)
    return jt.marginals(evidence)


def brute_force_joint(bn) -> np.ndarray:
    """The full joint table (axes in ``variables_`` order) — for tests on small networks."""
    d = len(bn.variables_)
    if np.prod(bn.cardinalities) > 2**22:
        raise ValueError("the joint table is too large for brute force")
    _, t = product(bn.factors(), tuple(range(d))) if d <= 52 else (None, None)
    return t
