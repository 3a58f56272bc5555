"""``genlab data pack SOURCE -o NAME.gldata`` and ``genlab data info NAME.gldata``: packed,
memory-mapped datasets for data larger than memory (``genlab.data.packed``; a command
module, see ``genlab.commands``)."""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError
from . import COMMANDS, Command


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    s = subparsers.add_parser(
        "data", help="pack a dataset for training from disk (data larger than memory)",
        description="genlab data pack SOURCE -o NAME.gldata writes SOURCE (a folder of images of any size, "
                    "streamed; a registered dataset; a .npy/.csv/.txt/.smi file) as memory-mapped splits in "
                    "compact storage (uint8 images, int16 tokens). An interrupted pack of a folder continues "
                    "where it stopped when run again. Then: genlab train MODEL --data NAME.gldata.")
    sub = s.add_subparsers(dest="action", metavar="ACTION")
    p = sub.add_parser("pack", help="pack SOURCE into NAME.gldata")
    p.add_argument("source", help="an image folder, a registered dataset name or a data file")
    p.add_argument("-o", "--out", required=True, help="the pack folder, NAME.gldata")
    p.add_argument("--size", help="image folders: resize to N or H,W (LANCZOS)")
    p.add_argument("--channels", type=int, choices=[1, 3], help="image folders: 1 (grey) or 3 (RGB)")
    p.add_argument("--limit", type=int, help="other sources: only the first N examples of each split")
    p.add_argument("--overwrite", action="store_true", help="replace a finished pack at -o")
    i = sub.add_parser("info", help="what a pack holds")
    i.add_argument("pack", help="NAME.gldata")
    return s


def _size(text: str | None) -> Any:
    if text is None:
        return None
    try:
        parts = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        raise UsageError(f"--size must be N or H,W, got {text!r}") from None
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise UsageError(f"--size must be N or H,W with positive numbers, got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def cmd_data(args: argparse.Namespace) -> int:
    from ..data.packed import describe, pack

    if args.action == "pack":
        options = {"limit": args.limit} if args.limit is not None else None
        out = pack(args.source, args.out, size=_size(args.size), channels=args.channels,
                   overwrite=args.overwrite, options=options)
        print(describe(out))
        print(f"train on it with: genlab train MODEL --data {out}")
        return 0
    if args.action == "info":
        print(describe(args.pack))
        return 0
    raise UsageError("genlab data: choose an action, pack or info (genlab data --help)")


COMMANDS.register("data")(Command(add_parser, cmd_data, order=35))
