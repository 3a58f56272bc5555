"""Style-transfer measures (issue 18), pure functions: Gram matrices and their distances
(Gatys, Ecker & Bethge 2016), the content-feature distance, luminance and YIQ (ITU-R
BT.601, for colour preservation and SSIM on luminance), colour-histogram and per-channel
Wasserstein distances to a style's colours, and adaptive instance normalisation (Huang &
Belongie 2017). Feature maps are ``(B, C, H, W)``; images are ``(B, 3, H, W)`` in [0, 1].
Distances are float64.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

# ITU-R BT.601 luma and the NTSC YIQ matrix (the one scikit-image's rgb2yiq uses).
YIQ = torch.tensor([[0.299, 0.587, 0.114],
                    [0.59590059, -0.27455667, -0.32134392],
                    [0.21153661, -0.52273617, 0.31119955]], dtype=torch.float64)


def _maps(f: torch.Tensor, what: str) -> torch.Tensor:
    if f.dim() != 4:
        raise ValueError(f"{what} needs feature maps (B, C, H, W), got shape {tuple(f.shape)}")
    return f


def gram(f: torch.Tensor) -> torch.Tensor:
    """Gram matrices ``F F^T / (H W)`` of feature maps ``(B, C, H, W)`` -> ``(B, C, C)``,
    in ``f``'s dtype (differentiable: the style loss is built on it). Normalised by the
    number of positions, so images of different sizes compare."""
    b, c, h, w = _maps(f, "gram").shape
    flat = f.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def _relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a - b||_F / ||b||_F`` per example (float64; 0 when both are 0)."""
    a, b = a.double().flatten(1), b.double().flatten(1)
    num, den = (a - b).norm(dim=1), b.norm(dim=1)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.where(num > 0, torch.inf, 0.0))


def _layers(x: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
            layers: Sequence[str] | None, what: str) -> list[str]:
    names = list(layers) if layers is not None else [k for k in x if k in target]
    missing = [k for k in names if k not in x or k not in target]
    if not names or missing:
        raise ValueError(f"{what}: no common layer to compare" if not names else
                         f"{what}: layer(s) {', '.join(missing)} missing from one side")
    return names


def gram_distance(x: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], *,
                  layers: Sequence[str] | None = None) -> torch.Tensor:
    """Normalised style distance: the mean over ``layers`` of
    ``||G(x_l) - G(t_l)||_F / ||G(t_l)||_F`` (relative, so each layer counts alike whatever
    its scale; 0 = the same Gram statistics).

    Args:
        x, target: ``{layer: (B, C, H, W)}`` features of the images to score and of the
            style (``target``'s batch is 1 or ``B``); the sizes may differ.
        layers: the layers to use (default: every layer both have).
    Returns:
        ``(B,)`` float64.
    """
    names = _layers(x, target, layers, "gram_distance")
    d = [_relative(gram(_maps(x[k], "gram_distance")), gram(_maps(target[k], "gram_distance"))
                   .expand(len(x[k]), -1, -1)) for k in names]
    return torch.stack(d).mean(0)


def content_distance(x: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Relative content-feature distance ``||F_x - F_c||^2 / ||F_c||^2`` per example, for
    features of one layer ``(B, C, H, W)`` of the same shape (float64)."""
    if x.shape != content.shape:
        raise ValueError(f"content_distance: shapes differ: {tuple(x.shape)} vs {tuple(content.shape)}")
    return _relative(x, content).pow(2)


def _images(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{what} needs RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
    return x


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """RGB ``(B, 3, H, W)`` -> YIQ (Y = BT.601 luma), in ``x``'s floating dtype."""
    m = YIQ.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float64)
    return torch.einsum("ij,bjhw->bihw", m, _images(x, "rgb_to_yiq").to(m.dtype))


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YIQ ``(B, 3, H, W)`` -> RGB (the inverse of ``rgb_to_yiq``; not clipped)."""
    m = torch.linalg.inv(YIQ).to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float64)
    return torch.einsum("ij,bjhw->bihw", m, _images(x, "yiq_to_rgb").to(m.dtype))


def luminance(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of RGB images -> ``(B, 1, H, W)``."""
    return rgb_to_yiq(x)[:, :1]


