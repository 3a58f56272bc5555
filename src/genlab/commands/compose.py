"""``genlab compose RUN -n 4 -o out/``: music from a sequence model trained on --data folk
or chorales: one MIDI file, a WAV rendering and a piano-roll PNG per piece."""
from __future__ import annotations

from ..errors import UsageError
from . import COMMANDS, Command

import argparse
from typing import Any


def cmd_compose(args: argparse.Namespace) -> int:
    import torch

    from ..pipelines.music import Composer

    try:
        comp = Composer.from_run(args.run, bpm=args.bpm)
    except ValueError as e:
        raise UsageError(str(e)) from None
    from pathlib import Path

    from ..outputs import check_new_files, check_writable

    out = Path(args.output)
    exts = (".mid", ".png") + (() if args.no_wav else (".wav",))
    check_new_files([out / f"piece_{i}{e}" for i in range(args.n) for e in exts], overwrite=args.overwrite)
    check_writable(out)
    g = torch.Generator().manual_seed(args.seed)
    kw: dict[str, Any] = {"temperature": args.temperature}
    if args.top_k:
        kw["top_k"] = args.top_k
    if args.max_len:
        kw["max_len"] = args.max_len
    paths = comp(args.n, out=args.output, generator=g, wav=not args.no_wav, **kw)
    for p in paths:
        print(f"wrote {p}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    s = subparsers.add_parser("compose", help="compose music (MIDI + WAV + piano roll) with a music-trained run",
                              description="Sample pieces from RUN (a model trained on --data folk or chorales) "
                              "and write piece_<i>.mid, .wav and .png into -o.")
    s.add_argument("run", help="run folder or saved model folder")
    s.add_argument("-n", type=int, default=4, help="number of pieces (default 4)")
    s.add_argument("-o", "--output", default="compositions", help="output folder (default compositions/)")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", dest="top_k", type=int)
    s.add_argument("--max-len", dest="max_len", type=int, help="tokens per piece (default: training length)")
    s.add_argument("--bpm", type=float, default=120)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-wav", dest="no_wav", action="store_true", help="skip the WAV rendering")
    s.add_argument("--overwrite", action="store_true", help="replace pieces that already exist in -o")
    return s


COMMANDS.register("compose")(Command(add_parser, cmd_compose, order=110))
