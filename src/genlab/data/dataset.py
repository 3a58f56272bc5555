"""The in-memory dataset every genlab model trains on.

Data sets here are small enough to live in memory (the largest, Fashion-MNIST, is
70,000 x 784 floats = 220 MB), so a ``Dataset`` is a tensor plus labels and metadata;
batching, shuffling and augmentation happen in the trainer, which keeps data order
reproducible and resumable.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import DataError


@dataclasses.dataclass
class Dataset:
    """Examples ``x`` with optional integer labels ``y``.

    Attributes:
        x: images ``(N, C, H, W)`` float32 in ``[0, 1]``; tables ``(N, D)`` float32;
            sequences ``(N, T)`` int64 token ids (windows of a tokenised corpus).
        y: int64 labels ``(N,)`` or ``None``.
        kind: ``"image"``, ``"table"`` or ``"sequence"``.
        name: where the data came from (a registry name or a path).
        classes: label names, index = label value (``None`` if unlabelled).
        columns: column names of a table.
        meta: anything else worth keeping (e.g. normalisation statistics).
        text: token ids ``(N, L)`` int64 of one caption per example (padding id 0), or
            ``None``; the trainer batches them as ``batch["text"]`` for text-conditional
            models. ``meta["tokenizer"]`` holds the tokenizer's config that spelled them.
        attributes: per-example integer ground truth ``{name: (N,) int64}`` (e.g. the
            shape, colour and position a caption names), for judges; ``{}`` if none.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    kind: str = "image"
    name: str = "array"
    classes: list[str] | None = None
    columns: list[str] | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    text: torch.Tensor | None = None
    attributes: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor):
            self.x = torch.as_tensor(np.asarray(self.x))
        if self.kind not in ("image", "table", "sequence"):
            raise DataError(f"Dataset kind must be 'image', 'table' or 'sequence', got {self.kind!r}")
        if self.kind == "sequence":  # token ids (N, T): integers, no float conversion
            if self.x.is_floating_point() or self.x.is_complex():
                raise DataError(f"{self.name}: sequence data must hold integer token ids, got {self.x.dtype}")
            self.x = self.x.to(torch.int64)
        elif self.x.dtype != torch.float32:
            self.x = self.x.to(torch.float32)
        want = {"image": 4, "table": 2, "sequence": 2}[self.kind]
        if self.x.dim() != want:
            layout = {"image": "(N, C, H, W)", "table": "(N, D)", "sequence": "(N, T)"}[self.kind]
            raise DataError(
                f"{self.name}: {self.kind} data must be {layout}, got shape {tuple(self.x.shape)}"
            )
        if len(self.x) == 0:
            raise DataError(f"{self.name}: the data set is empty")
        if self.kind != "sequence" and not torch.isfinite(self.x).all():
            bad = (~torch.isfinite(self.x)).flatten(1).any(1).nonzero().flatten()[:5].tolist()
            raise DataError(
                f"{self.name}: contains NaN or infinite values (first rows: {bad}); "
                "clean the data first (genlab.data.clean_table for tables)"
            )
        if self.y is not None:
            if not isinstance(self.y, torch.Tensor):
                self.y = torch.as_tensor(np.asarray(self.y))
            self.y = self.y.to(torch.int64).reshape(-1)
            if len(self.y) != len(self.x):
                raise DataError(
                    f"{self.name}: {len(self.x)} examples but {len(self.y)} labels"
                )
            if len(self.y) and int(self.y.min()) < 0:
                raise DataError(f"{self.name}: labels must be >= 0")
        if self.text is not None:
            self.text = self._rows(self.text, "text")
            if self.text.dim() != 2:
                raise DataError(f"{self.name}: text must be token ids (N, L), got shape {tuple(self.text.shape)}")
        self.attributes = {k: self._rows(v, f"attribute {k!r}").reshape(-1)
                           for k, v in dict(self.attributes).items()}

    def _rows(self, values: Any, what: str) -> torch.Tensor:
        """``values`` as int64 with one row per example, else a DataError naming ``what``."""
        t = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
        if t.is_floating_point() or t.is_complex():
            raise DataError(f"{self.name}: {what} must hold integers, got {t.dtype}")
        if len(t) != len(self.x):
            raise DataError(f"{self.name}: {len(self.x)} examples but {len(t)} rows of {what}")
        if len(t) and int(t.min()) < 0:
            raise DataError(f"{self.name}: {what} must be >= 0")
        return t.to(torch.int64)

    # -- sizes
    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(1, 28, 28)`` or ``(12,)``."""
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        if self.y is None:
            return 0
        if self.classes is not None:
            return len(self.classes)
        return int(self.y.max()) + 1

    # -- selection
    def subset(self, index: Sequence[int] | torch.Tensor | slice) -> "Dataset":
        """A new Dataset holding the chosen rows (labels and metadata kept)."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
        return dataclasses.replace(
            self, x=self.x[index], y=None if self.y is None else self.y[index],
            meta=dict(self.meta), text=None if self.text is None else self.text[index],
            attributes={k: v[index] for k, v in self.attributes.items()},
        )

    def __getitem__(self, index: Any) -> "Dataset":
        return self.subset(index)

    def split(self, fractions: Sequence[float], *, seed: int = 0) -> list["Dataset"]:
        """Deterministic random split by ``fractions`` (summing to 1)."""
        if abs(sum(fractions) - 1) > 1e-6 or any(f < 0 for f in fractions):
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(self), generator=g)
        out, start = [], 0
        for i, f in enumerate(fractions):
            stop = len(self) if i == len(fractions) - 1 else start + int(round(f * len(self)))
            out.append(self.subset(perm[start:stop]))
            start = stop
        return out

    def binarize(self, threshold: float = 0.5) -> "Dataset":
        """Images thresholded to {0, 1} (for Bernoulli likelihoods)."""
        meta = dict(self.meta, binarized=threshold)
        return dataclasses.replace(self, x=(self.x > threshold).float(), meta=meta)

    def __repr__(self) -> str:
        lab = f", {self.num_classes} classes" if self.y is not None else ""
        return f"Dataset({self.name!r}, {len(self)} x {self.shape}, {self.kind}{lab})"


def as_dataset(data: Any, *, split: str = "train") -> Dataset:
    """Coerce user input to a ``Dataset``.

    Accepts a Dataset, a registered dataset name or a path (loaded with
    ``genlab.data.load``), a tensor/array ``(N, C, H, W)`` / ``(N, H, W)`` images or
    ``(N, D)`` table, or a ``(x, y)`` tuple.
    """
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        from .datasets import load as load_named

        return load_named(data, split=split)
    y = None
    if isinstance(data, tuple) and len(data) == 2:
        data, y = data
    x = torch.as_tensor(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() == 4:
        return Dataset(x, y, kind="image")
    if x.dim() == 2:
        return Dataset(x, y, kind="table")
    raise DataError(
        f"cannot use an array of shape {tuple(x.shape)} as data: expected images "
        "(N, C, H, W) or (N, H, W), or a table (N, D)"
    )
