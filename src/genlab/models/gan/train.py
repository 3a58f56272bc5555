"""The adversarial step: how the GAN family trains inside the one ``Trainer``.

One *step* is one generator update, preceded by ``n_critic`` discriminator updates that
each take the next data batch (two optimizers, TTUR rates ``lr_g`` / ``lr_d``, the
gradient penalty in the model's discriminator loss, an EMA of G after each step, sample
grids, periodic validation with the best weights kept). Everything around the updates —
data order, schedules, checkpoints, resume, the divergence guard, callbacks, early
stopping, logs, ``torchrun`` — is the trainer's (``genlab.train.trainer``): all noise of a
step (z, the gradient-penalty mixing weights) comes from a generator seeded by
``(seed, step)``, so a run killed at any point and resumed from its last checkpoint
repeats the uninterrupted run's arithmetic exactly. Under ``torchrun`` the noise is drawn
for the global batch and each process takes its rows, like the data, so two processes
train the weights of one.

The model supplies the game (``GAN`` and ``SRGAN`` both do): ``generator``,
``discriminator``, ``generator_ema`` (or None), ``d_step(batch, g, shard)`` /
``g_step(batch, g, shard)`` returning dicts with ``d_loss`` / ``g_loss`` (``batch`` is the
global batch, ``shard`` takes this process's rows), ``fixed_inputs(data, seed)`` +
``progress_image(fixed)`` for the sample grids, and ``validate(val, cache)`` returning
``(scores, monitor_key, higher_is_better)`` or ``None``.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch

from ...nn import ema_decay_at, ema_update
from ...train.config import TrainConfig
from ...train.schedule import make_optimizer
from ...train.steps import Step, scalar_logs
from ...train.trainer import Trainer, mix_seed

SAMPLES_DIR = "samples"
GIF_FILE = "progress.gif"


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


class AdversarialStep(Step):
    """``n_critic`` discriminator updates and one generator update per step (see the
    module doc). Honours every ``TrainConfig`` field except the two below; ``lr`` and
    ``betas`` are used where the model config leaves ``lr_g``/``lr_d``/``betas`` at
    ``None`` and refused where they would be ignored."""

    unsupported = {
        "eval_every": "GANs validate every val_every generator steps (a model setting)",
        "monitor": "GANs monitor their own validation score (FID for images, PSNR for super-resolution)",
    }
    what = "GAN"
    progress_keys = ("d_loss", "g_loss")
    lr_flags = {"generator": "lr_g", "discriminator": "lr_d"}

    def check(self, cfg: TrainConfig, model: Any) -> None:
        super().check(cfg, model)
        mc, default = model.config, TrainConfig()
        if cfg.lr != default.lr and mc.lr_g is not None and mc.lr_d is not None:
            raise ValueError(
                f"lr={cfg.lr:g} would be ignored: GAN training uses lr_g={mc.lr_g:g} and lr_d={mc.lr_d:g} "
                "(TTUR); set lr_g/lr_d (--lr_g=... --lr_d=...), or set them to None to use lr")
        if tuple(cfg.betas) != default.betas and mc.betas is not None:
            raise ValueError(
                f"betas={tuple(cfg.betas)} would be ignored: GAN training uses the model's betas="
                f"{tuple(mc.betas)}; set the model's betas, or set it to None to use the training betas")

    def configure(self, trainer: Any, model: Any) -> dict[str, torch.optim.Optimizer]:
        cfg, mc = trainer.config, model.config
        self.n_critic = mc.n_critic
        self.batches_per_step = mc.n_critic + (1 if model.g_needs_data else 0)  # epochs = passes over the data
        self.batch_multiple = pack = getattr(mc, "pack", 1)
        if cfg.batch_size < pack:
            raise ValueError(f"batch_size={cfg.batch_size} is smaller than pack={pack}")
        model.batch_size_ = cfg.batch_size - cfg.batch_size % pack  # fakes per G step (global)
        model.prepare_fit(trainer.train_data, cfg.seed)
        self._cache: dict[str, Any] = {}
        self._monitor: tuple[str, bool] | None = None
        self._keep_best = bool(mc.keep_best)
        betas = tuple(mc.betas or cfg.betas)
        return {"generator": make_optimizer(model.generator, cfg.replace(lr=mc.lr_g or cfg.lr, betas=betas)),
                "discriminator": make_optimizer(model.discriminator, cfg.replace(lr=mc.lr_d or cfg.lr, betas=betas))}

    def run(self, trainer: Any, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        model, mc = trainer.model, trainer.model.config
        g = torch.Generator().manual_seed(mix_seed(trainer.config.seed, 31337, trainer.step))
        shard = functools.partial(trainer.shard, group=self.batch_multiple)
        for i in range(self.n_critic):
            out_d = model.d_step(batch if i == 0 else trainer.next_batch(), g, shard)
            trainer.check(out_d["d_loss"], "discriminator loss")
            trainer.update("discriminator", out_d["d_loss"], what="discriminator")
        out_g = model.g_step(trainer.next_batch() if model.g_needs_data else None, g, shard)
        trainer.check(out_g["g_loss"], "generator loss")
        trainer.update("generator", out_g["g_loss"], what="generator")
        if model.generator_ema is not None:
            ema_update(model.generator_ema, model.generator, ema_decay_at(trainer.step, mc.ema_decay))
        return scalar_logs(out_d, out_g)

    # -- validation: the model's score every val_every steps
    def should_validate(self, trainer: Any, *, epoch_end: bool) -> bool:
        every = trainer.model.config.val_every
        return bool(every) and (trainer.step % every == 0 or trainer.step == trainer.total_steps)

    def validate(self, trainer: Any, val: Any) -> dict[str, float] | None:
        res = trainer.model.validate(val, self._cache)
        if res is None:
            return None
        scores, key, higher = res
        self._monitor = (f"val_{key}", higher)
        return {f"val_{k}": v for k, v in scores.items()}

    def monitor(self, trainer: Any) -> tuple[str, bool]:
        return self._monitor

    def keep_best(self, cfg: TrainConfig) -> bool:
        return self._keep_best

    def remedies(self, model: Any) -> str:
        return (f"gradient clipping (--grad_clip=1.0), spectral_norm=True, loss='hinge' or 'wgan-gp' "
                f"(now {model.config.loss!r})")

    # -- sample grids (rank 0, with a run folder) and the progress GIF at the end
    def on_fit_start(self, trainer: Any) -> None:
        mc = trainer.model.config
        self._fixed = None
        if mc.sample_every and trainer.run_dir is not None and trainer.rank == 0:
            data = trainer.val_data if trainer.val_data is not None else trainer.train_data
            self._fixed = trainer.model.fixed_inputs(data, mix_seed(trainer.config.seed, 424242))

    def on_step_end(self, trainer: Any, logs: dict[str, float]) -> None:
        every = trainer.model.config.sample_every
        if self._fixed is not None and (trainer.step % every == 0 or trainer.step == trainer.total_steps):
            from ...imaging import save_grid

            img = trainer.model.progress_image(self._fixed)
            save_grid(img, trainer.run_dir / SAMPLES_DIR / f"step_{trainer.step:06d}.png",
                      nrow=int(math.ceil(math.sqrt(len(img)))))

    def on_fit_end(self, trainer: Any) -> None:
        if self._fixed is not None:
            write_progress_gif(trainer.run_dir / SAMPLES_DIR, trainer.run_dir / "figures" / GIF_FILE)


# The GAN loop was a separate class before the steps were pluggable; the one Trainer picks
# the adversarial step from the model now. The old names stay importable.
AdversarialTrainer = Trainer
UNSUPPORTED = AdversarialStep.unsupported
