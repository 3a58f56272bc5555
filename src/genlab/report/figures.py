"""Plotting helpers that write PNG files: training curves, reconstructions and
real-vs-generated histograms for tables. Image grids (``image_grid``, ``save_grid``) are
re-exported from ``genlab.imaging`` and the evaluation figures (``plot_class_histogram``,
``plot_pairs``) from ``genlab.evaluation.figures``, where the layers below the report use them.

Nothing here opens a window or changes matplotlib's global backend: figures are built as
``matplotlib.figure.Figure`` objects on an Agg canvas, so the helpers are safe in scripts,
servers and notebooks alike.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..evaluation.figures import plot_class_histogram, plot_pairs  # noqa: F401  (re-exported)
from ..imaging import MIN_TILE_PX, PAD_VALUE, as_array, image_grid, save_grid  # noqa: F401  (re-exported)
from ..imaging import agg_figure as _figure, save_figure as _save_figure


# ----------------------------------------------------------------------------- reconstructions
def plot_reconstructions(x: Any, x_hat: Any, path: str | Path, n: int = 8, **kw: Any) -> Path:
    """Originals on the top row, their reconstructions on the row below.

    Args:
        x: ``(B, C, H, W)`` original images.
        x_hat: reconstructions, same shape as ``x``.
        path: the PNG file to write.
        n: how many of the first examples to show.
        **kw: ``pad`` / ``scale`` for ``image_grid``.
    Returns:
        the path written.
    """
    a, b = as_array(x, "plot_reconstructions: x"), as_array(x_hat, "plot_reconstructions: x_hat")
    if a.shape != b.shape:
        raise ValueError(f"plot_reconstructions: x has shape {tuple(a.shape)} but x_hat {tuple(b.shape)}")
    if n < 1:
        raise ValueError(f"plot_reconstructions: n must be >= 1, got {n}")
    n = min(int(n), len(a))
    return save_grid(np.concatenate([a[:n], b[:n]]), path, nrow=n, **kw)


# ----------------------------------------------------------------------------- curves
_SKIP_KEYS = {"split", "step", "epoch", "lr", "time", "event"}
_REDUNDANT = {"elbo"}  # -(recon + kl): already shown by its parts


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _series(rows: list[dict], split: str, key: str) -> tuple[list[float], list[float]]:
    pts = [(r["step"], r[key]) for r in rows
           if r.get("split") == split and _is_num(r.get(key)) and _is_num(r.get("step"))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _quantities(rows: list[dict]) -> list[str]:
    """Logged quantities in first-seen order: ``loss`` first, then the model's parts."""
    names: list[str] = []
    for r in rows:
        if r.get("split") not in ("train", "val"):
            continue
        for k, v in r.items():
            if k in _SKIP_KEYS or k.startswith("best_") or not _is_num(v):
                continue
            q = k[4:] if r["split"] == "val" and k.startswith("val_") else k
            if q not in names:
                names.append(q)
    if {"recon", "kl"} <= set(names):
        names = [q for q in names if q not in _REDUNDANT]
    return sorted(names, key=lambda q: q != "loss")


