"""``genlab img2img RUN IMAGE -o OUT.png`` and ``genlab inpaint RUN IMAGE --box ... -o
OUT.png``: edit an image with a trained diffusion run (``genlab.pipelines.DiffusionEditor``).

The image is read with Pillow, converted to the model's channels and resized to its size;
the output is one PNG row: the input (and, for inpainting, the input with the hole
greyed), then ``-n`` results from consecutive seeds, each tile enlarged for viewing."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import COMMANDS, Command
from .upscale import read_image

MIN_TILE_PX = 128


def _read_resized(path: Path, shape: tuple[int, ...]):
    return read_image(path, shape[0], size=(shape[1], shape[2]))


def _common(s: argparse.ArgumentParser) -> None:
    s.add_argument("run", help="run folder (or model folder) of a trained diffusion model")
    s.add_argument("image", help="the image to edit (PNG, JPEG, ...; resized to the model's size)")
    s.add_argument("-o", "--output", required=True, help="output .png: input, then the results in a row")
    s.add_argument("-n", type=int, default=4, help="results from consecutive seeds (default 4)")
    s.add_argument("--y", type=int, help="class to steer toward (class-conditional models)")
    s.add_argument("--guidance", type=float, help="classifier-free guidance w (default: the model's)")
    s.add_argument("--steps", type=int, help="sampler steps")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def add_img2img(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("img2img", help="image-to-image with a diffusion run (SDEdit)",
                       description="Noise IMAGE a STRENGTH of the way and denoise it with the run's model "
                                   "(SDEdit): 0 keeps the image, 1 ignores it.")
    _common(s)
    s.add_argument("--strength", type=float, default=0.6, help="how much to change, in [0, 1] (default 0.6)")
    s.add_argument("--sampler", default="ddim", help="ddpm, ddim or dpm++ (default ddim)")
    return s


def add_inpaint(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("inpaint", help="fill a region of an image with a diffusion run (RePaint)",
                       description="Regenerate the masked region of IMAGE and keep the rest exactly (RePaint).")
    _common(s)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", help="mask image: white (> 50%%) = regenerate; resized to the model's size")
    g.add_argument("--box", help="region to regenerate as fractions x0,y0,x1,y1 of width and height "
                                 "(e.g. 0.5,0,1,1: the right half)")
    s.add_argument("--jump", type=int, default=5, help="RePaint jump length (default 5)")
    s.add_argument("--resample", type=int, default=5, help="RePaint resamplings per jump (default 5; 1 = none)")
    return s


def _editor(args: argparse.Namespace):
    from ..base import load
    from ..capabilities import tags_of
    from ..pipelines.diffusion_editing import DiffusionEditor

    model = load(args.run)  # a run folder or a model folder
    if tags_of(model).family != "diffusion":
        raise UsageError(f"{args.run} holds a {tags_of(model).family} model; this command needs a diffusion run "
                         "(genlab train diffusion --data DATA)")
    if args.y is not None and not tags_of(model).conditional:
        raise UsageError("--y works with class-conditional models only (trained with --num_classes=-1)")
    if args.n < 1:
        raise UsageError(f"-n must be >= 1, got {args.n}")
    return DiffusionEditor(model)


def _box_mask(box: str, shape: tuple[int, ...]):
    import torch

    try:
        x0, y0, x1, y1 = (float(v) for v in box.split(","))
    except ValueError:
        raise UsageError(f"--box takes four fractions x0,y0,x1,y1, got {box!r}") from None
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise UsageError(f"--box needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {box!r}")
    _, h, w = shape
    m = torch.zeros(1, h, w, dtype=torch.bool)
    m[:, round(y0 * h):max(round(y1 * h), round(y0 * h) + 1), round(x0 * w):max(round(x1 * w), round(x0 * w) + 1)] = True
    return m


def _write_row(tiles, out: Path) -> None:
    import math

    from ..imaging import image_grid

    scale = max(1, math.ceil(MIN_TILE_PX / max(1, min(tiles.shape[-2:]))))
    image_grid(tiles, nrow=len(tiles), pad=2, scale=scale).save(out, format="PNG")


def _prepare_output(args: argparse.Namespace) -> Path:
    from ..outputs import check_new_files, check_writable

    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise UsageError(f"-o must name a .png file, got {out}")
    check_new_files([out], overwrite=args.overwrite)
    check_writable(out.parent if str(out.parent) else Path("."))
    return out


def cmd_img2img(args: argparse.Namespace) -> int:
    import torch

    ed = _editor(args)
    x = _read_resized(Path(args.image), tuple(ed.model.config.data_shape))
    out = _prepare_output(args)
    try:
        res = [ed.img2img(x, strength=args.strength, y=args.y, sampler=args.sampler, steps=args.steps,
                          guidance=args.guidance, generator=torch.Generator().manual_seed(args.seed + i))[0]
               for i in range(args.n)]
    except ValueError as e:
        raise UsageError(str(e)) from None
    _write_row(torch.stack([x, *res]), out)
    print(f"{args.image} -> {out} (input, then {args.n} results at strength {args.strength:g})")
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    import torch

    ed = _editor(args)
    shape = tuple(ed.model.config.data_shape)
    x = _read_resized(Path(args.image), shape)
    if args.mask:
        mask = _read_resized(Path(args.mask), (1, *shape[1:])) > 0.5
    else:
        mask = _box_mask(args.box, shape)
    if not mask.any():
        raise UsageError("the mask selects no pixel: nothing to inpaint")
    out = _prepare_output(args)
    steps = args.steps or 100
    try:
        res = [ed.inpaint(x, mask, y=args.y, steps=steps, jump=args.jump, resample=args.resample,
                          guidance=args.guidance, generator=torch.Generator().manual_seed(args.seed + i))[0]
               for i in range(args.n)]
    except ValueError as e:
        raise UsageError(str(e)) from None
    holed = torch.where(mask.expand_as(x), torch.full_like(x, 0.5), x)
    _write_row(torch.stack([x, holed, *res]), out)
    print(f"{args.image} -> {out} (input, the hole in grey, then {args.n} fillings)")
    return 0


COMMANDS.register("img2img")(Command(add_img2img, cmd_img2img, order=102))
COMMANDS.register("inpaint")(Command(add_inpaint, cmd_inpaint, order=104))
