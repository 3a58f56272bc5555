"""The ``genlab`` commands: one module per command, each registered in ``COMMANDS``.

A command module defines ``add_parser(subparsers) -> parser`` (its arguments and help)
and a handler ``run(args) -> exit status`` (``run(args, rest)`` with ``extra_options``:
the ``--key=value`` tokens it types itself, as ``train`` and ``sample`` do), and ends
with ``COMMANDS.register("name")(Command(add_parser, run, order=...))``. ``genlab.cli``
builds its parser from every registered command in ``order`` and dispatches to the one
named; the command modules are found by listing this package (``pkgutil``), so a new
command is a new file here and nothing else. Mistakes in what the user typed raise
``genlab.errors.UsageError`` (one line, exit status 2).
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable

from ..registry import Registry


@dataclasses.dataclass(frozen=True)
class Command:
    """One command: ``add_parser(subparsers)`` adds and returns its parser; ``run(args)``
    (or ``run(args, rest)`` when ``extra_options``) does the work and returns the exit
    status; ``order`` places it in ``genlab --help``."""

    add_parser: Callable[[Any], Any]
    run: Callable[..., int]
    order: int = 100
    extra_options: bool = False


class _Commands(Registry):
    """The registry of commands, filled by importing every module of this package."""

    def _populate(self) -> None:
        if not self._populated:
            self._populated = True
            for info in pkgutil.iter_modules(__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{__name__}.{info.name}")

    def in_order(self) -> list[tuple[str, Command]]:
        return sorted(self.items(), key=lambda kv: (kv[1].order, kv[0]))


COMMANDS = _Commands("command")
