"""Generator and discriminator networks: MLPs (2-D toys, tables) and DCGAN-style conv nets
sized from the image shape (8x8, 28x28, any size), with the options of the family:
conditional batch norm / concatenation in G, projection discriminator, spectral norm,
minibatch standard deviation and PacGAN packing in D."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import conv_sizes


# ----------------------------------------------------------------------------- D helpers
def pack_inputs(x: torch.Tensor, pack: int) -> torch.Tensor:
    """PacGAN packing (Lin et al. 2018): ``pack`` consecutive examples become one input.

    Shapes: ``(B, C, H, W) -> (B/pack, pack*C, H, W)``; ``(B, D) -> (B/pack, pack*D)``.
    ``B`` must be a multiple of ``pack`` (the training loop trims its batches).
    """
    if pack == 1:
        return x
    b = x.shape[0]
    assert b % pack == 0, (b, pack)
    return x.reshape(b // pack, pack * x.shape[1], *x.shape[2:])


def minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """Append the minibatch standard deviation as one more channel / feature
    (Karras et al. 2018, "Progressive growing of GANs", sec. 3).

    The batch is split into groups of ``g = gcd(B, group)`` examples (consecutive rows of a
    group are spread over groups: row ``i`` belongs to group ``i % (B/g)``); within a group
    the std of every feature is taken over the examples and averaged into one number, which
    is appended to each example of the group.

    Shapes: ``(B, C, H, W) -> (B, C+1, H, W)``; ``(B, D) -> (B, D+1)``.
    """
    b = h.shape[0]
    g = math.gcd(b, group)
    if g == 1:
        g = b  # e.g. an odd batch: one group over the whole batch
    y = h.reshape(g, b // g, *h.shape[1:])  # (g, B/g, ...)
    std = (y.var(0, unbiased=False) + 1e-8).sqrt()  # (B/g, ...)
    s = std.reshape(b // g, -1).mean(1)  # (B/g,)
    s = s.repeat(g)  # row i -> group i % (B/g)
    extra = s.reshape(b, *([1] * (h.dim() - 1))).expand(b, 1, *h.shape[2:])
    return torch.cat([h, extra], 1)


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if on else module


class Discriminator(nn.Module):
    """An MLP or a stride-2 conv net to one logit per (packed) input, with an optional
    projection term ``<embed(y), phi(x)>`` for class labels (Miyato & Koyama 2018).

    Shapes: ``x (B, *data_shape)``, ``y (B,)`` -> ``(B/pack,)``.
    """

    def __init__(self, data_shape: Sequence[int], *, arch: str, hidden: Sequence[int] = (256, 256),
                 channels: Sequence[int] = (64, 128), spectral_norm: bool = False,
                 minibatch_std: bool = False, mbstd_group: int = 4, pack: int = 1,
                 num_classes: int = 0):
        super().__init__()
        self.pack, self.mbstd, self.group = pack, minibatch_std, mbstd_group
        extra = 1 if minibatch_std else 0
        if arch == "conv":
            c, h, w = data_shape
            sizes = conv_sizes((h, w), len(channels))
            layers: list[nn.Module] = []
            prev = c * pack
            for i, ch in enumerate(channels):  # k=4 on even sizes (DCGAN), 3 on odd: n -> ceil(n/2)
                k = 4 if sizes[i][0] % 2 == 0 and sizes[i][1] % 2 == 0 else 3
                layers += [_sn(nn.Conv2d(prev, ch, k, stride=2, padding=1), spectral_norm), nn.LeakyReLU(0.2)]
                prev = ch
            self.body = nn.Sequential(*layers)
            fh, fw = sizes[-1]
            self.final = nn.Sequential(_sn(nn.Conv2d(prev + extra, prev, 3, padding=1), spectral_norm),
                                       nn.LeakyReLU(0.2), nn.Flatten())
            feat = prev * fh * fw
        else:
            d = math.prod(data_shape) * pack
            layers = []
            for width in hidden:
                layers += [_sn(nn.Linear(d, width), spectral_norm), nn.LeakyReLU(0.2)]
                d = width
            self.body = nn.Sequential(nn.Flatten(), *layers)
            self.final = nn.Identity()
            feat = d + extra
        self.head = _sn(nn.Linear(feat, 1), spectral_norm)
        self.embed = _sn(nn.Embedding(num_classes, feat), spectral_norm) if num_classes > 0 else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(pack_inputs(x, self.pack))  # (B/pack, C', h, w) or (B/pack, D')
        if self.mbstd:
            h = minibatch_std(h, self.group)
        h = self.final(h)  # (B/pack, F)
        out = self.head(h).squeeze(1)  # (B/pack,)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is conditional: pass labels y")
            out = out + (self.embed(y) * h).sum(1)  # projection
        return out


# ----------------------------------------------------------------------------- G helpers
class CondBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class (de Vries et al. 2017;
    Miyato & Koyama 2018). Without classes it is a plain affine batch norm."""

    def __init__(self, ch: int, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(ch, affine=num_classes == 0)
        if num_classes:
            self.gamma = nn.Embedding(num_classes, ch)
            self.beta = nn.Embedding(num_classes, ch)
            nn.init.ones_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bn(x)
        if self.num_classes:
            h = self.gamma(y)[:, :, None, None] * h + self.beta(y)[:, :, None, None]
        return h


class Generator(nn.Module):
    """``z (B, latent_dim)`` (+ labels) -> ``(B, *data_shape)`` in data space.

    ``mlp``: an MLP with ReLU (and batch norm before each ReLU when ``batchnorm``, as in
    the toy generators of VEEGAN / PacGAN); labels are concatenated to ``z`` as one-hot vectors.
    ``conv``: a linear stem to the smallest feature map, then stride-2 transposed convs
    (kernel 4 when the size doubles exactly, 3 when it lands on an odd size) with batch
    norm (conditional when ``g_cond='cbn'``) and ReLU, then a 3x3 conv to the channels.
    ``output='sigmoid'`` maps to [0, 1] (images), ``linear`` leaves it unbounded.
    """

    def __init__(self, latent_dim: int, data_shape: Sequence[int], *, arch: str,
                 hidden: Sequence[int] = (256, 256), channels: Sequence[int] = (128, 64),
                 num_classes: int = 0, g_cond: str = "concat", output: str = "linear",
                 batchnorm: bool = False):
        super().__init__()
        self.data_shape, self.arch, self.output = tuple(data_shape), arch, output
        self.num_classes = num_classes
        self.concat = num_classes if (num_classes and g_cond == "concat") else 0
        cbn_classes = num_classes if g_cond == "cbn" else 0
        zin = latent_dim + self.concat
        if arch == "conv":
            c, h, w = data_shape
            sizes = conv_sizes((h, w), len(channels))[::-1]  # smallest first
            self.start = (channels[0], *sizes[0])
            self.stem = nn.Linear(zin, math.prod(self.start))
            self.norms = nn.ModuleList([CondBatchNorm2d(channels[0], cbn_classes)])
            self.ups = nn.ModuleList()
            for i in range(len(channels)):
                (sh, sw), (th, tw) = sizes[i], sizes[i + 1]
                out_ch = channels[i + 1] if i + 1 < len(channels) else channels[-1]
                k = 4 if (th, tw) == (2 * sh, 2 * sw) else 3
                pad = (th - (2 * sh - 1), tw - (2 * sw - 1)) if k == 3 else (0, 0)
                self.ups.append(nn.ConvTranspose2d(channels[i], out_ch, k, stride=2, padding=1, output_padding=pad))
                self.norms.append(CondBatchNorm2d(out_ch, cbn_classes))
            self.to_data = nn.Conv2d(channels[-1], c, 3, padding=1)
        else:
            layers: list[nn.Module] = []
            d = zin
            for width in hidden:
                layers += [nn.Linear(d, width), *([nn.BatchNorm1d(width)] if batchnorm else []), nn.ReLU()]
                d = width
            layers.append(nn.Linear(d, math.prod(data_shape)))
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and y is None:
            raise ValueError("this generator is conditional: pass labels y")
        if self.concat:
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], 1)
        if self.arch == "conv":
            h = self.stem(z).view(-1, *self.start)  # (B, C0, h0, w0)
            h = F.relu(self.norms[0](h, y))
            for up, norm in zip(self.ups, self.norms[1:]):
                h = F.relu(norm(up(h), y))  # (B, C_i, 2h, 2w) or odd size
            out = self.to_data(h)  # (B, C, H, W)
        else:
            out = self.net(z).view(-1, *self.data_shape)
        return torch.sigmoid(out) if self.output == "sigmoid" else out
