"""Callbacks: code that watches or steers a ``fit`` from outside the model, the same for
every family (gradient, adversarial, classifier steps alike).

Subclass ``Callback`` and override the hooks you need; each receives the running
``Trainer`` (its ``step``, ``epoch``, ``model``, ``history``, ``optimizers`` ...) and may set
``trainer.should_stop = True`` (the step is checkpointed, then ``fit`` returns) or call
``trainer.set_lr(...)``. Any object with some of these methods works too: the trainer calls
the hooks an object has.

Example:
    >>> class Budget(Callback):
    ...     def __init__(self, seconds): self.t0, self.seconds = time.time(), seconds
    ...     def on_step_end(self, trainer, logs):
    ...         trainer.should_stop = time.time() - self.t0 > self.seconds
    >>> model.fit(data, {"epochs": 100}, callbacks=[Budget(60)])
"""
from __future__ import annotations

from typing import Any

#: every hook, in the order a fit calls them first
HOOKS = ("on_fit_start", "on_step_end", "on_validation_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Base class of training callbacks: every hook does nothing."""

    def on_fit_start(self, trainer: Any) -> None:
        """Once, before the first step of this ``fit`` (also when resuming), after the
        optimizers, the checkpoint and the logs are set up."""

    def on_step_end(self, trainer: Any, logs: dict[str, float]) -> None:
        """After every step; ``logs`` are the step's scalars (``loss``, or ``d_loss`` and
        ``g_loss``, ...) and ``trainer.step`` counts the steps done."""

    def on_validation_end(self, trainer: Any, row: dict[str, Any]) -> None:
        """After each validation; ``row`` is the logged row (``val_loss``, ``val_fid``, ...)."""

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        """After each pass over the training data: ``row`` is the validation row when this
        epoch end validated, else ``{"split": "epoch", "step": ..., "epoch": ...}``."""

    def on_fit_end(self, trainer: Any) -> None:
        """Once, after a fit that ran to its end (not after an error or a stop signal),
        with the final weights in place."""


def bound_hooks(objects: list[Any]) -> dict[str, list[Any]]:
    """``{hook: [bound methods]}`` for the hooks each object really defines (a
    ``Callback``'s inherited no-ops are left out, so they cost nothing per step)."""
    hooks: dict[str, list[Any]] = {name: [] for name in HOOKS}
    for obj in objects:
        for name in HOOKS:
            fn = getattr(obj, name, None)
            if fn is None or getattr(type(obj), name, None) is getattr(Callback, name):
                continue
            hooks[name].append(fn)
    return hooks
