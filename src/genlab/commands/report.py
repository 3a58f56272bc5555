"""``genlab report RUN``: (re)write a run's HTML report."""
from __future__ import annotations

import argparse
from typing import Any

from . import COMMANDS, Command


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report
    from ..runs import Run

    path = write_report(Run(args.run))
    print(f"report: {path}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("report", help="(re)write a run's HTML report")
    s.add_argument("run")
    return s


COMMANDS.register("report")(Command(add_parser, cmd_report, order=40))
