"""The one gradient loop for every torch model whose ``forward(batch)`` returns its loss.

Reproducibility and resume: data order is a permutation drawn from a generator seeded by
``(seed, epoch)``; augmentation draws from a generator seeded by ``(seed, step)``; model
randomness (dropout, reparameterisation noise) uses torch's global RNG, which is seeded at
the start and saved in every checkpoint. A run killed at any moment and resumed from its
last checkpoint therefore performs exactly the same floating-point operations as an
uninterrupted run and ends with bit-identical weights on CPU.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .._threads import training_threads
from ..data.dataset import Dataset, as_dataset
from ..errors import DataError, TrainingDivergedError
from . import distributed
from .checkpoint import (checkpoint_step, clean_stale_temporaries, discard_newest, load_checkpoint,
                         open_metrics_log, save_checkpoint)
from .config import TrainConfig
from .guard import ExplosionGuard, fitting, grads_finite
from .schedule import make_optimizer, make_scheduler
from .signals import install_stop_handlers

METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
# TrainConfig fields a resumed run may change (more epochs, a new learning rate after a
# divergence, a clip, bookkeeping). Every other field defines the run's arithmetic (data
# order, optimizer, schedule shape, augmentation) and must stay as recorded.
RESUMABLE_FIELDS = ("epochs", "max_steps", "lr", "grad_clip", "patience", "min_delta",
                    "eval_every", "checkpoint_every", "log_every", "threads", "progress",
                    "tensorboard")


def resume_changes(recorded: dict[str, Any], now: dict[str, Any], *, what: str) -> dict[str, list[Any]]:
    """``{field: [recorded, new]}`` for the fields a resume changes.

    Raises:
        ValueError: a field outside ``RESUMABLE_FIELDS`` differs (one line naming it).
    """
    changed = {k: [recorded.get(k), v] for k, v in now.items() if recorded.get(k, v) != v}
    fixed = sorted(k for k in changed if k not in RESUMABLE_FIELDS)
    if fixed:
        k = fixed[0]
        raise ValueError(
            f"cannot resume {what} with {k}={now[k]!r}: it was trained with {k}={recorded.get(k)!r}, "
            f"and {', '.join(fixed)} cannot change on resume (only {', '.join(RESUMABLE_FIELDS)} "
            "can); start a new run to change it")
    return changed


def _mix(*ints: int) -> int:
    """A deterministic 63-bit seed from integers (no Python hash randomisation)."""
    h = 1469598103934665603
    for i in ints:
        h = ((h ^ (i & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


def resolve_data(data: Any, val: Any, cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """Training and validation sets from user input.

    A dataset name or path uses its own deterministic validation split; an in-memory
    dataset without ``val`` gives up ``cfg.val_fraction`` of its rows (seeded split).
    """
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        from ..data.datasets import load_splits

        splits = load_splits(data)
        train_ds = splits["train"]
        if val is None:
            val = splits.get("val")
    else:
        train_ds = as_dataset(data)
        if val is None and cfg.val_fraction > 0 and len(train_ds) >= 20:
            train_ds, val = train_ds.split([1 - cfg.val_fraction, cfg.val_fraction], seed=cfg.seed)
    val_ds = None if val is None else as_dataset(val, split="val")
    if val_ds is not None and val_ds.shape != train_ds.shape:
        raise DataError(f"validation data has shape {val_ds.shape}, training data {train_ds.shape}")
    return train_ds, val_ds


class Trainer:
    """Trains a ``TorchGenerativeModel`` according to a ``TrainConfig``.

    Attributes set during ``fit``: ``model``, ``step``, ``epoch``, ``run_dir``,
    ``history`` (list of logged rows) and ``should_stop`` (a callback may set it).
    """

    def __init__(self, config: TrainConfig | dict | None = None):
        self.optimizer = self.scheduler = None
        self.config = TrainConfig.coerce(config)
        self.history: list[dict[str, Any]] = []
        self.should_stop = False

    # ------------------------------------------------------------------ helpers
    def _batch(self, ds: Dataset, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = {"x": ds.x[idx]}
        if ds.y is not None:
            batch["y"] = ds.y[idx]
        return batch

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, ds: Dataset) -> dict[str, float]:
        """Example-weighted mean of every scalar ``forward`` returns, over ``ds``."""
        model.eval()
        sums: dict[str, float] = {}
        bs = max(self.config.batch_size, 256)
        for start in range(0, len(ds), bs):
            idx = torch.arange(start, min(start + bs, len(ds)))
            out = model(self._batch(ds, idx))
            for k, v in out.items():
                if torch.is_tensor(v) and v.dim() == 0:
                    sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
        model.train()
        return {k: v / len(ds) for k, v in sums.items()}

    def _log(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if self._log_file is not None:
            try:
                self._log_file.write(json.dumps(row) + "\n")
                self._log_file.flush()
            except OSError as e:  # e.g. a full disk: name the file
                raise type(e)(e.errno, e.strerror, str(self.run_dir / METRICS_FILE)) from None
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, float) and k not in ("time", "epoch"):
                    self._tb.add_scalar(f"{row['split']}/{k}", v, row["step"])

    def _state(self, model, opt, sched, best_state) -> dict[str, Any]:
        return {
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "best_value": self.best_value, "best_step": self.best_step,
            "bad_evals": self.bad_evals, "best_state": best_state or {},
            "stopped_early": self.stopped_early, "guard": self.guard.state_dict(),
            "config": json.dumps(self.config.to_dict(), sort_keys=True),
        }

    # ------------------------------------------------------------------ the loop
    def fit(self, model: Any, data: Any, *, val: Any = None, run_dir: str | Path | None = None,
            resume: bool = False, callbacks: list | None = None) -> Any:
        """Train ``model`` on ``data``; see ``TorchGenerativeModel.fit``."""
        with fitting(model), contextlib.ExitStack() as self._stack:  # sampling mid-fit is allowed
            return self._fit(model, data, val=val, run_dir=run_dir, resume=resume, callbacks=callbacks)

    def _fit(self, model: Any, data: Any, *, val: Any, run_dir: str | Path | None, resume: bool,
             callbacks: list | None) -> Any:
        cfg = self.config
        rank, world = distributed.setup()
        self.rank, self.world = rank, world
        main = rank == 0
        train_ds, val_ds = resolve_data(data, val, cfg)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        ckpt_dir = self.run_dir / CHECKPOINT_DIR if self.run_dir else None
        if ckpt_dir is not None and main:
            clean_stale_temporaries(ckpt_dir)  # left by a kill during a checkpoint write
        ckpt = load_checkpoint(ckpt_dir) if (resume and ckpt_dir) else None
        if ckpt is None:
            # seed before the weights are drawn: same seed -> same initial weights
            torch.manual_seed(cfg.seed)
            if model.built and not model.fitted:
                model.build()
        model.prepare(train_ds)
        self._stack.enter_context(training_threads(cfg.threads, model))  # 1 for a small model
        if ckpt is None and not model.fitted:
            model.on_fit_start(train_ds)  # e.g. parts started from a pretrained model
        if getattr(model.config, "num_classes", 0) and train_ds.y is None:
            raise DataError(
                f"{type(model).__name__} is conditional (num_classes="
                f"{model.config.num_classes}) but the data has no labels"
            )
        model.train()
        self.model, self.callbacks = model, list(callbacks or [])
        augment = None
        if cfg.augment:
            from ..data.augment import parse_augment

            augment = parse_augment(cfg.augment)

        n, bs = len(train_ds), cfg.batch_size
        spe = math.ceil(n / bs)
        total = spe * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, spe * cfg.epochs)
        opt = make_optimizer(model.parameters(), cfg)
        sched = make_scheduler(opt, cfg, spe, total)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_value, self.best_step, self.bad_evals = math.inf, -1, 0
        self.stopped_early = False
        self.guard = ExplosionGuard()
        self.resume_changes: dict[str, list[Any]] = {}
        best_state: dict[str, torch.Tensor] | None = None
        if resume and ckpt is None and ckpt_dir is not None and main and (self.run_dir / METRICS_FILE).exists():
            (self.run_dir / METRICS_FILE).unlink()  # killed before its first checkpoint
        if ckpt is not None:
            recorded = json.loads(ckpt["config"])
            self.resume_changes = resume_changes(recorded, cfg.to_dict(), what=str(self.run_dir))
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            self.guard.load_state_dict(ckpt.get("guard"))
            torch.set_rng_state(ckpt["rng"])
            self.step, self.epoch = ckpt["step"], ckpt["epoch"]
            self.batch_in_epoch = ckpt["batch_in_epoch"]
            self.best_value, self.best_step = ckpt["best_value"], ckpt["best_step"]
            self.bad_evals, self.stopped_early = ckpt["bad_evals"], ckpt["stopped_early"]
            best_state = ckpt["best_state"] or None
        self.optimizer, self.scheduler = opt, sched  # callbacks may read or steer the lr (see set_lr)
        if "lr" in self.resume_changes:  # a new base lr after, e.g., a divergence
            self.set_lr(cfg.lr)

        self._log_file = self._tb = None
        net = model
        if world > 1:  # every rank starts from rank 0's weights (DDP broadcasts them)
            net = torch.nn.parallel.DistributedDataParallel(model)
        if self.run_dir is not None and main:
            self._log_file, kept = open_metrics_log(self.run_dir / METRICS_FILE,
                                                    None if ckpt is None else self.step)
            if ckpt is not None:
                self.history = kept
            if cfg.tensorboard is not False:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
                except ImportError:
                    if cfg.tensorboard:
                        warnings.warn("tensorboard=True but the tensorboard package is not "
                                      "installed (pip install tensorboard); logging to "
                                      "metrics.jsonl only", RuntimeWarning, stacklevel=3)

        def checkpoint() -> None:
            if ckpt_dir is not None and main:
                save_checkpoint(ckpt_dir, self._state(model, opt, sched, best_state))

        from ..progress import Progress

        # on a terminal a bar; in a log a line every 10 s (progress=False: nothing)
        bar = Progress(total, f"train {getattr(model, 'model_type', '')}", "step", initial=self.step,
                       enabled=main and cfg.progress is not False)
        t0 = time.time()
        stop_signals, restore_signals = install_stop_handlers()  # Ctrl-C / SIGTERM: stop after a checkpoint
        try:
            while self.step < total and not self.stopped_early and not self.should_stop:
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(cfg.seed, self.epoch)))
                for b in range(self.batch_in_epoch, spe):
                    if self.step >= total or self.should_stop:
                        break
                    idx = perm[b * bs:(b + 1) * bs]
                    if world > 1:
                        # each rank takes a slice of the global batch; its randomness is a
                        # function of (seed, step, rank), so a resumed run replays it
                        idx = idx[rank::world] if len(idx) >= world else idx[rank % len(idx):][:1]
                        torch.manual_seed(_mix(cfg.seed, self.step, rank))
                    batch = self._batch(train_ds, idx)
                    if augment is not None:
                        g = torch.Generator().manual_seed(_mix(cfg.seed, 7919, self.step, rank))
                        batch["x"] = augment(batch["x"], g)
                    out = net(batch)
                    loss = out["loss"]
                    if not (distributed.all_finite(loss.detach()) if world > 1 else torch.isfinite(loss)):
                        self._diverged(float(loss.detach()))
                    if self.guard.explodes(float(loss.detach())):
                        self._diverged(float(loss.detach()), exploded=self.guard.threshold())
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip is not None:
                        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        if not torch.isfinite(norm):
                            self._diverged(float(norm), what="gradient norm")
                    elif not grads_finite(model.parameters()):
                        self._diverged(float("nan"), what="gradient")
                    opt.step()
                    sched.step()
                    self.step += 1
                    self.batch_in_epoch = b + 1
                    logs = {k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.dim() == 0}
                    bar.update(1)
                    if self.step % cfg.log_every == 0 or self.step == total:
                        if world > 1:
                            logs = distributed.mean_logs(logs)
                        bar.set_postfix(loss=f"{logs['loss']:.4f}")
                        self._log({"split": "train", "step": self.step, "epoch": self.epoch,
                                   "lr": sched.get_last_lr()[0], **logs,
                                   "time": round(time.time() - t0, 3)})
                    for cb in self.callbacks:
                        if hasattr(cb, "on_step_end"):
                            cb.on_step_end(self, logs)
                    epoch_done = self.batch_in_epoch == spe
                    if epoch_done or self.step == total:
                        best_state = self._end_of_epoch(model, val_ds, best_state, epoch_done, total)
                    if epoch_done:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    if (epoch_done or self.step % cfg.checkpoint_every == 0 or self.step == total or stop_signals
                            or self.should_stop):  # a callback's stop (e.g. a time budget) keeps its step too
                        checkpoint()
                    if stop_signals:
                        where = f" (checkpoint in {ckpt_dir})" if ckpt_dir else ""
                        raise KeyboardInterrupt(f"stopped by signal {stop_signals[0]} at step {self.step}{where}")
                    if self.stopped_early:
                        break
        finally:
            restore_signals()
            bar.close()
            if self._log_file is not None:
                self._log_file.close()
            if self._tb is not None:
                self._tb.close()

        if cfg.patience is not None and best_state is not None:
            model.load_state_dict(best_state)
        if world > 1:
            distributed.teardown()
        model.eval()
        model.on_fit_end(train_ds)
        model.fitted = True
        return model

    def set_lr(self, lr: float) -> None:
        """Change the base learning rate from now on (a callback may anneal it by wall clock).

        The schedule's factor still applies on top (``lr x factor(step)``); the new base is
        part of the scheduler state, so a resumed run keeps it.
        """
        if self.scheduler is None:
            raise RuntimeError("set_lr works only while fit() runs (from a callback)")
        set_base_lr(self.optimizer, self.scheduler, lr)

    def _end_of_epoch(self, model, val_ds, best_state, epoch_done: bool, total: int):
        cfg = self.config
        if val_ds is None:
            return best_state
        if (self.epoch + 1) % cfg.eval_every != 0 and self.step != total:
            return best_state
        if self.world > 1:  # identical validation noise on every rank -> identical decisions
            torch.manual_seed(_mix(cfg.seed, self.step, 99991))
        scores = self.evaluate(model, val_ds)
        row = {"split": "val", "step": self.step, "epoch": self.epoch,
               **{f"val_{k}": v for k, v in scores.items()}}
        self._log(row)
        for cb in self.callbacks:
            if hasattr(cb, "on_epoch_end"):
                cb.on_epoch_end(self, row)
        if cfg.monitor not in row:
            raise ValueError(f"monitor {cfg.monitor!r} is not logged; choose one of "
                             f"{sorted(k for k in row if k.startswith('val_'))}")
        value = row[cfg.monitor]
        if value < self.best_value - cfg.min_delta:
            self.best_value, self.best_step, self.bad_evals = value, self.step, 0
            if cfg.patience is not None:
                best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_evals += 1
            if cfg.patience is not None and self.bad_evals >= cfg.patience:
                self.stopped_early = True
                self._log({"split": "event", "step": self.step, "epoch": self.epoch,
                           "event": "early_stop", "best_step": self.best_step,
                           f"best_{cfg.monitor}": self.best_value})
        return best_state

    def _diverged(self, value: float, what: str = "loss", exploded: float | None = None) -> None:
        self._log({"split": "event", "step": self.step + 1, "epoch": self.epoch,
                   "event": "diverged", "what": what, "value": str(value)})
        keep = keep_good_checkpoint(self.run_dir, self.step)
        became = (f"exploded to {value:.4g} (its recent level allows up to {exploded:.4g})"
                  if exploded is not None else f"became {value}")
        raise TrainingDivergedError(
            f"the {what} {became} at step {self.step + 1} (epoch {self.epoch}).{keep} Try a "
            f"lower learning rate (now {self.config.lr:g})"
            + (f" — resume with `genlab train --resume --out {self.run_dir} --lr {self.config.lr / 10:g}`"
               if keep else "")
            + ", gradient clipping (--grad_clip=1.0), a smaller beta/batch, or check the data "
            "for extreme values."
        )


def set_base_lr(opt: torch.optim.Optimizer, sched: Any, lr: float) -> None:
    """Make ``lr`` the base learning rate of ``opt`` under the ``LambdaLR`` ``sched`` (the
    schedule's factor at the current step still applies); part of the scheduler state, so
    a resume keeps it."""
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    sched.base_lrs = [lr] * len(sched.base_lrs)
    for g, fn in zip(opt.param_groups, sched.lr_lambdas):
        g["lr"] = lr * fn(sched.last_epoch)
    sched._last_lr = [g["lr"] for g in opt.param_groups]


def keep_good_checkpoint(run_dir: Path | None, step: int) -> str:
    """After the loss computed from the weights of ``step`` failed, make sure the newest
    checkpoint predates them (a checkpoint written at ``step`` holds those very weights:
    fall back to the one before it). Returns a sentence for the error message."""
    if run_dir is None:
        return ""
    folder = run_dir / CHECKPOINT_DIR
    s = checkpoint_step(folder)
    if s is not None and s >= step:
        if not discard_newest(folder):  # no earlier checkpoint: the only one holds bad weights
            (folder / "last.pt").unlink()
            return " The run's only checkpoint held those weights and was removed."
        s = checkpoint_step(folder)
        if s is not None and s >= step:
            (folder / "last.pt").unlink()
            return " The run's checkpoints held those weights and were removed."
    if s is None:
        return ""
    return f" The last good checkpoint (step {s}) is kept in {folder}."
