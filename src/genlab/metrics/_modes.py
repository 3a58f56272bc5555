"""Mode coverage (from a judge's class probabilities or known mixture centres) and
likelihood unit conversions.

* ``mode_coverage`` — the Stacked-MNIST protocol of Metz et al. 2017 (Unrolled GANs),
  VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): a classifier labels the
  samples; count the classes found and the KL divergence of the label histogram to the
  real data's.
* ``toy_mode_metrics`` — the 2-D ring / grid protocol of VEEGAN and PacGAN.
* ``nll_nats`` / ``bits_per_dim`` — averages of per-example log-likelihoods.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ._distribution import as_features


def _histogram(x: Any, num_classes: int | None, what: str) -> torch.Tensor:
    """Class counts (float64) from ``(N,)`` integer labels or ``(N, K)`` probabilities
    (argmax)."""
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    if t.dim() == 2:
        k = t.shape[1] if num_classes is None else num_classes
        labels = as_features(t, what).argmax(1)
    elif t.dim() == 1 and not t.is_floating_point():
        labels = t.long()
        k = int(labels.max()) + 1 if num_classes is None else num_classes
    else:
        raise ValueError(f"{what}: expected (N,) integer labels or (N, K) probabilities, got "
                         f"{tuple(t.shape)} {t.dtype}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"{what}: labels must lie in [0, {k}), got [{int(labels.min())}, "
                         f"{int(labels.max())}]")
    return torch.bincount(labels, minlength=k).to(torch.float64)


def mode_counts(probs: Any, *, confidence: float = 0.9) -> tuple[torch.Tensor, int]:
    """Per-class counts of argmax predictions and the number of confident rows.

    Args:
        probs: ``(N, K)`` class probabilities of generated samples.
        confidence: a row is confident if its max probability is ``>= confidence``.
    Returns:
        ``(counts (K,) float64, n_confident)``.
    """
    p = as_features(probs, "mode_coverage: probs")
    return torch.bincount(p.argmax(1), minlength=p.shape[1]).to(torch.float64), \
        int((p.max(1).values >= confidence).sum())


def coverage_from_counts(counts: torch.Tensor, n_confident: int,
                         real_counts: torch.Tensor | None = None, *,
                         min_count: int | None = None, eps: float = 1e-12) -> dict[str, Any]:
    """``mode_coverage`` from accumulated histograms (what the metric class calls)."""
    k = counts.numel()
    n = float(counts.sum())
    if n == 0:
        raise ValueError("mode_coverage: no generated samples")
    if real_counts is None:
        q = torch.full((k,), 1.0 / k, dtype=torch.float64)
    else:
        if real_counts.numel() != k:
            raise ValueError(f"mode_coverage: {k} classes in the generated probabilities but "
                             f"{real_counts.numel()} in the real histogram")
        q = real_counts / real_counts.sum()
    if min_count is None:
        min_count = max(1, int(0.01 * n / k))
    p = counts / n
    q = (q + eps) / (1 + k * eps)  # a class the real data lacks gives a large, finite KL
    kl = float(torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p)).sum())
    return {"classes_found": int((counts >= min_count).sum()), "num_classes": k,
            "min_count": min_count, "kl": max(kl, 0.0), "confident_share": n_confident / n,
            "counts": counts.long().tolist()}


def mode_coverage(probs: Any, real: Any = None, *, min_count: int | None = None,
                  confidence: float = 0.9) -> dict[str, Any]:
    """Mode coverage of generated samples from a judge classifier's predictions.

    A class is *found* if at least ``min_count`` samples are predicted (argmax) as it;
    the default is ``max(1, floor(1% of N / K))``, 1% of the count a uniform model would
    give each class. ``kl`` is ``KL(p_fake || p_real)`` between the predicted-label
    histogram and the real data's (Metz et al. 2017; VEEGAN), in nats, with the real
    histogram smoothed by 1e-12 so missing real classes give a large finite value.

    Args:
        probs: ``(N, K)`` class probabilities of generated samples.
        real: the real data's classes, as ``(N_r,)`` integer labels or ``(N_r, K)``
            probabilities (argmax taken); ``None`` = uniform over ``K`` classes.
        min_count: samples needed to find a class (see above).
        confidence: threshold on the max probability for ``confident_share``.
    Returns:
        ``classes_found``, ``num_classes``, ``min_count``, ``kl``, ``confident_share`` (share
        of samples whose max probability is ``>= confidence``; 0.9 by default) and
        ``counts`` (predicted-label histogram).
    """
    counts, n_conf = mode_counts(probs, confidence=confidence)
    real_counts = None if real is None else _histogram(real, counts.numel(),
                                                       "mode_coverage: real")
    return coverage_from_counts(counts, n_conf, real_counts, min_count=min_count)


def toy_mode_metrics(samples: Any, centers: Any = "ring8", *, std: float | None = None,
                     n_std: float = 3.0, min_count: int = 1) -> dict[str, Any]:
    """Modes covered and sample quality on a 2-D Gaussian-mixture toy (VEEGAN, PacGAN).

    Each sample is assigned to its nearest centre; it is *high quality* if it lies within
    ``n_std`` standard deviations of it (``|x - c| < n_std * std``, strict as in PacGAN's
    code; VEEGAN and PacGAN use 3). A mode is *covered* if at least ``min_count`` high
    quality samples are assigned to it: VEEGAN counts "the number of mixture components
    whose mean is nearest to at least one high quality sample" and PacGAN's code counts
    modes with a non-zero count, i.e. ``min_count = 1``; both evaluate 2500 samples. For
    exact samples of the mixture, the high-quality share is ``1 - exp(-n_std^2 / 2)``
    (0.989 for 3 std in 2-D).

    Args:
        samples: ``(N, D)`` generated points (D = 2 for the standard toys).
        centers: ``(M, D)`` mode centres, or ``"ring8"`` / ``"grid25"`` for the default
            constants of ``genlab.data.toy`` (whose ``std`` is then the default).
        std: the per-mode standard deviation (required with explicit centres).
        n_std: quality radius in standard deviations.
        min_count: high quality samples a mode needs to count as covered.
    Returns:
        ``modes_covered``, ``num_modes``, ``high_quality_share`` and ``counts`` (high
        quality samples per mode).
    """
    if isinstance(centers, str):
        from ..data import toy

        centers, default_std = toy.centers(centers)
        std = default_std if std is None else std
    if std is None or std <= 0:
        raise ValueError(f"toy_mode_metrics: std must be a positive number, got {std!r}")
    x = as_features(samples, "toy_mode_metrics: samples")
    c = as_features(centers, "toy_mode_metrics: centers")
    if x.shape[1] != c.shape[1]:
        raise ValueError(f"toy_mode_metrics: samples have {x.shape[1]} dims, centres "
                         f"{c.shape[1]}")
    dist, nearest = torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist").min(1)
    good = dist < n_std * std
    counts = torch.bincount(nearest[good], minlength=c.shape[0])
    return {"modes_covered": int((counts >= min_count).sum()), "num_modes": c.shape[0],
            "high_quality_share": float(good.double().mean()), "counts": counts.tolist()}


def nll_nats(log_probs: Any) -> float:
    """Mean negative log-likelihood in nats per example: ``-mean(log p(x))``.

    Args:
        log_probs: ``(N,)`` per-example log-likelihoods (natural log) of whole examples.
    """
    lp = torch.as_tensor(log_probs).detach().cpu().to(torch.float64).reshape(-1)
    if lp.numel() == 0:
        raise ValueError("nll_nats: no log-probabilities given")
    if torch.isnan(lp).any() or torch.isposinf(lp).any():
        raise ValueError("nll_nats: log-probabilities contain NaN or +inf")
    return float(-lp.mean())


def bits_per_dim(log_probs: Any, dim: int, *, levels: int | None = None) -> float:
    """Negative log-likelihood in bits per dimension: ``nll / (D ln 2)``.

    For discrete data (e.g. binarised images with a Bernoulli likelihood) ``log_probs`` are
    log-probabilities and this is the usual bits/dim. For a *density* on data scaled to
    [0, 1] from ``levels`` discrete values (256 for 8-bit images, after uniform
    dequantisation), pass ``levels``: the density of the unscaled data ``[0, levels)`` is
    ``p(x) / levels^D``, so ``D ln(levels)`` is added to the NLL — i.e. ``log2(levels)``
    (8 for 8-bit) bits per dimension — which makes it comparable to the published
    bits/dim of PixelCNN, Glow and friends. Nothing else is added or assumed.

    Args:
        log_probs: ``(N,)`` per-example log-likelihoods in nats.
        dim: ``D``, the number of dimensions of one example (e.g. 784 for 28x28).
        levels: discrete levels per dimension of the original data, for densities on
            rescaled data; ``None`` for discrete likelihoods.
    Returns:
        bits per dimension (lower is better).
    """
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"bits_per_dim: dim must be a positive integer, got {dim!r}")
    nll = nll_nats(log_probs)
    if levels is not None:
        if levels < 2:
            raise ValueError(f"bits_per_dim: levels must be >= 2, got {levels}")
        nll += dim * math.log(levels)
    return nll / (dim * math.log(2))
