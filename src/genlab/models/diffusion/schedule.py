"""The forward (noising) process of a discrete-time diffusion model.

``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` for ``t = 0 .. T-1`` (index ``t`` is
the paper's step ``t + 1``: ``abar_0 = 1 - beta_1``). The schedules are Ho et al. (2020)'s
linear betas and Nichol & Dhariwal (2021)'s cosine ``abar``; the same arrays as diffusers'
``beta_schedule="linear"`` / ``"squaredcos_cap_v2"``, kept here in float64.

A network may predict ``epsilon`` (the noise), ``x0`` (the clean sample) or ``v``
(Salimans & Ho 2022: ``v = sqrt(abar) eps - sqrt(1 - abar) x0``); ``to_x0_eps`` turns any
of them into both, which is all a sampler needs.
"""
from __future__ import annotations

import math

import torch

PREDICTIONS = ("epsilon", "x0", "v")
SCHEDULES = ("linear", "cosine")


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal's ``abar(t) = cos^2((t/T + s) / (1 + s) * pi/2)`` as betas,
    ``beta_t = 1 - abar(t+1)/abar(t)`` clipped to ``max_beta`` (float64, ``(T,)``)."""
    def abar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    return torch.tensor([min(1 - abar((i + 1) / T) / abar(i / T), max_beta) for i in range(T)],
                        dtype=torch.float64)


class NoiseSchedule:
    """``betas`` and ``alphas_cumprod`` (float64, ``(T,)``) with the conversions samplers
    and losses use.

    Args:
        kind: ``linear`` (betas evenly from ``beta_start`` to ``beta_end``) or ``cosine``.
        timesteps: ``T``, the number of training steps.
        beta_start, beta_end: the linear schedule's ends (Ho et al.: 1e-4, 0.02 for T=1000).
    """

    def __init__(self, kind: str = "linear", timesteps: int = 1000, *, beta_start: float = 1e-4,
                 beta_end: float = 0.02):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
        if int(timesteps) < 2:
            raise ValueError(f"timesteps must be >= 2, got {timesteps!r}")
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
        self.kind, self.T = kind, int(timesteps)
        if kind == "linear":
            # float32 linspace as the reference implementations (and diffusers) build it
            self.betas = torch.linspace(beta_start, beta_end, self.T, dtype=torch.float32).double()
        else:
            self.betas = cosine_betas(self.T)
        # float32 betas and their float32 running product, as diffusers and the reference
        # code keep them (the products differ from float64's by ~1e-6 relative, which a
        # sampler's 1/sqrt(abar) would otherwise amplify into visible disagreement)
        self.betas = self.betas.float().double()
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas.float(), 0).double()
        #: the VE noise level of each step, ``sqrt((1 - abar) / abar)`` (Karras et al.'s sigma)
        self.sigmas = ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()
        self._log_sigmas = self.sigmas.log()
        self._tables: dict[str, torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.kind!r}, timesteps={self.T})"

    # -- per-step values
    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        """``abar_t`` for integer steps ``t`` (float64)."""
        return self.alphas_cumprod[torch.as_tensor(t, dtype=torch.long)]

    def snr(self, t: torch.Tensor | int) -> torch.Tensor:
        """Signal-to-noise ratio ``abar / (1 - abar)`` at integer steps ``t``."""
        a = self.abar(t)
        return a / (1 - a)

    def sigma_to_t(self, sigma: float) -> float:
        """The (fractional) step whose noise level is ``sigma``, by linear interpolation of
        ``log sigma`` between training steps (how Karras-sigma samplers ask the network)."""
        ls = math.log(max(float(sigma), 1e-12))
        logs = self._log_sigmas
        if ls <= float(logs[0]):
            return 0.0
        if ls >= float(logs[-1]):
            return float(self.T - 1)
        hi = int(torch.searchsorted(logs, torch.tensor(ls, dtype=torch.float64)))
        lo = hi - 1
        w = (ls - float(logs[lo])) / (float(logs[hi]) - float(logs[lo]))
        return lo + w

    # -- the forward process and what networks predict
    def abar_on(self, t: torch.Tensor) -> torch.Tensor:
        """``abar_t`` for a tensor of integer steps, looked up where ``t`` is (the table is
        copied to each device once)."""
        key = str(t.device)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self.alphas_cumprod.float().to(t.device)
        return table[t]

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for a ``(B,)`` step per row."""
        a = self._per_row(self.abar_on(t), x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, prediction: str) -> torch.Tensor:
        """What a network of ``prediction`` type should output at ``x_t``."""
        if prediction == "epsilon":
            return noise
        if prediction == "x0":
            return x0
        a = self._per_row(self.abar_on(t), x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    @staticmethod
    def _per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def to_x0_eps(output: torch.Tensor, x_t: torch.Tensor, abar: float | torch.Tensor,
              prediction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, eps)`` implied by a network ``output`` of type ``prediction`` at ``x_t``
    with ``abar`` (a float, or a tensor broadcasting against ``x_t``)."""
    sa = abar ** 0.5 if isinstance(abar, float) else abar.sqrt()
    sb = (1 - abar) ** 0.5 if isinstance(abar, float) else (1 - abar).sqrt()
    if prediction == "epsilon":
        return (x_t - sb * output) / sa, output
    if prediction == "x0":
        return output, (x_t - sa * output) / sb
    if prediction == "v":
        return sa * x_t - sb * output, sb * x_t + sa * output
    raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")


def eps_from_x0(x0: torch.Tensor, x_t: torch.Tensor, abar: float) -> torch.Tensor:
    """The noise that takes ``x0`` to ``x_t`` at ``abar`` (used after ``x0`` is clipped, so
    the step stays consistent with the clipped prediction)."""
    return (x_t - abar ** 0.5 * x0) / (1 - abar) ** 0.5
