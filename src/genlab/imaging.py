"""Image primitives: tile a batch of images into one picture and write it as PNG, and a
matplotlib figure on an Agg canvas (no pyplot, no global backend change) with its writer.

A core module (numpy, torch, Pillow and matplotlib only, no genlab imports), so every layer
can draw: the GAN loop's fixed-noise samples, ``genlab sample -o grid.png``, evaluation
figures, the report. ``genlab.report`` re-exports ``image_grid`` and ``save_grid``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

MIN_TILE_PX = 48  # small images (8x8 digits) are upscaled so that each tile is readable
PAD_VALUE = 0.75  # light grey between tiles


def as_array(x: Any, name: str) -> np.ndarray:
    """``x`` (a tensor or anything numpy reads) as a float32 array; a ValueError naming
    ``name`` when it holds no numbers."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float32).numpy()
    try:
        return np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a tensor or array of numbers ({e})") from None


def image_grid(x: Any, *, nrow: int | None = None, pad: int = 1, scale: int | None = None) -> Image.Image:
    """Tile a batch of images into one picture.

    Args:
        x: ``(B, C, H, W)`` tensor or array with values in ``[0, 1]`` (values outside
            are clipped, NaN shows as black); ``C`` is 1 (greyscale) or 3 (RGB).
        nrow: images per row (default: ``ceil(sqrt(B))``).
        pad: light-grey pixels between tiles and around the border, in output pixels.
        scale: integer nearest-neighbour upscaling factor; default: the smallest that
            makes every tile at least 48 pixels on its shorter side.
    Returns:
        a PIL image, mode ``"L"`` for one channel or ``"RGB"`` for three, of size
        ``(nrow * W * scale + (nrow + 1) * pad, rows * H * scale + (rows + 1) * pad)``.
    Raises:
        ValueError: on a batch that is not ``(B, 1|3, H, W)`` with ``B >= 1``, or on bad
            ``nrow`` / ``pad`` / ``scale``.
    """
    a = as_array(x, "image_grid: x")
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        raise ValueError(
            f"image_grid needs images shaped (B, C, H, W) with C = 1 or 3, got shape {tuple(a.shape)}"
        )
    b, c, h, w = a.shape
    if b == 0 or h == 0 or w == 0:
        raise ValueError(f"image_grid got an empty batch of shape {tuple(a.shape)}")
    nrow = math.ceil(math.sqrt(b)) if nrow is None else int(nrow)
    if nrow < 1:
        raise ValueError(f"image_grid: nrow must be >= 1, got {nrow}")
    nrow = min(nrow, b)
    if scale is None:
        scale = max(1, math.ceil(MIN_TILE_PX / min(h, w)))
    if int(scale) < 1 or int(pad) < 0:
        raise ValueError(f"image_grid: scale must be >= 1 and pad >= 0, got scale={scale}, pad={pad}")
    scale, pad = int(scale), int(pad)
    a = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if scale > 1:
        a = a.repeat(scale, axis=2).repeat(scale, axis=3)
    th, tw = h * scale, w * scale
    rows = math.ceil(b / nrow)
    grid = np.full((c, rows * th + (rows + 1) * pad, nrow * tw + (nrow + 1) * pad), PAD_VALUE, np.float32)
    for i in range(b):
        r, col = divmod(i, nrow)
        top, left = pad + r * (th + pad), pad + col * (tw + pad)
        grid[:, top:top + th, left:left + tw] = a[i]
    pixels = np.round(grid * 255).astype(np.uint8)
    if c == 1:
        return Image.fromarray(pixels[0])  # uint8 (H, W) -> "L"
    return Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))  # -> "RGB"


def save_grid(x: Any, path: str | Path, **kw: Any) -> Path:
    """Write ``image_grid(x, **kw)`` to ``path`` as PNG.

    Args:
        x: ``(B, C, H, W)`` images in ``[0, 1]``.
        path: the PNG file to write (parent folders are created).
        **kw: ``nrow``, ``pad``, ``scale`` for ``image_grid``.
    Returns:
        the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(x, **kw).save(path, format="PNG")
    return path


def agg_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as PNG (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def save_trajectory_gif(frames: Any, path: Any, *, nrow: int | None = None, ms_per_frame: int = 120,
                        hold_last_ms: int = 1500) -> Path:
    """Animate ``frames`` ``(F, B, C, H, W)`` in ``[0, 1]`` (e.g. a diffusion model's
    ``sample_trajectory``) as a GIF of image grids, the last frame held ``hold_last_ms``;
    written to a hidden temporary name and renamed."""
    frames = torch.as_tensor(frames)
    if frames.dim() != 5:
        raise ValueError(f"frames must be (F, B, C, H, W), got {tuple(frames.shape)}")
    images = [image_grid(f, nrow=nrow).convert("RGB") for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    durations = [ms_per_frame] * (len(images) - 1) + [hold_last_ms]
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    tmp.replace(path)
    return path
