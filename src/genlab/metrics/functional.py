"""Pure metric functions (no state, no I/O)."""
from __future__ import annotations

import torch


def psnr(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per example, in dB.

    ``10 log10(data_range^2 / mse)`` with the MSE taken over all but the first dimension;
    identical inputs give ``inf``.

    Args:
        pred, target: ``(B, ...)`` tensors of the same shape.
        data_range: max minus min of the signal (1 for images in [0, 1]).
    Returns:
        ``(B,)`` float64.
    """
    if pred.shape != target.shape:
        raise ValueError(f"psnr: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """``(size, size)`` Gaussian weights summing to 1 (float64)."""
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-ax ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Structural similarity per image (Wang, Bovik, Sheikh & Simoncelli 2004).

    Local means, variances and covariance are Gaussian-weighted (11x11 window, sigma 1.5)
    and computed only where the window fits inside the image (the 'valid' region, as in
    Wang's reference code; scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=False, data_range=1)`` crops the same border). The SSIM map
    ``((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``,
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, is averaged over the region and the channels.
    Images smaller than the window use the largest odd window that fits.

    Args:
        x, y: ``(B, C, H, W)`` images.
        data_range: ``L``, the value range (1 for images in [0, 1]).
    Returns:
        ``(B,)`` float64 SSIM values (1 = identical).
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two image batches (B, C, H, W) of one shape, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    size = min(window, x.shape[2], x.shape[3])
    size -= 1 - size % 2  # odd
    c = x.shape[1]
    w = gaussian_window(size, sigma)[None, None].expand(c, 1, size, size)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, w, groups=c)  # valid region

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


# ----------------------------------------------------------------------------- ranking
import numpy as _np  # noqa: E402


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve, from the Mann-Whitney U statistic (Hanley & McNeil 1982).

    ``AUC = P(s+ > s-) + 0.5 P(s+ = s-)`` for a random positive and a random negative:
    with average ranks ``r`` of all scores (ties share the mean of their ranks),
    ``U = sum(r[positives]) - n+ (n+ + 1) / 2`` and ``AUC = U / (n+ n-)``. Matches
    ``sklearn.metrics.roc_auc_score``.

    Args:
        scores: ``(N,)`` scores, higher = more likely positive (tensor or array).
        labels: ``(N,)`` binary labels (0/1 or bool); 1 = positive.
    Returns:
        the AUC in ``[0, 1]`` (0.5 = chance).
    """
    s = _np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores,
                    dtype=_np.float64).reshape(-1)
    y = _np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if len(s) != len(y):
        raise ValueError(f"roc_auc: {len(s)} scores but {len(y)} labels")
    if _np.isnan(s).any():
        raise ValueError("roc_auc: scores contain NaN")
    if not _np.isin(y, (0, 1)).all():
        raise ValueError(f"roc_auc: labels must be 0/1 or bool, got values {_np.unique(y)[:5].tolist()}")
    pos = y.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc is undefined with only one class in labels "
                         f"({n_pos} positives, {n_neg} negatives)")
    order = _np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # average 1-based rank of each run of tied scores
    starts = _np.flatnonzero(_np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = _np.r_[starts[1:], len(s)]
    run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = _np.empty(len(s))
    ranks[order] = _np.repeat(run_rank, ends - starts)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# ----------------------------------------------------------------------------- generative
# Sample-quality metrics on judge features / class probabilities. They live in three
# private modules to keep each file short (distribution distances; nearest-neighbour
# metrics; mode counting and likelihood units) and are re-exported here: this module is
# the one public home of every metric function.
from ._distribution import (  # noqa: E402,F401
    fid, frechet_distance, gaussian_stats, inception_score, kid, mmd2_unbiased,
    polynomial_kernel,
)
from ._manifold import diversity, memorization, prdc  # noqa: E402,F401
from ._style import (  # noqa: E402,F401
    adain, channel_stats, colour_histogram_distance, colour_w1, content_distance, gram, gram_distance, luminance,
    preserve_colour, rgb_to_yiq, ssim_luminance, yiq_to_rgb,
)
from ._captions import (  # noqa: E402,F401
    attribute_accuracy, diversity_within, r_precision, r_precision_chance,
)
from ._modes import (  # noqa: E402,F401
    bits_per_dim, mode_coverage, nll_nats, toy_mode_metrics,
)

# Molecules (MOSES / GuacaMol, RDKit imported on first call): the math lives in
# metrics/_mol_*.py, the public functions and the aggregate in metrics/molecules.py.
from .molecules import (  # noqa: E402,F401
    fcd, filters, fragment_similarity, internal_diversity, kl_score, moses_metrics, novelty,
    property_distances, scaffold_similarity, snn, unique_at, validity,
)

__all__ = [
    "psnr", "roc_auc",
    "validity", "unique_at", "novelty", "internal_diversity", "fcd", "snn",
    "fragment_similarity", "scaffold_similarity", "filters", "property_distances", "kl_score",
    "moses_metrics",
    "fid", "frechet_distance", "gaussian_stats", "kid", "mmd2_unbiased", "polynomial_kernel",
    "inception_score", "prdc", "memorization", "diversity", "mode_coverage",
    "toy_mode_metrics", "nll_nats", "bits_per_dim",
    "attribute_accuracy", "r_precision", "r_precision_chance", "diversity_within",
    "gram", "gram_distance", "content_distance", "rgb_to_yiq", "yiq_to_rgb", "luminance", "preserve_colour",
    "ssim_luminance", "colour_histogram_distance", "colour_w1", "channel_stats", "adain",
]
