"""``genlab interpolate RUN A B --steps 8``: walk the latent space of a sequence VAE
(``seqvae``, e.g. a SMILES VAE) from item A to item B and print the decoded items."""
from __future__ import annotations

from ..errors import UsageError
from . import COMMANDS, Command

import argparse
from typing import Any


def cmd_interpolate(args: argparse.Namespace) -> int:
    import torch

    from ..base import load

    model = load(args.run)
    if not (model.tags.interpolation and model.tags.text_output):
        raise UsageError(f"{args.run} holds a {model.model_type!r} model; interpolate works with "
                         "sequence VAEs (genlab train seqvae --data ...)")
    g = torch.Generator().manual_seed(args.seed)
    try:
        ids = model.interpolate(args.a, args.b, args.steps, method=args.method,
                                temperature=args.temperature, generator=g)
    except ValueError as e:  # e.g. a character the model never saw
        raise UsageError(str(e)) from None
    for i, text in enumerate(model.samples_to_text(ids)):
        print(f"{i / (args.steps - 1):.3f}  {text}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    s = subparsers.add_parser("interpolate", help="decode a latent path between two items with a seqvae run",
                              description="Encode A and B (e.g. two names or SMILES) with RUN's sequence VAE, "
                              "decode STEPS codes on the path between their posterior means and print "
                              "them, one per line with its position t in [0, 1].")
    s.add_argument("run", help="run folder or saved model folder of a seqvae")
    s.add_argument("a", help="first item (text in the training data's alphabet)")
    s.add_argument("b", help="last item")
    s.add_argument("--steps", type=int, default=8, help="points on the path, endpoints included (default 8)")
    s.add_argument("--method", choices=["slerp", "lerp"], default="slerp",
                   help="great-circle (default) or straight-line path")
    s.add_argument("--temperature", type=float, default=0.0, help="0: greedy decoding (default)")
    s.add_argument("--seed", type=int, default=0)
    return s


COMMANDS.register("interpolate")(Command(add_parser, cmd_interpolate, order=120))
