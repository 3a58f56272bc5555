"""Denoising diffusion under the one contract: ``fit`` trains the denoiser on the one
trainer, ``sample`` runs any of the samplers (with classifier-free guidance), ``log_prob``
is the variational bound (Ho et al. 2020, Eq. 5) with the discretised decoder for 8-bit
images."""
from __future__ import annotations

import copy
import math
import numbers
from typing import Any

import torch
from torch import nn

from ..torch_model import TorchGenerativeModel
from ...data.dataset import Dataset
from ...errors import DataError
from ...nn import ema_decay_at, ema_update
from ...progress import tick
from ...registry import MODELS
from ...train.steps import GradientStep
from .config import DiffusionConfig
from .samplers import ALIASES, DEFAULT_STEPS, SAMPLERS, guided
from .schedule import NoiseSchedule, to_x0_eps
from .unet import MLPDenoiser, UNet

MINILM_DIM = 384  # all-MiniLM-L6-v2's hidden size

LOG_2PI = math.log(2 * math.pi)


def detect_levels(x: torch.Tensor) -> int:
    """The pixel levels of data in [0, 1]: ``L`` when every value is a multiple of
    ``1/(L-1)`` (256 for 8-bit images, 17 for the 0..16 digits), else 0 (continuous)."""
    sample = x.reshape(-1)[:200_000].double()
    if len(sample) == 0 or sample.min() < 0 or sample.max() > 1:
        return 0
    for levels in (256, *range(2, 256)):
        k = sample * (levels - 1)
        if (k - k.round()).abs().max() < 1e-4:
            return 256 if levels > 1 and 255 % (levels - 1) == 0 else levels
    return 0


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def discretized_log_likelihood(x: torch.Tensor, mean: torch.Tensor, std: float, levels: int) -> torch.Tensor:
    """``log p(x)`` per example of data on ``levels`` evenly spaced values in ``[-1, 1]``
    under ``N(mean, std^2)`` integrated over each value's bin, the end bins open (Ho et al.
    2020, Eq. 13). ``(B, ...)`` -> ``(B,)`` float64."""
    x, mean = x.double(), mean.double()
    half = 1.0 / (levels - 1)
    upper = torch.where(x > 1 - 1e-6, torch.ones_like(x), _normal_cdf((x + half - mean) / std))
    lower = torch.where(x < -1 + 1e-6, torch.zeros_like(x), _normal_cdf((x - half - mean) / std))
    # a far-off mean leaves (upper - lower) at 0 in double precision: use the log density there
    mass = (upper - lower).clamp_min(0)
    log_density = -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * LOG_2PI + math.log(2 * half)
    lp = torch.where(mass > 1e-12, mass.clamp_min(1e-300).log(), log_density)
    return lp.flatten(1).sum(1)


def bound_strata(T: int, k: int) -> list[int]:
    """``k + 1`` edges splitting the KL terms ``t = 1 .. T-1`` of the bound into ``k``
    strata, geometrically: the first terms, which are the largest and vary most (the KL at
    small ``t`` divides by a tiny posterior variance), get strata of their own, the late
    ones share wide strata. One term drawn per stratum, weighted by its size, is an
    unbiased estimate of the sum with far less variance than even strata (on digits, 20
    even strata averaged -94 nats against the full bound's -216)."""
    if k >= T - 1:
        return list(range(1, T + 1))
    geo = torch.logspace(0, math.log10(T), k + 1, dtype=torch.float64).round().long().tolist()
    edges = [1]
    for i in range(1, k + 1):
        edges.append(min(max(geo[i], edges[-1] + 1), T - (k - i)))
    edges[-1] = T
    return edges


class DiffusionStep(GradientStep):
    """The gradient step, then the EMA of the weights (warmed up as the GAN's)."""

    def on_step_end(self, trainer: Any, logs: dict[str, float]) -> None:
        model = trainer.model
        if model.net_ema is not None:
            ema_update(model.net_ema, model.net, ema_decay_at(trainer.step, model.config.ema_decay))


