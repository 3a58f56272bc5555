"""Samplers for discrete-time diffusion models, written against any callable.

Every sampler takes ``fn(x_t, t, **cond) -> output``: a network (or any function) that,
given a batch ``x_t`` and a ``(B,)`` float tensor of steps ``t`` in ``[0, T)``, returns a
prediction of type ``prediction`` (``epsilon``, ``x0`` or ``v``). That is the contract of
diffusers' schedulers too, so a diffusers ``UNet2DModel`` works here and genlab's U-Net
works there. Each sampler starts from ``x`` (``x_T``, standard normal noise: the same start
for every sampler) and returns ``x_0``.

* ``ddpm`` — ancestral sampling (Ho et al. 2020), posterior variance ``beta~_t``; with
  ``steps < T`` it walks a subsequence of steps as diffusers' ``DDPMScheduler`` does.
* ``ddim`` — Song et al. (2021); ``eta=0`` is deterministic, ``eta=1`` has DDPM's variance.
* ``dpm++`` — DPM-Solver++(2M), Lu et al. (2022): multistep second order on the data
  prediction, first order at the first and last steps, the last step lands on sigma 0.
* ``euler`` / ``heun`` — Karras et al. (2022, EDM) Algorithms 1-2 on their noise levels
  ``sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``
  from EDM's ``sigma_max = 80`` (or the schedule's largest sigma if smaller) to its
  smallest, then 0; Heun costs ``2n - 1`` network calls for ``n`` levels (EDM's 18
  levels: 35 calls). Starting at the cosine schedule's own largest sigma (20,291)
  instead puts half of 18 levels above sigma 1,000, where nothing is decided: with an
  exact Gaussian denoiser the samples' std then comes out 0.33 (Euler) and 0.71 (Heun)
  for a true 0.5.

**Clipping.** With ``clip`` (a range ``r``, default 1.0 for images in ``[-1, 1]``) the
predicted ``x0`` is clamped to ``[-r, r]`` and the noise is *recomputed from the clamped
x0* before the step uses it (diffusers' DDIM ``use_clipped_model_output=True``). Reusing
the unclipped (guided) noise moves ``x_t`` along a noise direction that no longer matches
``x0``; under strong guidance that destroys the samples. ``clip=None`` turns it off.

**Timestep spacing** (``spacing``) follows diffusers' names: ``leading`` (``0, k, 2k, ..``
with ``k = T // steps``; the DDIM paper's subsequence, diffusers' DDPM/DDIM default),
``trailing`` (ending at ``T - 1``: Lin et al. 2024 show ``leading`` never starts from
pure noise) and ``linspace`` (evenly between 0 and ``T - 1``; for DPM-Solver++ the
``steps + 1`` points with the last dropped, as the paper's time-uniform grid).

**Guidance.** ``guided(fn, w, cond, uncond)`` is classifier-free guidance (Ho & Salimans
2022) in diffusers' convention: ``out_u + w (out_c - out_u)``, so ``w = 1`` is the plain
conditional model, ``w = 0`` the unconditional one and ``w > 1`` pushes samples toward
their condition. It is affine in the output, so it is the same for any prediction type.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...devices import noise as draw_noise
from .schedule import NoiseSchedule, eps_from_x0, to_x0_eps

ModelFn = Callable[..., torch.Tensor]
#: ``callback(i, t, x_t, x0_pred)`` after each step (for trajectories and progress)
Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None]
SPACINGS = ("leading", "trailing", "linspace")


def spaced_steps(T: int, steps: int, spacing: str, *, extra_point: bool = False) -> list[int]:
    """The descending integer steps a sampler visits (diffusers' conventions, see the
    module doc). ``extra_point`` is DPM-Solver++'s grid: ``steps + 1`` points, the last
    (step 0) dropped because the final update lands on sigma 0."""
    if not 1 <= int(steps) <= T:
        raise ValueError(f"steps must be in 1..{T} (the model's training steps), got {steps!r}")
    n = int(steps)
    if spacing == "linspace":
        if extra_point:
            ts = np.linspace(0, T - 1, n + 1).round()[::-1][:-1]
        else:
            ts = np.linspace(0, T - 1, n).round()[::-1]
    elif spacing == "leading":
        if extra_point:
            ts = (np.arange(0, n + 1) * (T // (n + 1))).round()[::-1][:-1]
        else:
            ts = (np.arange(0, n) * (T // n)).round()[::-1]
    elif spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / n)) - 1
    else:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    return [int(t) for t in ts]


#: EDM's largest noise level: far above any data's scale, and the cosine schedule's own
#: (20,291 at T = 1000) would spend most of a few levels where the image is pure noise
SIGMA_MAX = 80.0


def karras_sigmas(schedule: NoiseSchedule, steps: int, rho: float = 7.0,
                  sigma_max: float = SIGMA_MAX) -> list[float]:
    """Karras et al.'s ``steps`` noise levels from ``min(sigma_max, the schedule's
    largest)`` down to the schedule's smallest, then 0."""
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    lo, hi = float(schedule.sigmas[0]), min(float(schedule.sigmas[-1]), float(sigma_max))
    ramp = np.linspace(0, 1, int(steps))
    sig = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return [float(s) for s in sig] + [0.0]


