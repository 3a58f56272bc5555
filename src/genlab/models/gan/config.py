"""Configs of the GAN family: ``GANConfig`` (unconditional / conditional GANs) and
``SRGANConfig`` (super-resolution). Training settings shared with every model (epochs,
max_steps, batch size, seed, checkpoints, lr schedule) stay in ``TrainConfig``; what only
an adversarial game needs (loss, n_critic, two learning rates, EMA, ...) lives here, so
``genlab train gan --loss=hinge --spectral_norm=true`` works like any override."""
from __future__ import annotations

import dataclasses

from ...base import Config

LOSSES = ("minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp")
ARCHS = ("auto", "mlp", "conv")
OUTPUTS = ("auto", "sigmoid", "linear")
G_CONDS = ("auto", "cbn", "concat")


def _need(name: str, cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name}: {msg}")


def _check_adversarial(cfg, name: str) -> None:
    """Checks shared by both configs (the fields of the adversarial game)."""
    _need(name, cfg.loss in LOSSES, f"loss must be one of {LOSSES}, got {cfg.loss!r}")
    _need(name, isinstance(cfg.n_critic, int) and cfg.n_critic >= 1, f"n_critic must be >= 1, got {cfg.n_critic!r}")
    for f in ("lr_g", "lr_d"):
        v = getattr(cfg, f)
        _need(name, v is None or v > 0, f"{f} must be > 0 (or None = TrainConfig.lr), got {v!r}")
    _need(name, cfg.betas is None or (len(cfg.betas) == 2 and all(0 <= b < 1 for b in cfg.betas)),
          f"betas must be two numbers in [0, 1) or None (= TrainConfig.betas), got {cfg.betas!r}")
    _need(name, cfg.gp_weight >= 0, f"gp_weight must be >= 0, got {cfg.gp_weight!r}")
    _need(name, 0 <= cfg.ema_decay < 1, f"ema_decay must be in [0, 1) (0 = off), got {cfg.ema_decay!r}")
    _need(name, cfg.sample_every >= 0, f"sample_every must be >= 0 (0 = off), got {cfg.sample_every!r}")
    _need(name, cfg.val_every >= 0, f"val_every must be >= 0 (0 = off), got {cfg.val_every!r}")
    _need(name, len(cfg.d_channels) >= 1 and all(c >= 1 for c in cfg.d_channels),
          f"d_channels must be positive integers, got {cfg.d_channels!r}")


