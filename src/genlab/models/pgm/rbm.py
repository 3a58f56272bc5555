"""Restricted Boltzmann machine (Bernoulli-Bernoulli): the neural MRF.

``E(v, h) = -b.v - c.h - v.W.h``; free energy ``F(v) = -b.v - sum_j softplus(c_j + v.W_j)``.
Training by contrastive divergence (CD-k, Hinton, 2002) or persistent CD (Tieleman, 2008),
written as the surrogate loss ``mean F(v_data) - mean F(v_model)`` (with ``v_model`` from
block Gibbs, detached) so genlab's one trainer runs it with resume and checkpoints.
``log_prob`` is ``-F(v)`` (unnormalised); ``ais_log_partition`` estimates ``log Z`` by
annealed importance sampling (Neal, 2001; Salakhutdinov & Murray, 2008) and
``log_prob(x, normalized=True)`` uses it.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ...base import Config
from ...devices import bernoulli
from ..torch_model import TorchGenerativeModel
from ...registry import MODELS


@dataclasses.dataclass(frozen=True)
class RBMConfig(Config):
    """Args:
        hidden: number of hidden units.
        cd_k: Gibbs steps per update.
        persistent: PCD (chains kept across updates) instead of CD from the data.
        n_chains: persistent chains.
        sample_steps: block-Gibbs steps per ``sample`` call.
        ais_betas / ais_chains: AIS schedule length and particles.
        data_shape: one example's shape, set by the first ``fit``.
    """

    hidden: int = 64
    cd_k: int = 1
    persistent: bool = True
    n_chains: int = 100
    sample_steps: int = 1000
    ais_betas: int = 2000
    ais_chains: int = 100
    data_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.cd_k < 1 or self.n_chains < 1:
            raise ValueError("hidden, cd_k and n_chains must be >= 1")


@MODELS.register("rbm")
class RBM(TorchGenerativeModel):
    """Bernoulli RBM over binary data flattened to ``D`` visible units."""

    model_type = "rbm"
    config_class = RBMConfig
    log_prob_kind = "unnormalized"
    log_prob_options = ("normalized", "generator")

    def build(self) -> None:
        d = math.prod(self.config.data_shape)
        g = torch.Generator().manual_seed(0)
        self.W = nn.Parameter(0.01 * torch.randn(d, self.config.hidden, generator=g))
        self.b = nn.Parameter(torch.zeros(d))
        self.c = nn.Parameter(torch.zeros(self.config.hidden))
        self.register_buffer("chains", torch.zeros(self.config.n_chains, d))
        self.chains_ready = False

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -v @ self.b - nn.functional.softplus(v @ self.W + self.c).sum(-1)

    def _gibbs(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        for _ in range(steps):
            h = bernoulli(torch.sigmoid(v @ self.W + self.c), generator=generator)
            v = bernoulli(torch.sigmoid(h @ self.W.T + self.b), generator=generator)
        return v

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v = batch["x"].flatten(1)
        if ((v != 0) & (v != 1)).any():
            v = bernoulli(v)  # grey levels as probabilities
        with torch.no_grad():
            if self.config.persistent:
                # chains restored from a checkpoint are non-zero: a resumed run keeps them
                # (chains_ready is not part of the saved state)
                if not self.chains_ready and not bool(self.chains.any()):
                    # start the chains at data (tiled batch rows): from uniform noise the
                    # negative phase tends to settle in an all-hidden-off mode and stay
                    rows = torch.arange(self.chains.shape[0], device=v.device) % v.shape[0]
                    self.chains.copy_(v[rows])
                    self.chains_ready = True
                vk = self._gibbs(self.chains, self.config.cd_k)
                self.chains.copy_(vk)
            else:
                vk = self._gibbs(v, self.config.cd_k)
        loss = self.free_energy(v).mean() - self.free_energy(vk).mean()
        with torch.no_grad():
            recon = torch.sigmoid(torch.sigmoid(v @ self.W + self.c) @ self.W.T + self.b)
            mse = (recon - v).pow(2).mean()
        return {"loss": loss, "recon_mse": mse}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """``n`` visible means ``(n, *data_shape)`` after ``steps`` Gibbs steps (a positive
        integer; default ``config.sample_steps``), from the persistent chains when kept."""
        self.check_fitted()
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if self.config.persistent and bool(self.chains.any()):
            # start from the persistent chains (they track the model during training); from
            # uniform noise Gibbs often falls into the all-hidden-off mode and stays there
            pick = torch.randint(0, self.chains.shape[0], (n,), generator=generator)
            v = self.chains[pick].clone()
        else:
            v = bernoulli(torch.full((n, self.b.numel()), 0.5, device=self.b.device), generator=generator)
        v = self._gibbs(v, (steps or self.config.sample_steps) - 1, generator)
        h = bernoulli(torch.sigmoid(v @ self.W + self.c), generator=generator)
        return torch.sigmoid(h @ self.W.T + self.b).reshape(n, *self.config.data_shape)  # mean of the last step

    @torch.no_grad()
    def ais_log_partition(self, *, betas: int | None = None, chains: int | None = None,
                          generator: torch.Generator | None = None) -> tuple[float, float]:
        """AIS estimate of ``log Z`` from the base RBM with ``W = 0`` and the same visible
        biases; returns (estimate, standard error of the log-mean-exp)."""
        n = chains or self.config.ais_chains
        bs = torch.linspace(0, 1, betas or self.config.ais_betas, dtype=torch.float64, device=self.W.device)
        W, b, c = self.W.double(), self.b.double(), self.c.double()
        log_z0 = nn.functional.softplus(b).sum() + self.config.hidden * math.log(2)
        v = bernoulli(torch.sigmoid(b).expand(n, -1), generator=generator)

        def log_f(v: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
            # -F_beta(v) for p_beta(v, h) ∝ exp(b.v + beta (v.W.h + c.h)); beta=0 is the base
            return v @ b + nn.functional.softplus(beta * (v @ W + c)).sum(-1)

        logw = torch.zeros(n, dtype=torch.float64, device=v.device)
        for k in range(1, len(bs)):
            logw += log_f(v, bs[k]) - log_f(v, bs[k - 1])
            h = bernoulli(torch.sigmoid(bs[k] * (v @ W + c)), generator=generator)
            v = bernoulli(torch.sigmoid(bs[k] * (h @ W.T) + b), generator=generator)
        m = logw.max()
        est = float(log_z0 + m + torch.log(torch.exp(logw - m).mean()))
        w = torch.exp(logw - m)
        se = float(w.std() / (w.mean() * math.sqrt(n)))
        return est, se

    def log_prob(self, x: torch.Tensor, *, normalized: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``-F(x)`` per example (unnormalised), or ``-F(x) - log Z_AIS`` if ``normalized``
        (``generator`` seeds AIS); a float64 tensor ``(N,)``."""
        self.check_fitted()
        with torch.no_grad():
            lp = -self.free_energy(x.flatten(1).to(self.b.dtype)).double()
            if normalized:
                lp = lp - self.ais_log_partition(generator=generator)[0]
        return lp
