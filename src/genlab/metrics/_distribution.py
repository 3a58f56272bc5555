"""Distribution distances on judge outputs: FID, KID and the Inception Score.

Every function takes feature tensors ``(B, F)`` (or class probabilities ``(B, K)``) that a
judge network produced, computes in float64 and returns Python floats. The stateful
versions live in ``metrics/classes.py``; ``metrics/functional.py`` re-exports these.

* FID — Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
  Local Nash Equilibrium": the Fréchet distance between Gaussians fitted to two sets.
* KID — Binkowski et al. 2018, "Demystifying MMD GANs": the unbiased MMD^2 estimate with
  the cubic polynomial kernel, averaged over random subsets.
* IS — Salimans et al. 2016, "Improved Techniques for Training GANs".
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

_F64 = torch.float64


def as_features(x: Any, name: str = "features", *, min_rows: int = 1) -> torch.Tensor:
    """``x`` (tensor or array) as a float64 CPU tensor ``(B, F)``, checked.

    Raises:
        ValueError: not 2-D, fewer than ``min_rows`` rows, or NaN/inf values (with the
            first offending rows named).
    """
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.to(device="cpu", dtype=_F64)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D (B, F) tensor, got shape {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name}: needs at least {min_rows} rows (samples), got {t.shape[0]}")
    if t.shape[1] == 0:
        raise ValueError(f"{name}: has zero feature columns")
    # NaN/inf in a column makes its float64 sum non-finite: one cheap pass; the full
    # elementwise check only runs to name the rows
    if not torch.isfinite(t.sum(0)).all():
        bad = (~torch.isfinite(t)).any(1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} contains NaN or infinite values (first rows: {bad})")
    return t


def _is_copy(t: torch.Tensor, src: Any) -> bool:
    """Whether ``as_features`` made ``t`` a new tensor (safe to modify in place)."""
    if isinstance(src, torch.Tensor):
        return t.data_ptr() != src.data_ptr()
    if isinstance(src, np.ndarray):
        return not np.shares_memory(t.numpy(), src)
    return True  # built from a list or the like


def _same_width(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{what}: real and fake features differ in width "
                         f"({a.shape[1]} vs {b.shape[1]})")


# ----------------------------------------------------------------------------- FID
def _panels(f: int) -> list[int]:
    """Column edges of the panels ``gram_upper_`` splits ``F`` features into: 4 panels from
    256 features, 2 from 64, else 1 (narrow panels make slow matrix products)."""
    k = 4 if f >= 256 else 2 if f >= 64 else 1
    return [f * i // k for i in range(k + 1)]


def gram_upper_(acc: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``acc += x^T x`` on and above the diagonal panels only; ``mirror_`` completes it.

    The Gram matrix is symmetric, so with ``x`` cut into 4 column panels ``x_i`` only the
    products ``x_i^T [x_i .. x_k]`` are needed: 10 of 16 blocks (62.5% of the flops of
    ``x.T @ x``), each one accumulated in place by one ``addmm_``. The same input gives
    bit-identical sums (fixed panels, fixed order).
    """
    e = _panels(x.shape[1])
    for lo, hi in zip(e, e[1:]):
        acc[lo:hi, lo:].addmm_(x[:, lo:hi].T, x[:, lo:])
    return acc


def mirror_(acc: torch.Tensor) -> torch.Tensor:
    """Complete a ``gram_upper_`` sum: the blocks below the diagonal panels are copied from
    above, the diagonal blocks averaged with their transposes (exactly symmetric result)."""
    e = _panels(acc.shape[0])
    for lo, hi in zip(e, e[1:]):
        acc[hi:, lo:hi] = acc[lo:hi, hi:].T
        d = acc[lo:hi, lo:hi]
        d.copy_((d + d.T) / 2)
    return acc


