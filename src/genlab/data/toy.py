"""2-D Gaussian-mixture toys for mode collapse: a ring of 8 and a grid of 25 modes.

The standard constants (each mode an isotropic Gaussian, modes equally likely):

* ring of 8 — centres on a circle of radius 2, std 0.02: the setting of Metz et al. 2017
  ("Unrolled Generative Adversarial Networks") that VEEGAN (Srivastava et al. 2017) uses.
  (PacGAN's code uses radius 1, std 0.01: pass ``radius=1.0, std=0.01``.)
* grid of 25 — centres on ``{-4, -2, 0, 2, 4}^2`` (spacing 2, centred at the origin),
  std 0.05: the setting of VEEGAN and PacGAN (Lin et al. 2018).

Both papers evaluate 2500 generated samples with ``genlab.metrics.toy_mode_metrics``.
Registered as the table datasets ``ring8`` and ``grid25`` (raw coordinates, not
standardised, so the mode centres keep their meaning; labels = mode index).
"""
from __future__ import annotations

import math

import torch

from ..errors import DataError
from ..registry import DATASETS
from .dataset import Dataset

RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.02
GRID_SIDE, GRID_SPACING, GRID_STD = 5, 2.0, 0.05
EVAL_SAMPLES = 2500  # generated samples VEEGAN and PacGAN score


def ring_centers(modes: int = RING_MODES, radius: float = RING_RADIUS) -> torch.Tensor:
    """``(modes, 2)`` centres at angles ``2 pi i / modes`` on a circle (float64)."""
    angle = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)


def grid_centers(side: int = GRID_SIDE, spacing: float = GRID_SPACING) -> torch.Tensor:
    """``(side^2, 2)`` centres of a square grid centred at the origin (float64), row-major."""
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)


def centers(name: str) -> tuple[torch.Tensor, float]:
    """Default ``(centres, std)`` of ``"ring8"`` or ``"grid25"``."""
    if name == "ring8":
        return ring_centers(), RING_STD
    if name == "grid25":
        return grid_centers(), GRID_STD
    raise ValueError(f"unknown toy mixture {name!r}; choose 'ring8' or 'grid25'")


def _mixture(n: int, c: torch.Tensor, std: float, generator: torch.Generator | None,
             return_labels: bool):
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    labels = torch.randint(len(c), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    x = (c[labels] + std * noise).to(torch.float32)
    return (x, labels) if return_labels else x


def ring_of_gaussians(n: int, *, modes: int = RING_MODES, radius: float = RING_RADIUS,
                      std: float = RING_STD, generator: torch.Generator | None = None,
                      return_labels: bool = False):
    """``n`` draws from an equal-weight mixture of Gaussians on a ring.

    Args:
        n: number of points.
        modes: number of modes (8).
        radius: ring radius (2.0).
        std: per-coordinate standard deviation of each mode (0.02).
        generator: torch generator for reproducible draws.
        return_labels: also return each point's mode index.
    Returns:
        ``(n, 2)`` float32 points (and ``(n,)`` int64 mode indices).
    """
    return _mixture(n, ring_centers(modes, radius), std, generator, return_labels)


def grid_of_gaussians(n: int, *, side: int = GRID_SIDE, spacing: float = GRID_SPACING,
                      std: float = GRID_STD, generator: torch.Generator | None = None,
                      return_labels: bool = False):
    """``n`` draws from an equal-weight mixture of Gaussians on a ``side x side`` grid.

    Args:
        n: number of points.
        side: modes per axis (5, so 25 modes).
        spacing: distance between neighbouring centres (2.0: centres at -4..4).
        std: per-coordinate standard deviation of each mode (0.05).
        generator: torch generator for reproducible draws.
        return_labels: also return each point's mode index.
    Returns:
        ``(n, 2)`` float32 points (and ``(n,)`` int64 mode indices).
    """
    return _mixture(n, grid_centers(side, spacing), std, generator, return_labels)


def _splits(name: str, sampler, c: torch.Tensor, std: float, sizes: dict[str, int],
            seed: int, limit: int | None) -> dict[str, Dataset]:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    out = {}
    for i, (split, n) in enumerate(sizes.items()):
        if not isinstance(n, int) or n < 1:
            raise DataError(f"{name}: n_{split} must be a positive integer, got {n!r}")
        n = min(n, limit) if limit is not None else n
        # one generator per split: each split is the same whatever the other sizes are
        x, y = sampler(n, generator=torch.Generator().manual_seed(seed * 1000 + i),
                       return_labels=True)
        out[split] = Dataset(
            x, y, kind="table", name=name, classes=[f"mode{j}" for j in range(len(c))],
            columns=["x1", "x2"],
            meta={"dataset": name, "split": split, "centers": c.tolist(), "std": std,
                  "standardized": False})
    return out


@DATASETS.register("ring8")
def ring8(*, n_train: int = 20000, n_val: int = 2500, n_test: int = 2500, seed: int = 0,
          limit: int | None = None) -> dict[str, Dataset]:
    """Ring of 8 Gaussians (radius 2, std 0.02), freshly sampled per split.

    Args:
        n_train, n_val, n_test: split sizes.
        seed: base seed (split ``i`` uses ``seed * 1000 + i``).
        limit: keep at most ``limit`` examples per split.
    Returns:
        ``{"train", "val", "test"}`` table Datasets ``(N, 2)`` with mode labels.
    """
    return _splits("ring8", ring_of_gaussians, ring_centers(), RING_STD,
                   {"train": n_train, "val": n_val, "test": n_test}, seed, limit)


ring8.description = "2-D ring of 8 Gaussians (radius 2, std 0.02), VEEGAN/unrolled-GAN toy"


@DATASETS.register("grid25")
def grid25(*, n_train: int = 20000, n_val: int = 2500, n_test: int = 2500, seed: int = 0,
           limit: int | None = None) -> dict[str, Dataset]:
    """Grid of 25 Gaussians (centres -4..4 step 2, std 0.05), freshly sampled per split.

    Args:
        n_train, n_val, n_test: split sizes.
        seed: base seed (split ``i`` uses ``seed * 1000 + i``).
        limit: keep at most ``limit`` examples per split.
    Returns:
        ``{"train", "val", "test"}`` table Datasets ``(N, 2)`` with mode labels.
    """
    return _splits("grid25", grid_of_gaussians, grid_centers(), GRID_STD,
                   {"train": n_train, "val": n_val, "test": n_test}, seed, limit)


grid25.description = "2-D 5x5 grid of 25 Gaussians (spacing 2, std 0.05), VEEGAN/PacGAN toy"
