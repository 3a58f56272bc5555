"""Training steps: what one update of a model is, plugged into the one ``Trainer``.

The ``Trainer`` owns everything around an update — epochs and batching, seeding, the
schedules, checkpoints (optimizer states saved by name), logs, progress, callbacks,
validation cadence and early stopping, the divergence guard, ``torchrun``. A *step* owns
the update itself, in the spirit of Lightning's manual optimisation: it names its
optimizers and, given a batch, computes losses and applies them through the trainer's
primitives, which carry the guarantees (guard checks, gradient averaging across
processes, clipping, finiteness):

* ``trainer.check(loss, what)`` — stop the run if ``loss`` is not finite on any process or
  explodes against its recent history (``ExplosionGuard``, one per ``what``);
* ``trainer.update(name, loss)`` — zero the gradients of optimizer ``name``, back-propagate,
  average the gradients over processes, clip them to ``grad_clip`` (or check they are
  finite) and take the optimizer step;
* ``trainer.next_batch()`` — one more batch of the epoch's order, for steps that consume
  several (``batches_per_step``); ``trainer.shard(x)`` — this process's rows of a global
  batch (identity in one process).

The protocol (override what differs from ``Step``'s defaults)::

    class MyStep(Step):
        unsupported = {"monitor": "why"}     # TrainConfig fields refused (non-default value)
        progress_keys = ("loss",)            # logs shown on the progress bar
        lr_flags = {"model": "lr"}           # optimizer name -> its command-line rate flag

        def configure(self, trainer, model) -> dict[str, torch.optim.Optimizer]: ...
        def run(self, trainer, batch) -> dict[str, float]: ...   # one update; its logs
        def should_validate(self, trainer, *, epoch_end) -> bool: ...
        def validate(self, trainer, val) -> dict[str, float] | None: ...  # "val_*" scores
        def monitor(self, trainer) -> tuple[str, bool]: ...     # key, higher is better
        def keep_best(self, cfg) -> bool: ...                   # restore the best weights
        def state_dict(self) / load_state_dict(state)           # the step's own state

A step is also a ``Callback`` (its hooks run before the user's), so per-step side work
such as sample grids lives with it. A model declares its step with
``TorchGenerativeModel.training_step()`` (default: ``GradientStep``); the GAN family returns
``genlab.models.gan.train.AdversarialStep``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from .callbacks import Callback
from .config import TrainConfig
from .schedule import make_optimizer


class Step(Callback):
    """Base of the step protocol (see the module doc); ``configure`` and ``run`` are
    required, everything else has a default."""

    #: TrainConfig fields this step cannot honour: a value other than the default is
    #: refused with ``"<field>=<value> is not supported for <what> training: <why>"``
    unsupported: ClassVar[dict[str, str]] = {}
    #: words for the refusal message ("GAN training")
    what: ClassVar[str] = "this"
    #: logged scalars shown on the progress bar
    progress_keys: ClassVar[tuple[str, ...]] = ("loss",)
    #: optimizer name -> the command-line flag that sets its learning rate (for the advice
    #: given when a run diverges)
    lr_flags: ClassVar[dict[str, str]] = {"model": "lr"}
    #: data batches one step counts for when ``epochs`` becomes a number of steps
    batches_per_step: int = 1
    #: every batch is trimmed to a multiple of this many rows (PacGAN packs whole groups)
    batch_multiple: int = 1
    #: under torchrun the step uses only ``trainer.shard(batch)`` of each batch (its
    #: contiguous rows): the trainer then reads only those rows (set by ``GradientStep``)
    reads_own_rows: ClassVar[bool] = False

    def check(self, cfg: TrainConfig, model: Any) -> None:
        """Refuse settings this step cannot honour (one line naming the field).

        Raises:
            ValueError: a field of ``unsupported`` has a value other than its default.
        """
        default = TrainConfig()
        for name, why in self.unsupported.items():
            v = getattr(cfg, name)
            if v != getattr(default, name):
                raise ValueError(f"{name}={v!r} is not supported for {self.what} training: {why}")

    def configure(self, trainer: Any, model: Any) -> dict[str, torch.optim.Optimizer]:
        """The optimizers, by name (the first one is the primary: its rate is logged as
        ``lr`` and ``set_lr`` is relative to it). Called once per fit, after the model is
        built and before a checkpoint is restored."""
        raise NotImplementedError

    def run(self, trainer: Any, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One update from ``batch`` (a global batch: shard it with ``trainer.shard`` when
        ``trainer.world > 1``); returns the scalars to log."""
        raise NotImplementedError

    def should_validate(self, trainer: Any, *, epoch_end: bool) -> bool:
        """Whether to validate after this step: every ``eval_every`` epochs and at the
        last step."""
        cfg = trainer.config
        return (epoch_end and (trainer.epoch + 1) % cfg.eval_every == 0) or trainer.step == trainer.total_steps

    def validate(self, trainer: Any, val: Any) -> dict[str, float] | None:
        """Validation scores, keys starting with ``val_`` (``None``: nothing to score).
        Default: the example-weighted mean of every scalar ``forward`` returns."""
        return {f"val_{k}": v for k, v in trainer.evaluate(trainer.model, val).items()}

    def monitor(self, trainer: Any) -> tuple[str, bool]:
        """``(key, higher_is_better)`` of the validation score that picks the best weights
        and drives early stopping (default ``TrainConfig.monitor``, lower is better)."""
        return trainer.config.monitor, False

    def keep_best(self, cfg: TrainConfig) -> bool:
        """Whether to keep the best validated weights and restore them at the end
        (default: with early stopping, ``patience`` set)."""
        return cfg.patience is not None

    def remedies(self, model: Any) -> str:
        """What else to try after a divergence, besides a lower learning rate."""
        return "gradient clipping (--grad_clip=1.0), a smaller beta/batch"

    def state_dict(self) -> dict[str, Any]:
        """The step's own state for checkpoints (tensors and plain containers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


def scalar_logs(*outputs: dict[str, Any]) -> dict[str, float]:
    """The 0-d tensors of step outputs as floats (what the trainer logs)."""
    return {k: float(v.detach()) for out in outputs for k, v in out.items()
            if torch.is_tensor(v) and v.dim() == 0}


class GradientStep(Step):
    """The default step: ``loss = model(batch)["loss"]``, checked by the guard, one
    optimizer (``TrainConfig.optimizer``, nanoGPT's weight-decay groups) with
    ``grad_clip``. Honours every ``TrainConfig`` field."""

    reads_own_rows = True

    def configure(self, trainer: Any, model: Any) -> dict[str, torch.optim.Optimizer]:
        return {"model": make_optimizer(model, trainer.config)}

    def run(self, trainer: Any, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        if trainer.world > 1:
            batch = trainer.shard(batch)
        out = trainer.model(batch)
        loss = out["loss"]
        trainer.check(loss)
        trainer.update("model", loss)
        return scalar_logs(out)
