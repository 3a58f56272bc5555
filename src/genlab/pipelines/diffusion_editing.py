"""Editing images with a trained diffusion model: image-to-image (SDEdit) and inpainting
(RePaint), the two pipelines diffusers users reach for after text-to-image.

* ``img2img`` — SDEdit (Meng et al. 2022): noise the input to the step a ``strength`` of
  the way along the sampler's schedule, then denoise from there with the usual sampler
  (``ddpm``, ``ddim`` or ``dpm++``), guidance and class included. ``strength`` 0 returns
  the input, 1 ignores it; diffusers' ``StableDiffusionImg2ImgPipeline`` cuts its step list
  the same way (the last ``round(strength * steps)`` steps).
* ``inpaint`` — RePaint (Lugmayr et al. 2022): ancestral sampling where, at every step,
  the pixels to keep are replaced by the input noised to that step, so the generated
  region is always conditioned on a consistent picture; ``resample`` times per
  ``jump``-step window the chain is noised back ``jump`` steps and redone, which lets the
  hole and its surroundings agree (RePaint's "jumps").

``mask`` follows diffusers: ``True`` (or 1, white in a mask image) marks the pixels to
regenerate; the rest is kept exactly.
"""
from __future__ import annotations

from typing import Any

import torch

from ..base import load
from ..capabilities import tags_of
from ..devices import noise as draw_noise
from ..models.diffusion.samplers import posterior_step
from ..models.diffusion.schedule import to_x0_eps
from ..registry import PIPELINES


def _images(model: Any, images: Any) -> torch.Tensor:
    x = torch.as_tensor(images, dtype=torch.float32)
    shape = tuple(model.config.data_shape)
    if x.dim() == len(shape):
        x = x[None]
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"images must have shape (N, {', '.join(map(str, shape))}) for this model, "
                         f"got {tuple(x.shape)}")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError("images must hold values in [0, 1]")
    return x


def repaint_schedule(n: int, jump: int, resample: int) -> list[int]:
    """The order RePaint visits step indices ``n .. 0`` (index ``k`` = the ``k``-th
    smallest sampler step, 0 = clean): down one at a time, and every ``jump`` indices
    back up ``jump`` and down again, ``resample - 1`` extra times."""
    jumps = {j: resample - 1 for j in range(0, n - jump, jump)} if resample > 1 and jump > 0 else {}
    t, out = n, [n]
    while t >= 1:
        t -= 1
        out.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump):
                t += 1
                out.append(t)
    return out


