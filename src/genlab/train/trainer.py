"""The one training loop of every torch family; what one update is comes from a pluggable
step (``genlab.train.steps``: the gradient step, the GAN family's adversarial step, ...).

Reproducibility and resume: data order is a permutation drawn from a generator seeded by
``(seed, epoch)``; augmentation draws from a generator seeded by ``(seed, step)``; model
randomness (dropout, reparameterisation noise) uses torch's global RNG, which is seeded at
the start and saved in every checkpoint; a step's own noise (a GAN's z) comes from a
generator it seeds with ``(seed, step)``. A run killed at any moment and resumed from its
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
from ..devices import (check_precision_on, full_precision, make_scaler, module_device, precision_context,
                       resolve_device, to_device)
from ..data.dataset import Dataset, as_dataset
from ..errors import DataError, TrainingDivergedError
from . import distributed
from .callbacks import bound_hooks
from .checkpoint import (STATE_FORMAT, CheckpointError, check_state_format, checkpoint_step,
                         clean_stale_temporaries, discard_newest, load_checkpoint, open_metrics_log,
                         save_checkpoint)
from .config import TrainConfig
from .guard import ExplosionGuard, fitting, grads_finite
from .schedule import make_scheduler
from .signals import install_stop_handlers

METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
# TrainConfig fields a resumed run may change (more epochs, a new learning rate after a
# divergence, a clip, bookkeeping). Every other field defines the run's arithmetic (data
# order, optimizer, schedule shape, augmentation) and must stay as recorded.
RESUMABLE_FIELDS = ("epochs", "max_steps", "lr", "grad_clip", "patience", "min_delta",
                    "eval_every", "checkpoint_every", "log_every", "threads", "progress",
                    "tensorboard", "device", "compile", "workers")


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


def mix_seed(*ints: int) -> int:
    """A deterministic 63-bit seed from integers (no Python hash randomisation): the seeds
    of data order ``(seed, epoch)``, augmentation and step noise ``(seed, ..., step)``."""
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


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of ``n`` training examples in ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(seed, epoch)))


def batch_rows(order: torch.Tensor, b: int, batch_size: int, multiple: int = 1) -> torch.Tensor:
    """The rows of batch ``b`` of an epoch's ``order``, trimmed to whole groups of
    ``multiple`` rows (PacGAN packs; a batch shorter than one group takes the first);
    ``batch_length`` is the rule."""
    idx = order[b * batch_size:(b + 1) * batch_size]
    k = batch_length(len(order), b, batch_size, multiple)
    return idx[:k] if k <= len(idx) else order[:k]


def batch_length(n: int, b: int, batch_size: int, multiple: int = 1) -> int:
    """How many rows batch ``b`` has for an order of ``n`` rows (``len(batch_rows(...))``,
    without the order): the batch's rows trimmed to whole groups of ``multiple``, or one
    group when fewer."""
    rows = max(0, min(batch_size, n - b * batch_size))
    if rows % multiple:
        rows = rows - rows % multiple if rows >= multiple else min(multiple, n)
    return rows


def rows_of(ds: Dataset, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch dict of rows ``idx`` of ``ds`` (``x``, ``y`` when labelled, ``text`` when
    captioned)."""
    batch = {"x": ds.x[idx]}
    if ds.y is not None:
        batch["y"] = ds.y[idx]
    if ds.text is not None:
        batch["text"] = ds.text[idx]
    return batch


class OwnRows(dict):
    """A batch holding only this process's rows (read that way under torchrun):
    ``Trainer.shard`` leaves it as it is."""


