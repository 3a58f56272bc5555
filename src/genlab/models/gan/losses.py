"""GAN losses on discriminator logits, and the WGAN-GP gradient penalty.

Every function takes raw discriminator outputs ``D(x)`` (logits / critic values, shape
``(B,)``) and returns a scalar to *minimise*. With ``s = sigmoid``:

========== ========================================== ===============================
loss        discriminator                              generator
========== ========================================== ===============================
minimax     -log s(D(x)) - log(1 - s(D(G(z))))         log(1 - s(D(G(z))))   (saturates)
nonsat.     same                                       -log s(D(G(z)))
lsgan       ((D(x) - 1)^2 + D(G(z))^2) / 2             (D(G(z)) - 1)^2 / 2
hinge       relu(1 - D(x)) + relu(1 + D(G(z)))         -D(G(z))
wgan-gp     D(G(z)) - D(x)   (+ gp_weight * GP)        -D(G(z))
========== ========================================== ===============================

``-log s(t) = softplus(-t)`` and ``-log(1 - s(t)) = softplus(t)`` keep them finite for any
logit. Papers: Goodfellow et al. 2014 (minimax and the non-saturating trick), Mao et al.
2017 (LSGAN), Lim & Ye 2017 / Miyato et al. 2018 (hinge), Gulrajani et al. 2017 (WGAN-GP).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss from logits on real ``(B,)`` and fake ``(B',)`` examples."""
    if kind in ("minimax", "nonsaturating"):
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss from discriminator logits on generated examples ``(B,)``."""
    if kind == "minimax":
        return -F.softplus(fake).mean()  # log(1 - s(t)) = -softplus(t)
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1).pow(2).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def penalty_weights(n: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The mixing weights ``eps ~ U(0, 1)`` of ``gradient_penalty`` for ``n`` examples of
    ``dim`` dimensions, shaped ``(n, 1, ...)`` (drawn up front when a step shards a batch)."""
    return torch.rand(n, *([1] * (dim - 1)), generator=generator)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, *, generator: torch.Generator | None = None,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` at random interpolates
    ``x_hat = eps * real + (1 - eps) * fake``, ``eps ~ U(0, 1)`` per example
    (Gulrajani et al. 2017, Algorithm 1).

    Args:
        critic: maps ``(B, ...)`` to ``(B',)`` outputs (may pack examples: the penalty is
            then on the gradient of each packed output w.r.t. its packed inputs).
        real, fake: ``(B, ...)`` examples (``fake`` detached from G).
        generator: draws ``eps`` (seeded for reproducible training).
        eps: the mixing weights ``(B, 1, ...)`` instead (``penalty_weights``).
    Returns:
        a scalar, differentiable w.r.t. the critic's parameters.
    """
    if eps is None:
        eps = penalty_weights(real.shape[0], real.dim(), generator)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    b = out.shape[0]  # with packing, one norm per packed group of inputs
    norms = grad.reshape(b, -1).norm(2, dim=1)
    return (norms - 1).pow(2).mean()
