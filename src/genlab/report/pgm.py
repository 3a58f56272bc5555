"""Report figures for Bayesian-network runs: the learned DAG, real vs synthetic marginals,
and pairwise association (Cramér's V) of real and synthetic data side by side.

Pure matplotlib on an Agg canvas. The DAG is laid out by ``dag_layout.layout_dag``:
Graphviz ``dot`` when it is installed, else a built-in layered layout; either way every
edge is drawn as its routed curve, around the nodes it does not connect, so each edge of
the graph can be seen.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..capabilities import REPORT_SECTIONS, has_data
from .dag_layout import DagLayout, layout_dag
from .figures import _figure, _save_figure

MAX_MARGINALS = 12
MAX_ASSOC = 30
MAX_LABELLED_NODES = 80
DAG_DPI = 150
MAX_DAG_INCHES = (24.0, 18.0)  # a larger drawing is saved at a lower resolution
DAG_MARGIN = 0.15  # inches around the drawing
ENGINE_WORDS = {"dot": "laid out by Graphviz dot",
                "layered": "layered layout (Graphviz dot not installed)"}


def dag_layout(parents: list[list[int]], names: list[str] | None = None, *, engine: str = "auto") -> np.ndarray:
    """``(D, 2)`` node centres (inches, y up: parents above their children) of the
    drawing ``plot_dag`` makes; see ``dag_layout.layout_dag`` for the edges."""
    names = [str(i) for i in range(len(parents))] if names is None else names
    return layout_dag(names, parents, engine=engine).centres


def _dag_fontsize(d: int) -> float | None:
    return None if d > MAX_LABELLED_NODES else 7.0 if d > 30 else 9.0


def draw_dag(layout: DagLayout, fontsize: float | None = 9.0) -> Any:
    """A matplotlib Figure of ``layout`` at one data unit per inch: a rounded box per node
    with its label (none when ``fontsize`` is None), one arrow per edge along its routed
    curve."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    w, h = max(layout.size[0], 0.5), max(layout.size[1], 0.3)
    fw, fh = w + 2 * DAG_MARGIN, h + 2 * DAG_MARGIN
    fig = _figure(fw, fh)
    fig.set_dpi(DAG_DPI * min(1.0, MAX_DAG_INCHES[0] / fw, MAX_DAG_INCHES[1] / fh))
    ax = fig.add_axes((DAG_MARGIN / fw, DAG_MARGIN / fh, w / fw, h / fh))
    ax.set_xlim(0, w)
    ax.set_ylim(0, h)
    ax.axis("off")
    for ctrl in layout.paths:
        codes = [MplPath.MOVETO] + [MplPath.CURVE4] * (len(ctrl) - 1)
        ax.add_patch(FancyArrowPatch(path=MplPath(ctrl, codes), arrowstyle="-|>,head_length=0.5,head_width=0.22",
                                     mutation_scale=10, color="0.4", lw=0.9, zorder=2))
    for (x0, y0, x1, y1), name in zip(layout.boxes, layout.names):
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.05",
                                    fc="#dbe9f6", ec="#3b6ea5", lw=0.8, zorder=3))
        if fontsize is not None:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, name, ha="center", va="center", fontsize=fontsize,
                    zorder=4, parse_math=False)
    return fig


def plot_dag(names: list[str], parents: list[list[int]], path: str | Path, *,
             engine: str = "auto") -> tuple[Path, DagLayout]:
    """Draw the DAG (``draw_dag`` of ``layout_dag``) to a PNG file.

    Returns:
        the PNG path and the layout it shows (``layout.engine`` names the engine used).
    """
    size = _dag_fontsize(len(names))
    layout = layout_dag(names, parents, engine=engine, fontsize=size)
    return _save_figure(draw_dag(layout, size), path), layout


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
        p, lay = plot_dag(names, model.parents_, run.figure("bayesnet_dag.png"))
        out.append(("Learned graph", p, f"{len(names)} variables, {len(lay.edges)} edges, each drawn as "
                    f"an arrow from parent to child; {ENGINE_WORDS[lay.engine]}, roots on top."))
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


@REPORT_SECTIONS.register("graph", requires={"structure": "dag"}, accepts=has_data, order=5)
def _bayesnet_section(ctx: Any) -> None:
    """A Bayesian network's report: its graph, marginals and associations (real vs sampled)."""
    for t, p, c in bayesnet_figures(ctx.run, ctx.model, ctx.test):
        ctx.figs.add(t, lambda p=p, c=c: (p, c), pixelated=False)
