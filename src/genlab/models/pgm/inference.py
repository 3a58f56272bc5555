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


class Posterior(np.ndarray):
    """A posterior table that names its variables and their states.

    It is the float64 ``ndarray`` a query always returned (axes in the order of
    ``variables``, summing to one), so indexing, arithmetic and comparisons work as on any
    array; it also carries ``variables`` (names), ``states`` (one tuple of state labels
    per axis) and ``evidence`` (``{name: state label}``), accepts state labels as indices
    (``p["HIGH"]``, or ``p["LOW", "HIGH"]`` for a joint), and has ``to_dict()`` and a
    readable repr, like pgmpy's ``DiscreteFactor``::

        >>> p = bn.query("HR", {"BP": "LOW"})
        >>> p
        p(HR | BP=LOW)
          HR=LOW     0.02291
          HR=NORMAL  0.1337
          HR=HIGH    0.8434
        >>> p["HIGH"], p.to_dict(), p.argmax()

    Arrays derived from it keep the labels only where they surely still fit: copies,
    pickles and elementwise arithmetic (``2 * p``, ``np.log(p)``) keep them; reductions
    give plain numbers, and views (slices, transposes, reshapes) carry no labels (their
    repr is an ``ndarray``'s). The labels are looked up from the network on first use,
    so answering a query costs well under a microsecond more than a bare array.
    """

    MAX_ROWS = 20  # rows shown by repr; the rest are counted

    def __new__(cls, table: Any, variables: Sequence[str], states: Sequence[Sequence[str]],
                evidence: Mapping[str, str] | None = None) -> "Posterior":
        obj = np.asarray(table).view(cls)
        obj.__dict__["_labels"] = (tuple(variables), tuple(tuple(s) for s in states), dict(evidence or {}))
        if not obj._labelled():
            raise ValueError(f"a posterior of shape {obj.shape} cannot carry labels for "
                             f"{list(variables)} with {[len(s) for s in states]} states")
        return obj

    @classmethod
    def _lazy(cls, table: np.ndarray, bn: Any, q: Sequence[int], ev: Mapping[int, int]) -> "Posterior":
        obj = table.view(cls)
        obj.__dict__["_src"] = (bn, q, ev)  # resolved into _labels on first use
        return obj

    # views get a fresh __dict__ (no __array_finalize__ copies it): a slice, transpose or
    # reshape may reorder the cells, so it carries no labels
    def _resolved(self) -> tuple | None:
        d = self.__dict__
        lab = d.get("_labels")
        if lab is None and "_src" in d:
            bn, q, ev = d.pop("_src")
            lab = d["_labels"] = (tuple(bn.variables_[v] for v in q), tuple(tuple(bn.states_[v]) for v in q),
                                  {bn.variables_[v]: bn.states_[v][c] for v, c in ev.items()})
        return lab

    def _labelled(self) -> bool:
        lab = self._resolved()
        return (lab is not None and len(lab[0]) == self.ndim == len(lab[1])
                and all(len(labels) == n for labels, n in zip(lab[1], self.shape)))

    @property
    def variables(self) -> tuple[str, ...]:
        """The query variables, one per axis (``()`` on an unlabelled view)."""
        return self._resolved()[0] if self._labelled() else ()

    @property
    def states(self) -> tuple[tuple[str, ...], ...]:
        """Each axis's state labels, in index order."""
        return self._resolved()[1] if self._labelled() else ()

    @property
    def evidence(self) -> dict[str, str]:
        """The evidence the posterior is conditioned on, ``{name: state label}``."""
        return dict(self._resolved()[2]) if self._labelled() else {}

    def _with_labels_of(self, other: "Posterior") -> "Posterior":
        if other._labelled():
            v, s, e = other._resolved()
            self.__dict__["_labels"] = (v, s, dict(e))
        return self

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        if return_scalar or array.ndim == 0:
            return array[()]  # a reduction: a plain number
        if array.shape != self.shape or not self._labelled():
            return array.view(np.ndarray)
        return array.view(type(self))._with_labels_of(self)  # elementwise: the same cells

    def copy(self, order: str = "C") -> "Posterior":
        return super().copy(order)._with_labels_of(self)

    def __copy__(self) -> "Posterior":
        return self.copy()

    def __deepcopy__(self, memo: Any) -> "Posterior":
        return self.copy()

    def __reduce__(self):
        fn, args, state = super().__reduce__()
        return fn, args, (state, self._resolved() if self._labelled() else None)

    def __setstate__(self, state: Any) -> None:
        base, labels = state
        super().__setstate__(base)
        if labels is not None:
            self.__dict__["_labels"] = labels

    # ------------------------------------------------------------------ labels
    def _codes(self, key: Any) -> tuple[int, ...]:
        labels = (key,) if isinstance(key, str) else key
        variables, states, _ = self._resolved()
        if len(labels) > self.ndim:
            raise IndexError(f"{len(labels)} state labels for a posterior over {list(variables)}")
        out = []
        for name, names, label in zip(variables, states, labels):
            if label not in names:
                raise KeyError(f"{name!r} has no state {label!r}; its states: {list(names)}")
            out.append(names.index(label))
        return tuple(out)

    def __getitem__(self, key: Any) -> Any:
        if (isinstance(key, str) or (isinstance(key, tuple) and key and all(isinstance(k, str) for k in key))) \
                and self._labelled():
            key = self._codes(key)
            got = np.ndarray.__getitem__(self, key)
            return float(got) if len(key) == self.ndim else got
        return np.ndarray.__getitem__(self, key)

    def to_dict(self) -> dict[Any, float]:
        """``{state: probability}`` for one variable, ``{(state, state, ...): probability}``
        for a joint (keys in the order of ``variables``)."""
        if not self._labelled():
            raise ValueError("this array no longer carries its variables' states")
        states = self.states
        flat = np.asarray(self).ravel()
        if self.ndim == 1:
            return {s: float(p) for s, p in zip(states[0], flat)}
        return {tuple(states[a][i] for a, i in enumerate(idx)): float(p)
                for idx, p in zip(np.ndindex(*self.shape), flat)}

    def __repr__(self) -> str:
        if not self._labelled() or self.dtype.kind != "f":
            return repr(np.asarray(self))
        variables, states, evidence = self._resolved()
        given = ", ".join(f"{k}={v}" for k, v in evidence.items())
        head = f"p({', '.join(variables)}{' | ' + given if given else ''})"
        cells = []
        for idx, p in zip(np.ndindex(*self.shape), np.asarray(self).ravel()):
            if len(cells) == self.MAX_ROWS:
                break
            cells.append((", ".join(f"{variables[a]}={states[a][i]}" for a, i in enumerate(idx)), float(p)))
        width = max(len(c) for c, _ in cells)
        lines = [head] + [f"  {c:<{width}}  {p:.4g}" for c, p in cells]
        if self.size > len(cells):
            lines.append(f"  ... {self.size - len(cells)} more (to_dict() has them all)")
        return "\n".join(lines)

    __str__ = __repr__


def labelled(bn, table: np.ndarray, q: Sequence[int], ev: Mapping[int, int]) -> Posterior:
    """``table`` (axes ``q``, variable ids of ``bn``) as a ``Posterior`` given evidence codes
    ``ev`` (``{variable id: state index}``); the labels are looked up when first used."""
    return Posterior._lazy(table, bn, q, ev)


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
        a ``Posterior`` (an ndarray of shape ``(card(v) for v in variables)`` summing to
        one that also names its variables and states), or a dict of them.
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
    return labelled(bn, t / z, q, ev)


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
