"""Normalisation and its inverse: per-channel image normalisation, display conversion,
and the per-column standardisation every table Dataset is stored in."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import DataError
from .dataset import Dataset


class Normalize:
    """Per-channel ``(x - mean) / std`` for image batches, with ``inverse``.

    Args:
        mean: one value, or one per channel.
        std: one value, or one per channel (all > 0).
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if not (self.std > 0).all():
            raise DataError(f"Normalize: std must be > 0, got {self.std.tolist()}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise DataError("Normalize: mean and std need the same number of channels")

    @classmethod
    def fit(cls, x: torch.Tensor | Dataset) -> "Normalize":
        """Per-channel mean/std of image data ``(N, C, H, W)`` (or a Dataset)."""
        x = x.x if isinstance(x, Dataset) else x
        if x.dim() != 4:
            raise DataError(f"Normalize.fit needs (N, C, H, W) images, got {tuple(x.shape)}")
        return cls(x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist())

    def _shape(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (3, 4):
            raise DataError(f"Normalize expects (C, H, W) or (B, C, H, W), got {tuple(x.shape)}")
        c = x.shape[-3]
        if len(v) not in (1, c):
            raise DataError(f"Normalize has {len(v)} channel values, input has {c} channels")
        return v.to(x.device, x.dtype).reshape(-1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x``."""
        return (x - self._shape(x, self.mean)) / self._shape(x, self.std)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Undo ``__call__``: ``x * std + mean``."""
        return x * self._shape(x, self.std) + self._shape(x, self.mean)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def to_display(x: torch.Tensor | np.ndarray, normalize: Normalize | None = None) -> np.ndarray:
    """Model output -> uint8 image(s) for display.

    Args:
        x: ``(C, H, W)`` or ``(B, C, H, W)`` values meant to lie in [0, 1] (after
            ``normalize.inverse`` if given); values outside are clipped, NaN becomes 0.
        normalize: a ``Normalize`` to invert first.

    Returns:
        uint8 numpy, channel-last: ``(H, W)`` / ``(B, H, W)`` for one channel,
        ``(H, W, 3)`` / ``(B, H, W, 3)`` for three.
    """
    x = torch.as_tensor(x).detach().to("cpu", torch.float32)
    if x.dim() not in (3, 4):
        raise DataError(f"to_display expects (C, H, W) or (B, C, H, W), got {tuple(x.shape)}")
    if normalize is not None:
        x = normalize.inverse(x)
    x = torch.nan_to_num(x, nan=0.0).clamp(0, 1)
    out = (x * 255 + 0.5).to(torch.uint8).movedim(-3, -1).numpy()
    return out[..., 0] if out.shape[-1] == 1 else out


def table_dataset(x: np.ndarray, *, name: str, y: torch.Tensor | None = None,
                  columns: list[str] | None = None, classes: list[str] | None = None,
                  meta: dict[str, Any] | None = None) -> Dataset:
    """Standardise a numeric ``(N, D)`` array per column and wrap it as a table Dataset.

    Args:
        x: finite numeric array ``(N, D)``.
        name: dataset name. y, columns, classes, meta: as in ``Dataset``.

    Returns:
        A Dataset with ``meta["mean"]``/``meta["std"]`` (constant columns get std 1).
    """
    from .cleaning import standardize_columns

    z, mean, std = standardize_columns(np.asarray(x, dtype=np.float64))  # no overflow near 1e308
    z = z.astype(np.float32)
    meta = dict(meta or {}, mean=mean.tolist(), std=std.tolist())
    columns = columns or [f"col{i}" for i in range(x.shape[1])]
    return Dataset(torch.from_numpy(z), y, kind="table", name=name, classes=classes,
                   columns=columns, meta=meta)


def denormalize_table(ds: Dataset, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Map standardised table rows (e.g. model samples) back to original units.

    Args:
        ds: the table Dataset whose ``meta`` holds ``mean`` and ``std``.
        x: ``(N, D)`` tensor or array in standardised units.

    Returns:
        ``x * std + mean``, the same type as ``x``.
    """
    if "mean" not in ds.meta or "std" not in ds.meta:
        raise DataError(f"{ds.name}: no meta['mean'] / meta['std'] to invert")
    mean, std = np.asarray(ds.meta["mean"]), np.asarray(ds.meta["std"])
    if x.shape[-1] != len(mean):
        raise DataError(f"{ds.name}: expected {len(mean)} columns, got shape {tuple(x.shape)}")
    if isinstance(x, torch.Tensor):
        return x * torch.as_tensor(std, dtype=x.dtype, device=x.device) + torch.as_tensor(
            mean, dtype=x.dtype, device=x.device)
    return np.asarray(x) * std + mean
