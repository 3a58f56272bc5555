"""Variational autoencoder: Gaussian posterior, Bernoulli or Gaussian decoder, beta-VAE,
conditional VAE, IWAE likelihood bound (Burda et al. 2016)."""
from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..torch_model import TorchGenerativeModel
from ...data.dataset import Dataset
from ...devices import bernoulli
from ...errors import DataError
from ...nn import decoder, encoder
from ...progress import tick
from ...registry import MODELS
from .config import VAEConfig

LOG_2PI = math.log(2 * math.pi)


@MODELS.register("vae")
class VAE(TorchGenerativeModel):
    """``q(z|x,y) = N(mu, diag(sigma^2))``, ``p(z) = N(0, I)``, ``p(x|z,y)`` Bernoulli or
    Gaussian. ``forward`` returns the negative (beta-)ELBO with its reconstruction and KL
    parts; ``log_prob`` is the IWAE lower bound on ``log p(x)`` with ``k`` samples.

    Example:
        >>> vae = VAE(latent_dim=8).fit("digits")
        >>> x = vae.sample(16, generator=torch.Generator().manual_seed(0))   # (16, 1, 8, 8)
        >>> cvae = VAE(num_classes=-1).fit("digits"); threes = cvae.sample(8, y=3)
    """

    model_type = "vae"
    config_class = VAEConfig
    log_prob_kind = "lower_bound"
    log_prob_options = ("y", "k", "generator")
    declared_tags = {"latent": True, "reconstruction": True, "interpolation": True}

    def data_defaults(self, dataset: Dataset) -> dict[str, Any]:
        lik = self.config.likelihood
        if lik == "auto":
            lik = "bernoulli" if dataset.kind == "image" else "gaussian"
        if lik == "bernoulli" and (dataset.x.min() < 0 or dataset.x.max() > 1):
            raise DataError(f"likelihood='bernoulli' needs data in [0, 1]; {dataset.name} spans "
                            f"[{float(dataset.x.min()):.3g}, {float(dataset.x.max()):.3g}]: use likelihood='gaussian'")
        return {"likelihood": lik}

    def build(self) -> None:
        c = self.config
        feat = c.hidden[-1]
        self.n_cond = max(c.num_classes, 0)
        self.encoder = encoder(c.arch, c.data_shape, feat, hidden=c.hidden[:-1] if c.arch == "mlp" else c.hidden,
                               channels=c.channels, dropout=c.dropout)
        self.posterior = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(feat + self.n_cond, 2 * c.latent_dim))
        self.decoder = decoder(c.arch, c.latent_dim + self.n_cond, c.data_shape, hidden=c.hidden,
                               channels=c.channels, dropout=c.dropout)
        if c.likelihood == "gaussian":
            self.log_std = nn.Parameter(torch.zeros(c.data_shape))

    # -- pieces
    def _cond(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.n_cond:
            return None
        if y is None:
            raise ValueError(f"this VAE is conditional on {self.n_cond} classes: pass labels y")
        y = torch.as_tensor(y, dtype=torch.long).reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        if len(y) != n or int(y.min()) < 0 or int(y.max()) >= self.n_cond:
            raise ValueError(f"y must hold {n} labels in 0..{self.n_cond - 1}, got {y.tolist()[:8]}")
        return F.one_hot(y, self.n_cond).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each ``(B, latent_dim)``."""
        h = self.encoder(x)
        c = self._cond(y, len(x))
        if c is not None:
            h = torch.cat([h, c], 1)
        mu, logvar = self.posterior(h).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder output ``(B, *data_shape)``: logits (Bernoulli) or means (Gaussian)."""
        c = self._cond(y, len(z))
        return self.decoder(z if c is None else torch.cat([z, c], 1))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of ``p(x|z, y)`` in data space."""
        out = self.decode_logits(z, y)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    def _std(self) -> torch.Tensor:
        return self.log_std.exp().clamp_min(self.config.min_std)

    def log_likelihood(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``log p(x|z)`` per example ``(B,)`` from decoder output ``out``."""
        if self.config.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        std = self._std()
        lp = -0.5 * ((x - out) / std).pow(2) - std.log() - 0.5 * LOG_2PI
        return lp.flatten(1).sum(1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, y = batch["x"], batch.get("y")
        mu, logvar = self.encode(x, y)  # (B, d)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = self.log_likelihood(x, self.decode_logits(z, y))  # (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)  # (B,)
        loss = (-rec + self.config.beta * kl).mean()
        return {"loss": loss, "recon": -rec.mean().detach(), "kl": kl.mean().detach(),
                "elbo": (rec - kl).mean().detach()}

    # -- contract
    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, y: Any = None,
               temperature: float = 1.0, mean: bool | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior ``N(0, temperature^2 I)``.

        Args:
            n: number of samples.
            generator: seeded ``torch.Generator`` for reproducible draws.
            y: class label(s) for a conditional VAE: an int or ``n`` labels; default
                cycles through the classes (``0, 1, ..., 0, 1, ...``).
            temperature: scale of the prior draws, a finite number >= 0 (< 1 trades
                diversity for quality; 0 decodes ``z = 0`` for every draw).
            mean: return the decoder mean instead of a draw from ``p(x|z)``. Default: the
                mean for a Bernoulli decoder (pixel probabilities, the usual picture of a
                VAE sample), a real draw ``mu + std * eps`` for a Gaussian decoder.
        Returns:
            ``(n, *data_shape)``.
        """
        self.check_fitted()
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
                or not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        self.eval()
        if self.n_cond and y is None:
            y = torch.arange(int(n), device=self.device) % self.n_cond
        z = temperature * self._noise(int(n), self.config.latent_dim, generator=generator)
        x = self.decode(z, y)
        if mean is None:
            mean = self.config.likelihood == "bernoulli"
        if mean:
            return x
        if self.config.likelihood == "bernoulli":
            return bernoulli(x, generator=generator)
        return x + self._std() * self._noise(*x.shape, generator=generator)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, latent_dim)`` from the prior ``N(0, I)``."""
        return self._noise(int(n), self.config.latent_dim, generator=generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean at the posterior mean."""
        self.check_fitted()
        was = self.training
        self.eval()
        x = torch.as_tensor(x, dtype=torch.float32)
        yy = None if y is None else torch.as_tensor(y).reshape(-1)
        out = torch.cat([self.decode(self.encode(x[i:i + 1024], None if yy is None else yy[i:i + 1024])[0],
                                     None if yy is None else yy[i:i + 1024])
                         for i in range(0, len(x), 1024)])
        self.train(was)
        return out

    @torch.no_grad()
    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, steps: int = 8, *,
                    y: Any = None) -> torch.Tensor:
        """Decode ``steps`` points on the line between the posterior means of two
        examples. Returns ``(steps, *data_shape)``."""
        self.check_fitted()
        self.eval()
        yy = None if y is None else torch.as_tensor(y).reshape(1)
        z0 = self.encode(torch.as_tensor(x0, dtype=torch.float32)[None], yy)[0]
        z1 = self.encode(torch.as_tensor(x1, dtype=torch.float32)[None], yy)[0]
        t = torch.linspace(0, 1, steps)[:, None]
        return self.decode((1 - t) * z0 + t * z1, None if yy is None else yy.expand(steps))

    @torch.no_grad()
    def log_prob(self, x: Any, *, y: Any = None, k: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """IWAE bound ``log (1/k) sum_i p(x, z_i) / q(z_i|x)`` per example, in nats.

        It is a lower bound on ``log p(x)`` that tightens as ``k`` grows (``k=1`` is the
        ELBO). A Bernoulli decoder defines probabilities for binary data only.

        Args:
            x: ``(B, *data_shape)``.
            y: labels for a conditional VAE.
            k: importance samples (default ``config.iwae_k``).
            generator: seeded generator for reproducible estimates.
        Returns:
            ``(B,)`` float64.
        """
        self.check_fitted()
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.shape[1:] != tuple(self.config.data_shape):
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.config.data_shape))}), got {tuple(x.shape)}")
        if self.config.likelihood == "bernoulli" and not ((x == 0) | (x == 1)).all():
            raise ValueError("a Bernoulli VAE assigns probabilities to binary data only: binarise x "
                             "(Dataset.binarize()) or train with likelihood='gaussian'")
        k = int(k or self.config.iwae_k)
        self.eval()
        d = self.config.latent_dim
        chunk = max(1, 20000 // k)
        out = []
        for s in range(0, len(x), chunk):
            xb = x[s:s + chunk]
            yb = None if y is None else torch.as_tensor(y).reshape(-1)[s:s + chunk]
            mu, logvar = self.encode(xb, yb)  # (b, d)
            std = (0.5 * logvar).exp()
            eps = self._noise(k, *mu.shape, generator=generator)  # (k, b, d)
            z = mu + std * eps
            log_q = (-0.5 * eps.pow(2) - (0.5 * logvar) - 0.5 * LOG_2PI).sum(-1)  # (k, b)
            log_pz = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
            zf = z.reshape(-1, d)
            xr = xb.unsqueeze(0).expand(k, *xb.shape).reshape(-1, *xb.shape[1:])
            yr = None if yb is None else yb.unsqueeze(0).expand(k, -1).reshape(-1)
            log_px = self.log_likelihood(xr, self.decode_logits(zf, yr)).view(k, -1)
            log_w = (log_px + log_pz - log_q).double()
            out.append(torch.logsumexp(log_w, 0) - math.log(k))
            tick(len(xb))  # the caller's progress, if any (genlab.progress.task)
        return torch.cat(out)
