"""``genlab train MODEL --data D``: train a model into a run folder (any config field as ``--key=value``)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import COMMANDS, Command
from ._common import parse_overrides, print_run_summary


def _train_config_dict(args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(extra)
    for key in ("epochs", "batch_size", "lr", "optimizer", "seed", "threads", "max_steps",
                "patience", "augment", "device", "precision", "compile", "workers"):
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    return cfg


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    from ..registry import MODELS
    from ..train import TrainConfig
    from ..workflow import train_run

    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out RUN (the run folder to continue)")
        if args.overwrite:
            raise UsageError("give --resume (continue the run) or --overwrite (replace it), not both")
        from ..runs import Run

        recorded = Run(args.out).info.get("model_type")
        cls = MODELS.get(args.model)
        if recorded and MODELS.canonical(recorded) != cls.model_type:
            raise UsageError(f"{args.out} is a {recorded!r} run, not {args.model!r}")
        model_over, train_over = parse_overrides(rest, cls.config_class, TrainConfig)
        fixed = [k for k in model_over if k not in cls.resumable_config_fields]
        if fixed:
            raise UsageError(f"--resume cannot change model settings ({', '.join('--' + k for k in fixed)}): "
                             "the model's shape is fixed once trained; start a new run to change it")
        _lr_to_model(cls, args, model_over)
        data_options = _cli_data_options(args)
        try:
            run = train_run(args.model, args.data, out=args.out, resume=True, command=sys.argv,
                            train=_train_config_dict(args, train_over), data_options=data_options,
                            model_config=model_over, verbose=True)
        except ValueError as e:
            if "cannot resume" in str(e):
                raise UsageError(str(e)) from None
            raise
    else:
        if args.data is None:
            raise UsageError("--data is required (a dataset name from `genlab list`, or a path)")
        cls = MODELS.get(args.model)
        model_over, train_over = parse_overrides(rest, cls.config_class, TrainConfig)
        _lr_to_model(cls, args, model_over)
        _conditional(cls, args, model_over)
        out = args.out or f"runs/{cls.model_type}-{Path(str(args.data)).name}-{time.strftime('%Y%m%d-%H%M%S')}"
        data_options = {"binarize": True} if args.binarize else {}
        if args.limit is not None:
            if args.limit < 1:
                raise UsageError(f"--limit must be >= 1 (leave it out to use all the data), got {args.limit}")
            data_options["limit"] = args.limit
        data_options.update(_data_options(args.data_opt or []))
        run = train_run(cls.model_type, args.data, out=out, train=_train_config_dict(args, train_over),
                        model_config=model_over, data_options=data_options, command=sys.argv,
                        overwrite=args.overwrite, verbose=True)
    from ..train.distributed import is_main

    if is_main():
        print_run_summary(run)
    return 0


def _lr_to_model(cls: type, args: argparse.Namespace, model_over: dict[str, Any]) -> None:
    """A family whose learning rates are model settings (a GAN's ``lr_g``/``lr_d``, declared
    in ``resumable_config_fields``): ``--lr`` sets them all unless they are given."""
    lrs = [k for k in cls.resumable_config_fields if k.startswith("lr")]
    if lrs and args.lr is not None:
        for k in lrs:
            model_over.setdefault(k, args.lr)
        args.lr = None


def _conditional(cls: type, args: argparse.Namespace, model_over: dict[str, Any]) -> None:
    """``--conditional``: class-conditional on the data's classes (``num_classes=-1``)."""
    if not getattr(args, "conditional", False):
        return
    import dataclasses

    if "num_classes" not in {f.name for f in dataclasses.fields(cls.config_class)}:
        raise UsageError(f"--conditional: {cls.model_type} has no class-conditional form (no num_classes setting)")
    if model_over.get("num_classes", -1) != -1:
        raise UsageError(f"give --conditional or --num_classes={model_over['num_classes']}, not both")
    model_over["num_classes"] = -1


def _cli_data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The data options given on a --resume command line (checked against the run's)."""
    data_options: dict[str, Any] = {"binarize": True} if args.binarize else {}
    if args.limit is not None:
        data_options["limit"] = args.limit
    data_options.update(_data_options(args.data_opt or []))
    return data_options


def _data_options(pairs: list[str]) -> dict[str, Any]:
    """``--data-opt KEY=VALUE`` pairs -> dataset options; values are read as JSON when
    they can be (``100000``, ``0.5``, ``true``, ``null``/``none``), else kept as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--data-opt takes KEY=VALUE (e.g. --data-opt n_train=50000), got {pair!r}")
        try:
            out[key.strip()] = None if raw.strip().lower() == "none" else json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("train", help="train a model into a run folder",
                       description="Train MODEL on --data into the run folder --out. Any model or "
                       "training setting can be given as --key=value (e.g. --latent_dim=8 "
                       "--arch=conv --beta=2 --schedule=cosine --grad_clip=1 --weight_decay=1e-4); "
                       "see the config docstrings or ARCHITECTURE.md for every field.")
    s.add_argument("model", help="model name (genlab list models)")
    s.add_argument("--data", help="dataset name (genlab list datasets) or a path: image folder, .npy/.npz, .csv, "
                   ".txt, .smi (molecules)")
    s.add_argument("--out", help="run folder (default: runs/MODEL-DATA-TIME)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", dest="batch_size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"])
    s.add_argument("--max-steps", dest="max_steps", type=int)
    s.add_argument("--patience", type=int, help="early stopping patience (evaluations); restores the best weights")
    s.add_argument("--augment", help='on-the-fly augmentation, e.g. "flip,shift:2,rotate:10,noise:0.05"')
    s.add_argument("--binarize", action="store_true", help="threshold images at 0.5 (for Bernoulli likelihoods)")
    s.add_argument("--limit", type=int, help="use only the first N examples of each split")
    s.add_argument("--data-opt", dest="data_opt", action="append", metavar="KEY=VALUE",
                   help="a dataset option, repeatable (e.g. --data-opt n_train=50000 --data-opt augment=2)")
    s.add_argument("--seed", type=int)
    s.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    s.add_argument("--device", help="auto (default: a CUDA GPU, else Apple MPS, else the CPU), cpu, cuda, "
                   "cuda:N or mps; may change on --resume")
    s.add_argument("--precision", choices=["32", "bf16-mixed", "16-mixed"],
                   help="32 (default; resumes bit-identically), bf16-mixed or 16-mixed (autocast; float16 "
                        "with a gradient scaler)")
    s.add_argument("--compile", action="store_const", const=True, default=None,
                   help="compile the model's forward with torch.compile")
    s.add_argument("--workers", type=int, help="DataLoader worker processes reading batches ahead (default 0); "
                   "the same batches in the same order")
    s.add_argument("--conditional", action="store_true",
                   help="class-conditional on the data's labels (the same as --num_classes=-1)")
    s.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; --epochs, --lr, --max-steps, "
                        "--patience, --grad_clip, ... may change (recorded in run.json's history)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (only the files genlab wrote there are removed)")
    return s


COMMANDS.register("train")(Command(add_parser, cmd_train, order=20, extra_options=True))