def _moments(x: torch.Tensor, *, inplace: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance of a checked float64 ``(B, F)``; ``inplace`` centres
    ``x`` itself (only for a private copy)."""
    mu = x.mean(0)
    xc = x.sub_(mu) if inplace else x - mu  # centring first: no cancellation in the Gram
    gram = mirror_(gram_upper_(torch.zeros(x.shape[1], x.shape[1], dtype=x.dtype), xc))
    return mu, gram.div_(x.shape[0] - 1)


def gaussian_stats(features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (divisor ``B - 1``) of a feature set, in float64.

    Args:
        features: ``(B, F)`` with ``B >= 2``.
    Returns:
        ``mu`` ``(F,)`` and ``sigma`` ``(F, F)``.
    """
    return _moments(as_features(features, min_rows=2))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet (2-Wasserstein^2) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})``. The last trace is taken
    through symmetric matrices only: with any factor ``S1 = W W^T``, ``W^T S2 W`` is similar
    to ``S1 S2`` (``W^T S2 W = W^{-1} (S1 S2) W``, or through ``S1^{1/2} S2 S1^{1/2}`` when
    ``W`` is singular), so ``tr((S1 S2)^{1/2}) = sum(sqrt(eigvalsh(W^T S2 W)))`` (eigenvalues
    clamped to >= 0). ``W`` is the Cholesky factor of ``S1`` (or of ``S2``, the roles
    swapped) — backward stable whenever it completes; when neither is numerically positive
    definite (fewer samples than features) it is ``V diag(sqrt(l))`` from ``eigh(S1)``, tiny
    negative ``l`` clamped to 0. A Cholesky and one symmetric eigen-solve are several times
    faster than the general ``eig`` (or ``sqrtm``) of ``S1 S2`` and never produce complex
    parts. Identical statistics give exactly 0; the result is clamped to >= 0.

    Args:
        mu1, mu2: ``(F,)`` means.
        sigma1, sigma2: ``(F, F)`` symmetric positive semi-definite covariances.
    Returns:
        the squared distance (float, >= 0).
    """
    mu1, mu2 = (torch.as_tensor(m).to("cpu", _F64).reshape(-1) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s).to("cpu", _F64) for s in (sigma1, sigma2))
    f = mu1.numel()
    if mu2.numel() != f or s1.shape != (f, f) or s2.shape != (f, f):
        raise ValueError(f"frechet_distance: shapes do not match: mu {f} / {mu2.numel()}, "
                         f"sigma {tuple(s1.shape)} / {tuple(s2.shape)}")
    for t, n in ((mu1, "mu1"), (mu2, "mu2"), (s1, "sigma1"), (s2, "sigma2")):
        if not torch.isfinite(t).all():
            raise ValueError(f"frechet_distance: {n} contains NaN or infinite values")
    if torch.equal(mu1, mu2) and torch.equal(s1, s2):
        return 0.0
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    m = _similar_symmetric(s1, s2)
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    d = diff @ diff + s1.diagonal().sum() + s2.diagonal().sum() - 2 * tr_sqrt
    return max(float(d), 0.0)


def _similar_symmetric(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """``W^T S2 W`` with ``S1 = W W^T`` (see ``frechet_distance``): symmetric, PSD, with the
    eigenvalues of ``S1 S2``."""
    for a, b in ((s1, s2), (s2, s1)):  # tr sqrt(S1 S2) = tr sqrt(S2 S1)
        w, info = torch.linalg.cholesky_ex(a)
        if int(info) == 0:
            return w.T @ b @ w
    evals, evecs = torch.linalg.eigh(s1)
    w = evecs * evals.clamp_min(0).sqrt()  # V diag(sqrt(l))           (F, F)
    return w.T @ s2 @ w


def fid(real: Any, fake: Any) -> float:
    """Fréchet Inception Distance between two feature sets (Heusel et al. 2017).

    Fits a Gaussian (mean, unbiased covariance) to each set and returns their
    ``frechet_distance``. The name is historical: the features come from whatever judge
    produced them (Inception-v3 pool3 in the paper); report the feature space with it.

    Args:
        real, fake: ``(B1, F)`` and ``(B2, F)`` features, at least 2 rows each.
    Returns:
        FID (float, >= 0; lower is better).
    Raises:
        ValueError: fewer than 2 samples in a set, NaN/inf, mismatched widths.
    """
    r = as_features(real, "fid: real features", min_rows=2)
    g = as_features(fake, "fid: fake features", min_rows=2)
    _same_width(r, g, "fid")
    return frechet_distance(*_moments(r, inplace=_is_copy(r, real)),
                            *_moments(g, inplace=_is_copy(g, fake)))


# ----------------------------------------------------------------------------- KID
def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, *, degree: int = 3,
                      gamma: float | None = None, coef: float = 1.0) -> torch.Tensor:
    """``k(x, y) = (gamma x.y + coef)^degree`` with ``gamma = 1 / F`` by default.

    Args:
        x, y: ``(M, F)``, ``(N, F)``.
    Returns:
        ``(M, N)`` kernel matrix.
    """
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * g + coef) ** degree


def mmd2_unbiased(x: Any, y: Any, **kernel: Any) -> float:
    """Unbiased estimate of MMD^2 between the distributions of ``x`` and ``y``.

    ``sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(n(n-1)) - 2 sum k(x_i,y_j)/(mn)``
    (Gretton et al. 2012, eq. 3) with the ``polynomial_kernel``. Can be slightly
    negative when the distributions agree.

    Args:
        x, y: ``(M, F)``, ``(N, F)``, at least 2 rows each.
        **kernel: ``degree``, ``gamma``, ``coef`` for ``polynomial_kernel``.
    """
    x = as_features(x, "mmd2: x", min_rows=2)
    y = as_features(y, "mmd2: y", min_rows=2)
    _same_width(x, y, "mmd2")
    m, n = x.shape[0], y.shape[0]
    kxx, kyy = polynomial_kernel(x, x, **kernel), polynomial_kernel(y, y, **kernel)
    kxy = polynomial_kernel(x, y, **kernel)
    sxx = kxx.sum() - kxx.diagonal().sum()
    syy = kyy.sum() - kyy.diagonal().sum()
    return float(sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * kxy.sum() / (m * n))


def kid(real: Any, fake: Any, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 on random subsets.

    Each of ``subsets`` rounds draws ``subset_size`` real and ``subset_size`` fake rows
    without replacement (independent ``randperm`` from a ``torch.Generator`` seeded with
    ``seed``) and computes ``mmd2_unbiased`` with ``k(x, y) = (x.y / F + 1)^3``. If
    ``subset_size`` exceeds the smaller set, it is reduced to ``min(n_real, n_fake)`` with
    a warning (rather than an error, so small evaluation sets still get a score).

    Args:
        real, fake: ``(B1, F)``, ``(B2, F)`` features, at least 2 rows each.
        subsets: number of subsets (the paper and torchmetrics use 100).
        subset_size: rows per subset (1000 in the paper).
        degree, gamma, coef: polynomial kernel (defaults = the paper's).
        seed: seed of the subset draws.
    Returns:
        ``(mean, std)`` over subsets; std is the population std (ddof 0, as torchmetrics).
    """
    r = as_features(real, "kid: real features", min_rows=2)
    g = as_features(fake, "kid: fake features", min_rows=2)
    _same_width(r, g, "kid")
    if not isinstance(subsets, int) or subsets < 1:
        raise ValueError(f"kid: subsets must be a positive integer, got {subsets!r}")
    if not isinstance(subset_size, int) or subset_size < 2:
        raise ValueError(f"kid: subset_size must be an integer >= 2, got {subset_size!r}")
    m = min(r.shape[0], g.shape[0])
    if subset_size > m:
        warnings.warn(f"kid: subset_size {subset_size} exceeds the smaller set "
                      f"({r.shape[0]} real, {g.shape[0]} fake); using {m}", stacklevel=2)
        subset_size = m
    gen = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(subsets):
        ri = torch.randperm(r.shape[0], generator=gen)[:subset_size]
        gi = torch.randperm(g.shape[0], generator=gen)[:subset_size]
        vals.append(mmd2_unbiased(r[ri], g[gi], degree=degree, gamma=gamma, coef=coef))
    v = np.asarray(vals)
    return float(v.mean()), float(v.std())


