"""Super-resolution GAN (Ledig et al. 2017, "Photo-realistic single image super-resolution
using a generative adversarial network"): a residual CNN with sub-pixel upsampling maps a
low-resolution image to ``factor`` times its size, trained with a content loss plus a
small adversarial loss against the family's conv discriminator.

The low-resolution inputs are made from the high-resolution training images by area
downsampling (``avg_pool2d``), as in the benchmark protocol of the field. The generator
adds its output to bicubic interpolation and its last layer starts at zero, so an untrained
model *is* bicubic interpolation and training only has to learn what bicubic misses.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...data.dataset import Dataset
from ...registry import MODELS
from . import losses
from .config import SRGANConfig
from .model import AdversarialModel, _whole
from .nets import Discriminator


def downsample(hr: torch.Tensor, factor: int) -> torch.Tensor:
    """Area downsampling ``(B, C, H, W) -> (B, C, H/f, W/f)`` (mean of each f x f block)."""
    return F.avg_pool2d(hr, factor)


def bicubic(lr: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic upsampling by ``factor`` (torch's ``interpolate``, ``align_corners=False``),
    unclamped."""
    return F.interpolate(lr, scale_factor=factor, mode="bicubic", align_corners=False)


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRGenerator(nn.Module):
    """``(B, C, h, w) -> (B, C, h*f, w*f)``: conv head, residual blocks (no batch norm, as in
    EDSR), sub-pixel upsampling (Shi et al. 2016; x2 steps when ``f`` is a power of two),
    a conv to the channels, plus bicubic interpolation of the input. Fully convolutional:
    any input size works."""

    def __init__(self, channels_in: int, factor: int, ch: int, n_blocks: int):
        super().__init__()
        self.factor = factor
        self.head = nn.Sequential(nn.Conv2d(channels_in, ch, 3, padding=1), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*[_ResBlock(ch) for _ in range(n_blocks)])
        steps = [2] * int(math.log2(factor)) if factor & (factor - 1) == 0 else [factor]
        up: list[nn.Module] = []
        for s in steps:
            up += [nn.Conv2d(ch, ch * s * s, 3, padding=1), nn.PixelShuffle(s), nn.LeakyReLU(0.2)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(ch, channels_in, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h = self.head(lr)  # (B, ch, h, w)
        h = self.up(h + self.blocks(h))  # (B, ch, h*f, w*f)
        return bicubic(lr, self.factor) + self.tail(h)


@MODELS.register("srgan", aliases=("super-resolution-gan",))
class SRGAN(AdversarialModel):
    """Learns ``factor``x upscaling from high-resolution images alone.

    What ``sample`` means here: a super-resolution model generates high-resolution images
    *given* low-resolution ones. ``sample(n, low_res=x)`` upscales ``x``; without
    ``low_res`` it upscales ``n`` low-resolution training images drawn (with ``generator``)
    from a bank of ``bank_size`` that the model keeps with its weights — so ``sample`` still
    returns images of the data shape, reproducibly, like every genlab model.

    Example:
        >>> sr = SRGAN(factor=4).fit("fashion-mnist", {"max_steps": 1000})
        >>> hr = sr.upscale(low_res)              # (B, 1, 7, 7) -> (B, 1, 28, 28)
    """

    model_type = "srgan"
    declared_tags = {"upscaling": True, "conditions": ("low_res",), "modality": "image"}
    config_class = SRGANConfig
    g_needs_data = True

    def data_defaults(self, dataset: Dataset) -> dict[str, Any]:
        if len(dataset.shape) != 3:
            raise ValueError(f"srgan needs image data (C, H, W), got shape {dataset.shape}")
        c, h, w = dataset.shape
        f = self.config.factor
        if h % f or w % f:
            raise ValueError(f"srgan: images of {h}x{w} are not divisible by factor={f}; "
                             f"crop or pad them, or choose another factor")
        return {}

    def build(self) -> None:
        c = self.config
        ch, h, w = c.data_shape
        f = c.factor
        self.generator = SRGenerator(ch, f, c.channels, c.n_blocks)
        self.discriminator = Discriminator(c.data_shape, arch="conv", channels=c.d_channels,
                                           spectral_norm=c.spectral_norm)
        self._make_ema()
        self.register_buffer("bank", torch.zeros(c.bank_size, ch, h // f, w // f))

    @property
    def low_res_shape(self) -> tuple[int, int, int]:
        ch, h, w = self.config.data_shape
        return ch, h // self.config.factor, w // self.config.factor

    def prepare_fit(self, train_ds: Dataset, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(len(train_ds), (self.config.bank_size,), generator=g)
        self.bank.copy_(downsample(train_ds.x[idx], self.config.factor))

    def d_step(self, batch: dict[str, torch.Tensor], g: torch.Generator, shard: Any = None) -> dict[str, torch.Tensor]:
        """Discriminator loss on high-resolution images and their upscaled downsamples
        (``shard`` keeps this process's rows of the global batch)."""
        take = shard or _whole
        hr = batch["x"]
        eps = self._penalty_weights(hr, g)
        hr, eps = take(hr), take(eps)
        with torch.no_grad():
            fake = self.generator(downsample(hr, self.config.factor))
        return self._d_loss(self.discriminator(hr), self.discriminator(fake), hr, fake, None, eps)

    def g_step(self, batch: dict[str, torch.Tensor], g: torch.Generator, shard: Any = None) -> dict[str, torch.Tensor]:
        """Content loss plus ``adv_weight`` times the adversarial loss of the upscales."""
        c = self.config
        hr = (shard or _whole)(batch["x"])
        sr = self.generator(downsample(hr, c.factor))
        content = F.mse_loss(sr, hr) if c.content == "mse" else F.l1_loss(sr, hr)
        out = {"content": content.detach()}
        loss = content
        if c.adv_weight > 0:
            adv = losses.g_loss(c.loss, self.discriminator(sr))
            loss = loss + c.adv_weight * adv
            out["adv"] = adv.detach()
        return {"g_loss": loss, **out}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Content MSE and PSNR of the upscaled area-downsampled ``batch``."""
        hr = batch["x"]
        sr = self.sampler(downsample(hr, self.config.factor)).clamp(0, 1)
        mse = (sr - hr).pow(2).flatten(1).mean(1)
        return {"loss": mse.mean(), "psnr": (-10 * torch.log10(mse.clamp_min(1e-10))).mean()}

    # -- progress grids and validation (used by the trainer)
    def fixed_inputs(self, data: Dataset, seed: int) -> dict[str, torch.Tensor]:
        return {"hr": data.x[:self.config.n_fixed]}

    @torch.no_grad()
    def progress_image(self, fixed: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows of (low-res nearest-upscaled | bicubic | model | original)."""
        hr, f = fixed["hr"], self.config.factor
        lr = downsample(hr, f)
        parts = [F.interpolate(lr, scale_factor=f, mode="nearest"), bicubic(lr, f).clamp(0, 1),
                 self._upscale(lr), hr]
        return torch.stack(parts, 1).reshape(-1, *hr.shape[1:])

    @torch.no_grad()
    def validate(self, val: Dataset, cache: dict[str, Any]):
        """PSNR of the model and of bicubic on ``val_samples`` validation images."""
        from ...metrics.functional import psnr

        hr = val.x[:self.config.val_samples]
        lr = downsample(hr, self.config.factor)
        scores = {"psnr": float(psnr(self._upscale(lr), hr).mean()),
                  "psnr_bicubic": float(psnr(bicubic(lr, self.config.factor).clamp(0, 1), hr).mean())}
        return scores, "psnr", True

    # -- use
    @torch.no_grad()
    def _upscale(self, lr: torch.Tensor) -> torch.Tensor:
        was = self.sampler.training
        self.sampler.eval()
        out = torch.cat([self.sampler(lr[i:i + 256]) for i in range(0, len(lr), 256)])
        self.sampler.train(was)
        return out.clamp(0, 1)

    @torch.no_grad()
    def upscale(self, low_res: Any) -> torch.Tensor:
        """Upscale images by ``factor``.

        Args:
            low_res: ``(B, C, h, w)`` (or one ``(C, h, w)``) images in [0, 1] with the model's
                channels; any size (the generator is fully convolutional).
        Returns:
            ``(B, C, h * factor, w * factor)`` in [0, 1].
        """
        self.check_fitted()
        x = torch.as_tensor(low_res, dtype=torch.float32)
        if x.dim() == 3:
            x = x[None]
        ch = self.config.data_shape[0]
        if x.dim() != 4 or x.shape[1] != ch or len(x) == 0:
            raise ValueError(f"low_res must be images (B, {ch}, h, w), got shape {tuple(x.shape)}")
        return self._upscale(x)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               low_res: Any = None) -> torch.Tensor:
        """High-resolution images: ``low_res`` upscaled, or (without it) ``n`` upscaled
        low-resolution training images drawn with ``generator`` from the kept bank.

        Returns:
            ``(n, *data_shape)`` for bank draws; ``(B, C, h*f, w*f)`` for ``low_res``.
        """
        self.check_fitted()
        if low_res is not None:
            out = self.upscale(low_res)
            if int(n) != len(out):
                raise ValueError(f"n={n} but low_res holds {len(out)} images")
            return out
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        idx = torch.randint(len(self.bank), (int(n),), generator=generator)
        return self._upscale(self.bank[idx])
