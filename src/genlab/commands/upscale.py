"""``genlab upscale RUN IMAGE [IMAGE ...] -o OUTDIR``: super-resolve images with a trained
``srgan`` run (a command module, see ``genlab.commands``)."""
from __future__ import annotations

from ..errors import UsageError
from . import COMMANDS, Command

import argparse
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    s = subparsers.add_parser(
        "upscale", help="upscale images with a trained super-resolution (srgan) run",
        description="Upscale PNG/JPEG images by the run's factor. Writes NAME_xF.png and "
                    "NAME_compare.png (input nearest-upscaled | bicubic | model, each tile "
                    f"enlarged to at least {COMPARE_MIN_PX} px for viewing) per image.")
    s.add_argument("run", help="run folder of a trained srgan (genlab train srgan --data ...)")
    s.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    s.add_argument("-o", "--out", default="upscaled", help="output folder (default: ./upscaled)")
    s.add_argument("--threads", type=int)
    s.add_argument("--overwrite", action="store_true", help="replace output images that already exist")
    return s


COMPARE_MIN_PX = 256  # each tile of NAME_compare.png is enlarged (nearest) to at least this


def compare_scale(hw: Any) -> int:
    """The integer nearest-neighbour factor that makes a comparison tile of height/width
    ``hw`` at least ``COMPARE_MIN_PX`` on its shorter side (1 for large images)."""
    import math

    return max(1, math.ceil(COMPARE_MIN_PX / max(1, min(int(v) for v in hw))))


def read_image(path: Path, channels: int, *, size: tuple[int, int] | None = None):
    """``(C, h, w)`` in [0, 1] from an image file, converted to ``channels`` (and resized
    bicubically to ``size = (h, w)``); a missing or unreadable file is a ``UsageError``."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UsageError(f"no image at {path}")
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None:
                im = im.resize((size[1], size[0]), Image.Resampling.BICUBIC)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as e:
        raise UsageError(f"{path} is not an image Pillow can read ({e})") from None
    t = torch.from_numpy(a.copy())
    return t[None] if channels == 1 else t.permute(2, 0, 1)  # (C, h, w)


def _write(x, path: Path) -> None:
    import numpy as np
    from PIL import Image

    a = np.round(x.clamp(0, 1).numpy() * 255).astype(np.uint8)  # (C, H, W)
    Image.fromarray(a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))).save(path, format="PNG")


def cmd_upscale(args: argparse.Namespace) -> int:
    from .._threads import set_threads
    from ..pipelines.super_resolution import SuperResolution
    from ..imaging import image_grid
    from ..runs import Run

    set_threads(args.threads)
    run = Run(args.run)
    if run.info.get("model_type") not in ("srgan", "super-resolution-gan"):
        raise UsageError(f"{args.run} is a {run.info.get('model_type')!r} run; upscale needs an srgan run "
                         "(genlab train srgan --data DATA)")
    pipe = SuperResolution.from_run(args.run)
    paths = [Path(p) for p in args.images]
    bad = [p for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]
    if bad:
        raise UsageError(f"{bad[0]} does not look like an image (expected one of {', '.join(IMAGE_SUFFIXES)})")
    from ..outputs import check_new_files, check_writable

    out = Path(args.out)
    f = pipe.factor
    # every input is read before anything is written: a missing or unreadable image leaves
    # no output folder behind
    images = [(p, read_image(p, pipe.channels)) for p in paths]
    check_new_files([out / n for p in paths for n in (f"{p.stem}_x{f}.png", f"{p.stem}_compare.png")],
                    overwrite=args.overwrite)
    check_writable(out)
    for p, lr in images:
        hr = pipe(lr)[0]
        _write(hr, out / f"{p.stem}_x{f}.png")
        trio = pipe.side_by_side(lr)  # (3, C, H, W)
        image_grid(trio, nrow=3, pad=2, scale=compare_scale(trio.shape[-2:])).save(
            out / f"{p.stem}_compare.png", format="PNG")
        print(f"{p} ({lr.shape[2]}x{lr.shape[1]}) -> {out / f'{p.stem}_x{f}.png'} "
              f"({hr.shape[2]}x{hr.shape[1]}), comparison {out / f'{p.stem}_compare.png'}")
    return 0


COMMANDS.register("upscale")(Command(add_parser, cmd_upscale, order=100))