# ----------------------------------------------------------------------------- IS
def inception_score(probs: Any, *, splits: int = 10, seed: int | None = None,
                    from_logits: bool = False) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016).

    As in the paper's code, rows are cut into ``splits`` contiguous parts of sizes
    ``N // splits`` or one more (in the given order, or after a permutation seeded with
    ``seed``); each part's marginal ``p(y)`` is its mean prediction, and the score is
    computed per part. ``0 log 0 = 0``. IS is ``K`` for confident predictions spread evenly
    over ``K`` classes and 1 for a collapsed model.

    Args:
        probs: ``(N, K)`` class probabilities (rows summing to 1), or logits with
            ``from_logits=True`` (then a log-softmax is applied, as torchmetrics does).
        splits: number of parts (10 in the paper); ``1 <= splits <= N``.
        seed: shuffle the rows with this seed first; ``None`` keeps the given order.
        from_logits: treat ``probs`` as logits.
    Returns:
        ``(mean, std)`` over parts; std is the population std (ddof 0, ``np.std`` as in
        the paper's code; torchmetrics uses ddof 1).
    """
    p = as_features(probs, "inception_score: probs")
    n = p.shape[0]
    if not isinstance(splits, int) or not 1 <= splits <= n:
        raise ValueError(f"inception_score: splits must be an integer in [1, {n}], got {splits!r}")
    if from_logits:
        logp = torch.log_softmax(p, dim=1)
        p = logp.exp()
    else:
        if (p < 0).any() or ((p.sum(1) - 1).abs() > 1e-4).any():
            raise ValueError("inception_score: probs must be non-negative rows summing to 1 "
                             "(pass from_logits=True for logits)")
        p = p / p.sum(1, keepdim=True)
        logp = torch.where(p > 0, p.log(), torch.zeros_like(p))
    if seed is not None:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        p, logp = p[perm], logp[perm]
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        part, lpart = p[lo:hi], logp[lo:hi]
        marg = part.mean(0)
        log_marg = torch.where(marg > 0, marg.log(), torch.zeros_like(marg))
        kl = (part * (lpart - log_marg)).sum(1).mean()  # 0 log 0 terms vanish: part = 0
        scores.append(math.exp(float(kl)))
    s = np.asarray(scores)
    return float(s.mean()), float(s.std())
