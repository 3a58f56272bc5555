"""``genlab evaluate RUN`` (or ``--real``/``--fake``): score samples in a judge's feature space beside real-vs-real floors."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import COMMANDS, Command


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation import compare_sets, evaluate_run, format_rows, parse_metrics

    names = parse_metrics(args.metrics)
    from ..outputs import check_new_files, check_writable

    if args.json:
        check_new_files([args.json], overwrite=args.overwrite)
        check_writable(Path(args.json).parent)
    if args.run is not None:
        if args.real or args.fake:
            raise UsageError("give either a RUN or --real and --fake, not both")
        from ..runs import Run

        run = Run(args.run)
        for folder in (run.path, run.path / "figures"):  # fail now, not after minutes of scoring
            check_writable(folder)
        rec = evaluate_run(run, metrics=names, n=args.n, seed=args.seed, judge=args.judge, device=args.device)
        if rec is None:  # a torchrun process other than rank 0: it sampled its share, rank 0 reports
            return 0
        from ..report import write_report

        write_report(run)
        print(f"{rec['n_fake']} samples of {run.path} {rec['compared']}")
        print(format_rows(rec["rows"]))
        for note in rec["notes"]:
            print(f"note: {note}")
        print(f"report:  {run.path / 'report.html'}")
        result = rec
    else:
        if not (args.real and args.fake):
            raise UsageError("give a RUN, or both --real DIR_OR_DATASET and --fake DIR")
        from ..data.datasets import load, load_splits
        from ..metrics.judges import judge_for, load_judge
        from ..registry import DATASETS

        train = labels = None
        if args.real in DATASETS:
            splits = load_splits(args.real)
            real_ds, train = splits["test"], splits["train"].x
            labels = real_ds.y
        else:
            real_ds = load(args.real, split="all")
        fake_ds = load(args.fake, split="all")
        if fake_ds.shape != real_ds.shape:
            raise UsageError(f"--fake images have shape {fake_ds.shape}, --real images {real_ds.shape}")
        judge = load_judge(args.judge) if args.judge else judge_for(
            args.real if args.real in DATASETS else real_ds.shape)
        from ..evaluation.evaluate import DEFAULT_N

        n = DEFAULT_N if args.n is None else args.n
        real = real_ds.x[:n]
        result = compare_sets(real, fake_ds.x[:n], judge=judge,
                              metrics=[m for m in names if m not in ("nll", "ppl")], train=train,
                              real_labels=None if labels is None else labels[:n], seed=args.seed)
        print(f"{result['n_fake']} images of {args.fake} against {result['n_real']} of {args.real}"
              + ("" if train is None else f" (floor: {result['n_floor']} real training images)"))
        print(format_rows(result["rows"]))
        for note in result["notes"]:
            print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("evaluate", help="score a run's samples, or two image sets, in a judge's feature space",
                       description="Sample from RUN's model and score it against the real test split: FID, KID, "
                       "Inception Score, precision/recall/density/coverage, mode coverage, memorisation, "
                       "diversity, NLL and Perceptual Path Length, each beside its real-vs-real floor. "
                       "The result goes into the run's eval.json, metrics.jsonl and report. Or score "
                       "--fake images against --real ones with no model.")
    s.add_argument("run", nargs="?", help="run folder")
    s.add_argument("--metrics", default="all",
                   help="comma-separated: fid,kid,is,prdc,modes,memorization,diversity,nll,ppl (default all)")
    s.add_argument("-n", type=int, default=None,
                   help="number of samples (default 10000; 300 captions per guidance value for a text-to-image run)")
    s.add_argument("--judge", help="judge name (genlab judge list) or folder; default: the data set's own")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu",
                   help="where the model samples and the judge extracts features: cpu (default), auto, cuda, "
                        "cuda:N or mps")
    s.add_argument("--real", help="real images: a dataset name or a folder / .npy")
    s.add_argument("--fake", help="generated images: a folder or .npy")
    s.add_argument("--json", help="also write the results to this JSON file")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    return s


COMMANDS.register("evaluate")(Command(add_parser, cmd_evaluate, order=50))
