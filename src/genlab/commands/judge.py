"""``genlab judge list|train``: the judge networks that give the evaluation feature spaces."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import COMMANDS, Command


def cmd_judge(args: argparse.Namespace) -> int:
    from ..evaluation.judges import train_judge
    from ..metrics.judges import shipped_table

    if args.judge_command == "list":
        for row in shipped_table():
            print(f"  {row.get('name', ''):<16} test accuracy {row.get('test_accuracy', float('nan')):.4f}  "
                  f"{row.get('feature_space', '')}")
        return 0
    if args.judge_command != "train":
        raise UsageError("use `genlab judge train --data PATH --out DIR` or `genlab judge list`")
    if not args.data or not args.out:
        raise UsageError("genlab judge train needs --data and --out")
    from ..outputs import check_new_files, check_writable

    check_new_files([Path(args.out) / n for n in ("judge.json", "judge.safetensors")], overwrite=args.overwrite)
    check_writable(args.out)
    judge, rep = train_judge(args.data, out=args.out, epochs=args.epochs, seed=args.seed,
                             threads=args.threads, command=" ".join(sys.argv))
    print(f"judge {judge.feature_space}: test accuracy {rep.get('test_accuracy', float('nan')):.4f}")
    print(f"saved to {args.out}; use it with --judge {args.out}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("judge", help="judge networks (feature spaces for evaluation): list or train")
    s.add_argument("judge_command", choices=["list", "train"])
    s.add_argument("--data", help="labelled images: a dataset name or a folder with one subfolder per class")
    s.add_argument("--out", help="folder to write the judge into")
    s.add_argument("--overwrite", action="store_true", help="replace a judge already in --out")
    s.add_argument("--epochs", type=int, default=15)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    return s


COMMANDS.register("judge")(Command(add_parser, cmd_judge, order=60))
