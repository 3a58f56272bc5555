"""The ``genlab`` command line: thin — it parses, calls the library and prints.

Errors in what the user typed (unknown options, bad values, missing data) print one
line and exit with status 2; a failure during the work (e.g. a diverged run) exits 1.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import typing
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import DataError, GenlabError, OutputExistsError

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one clear line instead of usage spam
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------ --key=value overrides
def _convert(raw: str, hint: Any, name: str) -> Any:
    """Parse ``raw`` as the type of the config field ``name`` (hint from type hints).

    A float (or a float in a tuple) that reads as NaN or +-inf is a ``UsageError``: no
    genlab option means anything with it, and NaN slips past every range check.
    """
    import math

    text = str(hint)
    if raw.lower() in ("none", "null") and "None" in text:
        return None

    def finite(v: float) -> float:
        if not math.isfinite(v):
            raise UsageError(f"--{name}: must be a finite number, got {v}")
        return v

    try:
        if "tuple" in text:
            inner = (lambda v: finite(float(v))) if "float" in text else int
            return tuple(inner(v) for v in raw.replace("(", "").replace(")", "").split(",") if v.strip())
        if "bool" in text:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "int" in text and "float" not in text:
            return int(raw)
        if "float" in text:
            return finite(float(raw))
    except ValueError:
        raise UsageError(f"--{name}: cannot read {raw!r} as {_expected(text)}") from None
    return raw


def _expected(text: str) -> str:
    """What a field of type hint ``text`` takes, in words (not ``<class 'int'>``)."""
    if "tuple" in text:
        what = ("comma-separated numbers (e.g. 0.5,0.999)" if "float" in text
                else "comma-separated integers (e.g. 512,256)")
    elif "bool" in text:
        what = "true or false"
    elif "int" in text and "float" not in text:
        what = "an integer"
    elif "float" in text:
        what = "a number"
    else:
        what = text.replace("typing.", "").replace("<class '", "").replace("'>", "")
    return what + (" (or none)" if "None" in text else "")


def parse_overrides(tokens: Sequence[str], *classes: type) -> list[dict[str, Any]]:
    """Split ``--key=value`` / ``--key value`` tokens among the config ``classes``.

    Returns one dict of overrides per class (a key goes to the first class that has it).
    """
    hints = [typing.get_type_hints(c) for c in classes]
    fields = [[f.name for f in dataclasses.fields(c)] for c in classes]
    out: list[dict[str, Any]] = [{} for _ in classes]
    for key, val in _pairs(tokens):
        for j, names in enumerate(fields):
            if key in names:
                out[j][key] = _convert(val, hints[j][key], key)
                break
        else:
            import difflib

            known = sorted({n for names in fields for n in names} - {"data_shape"})
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean --{close[0]}?" if close else f"; known: {', '.join(known)}"
            raise UsageError(f"unknown option --{key}{hint}")
    return out


def _pairs(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """``--key=value`` / ``--key value`` tokens -> ``[(key, raw value)]`` (dashes in keys
    become underscores); anything else is a usage error."""
    out, i = [], 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise UsageError(f"unexpected argument {tok!r}")
        key, eq, val = tok[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise UsageError(f"--{key} needs a value (--{key}=VALUE)")
            i += 1
            val = tokens[i]
        out.append((key, val))
        i += 1
    return out


# ------------------------------------------------------------------ commands
def _plain(text: str) -> str:
    """Docstring markup as plain text: ``code``, `x` and :role:`~a.b` lose their marks."""
    import re

    text = re.sub(r":[a-z]+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``(?=\w)", r"\1 ", text)  # ``factor``x -> factor x
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"\s*\(see the [^)]*docstring\)", "", text)  # a pointer that means nothing here
    return " ".join(re.sub(r"`([^`]+)`", r"\1", text).split())


def _summary(obj: Any) -> str:
    """One sentence saying what ``obj`` (a model class, pipeline or dataset) is: the first
    sentence of its docstring's first paragraph, whole; where that opens with a formula
    (the VAE's ``q(z|x) = ...``), its module docstring's first sentence."""
    import re

    def first_sentence(doc: str | None) -> str:
        para = (doc or "").strip().split("\n\n")[0]
        text = _plain(para)
        m = re.search(r"(?<=[.!?])\s+(?=[A-Z(\"'])", text)
        return text[:m.start()] if m else text

    doc = getattr(obj, "description", None) if not isinstance(obj, type) else None
    if doc:
        return _plain(doc)
    text = obj.__doc__ if isinstance(obj, type) else None
    if not text or text.lstrip().startswith("``"):
        module = sys.modules.get(getattr(obj, "__module__", ""))
        text = (module.__doc__ if module else None) or text
    return first_sentence(text)


def cmd_list(args: argparse.Namespace) -> int:
    import shutil
    import textwrap

    from .registry import DATASETS, MODELS, PIPELINES

    sections = []
    if args.what in ("models", "all"):
        sections.append(("models", [(n, f"log_prob={c.log_prob_kind}", _summary(c)) for n, c in MODELS.items()]))
    if args.what in ("datasets", "all"):
        sections.append(("datasets", [(n, "", _summary(fn)) for n, fn in DATASETS.items()]))
    if args.what in ("pipelines", "all"):
        sections.append(("pipelines", [(n, "", _summary(c)) for n, c in PIPELINES.items()]))
    # one column layout for every section: names, then (for models) log_prob, then the
    # description, wrapped to the terminal and indented under its column
    name_w = max(len(n) for _, rows in sections for n, _, _ in rows)
    kind_w = max((len(k) for _, rows in sections for _, k, _ in rows), default=0)
    width = max(60, shutil.get_terminal_size((100, 24)).columns - 1)
    for title, rows in sections:
        print(f"{title}:")
        has_kind = any(k for _, k, _ in rows)
        for name, kind, text in rows:
            lead = f"  {name:<{name_w}}  " + (f"{kind:<{kind_w}}  " if has_kind else "")
            print(textwrap.fill(text or "-", width=width, initial_indent=lead,
                                subsequent_indent=" " * len(lead), break_on_hyphens=False))
    return 0


def _train_config_dict(args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(extra)
    for key in ("epochs", "batch_size", "lr", "optimizer", "seed", "threads", "max_steps",
                "patience", "augment"):
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    return cfg


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    from .registry import MODELS
    from .train import TrainConfig
    from .workflow import train_run

    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out RUN (the run folder to continue)")
        if args.overwrite:
            raise UsageError("give --resume (continue the run) or --overwrite (replace it), not both")
        from .runs import Run

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
    from .train.distributed import is_main

    if is_main():
        _print_run_summary(run)
    return 0


def _lr_to_model(cls: type, args: argparse.Namespace, model_over: dict[str, Any]) -> None:
    """A family whose learning rates are model settings (a GAN's ``lr_g``/``lr_d``, declared
    in ``resumable_config_fields``): ``--lr`` sets them all unless they are given."""
    lrs = [k for k in cls.resumable_config_fields if k.startswith("lr")]
    if lrs and args.lr is not None:
        for k in lrs:
            model_over.setdefault(k, args.lr)
        args.lr = None


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


def _print_run_summary(run: Any) -> None:
    if run.note:
        print(run.note)
    m = run.eval.get("metrics", {})
    shown = {k: v for k, v in m.items() if isinstance(v, float) and k != "n_test"}
    print(f"run:     {run.path}")
    phases = run.info.get("phases_s") if not run.note else None
    if phases:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
        print(f"status:  {run.info.get('status')} in {run.info.get('command_wall_s')} s ({parts})")
    else:
        print(f"status:  {run.info.get('status')} (training took {run.info.get('wall_time_s')} s)")
    bound = run.info.get("log_prob_kind") == "lower_bound" or m.get("iwae_k") is not None
    for k, v in list(shown.items())[:8]:
        tag = " (upper bound)" if bound and k in ("nll_nats", "bits_per_dim", "nll_per_token", "bits_per_token",
                                                   "perplexity") else ""
        print(f"  {k:<20} {v:.4g}{tag}")
    if (run.path / "report.html").exists():
        print(f"report:  {run.path / 'report.html'}")


def _sample_kwargs(model: Any, tokens: list[str]) -> dict[str, Any]:
    """Model-specific ``sample`` options from ``--key=value`` tokens (e.g. ``--prompt``,
    ``--temperature`` for sequence models), typed by ``sample``'s signature."""
    import inspect

    sig = inspect.signature(model.sample)
    hints = typing.get_type_hints(model.sample)
    accepted = {n: p for n, p in sig.parameters.items()
                if p.kind == p.KEYWORD_ONLY and n not in ("generator",)}
    out: dict[str, Any] = {}
    for key, val in _pairs(tokens):
        if key not in accepted:
            import difflib

            close = difflib.get_close_matches(key, list(accepted), n=1)
            hint = f"; did you mean --{close[0]}?" if close else (
                f"; {type(model).__name__}.sample takes {', '.join('--' + a for a in accepted) or 'no options'}")
            raise UsageError(f"unknown option --{key}{hint}")
        out[key] = _convert(val, hints.get(key, str), key) if hints.get(key) not in (None, typing.Any) else val
    return out


def cmd_sample(args: argparse.Namespace, rest: list[str]) -> int:
    """``genlab sample RUN``: draw ``-n`` samples in seeded chunks and stream them to ``-o``
    (see ``genlab.sample_io`` for the formats, caps and how chunks are seeded)."""
    from . import sample_io
    from .base import load

    model = load(args.run)
    cond = _sample_kwargs(model, rest)
    if args.y is not None:
        if not model.tags.conditional:
            raise UsageError("--y works with conditional models only (trained with --num_classes=-1)")
        cond["y"] = args.y
    try:
        line = sample_io.write_samples(model, args.n, args.output, seed=args.seed,
                                       overwrite=args.overwrite, **cond)
    except sample_io.SampleOutputError as e:
        raise UsageError(str(e)) from None
    if line:
        print(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report
    from .runs import Run

    path = write_report(Run(args.run))
    print(f"report: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import compare_sets, evaluate_run, format_rows, parse_metrics

    names = parse_metrics(args.metrics)
    from .outputs import check_new_files, check_writable

    if args.json:
        check_new_files([args.json], overwrite=args.overwrite)
        check_writable(Path(args.json).parent)
    if args.run is not None:
        if args.real or args.fake:
            raise UsageError("give either a RUN or --real and --fake, not both")
        from .runs import Run

        run = Run(args.run)
        for folder in (run.path, run.path / "figures"):  # fail now, not after minutes of scoring
            check_writable(folder)
        rec = evaluate_run(run, metrics=names, n=args.n, seed=args.seed, judge=args.judge)
        from .report import write_report

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
        from .data.datasets import load, load_splits
        from .metrics.judges import judge_for, load_judge
        from .registry import DATASETS

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
        real = real_ds.x[:args.n]
        result = compare_sets(real, fake_ds.x[:args.n], judge=judge,
                              metrics=[m for m in names if m not in ("nll", "ppl")], train=train,
                              real_labels=None if labels is None else labels[:args.n], seed=args.seed)
        print(f"{result['n_fake']} images of {args.fake} against {result['n_real']} of {args.real}"
              + ("" if train is None else f" (floor: {result['n_floor']} real training images)"))
        print(format_rows(result["rows"]))
        for note in result["notes"]:
            print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from .evaluation.judges import train_judge
    from .metrics.judges import shipped_table

    if args.judge_command == "list":
        for row in shipped_table():
            print(f"  {row.get('name', ''):<16} test accuracy {row.get('test_accuracy', float('nan')):.4f}  "
                  f"{row.get('feature_space', '')}")
        return 0
    if args.judge_command != "train":
        raise UsageError("use `genlab judge train --data PATH --out DIR` or `genlab judge list`")
    if not args.data or not args.out:
        raise UsageError("genlab judge train needs --data and --out")
    from .outputs import check_new_files, check_writable

    check_new_files([Path(args.out) / n for n in ("judge.json", "judge.safetensors")], overwrite=args.overwrite)
    check_writable(args.out)
    judge, rep = train_judge(args.data, out=args.out, epochs=args.epochs, seed=args.seed,
                             threads=args.threads, command=" ".join(sys.argv))
    print(f"judge {judge.feature_space}: test accuracy {rep.get('test_accuracy', float('nan')):.4f}")
    print(f"saved to {args.out}; use it with --judge {args.out}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from .workflow import train_run

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
    _print_run_summary(run)
    for name in ("samples.png", "reconstructions.png", "curves.png"):
        if (run.path / "figures" / name).exists():
            print(f"figure:  {run.path / 'figures' / name}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


# ------------------------------------------------------------------ parser
# Modules that add commands: each has ``register(subparsers) -> {command: handler}``,
# where ``handler(args) -> exit status`` (raise ``UsageError`` for command-line mistakes).
PLUGINS: list[str] = ["genlab.cli_gan", "genlab.cli_sequence", "genlab.cli_seqvae", "genlab.cli_molecules"]
_PLUGIN_HANDLERS: dict[str, Any] = {}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="genlab", description="genlab: train, sample and report generative models.")
    p.add_argument("--version", action="version", version=f"genlab {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    s = sub.add_parser("list", help="list models, datasets and pipelines")
    s.add_argument("what", nargs="?", default="all", choices=["all", "models", "datasets", "pipelines"])

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
    s.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; --epochs, --lr, --max-steps, "
                        "--patience, --grad_clip, ... may change (recorded in run.json's history)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (only the files genlab wrote there are removed)")

    s = sub.add_parser("sample", help="draw samples from a trained run or model folder",
                       description="Draw samples. Model-specific options of its sample() method "
                       "are accepted as --key=value (e.g. --prompt, --temperature for text models).")
    s.add_argument("run", help="run folder or saved model folder")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("-o", "--output", help="output: .png grid (default for images; at most 4,096 "
                   "images), .npy, .csv; .txt for text models (default: print); samples are drawn "
                   "and written in chunks, so -n can be large")
    s.add_argument("--seed", type=int, default=0,
                   help="seed (default 0); samples are drawn in chunks, chunk i seeded from "
                   "(seed, i), so the output is a fixed function of (seed, -n)")
    s.add_argument("--y", type=int, help="class to sample (conditional models)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    s = sub.add_parser("report", help="(re)write a run's HTML report")
    s.add_argument("run")

    s = sub.add_parser("evaluate", help="score a run's samples, or two image sets, in a judge's feature space",
                       description="Sample from RUN's model and score it against the real test split: FID, KID, "
                       "Inception Score, precision/recall/density/coverage, mode coverage, memorisation, "
                       "diversity, NLL and Perceptual Path Length, each beside its real-vs-real floor. "
                       "The result goes into the run's eval.json, metrics.jsonl and report. Or score "
                       "--fake images against --real ones with no model.")
    s.add_argument("run", nargs="?", help="run folder")
    s.add_argument("--metrics", default="all",
                   help="comma-separated: fid,kid,is,prdc,modes,memorization,diversity,nll,ppl (default all)")
    s.add_argument("-n", type=int, default=10000, help="number of samples (default 10000)")
    s.add_argument("--judge", help="judge name (genlab judge list) or folder; default: the data set's own")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--real", help="real images: a dataset name or a folder / .npy")
    s.add_argument("--fake", help="generated images: a folder or .npy")
    s.add_argument("--json", help="also write the results to this JSON file")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --json file")

    s = sub.add_parser("judge", help="judge networks (feature spaces for evaluation): list or train")
    s.add_argument("judge_command", choices=["list", "train"])
    s.add_argument("--data", help="labelled images: a dataset name or a folder with one subfolder per class")
    s.add_argument("--out", help="folder to write the judge into")
    s.add_argument("--overwrite", action="store_true", help="replace a judge already in --out")
    s.add_argument("--epochs", type=int, default=15)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)

    for mod in PLUGINS:  # family / application commands (e.g. upscale, compose)
        import importlib

        _PLUGIN_HANDLERS.update(importlib.import_module(mod).register(sub))

    s = sub.add_parser("quickstart", help="train a small VAE on the embedded digits and write a report")
    s.add_argument("--out", default="runs/quickstart",
                   help="run folder (a previous quickstart run there is replaced; anything else is refused)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace another run in --out (only the files genlab wrote there are removed)")
    s.add_argument("--epochs", type=int, default=150)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    return p


WARNING_MAX_CHARS = 200  # longer warnings (scipy's run to paragraphs) are cut at a sentence or word


def warning_line(message: Any) -> str:
    """``genlab: warning: <message>`` on one line: whitespace collapsed, and a long message
    cut after its last whole sentence (else word) within ``WARNING_MAX_CHARS``, with ``...``."""
    import re

    text = " ".join(str(message).split())
    if len(text) > WARNING_MAX_CHARS:
        head = text[:WARNING_MAX_CHARS]
        cut = 0
        for stop in (r"[.!?](?=\s)", r"[;:](?=\s)"):  # the last whole sentence, else clause
            ends = [m.end() for m in re.finditer(stop, head) if m.end() >= WARNING_MAX_CHARS // 4]
            if ends:
                cut = ends[-1]
                break
        if not cut:
            cut = head.rfind(" ") if " " in head else len(head)
        text = head[:cut].rstrip(" ,;:") + " ..."
    return f"genlab: warning: {text}"


def _format_warning(message: Any, category: Any, filename: str, lineno: int,
                    line: str | None = None) -> str:
    """``warnings.formatwarning`` for the command line: one line, no source file or code.
    (Replacing the format, not ``showwarning``, leaves ``pytest.warns`` and other
    recorders working while a command runs.)"""
    return warning_line(message) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; warnings are shown as ``genlab: warning: ...`` lines."""
    import warnings

    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        return _main(argv)
    finally:
        if warnings.formatwarning is _format_warning:
            warnings.formatwarning = previous


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    prog = f"genlab {args.command}"
    try:
        if rest and args.command not in ("train", "sample"):
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        for name in ("n", "epochs"):
            v = getattr(args, name, None)
            if v is not None and v < 1:
                raise UsageError(f"{'-n' if name == 'n' else '--' + name} must be >= 1, got {v}")
        if args.command == "train":
            return cmd_train(args, rest)
        if args.command == "sample":
            return cmd_sample(args, rest)
        if args.command in _PLUGIN_HANDLERS:
            return _PLUGIN_HANDLERS[args.command](args)
        return {"list": cmd_list, "report": cmd_report, "evaluate": cmd_evaluate,
                "judge": cmd_judge, "quickstart": cmd_quickstart}[args.command](args)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (DataError, ValueError, OutputExistsError) as e:  # a refusal to overwrite is a usage error
        if os.environ.get("GENLAB_DEBUG"):
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as e:  # an input that is not there (ours name the path)
        if os.environ.get("GENLAB_DEBUG"):
            raise
        from .outputs import describe_os_error

        print(f"{prog}: error: {e if e.errno is None else describe_os_error(e)}", file=sys.stderr)
        return EXIT_USAGE
    except GenlabError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # disk full, read-only folder, a file where a folder belongs, ...
        if os.environ.get("GENLAB_DEBUG"):
            raise
        from .outputs import describe_os_error

        print(f"{prog}: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
