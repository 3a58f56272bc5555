"""``genlab list``: the registered models, datasets and pipelines, one line each."""
from __future__ import annotations

import argparse
from typing import Any

from . import COMMANDS, Command
from ._common import _summary


def cmd_list(args: argparse.Namespace) -> int:
    import shutil
    import textwrap

    from ..registry import DATASETS, MODELS, PIPELINES

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


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("list", help="list models, datasets and pipelines")
    s.add_argument("what", nargs="?", default="all", choices=["all", "models", "datasets", "pipelines"])
    return s


COMMANDS.register("list")(Command(add_parser, cmd_list, order=10))
