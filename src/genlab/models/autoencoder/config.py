from __future__ import annotations

import dataclasses

from ...base import Config


def check_common(cfg: Config) -> None:
    """Validation shared by the autoencoder-like configs."""
    name = type(cfg).__name__
    if cfg.arch not in ("mlp", "conv"):
        raise ValueError(f"{name}: arch must be 'mlp' or 'conv', got {cfg.arch!r}")
    if not (isinstance(cfg.latent_dim, int) and cfg.latent_dim >= 1):
        raise ValueError(f"{name}: latent_dim must be a positive integer, got {cfg.latent_dim!r}")
    if not cfg.hidden or any(int(h) < 1 for h in cfg.hidden):
        raise ValueError(f"{name}: hidden must be a non-empty list of positive sizes, got {cfg.hidden!r}")
    if not cfg.channels or any(int(c) < 1 for c in cfg.channels):
        raise ValueError(f"{name}: channels must be a non-empty list of positive sizes, got {cfg.channels!r}")
    if not 0 <= cfg.dropout < 1:
        raise ValueError(f"{name}: dropout must be in [0, 1), got {cfg.dropout!r}")
    if cfg.data_shape is not None and (len(cfg.data_shape) not in (1, 3) or min(cfg.data_shape) < 1):
        raise ValueError(f"{name}: data_shape must be (D,) or (C, H, W), got {cfg.data_shape!r}")


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig(Config):
    """An autoencoder: encoder -> ``latent_dim`` code -> decoder.

    Attributes:
        data_shape: shape of one example; filled in by the first ``fit``.
        arch: ``mlp`` (any data) or ``conv`` (images).
        latent_dim: size of the code (the bottleneck).
        hidden: MLP layer sizes of the encoder (mirrored in the decoder); for ``conv``,
            ``hidden[-1]`` is the feature size before the code.
        channels: conv channels per stride-2 layer (``conv`` only).
        dropout: dropout probability between layers (regularisation).
        loss: ``bce`` (data in [0, 1], sigmoid output), ``mse`` (any data) or ``auto``
            (``bce`` for images, ``mse`` for tables), resolved at ``fit``.
        denoise_std: std of Gaussian noise added to inputs during training (a denoising
            autoencoder, Vincent et al. 2008); 0 = plain autoencoder.
    """

    data_shape: tuple[int, ...] | None = None
    arch: str = "mlp"
    latent_dim: int = 16
    hidden: tuple[int, ...] = (256, 128)
    channels: tuple[int, ...] = (32, 64)
    dropout: float = 0.0
    loss: str = "auto"
    denoise_std: float = 0.0

    def __post_init__(self) -> None:
        check_common(self)
        if self.loss not in ("auto", "bce", "mse"):
            raise ValueError(f"AutoencoderConfig: loss must be 'auto', 'bce' or 'mse', got {self.loss!r}")
        if self.denoise_std < 0:
            raise ValueError(f"AutoencoderConfig: denoise_std must be >= 0, got {self.denoise_std!r}")
