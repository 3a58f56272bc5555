"""The DAG side of a Bayesian network: topological order (with cycle reporting) and the
structure look-ups (``index``, parents, children, ancestors, evidence codes) that
``BayesianNetwork`` inherits from ``DagMixin``."""
from __future__ import annotations

import heapq
from typing import Any, Mapping, Sequence

import numpy as np



def topological_order(names: Sequence[str], parents: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm (ties in the given order); a cycle is a ``ValueError`` naming it."""
    for v in names:
        for p in parents.get(v, ()):
            if p not in parents and p not in names:
                raise ValueError(f"{v!r} has parent {p!r}, which is not a variable")
    indeg = {v: len(set(parents.get(v, ()))) for v in names}
    children: dict[str, list[str]] = {v: [] for v in names}
    for v in names:
        for p in parents.get(v, ()):
            children[p].append(v)
    rank = {v: k for k, v in enumerate(names)}
    ready = [(rank[v], v) for v in names if indeg[v] == 0]
    heapq.heapify(ready)  # smallest original position first: a sorted input stays as is
    order = []
    while ready:
        _, v = heapq.heappop(ready)
        order.append(v)
        for c in children[v]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(ready, (rank[c], c))
    if len(order) < len(names):
        left = {v for v in names if v not in set(order)}
        v = next(iter(sorted(left)))  # walk parents inside the leftover set to print a cycle
        path = [v]
        while True:
            v = next(p for p in parents[v] if p in left)
            if v in path:
                cyc = path[path.index(v):] + [v]
                raise ValueError("the graph has a cycle: " + " <- ".join(cyc))
            path.append(v)
    return order


class DagMixin:
    """Structure access over ``variables_``, ``states_``, ``parents_``, ``cpds_`` and the
    per-DAG ``_cache``."""

    variables_: list[str]
    states_: list[list[str]]
    parents_: list[list[int]]
    cpds_: list[np.ndarray]
    _cache: dict[str, Any]

    @property
    def fitted(self) -> bool:
        """Whether the network has a structure and tables (``check_fitted`` reads it)."""
        return bool(self.variables_)

    @property
    def cardinalities(self) -> list[int]:
        return [len(s) for s in self.states_]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.variables_),)

    def index(self, name: str) -> int:
        pos = self._cache.get("pos")
        if pos is None:
            pos = self._cache["pos"] = {v: i for i, v in enumerate(self.variables_)}
        if name not in pos:
            import difflib

            close = difflib.get_close_matches(str(name), self.variables_, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown variable {name!r}{hint}")
        return pos[name]

    def parent_names(self, name: str) -> list[str]:
        return [self.variables_[p] for p in self.parents_[self.index(name)]]

    def edges(self) -> list[tuple[str, str]]:
        return [(self.variables_[p], v) for i, v in enumerate(self.variables_)
                for p in self.parents_[i]]

    def topo_order(self) -> list[int]:
        """Variable ids, parents before children (ancestral sampling follows it)."""
        t = self._cache.get("topo")
        if t is None:
            names = topological_order(self.variables_, {v: [self.variables_[p] for p in self.parents_[i]]
                                                          for i, v in enumerate(self.variables_)})
            t = self._cache["topo"] = [self.index(v) for v in names]
        return t

    def children(self) -> list[list[int]]:
        ch = self._cache.get("children")
        if ch is None:
            ch = [[] for _ in self.variables_]
            for i, ps in enumerate(self.parents_):
                for p in ps:
                    ch[p].append(i)
            self._cache["children"] = ch
        return ch

    def cpd(self, name: str) -> np.ndarray:
        return self.cpds_[self.index(name)]

    def state_index(self, name: str, state: Any) -> int:
        """Index of ``state`` (a label or an integer index) of variable ``name``."""
        i = self.index(name)
        st = self.states_[i]
        if isinstance(state, (int, np.integer)) and not isinstance(state, bool) and str(state) not in st:
            if 0 <= state < len(st):
                return int(state)
        elif str(state) in st:
            return st.index(str(state))
        raise ValueError(f"variable {name!r} has no state {state!r} (states: {st})")

    def evidence_codes(self, evidence: Mapping[str, Any] | None) -> dict[int, int]:
        """``{name: label or index}`` -> ``{variable id: state index}`` with clear errors."""
        if not evidence:
            return {}
        pos, spos = self._cache.get("pos"), self._cache.get("state_pos")
        if pos is None or spos is None:
            pos = self._cache["pos"] = {v: i for i, v in enumerate(self.variables_)}
            spos = self._cache["state_pos"] = [{s: k for k, s in reversed(list(enumerate(st)))}
                                                for st in self.states_]
        out = {}
        for k, s in evidence.items():
            i = pos.get(k) if isinstance(k, str) else None
            j = spos[i].get(s) if i is not None and isinstance(s, str) else None
            out[self.index(k) if i is None else i] = self.state_index(k, s) if j is None else j
        return out

    def factors(self) -> list[tuple[tuple[int, ...], np.ndarray]]:
        return [(tuple(self.parents_[i]) + (i,), self.cpds_[i]) for i in range(len(self.cpds_))]

    def ancestors(self, nodes: Sequence[int]) -> set[int]:
        seen, stack = set(), list(nodes)
        while stack:
            v = stack.pop()
            if v not in seen:
                seen.add(v)
                stack.extend(self.parents_[v])
        return seen
