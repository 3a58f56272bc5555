"""Denoising with a (denoising) autoencoder, and the machinery the autoencoder pipelines share.

A denoising autoencoder (Vincent et al., 2008, "Extracting and composing robust features
with denoising autoencoders") is trained to map a corrupted input ``x~ ~ q(x~|x)`` back
to the clean ``x``; at test time ``decode(encode(x~))`` is the clean estimate. Train one
with ``Autoencoder(denoise_std=0.3)``; a plain autoencoder or a VAE also denoises a
little, because its bottleneck cannot represent the noise.

The quality measure is the PSNR gain: ``PSNR(denoised, clean) - PSNR(noisy, clean)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..capabilities import require
from ..errors import NotFittedError
from ..metrics.functional import psnr
from ..registry import PIPELINES

NOISE_KINDS = ("gaussian", "saltpepper")
BATCH = 1024  # rows per forward pass; keeps memory flat on large test sets


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None, *,
              clip: bool = True, kind: str = "gaussian") -> torch.Tensor:
    """Corrupt ``x`` the way a denoising autoencoder is tested.

    Args:
        x: ``(B, ...)`` clean data (images in ``[0, 1]``).
        std: for ``kind="gaussian"`` the standard deviation of the added noise
            ``x + std * N(0, 1)``; for ``kind="saltpepper"`` the probability that a value
            is replaced by 0 or 1 (each with probability ``std / 2``).
        generator: a seeded ``torch.Generator`` for reproducible noise.
        clip: clamp the result to ``[0, 1]`` (images); pass ``False`` for tables.
        kind: ``"gaussian"`` or ``"saltpepper"``.
    Returns:
        a new tensor of ``x``'s shape, float32.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    std = float(std)
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {kind!r}")
    if kind == "gaussian":
        if std < 0:
            raise ValueError(f"noise_std must be >= 0, got {std}")
        out = x + std * torch.randn(x.shape, generator=generator)
    else:
        if not 0 <= std <= 1:
            raise ValueError(f"salt-and-pepper noise_std is a probability in [0, 1], got {std}")
        u = torch.rand(x.shape, generator=generator)
        out = torch.where(u < std / 2, torch.zeros_like(x), x)
        out = torch.where((u >= std / 2) & (u < std), torch.ones_like(x), out)
    return out.clamp(0, 1) if clip else out


