"""Autoencoder (MLP or convolutional), optionally denoising.

An autoencoder is not a density model (``log_prob_kind = "none"``). To make it generate,
``fit`` ends by fitting a full-covariance Gaussian to the training codes; ``sample`` draws
codes from it and decodes them. The pipelines in ``genlab.pipelines`` use it for
compression, denoising and anomaly detection.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..torch_model import TorchGenerativeModel
from ...data.dataset import Dataset, as_dataset
from ...errors import DataError
from ...nn import decoder, encoder
from ...registry import MODELS
from .config import AutoencoderConfig


@MODELS.register("autoencoder", aliases=("ae",))
class Autoencoder(TorchGenerativeModel):
    """Deterministic autoencoder ``x -> z -> x_hat`` trained on reconstruction loss.

    Example:
        >>> ae = Autoencoder(latent_dim=8).fit("digits")
        >>> x_hat = ae.reconstruct(x)          # (B, 1, 8, 8)
        >>> new = ae.sample(16)                # codes from the fitted latent Gaussian
    """

    model_type = "autoencoder"
    config_class = AutoencoderConfig
    log_prob_kind = "none"
    declared_tags = {"latent": True, "reconstruction": True}

    def data_defaults(self, dataset: Dataset) -> dict[str, Any]:
        loss = self.config.loss
        if loss == "auto":
            loss = "bce" if dataset.kind == "image" else "mse"
        if loss == "bce" and (dataset.x.min() < 0 or dataset.x.max() > 1):
            raise DataError(f"loss='bce' needs data in [0, 1]; {dataset.name} spans "
                            f"[{float(dataset.x.min()):.3g}, {float(dataset.x.max()):.3g}]: use loss='mse'")
        return {"loss": loss}

    def build(self) -> None:
        c = self.config
        self.encoder = encoder(c.arch, c.data_shape, c.latent_dim, hidden=c.hidden,
                               channels=c.channels, dropout=c.dropout)
        self.decoder = decoder(c.arch, c.latent_dim, c.data_shape, hidden=c.hidden,
                               channels=c.channels, dropout=c.dropout)
        d = c.latent_dim
        self.register_buffer("latent_mean", torch.zeros(d))
        self.register_buffer("latent_scale_tril", torch.eye(d))

    # -- the maps
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, latent_dim)`` of inputs ``(B, *data_shape)``."""
        return self.encoder(x)

    def _out(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.config.loss == "bce" else logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions in data space ``(B, *data_shape)`` of codes ``(B, latent_dim)``."""
        return self._out(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x))`` in eval mode."""
        self.check_fitted()
        was = self.training
        self.eval()
        x = torch.as_tensor(x, dtype=torch.float32)
        out = torch.cat([self.decode(self.encode(x[i:i + 1024])) for i in range(0, len(x), 1024)])
        self.train(was)
        return out

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]  # (B, *data_shape)
        x_in = x
        if self.training and self.config.denoise_std > 0:
            x_in = x + self.config.denoise_std * torch.randn_like(x)
            if self.config.loss == "bce":
                x_in = x_in.clamp(0, 1)
        logits = self.decoder(self.encoder(x_in))
        if self.config.loss == "bce":
            per_ex = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
            mse = (torch.sigmoid(logits) - x).pow(2).mean()
        else:
            per_ex = (logits - x).pow(2).flatten(1).sum(1)
            mse = per_ex.mean() / x[0].numel()
        return {"loss": per_ex.mean(), "mse": mse.detach()}

    # -- generation
    @torch.no_grad()
    def on_fit_end(self, train_data: Any) -> None:
        """Fit the Gaussian over training codes that ``sample`` draws from."""
        ds = as_dataset(train_data)
        self.eval()
        z = torch.cat([self.encode(ds.x[i:i + 1024]) for i in range(0, len(ds), 1024)]).double()
        mean = z.mean(0)
        cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1]) if len(z) > 1 else torch.zeros(z.shape[1], z.shape[1], dtype=z.dtype)
        cov = cov + 1e-6 * torch.eye(len(mean), dtype=z.dtype) * max(float(cov.diagonal().mean()), 1e-6)
        self.latent_mean.copy_(mean.float())
        self.latent_scale_tril.copy_(torch.linalg.cholesky(cov).float())

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **condition: Any) -> torch.Tensor:
        """Decode ``n`` codes drawn from the Gaussian fitted to the training codes.

        Returns: ``(n, *data_shape)`` in data space.
        """
        self.check_fitted()
        if condition:
            raise TypeError(f"Autoencoder.sample takes no condition, got {sorted(condition)}")
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.eval()
        return self.decode(self.sample_latent(int(n), generator=generator))

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes ``(n, latent_dim)`` from the Gaussian fitted to the training codes."""
        eps = self._noise(int(n), self.config.latent_dim, generator=generator)
        return self.latent_mean + eps @ self.latent_scale_tril.T
