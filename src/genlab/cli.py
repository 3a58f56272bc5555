"""The ``genlab`` command line: thin — it parses, calls the library and prints.

Every command is a module of ``genlab.commands`` registered in ``COMMANDS`` (its
arguments and its handler); this module builds the parser from them and dispatches.
Errors in what the user typed (unknown options, bad values, missing data) print one
line and exit with status 2; a failure during the work (e.g. a diverged run) exits 1.
"""
from __future__ import annotations

import argparse
import os
import sys
import typing
from typing import Any, Sequence

from ._version import __version__
from .commands import COMMANDS
from .commands._common import _convert, _expected, _pairs, _plain, _summary, parse_overrides  # noqa: F401
from .errors import DataError, GenlabError, OutputExistsError, UsageError  # noqa: F401  (UsageError: its old home)

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one clear line instead of usage spam
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``genlab``: one sub-command per registered command, in order."""
    p = _Parser(prog="genlab", description="genlab: train, sample and report generative models.")
    p.add_argument("--version", action="version", version=f"genlab {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    for _, command in COMMANDS.in_order():
        command.add_parser(sub)
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
        command = COMMANDS.get(args.command)
        if rest and not command.extra_options:
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        for name in ("n", "epochs"):
            v = getattr(args, name, None)
            if v is not None and v < 1:
                raise UsageError(f"{'-n' if name == 'n' else '--' + name} must be >= 1, got {v}")
        return command.run(args, rest) if command.extra_options else command.run(args)
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