def plot_curves(rows: list[dict], path: str | Path) -> Path:
    """Training and validation curves against the optimizer step.

    One panel per logged quantity (``loss`` first; a VAE's ``recon`` and ``kl`` on their
    own panels), training as a thin line and validation as dots, plus a learning-rate
    panel when the rate changed. The best validation loss is starred and early-stop /
    divergence events are drawn as vertical lines.

    Args:
        rows: the rows of a run's ``metrics.jsonl`` (``Run.metrics()``).
        path: the PNG file to write.
    Returns:
        the path written. An empty log gives a figure saying "no metrics logged".
    """
    rows = [r for r in rows if isinstance(r, dict)]
    quantities = _quantities(rows)
    lr_steps, lrs = _series(rows, "train", "lr")
    show_lr = len(set(lrs)) > 1
    panels = quantities + (["lr"] if show_lr else [])
    if not panels:
        fig = _figure(6, 2.5)
        fig.text(0.5, 0.5, "no metrics logged", ha="center", va="center", fontsize=14, color="0.4")
        return _save_figure(fig, path)

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _figure(4.2 * ncols, 3.2 * nrows)
    events = [r for r in rows if r.get("split") == "event" and _is_num(r.get("step"))]
    for i, q in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        if q == "lr":
            ax.plot(lr_steps, lrs, color="tab:gray", lw=1.2)
            ax.set_title("learning rate")
        else:
            xs, ys = _series(rows, "train", q)
            if xs:
                ax.plot(xs, ys, color="tab:blue", lw=1.0, alpha=0.8, label="train")
            vx, vy = _series(rows, "val", f"val_{q}")
            if vx:
                ax.plot(vx, vy, color="tab:orange", lw=1.2, marker="o", ms=3, label="validation")
            if q == "loss" and vy:
                j = int(np.argmin(vy))
                ax.plot([vx[j]], [vy[j]], marker="*", ms=13, color="tab:green", ls="none",
                        label=f"best {vy[j]:.4g} @ {vx[j]}")
            vals = ys + vy
            if vals and min(vals) > 0 and max(vals) / min(vals) > 100:
                ax.set_yscale("log")
            ax.set_title(q)
        for e in events:
            color = "tab:red" if e.get("event") == "diverged" else "tab:purple"
            ax.axvline(e["step"], color=color, ls="--", lw=1,
                       label=str(e.get("event", "event")).replace("_", " ") if i == 0 else None)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if i == 0 or q != "lr":
            handles, _ = ax.get_legend_handles_labels()
            if handles:
                ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------- tables
def plot_table_samples(real: Any, fake: Any, columns: Sequence[str] | None, path: str | Path, *,
                       max_columns: int = 8, bins: int = 30) -> Path:
    """Histograms of real vs generated values for the first few columns of a table.

    Args:
        real: ``(N, D)`` real rows.
        fake: ``(M, D)`` generated rows.
        columns: ``D`` column names (``None``: ``x0, x1, ...``).
        path: the PNG file to write.
        max_columns: how many leading columns to draw.
        bins: histogram bins, shared by real and generated values of a column.
    Returns:
        the path written.
    """
    r, f = as_array(real, "plot_table_samples: real"), as_array(fake, "plot_table_samples: fake")
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1] or not len(r) or not len(f):
        raise ValueError(f"plot_table_samples needs two non-empty tables (N, D) with the same D, "
                         f"got {tuple(r.shape)} and {tuple(f.shape)}")
    d = r.shape[1]
    columns = [f"x{j}" for j in range(d)] if columns is None else [str(c) for c in columns]
    if len(columns) != d:
        raise ValueError(f"plot_table_samples: {len(columns)} column names for {d} columns")
    k = min(d, max(1, int(max_columns)))
    ncols = min(4, k)
    nrows = math.ceil(k / ncols)
    fig = _figure(3.3 * ncols, 2.6 * nrows)
    for j in range(k):
        ax = fig.add_subplot(nrows, ncols, j + 1)
        rj, fj = r[:, j][np.isfinite(r[:, j])], f[:, j][np.isfinite(f[:, j])]
        # range from the real data (with a margin), so a few wild samples cannot squash it
        lo, hi = np.percentile(rj, [0.5, 99.5]) if len(rj) else (0.0, 1.0)
        margin = 0.1 * (hi - lo) or 0.5
        edges = np.linspace(lo - margin, hi + margin, bins + 1)
        ax.hist(np.clip(rj, edges[0], edges[-1]), bins=edges, density=True, alpha=0.5,
                color="tab:blue", label="real")
        ax.hist(np.clip(fj, edges[0], edges[-1]), bins=edges, density=True, alpha=0.5,
                color="tab:orange", label="generated")
        ax.set_title(columns[j][:30], fontsize=9)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.legend(fontsize=7)
    if k < d:
        fig.suptitle(f"first {k} of {d} columns", fontsize=9)
    fig.tight_layout()
    return _save_figure(fig, path)
