"""Set-level MOSES / GuacaMol scores from per-molecule features (see ``molecules.py``
for the definitions and the papers). ``Generated`` holds the features of a generated set's
valid molecules; ``scores`` computes the whole ``moses_metrics`` dict from it."""
from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

from . import _mol_features as MF
from . import _mol_similarity as MS
from ._mol_reference import KnownMolecules, ReferenceStats, first_unique


class Generated:
    """Features of a generated set: the valid molecules, in order, duplicates kept."""

    def __init__(self, cols: dict[str, list], n_total: int | None = None, chemnet_acts: np.ndarray | None = None):
        keep = [i for i, v in enumerate(cols["valid"]) if v]
        self.n_total = len(cols["valid"]) if n_total is None else n_total
        self.cols = {f: [c[i] for i in keep] for f, c in cols.items() if f != "valid"}
        self.n = len(keep)
        if chemnet_acts is not None:  # computed already (by each torchrun process for its rows)
            if len(chemnet_acts) != self.n:
                raise ValueError(f"Generated: {len(chemnet_acts)} ChemNet activation rows for {self.n} valid molecules")
            self._acts = chemnet_acts

    @classmethod
    def of(cls, smiles: Any, fields: Sequence[str], metric: str, n_jobs: int | None,
           progress: bool | None = None) -> "Generated":
        smiles = MF.check_smiles(smiles, "gen")
        g = cls(MF.featurize(smiles, fields, n_jobs=n_jobs, progress=progress))
        g.need(metric)
        return g

    def need(self, metric: str, at_least: int = 1) -> None:
        if self.n < at_least:
            raise ValueError(f"{metric}: {self.n} of the {self.n_total} generated SMILES are "
                             f"valid molecules (validity {self.n / max(self.n_total, 1):.3f}); "
                             f"{metric} needs at least {at_least} valid molecule"
                             f"{'s' if at_least > 1 else ''}")

    def counts(self, field: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.cols[field]:
            for key in (v if isinstance(v, list) else [v]):
                if key is not None:
                    out[key] = out.get(key, 0) + 1
        return out

    # -------------------------------------------------------------- set-level metrics
    def unique_at(self, k: int | None) -> float:
        canon = self.cols["canon"][:k] if k else self.cols["canon"]
        if k and self.n < k:
            warnings.warn(f"unique@{k}: only {self.n} valid molecules; computed on those",
                          stacklevel=3)
        return len(set(canon)) / len(canon)

    def novelty(self, known: KnownMolecules) -> float:
        distinct = sorted(set(self.cols["canon"]))
        return int(np.count_nonzero(~known.contains(distinct))) / len(distinct)

    def internal_diversity(self, powers: Sequence[int] = (1, 2),
                           device: str = "cpu") -> dict[int, float]:
        means = MS.similarity_power_means(MS.pack(self.cols["fp"]), powers, device=device)
        return {p: float(1.0 - np.mean(m ** (1.0 / p))) for p, m in means.items()}

    def snn(self, ref: ReferenceStats, device: str = "cpu") -> float:
        return float(np.mean(MS.nearest_similarity(MS.pack(self.cols["fp"]), ref.fps,
                                                   ref_order=ref.popcount_order(), device=device)))

    def fcd_stats(self, device: str = "cpu", batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        self.need("FCD", 2)
        if not hasattr(self, "_fcd"):
            acts = getattr(self, "_acts", None)
            if acts is None:
                acts = MS.chemnet_activations(self.cols["chemnet"], device=device, batch_size=batch_size)
            self._fcd = MS.gaussian(acts)
        return self._fcd

    def properties(self, ref: ReferenceStats) -> dict[str, float]:
        from scipy.stats import wasserstein_distance

        return {p: float(wasserstein_distance(ref.props[p], np.asarray(self.cols[p])))
                for p in MF.PROPERTIES}

    def kl(self, ref: ReferenceStats, device: str = "cpu") -> tuple[float, dict[str, float]]:
        if ref.kl_desc is None:
            raise ValueError(f"KL score: the reference {ref.name!r} was built without its KL "
                             "subset (kl_size=0)")
        keep = first_unique(self.cols["canon_nostereo"])
        desc = np.array([self.cols["kl"][i] for i in keep], np.float64)
        desc = desc.reshape(-1, len(MF.KL_DESCRIPTORS))
        sim = MS.max_other_similarity(MS.pack([self.cols["fp4096"][i] for i in keep]), device=device)
        parts = MS.kl_divergences(ref.kl_desc, ref.kl_sim, desc, sim, MF.KL_DESCRIPTORS)
        return float(np.mean([math.exp(-v) for v in parts.values()])), parts


# ----------------------------------------------------------------------------- the MOSES set
def higher_is_better(k: Sequence[int] = (1000, 10000)) -> dict[str, bool]:
    """Direction of every ``moses_metrics`` result."""
    out = {"valid": True, **{f"unique@{n}": True for n in k}}
    for suffix in ("Test", "TestSF"):
        out.update({f"FCD/{suffix}": False, f"SNN/{suffix}": True, f"Frag/{suffix}": True,
                    f"Scaf/{suffix}": True})
    out.update({"IntDiv": True, "IntDiv2": True, "Filters": True, "logP": False, "SA": False,
                "QED": False, "weight": False, "Novelty": True, "KL": True})
    return out


def nan_on_small(name: str, fn, *args) -> float:
    """Metrics undefined on tiny sets (FCD below 2 molecules, KL of constant descriptors)
    give NaN with a warning in the aggregate, as MOSES does, instead of failing it."""
    try:
        return fn(*args)
    except ValueError as e:
        warnings.warn(f"{name} is NaN: {e}", stacklevel=3)
        return math.nan


def scores(g: Generated, refs: dict[str, ReferenceStats], known: KnownMolecules | None,
           *, k: Sequence[int], kl: bool, device: str, batch_size: int) -> dict[str, float]:
    out: dict[str, float] = {"valid": g.n / g.n_total}
    g.need("moses_metrics")
    for n in k:
        out[f"unique@{n}"] = g.unique_at(n)
    for suffix, ref in refs.items():
        def _fcd(ref=ref):
            mu, sigma = g.fcd_stats(device, batch_size)
            return MS.fcd_from_stats(mu, sigma, ref.fcd_mu, ref.fcd_sigma)
        out[f"FCD/{suffix}"] = (nan_on_small(f"FCD/{suffix}", _fcd) if ref.fcd_mu is not None
                                else math.nan)
        out[f"SNN/{suffix}"] = g.snn(ref, device)
        out[f"Frag/{suffix}"] = MS.cosine_counts(ref.frag, g.counts("frags"))
        out[f"Scaf/{suffix}"] = MS.cosine_counts(ref.scaf, g.counts("scaf"))
    div = g.internal_diversity((1, 2), device)
    out["IntDiv"], out["IntDiv2"] = div[1], div[2]
    out["Filters"] = float(np.mean(g.cols["filters"]))
    out.update(g.properties(refs["Test"]))
    if known is not None:
        out["Novelty"] = g.novelty(known)
    if kl:
        out["KL"] = nan_on_small("KL", lambda: g.kl(refs["Test"], device)[0])
    return out
