"""Stateful metrics: feed batches with ``update(...)``, read ``compute()``, clear with
``reset()``.

Each class wraps a pure function of ``metrics/functional.py`` and

* takes ``feature_space`` (the judge whose features or probabilities it receives, e.g.
  ``"digits-cnn"``) and puts it in every ``compute()`` result, so no score travels without
  the space it was measured in;
* says ``higher_is_better`` as a dict ``{result key: bool}`` over the numeric results, since
  some classes return several scores pointing in different directions;
* gives results that do not depend on how the data was cut into batches: FID accumulates
  float64 sums over fixed blocks of ``FID.BLOCK`` rows (bit-identical for any chunking),
  the others keep the rows (float64, CPU) and compute once.

FID and KID follow torchmetrics' calling convention ``update(features, real: bool)``.

Under torchrun each process updates a metric with its own share of the data; ``sync()``
then reduces the states over the processes (as torchmetrics' ``dist_reduce_fx``): rows are
concatenated in rank order ("cat"), FID's moments are summed after rebasing every process's
sums on rank 0's shift ("sum"). ``compute()`` afterwards gives every process the score of
all the data; without a process group ``sync()`` does nothing.
"""
from __future__ import annotations

from typing import Any

import torch

from . import _distribution as D
from . import _manifold as M
from . import _modes as Mo


class Metric:
    """Base class: ``feature_space``, ``reset``, result tagging."""

    higher_is_better: dict[str, bool] = {}

    def __init__(self, *, feature_space: str = "unknown"):
        self.feature_space = str(feature_space)
        self.reset()

    def reset(self) -> None:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def _result(self, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "feature_space": self.feature_space}

    def _states(self) -> list[Any]:
        """The state objects ``sync`` reduces (``_Rows`` / ``_Moments``)."""
        found = []
        for v in vars(self).values():
            for x in (v.values() if isinstance(v, dict) else [v]):
                if isinstance(x, (_Rows, _Moments)):
                    found.append(x)
        return found

    def sync(self) -> "Metric":
        """Reduce the state over the processes of a torchrun (see the module docstring);
        a no-op in one process. Every process must call it, in the same order."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        for state in self._states():
            state.sync()
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(feature_space={self.feature_space!r})"


class _Rows:
    """Rows appended batch by batch (float64, CPU), checked for width and finiteness."""

    def __init__(self, what: str):
        self.what, self.parts, self.width = what, [], None

    def add(self, x: Any) -> None:
        t = D.as_features(x, self.what)
        if self.width is not None and t.shape[1] != self.width:
            raise ValueError(f"{self.what}: width {t.shape[1]} differs from earlier batches "
                             f"({self.width})")
        self.width = t.shape[1]
        self.parts.append(t)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def sync(self) -> None:
        """Concatenate every process's rows, in rank order."""
        import torch.distributed as dist

        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, [p for p in self.parts])
        self.parts = [t for parts in gathered for t in parts]
        widths = {t.shape[1] for t in self.parts}
        if len(widths) > 1:
            raise ValueError(f"{self.what}: the processes passed rows of widths {sorted(widths)}")
        self.width = widths.pop() if widths else None

    def all(self) -> torch.Tensor:
        if not self.parts:
            raise ValueError(f"{self.what}: nothing was passed to update()")
        if len(self.parts) > 1:  # keep one tensor: later computes need no copy
            self.parts = [torch.cat(self.parts)]
        return self.parts[0]