class EpochBatches(torch.utils.data.Dataset):
    """Batch ``b`` of one epoch's order as a map-style dataset (``dataset[b]`` is the batch
    dict), for ``DataLoader`` workers to read ahead: every worker computes the same
    ``(seed, epoch)`` order, so the batches are those of the main process."""

    def __init__(self, data: Dataset, seed: int, epoch: int, batch_size: int, multiple: int,
                 shard: tuple[int, int] | None = None):
        self.data, self.batch_size, self.multiple, self.shard = data, batch_size, multiple, shard
        self.order = epoch_order(len(data), seed, epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        idx = batch_rows(self.order, int(b), self.batch_size, self.multiple)
        if self.shard is not None:
            idx = idx[distributed.shard_rows(len(idx), *self.shard)]
        return rows_of(self.data, idx)


def planned_steps(n_train: int, cfg: TrainConfig, batches_per_step: int = 1) -> int:
    """Steps a fit of ``n_train`` examples under ``cfg`` takes when one step counts for
    ``batches_per_step`` batches (a GAN's ``n_critic``): ``epochs`` passes, at least one
    step, at most ``max_steps``."""
    by_epochs = max(1, (math.ceil(n_train / cfg.batch_size) * cfg.epochs) // batches_per_step)
    return by_epochs if cfg.max_steps is None else min(cfg.max_steps, by_epochs)


class Trainer:
    """Trains a ``TorchGenerativeModel`` according to a ``TrainConfig``: the one loop of
    every torch family. What one update is comes from a ``genlab.train.steps.Step`` —
    the model's own (``model.training_step()``) unless ``step`` is given.

    Attributes set during ``fit``: ``model``, ``training_step`` (the step object),
    ``step`` (steps done), ``epoch``, ``total_steps``, ``run_dir``, ``history`` (logged
    rows), ``optimizers`` / ``schedulers`` by name (``optimizer`` / ``scheduler``: the
    primary ones), ``best_value`` / ``best_step`` (the monitored score, negated when
    higher is better, and its step), ``rank`` / ``world``, and
    ``should_stop`` (a callback may set it).
    """

    def __init__(self, config: TrainConfig | dict | None = None, *, step: Any = None):
        self.config = TrainConfig.coerce(config)
        self._given_step = self.training_step = step
        self.optimizer = self.scheduler = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.should_stop = False
        self.rank, self.world = 0, 1
        self.run_dir: Path | None = None
        self._log_file = self._tb = None
        self.device = torch.device("cpu")
        self.scaler = None
        self._own_rows = False

    # ------------------------------------------------------------------ data
    def _batch(self, ds: Dataset, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return rows_of(ds, idx)

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next global batch of the epoch's order (``(seed, epoch)``-seeded), augmented
        with a generator seeded by ``(seed, step, draw)``; a step that takes several
        batches calls this for all but its first. With ``TrainConfig.workers`` the rows are
        read ahead by DataLoader worker processes (``EpochBatches``): the same batches in
        the same order."""
        if self.batch_in_epoch >= self._spe:  # a step that takes several batches crossed an epoch end
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        b = self.batch_in_epoch
        if self.config.workers:
            batch = self._prefetched(self.epoch, b)
        else:
            if self._perm_epoch != self.epoch:
                self._perm_epoch, self._perm = self.epoch, epoch_order(len(self.train_data), self.config.seed,
                                                                       self.epoch)
            idx = batch_rows(self._perm, b, self.config.batch_size, self._multiple)
            if self._own_rows:  # under torchrun: only this process's rows are read (DistributedSampler)
                idx = idx[distributed.shard_rows(len(idx), self.rank, self.world)]
            batch = self._batch(self.train_data, idx)
        self.batch_in_epoch = b + 1
        if self.batch_in_epoch == self._spe:
            self._epoch_ended = self.epoch  # the epoch whose last batch this is
        if self._augment is not None:
            draw = self._draws
            g = torch.Generator().manual_seed(mix_seed(self.config.seed, 7919, self.step, 0, *([draw] if draw else [])))
            # this process's rows are augmented as they are in the whole batch of one process
            rows = None
            if self._own_rows:
                n_global = batch_length(len(self.train_data), b, self.config.batch_size, self._multiple)
                rows = (n_global, distributed.shard_rows(n_global, self.rank, self.world))
            batch["x"] = self._augment(batch["x"], g, rows=rows)
        self._draws += 1
        batch = to_device(batch, self.device)
        return OwnRows(batch) if self._own_rows else batch

    def _prefetched(self, epoch: int, b: int) -> dict[str, torch.Tensor]:
        """Batch ``b`` of ``epoch`` from the worker processes (a new loader per epoch, and
        after a resume, starting at ``b``)."""
        if self._loader_at != (epoch, b):
            from torch.utils.data import DataLoader

            reader = EpochBatches(self.train_data, self.config.seed, epoch, self.config.batch_size, self._multiple,
                                  shard=(self.rank, self.world) if self._own_rows else None)
            self._loader = iter(DataLoader(reader, batch_size=None, sampler=range(b, self._spe),
                                           num_workers=self.config.workers, prefetch_factor=2,
                                           pin_memory=self.device.type == "cuda",
                                           # its own generator: the loader's base seed must not
                                           # draw from torch's global RNG (the model's noise)
                                           generator=torch.Generator().manual_seed(mix_seed(self.config.seed, epoch))))
        batch = next(self._loader)
        self._loader_at = (epoch, b + 1)
        return batch

    def shard(self, value: Any, *, group: int = 1) -> Any:
        """This process's contiguous rows of a global batch (a tensor, a dict of tensors or
        ``None``), in whole groups of ``group`` rows; the value itself in one process."""
        if self.world == 1 or value is None or isinstance(value, OwnRows):
            return value  # one process, or a batch read as this process's rows already
        if isinstance(value, dict):
            return {k: self.shard(v, group=group) for k, v in value.items()}
        return value[distributed.shard_rows(len(value), self.rank, self.world, group)]

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, ds: Dataset) -> dict[str, float]:
        """Example-weighted mean of every scalar ``forward`` returns, over ``ds``."""
        model.eval()
        sums: dict[str, float] = {}
        bs = max(self.config.batch_size, 256)
        for start in range(0, len(ds), bs):
            idx = torch.arange(start, min(start + bs, len(ds)))
            with self.autocast():  # batches go where the model is (also outside a fit)
                out = model(to_device(self._batch(ds, idx), module_device(model)))
            for k, v in out.items():
                if torch.is_tensor(v) and v.dim() == 0:
                    sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
        model.train()
        return {k: v / len(ds) for k, v in sums.items()}

    # ------------------------------------------------------------------ primitives for steps
    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast region of ``TrainConfig.precision`` on the training device (the
        trainer runs every ``step.run`` and validation forward pass inside it; a no-op at 32)."""
        return precision_context(self.device, self.config.precision)

    def _full_precision(self) -> contextlib.AbstractContextManager:
        """Outside the autocast region (nothing to leave at 32-bit)."""
        return contextlib.nullcontext() if self.config.precision == "32" else full_precision(self.device)

    def check(self, loss: torch.Tensor, what: str = "loss") -> None:
        """Stop the run (``TrainingDivergedError``) if ``loss`` is not finite on some
        process, or explodes against the recent history of ``what`` (``ExplosionGuard``)."""
        v = loss.detach()
        finite = distributed.all_finite(v) if self.world > 1 else bool(torch.isfinite(v))
        value = float(v)
        if not finite:
            self._diverged(value, what)
        guard = self.guards.get(what)
        if guard is None:
            guard = self.guards[what] = ExplosionGuard()
        if guard.explodes(value):
            self._diverged(value, what, exploded=guard.threshold())

    def update(self, name: str, loss: torch.Tensor, *, what: str = "") -> None:
        """One step of optimizer ``name`` on ``loss``: zero its gradients, back-propagate,
        average the gradients over processes, clip them to ``grad_clip`` (or check they are
        finite: ``what`` names them in the error, e.g. "generator"), step."""
        opt, params = self.optimizers[name], self._params[name]
        opt.zero_grad(set_to_none=True)
        scaler = self.scaler
        with self._full_precision():  # backward and step outside autocast
            (scaler.scale(loss) if scaler is not None else loss).backward()
            if self.world > 1:
                distributed.average_gradients(params)
            label = f"{what} gradient" if what else "gradient"
            if scaler is not None:
                # float16: a step whose scaled gradients overflowed is skipped and the scale
                # lowered (GradScaler's rule), not a divergence; the loss guard still watches
                scaler.unscale_(opt)
                if self.config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
                scaler.step(opt)
                scaler.update()
                return
            if self.config.grad_clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
                if not torch.isfinite(norm):
                    self._diverged(float(norm), what=f"{label} norm")
            elif not grads_finite(params):
                self._diverged(float("nan"), what=label)
            opt.step()

    # ------------------------------------------------------------------ logging
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

    def _open_logs(self, resumed: bool) -> None:
        cfg = self.config
        if self.run_dir is None or self.rank != 0:
            return
        self._log_file, kept = open_metrics_log(self.run_dir / METRICS_FILE, self.step if resumed else None)
        if resumed:
            self.history = kept
        if cfg.tensorboard is not False:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                if cfg.tensorboard:
                    warnings.warn("tensorboard=True but the tensorboard package is not "
                                  "installed (pip install tensorboard); logging to "
                                  "metrics.jsonl only", RuntimeWarning, stacklevel=4)

    def _call(self, hook: str, *args: Any) -> None:
        for fn in self._hooks[hook]:
            fn(self, *args)

    # ------------------------------------------------------------------ state
    def _signature(self, model: Any) -> str:
        return json.dumps({"train": self.config.to_dict(), "model": model.config.to_dict()}, sort_keys=True)

    def _state(self, model: Any) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT, "model": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "base_lrs": dict(self._base_lrs), "step_state": self.training_step.state_dict(),
            "rng": torch.get_rng_state(), "step": self.step, "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch, "best_value": self.best_value, "best_step": self.best_step,
            "bad_evals": self.bad_evals, "best_state": self._best_state or {},
            "stopped_early": self.stopped_early,
            "guards": {k: g.state_dict() for k, g in self.guards.items()},
            "config": self._signature(model),
            **({"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
        }

    def _restore(self, model: Any, ckpt: dict[str, Any], ckpt_dir: Path) -> None:
        check_state_format(ckpt, ckpt_dir)
        recorded = json.loads(ckpt["config"])
        free = type(model).resumable_config_fields  # e.g. a GAN's lr_g / lr_d
        now_model = json.loads(json.dumps(model.config.to_dict()))
        differ = sorted(k for k in set(recorded["model"]) | set(now_model)
                        if k not in free and recorded["model"].get(k) != now_model.get(k))
        if differ:
            k = differ[0]
            raise ValueError(f"cannot resume {self.run_dir}: its checkpoint was made with another model "
                             f"configuration ({k}={recorded['model'].get(k)!r}, now {now_model.get(k)!r}); "
                             "start a new run to change it")
        self.resume_changes = resume_changes(recorded["train"], self.config.to_dict(), what=str(self.run_dir))
        self.resume_changes.update({k: [recorded["model"].get(k), now_model[k]] for k in free
                                    if recorded["model"].get(k) != now_model.get(k)})
        if set(ckpt["optimizers"]) != set(self.optimizers):
            raise CheckpointError(f"the checkpoint in {ckpt_dir} holds optimizers {sorted(ckpt['optimizers'])}, "
                                  f"this model trains {sorted(self.optimizers)}: start a new run")
        model.load_state_dict(ckpt["model"])
        for k in self.optimizers:
            self.optimizers[k].load_state_dict(ckpt["optimizers"][k])
            self.schedulers[k].load_state_dict(ckpt["schedulers"][k])
            if ckpt["base_lrs"].get(k) != self._base_lrs[k]:  # a new configured rate from this step on
                set_base_lr(self.optimizers[k], self.schedulers[k], self._base_lrs[k])
        self.training_step.load_state_dict(ckpt["step_state"])
        for k, values in ckpt["guards"].items():
            self.guards[k] = ExplosionGuard()
            self.guards[k].load_state_dict(values)
        torch.set_rng_state(ckpt["rng"])
        if "cuda_rng" in ckpt and self.device.type == "cuda":  # dropout noise drawn on the GPU
            torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.epoch, self.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        self.best_value, self.best_step = ckpt["best_value"], ckpt["best_step"]
        self.bad_evals, self.stopped_early = ckpt["bad_evals"], ckpt["stopped_early"]
        self._best_state = ckpt["best_state"] or None

    # ------------------------------------------------------------------ the loop
    def fit(self, model: Any, data: Any, *, val: Any = None, run_dir: str | Path | None = None,
            resume: bool = False, callbacks: list | None = None) -> Any:
        """Train ``model`` on ``data``; see ``TorchGenerativeModel.fit``."""
        with fitting(model), contextlib.ExitStack() as self._stack:  # sampling mid-fit is allowed
            return self._fit(model, data, val=val, run_dir=run_dir, resume=resume, callbacks=callbacks)

    def _fit(self, model: Any, data: Any, *, val: Any, run_dir: str | Path | None, resume: bool,
             callbacks: list | None) -> Any:
        cfg = self.config
        step = self._given_step if self._given_step is not None else model.training_step()  # fresh per fit
        self.training_step = step
        step.check(cfg, model)  # refuse what this kind of update cannot honour, before any work
        self.device = resolve_device(cfg.device)  # under torchrun "cuda" is this process's GPU
        check_precision_on(self.device, cfg.precision)
        rank, world = distributed.setup(self.device)
        self.rank, self.world = rank, world
        main = rank == 0
        train_ds, val_ds = resolve_data(data, val, cfg)
        self.train_data, self.val_data = train_ds, val_ds
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
        model.to(self.device)
        self.scaler = make_scaler(self.device, cfg.precision)
        if cfg.compile:
            model.forward = torch.compile(model.forward)  # an instance attribute, removed after the fit
            self._stack.callback(model.__dict__.pop, "forward", None)
        if model.tags.conditional and train_ds.y is None:
            raise DataError(
                f"{type(model).__name__} is conditional (num_classes="
                f"{model.config.num_classes}) but the data has no labels"
            )
        model.train()
        self.model = model
        self._hooks = bound_hooks([step, *(callbacks or [])])  # the step's hooks run first
        self._augment = None
        if cfg.augment:
            from ..data.augment import parse_augment

            self._augment = parse_augment(cfg.augment)

        self.optimizers = dict(step.configure(self, model))
        if not self.optimizers:
            raise ValueError(f"{type(step).__name__}.configure returned no optimizers")
        self._params = {k: [p for g in o.param_groups for p in g["params"]] for k, o in self.optimizers.items()}
        self._base_lrs = {k: float(o.defaults["lr"]) for k, o in self.optimizers.items()}
        self._multiple = max(1, int(step.batch_multiple))
        # read only this process's rows when the step takes contiguous shards of the batch
        # (augmentation draws for the whole batch and takes this process's rows' draws)
        self._own_rows = world > 1 and bool(getattr(step, "reads_own_rows", False))
        bps = max(1, int(step.batches_per_step))
        self._spe = math.ceil(len(train_ds) / cfg.batch_size)
        total = self.total_steps = planned_steps(len(train_ds), cfg, bps)
        self.schedulers = {k: make_scheduler(o, cfg, max(1, self._spe // bps), total)
                           for k, o in self.optimizers.items()}
        self.optimizer, self.scheduler = next(iter(self.optimizers.values())), next(iter(self.schedulers.values()))
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_value, self.best_step, self.bad_evals = math.inf, -1, 0
        self.stopped_early = False
        self.guards: dict[str, ExplosionGuard] = {}
        self.resume_changes: dict[str, list[Any]] = {}
        self._best_state: dict[str, torch.Tensor] | None = None
        self._perm_epoch, self._perm = -1, None
        self._loader, self._loader_at = None, None
        if resume and ckpt is None and ckpt_dir is not None and main and (self.run_dir / METRICS_FILE).exists():
            (self.run_dir / METRICS_FILE).unlink()  # killed before its first checkpoint
        if ckpt is not None:
            self._restore(model, ckpt, ckpt_dir)
        if world > 1:  # every rank starts from rank 0's weights
            distributed.broadcast_module(model)
        self._log_file = self._tb = None
        self._open_logs(ckpt is not None)

        def checkpoint() -> None:
            if ckpt_dir is not None and main:
                save_checkpoint(ckpt_dir, self._state(model))

        from ..progress import Progress

        # on a terminal a bar; in a log a line every 10 s (progress=False: nothing)
        bar = Progress(total, f"train {model.model_type}", "step", initial=self.step,
                       enabled=main and cfg.progress is not False)
        keep_best = step.keep_best(cfg)
        t0, first = time.time(), True
        stop_signals, restore_signals = install_stop_handlers()  # Ctrl-C / SIGTERM: stop after a checkpoint
        try:
            self._call("on_fit_start")
            while self.step < total and not self.stopped_early and not self.should_stop:
                if world > 1:  # randomness of a step is a function of (seed, step, rank): a resume replays it
                    torch.manual_seed(mix_seed(cfg.seed, self.step, rank))
                self._epoch_ended, self._draws = None, 0
                with self.autocast():
                    logs = step.run(self, self.next_batch())
                self.step += 1
                if first:  # a step may leave an optimizer unused at first: torch warns of a skipped rate, wrongly
                    first = False
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                                category=UserWarning)
                        for sched in self.schedulers.values():
                            sched.step()
                else:
                    for sched in self.schedulers.values():
                        sched.step()
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == total:
                    if world > 1:
                        logs = distributed.mean_logs(logs)
                    bar.set_postfix(**{k: f"{logs[k]:.4f}" for k in step.progress_keys if k in logs})
                    self._log({"split": "train", "step": self.step, "epoch": self.epoch,
                               "lr": self.scheduler.get_last_lr()[0], **logs,
                               "time": round(time.time() - t0, 3)})
                self._call("on_step_end", logs)
                ended, row = self._epoch_ended, None
                epoch_done = ended is not None
                if val_ds is not None and step.should_validate(self, epoch_end=epoch_done):
                    row = self._validate(model, val_ds, keep_best)
                if epoch_done:
                    self._call("on_epoch_end", row or {"split": "epoch", "step": self.step, "epoch": ended})
                    if self.batch_in_epoch >= self._spe:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                if (epoch_done or self.step % cfg.checkpoint_every == 0 or self.step == total or stop_signals
                        or self.should_stop):  # a callback's stop (e.g. a time budget) keeps its step too
                    checkpoint()
                if stop_signals:
                    where = f" (checkpoint in {ckpt_dir})" if ckpt_dir else ""
                    raise KeyboardInterrupt(f"stopped by signal {stop_signals[0]} at step {self.step}{where}")
            if keep_best and self._best_state is not None and self.best_step != self.step:
                model.load_state_dict(self._best_state)
                self._log({"split": "event", "step": self.step, "epoch": self.epoch,
                           "event": "restored_best", "best_step": self.best_step})
        finally:
            restore_signals()
            bar.close()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            if self._tb is not None:
                self._tb.close()
                self._tb = None

        if world > 1:
            distributed.teardown()
        model.eval()
        model.on_fit_end(train_ds)
        model.fitted = True
        self._call("on_fit_end")
        return model

    def _validate(self, model: Any, val_ds: Dataset, keep_best: bool) -> dict[str, Any] | None:
        """Score the validation data (the step decides how), log it, track the best score
        and stop early after ``patience`` validations without an improvement."""
        cfg = self.config
        if self.world > 1:  # identical validation noise on every rank -> identical decisions
            torch.manual_seed(mix_seed(cfg.seed, self.step, 99991))
        scores = self.training_step.validate(self, val_ds)
        if scores is None:
            return None
        row = {"split": "val", "step": self.step, "epoch": self.epoch, **scores}
        self._log(row)
        self._call("on_validation_end", row)
        key, higher = self.training_step.monitor(self)
        if key not in row:
            raise ValueError(f"monitor {key!r} is not logged; choose one of "
                             f"{sorted(k for k in row if k.startswith('val_'))}")
        value = -row[key] if higher else row[key]
        if value < self.best_value - cfg.min_delta:
            self.best_value, self.best_step, self.bad_evals = value, self.step, 0
            if keep_best:
                self._best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_evals += 1
            if cfg.patience is not None and self.bad_evals >= cfg.patience:
                self.stopped_early = True
                self._log({"split": "event", "step": self.step, "epoch": self.epoch,
                           "event": "early_stop", "best_step": self.best_step,
                           f"best_{key}": -self.best_value if higher else self.best_value})
        return row

    def set_lr(self, lr: float, *, name: str | None = None) -> None:
        """Change the base learning rate from now on (a callback may anneal it by wall clock).

        The schedule's factor still applies on top (``lr x factor(step)``); the new base is
        part of the scheduler state, so a resumed run keeps it. With several optimizers
        (a GAN's generator and discriminator) ``lr`` is the new base of the primary one
        (the generator) and every other base is scaled by the same factor, keeping their
        ratio (TTUR): ``lr_g=2e-4, lr_d=4e-4`` and ``set_lr(1e-4)`` give ``1e-4, 2e-4``.
        ``name`` sets that optimizer's base alone.
        """
        if not self.schedulers:
            raise RuntimeError("set_lr works only while fit() runs (from a callback)")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if name is not None:
            if name not in self.optimizers:
                raise ValueError(f"no optimizer {name!r}; this step has {sorted(self.optimizers)}")
            set_base_lr(self.optimizers[name], self.schedulers[name], lr)
            return
        first = next(iter(self._base_lrs.values()))
        for k, base in self._base_lrs.items():
            set_base_lr(self.optimizers[k], self.schedulers[k], lr if base == first else lr * (base / first))

    def _diverged(self, value: float, what: str = "loss", exploded: float | None = None) -> None:
        """Log the divergence, keep a checkpoint that predates it and raise one line that
        says what failed where, and what to try (the step's rates and remedies)."""
        self._log({"split": "event", "step": self.step + 1, "epoch": self.epoch,
                   "event": "diverged", "what": what, "value": str(value)})
        keep = keep_good_checkpoint(self.run_dir, self.step)
        became = (f"exploded to {value:.4g} (its recent level allows up to {exploded:.4g})"
                  if exploded is not None else f"became {value}")
        step = self.training_step
        rates = {step.lr_flags.get(k, f"lr ({k})"): s.base_lrs[0] for k, s in self.schedulers.items()}
        now = ", ".join(f"{flag}={r:g}" for flag, r in rates.items())
        again = (f"; resume with `genlab train --resume --out {self.run_dir} "
                 + " ".join(f"--{flag} {r / 10:g}" for flag, r in rates.items()) + "`") if keep else ""
        raise TrainingDivergedError(
            f"the {what} {became} at step {self.step + 1} (epoch {self.epoch}).{keep} Try "
            f"{'lower learning rates' if len(rates) > 1 else 'a lower learning rate'} (now {now}{again}), "
            f"{step.remedies(self.model)}, or check the data for extreme values.")


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
