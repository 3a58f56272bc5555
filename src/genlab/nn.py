"""The few network blocks shared across families: MLPs and conv encoders/decoders sized
from the data shape (8x8 digits, 28x28 MNIST, any user image size)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], *, dropout: float = 0.0, act: type[nn.Module] = nn.ReLU,
        final_act: nn.Module | None = None) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ``act`` (and dropout) between."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    if final_act is not None:
        layers.append(final_act)
    return nn.Sequential(*layers)


def _down(n: int) -> int:
    """Spatial size after a 3x3 conv with stride 2 and padding 1."""
    return (n - 1) // 2 + 1


def conv_sizes(hw: tuple[int, int], n_layers: int) -> list[tuple[int, int]]:
    """Feature-map sizes ``[input, after layer 1, ...]`` of the stride-2 encoder."""
    sizes = [tuple(hw)]
    for _ in range(n_layers):
        h, w = sizes[-1]
        sizes.append((_down(h), _down(w)))
    return sizes


class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions, then a linear layer to ``out_dim``; with ``grid``, a 3x3
    convolution to ``out_dim`` channels instead, keeping the last feature map's size
    (``out_shape``: a latent grid such as 8x8 -> 4x4, 28x28 -> 7x7).

    Shapes: ``(B, C, H, W) -> (B, out_dim)``, or ``(B, out_dim, h, w)`` with ``grid``.
    """

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int], out_dim: int, *,
                 dropout: float = 0.0, grid: bool = False):
        super().__init__()
        c, h, w = in_shape
        sizes = conv_sizes((h, w), len(channels))
        layers: list[nn.Module] = []
        prev = c
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(nn.Dropout2d(dropout))
            prev = ch
        self.convs = nn.Sequential(*layers)
        self.flat_dim = prev * sizes[-1][0] * sizes[-1][1]
        self.grid = grid
        self.out_shape = (out_dim, *sizes[-1]) if grid else (out_dim,)
        self.head = nn.Conv2d(prev, out_dim, 3, padding=1) if grid else nn.Linear(self.flat_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)
        return self.head(h) if self.grid else self.head(h.flatten(1))  # (B, out_dim[, h, w])


class ConvDecoder(nn.Module):
    """Linear layer to a small feature map, then stride-2 transposed convolutions that
    land exactly on the output size (``output_padding`` chosen per layer); with ``grid``,
    the input is already a feature map of ``in_dim`` channels (``ConvEncoder``'s grid)
    and a 3x3 convolution takes the place of the linear layer.

    Shapes: ``(B, in_dim) -> (B, C, H, W)``, or ``(B, in_dim, h, w) -> (B, C, H, W)`` with
    ``grid`` (logits / means, no output activation).
    """

    def __init__(self, in_dim: int, out_shape: Sequence[int], channels: Sequence[int], *,
                 dropout: float = 0.0, grid: bool = False):
        super().__init__()
        c, h, w = out_shape
        rev = list(channels)[::-1]  # deepest first
        sizes = conv_sizes((h, w), len(rev))[::-1]  # smallest first
        self.start = (rev[0], *sizes[0])
        self.grid = grid
        self.fc = nn.Conv2d(in_dim, rev[0], 3, padding=1) if grid else nn.Linear(in_dim, math.prod(self.start))
        layers: list[nn.Module] = [nn.LeakyReLU(0.2)]
        for i in range(len(rev)):
            (sh, sw), (th, tw) = sizes[i], sizes[i + 1]
            out_ch = rev[i + 1] if i + 1 < len(rev) else c
            pad = (th - (2 * sh - 1), tw - (2 * sw - 1))
            layers.append(nn.ConvTranspose2d(rev[i], out_ch, 3, stride=2, padding=1, output_padding=pad))
            if i + 1 < len(rev):
                layers.append(nn.LeakyReLU(0.2))
                if dropout > 0:
                    layers.append(nn.Dropout2d(dropout))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z)
        return self.deconvs(h if self.grid else h.view(-1, *self.start))  # (B, C, H, W)


def encoder(arch: str, shape: Sequence[int], out_dim: int, *, hidden: Sequence[int],
            channels: Sequence[int], dropout: float = 0.0, grid: bool = False) -> nn.Module:
    """An MLP (flattening its input) or conv encoder from ``shape`` to ``out_dim``; with
    ``grid`` (conv only) to a latent grid of ``out_dim`` channels (``ConvEncoder``)."""
    if arch == "conv":
        if len(shape) != 3:
            raise ValueError(f"arch='conv' needs image data (C, H, W), got shape {tuple(shape)}; use arch='mlp'")
        return ConvEncoder(shape, channels, out_dim, dropout=dropout, grid=grid)
    if grid:
        raise ValueError("a latent grid needs arch='conv'")
    return nn.Sequential(nn.Flatten(), mlp([math.prod(shape), *hidden, out_dim], dropout=dropout))


def decoder(arch: str, in_dim: int, shape: Sequence[int], *, hidden: Sequence[int],
            channels: Sequence[int], dropout: float = 0.0, grid: bool = False) -> nn.Module:
    """The mirror of ``encoder``: ``(B, in_dim) -> (B, *shape)`` (with ``grid``, from a
    latent grid of ``in_dim`` channels)."""
    if arch == "conv":
        return ConvDecoder(in_dim, shape, channels, dropout=dropout, grid=grid)
    if grid:
        raise ValueError("a latent grid needs arch='conv'")
    return nn.Sequential(mlp([in_dim, *reversed(hidden), math.prod(shape)], dropout=dropout),
                         nn.Unflatten(1, tuple(shape)))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for parameters; buffers (batch-norm
    statistics) are copied, as in the EMA generators of ProGAN/StyleGAN."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def ema_decay_at(step: int, decay: float) -> float:
    """Warmed-up decay ``min(decay, (1 + step) / (10 + step))``: early averages forget the
    random initialisation quickly."""
    return min(decay, (1 + step) / (10 + step))
