"""Seeded batch augmentations for images ``(B, C, H, W)``, applied on the fly by the trainer.

Every augmentation is a callable ``aug(x, generator) -> Tensor`` that draws all of its
randomness from the ``torch.Generator`` it is given and from nothing else, so a training
run that saves its generator state resumes with bit-identical augmentations. With
``rows=(n, part)`` ``x`` is the rows ``part`` (a slice) of a batch of ``n``: the draws are
made for all ``n`` rows and this part's are used, so a torchrun process that reads only
its own rows augments them exactly as one process augments the whole batch.

Why plain torch and not a library: torchvision is not used in genlab (it pins its own
torch build, which would replace the CPU torch these machines run). kornia 0.9 would
install (it needs only ``torch>=2.5.1``, numpy and kornia-rs), but its augmentations draw
their parameters through ``torch.distributions`` samplers from torch's *global* RNG and
take no ``torch.Generator`` argument; the trainer needs every random draw to come from its
own seeded generator, so these five small ops are written here in plain torch
(``flip``, ``shift`` as pad-and-crop translation, ``rotate`` with ``affine_grid`` +
``grid_sample``, Gaussian ``noise``, and ``Compose``).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F

from ..errors import DataError

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _check(x: torch.Tensor, generator: torch.Generator, who: str) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{who} needs a torch.Generator, got {type(generator).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{who} expects a float image batch (B, C, H, W), got {shape}")


def _rand(shape: tuple[int, ...], g: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) drawn on the generator's device, moved to x's device."""
    return torch.rand(shape, generator=g, device=g.device).to(x.device)


def _part(x: torch.Tensor, rows: tuple[int, slice] | None, who: str) -> tuple[int, slice]:
    """``(rows drawn for, the slice of them that is x)``: the whole of ``x``, or ``rows``."""
    if rows is None:
        return len(x), slice(0, len(x))
    n, part = rows
    start, stop, step = part.indices(n)
    if step != 1 or stop - start != len(x):
        raise ValueError(f"{who}: rows {part} of a batch of {n} do not describe the {len(x)} rows given")
    return n, slice(start, stop)


class RandomFlip:
    """Flip each image left-right (and/or top-bottom) with probability ``p``.

    Args:
        p: flip probability per image and direction.
        horizontal: flip left-right.
        vertical: flip top-bottom.
    """

    def __init__(self, p: float = 0.5, horizontal: bool = True, vertical: bool = False):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomFlip: p must be in [0, 1], got {p}")
        self.p, self.horizontal, self.vertical = float(p), horizontal, vertical

    def __call__(self, x: torch.Tensor, generator: torch.Generator, rows: tuple[int, slice] | None = None
                 ) -> torch.Tensor:
        _check(x, generator, "RandomFlip")
        n, part = _part(x, rows, "RandomFlip")
        for on, dim in ((self.horizontal, -1), (self.vertical, -2)):
            if on:
                mask = (_rand((n,), generator, x)[part] < self.p).view(-1, 1, 1, 1)
                x = torch.where(mask, x.flip(dim), x)
        return x

    def spec(self) -> str:
        parts = (["flip"] if self.horizontal else []) + (["vflip"] if self.vertical else [])
        return ",".join(f"{n}:{self.p:g}" for n in parts)

    def __repr__(self) -> str:
        return f"RandomFlip(p={self.p}, horizontal={self.horizontal}, vertical={self.vertical})"


class RandomShift:
    """Translate each image by a random whole number of pixels in ``[-m, m]`` per axis.

    Equivalent to padding by ``m`` and cropping back at a random offset.

    Args:
        max_pixels: the largest shift ``m`` (>= 0).
        padding: ``"zeros"`` or ``"edge"`` (repeat the border pixels).
    """

    def __init__(self, max_pixels: int = 2, padding: str = "zeros"):
        if int(max_pixels) != max_pixels or max_pixels < 0:
            raise ValueError(f"RandomShift: max_pixels must be an integer >= 0, got {max_pixels}")
        if padding not in ("zeros", "edge"):
            raise ValueError(f"RandomShift: padding must be 'zeros' or 'edge', got {padding!r}")
        self.max_pixels, self.padding = int(max_pixels), padding

    def __call__(self, x: torch.Tensor, generator: torch.Generator, rows: tuple[int, slice] | None = None
                 ) -> torch.Tensor:
        _check(x, generator, "RandomShift")
        b, _, h, w = x.shape
        n, part = _part(x, rows, "RandomShift")
        m = self.max_pixels
        shifts = torch.randint(-m, m + 1, (n, 2), generator=generator,
                               device=generator.device)[part].to(x.device)
        ys = torch.arange(h, device=x.device).view(1, h) - shifts[:, :1]  # (B, H)
        cols = torch.arange(w, device=x.device).view(1, w) - shifts[:, 1:]  # (B, W)
        out = x[torch.arange(b, device=x.device).view(b, 1, 1), :,
                ys.clamp(0, h - 1).view(b, h, 1), cols.clamp(0, w - 1).view(b, 1, w)]
        out = out.permute(0, 3, 1, 2)  # advanced indexing put channels last
        if self.padding == "zeros":
            inside = ((ys >= 0) & (ys < h)).view(b, 1, h, 1) & \
                ((cols >= 0) & (cols < w)).view(b, 1, 1, w)
            out = out * inside
        return out.contiguous()

    def spec(self) -> str:
        return f"shift:{self.max_pixels}"

    def __repr__(self) -> str:
        return f"RandomShift(max_pixels={self.max_pixels}, padding={self.padding!r})"