@MODELS.register("diffusion", aliases=("ddpm",))
class Diffusion(TorchGenerativeModel):
    """A denoising diffusion model: the forward process ``q(x_t | x_0)`` of
    ``config.schedule`` and a network (U-Net for images, MLP for rows) trained to predict
    ``config.prediction`` from ``x_t``; class-conditional with classifier-free guidance
    when ``num_classes`` is set.

    Images in ``[0, 1]`` are modelled as ``2x - 1`` in ``[-1, 1]`` and samples come back
    in ``[0, 1]``; table rows (standardised) as they are.

    Example:
        >>> m = Diffusion(num_classes=-1).fit("digits", train={"epochs": 30})
        >>> x = m.sample(16, y=3, sampler="dpm++", steps=20, guidance=3,
        ...              generator=torch.Generator().manual_seed(0))      # (16, 1, 8, 8)
        >>> m.log_prob(x_test)       # variational bound, nats per example
    """

    model_type = "diffusion"
    config_class = DiffusionConfig
    log_prob_kind = "lower_bound"
    log_prob_options = ("y", "generator", "timesteps", "prompt")

    # -- building
    def data_defaults(self, dataset: Dataset) -> dict[str, Any]:
        out: dict[str, Any] = {}
        image = len(dataset.shape) == 3
        if self.config.arch == "auto":
            out["arch"] = "unet" if image else "mlp"
        elif self.config.arch == "unet" and not image:
            raise DataError(f"arch='unet' needs images (C, H, W); {dataset.name} has rows of shape "
                            f"{tuple(dataset.shape)}: use arch='mlp'")
        if len(dataset.shape) not in (1, 3):
            raise DataError(f"diffusion models images (C, H, W) or flat rows; {dataset.name} has "
                            f"shape {tuple(dataset.shape)}")
        if image and (float(dataset.x.min()) < 0 or float(dataset.x.max()) > 1):
            raise DataError(f"diffusion expects images in [0, 1]; {dataset.name} spans "
                            f"[{float(dataset.x.min()):.3g}, {float(dataset.x.max()):.3g}]")
        if self.config.levels == -1:
            out["levels"] = detect_levels(torch.as_tensor(dataset.x[:4096])) if image else 0
        out.update(self._text_defaults(dataset, image))
        return out

    def _text_defaults(self, dataset: Dataset, image: bool) -> dict[str, Any]:
        """The text encoder (``auto``), tokenizer and caption length from captioned data."""
        c = self.config
        enc = c.text_encoder
        if enc == "auto":
            enc = "transformer" if (dataset.text is not None and c.num_classes == 0) else "none"
        out: dict[str, Any] = {"text_encoder": enc}
        if enc == "none":
            return out
        if dataset.text is None or "tokenizer" not in dataset.meta:
            raise DataError(f"text_encoder={enc!r} needs captioned data (a Dataset with text and its "
                            f"tokenizer, e.g. captioned-shapes); {dataset.name} has no captions")
        if not image or c.arch == "mlp":
            raise DataError("text conditioning needs images and the U-Net (arch='unet')")
        tok = dataset.meta["tokenizer"]
        out["text_tokenizer"] = str(tok["tokenizer"])
        out["text_vocab"] = tuple(tok["vocab"])
        if c.text_len == 0:
            out["text_len"] = int(dataset.text.shape[1])
        return out

    def build(self) -> None:
        c = self.config
        self.n_cond = max(c.num_classes, 0)
        shape = tuple(c.data_shape)
        if c.arch == "mlp" or (c.arch == "auto" and len(shape) == 1):
            self.net = MLPDenoiser(math.prod(shape), hidden=c.hidden, depth=c.depth, dropout=c.dropout,
                                   num_classes=self.n_cond)
        else:
            if len(shape) != 3:
                raise ValueError(f"arch='unet' needs images (C, H, W), got data_shape {shape}")
            text: dict[str, Any] = {}
            if c.has_text:
                if not c.text_vocab or not c.text_len:
                    raise ValueError(f"text_encoder={c.text_encoder!r} needs text_vocab and text_len "
                                     "(taken from captioned data at fit)")
                text = {"text_conditioning": c.text_conditioning}
                if c.text_encoder == "transformer":
                    text.update(text_vocab=len(c.text_vocab), text_dim=c.text_dim, text_layers=c.text_layers,
                                text_len=c.text_len)
                else:
                    text["context_dim"] = MINILM_DIM
            self.net = UNet(shape, channels=c.channels, mult=c.channel_mult, blocks=c.blocks,
                            attention_res=c.attention_res, heads=c.heads, dropout=c.dropout,
                            num_classes=self.n_cond, **text)
        self.net_ema = None
        if c.ema_decay > 0:
            self.net_ema = copy.deepcopy(self.net)
            self.net_ema.requires_grad_(False)
        self.schedule = NoiseSchedule(c.noise_schedule, c.timesteps, beta_start=c.beta_start, beta_end=c.beta_end)

    def _config_tags(self) -> dict[str, Any]:
        out = super()._config_tags()
        if self.config.has_text:
            out["conditions"] = ("prompt",)
        return out

    @property
    def has_text(self) -> bool:
        return self.config.has_text

    @property
    def _has_condition(self) -> bool:
        """Whether the model takes a condition: class labels or captions."""
        return bool(self.n_cond or self.has_text)

    # -- text
    def tokenizer(self) -> Any:
        """The captions' tokenizer (from ``text_tokenizer`` / ``text_vocab``)."""
        tok = self.__dict__.get("_tokenizer")
        if tok is None:
            from ...data.tokenizers import from_config

            tok = from_config(self.config.text_tokenizer, self.config.text_vocab)
            self.__dict__["_tokenizer"] = tok
        return tok

    def _prompt_ids(self, prompt: Any, n: int) -> torch.Tensor:
        """Caption token ids ``(n, text_len)`` of ``prompt``: a string (for every row), ``n``
        strings, or ids ``(n, L)`` already (padding 0)."""
        c = self.config
        if isinstance(prompt, str):
            prompt = [prompt] * n
        if isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt):
            if len(prompt) != n:
                raise ValueError(f"prompt must be one string or {n} strings, got {len(prompt)}")
            tok = self.tokenizer()
            ids = torch.zeros(n, c.text_len, dtype=torch.long)
            for i, p in enumerate(prompt):
                row = tok.encode(p)[:c.text_len]
                ids[i, :len(row)] = torch.as_tensor(row, dtype=torch.long)
            return ids
        ids = torch.as_tensor(prompt)
        if ids.is_floating_point() or ids.dim() != 2 or len(ids) != n:
            raise ValueError(f"prompt must be a string, {n} strings or token ids (n, L); got "
                             f"{type(prompt).__name__} {tuple(ids.shape) if ids.dim() else ''}")
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= len(c.text_vocab)):
            raise ValueError(f"prompt token ids must be in 0..{len(c.text_vocab) - 1}")
        return ids.long()

    def _frozen_encoder(self) -> Any:
        """The frozen MiniLM (kept out of the module tree: not saved, not moved, not EMA'd)."""
        enc = self.__dict__.get("_minilm")
        if enc is None:
            from ..text_encoders import text_encoder

            enc = text_encoder("minilm")
            self.__dict__["_minilm"] = enc
        return enc

    def text_features(self, prompt: Any, n: int, *, ema: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ctx, ctx_mask, pooled)`` of ``n`` captions (see ``_prompt_ids``) by the
        model's text encoder: the joint Transformer of the (EMA, if ``ema``) network, or
        the frozen MiniLM (given strings, it reads them as typed; given ids, their
        decoded words)."""
        if not self.has_text:
            raise ValueError("this diffusion model is not conditioned on text")
        if self.config.text_encoder == "minilm":
            if isinstance(prompt, str):
                strings = [prompt] * n
            elif isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt):
                strings = list(prompt)
                if len(strings) != n:
                    raise ValueError(f"prompt must be one string or {n} strings, got {len(strings)}")
            else:
                tok = self.tokenizer()
                strings = [tok.decode([int(i) for i in row if int(i) != 0]) for row in self._prompt_ids(prompt, n)]
            tokens, mask, pooled = self._frozen_encoder().encode(strings)
            dev = self.device
            return tokens.to(dev), mask.to(dev), pooled.to(dev)
        net = self.net_ema if (ema and self.net_ema is not None) else self.net
        return net.encode_text(self._prompt_ids(prompt, n).to(self.device))

    def training_step(self) -> DiffusionStep:
        return DiffusionStep()

    @property
    def is_image(self) -> bool:
        return len(self.config.data_shape) == 3


    def _net_fn(self, net: nn.Module) -> Any:
        """The network as a sampler's ``fn(x_t, t, **cond)`` on rows of the data shape."""
        if not isinstance(net, MLPDenoiser):
            return net
        return lambda x, t, **cond: net(x.reshape(len(x), -1), t, **cond).reshape(x.shape)

    def denoiser(self, ema: bool = True) -> Any:
        """The network sampling uses, as ``fn(x_t, t, y=None) -> prediction`` (the EMA
        weights unless ``ema=False`` or the model keeps none): what any sampler in
        ``genlab.models.diffusion.samplers`` (or a diffusers scheduler loop) calls."""
        net = self.net_ema if (ema and self.net_ema is not None) else self.net
        return self._net_fn(net)

    # -- training
    def _loss_weight(self, t: torch.Tensor) -> torch.Tensor | None:
        c = self.config
        if c.loss_weighting == "plain":
            return None
        a = self.schedule.abar_on(t)
        snr = a / (1 - a)
        w = snr.clamp(max=c.snr_gamma)  # min-SNR-gamma in terms of the x0 error ...
        if c.prediction == "epsilon":  # ... expressed for the quantity the network predicts
            w = w / snr
        elif c.prediction == "v":
            w = w / (snr + 1)
        return w

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x0 = self.to_model_space(batch["x"])
        b = len(x0)
        t = torch.randint(0, self.config.timesteps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.add_noise(x0, noise, t)
        cond: dict[str, Any] = {}
        drop = None
        if self.training and self.config.cond_drop > 0 and self._has_condition:
            drop = torch.rand(b, device=x0.device) < self.config.cond_drop
        if self.n_cond:
            y = batch["y"].long()
            if drop is not None:
                y = torch.where(drop, torch.full_like(y, self.n_cond), y)
            cond["y"] = y
        if self.has_text:
            if "text" not in batch:
                raise DataError("this model is conditioned on text: the data must have captions")
            ids = batch["text"]
            # the data's ids were checked by its Dataset; the joint encoder reads them where they are
            ctx, mask, pooled = (self.net.encode_text(ids.long()) if self.config.text_encoder == "transformer"
                                 else self.text_features(ids, b))
            if drop is not None:  # the dropped captions: the unconditional model
                mask = mask & ~drop[:, None]
            cond.update(ctx=ctx, ctx_mask=mask, pooled=pooled)
        out = self._net_fn(self.net)(x_t, t.float(), **cond)
        err = (out.float() - self.schedule.target(x0, noise, t, self.config.prediction)).pow(2).flatten(1).mean(1)
        w = self._loss_weight(t)
        loss = (err if w is None else err * w).mean()
        return {"loss": loss, "mse": err.mean().detach()}

    # -- sampling
    def _labels(self, y: Any, n: int) -> torch.Tensor | None:
        if not self.n_cond:
            if y is not None:
                if self.has_text:
                    raise ValueError("this diffusion model is conditioned on text: pass prompt=..., not y")
                raise ValueError("this diffusion model is unconditional: it takes no y "
                                 "(train with num_classes=-1 for a class-conditional one)")
            return None
        if y is None:
            return torch.arange(n, device=self.device) % self.n_cond
        y = torch.as_tensor(y, dtype=torch.long).reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        if len(y) != n or int(y.min()) < 0 or int(y.max()) >= self.n_cond:
            raise ValueError(f"y must hold {n} labels in 0..{self.n_cond - 1}, got {y.tolist()[:8]}")
        return y.to(self.device)

    def _sampler_args(self, sampler: str | None, steps: int | None, guidance: float | None,
                      spacing: str | None, eta: float) -> tuple[str, dict[str, Any], float]:
        c = self.config
        sampler = sampler or c.sampler
        sampler = ALIASES.get(str(sampler).lower(), sampler)
        if sampler not in SAMPLERS:
            import difflib

            close = difflib.get_close_matches(str(sampler), list(SAMPLERS), n=1)
            raise ValueError(f"unknown sampler {sampler!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                             + f" (samplers: {', '.join(SAMPLERS)})")
        if steps is None:  # a default never asks for more steps than the model has
            steps = c.sample_steps or DEFAULT_STEPS[sampler]
            steps = None if steps is None else min(steps, c.timesteps)
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, numbers.Integral)
                                  or not 1 <= steps <= c.timesteps):
            raise ValueError(f"steps must be an integer in 1..{c.timesteps}, got {steps!r}")
        w = c.guidance if guidance is None else guidance
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ValueError(f"guidance must be a finite number >= 0, got {w!r}")
        guidable = self._has_condition and c.cond_drop > 0
        if float(w) != 1.0 and guidance is not None and not guidable:
            raise ValueError("guidance needs a class- or text-conditional model trained with cond_drop > 0 "
                             "(num_classes=-1, or captioned data); this one has no unconditional part")
        if not guidable:
            w = 1.0
        kw: dict[str, Any] = {"prediction": c.prediction, "clip": 1.0 if (c.clip and self.is_image) else None}
        if steps is not None:
            kw["steps"] = int(steps)
        spacing = spacing or c.spacing
        if spacing:
            if sampler in ("euler", "heun"):
                raise ValueError(f"{sampler} walks Karras et al.'s noise levels: it takes no spacing")
            kw["spacing"] = spacing
        if eta:
            if sampler != "ddim":
                raise ValueError(f"eta is DDIM's option; {sampler} takes none")
            kw["eta"] = float(eta)
        return sampler, kw, float(w)

    def _run_sampler(self, n: int, *, generator: torch.Generator | None, y: Any, sampler: str | None,
                     steps: int | None, guidance: float | None, spacing: str | None, eta: float,
                     ema: bool, callback: Any = None, x_T: torch.Tensor | None = None,
                     prompt: Any = None) -> torch.Tensor:
        self.check_fitted()
        if isinstance(n, bool) or int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        n = int(n)
        name, kw, w = self._sampler_args(sampler, steps, guidance, spacing, eta)
        was = self.training
        self.eval()
        try:
            model_fn = self._guided_fn(n, y, w, ema, prompt)
            x = self._noise(n, *self.config.data_shape, generator=generator) if x_T is None else x_T
            with torch.no_grad():
                out = SAMPLERS[name](model_fn, self.schedule, x, generator=generator, callback=callback, **kw)
        finally:
            self.train(was)
        return self.to_data_space(out)

    def _guided_fn(self, n: int, y: Any, w: float, ema: bool, prompt: Any = None) -> Any:
        """``fn(x_t, t)`` for ``n`` rows: the denoiser with labels ``y`` or captions
        ``prompt`` (encoded once here, not at every step) and guidance ``w``."""
        fn = self.denoiser(ema)
        labels = self._labels(y, n)
        if prompt is not None and not self.has_text:
            raise ValueError("this diffusion model is not conditioned on text: it takes no prompt")
        if self.has_text:
            if prompt is None:
                if self.config.cond_drop == 0:
                    raise ValueError("this model was trained with cond_drop=0: it has no unconditional "
                                     "part; pass prompt=...")
                return fn  # no caption: the unconditional model
            ctx, mask, pooled = self.text_features(prompt, n, ema=ema)
            cond = {"ctx": ctx, "ctx_mask": mask, "pooled": pooled}
            return guided(fn, w, cond, {"ctx": ctx, "ctx_mask": torch.zeros_like(mask), "pooled": pooled})
        if labels is None:
            return fn
        return guided(fn, w, {"y": labels}, {"y": torch.full_like(labels, self.n_cond)})

    def sampling_setup(self, n: int, *, y: Any = None, sampler: str | None = None, steps: int | None = None,
                       guidance: float | None = None, spacing: str | None = None, eta: float = 0.0,
                       ema: bool = True, prompt: Any = None) -> tuple[str, Any, dict[str, Any]]:
        """What ``sample`` would run, for pipelines that drive a sampler themselves
        (image-to-image, inpainting): ``(sampler name, fn(x_t, t), sampler keywords)``,
        the options checked as ``sample`` checks them. Call under ``model.eval()``."""
        self.check_fitted()
        name, kw, w = self._sampler_args(sampler, steps, guidance, spacing, eta)
        return name, self._guided_fn(int(n), y, w, ema, prompt), kw

    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Data as the model sees it: images ``2x - 1`` in ``[-1, 1]``, rows unchanged."""
        return x * 2 - 1 if self.is_image else x

    def to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of ``to_model_space`` (images clipped to ``[0, 1]``)."""
        return ((x + 1) / 2).clamp(0, 1) if self.is_image else x

    def sample(self, n: int, *, generator: torch.Generator | None = None, y: Any = None,
               sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
               spacing: str | None = None, eta: float = 0.0, ema: bool = True,
               prompt: Any = None) -> torch.Tensor:
        """``n`` samples from noise by ``sampler``.

        Args:
            n: number of samples.
            generator: seeded generator: the starting noise and the samplers' noise
                (the same draws on every device).
            y: class label(s) for a conditional model: an int or ``n`` labels (default
                cycles through the classes).
            sampler: ``ddpm``, ``ddim``, ``dpm++``, ``euler`` or ``heun`` (default
                ``config.sampler``).
            steps: sampler steps (default ``config.sample_steps``, else the sampler's own:
                DDPM every training step, DDIM 50, DPM-Solver++ 20, Euler 30, Heun 18).
            guidance: classifier-free guidance ``w`` (``out_u + w (out_c - out_u)``: 0 is
                unconditional, 1 plain conditional, > 1 stronger; default
                ``config.guidance``).
            spacing: ``leading``, ``trailing`` or ``linspace`` (DDPM/DDIM/DPM-Solver++).
            eta: DDIM's noise (0 deterministic, 1 DDPM-like).
            ema: use the EMA weights (when kept).
            prompt: for a text-conditional model, the caption(s): one string for every
                sample, ``n`` strings, or caption token ids ``(n, L)``; ``None`` samples the
                unconditional model (trained through ``cond_drop``). Guidance reads
                ``out_u + w (out_c - out_u)`` with ``out_u`` the empty caption's.
        Returns:
            ``(n, *data_shape)``: images in ``[0, 1]``, or rows.
        """
        return self._run_sampler(n, generator=generator, y=y, sampler=sampler, steps=steps,
                                 guidance=guidance, spacing=spacing, eta=eta, ema=ema, prompt=prompt)

    def sample_trajectory(self, n: int, *, frames: int = 16, generator: torch.Generator | None = None,
                          y: Any = None, sampler: str | None = None, steps: int | None = None,
                          guidance: float | None = None, spacing: str | None = None, eta: float = 0.0,
                          ema: bool = True, prompt: Any = None) -> torch.Tensor:
        """The denoising trajectory of ``n`` samples: ``(frames, n, *data_shape)``, the state
        ``x_t`` at ``frames`` evenly spaced sampler steps (the first is the starting noise,
        the last the sample; fewer frames when the sampler takes fewer steps), in data space (images clipped to ``[0, 1]``). The same
        options and samples as ``sample``."""
        if int(frames) < 2:
            raise ValueError(f"frames must be >= 2, got {frames!r}")
        states: list[torch.Tensor] = []

        def keep(i: int, t: float, x_t: torch.Tensor, x0: torch.Tensor) -> None:
            states.append(x_t.detach().cpu())

        g = generator
        x_T = self._noise(int(n), *self.config.data_shape, generator=g)
        self._run_sampler(n, generator=g, y=y, sampler=sampler, steps=steps, guidance=guidance,
                          spacing=spacing, eta=eta, ema=ema, callback=keep, x_T=x_T, prompt=prompt)
        allx = [x_T.cpu()] + states
        idx = torch.linspace(0, len(allx) - 1, min(int(frames), len(allx))).round().long().tolist()
        return torch.stack([self.to_data_space(allx[i]) for i in idx])

    # -- likelihood
    def log_prob(self, x: Any, *, y: Any = None, generator: torch.Generator | None = None,
                 timesteps: int | None = None, prompt: Any = None) -> torch.Tensor:
        """The variational bound on ``log p(x)`` per example, in nats (Ho et al. Eq. 5):
        ``-KL(q(x_T|x_0) || N(0, I)) - sum_t KL(q(x_{t-1}|x_t, x_0) || p(x_{t-1}|x_t))
        + log p(x_0|x_1)``, the model's reverse variance being the posterior's
        ``beta~_t`` and the decoder ``p(x_0|x_1)`` discretised to ``config.levels`` pixel
        values (a probability of the 8-bit image itself; for continuous data a density,
        in the data's own units). Each KL term uses one draw of ``x_t``.

        Args:
            x: ``(B, *data_shape)`` (images in ``[0, 1]``).
            y: labels for a conditional model; ``None`` scores under the unconditional
                model (trained through ``cond_drop``).
            generator: seeded generator for the draws of ``x_t`` and of the steps.
            timesteps: how many of the ``T - 1`` KL terms to evaluate (default
                ``config.nll_timesteps``; 0 = all): fewer gives an unbiased stratified
                estimate of the same bound (one step drawn per stratum of
                ``bound_strata``: single early steps, wide late strata).
            prompt: captions of ``x`` for a text-conditional model (as in ``sample``);
                ``None`` scores under the unconditional model.
        Returns:
            ``(B,)`` float64.
        """
        self.check_fitted()
        c = self.config
        x = torch.as_tensor(x, dtype=torch.float32).to(self.device)
        if tuple(x.shape[1:]) != tuple(c.data_shape):
            raise ValueError(f"x must have shape (B, {', '.join(map(str, c.data_shape))}), got {tuple(x.shape)}")
        if self.is_image and (float(x.min()) < 0 or float(x.max()) > 1):
            raise ValueError("x must hold images in [0, 1]")
        if self._has_condition and y is None and prompt is None and c.cond_drop == 0:
            raise ValueError("this model was trained with cond_drop=0: it has no unconditional "
                             "density; pass " + ("its captions as prompt" if self.has_text else "labels y"))
        if prompt is not None and not self.has_text:
            raise ValueError("this diffusion model is not conditioned on text: it takes no prompt")
        k = min(c.nll_timesteps, c.timesteps - 1) if timesteps is None else timesteps
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= c.timesteps - 1:
            raise ValueError(f"timesteps must be in 0..{c.timesteps - 1} (0 = all), got {timesteps!r}")
        T = c.timesteps
        k = k or (T - 1)
        labels = None if y is None else self._labels(y, len(x))
        text = None if prompt is None else self.text_features(prompt, len(x), ema=True)
        fn = self.denoiser(True)
        was = self.training
        self.eval()
        sched = self.schedule
        ac = sched.alphas_cumprod
        betas = sched.betas
        edges = bound_strata(T, k)
        out = []
        chunk = 256
        try:
            with torch.no_grad():
                for s in range(0, len(x), chunk):
                    x0 = self.to_model_space(x[s:s + chunk])
                    b = len(x0)
                    cond: dict[str, Any] = {} if labels is None else {"y": labels[s:s + chunk]}
                    if text is not None:
                        cond.update(zip(("ctx", "ctx_mask", "pooled"), (v[s:s + chunk] for v in text)))
                    dims = x0[0].numel()
                    a_T = float(ac[-1])
                    prior_kl = 0.5 * (a_T * x0.double().pow(2) + (1 - a_T) - 1 - math.log(1 - a_T)).flatten(1).sum(1)
                    total = -prior_kl
                    for j in range(k):
                        lo, hi = edges[j], edges[j + 1]
                        if hi <= lo:
                            continue
                        t = lo + int(torch.randint(hi - lo, (1,), generator=generator))
                        nz = self._noise(*x0.shape, generator=generator)
                        a_t, a_prev = float(ac[t]), float(ac[t - 1])
                        x_t = a_t ** 0.5 * x0 + (1 - a_t) ** 0.5 * nz
                        pred = fn(x_t, torch.full((b,), float(t), device=x0.device), **cond)
                        x0_hat, _ = to_x0_eps(pred.float(), x_t, a_t, c.prediction)
                        beta = float(betas[t])
                        coef = a_prev ** 0.5 * beta / (1 - a_t)  # the posterior mean's weight on x0
                        var = (1 - a_prev) / (1 - a_t) * beta
                        kl = (coef ** 2 / (2 * var)) * (x0.double() - x0_hat.double()).pow(2).flatten(1).sum(1)
                        total = total - (hi - lo) * kl
                    # the decoder p(x_0 | x_1): x_1 at step 0, variance beta_1
                    nz = self._noise(*x0.shape, generator=generator)
                    a0 = float(ac[0])
                    x_1 = a0 ** 0.5 * x0 + (1 - a0) ** 0.5 * nz
                    pred = fn(x_1, torch.zeros(b, device=x0.device), **cond)
                    mean, _ = to_x0_eps(pred.float(), x_1, a0, c.prediction)
                    std = float(betas[0]) ** 0.5
                    if self.is_image and c.levels >= 2:
                        dec = discretized_log_likelihood(x0, mean, std, c.levels)
                    else:
                        dec = (-0.5 * ((x0.double() - mean.double()) / std) ** 2 - math.log(std)
                               - 0.5 * LOG_2PI).flatten(1).sum(1)
                        if self.is_image:  # the density of x in [0, 1], not of 2x - 1
                            dec = dec + dims * math.log(2)
                    out.append((total + dec).cpu())
                    tick(b)
        finally:
            self.train(was)
        return torch.cat(out)