@dataclasses.dataclass(frozen=True)
class GANConfig(Config):
    """A generative adversarial network (Goodfellow et al. 2014) with the common variants.

    Attributes:
        data_shape: shape of one example; filled in by the first ``fit``.
        arch: ``mlp`` (2-D toys, tables), ``conv`` (DCGAN-style, Radford et al. 2016,
            sized from the image shape) or ``auto`` (conv for images).
        latent_dim: size of the noise z ~ N(0, I).
        hidden: MLP widths (both networks, ``mlp`` only).
        g_batchnorm: batch norm before each ReLU of the MLP generator (``mlp`` only; the
            conv generator always has it), as in the 2-D toy generators of VEEGAN / PacGAN.
        g_channels: generator conv widths, deepest first after the linear stem (``conv``).
        d_channels: discriminator conv widths per stride-2 layer (``conv``).
        loss: ``minimax`` (the original), ``nonsaturating`` (-log D(G(z)) for G),
            ``lsgan`` (Mao et al. 2017), ``hinge`` (Lim & Ye 2017; Miyato et al. 2018) or
            ``wgan-gp`` (Gulrajani et al. 2017: critic + gradient penalty).
        gp_weight: weight of the gradient penalty (used with ``wgan-gp``; any other loss
            adds it too when > 0 and ``gp_always`` is set).
        gp_always: add the (WGAN-GP style) penalty to any loss.
        n_critic: discriminator updates per generator update.
        lr_g, lr_d: learning rates (TTUR, Heusel et al. 2017), 2e-4 each by default;
            ``None`` = ``TrainConfig.lr``. ``genlab train gan --lr X`` sets both; a
            ``TrainConfig.lr`` that would be ignored (both set) is refused.
        betas: Adam betas of both optimizers (``None`` = ``TrainConfig.betas``). The DCGAN
            default (0.5, 0.999) is set here because TrainConfig's (0.9, 0.999) is unstable
            for GANs.
        spectral_norm: spectral normalisation of every D layer (Miyato et al. 2018).
        minibatch_std: append the minibatch standard deviation feature in D (Karras et al.
            2018), groups of ``mbstd_group``.
        mbstd_group: group size of the minibatch-std statistic.
        pack: PacGAN packing degree (Lin et al. 2018): D judges ``pack`` samples at once.
        ema_decay: exponential moving average of G's weights (0 = off); sampling then uses
            the averaged generator (Yazici et al. 2019).
        num_classes: > 0 makes a conditional GAN (projection discriminator, Miyato & Koyama
            2018); ``-1`` takes it from the data at ``fit``; 0 = unconditional.
        g_cond: how G sees the label: ``cbn`` (conditional batch norm, conv), ``concat``
            (one-hot next to z) or ``auto`` (cbn for conv, concat for mlp).
        output: ``sigmoid`` (images in [0, 1]), ``linear`` (tables, toys) or ``auto``.
        sample_every: write a fixed-noise sample grid to ``run_dir/samples/`` every this many
            steps (0 = off); the grids become ``run_dir/figures/progress.gif``.
        n_fixed: images in each fixed-noise grid.
        val_every: compute FID in the judge's space against the validation split every this
            many steps (0 = off; needs a shipped judge for the data).
        val_samples: generated and real images used for that FID.
        keep_best: restore the weights with the best validation FID at the end.
    """

    data_shape: tuple[int, ...] | None = None
    arch: str = "auto"
    latent_dim: int = 64
    hidden: tuple[int, ...] = (256, 256)
    g_batchnorm: bool = False
    g_channels: tuple[int, ...] = (128, 64)
    d_channels: tuple[int, ...] = (64, 128)
    loss: str = "nonsaturating"
    gp_weight: float = 10.0
    gp_always: bool = False
    n_critic: int = 1
    lr_g: float | None = 2e-4
    lr_d: float | None = 2e-4
    betas: tuple[float, float] | None = (0.5, 0.999)
    spectral_norm: bool = False
    minibatch_std: bool = False
    mbstd_group: int = 4
    pack: int = 1
    ema_decay: float = 0.0
    num_classes: int = 0
    g_cond: str = "auto"
    output: str = "auto"
    sample_every: int = 0
    n_fixed: int = 64
    val_every: int = 0
    val_samples: int = 1000
    keep_best: bool = True

    def __post_init__(self) -> None:
        n = "GANConfig"
        _check_adversarial(self, n)
        _need(n, self.arch in ARCHS, f"arch must be one of {ARCHS}, got {self.arch!r}")
        _need(n, self.output in OUTPUTS, f"output must be one of {OUTPUTS}, got {self.output!r}")
        _need(n, self.g_cond in G_CONDS, f"g_cond must be one of {G_CONDS}, got {self.g_cond!r}")
        _need(n, self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim!r}")
        _need(n, len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
              f"hidden must be positive integers, got {self.hidden!r}")
        _need(n, len(self.g_channels) >= 1 and all(c >= 1 for c in self.g_channels),
              f"g_channels must be positive integers, got {self.g_channels!r}")
        _need(n, isinstance(self.pack, int) and self.pack >= 1, f"pack must be >= 1, got {self.pack!r}")
        _need(n, self.mbstd_group >= 1, f"mbstd_group must be >= 1, got {self.mbstd_group!r}")
        _need(n, isinstance(self.num_classes, int) and self.num_classes >= -1,
              f"num_classes must be -1, 0 or a positive integer, got {self.num_classes!r}")
        _need(n, not (self.num_classes and self.pack > 1),
              "pack > 1 packs samples of different classes together, which the projection "
              "discriminator cannot judge: use pack=1 for a conditional GAN")
        _need(n, self.n_fixed >= 1 and self.val_samples >= 2, "n_fixed must be >= 1 and val_samples >= 2")


