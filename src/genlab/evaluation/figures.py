"""Figures of an evaluation: the judge's class histogram and the closest (sample, training
image) pairs, written next to the run's other figures (``genlab.report.figures``
re-exports both)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..imaging import agg_figure, save_grid, save_figure


def plot_class_histogram(fake_counts: Sequence[float], real_counts: Sequence[float] | None,
                         path: str | Path, *, classes: Sequence[str] | None = None) -> Path:
    """Bar chart of the classes a judge assigns to generated samples, beside the real
    data's class shares (mode collapse shows as missing or towering bars).

    Args:
        fake_counts: ``(K,)`` predicted-class counts of generated samples.
        real_counts: ``(K,)`` class counts of real data, or ``None``.
        path: the PNG file to write.
        classes: class names for the x axis.
    Returns:
        the path written.
    """
    fake = np.asarray(fake_counts, dtype=float)
    k = len(fake)
    names = list(classes) if classes is not None and len(classes) == k else [str(i) for i in range(k)]
    fig = agg_figure(max(5.0, 0.6 * k + 2), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    pos = np.arange(k)
    width = 0.4 if real_counts is not None else 0.8
    ax.bar(pos - (width / 2 if real_counts is not None else 0), fake / max(fake.sum(), 1), width,
           label="generated", color="tab:orange")
    if real_counts is not None:
        real = np.asarray(real_counts, dtype=float)
        ax.bar(pos + width / 2, real / max(real.sum(), 1), width, label="real", color="tab:blue")
    ax.set_xticks(pos)
    ax.set_xticklabels(names, rotation=30 if max(len(n) for n in names) > 3 else 0, ha="right"
                       if max(len(n) for n in names) > 3 else "center", fontsize=8)
    ax.set_ylabel("share of samples")
    ax.legend(fontsize=8)
    ax.set_title("classes found by the judge")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_pairs(top: Any, bottom: Any, path: str | Path, **kw: Any) -> Path:
    """Two aligned rows of images (e.g. generated samples over their nearest training
    images), one column per pair."""
    top, bottom = torch.as_tensor(top), torch.as_tensor(bottom)
    if top.shape != bottom.shape:
        raise ValueError(f"plot_pairs: shapes differ: {tuple(top.shape)} vs {tuple(bottom.shape)}")
    return save_grid(torch.cat([top, bottom]), path, nrow=len(top), **kw)