def preserve_colour(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Gatys et al.'s colour preservation (2016, "luminance-only transfer"): the stylised
    image's luminance with the content's I and Q (chroma) channels, back in RGB, clipped
    to [0, 1]. Both ``(B, 3, H, W)`` of one size."""
    if stylised.shape != content.shape:
        raise ValueError(f"preserve_colour: shapes differ: {tuple(stylised.shape)} vs {tuple(content.shape)}")
    y = rgb_to_yiq(stylised)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], 1)).clamp(0, 1).to(stylised.dtype)


def ssim_luminance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM (``functional.ssim``) between the luminances of two RGB batches: content
    preservation that ignores colour, which style transfer is meant to change. ``(B,)``."""
    from .functional import ssim

    return ssim(luminance(x.double()), luminance(y.double()))


def colour_histogram_distance(x: torch.Tensor, target: torch.Tensor, *, bins: int = 8) -> torch.Tensor:
    """Hellinger distance between the joint RGB histograms (``bins`` per channel) of each
    image in ``x`` and of ``target`` (one image, or one per image of ``x``): 0 = the same
    colour distribution, 1 = no colour in common. ``(B,)`` float64."""
    def hist(im: torch.Tensor) -> torch.Tensor:
        q = (im.double().clamp(0, 1) * bins).long().clamp(max=bins - 1)  # (B, 3, H, W) bin per channel
        idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
        h = torch.zeros(len(im), bins ** 3, dtype=torch.float64)
        h.scatter_add_(1, idx.flatten(1), torch.ones_like(idx.flatten(1), dtype=torch.float64))
        return h / h.sum(1, keepdim=True)

    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins!r}")
    hx, ht = hist(_images(x, "colour_histogram_distance")), hist(_images(target, "colour_histogram_distance"))
    bc = (hx * ht.expand_as(hx)).sqrt().sum(1)  # Bhattacharyya coefficient
    return (1 - bc).clamp_min(0).sqrt()


def colour_w1(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the three channels of the 1-D Wasserstein-1 distance between the pixel
    values of each image in ``x`` and of ``target`` (one image, or one per image), in
    intensity units ([0, 1] images: 0..1). ``(B,)`` float64."""
    _images(x, "colour_w1"), _images(target, "colour_w1")
    if len(target) not in (1, len(x)):
        raise ValueError(f"colour_w1: target holds {len(target)} images for {len(x)}")
    out = []
    for i in range(len(x)):
        a = x[i].double().flatten(1).sort(1).values  # (3, N)
        b = target[i if len(target) > 1 else 0].double().flatten(1).sort(1).values
        na, nb = a.shape[1], b.shape[1]
        # W1 = integral over p of |F_a^-1(p) - F_b^-1(p)|: both quantile functions are steps,
        # constant between the merged breakpoints i/na and j/nb, so the integral is a sum
        ps = torch.cat([torch.arange(1, na + 1, dtype=torch.float64) / na,
                        torch.arange(1, nb + 1, dtype=torch.float64) / nb]).unique()
        widths = torch.diff(ps, prepend=ps.new_zeros(1))
        mid = ps - widths / 2
        qa = a[:, (mid * na).long().clamp(max=na - 1)]
        qb = b[:, (mid * nb).long().clamp(max=nb - 1)]
        out.append(((qa - qb).abs() * widths).sum(1).mean())
    return torch.stack(out)


def channel_stats(f: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over positions, each ``(B, C, 1, 1)``
    (the std as ``sqrt(var + eps)``, population variance)."""
    f = _maps(f, "channel_stats")
    mean = f.mean((2, 3), keepdim=True)
    return mean, (f.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation (Huang & Belongie 2017):
    ``std(s) * (c - mean(c)) / std(c) + mean(s)`` per channel, for content features
    ``(B, C, H, W)`` and style features ``(B or 1, C, h, w)``."""
    cm, cs = channel_stats(content, eps)
    sm, ss = channel_stats(style, eps)
    if sm.shape[1] != cm.shape[1]:
        raise ValueError(f"adain: {cm.shape[1]} content channels vs {sm.shape[1]} style channels")
    return ss * (content - cm) / cs + sm