class RandomRotation:
    """Rotate each image about its centre by a uniform angle in ``[-degrees, degrees]``.

    Bilinear resampling; corners brought in from outside are zero.

    Args:
        degrees: the largest rotation in degrees (>= 0).
    """

    def __init__(self, degrees: float = 10.0):
        if not degrees >= 0:
            raise ValueError(f"RandomRotation: degrees must be >= 0, got {degrees}")
        self.degrees = float(degrees)

    def __call__(self, x: torch.Tensor, generator: torch.Generator, rows: tuple[int, slice] | None = None
                 ) -> torch.Tensor:
        _check(x, generator, "RandomRotation")
        b, _, h, w = x.shape
        n, part = _part(x, rows, "RandomRotation")
        angle = (_rand((n,), generator, x)[part] * 2 - 1) * math.radians(self.degrees)
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(cos)
        # rotation in pixel space, expressed in affine_grid's [-1, 1] coordinates
        theta = torch.stack([
            torch.stack([cos, -sin * h / w, zero], dim=1),
            torch.stack([sin * w / h, cos, zero], dim=1),
        ], dim=1).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    def spec(self) -> str:
        return f"rotate:{self.degrees:g}"

    def __repr__(self) -> str:
        return f"RandomRotation(degrees={self.degrees})"


class GaussianNoise:
    """Add ``N(0, std^2)`` noise to every pixel, then clip to [0, 1] if ``clip``.

    Args:
        std: noise standard deviation (>= 0).
        clip: clamp the result to [0, 1].
    """

    def __init__(self, std: float = 0.05, clip: bool = True):
        if not std >= 0:
            raise ValueError(f"GaussianNoise: std must be >= 0, got {std}")
        self.std, self.clip = float(std), clip

    def __call__(self, x: torch.Tensor, generator: torch.Generator, rows: tuple[int, slice] | None = None
                 ) -> torch.Tensor:
        _check(x, generator, "GaussianNoise")
        n, part = _part(x, rows, "GaussianNoise")
        noise = torch.randn((n, *x.shape[1:]), generator=generator, device=generator.device)[part]
        out = x + self.std * noise.to(x.device, x.dtype)
        return out.clamp(0, 1) if self.clip else out

    def spec(self) -> str:
        return f"noise:{self.std:g}"

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std}, clip={self.clip})"


class Compose:
    """Apply augmentations in order, all drawing from the same generator.

    Args:
        augmentations: callables ``(x, generator) -> Tensor``.
    """

    def __init__(self, augmentations: Iterable[Augmentation]):
        self.augmentations = list(augmentations)
        for a in self.augmentations:
            if not callable(a):
                raise TypeError(f"Compose: {a!r} is not callable")

    def __call__(self, x: torch.Tensor, generator: torch.Generator, rows: tuple[int, slice] | None = None
                 ) -> torch.Tensor:
        for aug in self.augmentations:
            x = aug(x, generator) if rows is None else aug(x, generator, rows=rows)
        return x

    def __iter__(self) -> Iterator[Augmentation]:
        return iter(self.augmentations)

    def __len__(self) -> int:
        return len(self.augmentations)

    def spec(self) -> str:
        """The ``parse_augment`` string that rebuilds this pipeline (for configs)."""
        return ",".join(a.spec() for a in self.augmentations if hasattr(a, "spec"))

    def __repr__(self) -> str:
        return f"Compose({self.augmentations!r})"


def _number(name: str, text: str | None, default: float, *, integer: bool = False) -> float:
    if text is None:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"augmentation {name!r} expects {kind}, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"augmentation {name!r} needs a value >= 0, got {text!r}")
    return value


_BUILDERS: dict[str, tuple[str, Callable[[str, str | None], Augmentation]]] = {
    "flip": ("flip[:p] left-right flip, p=0.5",
             lambda n, v: RandomFlip(p=_probability(n, v))),
    "vflip": ("vflip[:p] top-bottom flip, p=0.5",
              lambda n, v: RandomFlip(p=_probability(n, v), horizontal=False, vertical=True)),
    "shift": ("shift[:pixels] random translation, 2 pixels",
              lambda n, v: RandomShift(int(_number(n, v, 2, integer=True)))),
    "rotate": ("rotate[:degrees] random rotation, 10 degrees",
               lambda n, v: RandomRotation(_number(n, v, 10.0))),
    "noise": ("noise[:std] Gaussian noise, std 0.05",
              lambda n, v: GaussianNoise(_number(n, v, 0.05))),
}


def _probability(name: str, text: str | None) -> float:
    p = _number(name, text, 0.5)
    if p > 1:
        raise ValueError(f"augmentation {name!r} takes a probability in [0, 1], got {text!r}")
    return p


def parse_augment(spec: str | None) -> Compose | None:
    """Build augmentations from a CLI spec such as ``"flip,shift:2,rotate:10,noise:0.05"``.

    Args:
        spec: comma-separated ``name[:value]`` items; ``None``, ``""`` or ``"none"``
            means no augmentation. Names: flip, vflip, shift, rotate, noise.

    Returns:
        A ``Compose`` in the given order, or ``None``.

    Raises:
        ValueError: an unknown name (listing the valid ones) or a bad value.
    """
    if spec is None or not spec.strip() or spec.strip().lower() == "none":
        return None
    augs = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"empty item in augmentation spec {spec!r}")
        name, _, value = item.partition(":")
        name = name.strip().lower()
        if name not in _BUILDERS:
            valid = "; ".join(doc for doc, _ in _BUILDERS.values())
            raise ValueError(f"unknown augmentation {name!r} in {spec!r}; valid: {valid}")
        augs.append(_BUILDERS[name][1](name, value.strip() if _ else None))
    return Compose(augs)