class _Moments:
    """Streaming mean and covariance from float64 sums over fixed blocks of rows.

    Rows are shifted by the first row seen (against cancellation in ``sum x x^T - n mu mu^T``
    when features have a large mean) and summed block by block, each block exactly
    ``block`` rows in arrival order, so the sums — and FID — are bit-identical however the
    rows were batched.
    """

    def __init__(self, what: str, block: int):
        self.what, self.block = what, block
        self.n, self.shift, self.s, self.ss, self.pending = 0, None, None, None, []

    def add(self, x: Any) -> None:
        t = D.as_features(x, self.what)
        if self.shift is None:
            f = t.shape[1]
            self.shift = t[0].clone()
            self.s = torch.zeros(f, dtype=torch.float64)
            self.ss = torch.zeros(f, f, dtype=torch.float64)
        elif t.shape[1] != self.shift.numel():
            raise ValueError(f"{self.what}: width {t.shape[1]} differs from earlier batches "
                             f"({self.shift.numel()})")
        xc = t.sub_(self.shift) if D._is_copy(t, x) else t - self.shift
        buf = torch.cat([*self.pending, xc]) if self.pending else xc
        full = buf.shape[0] // self.block * self.block
        for lo in range(0, full, self.block):
            blk = buf[lo:lo + self.block]
            if blk.data_ptr() % 64:  # a fresh (64-byte aligned) copy: the same BLAS path
                blk = blk.clone()
            self._absorb(blk, self.s, self.ss)
        self.n += full
        self.pending = [buf[full:].clone()] if full < buf.shape[0] else []

    @staticmethod
    def _absorb(xc: torch.Tensor, s: torch.Tensor, ss: torch.Tensor) -> None:
        s += xc.sum(0)
        D.gram_upper_(ss, xc)  # the upper panels only; stats() mirrors them

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.count()
        if n < 2:
            raise ValueError(f"{self.what}: FID needs at least 2 samples per set, got {n}")
        s, ss = self.s, self.ss.clone()
        if self.pending:  # the partial last block, without consuming it
            s = s.clone()
            self._absorb(self.pending[0], s, ss)
        mean_c = s / n
        cov = D.mirror_(ss).sub_(n * torch.outer(mean_c, mean_c)).div_(n - 1)
        return self.shift + mean_c, cov

    def count(self) -> int:
        return self.n + (self.pending[0].shape[0] if self.pending else 0)

    def sync(self) -> None:
        """Sum every process's moments: each one's sums (its partial block folded in) are
        rebased from its own shift ``c`` to rank 0's ``c0`` (``x - c0 = (x - c) + d``,
        ``d = c - c0``) and added. Later rows are not accepted (the blocks are closed)."""
        import torch.distributed as dist

        s, ss = (self.s, self.ss) if self.s is None else (self.s.clone(), self.ss.clone())
        if self.pending:
            self._absorb(self.pending[0], s, ss)
        mine = None if self.shift is None else (self.count(), self.shift, s, D.mirror_(ss))
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, mine)
        parts = [g for g in gathered if g is not None]
        if not parts:
            return
        c0 = parts[0][1]
        n_tot, s_tot, ss_tot = 0, torch.zeros_like(parts[0][2]), torch.zeros_like(parts[0][3])
        for n, c, s_r, ss_r in parts:
            d = c - c0
            s_tot += s_r + n * d
            ss_tot += ss_r + torch.outer(s_r, d) + torch.outer(d, s_r) + n * torch.outer(d, d)
            n_tot += n
        self.n, self.shift, self.s, self.ss, self.pending = n_tot, c0.clone(), s_tot, ss_tot, []
        self.add = self._closed  # type: ignore[method-assign]

    def _closed(self, x: Any) -> None:
        raise ValueError(f"{self.what}: update() after sync(): reset() and feed the metric again")


class _TwoSets(Metric):
    """A metric over a real and a fake set; ``reset(keep_real=True)`` keeps the real one
    (evaluate many checkpoints against the same data)."""

    def update(self, features: Any, real: bool) -> None:
        """Add a batch ``(B, F)`` of real (``real=True``) or generated features."""
        (self._real if real else self._fake).add(features)

    def reset(self, *, keep_real: bool = False) -> None:
        if not keep_real or not hasattr(self, "_real"):
            self._real = self._new("real features")
        self._fake = self._new("fake features")

    def _new(self, what: str) -> Any:
        return _Rows(f"{type(self).__name__}: {what}")


