"""Super-resolution: upscale low-resolution images with a trained ``SRGAN`` and measure it
against bicubic interpolation.

The protocol (as in the super-resolution literature): the test images are the
high-resolution ground truth; the inputs are made from them by area downsampling by the
model's ``factor``; PSNR and SSIM (Wang et al. 2004) of the model's output and of bicubic
interpolation are computed against the ground truth.

    >>> sr = SuperResolution.from_run("runs/srgan-fashion")
    >>> hr = sr(low_res)                                    # (B, 1, 7, 7) -> (B, 1, 28, 28)
    >>> sr.evaluate(test.x)   # {"psnr", "ssim", "psnr_bicubic", "ssim_bicubic", ...}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..metrics.functional import (  # noqa: F401  (ssim re-exported: it lived here)
    SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW, gaussian_window, psnr, ssim,
)
from ..capabilities import require
from ..registry import PIPELINES


@PIPELINES.register("super-resolution", aliases=("upscale", "sr"))
class SuperResolution:
    """Upscale images with a fitted ``SRGAN`` (``genlab.models.SRGAN``).

    Args:
        model: a fitted SRGAN.
    """

    #: what the model must be able to do (its tags)
    requires = ("upscaling",)

    def __init__(self, model: Any):
        require(model, *self.requires, what="SuperResolution (a super-resolution model: train one with `genlab train srgan --data ...`)")
        model.check_fitted()
        self.model = model.eval()

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "SuperResolution":
        """The pipeline on the trained model of a run folder."""
        from ..runs import Run

        return cls(Run(run_dir).model())

    @property
    def factor(self) -> int:
        return int(self.model.config.factor)

    @property
    def channels(self) -> int:
        return int(self.model.config.data_shape[0])

    def __call__(self, low_res: Any) -> torch.Tensor:
        """``(B, C, h, w)`` (or ``(C, h, w)``) in [0, 1] -> ``(B, C, h*f, w*f)`` in [0, 1]."""
        return self.model.upscale(low_res)

    def downsample(self, high_res: torch.Tensor) -> torch.Tensor:
        """The protocol's low-resolution inputs: area downsampling by ``factor``."""
        from ..models.gan.sr import downsample

        return downsample(torch.as_tensor(high_res, dtype=torch.float32), self.factor)

    def bicubic(self, low_res: torch.Tensor) -> torch.Tensor:
        """The baseline: bicubic interpolation by ``factor``, clamped to [0, 1]."""
        return F.interpolate(torch.as_tensor(low_res, dtype=torch.float32), scale_factor=self.factor,
                             mode="bicubic", align_corners=False).clamp(0, 1)

    @torch.no_grad()
    def evaluate(self, high_res_test: Any) -> dict[str, float]:
        """PSNR and SSIM of the model and of bicubic interpolation on test images.

        Args:
            high_res_test: ``(N, C, H, W)`` ground-truth images in [0, 1] (or a ``Dataset``);
                ``H`` and ``W`` divisible by ``factor``.
        Returns:
            ``psnr``, ``ssim``, ``psnr_bicubic``, ``ssim_bicubic`` (means over the images,
            PSNR in dB with data range 1), ``psnr_gain`` and ``n``.
        """
        hr = getattr(high_res_test, "x", high_res_test)
        hr = torch.as_tensor(hr, dtype=torch.float32)
        f = self.factor
        if hr.dim() != 4 or hr.shape[1] != self.channels or hr.shape[2] % f or hr.shape[3] % f or not len(hr):
            raise ValueError(f"evaluate needs images (N, {self.channels}, H, W) with H, W divisible by "
                             f"{f}, got {tuple(hr.shape)}")
        lr = self.downsample(hr)
        out = {"psnr": [], "ssim": [], "psnr_bicubic": [], "ssim_bicubic": []}
        for i in range(0, len(hr), 500):
            h, l = hr[i:i + 500], lr[i:i + 500]
            sr, bc = self(l), self.bicubic(l)
            out["psnr"].append(psnr(sr, h))
            out["ssim"].append(ssim(sr, h))
            out["psnr_bicubic"].append(psnr(bc, h))
            out["ssim_bicubic"].append(ssim(bc, h))
        res = {k: float(torch.cat(v).double().mean()) for k, v in out.items()}
        res["psnr_gain"] = res["psnr"] - res["psnr_bicubic"]
        res["n"] = len(hr)
        return res

    @torch.no_grad()
    def side_by_side(self, low_res: Any) -> torch.Tensor:
        """For each input, ``(nearest-upscaled input, bicubic, model)`` as a batch of
        ``3B`` images in that order (tile with ``nrow=3``)."""
        lr = torch.as_tensor(low_res, dtype=torch.float32)
        lr = lr[None] if lr.dim() == 3 else lr
        parts = [F.interpolate(lr, scale_factor=self.factor, mode="nearest").clamp(0, 1),
                 self.bicubic(lr), self(lr)]
        return torch.stack(parts, 1).reshape(-1, *parts[0].shape[1:])
