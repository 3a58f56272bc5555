"""Helpers the command modules share: ``--key=value`` overrides typed from the config
dataclasses' hints (``typing.get_origin``/``get_args``, not the text of the hint), and the
one-line summaries ``genlab list`` and ``genlab train`` print."""
from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any, Sequence

from ..errors import UsageError


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


def _convert(raw: str, hint: Any, name: str) -> Any:
    """Parse ``raw`` as the type hint ``hint`` of the option ``name``: ``int``, ``float``,
    ``bool``, ``str``, ``tuple[int, ...]`` / ``tuple[float, ...]``, ``Literal[...]``, and any of
    these ``| None`` (``none`` or ``null`` then gives ``None``). The hint is read with
    ``typing.get_origin`` / ``get_args``, never from its text.

    A float (or a float in a tuple) that reads as NaN or +-inf is a ``UsageError``: no
    genlab option means anything with it, and NaN slips past every range check.
    """
    import math

    optional, base = _unwrap(hint)
    if optional and raw.lower() in ("none", "null"):
        return None

    def finite(v: float) -> float:
        if not math.isfinite(v):
            raise UsageError(f"--{name}: must be a finite number, got {v}")
        return v

    def scalar(t: Any, text: str) -> Any:
        if t is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if t is int:
            return int(text)
        if t is float:
            return finite(float(text))
        if typing.get_origin(t) is typing.Literal:
            for choice in typing.get_args(t):
                if str(choice) == text:
                    return choice
            raise ValueError(text)
        return text

    try:
        if typing.get_origin(base) is tuple:
            args = [a for a in typing.get_args(base) if a is not Ellipsis] or [str]
            inner = args[0]
            return tuple(scalar(inner, v.strip()) for v in raw.replace("(", "").replace(")", "").split(",")
                         if v.strip())
        return scalar(base, raw)
    except ValueError:
        raise UsageError(f"--{name}: cannot read {raw!r} as {_expected(hint)}") from None


def _unwrap(hint: Any) -> tuple[bool, Any]:
    """``(optional, the type without None)`` of ``hint`` (``X | None``, ``Optional[X]``);
    a union of several types other than None is read as its first."""
    import types

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return len(args) < len(typing.get_args(hint)), (args[0] if args else str)
    return False, hint


def _expected(hint: Any) -> str:
    """What an option of type ``hint`` takes, in words (not ``<class 'int'>``)."""
    optional, base = _unwrap(hint)
    if typing.get_origin(base) is tuple:
        inner = next((a for a in typing.get_args(base) if a is not Ellipsis), str)
        what = ("comma-separated numbers (e.g. 0.5,0.999)" if inner is float
                else "comma-separated integers (e.g. 512,256)" if inner is int else "comma-separated values")
    elif base is bool:
        what = "true or false"
    elif base is int:
        what = "an integer"
    elif base is float:
        what = "a number"
    elif typing.get_origin(base) is typing.Literal:
        what = "one of " + ", ".join(map(str, typing.get_args(base)))
    else:
        what = getattr(base, "__name__", str(base))
    return what + (" (or none)" if optional else "")


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


def print_run_summary(run: Any) -> None:
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
