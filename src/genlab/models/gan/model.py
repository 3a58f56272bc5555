"""Generative adversarial networks: DCGAN / MLP GAN with the five classic losses, spectral
norm, conditional GAN (projection D + conditional batch norm), EMA generator, minibatch
std and PacGAN packing. Training is the one ``Trainer`` with ``train.AdversarialStep``."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from ..torch_model import TorchGenerativeModel
from ...data.dataset import Dataset
from ...registry import MODELS
from . import losses
from .config import GANConfig
from .nets import Discriminator, Generator


def scatter_image(points: torch.Tensor, *, lim: float, bins: int = 96) -> torch.Tensor:
    """A 2-D point cloud as a ``(1, 1, bins, bins)`` picture in [0, 1] (dark = dense), for
    the progress grids of toy data."""
    h, _, _ = np.histogram2d(points[:, 1].numpy(), points[:, 0].numpy(), bins=bins,
                             range=[[-lim, lim], [-lim, lim]])
    img = 1 - np.log1p(h[::-1]) / max(np.log1p(h.max()), 1e-9)
    return torch.from_numpy(img.copy()).float()[None, None]


class AdversarialModel(TorchGenerativeModel):
    """What the GAN and SRGAN share: the EMA copy of G, the training entry point and the
    discriminator loss with the optional gradient penalty."""

    log_prob_kind = "none"
    declared_tags = {"trained_by": "adversarial"}
    g_needs_data = False
    resumable_config_fields = ("lr_g", "lr_d")  # a lower rate after a divergence

    def planned_steps(self, n_train: int, train: Any) -> int:
        """Generator steps of a fit: one per ``n_critic`` batches, plus one for a generator
        that sees data (``g_needs_data``; see ``AdversarialStep``)."""
        from ...train.trainer import planned_steps

        return planned_steps(n_train, train, self.config.n_critic + (1 if self.g_needs_data else 0))

    def training_step(self) -> Any:
        """The adversarial step (``genlab.models.gan.train.AdversarialStep``): ``n_critic``
        discriminator updates and one generator update per step, TTUR rates, EMA, sample
        grids every ``sample_every`` steps and validation (FID / PSNR on ``val``) every
        ``val_every`` steps with the best weights kept — resumable bit for bit."""
        from .train import AdversarialStep

        return AdversarialStep()

    def _make_ema(self) -> None:
        # a submodule, so the averaged weights live in the state_dict and in model.safetensors
        self.generator_ema = copy.deepcopy(self.generator) if self.config.ema_decay > 0 else None
        if self.generator_ema is not None:
            self.generator_ema.requires_grad_(False)

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator used for sampling: the EMA copy when enabled."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def prepare_fit(self, train_ds: Dataset, seed: int) -> None:
        """Hook before the loop (e.g. keep a few inputs). Default: nothing."""

    def _penalty_weights(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor | None:
        """The gradient penalty's mixing weights for the global batch ``x`` (``None``
        without a penalty), drawn before the batch is sharded over processes."""
        c = self.config
        if c.loss == "wgan-gp" or (c.gp_always and c.gp_weight > 0):
            return losses.penalty_weights(len(x), x.dim(), g).to(x.device)
        return None

    def _d_loss(self, real_out, fake_out, real_x, fake_x, y, eps) -> dict[str, torch.Tensor]:
        c = self.config
        loss = losses.d_loss(c.loss, real_out, fake_out)
        out = {"d_real": real_out.mean().detach(), "d_fake": fake_out.mean().detach()}
        if eps is not None:
            gp = losses.gradient_penalty(lambda x: self.discriminator(x, y), real_x, fake_x, eps=eps)
            loss = loss + c.gp_weight * gp
            out["gp"] = gp.detach()
        return {"d_loss": loss, **out}


def _whole(t: Any) -> Any:
    """The shard of one process: the whole batch."""
    return t


@MODELS.register("gan", aliases=("dcgan",))
class GAN(AdversarialModel):
    """A GAN whose generator maps ``z ~ N(0, I)`` (and a class label) to data space.

    ``log_prob`` raises: a GAN defines no likelihood; compare it with FID/KID, precision/
    recall and mode coverage (``genlab evaluate``).

    Example:
        >>> gan = GAN(loss="hinge", spectral_norm=True).fit("fashion-mnist", {"max_steps": 2000})
        >>> x = gan.sample(16, generator=torch.Generator().manual_seed(0))   # (16, 1, 28, 28)
        >>> cgan = GAN(num_classes=-1).fit("digits"); threes = cgan.sample(8, y=3)
    """

    model_type = "gan"
    declared_tags = {"latent": True, "modality": "image"}
    config_class = GANConfig

    def data_defaults(self, dataset: Dataset) -> dict[str, Any]:
        c = self.config
        image = len(dataset.shape) == 3
        arch = c.arch if c.arch != "auto" else ("conv" if image else "mlp")
        if arch == "conv" and not image:
            raise ValueError(f"arch='conv' needs image data (C, H, W), got shape {dataset.shape}; use arch='mlp'")
        output = c.output
        if output == "auto":
            output = "sigmoid" if dataset.kind == "image" else "linear"
        g_cond = c.g_cond if c.g_cond != "auto" else ("cbn" if arch == "conv" else "concat")
        if g_cond == "cbn" and arch != "conv":
            raise ValueError("g_cond='cbn' (conditional batch norm) needs arch='conv'; use g_cond='concat'")
        return {"arch": arch, "output": output, "g_cond": g_cond}

    def build(self) -> None:
        c = self.config
        arch = c.arch if c.arch != "auto" else ("conv" if len(c.data_shape) == 3 else "mlp")
        g_cond = c.g_cond if c.g_cond != "auto" else ("cbn" if arch == "conv" else "concat")
        out = c.output if c.output != "auto" else ("sigmoid" if len(c.data_shape) == 3 else "linear")
        self.n_cond = max(c.num_classes, 0)
        self.generator = Generator(c.latent_dim, c.data_shape, arch=arch, hidden=c.hidden,
                                   channels=c.g_channels, num_classes=self.n_cond, g_cond=g_cond, output=out,
                                   batchnorm=c.g_batchnorm)
        self.discriminator = Discriminator(c.data_shape, arch=arch, hidden=c.hidden, channels=c.d_channels,
                                           spectral_norm=c.spectral_norm, minibatch_std=c.minibatch_std,
                                           mbstd_group=c.mbstd_group, pack=c.pack, num_classes=self.n_cond)
        self._make_ema()

    # -- pieces
    def _labels(self, y: Any, n: int) -> torch.Tensor | None:
        if not self.n_cond:
            if y is not None:
                raise ValueError("this GAN is unconditional (num_classes=0): drop y, or train "
                                 "with num_classes=-1 to sample by class")
            return None
        if y is None:
            return torch.arange(n, device=self.device) % self.n_cond  # cycle through the classes
        y = torch.as_tensor(y, dtype=torch.long).reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        if len(y) != n or int(y.min()) < 0 or int(y.max()) >= self.n_cond:
            raise ValueError(f"y must hold {n} labels in 0..{self.n_cond - 1}, got {y.tolist()[:8]}")
        return self._on_device(y)

    def d_step(self, batch: dict[str, torch.Tensor], g: torch.Generator, shard: Any = None) -> dict[str, torch.Tensor]:
        """Discriminator loss on a real batch and as many fresh fakes (G held fixed). The
        noise is drawn for the whole (global) batch, then ``shard`` keeps this process's rows."""
        take = shard or _whole
        x = batch["x"]
        y = batch.get("y") if self.n_cond else None
        z = self._noise(len(x), self.config.latent_dim, generator=g)
        eps = self._penalty_weights(x, g)
        x, y, z, eps = take(x), take(y), take(z), take(eps)
        with torch.no_grad():
            fake = self.generator(z, y)
        return self._d_loss(self.discriminator(x, y), self.discriminator(fake, y), x, fake, y, eps)

    def g_step(self, batch: Any, g: torch.Generator, shard: Any = None) -> dict[str, torch.Tensor]:
        """Generator loss on a fresh batch of ``batch_size_`` fakes (labels drawn uniformly;
        ``shard`` keeps this process's rows of them)."""
        take = shard or _whole
        n = self.batch_size_
        y = self._on_device(torch.randint(self.n_cond, (n,), generator=g)) if self.n_cond else None
        z = self._noise(n, self.config.latent_dim, generator=g)
        y, z = take(y), take(z)
        return {"g_loss": losses.g_loss(self.config.loss, self.discriminator(self.generator(z, y), y))}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Discriminator loss and mean logits on ``batch`` against as many fakes drawn with a
        fixed seed (what ``evaluate`` reports on the test split; deterministic)."""
        x = batch["x"]
        x = x[:len(x) - len(x) % self.config.pack] if len(x) >= self.config.pack else x.repeat(self.config.pack, *[1] * (x.dim() - 1))[:self.config.pack]
        y = batch.get("y")[:len(x)] if (self.n_cond and batch.get("y") is not None) else self._labels(None, len(x))
        g = torch.Generator().manual_seed(len(x))
        fake = self.sampler(self._noise(len(x), self.config.latent_dim, generator=g), y)
        r, f = self.discriminator(x, y), self.discriminator(fake, y)
        return {"loss": losses.d_loss(self.config.loss, r, f), "d_real": r.mean(), "d_fake": f.mean()}

    # -- progress grids and validation (used by the trainer)
    def fixed_inputs(self, data: Dataset, seed: int) -> dict[str, torch.Tensor]:
        n = self.config.n_fixed if len(self.config.data_shape) == 3 else 2500
        g = torch.Generator().manual_seed(seed)
        return {"z": self._noise(n, self.config.latent_dim, generator=g), "y": self._labels(None, n)}

    @torch.no_grad()
    def progress_image(self, fixed: dict[str, torch.Tensor]) -> torch.Tensor:
        was = self.sampler.training
        self.sampler.eval()
        x = self.sampler(fixed["z"], fixed["y"])
        self.sampler.train(was)
        if len(self.config.data_shape) == 3:
            return x.clamp(0, 1) if x.shape[1] in (1, 3) else x[:, :1].clamp(0, 1)
        pts = x.reshape(len(x), -1)[:, :2].float()
        return scatter_image(pts, lim=max(float(pts.abs().quantile(0.99)), 1.0) * 1.2)

    @torch.no_grad()
    def validate(self, val: Dataset, cache: dict[str, Any]):
        """FID between ``val_samples`` generated and validation images in the shipped judge's
        space (``None`` when the data has no shipped judge)."""
        if "judge" not in cache:
            cache["judge"] = None
            if len(self.config.data_shape) == 3:
                try:
                    from ...metrics.judges import judge_for

                    cache["judge"] = judge_for(val)
                except ValueError:
                    import warnings

                    warnings.warn("val_every is set but no shipped judge fits this data; "
                                  "FID validation is skipped", RuntimeWarning, stacklevel=2)
        judge = cache["judge"]
        if judge is None:
            return None
        from ...metrics import fid

        n = min(self.config.val_samples, len(val))
        if "real" not in cache:
            cache["real"] = judge.extract(val.x[:n], progress=False)["features"]
        fake = self.sample(n, generator=torch.Generator().manual_seed(12345))
        self.train()
        return {"fid": float(fid(cache["real"], judge.extract(fake, progress=False)["features"]))}, "fid", False

    # -- contract
    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, y: Any = None) -> torch.Tensor:
        """``n`` samples ``G(z, y)``, ``z ~ N(0, I)`` (the EMA generator when ``ema_decay > 0``).

        Args:
            n: number of samples.
            generator: seeded ``torch.Generator`` for reproducible draws.
            y: class label(s) of a conditional GAN: an int or ``n`` labels; default cycles
                through the classes.
        Returns:
            ``(n, *data_shape)`` in data space (images in [0, 1]).
        """
        self.check_fitted()
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return self.decode(self.sample_latent(n, generator=generator), y)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, latent_dim)`` from ``N(0, I)``."""
        return self._noise(int(n), self.config.latent_dim, generator=generator)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y: Any = None) -> torch.Tensor:
        """``G(z, y)`` in eval mode, ``(B, *data_shape)``."""
        self.check_fitted()
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must have shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        self.eval()
        y = self._labels(y, len(z))
        return torch.cat([self.sampler(z[i:i + 1024], None if y is None else y[i:i + 1024])
                          for i in range(0, len(z), 1024)])