def guided(fn: ModelFn, w: float, cond: dict[str, Any], uncond: dict[str, Any]) -> ModelFn:
    """Classifier-free guidance: ``out_u + w (out_c - out_u)`` (see the module doc). The
    conditional and unconditional halves run as one batch; ``w = 1`` (``w = 0``) calls
    only the conditional (unconditional) model."""
    w = float(w)
    if w == 1.0:
        return lambda x, t: fn(x, t, **cond)
    if w == 0.0:
        return lambda x, t: fn(x, t, **uncond)
    both = {k: torch.cat([cond[k], uncond[k]]) for k in cond}

    def fn_guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out_c, out_u = fn(torch.cat([x, x]), torch.cat([t, t]), **both).chunk(2)
        return out_u + w * (out_c - out_u)

    return fn_guided


def _call(fn: ModelFn, x: torch.Tensor, t: float, cond: dict[str, Any] | None) -> torch.Tensor:
    tt = torch.full((len(x),), float(t), device=x.device)
    return fn(x, tt, **(cond or {}))


def _predict(fn: ModelFn, x: torch.Tensor, t: float, abar: float, prediction: str, clip: float | None,
             cond: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, eps)`` at ``x_t``; with ``clip`` x0 is clamped and eps recomputed from it."""
    x0, eps = to_x0_eps(_call(fn, x, t, cond), x, abar, prediction)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        eps = eps_from_x0(x0, x, abar)
    return x0, eps


def _visited(schedule: NoiseSchedule, steps: int | None, spacing: str, timesteps: Sequence[int] | None,
             extra_point: bool = False) -> list[int]:
    if timesteps is None:
        return spaced_steps(schedule.T, steps or schedule.T, spacing, extra_point=extra_point)
    ts = [int(t) for t in timesteps]
    if not ts or any(a <= b for a, b in zip(ts, ts[1:])) or ts[0] >= schedule.T or ts[-1] < 0:
        raise ValueError(f"timesteps must be a descending list of steps in 0..{schedule.T - 1}, got {ts[:6]}")
    return ts


def posterior_step(x: torch.Tensor, x0: torch.Tensor, a_t: float, a_prev: float, *,
                   generator: torch.Generator | None = None, noisy: bool = True) -> torch.Tensor:
    """One ancestral step from ``x_t`` (``abar = a_t``) to the level ``a_prev``: the mean of
    ``q(x_prev | x_t, x0)`` plus, when ``noisy``, a draw of its variance ``beta~``."""
    beta = 1 - a_t / a_prev
    mean = (a_prev ** 0.5 * beta / (1 - a_t)) * x0 + ((1 - beta) ** 0.5 * (1 - a_prev) / (1 - a_t)) * x
    if not noisy:
        return mean
    var = max((1 - a_prev) / (1 - a_t) * beta, 1e-20)
    return mean + var ** 0.5 * draw_noise(x.shape, generator=generator, device=x.device, dtype=x.dtype)


#: each step sampler's own timestep spacing (diffusers' defaults)
DEFAULT_SPACING = {"ddpm": "leading", "ddim": "leading", "dpm++": "linspace"}


def ddpm(fn: ModelFn, schedule: NoiseSchedule, x: torch.Tensor, *, steps: int | None = None,
         prediction: str = "epsilon", clip: float | None = 1.0, spacing: str = "leading",
         generator: torch.Generator | None = None, callback: Callback | None = None,
         cond: dict[str, Any] | None = None, timesteps: Sequence[int] | None = None) -> torch.Tensor:
    """Ancestral sampling: ``x_{t'} ~ q(x_{t'} | x_t, x0_pred)`` with the posterior variance
    (``steps`` default: every training step; ``timesteps``, a descending list, overrides
    ``steps`` and ``spacing``: image-to-image starts part-way)."""
    ts = _visited(schedule, steps, spacing, timesteps)
    ac = schedule.alphas_cumprod
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        a_t, a_prev = float(ac[t]), (float(ac[prev]) if prev >= 0 else 1.0)
        x0, _ = _predict(fn, x, t, a_t, prediction, clip, cond)
        x = posterior_step(x, x0, a_t, a_prev, generator=generator, noisy=t > 0)
        if callback is not None:
            callback(i, t, x, x0)
    return x


def ddim(fn: ModelFn, schedule: NoiseSchedule, x: torch.Tensor, *, steps: int = 50, eta: float = 0.0,
         prediction: str = "epsilon", clip: float | None = 1.0, spacing: str = "leading",
         generator: torch.Generator | None = None, callback: Callback | None = None,
         cond: dict[str, Any] | None = None, timesteps: Sequence[int] | None = None) -> torch.Tensor:
    """DDIM: ``x_{t'} = sqrt(abar') x0 + sqrt(1 - abar' - s^2) eps + s z`` with
    ``s = eta sqrt((1 - abar')/(1 - abar) (1 - abar/abar'))``; the step after the last
    lands on ``abar = 1`` (diffusers' ``set_alpha_to_one``)."""
    if not (math.isfinite(eta) and eta >= 0):
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    ts = _visited(schedule, steps, spacing, timesteps)
    ac = schedule.alphas_cumprod
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        a_t, a_prev = float(ac[t]), (float(ac[prev]) if prev >= 0 else 1.0)
        x0, eps = _predict(fn, x, t, a_t, prediction, clip, cond)
        s = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        x = a_prev ** 0.5 * x0 + max(1 - a_prev - s * s, 0.0) ** 0.5 * eps
        if s > 0:
            x = x + s * draw_noise(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if callback is not None:
            callback(i, t, x, x0)
    return x


def dpm_solver_pp(fn: ModelFn, schedule: NoiseSchedule, x: torch.Tensor, *, steps: int = 20,
                  prediction: str = "epsilon", clip: float | None = 1.0, spacing: str = "linspace",
                  generator: torch.Generator | None = None, callback: Callback | None = None,
                  cond: dict[str, Any] | None = None, timesteps: Sequence[int] | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, the "midpoint" form diffusers uses): with
    ``alpha = 1/sqrt(1 + sigma^2)``, ``lambda = log(alpha/sigma)`` and ``h`` the step in
    lambda, ``x' = (sigma'/sigma) x - alpha' (e^-h - 1) D`` where ``D`` is the data
    prediction (first order) or ``x0 + (x0 - x0_prev) / (2 r)`` (second order,
    ``r = h_prev / h``). Deterministic: ``generator`` is not used."""
    ts = _visited(schedule, steps, spacing, timesteps, extra_point=True)
    sig = [float(schedule.sigmas[t]) for t in ts] + [0.0]
    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        s, s_next = sig[i], sig[i + 1]
        x0, _ = _predict(fn, x, t, 1.0 / (1.0 + s * s), prediction, clip, cond)
        if s_next == 0.0:  # the last step lands on sigma 0: the data prediction itself
            x = x0
        else:
            a_next = 1.0 / math.sqrt(1.0 + s_next * s_next)
            lam, lam_next = -math.log(s), -math.log(s_next)  # log(alpha/sigma) = -log(sigma_VE)
            h = lam_next - lam
            d = x0 if x0_prev is None else x0 + (x0 - x0_prev) * (h / (2 * h_prev))
            a = 1.0 / math.sqrt(1.0 + s * s)
            x = (s_next * a_next) / (s * a) * x - a_next * math.expm1(-h) * d  # VP sigmas: s * alpha
            h_prev = h
        x0_prev = x0
        if callback is not None:
            callback(i, t, x, x0)
    return x


def _karras(fn: ModelFn, schedule: NoiseSchedule, x: torch.Tensor, steps: int, heun: bool, rho: float,
            prediction: str, clip: float | None, callback: Callback | None,
            cond: dict[str, Any] | None) -> torch.Tensor:
    sig = karras_sigmas(schedule, steps, rho)
    x = x * math.sqrt(1.0 + sig[0] ** 2)  # the VP start x_T as a VE sample at sigma_max

    def denoise(xv: torch.Tensor, s: float) -> torch.Tensor:
        t = schedule.sigma_to_t(s)
        x0, _ = _predict(fn, xv / math.sqrt(1.0 + s * s), t, 1.0 / (1.0 + s * s), prediction, clip, cond)
        return x0

    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        x0 = denoise(x, s)
        d = (x - x0) / s
        x_next = x + (s_next - s) * d
        if heun and s_next > 0:
            d2 = (x_next - denoise(x_next, s_next)) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d2)
        x = x_next
        if callback is not None:
            callback(i, schedule.sigma_to_t(s), x / math.sqrt(1.0 + s_next ** 2), x0)
    return x


def euler(fn: ModelFn, schedule: NoiseSchedule, x: torch.Tensor, *, steps: int = 30, rho: float = 7.0,
          prediction: str = "epsilon", clip: float | None = 1.0, generator: torch.Generator | None = None,
          callback: Callback | None = None, cond: dict[str, Any] | None = None) -> torch.Tensor:
    """Euler's method on the probability-flow ODE at Karras et al.'s noise levels
    (``steps`` network calls)."""
    return _karras(fn, schedule, x, steps, False, rho, prediction, clip, callback, cond)


def heun(fn: ModelFn, schedule: NoiseSchedule, x: torch.Tensor, *, steps: int = 18, rho: float = 7.0,
         prediction: str = "epsilon", clip: float | None = 1.0, generator: torch.Generator | None = None,
         callback: Callback | None = None, cond: dict[str, Any] | None = None) -> torch.Tensor:
    """Heun's second-order method (Karras et al. Algorithm 1): ``2 steps - 1`` network
    calls (the last step to sigma 0 is an Euler step)."""
    return _karras(fn, schedule, x, steps, True, rho, prediction, clip, callback, cond)


#: the samplers that walk integer training steps (and take ``timesteps=``)
STEP_SAMPLERS = ("ddpm", "ddim", "dpm++")
#: name -> sampler; every one takes ``(fn, schedule, x_T, *, steps, prediction, clip,
#: generator, callback, cond)`` (``ddim`` also ``eta``, ``euler``/``heun`` ``rho``)
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": ddpm, "ddim": ddim, "dpm++": dpm_solver_pp, "euler": euler, "heun": heun,
}
#: other names people use for them
ALIASES = {"dpm": "dpm++", "dpmpp": "dpm++", "dpm-solver++": "dpm++", "dpmsolver++": "dpm++", "dpm++2m": "dpm++",
           "euler-karras": "euler", "heun-karras": "heun", "edm": "heun"}
#: each sampler's default number of steps (``None``: every training step)
DEFAULT_STEPS: dict[str, int | None] = {"ddpm": None, "ddim": 50, "dpm++": 20, "euler": 30, "heun": 18}


def network_calls(sampler: str, steps: int | None, T: int) -> int:
    """How many network evaluations ``sampler`` makes with ``steps`` (before guidance,
    which doubles the batch, not the calls)."""
    n = steps or DEFAULT_STEPS[sampler] or T
    return 2 * n - 1 if sampler == "heun" else n