class FID(_TwoSets):
    """Fréchet Inception Distance (Heusel et al. 2017) in any feature space, streaming.

    ``update(features (B, F), real: bool)``; ``compute()`` -> ``{"fid", "n_real", "n_fake",
    "feature_space"}``. Memory is ``O(F^2)`` whatever the number of samples.
    """

    higher_is_better = {"fid": False}
    BLOCK = 1024

    def _new(self, what: str) -> _Moments:
        return _Moments(f"FID: {what}", self.BLOCK)

    def compute(self) -> dict[str, Any]:
        mu1, s1 = self._real.stats()
        mu2, s2 = self._fake.stats()
        if mu1.numel() != mu2.numel():
            raise ValueError(f"FID: real and fake features differ in width ({mu1.numel()} vs "
                             f"{mu2.numel()})")
        return self._result({"fid": D.frechet_distance(mu1, s1, mu2, s2),
                             "n_real": self._real.count(), "n_fake": self._fake.count()})


class KID(_TwoSets):
    """Kernel Inception Distance (Binkowski et al. 2018); see ``functional.kid``.

    ``compute()`` -> ``{"kid_mean", "kid_std", "subset_size", "n_real", "n_fake",
    "feature_space"}``.
    """

    higher_is_better = {"kid_mean": False}

    def __init__(self, *, feature_space: str = "unknown", subsets: int = 100,
                 subset_size: int = 1000, degree: int = 3, gamma: float | None = None,
                 coef: float = 1.0, seed: int = 0):
        self.kw = dict(subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma,
                       coef=coef, seed=seed)
        super().__init__(feature_space=feature_space)

    def compute(self) -> dict[str, Any]:
        r, g = self._real.all(), self._fake.all()
        mean, std = D.kid(r, g, **self.kw)
        return self._result({"kid_mean": mean, "kid_std": std,
                             "subset_size": min(self.kw["subset_size"], len(r), len(g)),
                             "n_real": len(r), "n_fake": len(g)})


class PrecisionRecall(_TwoSets):
    """Precision/recall (Kynkäänniemi et al. 2019, ``k_pr``) and density/coverage (Naeem et
    al. 2020, ``k_dc``); see ``functional.prdc``.

    ``compute()`` -> ``{"precision", "recall", "density", "coverage", "n_real", "n_fake",
    "feature_space"}``.
    """

    higher_is_better = {"precision": True, "recall": True, "density": True, "coverage": True}

    def __init__(self, *, feature_space: str = "unknown", k_pr: int = 3, k_dc: int = 5):
        self.k_pr, self.k_dc = k_pr, k_dc
        super().__init__(feature_space=feature_space)

    def compute(self) -> dict[str, Any]:
        r, g = self._real.all(), self._fake.all()
        out = M.prdc(r, g, k_pr=self.k_pr, k_dc=self.k_dc)
        return self._result({**out, "n_real": len(r), "n_fake": len(g)})


class InceptionScore(Metric):
    """Inception Score (Salimans et al. 2016) of a judge's class probabilities.

    ``update(probs (B, K))`` (logits with ``from_logits=True``); ``compute()`` ->
    ``{"is_mean", "is_std", "splits", "n", "feature_space"}``. See
    ``functional.inception_score`` for the split convention.
    """

    higher_is_better = {"is_mean": True}

    def __init__(self, *, feature_space: str = "unknown", splits: int = 10,
                 seed: int | None = None, from_logits: bool = False):
        self.splits, self.seed, self.from_logits = splits, seed, from_logits
        super().__init__(feature_space=feature_space)

    def reset(self) -> None:
        self._probs = _Rows("InceptionScore: probs")

    def update(self, probs: Any) -> None:
        self._probs.add(probs)

    def compute(self) -> dict[str, Any]:
        p = self._probs.all()
        mean, std = D.inception_score(p, splits=self.splits, seed=self.seed,
                                      from_logits=self.from_logits)
        return self._result({"is_mean": mean, "is_std": std, "splits": self.splits,
                             "n": len(p)})


