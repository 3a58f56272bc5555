"""Report section for diffusion runs: the denoising trajectory, noise to samples, as an
animated GIF (``figures/trajectory.gif``) and as a strip of still frames (the GIF does
not animate in print)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..capabilities import REPORT_SECTIONS
from ..imaging import image_grid, save_trajectory_gif

FRAMES = 16
N_TRAJ = 16
STRIP_FRAMES = 8


def _trajectory(ctx: Any) -> torch.Tensor:
    k = ctx.tags.num_classes
    y = (torch.arange(N_TRAJ) % k) if k > 0 else None
    return ctx.model.sample_trajectory(N_TRAJ, frames=FRAMES, y=y,
                                       generator=torch.Generator().manual_seed(ctx.seed))


@REPORT_SECTIONS.register("denoising-trajectory", requires={"family": "diffusion", "modality": "image"}, order=25)
def _trajectory_section(ctx: Any) -> None:
    cache: dict[str, torch.Tensor] = {}

    def frames() -> torch.Tensor:
        if "f" not in cache:
            cache["f"] = _trajectory(ctx)
        return cache["f"]

    def gif() -> tuple[Path, str]:
        path = save_trajectory_gif(frames(), ctx.run.figure("trajectory.gif"), nrow=4)
        return path, (f"{N_TRAJ} samples from noise to image, {FRAMES} frames of the model's default sampler "
                      f"({ctx.model.config.sampler}), seed {ctx.seed}")

    def strip() -> tuple[Path, str]:
        f = frames()
        idx = torch.linspace(0, len(f) - 1, STRIP_FRAMES).round().long()
        tiles = f[idx, :4].transpose(0, 1).reshape(-1, *f.shape[2:])  # 4 rows: one sample's frames each
        path = ctx.run.figure("trajectory_strip.png")
        image_grid(tiles, nrow=STRIP_FRAMES, pad=1).save(path, format="PNG")
        return path, f"four of them at {STRIP_FRAMES} evenly spaced sampler steps (left: pure noise)"

    ctx.figs.add("Denoising trajectory", gif)
    ctx.figs.add("Denoising trajectory, frame by frame", strip)
