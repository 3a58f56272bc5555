"""Nearest-neighbour metrics on feature sets: precision/recall/density/coverage,
memorisation and diversity.

* Precision and recall — Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric
  for Assessing Generative Models": each set's manifold is the union of balls around its
  points with radius the distance to the k-th nearest neighbour (k = 3).
* Density and coverage — Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models" (k = 5).

Distances are Euclidean in float64, compared squared (``|a|^2 + |b|^2 - 2 a.b``, clamped at
0) and computed in row chunks, so memory stays ``O(chunk * N)``. Balls are open
(``d < r``), as in the reference code of Naeem et al.; so for two identical sets without
duplicate points precision = recall = coverage = 1 and density = 1 exactly.
"""
from __future__ import annotations

from typing import Any

import torch

from ._distribution import _same_width, as_features

CHUNK = 1024


def _sq_dists(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(len(a), len(b))``, clamped at 0."""
    return ((a * a).sum(1, keepdim=True) + b_sq - 2 * (a @ b.T)).clamp_min_(0)


def _kth_column_radius(x: torch.Tensor, ks: tuple[int, ...]) -> list[torch.Tensor]:
    """For each column ``i`` of the self-distance matrix ``D[j, i] = |x_j - x_i|^2``, the
    ``(k + 1)``-th smallest value (the point itself is the first), for every ``k`` in ``ks``.

    Columns (not rows) so that the radius of point ``i`` is made of exactly the numbers
    later compared against it (``D_fake_real[j, i]``): for identical sets each ball then
    holds exactly its point and ``k - 1`` neighbours (no rounding ties at the k-th one).
    """
    kmax = max(ks)
    if x.shape[0] <= kmax:
        raise ValueError(f"k-NN radius: need more than k = {kmax} samples, got {x.shape[0]}")
    x_sq = (x * x).sum(1)[None, :]
    best = None  # running kmax + 1 smallest per column, sorted ascending   (kmax+1, N)
    for lo in range(0, x.shape[0], CHUNK):
        d = _sq_dists(x[lo:lo + CHUNK], x, x_sq)
        cand = d if best is None else torch.cat([best, d])
        best = cand.topk(min(kmax + 1, cand.shape[0]), dim=0, largest=False).values
    return [best[k] for k in ks]


def _kth_row_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``(k + 1)``-th smallest of each row of ``|x_j - x_i|^2`` (self included)."""
    if x.shape[0] <= k:
        raise ValueError(f"k-NN radius: need more than k = {k} samples, got {x.shape[0]}")
    x_sq = (x * x).sum(1)[None, :]
    return torch.cat([_sq_dists(x[lo:lo + CHUNK], x, x_sq).topk(k + 1, dim=1, largest=False)
                      .values[:, k] for lo in range(0, x.shape[0], CHUNK)])


def prdc(real: Any, fake: Any, *, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019) and density, coverage (Naeem et al. 2020).

    With ``r_k(x)`` the distance from ``x`` to its k-th nearest neighbour in its own set
    and ``B(x, r)`` the open ball:

    * precision = share of fake points inside some ``B(real_i, r_kpr(real_i))``;
    * recall = share of real points inside some ``B(fake_j, r_kpr(fake_j))``;
    * density = ``1/(k_dc M) sum_j #{i: fake_j in B(real_i, r_kdc(real_i))}`` (can exceed 1);
    * coverage = share of real points whose ball ``B(real_i, r_kdc(real_i))`` holds a fake.

    Args:
        real: ``(N, F)`` real features, ``N > max(k_pr, k_dc)``.
        fake: ``(M, F)`` generated features, ``M > k_pr``.
        k_pr: k for precision/recall (3 in Kynkäänniemi et al.).
        k_dc: k for density/coverage (5 in Naeem et al.).
    Returns:
        ``{"precision", "recall", "density", "coverage"}`` floats.
    """
    r = as_features(real, "prdc: real features", min_rows=2)
    g = as_features(fake, "prdc: fake features", min_rows=2)
    _same_width(r, g, "prdc")
    for k, name in ((k_pr, "k_pr"), (k_dc, "k_dc")):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"prdc: {name} must be a positive integer, got {k!r}")
    r_pr, r_dc = _kth_column_radius(r, (k_pr, k_dc))  # (N,) squared radii
    g_pr = _kth_row_radius(g, k_pr)                    # (M,)
    r_sq = (r * r).sum(1)[None, :]
    n_prec, n_dens = 0, 0
    recalled = torch.zeros(r.shape[0], dtype=torch.bool)
    nearest = torch.full((r.shape[0],), float("inf"), dtype=torch.float64)
    for lo in range(0, g.shape[0], CHUNK):
        d = _sq_dists(g[lo:lo + CHUNK], r, r_sq)  # (c, N): fake rows, real columns
        n_prec += int((d < r_pr).any(1).sum())
        n_dens += int((d < r_dc).sum())
        recalled |= (d < g_pr[lo:lo + CHUNK, None]).any(0)
        nearest = torch.minimum(nearest, d.min(0).values)
    m = g.shape[0]
    return {"precision": n_prec / m, "recall": float(recalled.double().mean()),
            "density": n_dens / (k_dc * m), "coverage": float((nearest < r_dc).double().mean())}


def _nearest(q: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from each row of ``q`` to its nearest row of ``ref``, and that row's index."""
    ref_sq = (ref * ref).sum(1)[None, :]
    idx = [_sq_dists(q[lo:lo + CHUNK], ref, ref_sq).argmin(1)
           for lo in range(0, q.shape[0], CHUNK)]
    idx = torch.cat(idx)
    # the Gram route loses digits for near-duplicates (|a|^2 + |b|^2 - 2ab ~ 0): the
    # distance to the chosen neighbour is recomputed from the difference
    return (q - ref[idx]).norm(dim=1), idx


def memorization(fake: Any, train: Any, test: Any, *, quantile: float = 0.05,
                 ratio: float | None = None, n_closest: int = 8) -> dict[str, Any]:
    """How close generated samples come to training examples, against a held-out yardstick.

    ``d_fake[j]`` is the distance from fake ``j`` to its nearest training example and
    ``d_test[i]`` that from held-out test example ``i`` to its nearest training example —
    what "novel but from the same distribution" looks like. A fake is a near-copy if
    ``d_fake < threshold``, where ``threshold`` is the ``quantile`` of ``d_test`` (default
    0.05: closer to the training set than 95% of unseen real data are) or, if ``ratio`` is
    given, ``ratio * median(d_test)``. A model that does not memorise scores about
    ``baseline_share`` (the share of test examples under the same threshold, about
    ``quantile``); much more means copying. (In the spirit of the "data-copying" tests of
    Meehan et al. 2020, simplified to nearest-neighbour distances.)

    Args:
        fake: ``(M, F)`` generated features.
        train: ``(N, F)`` training features.
        test: ``(T, F)`` held-out features from the same distribution as ``train``.
        quantile: in (0, 1); ignored when ``ratio`` is set.
        ratio: threshold as a fraction of the median test-to-train distance.
        n_closest: how many of the closest (fake, train) pairs to return for display.
    Returns:
        ``near_copy_share``, ``baseline_share``, ``threshold``, ``median_ratio``
        (median of ``d_fake / median(d_test)``: ~1 for a model that generalises, -> 0 for
        one that copies), ``median_fake_distance``, ``median_test_distance`` and
        ``closest``: up to ``n_closest`` ``(fake_index, train_index, distance)`` tuples,
        closest first.
    """
    g = as_features(fake, "memorization: fake features")
    tr = as_features(train, "memorization: train features")
    te = as_features(test, "memorization: test features")
    _same_width(tr, g, "memorization")
    _same_width(tr, te, "memorization (test)")
    if ratio is None and not 0 < quantile < 1:
        raise ValueError(f"memorization: quantile must be in (0, 1), got {quantile}")
    if ratio is not None and ratio <= 0:
        raise ValueError(f"memorization: ratio must be > 0, got {ratio}")
    d_fake, idx = _nearest(g, tr)
    d_test, _ = _nearest(te, tr)
    med_test = float(d_test.median())
    thr = ratio * med_test if ratio is not None else float(torch.quantile(d_test, quantile))
    order = torch.argsort(d_fake, stable=True)[:n_closest]
    return {
        "near_copy_share": float((d_fake < thr).double().mean()),
        "baseline_share": float((d_test < thr).double().mean()),
        "threshold": thr,
        "median_ratio": float((d_fake / med_test).median()) if med_test > 0 else float("inf"),
        "median_fake_distance": float(d_fake.median()),
        "median_test_distance": med_test,
        "closest": [(int(j), int(idx[j]), float(d_fake[j])) for j in order],
    }


def diversity(features: Any, *, max_samples: int = 2000, seed: int = 0) -> float:
    """Mean pairwise Euclidean distance ``mean_{i != j} |x_i - x_j|`` in feature space.

    Above ``max_samples`` rows, a random subset of ``max_samples`` (``randperm`` seeded with
    ``seed``) is used, keeping the cost ``O(max_samples^2 F)``.

    Args:
        features: ``(N, F)``, ``N >= 2``.
        max_samples: subset size cap.
        seed: seed of the subset.
    Returns:
        the mean distance (higher = more diverse).
    """
    x = as_features(features, "diversity: features", min_rows=2)
    if x.shape[0] > max_samples:
        if max_samples < 2:
            raise ValueError(f"diversity: max_samples must be >= 2, got {max_samples}")
        x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
              [:max_samples]]
    n = x.shape[0]
    x_sq = (x * x).sum(1)[None, :]
    total = 0.0
    for lo in range(0, n, CHUNK):
        d = _sq_dists(x[lo:lo + CHUNK], x, x_sq)
        rows = torch.arange(lo, min(lo + CHUNK, n))
        d[rows - lo, rows] = 0.0  # the diagonal is 0 exactly, not rounding noise
        total += float(d.sqrt().sum())
    return total / (n * (n - 1))
