"""Latent diffusion in miniature (Rombach et al. 2022): a convolutional VAE (or plain
autoencoder) maps images to a small latent grid (8x8 -> 4x4xC, 28x28 -> 7x7xC), a
diffusion prior is trained on the grids of the frozen encoder, and samples are the prior's
grids decoded.

Both stages are submodules of one model, saved in one folder and trained by one step on
the one trainer (``LatentDiffusionStep``): the first ``stage1_steps`` steps train the first
stage, then the latents are standardised once (shift and scale estimated from the
training data and kept as buffers: Stable Diffusion's scaling factor) and the remaining
steps train the prior, with its EMA. The prior is a ``Diffusion`` over continuous grids,
so its samplers, classifier-free guidance and variational bound are the diffusion
family's own.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..torch_model import TorchGenerativeModel
from ...base import Config
from ...data.dataset import Dataset
from ...errors import DataError, LogProbUnavailableError
from ...nn import conv_sizes, decoder, ema_decay_at, ema_update, encoder
from ...registry import MODELS
from ...train.schedule import make_optimizer
from ...train.steps import Step, scalar_logs
from ...train.trainer import rows_of
from .config import DiffusionConfig
from .model import Diffusion

LOG_2PI = math.log(2 * math.pi)
FIRST_STAGES = ("vae", "autoencoder")
LIKELIHOODS = ("bernoulli", "gaussian")
#: the ``DiffusionConfig`` fields the latent prior takes from ``LatentDiffusionConfig``
PRIOR_FIELDS = ("noise_schedule", "timesteps", "beta_start", "beta_end", "prediction", "loss_weighting",
                "snr_gamma", "channels", "channel_mult", "blocks", "attention_res", "heads", "dropout",
                "num_classes", "cond_drop", "ema_decay", "sampler", "sample_steps", "spacing", "guidance",
                "nll_timesteps")
_PRIOR_DEFAULTS = DiffusionConfig()


def _prior_default(name: str) -> Any:
    return dataclasses.field(default=getattr(_PRIOR_DEFAULTS, name))


@dataclasses.dataclass(frozen=True)
class LatentDiffusionConfig(Config):
    """A first stage (images <-> latent grid) and a diffusion prior on its latents.

    First stage:
        data_shape: ``(C, H, W)`` of one image; filled in by the first ``fit``.
        first_stage: ``vae`` (a Gaussian posterior per latent cell, KL to ``N(0, I)``
            weighted by ``kl_weight``; ``log_prob`` is a lower bound) or ``autoencoder``
            (deterministic codes; no ``log_prob``).
        latent_channels: channels ``C`` of the latent grid.
        encoder_channels: conv channels of each stride-2 layer (mirrored in the decoder);
            empty: one layer while the image's smaller side is >= 8 (8x8 -> 4x4,
            28x28 -> 7x7, 32x32 -> 4x4) of 32, 64, 128 channels, resolved at ``fit``.
        likelihood: the decoder ``p(x | z)``: ``bernoulli`` (binary cross-entropy on
            [0, 1] images; ``log_prob`` of binary images only) or ``gaussian`` (a learned
            per-pixel std floored by ``min_std`` for the VAE: a density; a squared error
            for the autoencoder).
        min_std: the Gaussian decoder's smallest std.
        kl_weight: weight of the KL term in the VAE's first-stage loss (1: the ELBO;
            small, as in latent diffusion, keeps more detail in the latents and leaves
            their distribution to the prior; on digits 0.01 beat 0.001 and 0.1 at equal
            step budgets).
        stage1_steps: trainer steps that train the first stage; the rest train the prior.
            ``-1``: half of the first fit's planned steps (kept across a resume that
            extends the run).

    Prior (as in ``DiffusionConfig``; ``channels`` etc. are its U-Net's): noise_schedule,
    timesteps, beta_start, beta_end, prediction, loss_weighting, snr_gamma, channels,
    channel_mult, blocks, attention_res, heads, dropout, num_classes (class-conditional
    prior, ``-1`` from the data), cond_drop (the unconditional part classifier-free
    guidance needs), ema_decay, sampler, sample_steps, spacing, guidance, nll_timesteps.
    """

    data_shape: tuple[int, ...] | None = None
    first_stage: str = "vae"
    latent_channels: int = 4
    encoder_channels: tuple[int, ...] = ()
    likelihood: str = "bernoulli"
    min_std: float = 0.01
    kl_weight: float = 0.01
    stage1_steps: int = -1
    noise_schedule: str = _prior_default("noise_schedule")
    timesteps: int = _prior_default("timesteps")
    beta_start: float = _prior_default("beta_start")
    beta_end: float = _prior_default("beta_end")
    prediction: str = _prior_default("prediction")
    loss_weighting: str = _prior_default("loss_weighting")
    snr_gamma: float = _prior_default("snr_gamma")
    channels: int = 64
    channel_mult: tuple[int, ...] = _prior_default("channel_mult")
    blocks: int = _prior_default("blocks")
    attention_res: int = _prior_default("attention_res")
    heads: int = _prior_default("heads")
    dropout: float = _prior_default("dropout")
    num_classes: int = _prior_default("num_classes")
    cond_drop: float = _prior_default("cond_drop")
    ema_decay: float = _prior_default("ema_decay")
    sampler: str = _prior_default("sampler")
    sample_steps: int = _prior_default("sample_steps")
    spacing: str = _prior_default("spacing")
    guidance: float = _prior_default("guidance")
    nll_timesteps: int = _prior_default("nll_timesteps")

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"LatentDiffusionConfig: {msg}")

        need(self.first_stage in FIRST_STAGES,
             f"first_stage must be one of {', '.join(FIRST_STAGES)}, got {self.first_stage!r}")
        need(isinstance(self.latent_channels, int) and self.latent_channels >= 1,
             f"latent_channels must be a positive integer, got {self.latent_channels!r}")
        need(all(isinstance(c, int) and c >= 1 for c in self.encoder_channels),
             f"encoder_channels must hold positive integers (empty: from the image size), got {self.encoder_channels!r}")
        need(self.likelihood in LIKELIHOODS, f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        need(self.min_std > 0, f"min_std must be > 0, got {self.min_std!r}")
        need(self.kl_weight >= 0, f"kl_weight must be >= 0, got {self.kl_weight!r}")
        need(isinstance(self.stage1_steps, int) and self.stage1_steps >= -1,
             f"stage1_steps must be -1 (half the run) or an integer >= 0, got {self.stage1_steps!r}")
        need(self.data_shape is None or (len(self.data_shape) == 3 and min(self.data_shape) >= 1),
             f"latent diffusion models images: data_shape must be (C, H, W), got {self.data_shape!r}")
        try:  # the prior's fields are checked by the diffusion family's own rules
            self.prior_config()
        except ValueError as e:
            raise ValueError(str(e).replace("DiffusionConfig", "LatentDiffusionConfig")) from None

    def prior_config(self, latent_shape: tuple[int, ...] | None = None) -> DiffusionConfig:
        """The ``DiffusionConfig`` of the prior over latent grids of ``latent_shape``."""
        return DiffusionConfig(data_shape=latent_shape, arch="unet", levels=0, clip=False,
                               **{k: getattr(self, k) for k in PRIOR_FIELDS})


def auto_encoder_channels(hw: tuple[int, int]) -> tuple[int, ...]:
    """The default stride-2 layers for images of ``hw`` (see ``encoder_channels``)."""
    h, w, n = int(hw[0]), int(hw[1]), 0
    while min(h, w) >= 8 or n == 0:
        h, w, n = (h - 1) // 2 + 1, (w - 1) // 2 + 1, n + 1
    return tuple(min(32 * 2 ** i, 128) for i in range(n))


class LatentPrior(Diffusion):
    """The prior: a ``Diffusion`` whose data are standardised latent grids, continuous
    values rather than images (no ``2x - 1``, no clipping to an image range, a Gaussian
    decoder density in its bound). It is part of a ``LatentDiffusion``, which trains,
    checks and saves it: on its own it counts as fitted."""

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        self.fitted = True  # the parent's check_fitted guards every way in

    @property
    def is_image(self) -> bool:
        return False


class LatentDiffusionStep(Step):
    """Stage 1 (steps ``0 .. switch-1``): the first stage's loss on optimizer
    ``first_stage``. At the switch the latents are standardised once
    (``LatentDiffusion.standardize_latents`` on the training data); stage 2: the prior's
    denoising loss on the frozen encoder's latents (optimizer ``prior``) and its EMA.
    The state carries the switch step and whether the latents were standardised, so a
    run resumed on either side of the switch repeats the uninterrupted arithmetic."""

    what = "latent diffusion"
    unsupported = {"patience": "the validation loss changes meaning at the stage switch, so the "
                               "best weights of stage 1 would undo the prior"}
    lr_flags = {"first_stage": "lr", "prior": "lr"}
    reads_own_rows = True

    def __init__(self) -> None:
        self.switch: int | None = None
        self.standardized = False

    def configure(self, trainer: Any, model: Any) -> dict[str, torch.optim.Optimizer]:
        cfg = trainer.config
        return {"first_stage": make_optimizer(model.first_stage, cfg), "prior": make_optimizer(model.prior.net, cfg)}

    def on_fit_start(self, trainer: Any) -> None:
        total, s1 = trainer.total_steps, trainer.model.config.stage1_steps
        if self.switch is None:  # a fresh fit (a resume restored the recorded switch)
            self.switch = s1 if s1 >= 0 else total // 2
        if self.switch >= total:  # a run may stop at the switch and be resumed later: not an error
            warnings.warn(f"stage1_steps={self.switch} leaves none of this run's {total} steps to the "
                          "diffusion prior, which stays untrained: train longer (--epochs / max_steps, or "
                          "resume the run with more) or lower stage1_steps", UserWarning, stacklevel=2)

    def run(self, trainer: Any, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        if trainer.world > 1:
            batch = trainer.shard(batch)
        model = trainer.model
        if trainer.step < self.switch:
            out = model.first_stage_loss(batch)
            trainer.check(out["loss"], "first-stage loss")
            trainer.update("first_stage", out["loss"], what="first-stage")
            return {**scalar_logs(out), "stage": 1.0}
        if not self.standardized:
            model.standardize_latents(trainer.train_data)
            self.standardized = True
        out = model.prior_loss(batch)
        trainer.check(out["loss"], "prior loss")
        trainer.update("prior", out["loss"], what="prior")
        return {"loss": float(out["loss"].detach()), "prior_mse": float(out["mse"]), "stage": 2.0}

    def on_step_end(self, trainer: Any, logs: dict[str, float]) -> None:
        prior = trainer.model.prior
        if trainer.step > self.switch and prior.net_ema is not None:  # the warm-up counts from the switch
            ema_update(prior.net_ema, prior.net, ema_decay_at(trainer.step - self.switch, prior.config.ema_decay))

    def remedies(self, model: Any) -> str:
        return "gradient clipping (--grad_clip=1.0), a smaller batch, or a larger kl_weight"

    def state_dict(self) -> dict[str, Any]:
        return {"switch": self.switch, "standardized": self.standardized}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.switch, self.standardized = state["switch"], bool(state["standardized"])


@MODELS.register("latent-diffusion", aliases=("ldm",))
class LatentDiffusion(TorchGenerativeModel):
    """Latent diffusion: a conv VAE (or autoencoder) between images and a latent grid
    ``(latent_channels, h, w)``, and a diffusion prior (``Diffusion``'s U-Net, schedule and
    samplers; class-conditional with classifier-free guidance when ``num_classes`` is set)
    on the standardised grids.

    The public latents (``encode``, ``sample_latent``, ``decode``) are flat rows
    ``(B, latent_dim)`` in the decoder's own units, as every family's are; ``latent_shape``
    is their grid.

    Example:
        >>> m = LatentDiffusion(num_classes=-1).fit("digits", train={"epochs": 60})
        >>> x = m.sample(16, y=3, guidance=2, generator=torch.Generator().manual_seed(0))
        >>> m.log_prob((x_test > 0.5).float())   # a lower bound, nats per image
    """

    model_type = "latent-diffusion"
    config_class = LatentDiffusionConfig
    log_prob_kind = "lower_bound"
    log_prob_options = ("y", "generator", "timesteps")
    declared_tags = {"modality": "image", "latent": True, "reconstruction": True}

    def __init__(self, config: LatentDiffusionConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        if self.config.first_stage == "autoencoder":  # no density: see log_prob
            self.log_prob_kind = "none"

    def _config_tags(self) -> dict[str, Any]:
        return {**super()._config_tags(), "log_prob_kind": self.log_prob_kind}

    # -- building
    def data_defaults(self, dataset: Dataset) -> dict[str, Any]:
        if len(dataset.shape) != 3:
            raise DataError(f"latent diffusion models images (C, H, W); {dataset.name} has shape "
                            f"{tuple(dataset.shape)}: use diffusion for rows")
        lo, hi = float(dataset.x.min()), float(dataset.x.max())
        if lo < 0 or hi > 1:
            raise DataError(f"latent diffusion expects images in [0, 1]; {dataset.name} spans [{lo:.3g}, {hi:.3g}]")
        return {"encoder_channels": self.config.encoder_channels or auto_encoder_channels(dataset.shape[1:])}

    @property
    def variational(self) -> bool:
        return self.config.first_stage == "vae"

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(latent_channels, h, w)``: the grid the encoder gives and the prior models."""
        c = self.config
        chans = c.encoder_channels or auto_encoder_channels(c.data_shape[1:])
        return (c.latent_channels, *conv_sizes(tuple(c.data_shape[1:]), len(chans))[-1])

    @property
    def latent_dim(self) -> int:
        return math.prod(self.latent_shape)

    def build(self) -> None:
        c = self.config
        shape = tuple(c.data_shape)
        chans = c.encoder_channels or auto_encoder_channels(shape[1:])
        self.first_stage = nn.Module()
        out = 2 * c.latent_channels if self.variational else c.latent_channels
        self.first_stage.encoder = encoder("conv", shape, out, hidden=(), channels=chans, grid=True)
        self.first_stage.decoder = decoder("conv", c.latent_channels, shape, hidden=(), channels=chans, grid=True)
        if self.variational and c.likelihood == "gaussian":
            self.first_stage.log_std = nn.Parameter(torch.zeros(shape))
        self.prior = LatentPrior(c.prior_config(self.latent_shape))
        # z' = (z - latent_shift) * latent_scale: set once at the stage switch
        self.register_buffer("latent_shift", torch.zeros(1))
        self.register_buffer("latent_scale", torch.ones(1))

    def training_step(self) -> LatentDiffusionStep:
        return LatentDiffusionStep()

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Both stages' losses on one batch (what validation and the test metrics report;
        training takes one stage at a time, see ``LatentDiffusionStep``)."""
        first, prior = self.first_stage_loss(batch), self.prior_loss(batch)
        return {**first, "loss": first["loss"] + prior["loss"], "prior_loss": prior["loss"],
                "prior_mse": prior["mse"]}

    # -- the first stage
    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mean, log-variance)`` grids of ``q(z | x)`` (the code and ``None`` for the autoencoder)."""
        h = self.first_stage.encoder(x)
        if not self.variational:
            return h, None
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)

    def _nll(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``-log p(x | z)`` per example from the decoder's output (logits or means);
        the autoencoder's Gaussian option is the plain squared error."""
        if self.config.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        if not self.variational:
            return (out - x).pow(2).flatten(1).sum(1)
        std = self.first_stage.log_std.exp().clamp_min(self.config.min_std)
        return (0.5 * ((x - out) / std).pow(2) + std.log() + 0.5 * LOG_2PI).flatten(1).sum(1)

    def first_stage_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Stage 1's objective: reconstruction NLL (+ ``kl_weight`` KL for the VAE)."""
        x = batch["x"]
        mu, logvar = self._posterior(x)
        z = mu if logvar is None else mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = self._nll(x, self.first_stage.decoder(z))
        out = {"recon": rec.mean()}
        loss = rec
        if logvar is not None:
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1)
            loss = rec + self.config.kl_weight * kl
            out["kl"] = kl.mean()
        return {"loss": loss.mean(), **out}

    def _standardized(self, x: torch.Tensor) -> torch.Tensor:
        """Latent grids ``z' = (z - shift) * scale`` of images, ``z ~ q(z | x)``, for the prior
        (no gradient reaches the encoder)."""
        with torch.no_grad():
            mu, logvar = self._posterior(x)
            z = mu if logvar is None else mu + (0.5 * logvar).exp() * torch.randn_like(mu)
            return (z - self.latent_shift) * self.latent_scale

    def prior_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Stage 2's objective: the prior's denoising loss on the standardised latents."""
        return self.prior({"x": self._standardized(batch["x"]), **({"y": batch["y"]} if "y" in batch else {})})

    @torch.no_grad()
    def standardize_latents(self, data: Dataset, max_rows: int = 2048) -> None:
        """Set ``latent_shift`` / ``latent_scale`` so that the latents of the first
        ``max_rows`` rows of ``data`` have mean 0 and variance 1 (over every cell; for the
        VAE the variance of ``z ~ q(z | x)``: that of the means plus the mean posterior
        variance). Deterministic: no draws, the same rows every time."""
        n = min(len(data), max_rows)
        total = sq = var = 0.0
        count = 0
        for s in range(0, n, 256):
            x = rows_of(data, torch.arange(s, min(s + 256, n)))["x"].to(self.device)
            mu, logvar = self._posterior(x)
            mu = mu.double()
            total, sq, count = total + mu.sum(), sq + mu.pow(2).sum(), count + mu.numel()
            if logvar is not None:
                var = var + logvar.double().exp().sum()
        mean = total / count
        variance = (sq / count - mean ** 2) + var / count
        self.latent_shift.copy_(torch.as_tensor(mean).reshape(1))
        self.latent_scale.copy_(torch.as_tensor(variance).clamp_min(1e-12).rsqrt().reshape(1))

    # -- the maps
    def _grid(self, z: torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        if tuple(z.shape[1:]) not in ((self.latent_dim,), self.latent_shape):
            raise ValueError(f"latents must have shape (B, {self.latent_dim}) or (B, "
                             f"{', '.join(map(str, self.latent_shape))}), got {tuple(z.shape)}")
        return z.reshape(len(z), *self.latent_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, latent_dim)`` of images: the posterior mean (the code for the autoencoder)."""
        self.check_fitted()
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            return torch.cat([self._posterior(x[i:i + 1024])[0].flatten(1) for i in range(0, len(x), 1024)])

    def decode(self, z: torch.Tensor, y: Any = None) -> torch.Tensor:
        """Images in ``[0, 1]`` ``(B, *data_shape)`` of latents (flat or grids); ``y`` is
        accepted and ignored (the first stage is unconditional)."""
        out = self.first_stage.decoder(self._grid(z))
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out.clamp(0, 1)

    def reconstruct(self, x: torch.Tensor, y: Any = None) -> torch.Tensor:
        """``decode(encode(x))`` through the first stage (``y`` ignored)."""
        with torch.no_grad():
            return self.decode(self.encode(x))

    # -- sampling
    def sample_latent(self, n: int, *, generator: torch.Generator | None = None, y: Any = None,
                      sampler: str | None = None, steps: int | None = None,
                      guidance: float | None = None) -> torch.Tensor:
        """``n`` latents ``(n, latent_dim)`` drawn by the prior (options as in ``sample``)."""
        self.check_fitted()
        z = self._on_device(self.prior.sample(n, generator=generator, y=y, sampler=sampler, steps=steps,
                                              guidance=guidance))
        return (z / self.latent_scale + self.latent_shift).flatten(1)

    def sample(self, n: int, *, generator: torch.Generator | None = None, y: Any = None,
               sampler: str | None = None, steps: int | None = None,
               guidance: float | None = None) -> torch.Tensor:
        """``n`` images: latents drawn by the prior's sampler, decoded (the decoder's mean).

        Args:
            n: number of samples.
            generator: seeded generator (the prior's starting noise and sampler noise).
            y: class label(s) for a conditional prior: an int or ``n`` labels (default
                cycles through the classes).
            sampler: ``ddpm``, ``ddim``, ``dpm++``, ``euler`` or ``heun`` (default
                ``config.sampler``).
            steps: sampler steps (default ``config.sample_steps``, else the sampler's own).
            guidance: classifier-free guidance ``w`` (``out_u + w (out_c - out_u)``; default
                ``config.guidance``), for a conditional prior trained with ``cond_drop``.
        Returns:
            ``(n, *data_shape)`` in ``[0, 1]``.
        """
        z = self.sample_latent(n, generator=generator, y=y, sampler=sampler, steps=steps, guidance=guidance)
        with torch.no_grad():
            return self.decode(z)

    # -- likelihood
    def log_prob(self, x: Any, *, y: Any = None, generator: torch.Generator | None = None,
                 timesteps: int | None = None) -> torch.Tensor:
        """A lower bound on ``log p(x)`` per example, in nats (VAE first stage only).

        The model is ``p(x) = ∫ p(x | z) p(z) dz`` with the decoder ``p(x | z)`` and the
        diffusion prior ``p(z)``; for any posterior ``q(z | x)`` (Jensen)

            ``log p(x) >= E_q[log p(x | z) + log p(z)] + H[q(z | x)]``.

        The prior models ``z' = s (z - m)`` (the standardisation), so
        ``log p(z) = log p'(z') + D log s`` over the ``D`` latent cells, and
        ``log p'(z') >= L(z')``, the diffusion variational bound (Ho et al. 2020, Eq. 5,
        the prior's ``log_prob``, with its Gaussian decoder density on continuous
        latents). Together

            ``log p(x) >= E_q[log p(x | z) + L(s (z - m)) + D log s] + H[q]``,

        with ``H[q] = sum 1/2 (1 + log 2 pi + log sigma^2)`` in closed form. The
        expectation is estimated with one draw ``z ~ q`` per example and ``L`` with the
        prior's stratified estimate, so the value is an unbiased estimate of a lower
        bound (it holds for any encoder, decoder and ``kl_weight``). It is a probability
        of binary images under the Bernoulli decoder (other images are refused, as by
        the VAE) and a density on ``[0, 1]^D`` under the Gaussian one.

        With ``first_stage="autoencoder"`` there is no bound (``log_prob_kind`` is
        ``none``): its codes are a deterministic function of ``x``, so no ``q(z | x)``
        has a density (its entropy is ``-inf``), and its decoder was trained as a
        squared error or cross-entropy without a noise model; any number would hang on
        a posterior width chosen after the fact.

        Args:
            x: ``(B, *data_shape)`` images in ``[0, 1]``.
            y: labels for a conditional prior; ``None`` scores under its unconditional
                part (trained through ``cond_drop``).
            generator: seeded generator for the posterior draws and the prior's bound.
            timesteps: KL terms of the prior's bound to evaluate (default
                ``config.nll_timesteps``; 0 = all).
        Returns:
            ``(B,)`` float64.
        """
        self.check_fitted()
        if not self.variational:
            raise LogProbUnavailableError(
                "LatentDiffusion with first_stage='autoencoder' defines no likelihood: its codes are "
                "deterministic (no posterior density to bound log p(x) with); use first_stage='vae'")
        c = self.config
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if tuple(x.shape[1:]) != tuple(c.data_shape):
            raise ValueError(f"x must have shape (B, {', '.join(map(str, c.data_shape))}), got {tuple(x.shape)}")
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise ValueError("x must hold images in [0, 1]")
        if c.likelihood == "bernoulli" and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("a Bernoulli decoder assigns probabilities to binary images only: binarise x "
                             "(Dataset.binarize()) or train with likelihood='gaussian'")
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                zs, rest = [], []
                for s in range(0, len(x), 256):
                    xb = x[s:s + 256]
                    mu, logvar = self._posterior(xb)
                    z = mu + (0.5 * logvar).exp() * self._noise(*mu.shape, generator=generator)
                    entropy = (0.5 * (1 + LOG_2PI + logvar.double())).flatten(1).sum(1)
                    rest.append(entropy - self._nll(xb, self.first_stage.decoder(z)).double())
                    zs.append((z - self.latent_shift) * self.latent_scale)
                prior = self._on_device(self.prior.log_prob(torch.cat(zs), y=y, generator=generator,
                                                            timesteps=timesteps))
                jacobian = self.latent_dim * self.latent_scale.double().log()
                return torch.cat(rest) + prior.double() + jacobian
        finally:
            self.train(was)