@PIPELINES.register("image-editing", aliases=("img2img", "inpainting"))
class DiffusionEditor:
    """Image-to-image and inpainting with a trained ``diffusion`` model.

    Example:
        >>> ed = DiffusionEditor.from_run("runs/diffusion-fashion")
        >>> out = ed.img2img(images, strength=0.5, y=7, guidance=3)     # sneakers into boots
        >>> mask = torch.zeros(1, 28, 28, dtype=torch.bool); mask[:, 8:20, 8:20] = True
        >>> filled = ed.inpaint(images, mask)
    """

    def __init__(self, model: Any):
        if tags_of(model).family != "diffusion":  # the one family that denoises from a given step
            raise ValueError(f"DiffusionEditor needs a diffusion model, got {type(model).__name__}")
        model.check_fitted()
        self.model = model

    @classmethod
    def from_run(cls, run_dir: Any) -> "DiffusionEditor":
        return cls(load(run_dir))  # a run folder or a model folder

    def __call__(self, images: Any, **options: Any) -> torch.Tensor:
        """``img2img(images, **options)``."""
        return self.img2img(images, **options)

    def evaluate(self, images: Any, *, strengths: tuple[float, ...] = (0.25, 0.5, 0.75), mask: Any = None,
                 seed: int = 0, **options: Any) -> dict[str, float]:
        """How far each ``img2img`` strength moves the images (mean absolute pixel change,
        which should grow with the strength) and, for a ``mask``, the inpainted hole's
        PSNR against the original pixels and the largest change outside it (0: kept)."""
        import math

        x = _images(self.model, images)
        out: dict[str, float] = {}
        for st in strengths:
            y = self.img2img(x, strength=st, generator=torch.Generator().manual_seed(seed), **options)
            out[f"img2img_change@{st:g}"] = float((y - x).abs().mean())
        if mask is not None:
            hole = torch.as_tensor(mask).bool().expand_as(x)
            y = self.inpaint(x, hole, generator=torch.Generator().manual_seed(seed))
            mse = float((y - x)[hole].pow(2).mean()) if hole.any() else 0.0
            out["inpaint_hole_psnr_db"] = 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")
            out["inpaint_kept_max_change"] = float((y - x)[~hole].abs().max()) if (~hole).any() else 0.0
        return out

    def img2img(self, images: Any, *, strength: float = 0.6, y: Any = None, sampler: str = "ddim",
                steps: int | None = None, guidance: float | None = None, generator: torch.Generator | None = None,
                ema: bool = True) -> torch.Tensor:
        """SDEdit: noise ``images`` ``(N, *shape)`` in [0, 1] to ``strength`` of the way and
        denoise. Returns ``(N, *shape)`` in [0, 1]."""
        from ..models.diffusion.samplers import DEFAULT_SPACING, SAMPLERS, STEP_SAMPLERS, spaced_steps

        m = self.model
        x = _images(m, images)
        if not (isinstance(strength, (int, float)) and 0 <= strength <= 1):
            raise ValueError(f"strength must be in [0, 1], got {strength!r}")
        name, fn, kw = m.sampling_setup(len(x), y=y, sampler=sampler, steps=steps, guidance=guidance, ema=ema)
        if name not in STEP_SAMPLERS:
            raise ValueError(f"img2img walks training steps: use ddpm, ddim or dpm++, not {name}")
        ts = spaced_steps(m.schedule.T, kw.pop("steps", None) or m.schedule.T,
                          kw.pop("spacing", None) or DEFAULT_SPACING[name], extra_point=name == "dpm++")
        keep = ts[len(ts) - int(round(strength * len(ts))):]
        if not keep:
            return x.clone()
        dev = m.device
        x0 = m.to_model_space(x.to(dev))
        t0 = keep[0]
        a = float(m.schedule.alphas_cumprod[t0])
        x_t = a ** 0.5 * x0 + (1 - a) ** 0.5 * draw_noise(x0.shape, generator=generator, device=dev)
        was = m.training
        m.eval()
        try:
            with torch.no_grad():
                out = SAMPLERS[name](fn, m.schedule, x_t, timesteps=keep, generator=generator, **kw)
        finally:
            m.train(was)
        return m.to_data_space(out).cpu()

    def inpaint(self, images: Any, mask: Any, *, y: Any = None, steps: int = 100, jump: int = 5,
                resample: int = 5, guidance: float | None = None, generator: torch.Generator | None = None,
                ema: bool = True) -> torch.Tensor:
        """RePaint: regenerate the pixels where ``mask`` is true and keep the others.

        Args:
            images: ``(N, *shape)`` in [0, 1].
            mask: broadcastable to ``images``: true where to regenerate.
            steps: ancestral steps (a subsequence of the training steps).
            jump, resample: RePaint's jump length and resamplings (``resample=1``: no jumps);
                the network is called about ``steps * resample`` times.
        Returns:
            ``(N, *shape)`` in [0, 1]; kept pixels equal the input exactly.
        """
        from ..models.diffusion.samplers import spaced_steps

        m = self.model
        x = _images(m, images)
        hole = torch.as_tensor(mask).bool()
        try:
            hole = hole.expand_as(x) if hole.dim() == x.dim() else hole.expand(x.shape)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(hole.shape)} does not fit images {tuple(x.shape)}") from None
        for name, v in (("jump", jump), ("resample", resample), ("steps", steps)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        _, fn, kw = m.sampling_setup(len(x), y=y, sampler="ddpm", steps=steps, guidance=guidance, ema=ema)
        asc = spaced_steps(m.schedule.T, min(steps, m.schedule.T), "leading")[::-1]  # index k -> step asc[k-1]
        ac = m.schedule.alphas_cumprod

        def abar(k: int) -> float:
            return 1.0 if k == 0 else float(ac[asc[k - 1]])

        dev = m.device
        x0 = m.to_model_space(x.to(dev))
        hole = hole.to(dev)
        clip = kw.get("clip")
        n = len(asc)
        cur = draw_noise(x0.shape, generator=generator, device=dev)
        order = repaint_schedule(n, jump, resample)
        was = m.training
        m.eval()
        try:
            with torch.no_grad():
                for k_from, k_to in zip(order, order[1:]):
                    a_from, a_to = abar(k_from), abar(k_to)
                    if k_to < k_from:  # one ancestral step, then the kept pixels at that level
                        t = asc[k_from - 1]
                        out = fn(cur, torch.full((len(cur),), float(t), device=dev))
                        pred, _ = to_x0_eps(out, cur, a_from, m.config.prediction)
                        if clip is not None:
                            pred = pred.clamp(-clip, clip)
                        mean = posterior_step(cur, pred, a_from, a_to, generator=generator, noisy=k_to > 0)
                        if k_to > 0:
                            known = a_to ** 0.5 * x0 + (1 - a_to) ** 0.5 * draw_noise(
                                cur.shape, generator=generator, device=dev)
                        else:
                            known = x0
                        cur = torch.where(hole, mean, known)
                    else:  # a jump back: q(x_{k_to} | x_{k_from})
                        ratio = a_to / a_from
                        cur = ratio ** 0.5 * cur + (1 - ratio) ** 0.5 * draw_noise(cur.shape, generator=generator,
                                                                                   device=dev)
        finally:
            m.train(was)
        out = m.to_data_space(cur).cpu()
        return torch.where(hole.cpu(), out, x)  # kept pixels exactly as given
