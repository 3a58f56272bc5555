#!/usr/bin/env python
"""Reproduce genlab's shipped judges (src/genlab/metrics/judges/weights/).

Each judge is trained deterministically with its recipe from
``genlab.evaluation.judges.SHIPPED_RECIPES`` (seed 0) and written as ``<name>.safetensors``
+ ``<name>.json``; the JSON records the test accuracy, sizes, wall time and this command.
The same torch version and thread count reproduce the weights bit for bit.

    OMP_WAIT_POLICY=PASSIVE python scripts/train_judges.py --threads 2
    python scripts/train_judges.py --datasets digits --epochs 5 --out /tmp/judges  # a quick try
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    from genlab.evaluation.judges import SHIPPED_RECIPES, train_judge
    from genlab.metrics.judges import SHIPPED, WEIGHTS_DIR, save_judge

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(SHIPPED),
                   help=f"comma-separated, from {', '.join(SHIPPED)} (default: all)")
    p.add_argument("--epochs", type=int, default=None,
                   help="override every recipe's epochs (for quick tries; not for shipping)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="output folder (default: the package)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    bad = [n for n in names if n not in SHIPPED]
    if bad:
        p.error(f"unknown dataset(s) {bad}; choose from {', '.join(SHIPPED)}")
    for name in names:
        recipe = dict(SHIPPED_RECIPES[name])
        if args.epochs is not None:
            recipe["epochs"] = args.epochs
        command = (f"OMP_WAIT_POLICY=PASSIVE python scripts/train_judges.py --datasets {name} "
                   f"--threads {args.threads}" + (f" --seed {args.seed}" if args.seed else "")
                   + (f" --epochs {args.epochs}" if args.epochs is not None else ""))
        judge, report = train_judge(name, seed=args.seed, threads=args.threads,
                                    feature_space=f"judge:{name}", command=command, **recipe)
        path = save_judge(judge, args.out, stem=name)
        t = report["training"]
        print(f"{name}: test accuracy {report['test_accuracy']:.4f} (val "
              f"{report['val_accuracy']:.4f}), {t['epochs']} epochs, {t['wall_time_s']} s "
              f"-> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
