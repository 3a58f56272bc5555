"""``genlab sample RUN``: draw samples in seeded chunks and stream them to a file (``genlab.sample_io``)."""
from __future__ import annotations

import argparse
import typing
from typing import Any

from ..errors import UsageError
from . import COMMANDS, Command
from ._common import _convert, _pairs


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


def _to_device(model: Any, spec: str) -> None:
    """Move a torch model to the device ``--device`` names (a one-line error if absent)."""
    from ..devices import resolve_device

    dev = resolve_device(spec)
    if dev.type != "cpu" and hasattr(model, "to"):
        model.to(dev)


def cmd_sample(args: argparse.Namespace, rest: list[str]) -> int:
    """``genlab sample RUN``: draw ``-n`` samples in seeded chunks and stream them to ``-o``
    (see ``genlab.sample_io`` for the formats, caps and how chunks are seeded)."""
    from .. import sample_io
    from ..base import load

    model = load(args.run)
    _to_device(model, args.device)
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


def add_parser(sub: Any) -> argparse.ArgumentParser:
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
    s.add_argument("--device", default="cpu",
                   help="where the model samples: cpu (default: the same samples on every machine), auto, "
                        "cuda, cuda:N or mps (seeded noise is drawn on the cpu either way)")
    return s


COMMANDS.register("sample")(Command(add_parser, cmd_sample, order=30, extra_options=True))
