"""Training settings, kept apart from model configs and saved with every run."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from .._threads import check_threads
from ..base import Config

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How to train (the seed's losses, optimizers and regularisation settings).

    Attributes:
        epochs: passes over the training data.
        max_steps: stop after this many optimizer steps (overrides ``epochs`` if smaller).
        batch_size: examples per step.
        optimizer: ``sgd`` (with ``momentum``), ``adam``, ``adamw`` or ``rmsprop``.
        lr: peak learning rate.
        momentum: SGD / RMSprop momentum.
        betas: Adam/AdamW betas.
        weight_decay: L2 penalty (decoupled for AdamW) on the >= 2-D weights of linear,
            convolutional, recurrent and attention layers only — no decay on biases, norm
            layers or embeddings (nanoGPT's parameter groups) — unless ``decay_all``.
        decay_all: apply ``weight_decay`` to every parameter instead (genlab's behaviour
            before the groups).
        schedule: ``constant``, ``step`` (multiply by ``gamma`` every ``step_size``
            epochs) or ``cosine`` (to ``min_lr_ratio * lr`` at the end).
        warmup_steps: linear warm-up from 0 before the schedule.
        grad_clip: clip the global gradient norm to this value (``None`` = off).
        patience: early stopping: stop after this many evaluations without an
            improvement of ``min_delta`` in ``monitor``, and restore the best weights.
            ``None`` disables early stopping (the best weights are still tracked).
        monitor: metric to watch, e.g. ``val_loss``.
        eval_every: evaluate on the validation split every this many epochs.
        val_fraction: held-out share of the training data when no validation set is given.
        checkpoint_every: write a resumable checkpoint every this many steps (and at
            every epoch end).
        log_every: write a training line to ``metrics.jsonl`` every this many steps.
        seed: seeds data order, augmentation and model randomness.
        threads: CPU threads for torch, at most 4 x this machine's CPU count
            (``None`` = torch's default).
        augment: on-the-fly augmentation spec, e.g. ``"flip,shift:2,rotate:10,noise:0.05"``.
        progress: show progress: a bar on a terminal, a line every 10 s in a log or pipe
            (``None`` or ``True``); ``False`` shows nothing.
        tensorboard: also log to TensorBoard in the run folder (``None`` = whenever the
            ``tensorboard`` package is installed and there is a run folder).
        device: ``auto`` (a CUDA GPU, else Apple's MPS, else the CPU), ``cpu``, ``cuda``,
            ``cuda:N`` or ``mps`` (``genlab.devices``). The fitted model stays there; its
            ``sample`` / ``log_prob`` take and return CPU tensors either way. May change
            on resume.
        precision: ``32``, ``bf16-mixed`` (autocast to bfloat16) or ``16-mixed`` (float16
            with a gradient scaler). Only ``32`` resumes bit-identically; fixed for a run.
        compile: compile the model's ``forward`` with ``torch.compile`` (first steps are
            slow while it compiles; needs a C++ compiler on the CPU).
        workers: DataLoader worker processes that read batches ahead (``0``: the main
            process reads them). The batches and their order are the same either way, so a
            run resumes bit-identically with any number; worth it for packed data
            (``genlab data pack``) on a GPU. May change on resume.
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    decay_all: bool = False
    schedule: str = "constant"
    step_size: int = 10
    gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_steps: int = 0
    grad_clip: float | None = None
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str = "val_loss"
    eval_every: int = 1
    val_fraction: float = 0.1
    checkpoint_every: int = 200
    log_every: int = 10
    seed: int = 0
    threads: int | None = None
    augment: str | None = None
    progress: bool | None = None
    tensorboard: bool | None = None
    device: str = "auto"
    precision: str = "32"
    compile: bool = False
    workers: int = 0

    def __post_init__(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"TrainConfig: {msg}")

        need(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be >= 1, got {self.epochs!r}")
        need(self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps!r}")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1,
             f"batch_size must be a positive integer, got {self.batch_size!r}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        need(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum!r}")
        need(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             f"betas must be two numbers in [0, 1), got {self.betas!r}")
        need(self.step_size >= 1, f"step_size must be >= 1, got {self.step_size!r}")
        need(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma!r}")
        need(0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        need(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps!r}")
        need(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip!r}")
        need(self.patience is None or self.patience >= 1, f"patience must be >= 1, got {self.patience!r}")
        need(self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every!r}")
        need(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        need(self.checkpoint_every >= 1, f"checkpoint_every must be >= 1, got {self.checkpoint_every!r}")
        need(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every!r}")
        # NaN / +-inf in any float field (lr, momentum, weight_decay, gamma, grad_clip,
        # min_delta, betas, ...) is already refused by Config's own check, which runs first
        for name in ("lr", "momentum", "weight_decay", "gamma", "min_lr_ratio", "min_delta",
                     "val_fraction", "grad_clip"):
            v = getattr(self, name)
            need(v is None or (isinstance(v, (int, float)) and math.isfinite(v)),
                 f"{name} must be a finite number, got {v!r}")
        if self.threads is not None:
            try:
                check_threads(self.threads)
            except ValueError as e:
                raise ValueError(f"TrainConfig: {e}") from None
        from ..devices import DeviceError, check_device_spec, check_precision

        try:
            check_device_spec(self.device)
            object.__setattr__(self, "precision", check_precision(self.precision))  # 32 -> "32"
        except DeviceError as e:
            raise ValueError(f"TrainConfig: {e}") from None
        need(isinstance(self.compile, bool), f"compile must be true or false, got {self.compile!r}")
        need(isinstance(self.workers, int) and not isinstance(self.workers, bool) and 0 <= self.workers <= 64,
             f"workers must be an integer in 0..64, got {self.workers!r}")
        if self.augment:
            from ..data.augment import parse_augment

            parse_augment(self.augment)  # raises ValueError on a bad spec

    @classmethod
    def coerce(cls, train: Any) -> "TrainConfig":
        if train is None:
            return cls()
        if isinstance(train, cls):
            return train
        if isinstance(train, dict):
            return cls.from_dict(train)
        raise TypeError(f"train must be a TrainConfig or a dict, got {type(train).__name__}")
