"""What the diffusion family adds to genlab's registries: ``genlab sample RUN -o x.gif``
writes the denoising trajectory (noise to samples) of the first samples as an animation."""
from __future__ import annotations

from typing import Any

import torch

from ...capabilities import SAMPLE_WRITERS
from ...imaging import save_trajectory_gif

#: at most this many samples animate (a grid of 8 x 8)
GIF_MAX = 64
GIF_FRAMES = 24


@SAMPLE_WRITERS.register(".gif", requires={"family": "diffusion", "modality": "image"})
def write_trajectory_gif(job: Any) -> None:
    """``genlab sample RUN -n 16 -o traj.gif``: the first ``min(n, 64)`` samples'
    trajectories, one grid per frame, with the sampler options given (``--sampler``,
    ``--steps``, ``--guidance``, ``--y``); the seed is chunk 0's, so the last frame shows
    the same images as ``-o samples.png`` with the same seed."""
    n = min(job.n, GIF_MAX)
    frames = job.model.sample_trajectory(n, frames=GIF_FRAMES, generator=torch.Generator().manual_seed(job.seed),
                                         **job.sample_options)
    with job.replacing() as tmp:
        save_trajectory_gif(frames, tmp)
