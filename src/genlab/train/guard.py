"""Divergence guards shared by the training loops.

A loss that becomes NaN or infinite is the obvious failure; the common one is a loss that
*explodes* — finite, but thousands of times its recent level (an LSTM at ``lr=1e6`` ends at
1.5e7 with finite numbers everywhere). ``ExplosionGuard`` keeps a window of recent losses
and flags a value far above their median; ``grads_finite`` catches a backward pass that
produced NaN/inf gradients while the loss itself was still finite. Both are checked before
the optimizer step, so the weights that a checkpoint holds were never touched by the bad
step.
"""
from __future__ import annotations

import contextlib
from collections import deque
from typing import Any, Iterable, Iterator

import torch


class ExplosionGuard:
    """Flags a loss far above its running history.

    A value ``v`` explodes when ``v > median + factor * max(|median|, MAD, 1)`` over the
    last ``window`` values, once ``warmup`` values have been seen. The floor of 1 keeps a
    loss that hovers near zero (a discriminator that is winning) from tripping it on an
    ordinary swing; only upward jumps count (a loss that falls is never a divergence).

    Args:
        factor: how many scales above the median a loss may go (default 1,000).
        window: how many recent losses the median and MAD are taken over.
        warmup: values seen before the guard starts judging (1: the first loss of a run
            is already a yardstick, and a huge learning rate explodes within a few steps).
    """

    def __init__(self, *, factor: float = 1e3, window: int = 64, warmup: int = 1):
        self.factor, self.warmup = float(factor), int(warmup)
        self.values: deque[float] = deque(maxlen=int(window))

    def threshold(self) -> float | None:
        """The value above which a loss explodes now (``None`` during warm-up)."""
        if len(self.values) < self.warmup:
            return None
        vals = sorted(self.values)
        med = vals[len(vals) // 2]
        mad = sorted(abs(v - med) for v in vals)[len(vals) // 2]
        return med + self.factor * max(abs(med), mad, 1.0)

    def explodes(self, value: float) -> bool:
        """Whether ``value`` explodes; a healthy value joins the history."""
        limit = self.threshold()
        if limit is not None and value > limit:
            return True
        self.values.append(float(value))
        return False

    def state_dict(self) -> list[float]:
        return list(self.values)

    def load_state_dict(self, values: Iterable[float] | None) -> None:
        self.values.clear()
        self.values.extend(float(v) for v in (values or []))


def grads_finite(params: Iterable[torch.nn.Parameter]) -> bool:
    """Whether every gradient is finite (one fused norm over all of them)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    try:
        norms = torch._foreach_norm(grads)  # what clip_grad_norm_ uses: one kernel per dtype
    except (AttributeError, RuntimeError):
        norms = [g.norm() for g in grads]
    return bool(torch.isfinite(torch.stack(norms).sum()))


@contextlib.contextmanager
def fitting(model: Any) -> Iterator[None]:
    """Mark ``model`` as being trained for the duration (``check_fitted`` then lets a
    callback or a sample grid sample from it mid-fit)."""
    model._fitting = True
    try:
        yield
    finally:
        model._fitting = False
