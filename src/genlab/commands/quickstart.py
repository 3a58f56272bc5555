"""``genlab quickstart``: a small VAE on the embedded digits, with its report."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .._version import __version__
from . import COMMANDS, Command
from ._common import print_run_summary


def cmd_quickstart(args: argparse.Namespace) -> int:
    from ..workflow import train_run

    t0 = time.time()
    out = Path(args.out)
    print(f"genlab {__version__} quickstart: a VAE on the 8x8 digits ({args.epochs} "
          f"epoch{'' if args.epochs == 1 else 's'} on the CPU)")
    # a previous quickstart run in --out is replaced (only the files genlab wrote there);
    # any other run, or a folder that is not a run, is left alone unless --overwrite
    run = train_run("vae", "digits", out=out,
                    train={"epochs": args.epochs, "batch_size": 32, "lr": 1e-3, "schedule": "cosine",
                           "seed": args.seed, "threads": args.threads},
                    model_config={"arch": "mlp", "latent_dim": 16, "hidden": (512, 256)},
                    command=sys.argv, origin="quickstart", overwrite=args.overwrite, verbose=True)
    print_run_summary(run)
    for name in ("samples.png", "reconstructions.png", "curves.png"):
        if (run.path / "figures" / name).exists():
            print(f"figure:  {run.path / 'figures' / name}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("quickstart", help="train a small VAE on the embedded digits and write a report")
    s.add_argument("--out", default="runs/quickstart",
                   help="run folder (a previous quickstart run there is replaced; anything else is refused)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace another run in --out (only the files genlab wrote there are removed)")
    s.add_argument("--epochs", type=int, default=150)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    return s


COMMANDS.register("quickstart")(Command(add_parser, cmd_quickstart, order=200))
