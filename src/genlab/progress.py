"""Progress for every long step, on a terminal and in logs.

* ``Progress`` — a bar redrawn in place on a terminal (tqdm, kept when done); elsewhere
  (a log file, CI, a pipe) a plain line every ``EVERY_S`` seconds — and nothing at all for
  a step that ends sooner, so short runs stay quiet.
* ``task(desc, total)`` — the same as an *ambient* progress: inner loops that do not know
  who called them (a model's ``log_prob`` batching its examples) call ``tick(n)``, which
  advances the innermost active task and costs nothing when there is none.
* ``Phases`` — wall time of a command by phase (load data, train, test metrics, report),
  for the closing summary and ``run.json``.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import time
from typing import Any, Iterator, TextIO

# seconds between progress lines when the output is not a terminal (GENLAB_PROGRESS_EVERY_S
# sets it, e.g. for a CI log)
EVERY_S = float(os.environ.get("GENLAB_PROGRESS_EVERY_S", "10") or 10)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _fmt_s(s: float) -> str:
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s" if s >= 10 else f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


class Progress:
    """Progress over ``total`` units (``None``: unknown).

    Args:
        total: units of work.
        desc: what is being done (``"train vae"``, ``"test NLL"``).
        unit: the unit's name (``"step"``, ``"example"``).
        enabled: ``False`` shows nothing.
        stream: where to write (default ``sys.stderr``).
        every_s: seconds between lines when ``stream`` is not a terminal (default
            ``EVERY_S``).
        initial: units already done (a resumed run).
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", *, enabled: bool = True,
                 stream: TextIO | None = None, every_s: float | None = None, initial: int = 0):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self._start_n = int(initial)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.every_s = EVERY_S if every_s is None else every_s
        self.t0 = self._last = time.monotonic()
        self.postfix = ""
        self.lines = 0
        self._bar = None
        if enabled and _isatty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream,
                             dynamic_ncols=True, leave=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= self.every_s:
            self._line()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def _line(self, final: bool = False) -> None:
        now = time.monotonic()
        self._last = now
        elapsed = now - self.t0
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            head = f"{self.n:,}/{self.total:,} {self.unit}s ({100 * self.n / self.total:.0f}%)"
        else:
            head = f"{self.n:,} {self.unit}s"
        tail = f"{_fmt_s(elapsed)} elapsed"
        if not final and self.total and rate > 0:
            tail += f", about {_fmt_s((self.total - self.n) / rate)} left"
        if rate > 0:
            tail += f", {rate:.3g} {self.unit}s/s" if rate >= 1 else f", {1 / rate:.3g} s/{self.unit}"
        post = f", {self.postfix}" if self.postfix else ""
        self.stream.write(f"{self.desc}: {head}{post} [{tail}]{' done' if final else ''}\n")
        self.stream.flush()
        self.lines += 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.lines:  # a step that printed progress also says it ended
            self._line(final=True)
            self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_current: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("genlab_progress", default=None)


@contextlib.contextmanager
def task(desc: str, total: int | None, unit: str = "example", *, enabled: bool = True) -> Iterator[Progress]:
    """An ambient ``Progress``: ``tick(n)`` anywhere below advances it."""
    p = Progress(total, desc, unit, enabled=enabled)
    token = _current.set(p)
    try:
        yield p
    finally:
        _current.reset(token)
        p.close()


def tick(n: int = 1) -> None:
    """Advance the innermost active ``task`` by ``n`` (a no-op when there is none)."""
    p = _current.get()
    if p is not None:
        p.update(n)


class Phases:
    """Wall time of a command, phase by phase.

    ``with phases("train"): ...`` times a phase (a phase entered twice adds up);
    ``phases.summary()`` -> ``"129.4 s: load data 2.1 s, train 28.5 s, test metrics 90.2 s"``.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str, *, say: str | None = None, stream: TextIO | None = None) -> Iterator[None]:
        if say:
            print(say, file=stream or sys.stdout, flush=True)
        t = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - t

    def total(self) -> float:
        return time.monotonic() - self.t0

    def record(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.seconds.items()}

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return f"{self.total():.1f} s" + (f": {parts}" if parts else "")