@dataclasses.dataclass(frozen=True)
class SRGANConfig(Config):
    """Super-resolution GAN (Ledig et al. 2017): a CNN upscales a low-resolution image by
    ``factor``; it is trained with a content loss plus a small adversarial loss.

    The generator predicts a residual on top of bicubic interpolation, so it starts at
    bicubic quality and learns the detail bicubic misses.

    Attributes:
        data_shape: shape of one high-resolution image ``(C, H, W)``; ``H`` and ``W``
            must be divisible by ``factor``. Filled in by the first ``fit``.
        factor: upscaling factor (the low-res input is ``H/factor x W/factor``, made by
            area downsampling).
        channels: width of the generator's residual blocks.
        n_blocks: residual blocks in the generator.
        content: content loss ``mse`` or ``l1``.
        adv_weight: weight of the adversarial loss against the content loss (1e-3 in SRGAN).
        d_channels, loss, gp_weight, gp_always, n_critic, lr_g, lr_d, betas, spectral_norm,
            ema_decay: as in ``GANConfig``.
        bank_size: low-res training images kept with the model, for ``sample`` without an
            input (see ``SRGAN.sample``).
        sample_every: write fixed validation upscales to ``run_dir/samples/`` every this
            many steps (0 = off).
        n_fixed: images in each of those grids.
        val_every: PSNR on the validation split every this many steps (0 = off).
        val_samples: validation images used for it.
        keep_best: restore the weights with the best validation PSNR at the end.
    """

    data_shape: tuple[int, ...] | None = None
    factor: int = 4
    channels: int = 32
    n_blocks: int = 4
    content: str = "mse"
    adv_weight: float = 1e-3
    d_channels: tuple[int, ...] = (32, 64)
    loss: str = "nonsaturating"
    gp_weight: float = 10.0
    gp_always: bool = False
    n_critic: int = 1
    lr_g: float | None = 1e-3
    lr_d: float | None = 2e-4
    betas: tuple[float, float] | None = (0.5, 0.999)
    spectral_norm: bool = True
    ema_decay: float = 0.0
    bank_size: int = 64
    sample_every: int = 0
    n_fixed: int = 16
    val_every: int = 0
    val_samples: int = 500
    keep_best: bool = True

    def __post_init__(self) -> None:
        n = "SRGANConfig"
        _check_adversarial(self, n)
        _need(n, isinstance(self.factor, int) and self.factor >= 2, f"factor must be an integer >= 2, got {self.factor!r}")
        _need(n, self.channels >= 1 and self.n_blocks >= 0, "channels must be >= 1 and n_blocks >= 0")
        _need(n, self.content in ("mse", "l1"), f"content must be 'mse' or 'l1', got {self.content!r}")
        _need(n, self.adv_weight >= 0, f"adv_weight must be >= 0, got {self.adv_weight!r}")
        _need(n, self.bank_size >= 1 and self.n_fixed >= 1 and self.val_samples >= 1,
              "bank_size, n_fixed and val_samples must be >= 1")
        if self.data_shape is not None:
            _need(n, len(self.data_shape) == 3, f"super-resolution needs images (C, H, W), got data_shape {self.data_shape}")
            _need(n, self.data_shape[1] % self.factor == 0 and self.data_shape[2] % self.factor == 0,
                  f"image size {self.data_shape[1]}x{self.data_shape[2]} is not divisible by factor={self.factor}")