class ReconstructionPipeline:
    """Base of the pipelines built on an encoder/decoder model.

    Works with a ``genlab.models.Autoencoder`` (the code is ``encode(x)``) or an
    unconditional ``genlab.models.VAE`` (the code is the posterior mean ``mu``). Holds
    no training logic: it takes a fitted model.

    Args:
        model: a fitted Autoencoder or VAE.
    """

    #: what the model must be able to do (its tags)
    requires = ("latent", "reconstruction")

    def __init__(self, model: Any):
        tags = require(model, *self.requires, what=f"{type(self).__name__} (an Autoencoder or VAE: encode/decode)")
        if tags.conditional:
            raise ValueError(f"{type(self).__name__} does not support a conditional VAE "
                             "(num_classes > 0): train one with num_classes=0")
        if not model.fitted:
            raise NotFittedError(f"{type(self).__name__} needs a trained model: this "
                                 f"{type(model).__name__} has untrained weights (call fit first)")
        self.model = model.eval()

    @classmethod
    def from_run(cls, run_dir: str | Path, **kwargs: Any) -> "ReconstructionPipeline":
        """Build the pipeline on the trained model of a run folder.

        Args:
            run_dir: a folder made by ``genlab.workflow.train_run`` (or ``genlab train``).
            **kwargs: the pipeline's other constructor arguments.
        Returns:
            the pipeline.
        """
        from ..runs import Run

        return cls(Run(run_dir).model(), **kwargs)

    # -- shapes
    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.model.config.data_shape)

    @property
    def latent_dim(self) -> int:
        return int(self.model.config.latent_dim)

    def _check_x(self, x: Any, what: str = "x") -> torch.Tensor:
        """``x`` as float32 ``(B, *data_shape)``; a ``Dataset`` gives its ``x``."""
        if hasattr(x, "x") and hasattr(x, "kind"):  # a genlab Dataset
            x = x.x
        x = torch.as_tensor(x, dtype=torch.float32)
        shape = self.data_shape
        if x.dim() == len(shape) and tuple(x.shape) == shape:
            raise ValueError(f"{what} must be a batch (B, {', '.join(map(str, shape))}); "
                             f"got one example of shape {tuple(x.shape)}: use x[None]")
        if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"{what} must have shape (B, {', '.join(map(str, shape))}) for this "
                             f"model, got {tuple(x.shape)}")
        if len(x) == 0:
            raise ValueError(f"{what} is empty")
        return x

    # -- the maps, in eval mode and in fixed-size batches
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, latent_dim)`` (a VAE gives its posterior mean)."""
        x = self._check_x(x)
        out = []
        for s in range(0, len(x), BATCH):
            z = self.model.encode(x[s:s + BATCH])
            out.append(z[0] if isinstance(z, tuple) else z)
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Data-space reconstructions ``(B, *data_shape)`` of codes ``(B, latent_dim)``."""
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"codes must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return torch.cat([self.model.decode(z[s:s + BATCH]) for s in range(0, len(z), BATCH)])

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x))``, shape of ``x``."""
        return self.decode(self.encode(x))


@PIPELINES.register("denoising", aliases=("denoiser",))
class Denoiser(ReconstructionPipeline):
    """Remove noise from inputs with a (denoising) autoencoder.

    Example:
        >>> ae = Autoencoder(denoise_std=0.3).fit("digits")
        >>> den = Denoiser(ae)
        >>> clean_hat = den(noisy)                         # (B, 1, 8, 8)
        >>> den.evaluate(test.x, noise_std=[0.1, 0.3])     # PSNR gain per noise level

    Args:
        model: a fitted Autoencoder (ideally trained with ``denoise_std > 0``) or VAE.
    """

    def __call__(self, noisy: torch.Tensor) -> torch.Tensor:
        """The clean estimate ``decode(encode(noisy))``, same shape as ``noisy``."""
        return self.reconstruct(noisy)

    def evaluate(self, clean_x: Any, *, noise_std: float | Sequence[float] = 0.3,
                 noise: str = "gaussian", generator: torch.Generator | None = None,
                 clip: bool = True, data_range: float = 1.0) -> dict[str, float]:
        """Corrupt clean data, denoise it, and measure the PSNR gain.

        Args:
            clean_x: ``(B, *data_shape)`` clean examples (or a ``Dataset``).
            noise_std: one noise level or a list of them (see ``add_noise``).
            noise: ``"gaussian"`` or ``"saltpepper"``.
            generator: seeded generator for the noise (default: seed 0, so repeated calls
                agree).
            clip: clamp noisy inputs to ``[0, 1]``.
            data_range: signal range for PSNR (1 for images in ``[0, 1]``).
        Returns:
            ``{"psnr_noisy_db", "psnr_denoised_db", "psnr_gain_db"}`` (means over the
            examples) for one level; for a list, those keys suffixed ``@<level>``
            (e.g. ``psnr_gain_db@0.3``).
        """
        clean = self._check_x(clean_x, "clean_x")
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        levels = [noise_std] if isinstance(noise_std, (int, float)) else list(noise_std)
        if not levels:
            raise ValueError("noise_std must be a number or a non-empty list of numbers")
        out: dict[str, float] = {}
        for level in levels:
            noisy = add_noise(clean, level, generator, clip=clip, kind=noise)
            before = float(_finite_mean(psnr(noisy, clean, data_range=data_range)))
            after = float(_finite_mean(psnr(self(noisy), clean, data_range=data_range)))
            suffix = "" if isinstance(noise_std, (int, float)) else f"@{level:g}"
            out[f"psnr_noisy_db{suffix}"] = before
            out[f"psnr_denoised_db{suffix}"] = after
            out[f"psnr_gain_db{suffix}"] = after - before
        return out


def _finite_mean(v: torch.Tensor) -> torch.Tensor:
    """Mean of the finite entries (an exact reconstruction has infinite PSNR)."""
    fin = v[torch.isfinite(v)]
    return fin.mean() if len(fin) else v.mean()
