"""Discrete Bayesian networks: a DAG and one conditional probability table per node.

The joint distribution factorises as ``p(x) = prod_v p(x_v | x_pa(v))`` (Pearl, 1988;
Koller & Friedman, 2009, ch. 3). A network is read from a BIF file, built from tables
(``from_cpds``) or learned from data (``fit``: structure by hill climbing / Chow-Liu / PC,
then maximum-likelihood or Bayesian parameters).

Storage: variables keep their declared (BIF) or data column order; ``cpds_[i]`` has shape
``(*[card(p) for p in parents_[i]], card(i))`` — the child's axis last, one row per parent
configuration in C order.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import torch

from ...base import CONFIG_FILE, GenerativeModel
from ...errors import DataError, ModelFormatError
from ...capabilities import SAMPLE_WRITERS
from ...registry import MODELS
from .bn_config import BayesNetConfig
from .dag import DagMixin, topological_order  # noqa: F401 (re-exported)
from .data import MISSING, DiscreteTable, as_table

# query_batch(method="auto") uses the junction tree when its largest clique table holds
# at most this many entries (alarm 144, child 216); a row's messages then cost less than
# planning a query. Wider trees go to VE (win95pts 512, insurance 7,200, pigs 177,147).
JT_AUTO_MAX_CLIQUE = 256

@MODELS.register("bayesnet", aliases=("bayesian_network", "bn"))
class BayesianNetwork(DagMixin, GenerativeModel):
    """A discrete Bayesian network under genlab's model contract.

    ``sample`` returns integer state codes, an int64 tensor ``(n, D)`` (columns in
    ``variables_`` order); ``decode``/``write_samples`` turn them into labels. ``log_prob``
    is exact, a float64 tensor ``(N,)``; rows with missing values (``-1``) are
    marginalised by variable elimination. (Both are numpy underneath, shared with the
    tensors zero-copy: ``.numpy()`` gives the array back.)
    """

    model_type = "bayesnet"
    config_class = BayesNetConfig
    log_prob_kind = "exact"
    declared_tags = {"modality": "discrete-table", "self_scoring": True, "trained_by": "estimator",
                     "structure": "dag", "conditions": ("evidence",)}

    def _config_tags(self) -> dict[str, Any]:
        return {"sample_shape": (len(self.variables_),)} if self.variables_ else {}
    fit_hint = "fit(data), read_bif(path) or genlab.load(dir)"

    def __init__(self, config: BayesNetConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.variables_: list[str] = []
        self.states_: list[list[str]] = []
        self.parents_: list[list[int]] = []
        self.cpds_: list[np.ndarray] = []
        self._cache: dict[str, Any] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_cpds(cls, states: Mapping[str, Sequence[str]], parents: Mapping[str, Sequence[str]],
                  cpds: Mapping[str, Any], *, atol: float = 1e-6,
                  config: BayesNetConfig | None = None) -> "BayesianNetwork":
        """Build a network from named tables.

        Args:
            states: ``{variable: [state labels]}``.
            parents: ``{variable: [parent names]}`` (missing = no parents).
            cpds: ``{variable: table}`` of shape ``(*parent cards, card)`` (child axis last).
            atol: each row must sum to one within this tolerance.
        """
        names = list(states)
        missing = [v for v in names if v not in cpds]
        if missing:
            raise ValueError(f"no table for variable(s) {missing}")
        extra = [v for v in list(cpds) + list(parents) if v not in states]
        if extra:
            raise ValueError(f"table/parents given for unknown variable(s) {sorted(set(extra))}")
        par = {v: list(parents.get(v, ())) for v in names}
        for v in names:
            if len(set(par[v])) != len(par[v]) or v in par[v]:
                raise ValueError(f"{v!r}: parents must be distinct and not {v!r} itself")
        topological_order(names, par)  # validates: a cycle is an error
        order = names  # columns keep the declared order; sampling follows ``topo_order``
        pos = {v: i for i, v in enumerate(order)}
        bn = cls(config or BayesNetConfig(structure="fixed"))
        bn.variables_ = order
        bn.states_ = [[str(s) for s in states[v]] for v in order]
        bn.parents_ = [[pos[p] for p in par[v]] for v in order]
        bn.cpds_ = [np.asarray(cpds[v], dtype=np.float64) for v in order]
        bn.validate(atol=atol)
        return bn

    def validate(self, *, atol: float = 1e-6) -> "BayesianNetwork":
        """Check shapes, non-negativity and that every table row sums to one."""
        card = self.cardinalities
        for i, v in enumerate(self.variables_):
            if card[i] < 1 or len(set(self.states_[i])) != card[i]:
                raise ValueError(f"{v!r}: states must be distinct and non-empty: {self.states_[i]}")
            want = tuple(card[p] for p in self.parents_[i]) + (card[i],)
            t = self.cpds_[i]
            if t.shape != want:
                raise ValueError(f"table of {v!r} has shape {t.shape}; parents "
                                 f"{self.parent_names(v)} and {card[i]} states need {want}")
            if not np.isfinite(t).all() or (t < 0).any():
                raise ValueError(f"table of {v!r} has negative or non-finite entries")
            sums = t.reshape(-1, card[i]).sum(1)
            bad = np.abs(sums - 1) > atol
            if bad.any():
                row = int(np.argmax(bad))
                raise ValueError(f"table of {v!r}: row {row} sums to {sums[row]:.10g}, not 1 "
                                 f"(tolerance {atol:g})")
        self._cache.clear()
        return self

    def set_structure(self, names: Sequence[str], states: Sequence[Sequence[str]],
                      parents: Mapping[str, Sequence[str]]) -> None:
        """Set the DAG (topologically re-ordered) with uniform tables."""
        topological_order(list(names), {v: list(parents.get(v, ())) for v in names})
        order = list(names)  # the data's column order
        src = {v: j for j, v in enumerate(names)}
        pos = {v: i for i, v in enumerate(order)}
        self.variables_ = order
        self.states_ = [list(states[src[v]]) for v in order]
        self.parents_ = [[pos[p] for p in parents.get(v, ())] for v in order]
        card = self.cardinalities
        self.cpds_ = [np.full([card[p] for p in ps] + [card[i]], 1.0 / card[i])
                      for i, ps in enumerate(self.parents_)]
        self._cache.clear()

    # ------------------------------------------------------------------ the contract
    def fit(self, data: Any, train: Any = None, *, val: Any = None, run_dir: Any = None,
            resume: bool = False, **options: Any) -> "BayesianNetwork":
        """Learn the structure (per ``config.structure``) and the tables from ``data``.

        Args:
            data: anything ``pgm.data.as_table`` reads (CSV path, dict of columns, integer
                array, ``DiscreteTable``, genlab table ``Dataset``).
            train: ignored (closed-form learning has no optimiser settings); accepted so
                ``train_run`` can call every model alike.
            val, run_dir, resume: accepted for ``train_run``; unused.
        Returns:
            self
        """
        from .learning import fit_parameters
        from .structure import learn_structure

        cfg = self.config
        table = as_table(data, bins=cfg.bins, max_categories=cfg.max_categories,
                         missing="keep" if cfg.missing != "error" else "error", **options) \
            if not isinstance(data, DiscreteTable) else data
        if len(table) == 0:
            raise DataError(f"{table.name}: no rows to learn from")
        if table.has_missing():
            if cfg.missing == "error":
                j = int(np.argmax((table.codes == MISSING).any(0)))
                raise DataError(f"{table.name}: column {table.names[j]!r} has missing values; "
                                "set missing='drop' or missing='em'")
            if cfg.missing == "drop":
                table = table.subset((table.codes != MISSING).all(1))
        if cfg.structure == "fixed":
            self.check_fitted()
            codes = table.align(self.variables_, self.states_)
        else:
            complete = table.subset((table.codes != MISSING).all(1))
            parents = learn_structure(complete, cfg)
            self.set_structure(table.names, table.states, parents)
            codes = table.align(self.variables_, self.states_)
        fit_parameters(self, codes, estimator=cfg.estimator, pseudo_count=cfg.pseudo_count,
                       equivalent_sample_size=cfg.equivalent_sample_size, em_iter=cfg.em_iter)
        self.n_train_ = len(codes)
        return self

    def sample(self, n: int, *, generator: Any = None, evidence: Mapping[str, Any] | None = None,
               method: str = "auto") -> torch.Tensor:
        """``n`` rows of state codes, an int64 tensor ``(n, D)`` (columns in ``variables_`` order).

        Args:
            generator: a seeded ``torch.Generator`` / ``np.random.Generator`` / int seed.
            evidence: ``{variable: state}`` to condition on; ``method`` then chooses
                ``rejection`` or ``gibbs`` (``auto``: rejection while it accepts >= 1 %).
        """
        from .sampling import conditional_sample, forward_sample, make_rng

        self.check_fitted()
        rng = make_rng(generator)
        if evidence:
            codes = conditional_sample(self, n, self.evidence_codes(evidence), rng, method=method)
        else:
            codes = forward_sample(self, n, rng)
        return torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64))

    def log_prob(self, x: Any) -> torch.Tensor:
        """Exact ``log p(row)`` per row, in nats, a float64 tensor ``(N,)``; ``-1`` entries
        are summed out. ``x``: state codes (array or tensor), a ``DiscreteTable``, or a
        CSV path / dict of columns."""
        from .inference import log_evidence

        self.check_fitted()
        codes = self._codes(x)
        out = np.zeros(len(codes))
        complete = (codes != MISSING).all(1)
        if complete.any():
            c = codes[complete]
            lp = np.zeros(len(c))
            for i, ps in enumerate(self.parents_):
                lt = self._log_tables()[i]
                row = self._row_index(c, i)
                lp += lt[row, c[:, i]]
            out[complete] = lp
        for r in np.flatnonzero(~complete):
            ev = {j: int(s) for j, s in enumerate(codes[r]) if s != MISSING}
            out[r] = log_evidence(self, ev)
        return torch.from_numpy(out)

    def _log_tables(self) -> list[np.ndarray]:
        lt = self._cache.get("log_tables")
        if lt is None:
            with np.errstate(divide="ignore"):
                lt = [np.log(t.reshape(-1, t.shape[-1])) for t in self.cpds_]
            self._cache["log_tables"] = lt
        return lt

    def _row_index(self, codes: np.ndarray, i: int) -> np.ndarray:
        """Flat parent-configuration index of node ``i`` for each row of ``codes``."""
        row = np.zeros(len(codes), dtype=np.int64)
        card = self.cardinalities
        for p in self.parents_[i]:
            row *= card[p]
            row += codes[:, p]
        return row

    def _codes(self, x: Any) -> np.ndarray:
        if isinstance(x, DiscreteTable):
            return x.align(self.variables_, self.states_)
        if isinstance(x, (str, Path, dict)):
            return as_table(x, missing="keep").align(self.variables_, self.states_)
        a = x.numpy() if torch.is_tensor(x) else np.asarray(x)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or a.shape[1] != len(self.variables_):
            raise DataError(f"expected state codes of shape (N, {len(self.variables_)}), got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.mod(a, 1) == 0):
                raise DataError("state codes must be integers")
            a = a.astype(np.int64)
        card = np.array(self.cardinalities)
        bad = (a < MISSING) | (a >= card)
        if bad.any():
            r, j = np.argwhere(bad)[0]
            raise DataError(f"row {r}: {self.variables_[j]!r} has code {a[r, j]}, but it has "
                            f"{card[j]} states (use -1 for missing)")
        return a

    # ------------------------------------------------------------------ inference shortcuts
    def query(self, variables: Sequence[str] | str, evidence: Mapping[str, Any] | None = None,
              *, joint: bool = True, elimination: str = "min_fill") -> Any:
        """Exact posterior by variable elimination (see ``pgm.inference.query``): a
        ``Posterior``, the probability array that also names its variables and states
        (``p["HIGH"]``, ``p.to_dict()``, a labelled repr)."""
        from .inference import query

        return query(self, variables, evidence, joint=joint, elimination=elimination)

    def query_batch(self, variables: Sequence[str], evidence: Sequence[Mapping[str, Any] | None], *,
                    method: str = "auto") -> list[np.ndarray]:
        """``p(variables[r] | evidence[r])`` for each ``r``: many single-variable queries.

        Args:
            variables: one query variable per row.
            evidence: one evidence dict (or ``None``) per row.
            method: ``"ve"`` (variable elimination per query, pruned and planned),
                ``"jt"`` (the junction tree: each row's evidence passed as messages
                towards its query's clique, all rows at once per tree edge) or
                ``"auto"``: the junction tree when its cliques are small (at most
                ``JT_AUTO_MAX_CLIQUE`` entries in the largest, so a row's messages cost
                less than planning a query), else VE — on pigs or link the tree's cliques
                hold 10^5-10^7 entries.
        Returns:
            a list of posterior vectors, each a ``Posterior`` (see ``query``).
        """
        if len(variables) != len(evidence):
            raise ValueError(f"{len(variables)} query variables but {len(evidence)} evidence sets")
        if method not in ("auto", "ve", "jt"):
            raise ValueError(f"method must be 'auto', 've' or 'jt', got {method!r}")
        evidence = [e or {} for e in evidence]
        if method == "auto":
            method = "jt" if len(variables) > 1 and self._small_junction_tree() else "ve"
        if method == "ve":
            return [self.query(v, e) for v, e in zip(variables, evidence)]
        return self.junction_tree().query_batch(list(variables), evidence)

    def junction_tree(self):
        """The network's ``JunctionTree`` (built once, cached until the tables change)."""
        self.check_fitted()
        jt = self._cache.get("junction_tree")
        if jt is None:
            from .junction import JunctionTree

            jt = self._cache["junction_tree"] = JunctionTree(self)
        return jt

    def _small_junction_tree(self) -> bool:
        """Whether the junction tree's largest clique holds at most ``JT_AUTO_MAX_CLIQUE``
        entries (worked out from the whole-network elimination order, without building it)."""
        jt = self._cache.get("junction_tree")
        if jt is not None:
            return jt.max_clique <= JT_AUTO_MAX_CLIQUE
        if "jt_max_clique" not in self._cache:
            from .factors import elimination_cliques
            from .ve_plan import _global_order

            order = _global_order(self, "min_fill")
            if order is None:  # induced width > 12: far too wide
                self._cache["jt_max_clique"] = None
            else:
                card = self.cardinalities
                self._cache["jt_max_clique"] = max(
                    int(np.prod([card[v] for v in c])) for c in elimination_cliques([f for f, _ in self.factors()], order))
        big = self._cache["jt_max_clique"]
        return big is not None and big <= JT_AUTO_MAX_CLIQUE

    def map_query(self, variables: Sequence[str] | None = None,
                  evidence: Mapping[str, Any] | None = None) -> dict[str, str]:
        from .inference import map_query

        return map_query(self, variables, evidence)

    def decode(self, x: Any) -> DiscreteTable:
        """State codes -> a ``DiscreteTable`` with this network's names and labels."""
        return DiscreteTable(np.asarray(x), list(self.variables_), [list(s) for s in self.states_],
                             name="samples")

    def write_samples(self, x: Any, path: str | os.PathLike) -> bool:
        """Write samples as CSV (column names, state labels); other suffixes: ``False``."""
        path = Path(path)
        if path.suffix.lower() != ".csv":
            return False
        self.decode(x).to_csv(path)
        return True

    def evaluate(self, test: Any) -> dict[str, float]:
        """Test metrics for ``train_run``: mean NLL (nats/row, bits/variable) and the mean
        total-variation distance between test and model marginals."""
        from .inference import marginals

        codes = self._codes(test if not hasattr(test, "kind") or test.kind == "discrete"
                            else as_table(test))
        lp = self.log_prob(codes).numpy()
        out = {"n_test": float(len(codes)), "nll_nats": float(-lp.mean()),
               "bits_per_dim": float(-lp.mean() / (len(self.variables_) * np.log(2)))}
        tvd = []
        for j, m in enumerate(marginals(self)):
            c = codes[:, j][codes[:, j] != MISSING]
            emp = np.bincount(c, minlength=len(m)) / max(len(c), 1)
            tvd.append(0.5 * np.abs(emp - m).sum())
        out["marginal_tvd"] = float(np.mean(tvd))
        return out

    # ------------------------------------------------------------------ save / load
    def _saved_tensors(self) -> dict[str, np.ndarray]:
        """The tables as float64 arrays ``cpd.<i>`` (``config.json`` holds the graph)."""
        return {f"cpd.{i}": np.ascontiguousarray(t) for i, t in enumerate(self.cpds_)}

    def _saved_extra(self) -> dict[str, Any]:
        return {"network": {"variables": self.variables_, "states": self.states_,
                            "parents": [[self.variables_[p] for p in ps] for ps in self.parents_]}}

    @classmethod
    def _from_saved(cls, config: BayesNetConfig, header: dict[str, Any], weights: Any) -> "BayesianNetwork":
        folder = Path(header["_dir"])
        try:
            net = header["network"]
            names, states = list(net["variables"]), net["states"]
            parents = dict(zip(names, net["parents"]))
            card = dict(zip(names, (len(s) for s in states)))
            expected = {f"cpd.{i}": (*(card[p] for p in parents[v]), card[v]) for i, v in enumerate(names)}
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFormatError(f"{folder / CONFIG_FILE}: invalid bayesnet network: {e!r}") from None
        arrays = weights.arrays(expected)
        try:
            cpds = {v: arrays[f"cpd.{i}"] for i, v in enumerate(names)}
            return cls.from_cpds(dict(zip(names, states)), parents, cpds, atol=1e-4, config=config)
        except (KeyError, ValueError) as e:
            raise ModelFormatError(f"{weights.path} does not match {CONFIG_FILE} ({e})") from None

    @staticmethod
    def load_splits(path: str | os.PathLike, **options: Any) -> dict[str, DiscreteTable]:
        """Train/val/test splits of a CSV file as categorical tables (for ``train_run``)."""
        from .data import load_splits

        return load_splits(path, **options)

    def __repr__(self) -> str:
        if not self.variables_:
            return f"BayesianNetwork(unfitted, {self.config})"
        return (f"BayesianNetwork({len(self.variables_)} variables, {len(self.edges())} edges, "
                f"{sum(t.size for t in self.cpds_)} table entries)")


@SAMPLE_WRITERS.register(".csv", requires={"structure": "dag"}, order=10)
def _labelled_csv_writer(job: Any) -> None:
    """``genlab sample RUN -o s.csv`` for a Bayesian network: a header of variable names,
    then one row of state labels per sample, streamed chunk by chunk."""
    import csv

    model = job.model
    with job.replacing() as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(list(model.variables_))
        for x in job.chunks():
            w.writerows(model.decode(x).labels())
