"""``genlab imagine RUN "a red circle at the top left" [CAPTION ...] -n 8 --guidance 3 -o
grid.png``: images from captions with a text-conditional diffusion run.

Each caption gives one row of ``-n`` images from consecutive seeds, its text written above
the row; the tiles are enlarged for viewing. ``.npy`` instead of ``.png`` writes the
images themselves ``(captions * n, C, H, W)`` in [0, 1], caption by caption."""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import COMMANDS, Command

MIN_TILE_PX = 64


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("imagine", help="images from captions with a text-to-image diffusion run",
                       description="Sample -n images for each CAPTION from a diffusion run trained on captioned "
                                   "images (e.g. genlab train diffusion --data captioned-shapes).")
    s.add_argument("run", help="run folder (or model folder) of a text-conditional diffusion model")
    s.add_argument("captions", nargs="+", metavar="CAPTION", help="one or more captions (quote each)")
    s.add_argument("-o", "--output", required=True, help="output .png (a row per caption) or .npy (the images)")
    s.add_argument("-n", type=int, default=8, help="images per caption (default 8)")
    s.add_argument("--guidance", type=float, help="classifier-free guidance w (default: the model's; 3 follows "
                                                  "captions more closely)")
    s.add_argument("--sampler", help="ddpm, ddim, dpm++, euler or heun (default: the model's)")
    s.add_argument("--steps", type=int, help="sampler steps (default: the sampler's)")
    s.add_argument("--seed", type=int, default=0, help="seed of the first caption's images (default 0)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return s


def _labelled_rows(rows: list[Any], captions: list[str]):
    """One image: each caption's text above its row of tiles."""
    from PIL import Image, ImageDraw

    from ..imaging import image_grid

    scale = max(1, math.ceil(MIN_TILE_PX / max(1, min(rows[0].shape[-2:]))))
    strips = [image_grid(r, nrow=len(r), pad=2, scale=scale).convert("RGB") for r in rows]
    width = max(s.width for s in strips)
    band = 16
    out = Image.new("RGB", (width, sum(s.height + band for s in strips)), "white")
    draw = ImageDraw.Draw(out)
    y = 0
    for cap, strip in zip(captions, strips):
        draw.text((4, y + 2), cap if len(cap) * 6 < width else cap[: max(1, width // 6 - 1)] + "…", fill="black")
        out.paste(strip, (0, y + band))
        y += strip.height + band
    return out


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..base import load
    from ..capabilities import tags_of
    from ..outputs import check_new_files, check_writable

    if args.n < 1:
        raise UsageError(f"-n must be >= 1, got {args.n}")
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"-o must name a .png or .npy file, got {out}")
    captions = [c.strip() for c in args.captions]
    if any(not c for c in captions):
        raise UsageError("a caption is empty: quote each caption, e.g. \"a red circle at the top left\"")
    model = load(args.run)
    tags = tags_of(model)
    if tags.modality != "image" or "prompt" not in tags.conditions:
        raise UsageError(f"{args.run} holds a {tags.family} model that does not draw images from captions; "
                         "train one on captioned images: genlab train diffusion --data captioned-shapes")
    check_new_files([out], overwrite=args.overwrite)
    check_writable(out.parent if str(out.parent) else Path("."))
    rows = []
    try:
        for i, cap in enumerate(captions):
            g = torch.Generator().manual_seed(args.seed + i)
            rows.append(model.sample(args.n, prompt=cap, guidance=args.guidance, sampler=args.sampler,
                                     steps=args.steps, generator=g))
            print(f"imagine: {i + 1}/{len(captions)} {cap!r}", flush=True)
    except ValueError as e:
        raise UsageError(str(e)) from None
    # written beside the target and renamed: an interrupted write leaves no half file
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if out.suffix.lower() == ".npy":
                np.save(f, torch.cat(rows).numpy())
            else:
                _labelled_rows(rows, captions).save(f, format="PNG")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{len(captions)} caption(s) x {args.n} images -> {out}")
    return 0


COMMANDS.register("imagine")(Command(add_parser, run, order=106))
