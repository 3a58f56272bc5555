from __future__ import annotations

import dataclasses

from ...base import Config
from ..autoencoder.config import check_common


@dataclasses.dataclass(frozen=True)
class VAEConfig(Config):
    """A variational autoencoder (Kingma & Welling 2014), beta-VAE (Higgins et al. 2017)
    and conditional VAE (Sohn et al. 2015).

    Attributes:
        data_shape: shape of one example; filled in by the first ``fit``.
        arch: ``mlp`` or ``conv`` (images).
        latent_dim: size of z.
        hidden: MLP sizes (the last is the feature size before the posterior head).
        channels: conv channels per stride-2 layer (``conv`` only).
        dropout: dropout probability between layers.
        likelihood: ``bernoulli`` (binary or [0, 1] data), ``gaussian`` (learned
            per-dimension std) or ``auto`` (``bernoulli`` for images, else ``gaussian``).
        min_std: lower bound of the Gaussian decoder's std (keeps the density finite on
            constant pixels).
        beta: weight of the KL term (1 = the ELBO; > 1 = beta-VAE).
        num_classes: > 0 makes a conditional VAE on labels ``0..num_classes-1``;
            ``-1`` takes the number of classes from the data at ``fit``; 0 = unconditional.
        iwae_k: default number of importance samples for ``log_prob``.
    """

    data_shape: tuple[int, ...] | None = None
    arch: str = "mlp"
    latent_dim: int = 16
    hidden: tuple[int, ...] = (256, 128)
    channels: tuple[int, ...] = (32, 64)
    dropout: float = 0.0
    likelihood: str = "auto"
    min_std: float = 0.01
    beta: float = 1.0
    num_classes: int = 0
    iwae_k: int = 1000

    def __post_init__(self) -> None:
        check_common(self)
        if self.likelihood not in ("auto", "bernoulli", "gaussian"):
            raise ValueError(f"VAEConfig: likelihood must be 'auto', 'bernoulli' or 'gaussian', got {self.likelihood!r}")
        if self.beta < 0:
            raise ValueError(f"VAEConfig: beta must be >= 0, got {self.beta!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < -1:
            raise ValueError(f"VAEConfig: num_classes must be -1, 0 or a positive integer, got {self.num_classes!r}")
        if self.min_std <= 0:
            raise ValueError(f"VAEConfig: min_std must be > 0, got {self.min_std!r}")
        if self.iwae_k < 1:
            raise ValueError(f"VAEConfig: iwae_k must be >= 1, got {self.iwae_k!r}")