class ModeCoverage(Metric):
    """Classes found, KL to the real class histogram and confident share; see
    ``functional.mode_coverage``. Streams histograms (memory ``O(K)``).

    ``update(probs (B, K))`` for generated samples; ``update(labels_or_probs, real=True)``
    for the real data (``(B,)`` integer labels or ``(B, K)`` probabilities). Without real
    data the reference histogram is uniform.
    """

    higher_is_better = {"classes_found": True, "kl": False, "confident_share": True}

    def __init__(self, *, feature_space: str = "unknown", min_count: int | None = None,
                 confidence: float = 0.9):
        self.min_count, self.confidence = min_count, confidence
        super().__init__(feature_space=feature_space)

    def reset(self) -> None:
        self._counts, self._confident, self._real = None, 0, None

    @staticmethod
    def _add(total: torch.Tensor | None, counts: torch.Tensor) -> torch.Tensor:
        if total is None:
            return counts
        k = max(total.numel(), counts.numel())
        pad = lambda c: torch.nn.functional.pad(c, (0, k - c.numel()))  # noqa: E731
        return pad(total) + pad(counts)

    def update(self, x: Any, real: bool = False) -> None:
        if real:
            self._real = self._add(self._real, Mo._histogram(x, None, "ModeCoverage: real"))
            return
        counts, n_conf = Mo.mode_counts(x, confidence=self.confidence)
        if self._counts is not None and counts.numel() != self._counts.numel():
            raise ValueError(f"ModeCoverage: {counts.numel()} classes in this batch, "
                             f"{self._counts.numel()} before")
        self._counts = self._add(self._counts, counts)
        self._confident += n_conf

    def sync(self) -> "ModeCoverage":
        """Sum the histograms and the confident count over the processes of a torchrun."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (self._counts, self._confident, self._real))
        self._counts, self._confident, self._real = None, 0, None
        for counts, confident, real in gathered:
            if counts is not None:
                self._counts = self._add(self._counts, counts)
            if real is not None:
                self._real = self._add(self._real, real)
            self._confident += confident
        return self

    def compute(self) -> dict[str, Any]:
        if self._counts is None:
            raise ValueError("ModeCoverage: no generated probabilities were passed to update()")
        real = self._real
        if real is not None and real.numel() < self._counts.numel():
            real = self._add(real, torch.zeros(self._counts.numel(), dtype=torch.float64))
        out = Mo.coverage_from_counts(self._counts, self._confident, real,
                                      min_count=self.min_count)
        return self._result(out)


class Memorization(Metric):
    """Near-copies of training examples among generated samples; see
    ``functional.memorization``.

    ``update(features (B, F), which)`` with ``which`` in ``"fake"``, ``"train"``,
    ``"test"``; indices in ``closest`` count rows in the order they were passed.
    """

    higher_is_better = {"near_copy_share": False, "median_ratio": True}
    WHICH = ("fake", "train", "test")

    def __init__(self, *, feature_space: str = "unknown", quantile: float = 0.05,
                 ratio: float | None = None, n_closest: int = 8):
        self.kw = dict(quantile=quantile, ratio=ratio, n_closest=n_closest)
        super().__init__(feature_space=feature_space)

    def reset(self) -> None:
        self._sets = {w: _Rows(f"Memorization: {w} features") for w in self.WHICH}

    def update(self, features: Any, which: str) -> None:
        if which not in self._sets:
            raise ValueError(f"Memorization.update: which must be one of {self.WHICH}, "
                             f"got {which!r}")
        self._sets[which].add(features)

    def compute(self) -> dict[str, Any]:
        s = {w: self._sets[w].all() for w in self.WHICH}
        out = M.memorization(s["fake"], s["train"], s["test"], **self.kw)
        return self._result({**out, **{f"n_{w}": len(s[w]) for w in self.WHICH}})


class Diversity(Metric):
    """Mean pairwise feature distance of generated samples; see ``functional.diversity``.

    ``update(features (B, F))``; ``compute()`` -> ``{"diversity", "n", "feature_space"}``.
    """

    higher_is_better = {"diversity": True}

    def __init__(self, *, feature_space: str = "unknown", max_samples: int = 2000,
                 seed: int = 0):
        self.max_samples, self.seed = max_samples, seed
        super().__init__(feature_space=feature_space)

    def reset(self) -> None:
        self._rows = _Rows("Diversity: features")

    def update(self, features: Any) -> None:
        self._rows.add(features)

    def compute(self) -> dict[str, Any]:
        x = self._rows.all()
        return self._result({"diversity": M.diversity(x, max_samples=self.max_samples,
                                                      seed=self.seed), "n": len(x)})
