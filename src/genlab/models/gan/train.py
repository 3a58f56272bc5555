"""The adversarial training loop: two optimizers, n_critic, EMA, sample grids, periodic
validation with the best weights kept — and everything the generic trainer guarantees.

One *step* is one generator update, preceded by ``n_critic`` discriminator updates that
each take the next data batch. Reproducibility and resume follow ``genlab.train.trainer``:
data order is a permutation seeded by ``(seed, epoch)``; all noise of a step (z, the
gradient-penalty mixing weights) comes from a generator seeded by ``(seed, step)``; torch's
global RNG is seeded at the start and saved in each checkpoint. A run killed at any point
and resumed from its last checkpoint repeats the uninterrupted run's arithmetic exactly.
Ctrl-C / SIGTERM finish the step, checkpoint and stop; a non-finite loss stops the run
naming the step, with the last good checkpoint kept.

The model supplies the game (``GAN`` and ``SRGAN`` both do): ``generator``,
``discriminator``, ``generator_ema`` (or None), ``d_step(batch, g)`` / ``g_step(batch, g)``
returning dicts with ``d_loss`` / ``g_loss``, ``fixed_inputs(data, seed)`` +
``progress_image(fixed)`` for the sample grids, and ``validate(val, cache)`` returning
``(scores, monitor_key, higher_is_better)`` or ``None``.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from ..._threads import training_threads
from ...errors import DataError, TrainingDivergedError
from ...train.checkpoint import clean_stale_temporaries, load_checkpoint, open_metrics_log, save_checkpoint
from ...train.config import TrainConfig
from ...train.guard import ExplosionGuard, fitting, grads_finite
from ...train.schedule import make_optimizer, make_scheduler
from ...train.signals import install_stop_handlers
from ...train.trainer import (CHECKPOINT_DIR, METRICS_FILE, _mix, keep_good_checkpoint, resolve_data,
                              resume_changes, set_base_lr)

# TrainConfig fields the adversarial loop does not use; a value other than the default is
# refused rather than accepted and dropped.
UNSUPPORTED = {
    "patience": "GANs keep the best weights by validation instead (keep_best, val_every)",
    "min_delta": "GANs have no early stopping",
    "grad_clip": "the adversarial loop does not clip gradients (use spectral_norm=True or wgan-gp)",
    "eval_every": "GANs validate every val_every generator steps (a model setting)",
    "monitor": "GANs validate on FID (images) or PSNR (super-resolution)",
    "augment": "the adversarial loop applies no augmentation (augment the data set instead)",
    "tensorboard": "the adversarial loop logs to metrics.jsonl only",
}


def check_supported(cfg: TrainConfig, mc: Any) -> None:
    """Refuse TrainConfig settings the adversarial loop cannot honour (one line each)."""
    default = TrainConfig()
    for name, why in UNSUPPORTED.items():
        v = getattr(cfg, name)
        if v != getattr(default, name) and not (name == "tensorboard" and v is False):
            raise ValueError(f"{name}={v!r} is not supported for GAN training: {why}")
    if cfg.lr != default.lr and mc.lr_g is not None and mc.lr_d is not None:
        raise ValueError(
            f"lr={cfg.lr:g} would be ignored: GAN training uses lr_g={mc.lr_g:g} and lr_d={mc.lr_d:g} "
            "(TTUR); set lr_g/lr_d (--lr_g=... --lr_d=...), or set them to None to use lr")

SAMPLES_DIR = "samples"
GIF_FILE = "progress.gif"


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for parameters; buffers (batch-norm
    statistics) are copied, as in the EMA generators of ProGAN/StyleGAN."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def ema_decay_at(step: int, decay: float) -> float:
    """Warmed-up decay ``min(decay, (1 + step) / (10 + step))``: early averages forget the
    random initialisation quickly."""
    return min(decay, (1 + step) / (10 + step))


def write_progress_gif(samples_dir: Path, out: Path, *, ms_per_frame: int = 400) -> Path | None:
    """Animate the sample grids ``samples_dir/step_*.png`` (in step order) into a GIF."""
    from PIL import Image

    frames = sorted(Path(samples_dir).glob("step_*.png"))
    if not frames:
        return None
    images = [Image.open(f).convert("RGB") for f in frames]
    size = images[0].size
    images = [im if im.size == size else im.resize(size) for im in images]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                   duration=ms_per_frame, loop=0)
    tmp.replace(out)
    return out


def _adam(params, lr: float, betas, cfg: TrainConfig) -> torch.optim.Optimizer:
    return make_optimizer(params, cfg.replace(lr=lr, betas=tuple(betas)))


class AdversarialTrainer:
    """Trains a GAN-family model according to a ``TrainConfig`` (see the module doc).

    Attributes set during ``fit``: ``model``, ``step``, ``epoch``, ``history``,
    ``should_stop`` (a callback may set it), ``best_value``, ``best_step``.
    """

    def __init__(self, config: TrainConfig | dict | None = None):
        self.config = TrainConfig.coerce(config)
        self.history: list[dict[str, Any]] = []
        self.should_stop = False

    def _log(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if self._log_file is not None:
            self._log_file.write(json.dumps(row) + "\n")
            self._log_file.flush()

    def _diverged(self, value: float, what: str, exploded: float | None = None) -> None:
        where = f"step {self.step + 1} (epoch {self.epoch})"
        self._log({"split": "event", "step": self.step + 1, "epoch": self.epoch,
                   "event": "diverged", "value": str(value), "what": what})
        keep = keep_good_checkpoint(self.run_dir, self.step)
        mc = self.model.config
        became = (f"exploded to {value:.4g} (its recent level allows up to {exploded:.4g})"
                  if exploded is not None else f"became {value}")
        raise TrainingDivergedError(
            f"the {what} {became} at {where}.{keep} Try lower learning rates (now "
            f"lr_g={self.lr_g:g}, lr_d={self.lr_d:g}"
            + (f": resume with `genlab train --resume --out {self.run_dir} --lr_g {self.lr_g / 10:g} "
               f"--lr_d {self.lr_d / 10:g}`" if keep else "") + "), "
            f"spectral_norm=True, loss='hinge' or 'wgan-gp' (now {mc.loss!r}), or check the data "
            "for extreme values.")

    def _check(self, loss: torch.Tensor, guard: ExplosionGuard, what: str) -> None:
        v = float(loss.detach())
        if not math.isfinite(v):
            self._diverged(v, what)
        if guard.explodes(v):
            self._diverged(v, what, exploded=guard.threshold())

    # ------------------------------------------------------------------ the loop
    def fit(self, model: Any, data: Any, *, val: Any = None, run_dir: str | Path | None = None,
            resume: bool = False, callbacks: list | None = None) -> Any:
        with fitting(model), contextlib.ExitStack() as self._stack:  # sampling mid-fit is allowed
            return self._fit(model, data, val=val, run_dir=run_dir, resume=resume, callbacks=callbacks)

    def _fit(self, model: Any, data: Any, *, val: Any, run_dir: str | Path | None, resume: bool,
             callbacks: list | None) -> Any:
        cfg = self.config
        check_supported(cfg, model.config)
        train_ds, val_ds = resolve_data(data, val, cfg)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        ckpt_dir = self.run_dir / CHECKPOINT_DIR if self.run_dir else None
        if ckpt_dir is not None:
            clean_stale_temporaries(ckpt_dir)  # left by a kill during a checkpoint write
        ckpt = load_checkpoint(ckpt_dir) if (resume and ckpt_dir) else None
        if ckpt is None:
            torch.manual_seed(cfg.seed)  # same seed -> same initial weights
            if model.built and not model.fitted:
                model.build()
        model.prepare(train_ds)
        self._stack.enter_context(training_threads(cfg.threads, model))  # 1 for a small model
        mc = model.config
        if getattr(mc, "num_classes", 0) and train_ds.y is None:
            raise DataError(f"{type(model).__name__} is conditional (num_classes={mc.num_classes}) "
                            "but the data has no labels")
        pack = getattr(mc, "pack", 1)
        if cfg.batch_size < pack:
            raise ValueError(f"batch_size={cfg.batch_size} is smaller than pack={pack}")
        model.batch_size_ = cfg.batch_size - cfg.batch_size % pack  # fakes per G step
        model.prepare_fit(train_ds, cfg.seed)
        model.train()
        self.model, self.callbacks = model, list(callbacks or [])
        n, bs = len(train_ds), cfg.batch_size
        spe = math.ceil(n / bs)
        by_epochs = max(1, (spe * cfg.epochs) // mc.n_critic)
        total = by_epochs if cfg.max_steps is None else min(cfg.max_steps, by_epochs)
        self.lr_g, self.lr_d = mc.lr_g or cfg.lr, mc.lr_d or cfg.lr
        betas = mc.betas or cfg.betas
        opt_g = _adam(model.generator.parameters(), self.lr_g, betas, cfg)
        opt_d = _adam(model.discriminator.parameters(), self.lr_d, betas, cfg)
        sched_g = make_scheduler(opt_g, cfg, spe, total)
        sched_d = make_scheduler(opt_d, cfg, spe, total * mc.n_critic)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_value, self.best_step = math.nan, -1
        best_state: dict[str, torch.Tensor] | None = None
        guard_d, guard_g = ExplosionGuard(), ExplosionGuard()
        self.resume_changes: dict[str, list[Any]] = {}
        signature = json.dumps({"train": cfg.to_dict(), "model": mc.to_dict()}, sort_keys=True)
        if resume and ckpt is None and self.run_dir is not None and (self.run_dir / METRICS_FILE).exists():
            (self.run_dir / METRICS_FILE).unlink()  # killed before its first checkpoint
        if ckpt is not None:
            recorded = json.loads(ckpt["config"])
            free = type(model).resumable_config_fields  # lr_g / lr_d may change
            now_model = json.loads(json.dumps(mc.to_dict()))
            if {k: v for k, v in recorded["model"].items() if k not in free} != \
                    {k: v for k, v in now_model.items() if k not in free}:
                raise ValueError(f"cannot resume {self.run_dir}: its checkpoint was made with another "
                                 "model configuration; start a new run to change it")
            self.resume_changes = resume_changes(recorded["train"], cfg.to_dict(), what=str(self.run_dir))
            if "lr" in self.resume_changes and mc.lr_g is not None and mc.lr_d is not None:
                raise ValueError("a GAN trains with lr_g/lr_d: resume with --lr_g/--lr_d (or --lr for both)")
            self.resume_changes.update({k: [recorded["model"].get(k), now_model[k]] for k in free
                                        if recorded["model"].get(k) != now_model[k]})
            model.load_state_dict(ckpt["model"])
            for obj, key in ((opt_g, "opt_g"), (opt_d, "opt_d"), (sched_g, "sched_g"), (sched_d, "sched_d")):
                obj.load_state_dict(ckpt[key])
            torch.set_rng_state(ckpt["rng"])
            self.step, self.epoch, self.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
            self.best_value, self.best_step = ckpt["best_value"], ckpt["best_step"]
            best_state = ckpt["best_state"] or None
            guard_d.load_state_dict(ckpt.get("guard_d"))
            guard_g.load_state_dict(ckpt.get("guard_g"))
            if self.resume_changes.keys() & {"lr", "lr_g", "lr_d"}:  # new rates from this step on
                set_base_lr(opt_g, sched_g, self.lr_g)
                set_base_lr(opt_d, sched_d, self.lr_d)

        self._log_file = None
        if self.run_dir is not None:
            self._log_file, kept = open_metrics_log(self.run_dir / METRICS_FILE,
                                                    None if ckpt is None else self.step)
            if ckpt is not None:
                self.history = kept

        def checkpoint() -> None:
            if ckpt_dir is not None:
                save_checkpoint(ckpt_dir, {
                    "model": model.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                    "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict(),
                    "rng": torch.get_rng_state(), "step": self.step, "epoch": self.epoch,
                    "batch_in_epoch": self.batch_in_epoch, "best_value": self.best_value,
                    "best_step": self.best_step, "best_state": best_state or {}, "config": signature,
                    "guard_d": guard_d.state_dict(), "guard_g": guard_g.state_dict()})

        fixed = model.fixed_inputs(val_ds if val_ds is not None else train_ds, _mix(cfg.seed, 424242)) \
            if (mc.sample_every and self.run_dir is not None) else None
        cache: dict[str, Any] = {}
        perm_epoch, perm = -1, None

        def next_batch() -> dict[str, torch.Tensor]:
            nonlocal perm_epoch, perm
            if self.batch_in_epoch >= spe:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            if perm_epoch != self.epoch:
                perm_epoch = self.epoch
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(cfg.seed, self.epoch)))
            idx = perm[self.batch_in_epoch * bs:(self.batch_in_epoch + 1) * bs]
            self.batch_in_epoch += 1
            if len(idx) % pack:  # PacGAN packs whole groups; a short last batch is trimmed
                idx = idx[:len(idx) - len(idx) % pack] if len(idx) >= pack else perm[:pack]
            batch = {"x": train_ds.x[idx]}
            if train_ds.y is not None:
                batch["y"] = train_ds.y[idx]
            return batch

        from ...progress import Progress

        # on a terminal a bar; in a log a line every 10 s (progress=False: nothing)
        bar = Progress(total, f"train {model.model_type}", "step", initial=self.step,
                       enabled=cfg.progress is not False)
        t0 = time.time()
        stop_signals, restore_signals = install_stop_handlers()  # Ctrl-C / SIGTERM: stop after a checkpoint
        try:
            while self.step < total and not self.should_stop:
                g = torch.Generator().manual_seed(_mix(cfg.seed, 31337, self.step))
                for _ in range(mc.n_critic):
                    out_d = model.d_step(next_batch(), g)
                    self._check(out_d["d_loss"], guard_d, "discriminator loss")
                    opt_d.zero_grad(set_to_none=True)
                    out_d["d_loss"].backward()
                    if not grads_finite(model.discriminator.parameters()):
                        self._diverged(float("nan"), "discriminator gradient")
                    opt_d.step()
                    sched_d.step()
                out_g = model.g_step(next_batch() if model.g_needs_data else None, g)
                self._check(out_g["g_loss"], guard_g, "generator loss")
                opt_g.zero_grad(set_to_none=True)
                out_g["g_loss"].backward()
                if not grads_finite(model.generator.parameters()):
                    self._diverged(float("nan"), "generator gradient")
                opt_g.step()
                sched_g.step()
                if model.generator_ema is not None:
                    ema_update(model.generator_ema, model.generator, ema_decay_at(self.step, mc.ema_decay))
                self.step += 1
                logs = {k: float(v.detach()) for d in (out_d, out_g) for k, v in d.items()
                        if torch.is_tensor(v) and v.dim() == 0}
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == total:
                    bar.set_postfix(d=f"{logs['d_loss']:.3f}", g=f"{logs['g_loss']:.3f}")
                    self._log({"split": "train", "step": self.step, "epoch": self.epoch,
                               "lr": sched_g.get_last_lr()[0], **logs, "time": round(time.time() - t0, 3)})
                if fixed is not None and (self.step % mc.sample_every == 0 or self.step == total):
                    from ...report.figures import save_grid

                    img = model.progress_image(fixed)
                    save_grid(img, self.run_dir / SAMPLES_DIR / f"step_{self.step:06d}.png",
                              nrow=int(math.ceil(math.sqrt(len(img)))))
                if val_ds is not None and mc.val_every and (self.step % mc.val_every == 0 or self.step == total):
                    res = model.validate(val_ds, cache)
                    if res is not None:
                        scores, key, higher = res
                        self._log({"split": "val", "step": self.step, "epoch": self.epoch,
                                   **{f"val_{k}": v for k, v in scores.items()}})
                        v = scores[key] * (-1 if higher else 1)
                        if math.isnan(self.best_value) or v < self.best_value:
                            self.best_value, self.best_step = v, self.step
                            if mc.keep_best:
                                best_state = copy.deepcopy(model.state_dict())
                for cb in self.callbacks:
                    if hasattr(cb, "on_step_end"):
                        cb.on_step_end(self, logs)
                if self.step % cfg.checkpoint_every == 0 or self.step == total or stop_signals or self.should_stop:
                    checkpoint()  # a callback's stop (e.g. a time budget) keeps its step too
                if stop_signals:
                    where = f" (checkpoint in {ckpt_dir})" if ckpt_dir else ""
                    raise KeyboardInterrupt(f"stopped by signal {stop_signals[0]} at step {self.step}{where}")
        finally:
            restore_signals()
            bar.close()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

        if mc.keep_best and best_state is not None and self.best_step != self.step:
            model.load_state_dict(best_state)
            self._log_event_after({"split": "event", "step": self.step, "epoch": self.epoch,
                                   "event": "restored_best", "best_step": self.best_step})
        if fixed is not None:
            write_progress_gif(self.run_dir / SAMPLES_DIR, self.run_dir / "figures" / GIF_FILE)
        model.eval()
        model.fitted = True
        return model

    def _log_event_after(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if self.run_dir is not None:
            with open(self.run_dir / METRICS_FILE, "a") as f:
                f.write(json.dumps(row) + "\n")
