"""Report figures for Bayesian-network runs: the learned DAG, real vs synthetic marginals,
and pairwise association (Cramér's V) of real and synthetic data side by side.

Pure matplotlib on an Agg canvas (no graphviz binary): the DAG is laid out in layers by
topological depth (longest path from a root), nodes spread evenly in each layer in an
order that follows their parents' mean position, one arrow per edge.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .figures import _figure, _save_figure

MAX_MARGINALS = 12
MAX_ASSOC = 30
MAX_LABELLED_NODES = 80


def dag_layout(parents: list[list[int]]) -> np.ndarray:
    """``(D, 2)`` positions: y = -depth (roots on top), x in [0, 1] within each layer."""
    d = len(parents)
    depth = [-1] * d
    todo = list(range(d))
    while todo:  # parents are placed before their children (the graph is acyclic)
        left = []
        for i in todo:
            if all(depth[p] >= 0 for p in parents[i]):
                depth[i] = 1 + max((depth[p] for p in parents[i]), default=-1)
            else:
                left.append(i)
        if len(left) == len(todo):
            raise ValueError("the graph has a cycle")
        todo = left
    pos = np.zeros((d, 2))
    for layer in range(max(depth, default=-1) + 1):
        nodes = [i for i in range(d) if depth[i] == layer]
        key = [np.mean([pos[p, 0] for p in parents[i]]) if parents[i] else k / max(len(nodes), 1)
               for k, i in enumerate(nodes)]
        nodes = [i for _, i in sorted(zip(key, nodes))]
        for k, i in enumerate(nodes):
            pos[i] = ((k + 0.5) / len(nodes), -layer)
    return pos


def plot_dag(names: list[str], parents: list[list[int]], path: str | Path) -> Path:
    pos = dag_layout(parents)
    d = len(names)
    n_layers = int(-pos[:, 1].min()) + 1 if d else 1
    widest = max((int(np.sum(pos[:, 1] == -k)) for k in range(n_layers)), default=1)
    fig = _figure(min(18, max(6, 1.3 * widest)), min(14, max(3, 1.1 * n_layers)))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    labelled = d <= MAX_LABELLED_NODES
    for i, ps in enumerate(parents):
        for p in ps:
            ax.annotate("", xy=pos[i], xytext=pos[p],
                        arrowprops=dict(arrowstyle="-|>", color="0.45", lw=0.8,
                                        shrinkA=9 if labelled else 3, shrinkB=9 if labelled else 3))
    if labelled:
        size = 7 if d > 30 else 9
        for i, v in enumerate(names):
            ax.text(pos[i, 0], pos[i, 1], v, ha="center", va="center", fontsize=size,
                    bbox=dict(boxstyle="round,pad=0.25", fc="#dbe9f6", ec="#3b6ea5", lw=0.8))
    else:
        ax.scatter(pos[:, 0], pos[:, 1], s=8, c="#3b6ea5", zorder=3)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-n_layers + 0.5, 0.5)
    ax.axis("off")
    return _save_figure(fig, path)


def _valid(c: np.ndarray) -> np.ndarray:
    return c[c >= 0]


def plot_marginals(names: list[str], states: list[list[str]], real: np.ndarray, fake: np.ndarray,
                   path: str | Path, k: int = MAX_MARGINALS) -> Path:
    k = min(k, len(names))
    cols = min(4, k)
    rows = -(-k // cols)
    fig = _figure(3.2 * cols, 2.4 * rows)
    for j in range(k):
        ax = fig.add_subplot(rows, cols, j + 1)
        m = len(states[j])
        r, f = _valid(real[:, j]), _valid(fake[:, j])
        pr = np.bincount(r, minlength=m) / max(len(r), 1)
        pf = np.bincount(f, minlength=m) / max(len(f), 1)
        x = np.arange(m)
        ax.bar(x - 0.2, pr, 0.4, label="real", color="#1f77b4")
        ax.bar(x + 0.2, pf, 0.4, label="synthetic", color="#ff7f0e")
        ax.set_xticks(x)
        ax.set_xticklabels([s[:8] for s in states[j]], fontsize=7, rotation=30 if m > 3 else 0)
        ax.set_title(f"{names[j]}  (TVD {0.5 * np.abs(pr - pf).sum():.3f})", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if j == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save_figure(fig, path)


def cramers_v(codes: np.ndarray, cards: list[int]) -> np.ndarray:
    """Pairwise Cramér's V ``sqrt(chi2 / (n (min(r, c) - 1)))`` of categorical columns;
    rows missing either value (``-1``) are left out of that pair."""
    d = codes.shape[1]
    v = np.eye(d)
    for a in range(d):
        for b in range(a + 1, d):
            ok = (codes[:, a] >= 0) & (codes[:, b] >= 0)
            n = int(ok.sum())
            if n == 0 or min(cards[a], cards[b]) < 2:
                v[a, b] = v[b, a] = 0.0
                continue
            t = np.bincount(codes[ok, a] * cards[b] + codes[ok, b],
                            minlength=cards[a] * cards[b]).reshape(cards[a], cards[b]).astype(float)
            r, c = t.sum(1), t.sum(0)
            r, c, t = r[r > 0], c[c > 0], t[np.ix_(t.sum(1) > 0, t.sum(0) > 0)]
            if min(len(r), len(c)) < 2:
                v[a, b] = v[b, a] = 0.0
                continue
            e = np.outer(r, c) / n
            chi2 = float(((t - e) ** 2 / e).sum())
            v[a, b] = v[b, a] = np.sqrt(chi2 / (n * (min(len(r), len(c)) - 1)))
    return v


def plot_association(names: list[str], cards: list[int], real: np.ndarray, fake: np.ndarray,
                     path: str | Path, k: int = MAX_ASSOC) -> tuple[Path, float]:
    k = min(k, len(names))
    vr, vf = cramers_v(real[:, :k], cards[:k]), cramers_v(fake[:, :k], cards[:k])
    fig = _figure(11, 5.2)
    for n, (v, title) in enumerate([(vr, "real"), (vf, "synthetic")]):
        ax = fig.add_subplot(1, 2, n + 1)
        im = ax.imshow(v, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"Cramér's V, {title}", fontsize=9)
        ticks = np.arange(k)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        fs = 6 if k > 15 else 8
        ax.set_xticklabels([s[:10] for s in names[:k]], rotation=90, fontsize=fs)
        ax.set_yticklabels([s[:10] for s in names[:k]], fontsize=fs)
    fig.colorbar(im, ax=fig.axes, shrink=0.8)
    off = ~np.eye(k, dtype=bool)
    gap = float(np.abs(vr - vf)[off].mean()) if k > 1 else 0.0
    return _save_figure(fig, path), gap


def bayesnet_figures(run: Any, model: Any, test: Any, *, n: int = 10_000, seed: int = 0
                     ) -> list[tuple[str, Path, str]]:
    """``[(title, png_path, caption)]`` for a Bayesian-network run: the learned graph,
    real-vs-synthetic marginals of the first variables, and Cramér's V heat maps.

    ``run`` needs ``run.figure(name) -> Path`` (a ``genlab.runs.Run``); ``test`` is the
    test split (anything ``model._codes`` reads: a ``DiscreteTable``, codes, a CSV path).
    A figure that fails is left out; the others are still returned.
    """
    out: list[tuple[str, Path, str]] = []
    names, states = list(model.variables_), [list(s) for s in model.states_]
    cards = [len(s) for s in states]
    try:
        p = plot_dag(names, model.parents_, run.figure("bayesnet_dag.png"))
        out.append(("Learned graph", p, f"{len(names)} variables, {len(model.edges())} edges; "
                    "layers by topological depth, roots on top."))
    except Exception:  # noqa: BLE001 - a report shows what it can
        pass
    try:
        real = model._codes(test)
        fake = np.asarray(model.sample(max(n, 1), generator=seed))
    except Exception:  # noqa: BLE001
        return out
    try:
        p = plot_marginals(names, states, real, fake, run.figure("bayesnet_marginals.png"))
        k = min(MAX_MARGINALS, len(names))
        out.append(("Real vs synthetic marginals", p,
                    f"State frequencies of {len(real)} real test rows (blue) and {len(fake)} "
                    f"sampled rows (orange, seed {seed}) for the first {k} variables; TVD = "
                    "total-variation distance."))
    except Exception:  # noqa: BLE001
        pass
    try:
        p, gap = plot_association(names, cards, real, fake, run.figure("bayesnet_association.png"))
        k = min(MAX_ASSOC, len(names))
        out.append(("Pairwise association", p,
                    f"Cramér's V between every pair of the first {k} variables, real test rows "
                    f"(left) and sampled rows (right); mean absolute difference {gap:.3f}."))
    except Exception:  # noqa: BLE001
        pass
    return out
