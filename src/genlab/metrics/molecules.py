"""Molecule generation metrics: the MOSES set and GuacaMol's KL score, on RDKit.

MOSES — Polykovskiy et al. 2020, "Molecular Sets (MOSES): A Benchmarking Platform for
Molecular Generation Models", Front. Pharmacol. 11:565644. GuacaMol — Brown et al. 2019,
"GuacaMol: Benchmarking Models for de Novo Molecular Design", J. Chem. Inf. Model.

Definitions (as the MOSES reference code computes them, which produced the published
tables; G = the valid generated molecules, duplicates kept, R = the reference set):

* ``valid`` — fraction of SMILES that RDKit parses (an empty string is invalid);
* ``unique@k`` — distinct canonical SMILES among the first k valid molecules / their count;
* ``Novelty`` — fraction of the distinct valid molecules absent from the training set;
* ``IntDiv_p`` — ``1 - mean_j (mean_i T(g_i, g_j)^p)^(1/p)`` over all pairs of G (self
  pairs included), T = Tanimoto on Morgan radius-2 1024-bit fingerprints. (The paper
  writes ``1 - (mean_ij T^p)^(1/p)``; the code, and so every published number, takes the
  root per molecule first. For p = 1 they agree.)
* ``SNN`` — ``mean_g max_r T(g, r)``;
* ``Frag`` / ``Scaf`` — cosine similarity of BRICS-fragment / Bemis-Murcko-scaffold (>= 2
  rings) count vectors of G and R (NaN when either has none);
* ``FCD`` — Fréchet ChemNet Distance (Preuer et al. 2018);
* ``Filters`` — fraction of G passing MOSES's filters (MCF, PAINS, atoms, charges, rings);
* ``logP``, ``SA``, ``QED``, ``weight`` — 1-D Wasserstein distances between the property
  values of G and R (``scipy.stats.wasserstein_distance``);
* ``KL`` — GuacaMol: ``mean_d exp(-KL_d(R || G))`` over 9 descriptors and the internal
  nearest-neighbour ECFP4 similarity, on the distinct (non-isomeric) molecules of G against
  a seeded 10,000-molecule subset of R.

Every function accepts a list of SMILES; references are SMILES lists or precomputed
``ReferenceStats`` (``moses_reference("test")`` holds MOSES's published statistics), the
training set a SMILES list or ``KnownMolecules`` (``moses_train()``). ``n_jobs`` worker
processes featurise molecules (``None``: all cores).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import _mol_features as MF
from . import _mol_similarity as MS
from ._mol_reference import KnownMolecules, ReferenceStats, moses_reference, moses_train
from ._mol_scores import Generated, higher_is_better, scores

__all__ = [
    "logp", "sa", "qed", "weight", "validity", "unique_at", "novelty", "internal_diversity",
    "fcd", "snn", "fragment_similarity", "scaffold_similarity", "filters",
    "property_distances", "kl_score", "moses_metrics", "MoleculeMetrics", "ReferenceStats",
    "KnownMolecules", "moses_reference", "moses_train", "higher_is_better",
]

ALL_FIELDS = MF.FIELDS


# ----------------------------------------------------------------------------- properties
def _property(smiles: str | Sequence[str], name: str, n_jobs: int | None) -> float | np.ndarray:
    single = isinstance(smiles, str)
    items = MF.check_smiles([smiles] if single else smiles, name, allow_empty=True)
    col = MF.featurize(items, (name,), n_jobs=n_jobs)[name]
    out = np.array([math.nan if v is None else v for v in col], dtype=np.float64)
    return float(out[0]) if single else out


def logp(smiles: str | Sequence[str], *, n_jobs: int | None = 1) -> float | np.ndarray:
    """Crippen logP (Wildman & Crippen 1999; RDKit ``MolLogP``); NaN for invalid SMILES.
    A single SMILES gives a float, a list a float64 array."""
    return _property(smiles, "logP", n_jobs)


def sa(smiles: str | Sequence[str], *, n_jobs: int | None = 1) -> float | np.ndarray:
    """Synthetic accessibility, 1 (easy) to 10 (Ertl & Schuffenhauer 2009; RDKit Contrib)."""
    return _property(smiles, "SA", n_jobs)


def qed(smiles: str | Sequence[str], *, n_jobs: int | None = 1) -> float | np.ndarray:
    """Quantitative estimate of drug-likeness in [0, 1] (Bickerton et al. 2012; RDKit)."""
    return _property(smiles, "QED", n_jobs)


def weight(smiles: str | Sequence[str], *, n_jobs: int | None = 1) -> float | np.ndarray:
    """Average molecular weight in Da (RDKit ``Descriptors.MolWt``)."""
    return _property(smiles, "weight", n_jobs)


def _as_reference(ref: Any, parts: Sequence[str], n_jobs: int | None,
                  device: str = "cpu") -> ReferenceStats:
    if isinstance(ref, ReferenceStats):
        return ref
    smiles = MF.check_smiles(ref, "ref")
    return ReferenceStats.from_smiles(smiles, fcd="fcd" in parts,
                                      kl_size=10_000 if "kl" in parts else 0, n_jobs=n_jobs,
                                      device=device)


# ----------------------------------------------------------------------------- pure functions
def validity(smiles: Sequence[str], *, n_jobs: int | None = 1) -> float:
    """Fraction of SMILES RDKit reads as a molecule (MOSES ``valid``)."""
    smiles = MF.check_smiles(smiles, "gen")
    return float(np.mean(MF.featurize(smiles, ("canon",), n_jobs=n_jobs)["valid"]))


def unique_at(smiles: Sequence[str], k: int | None = None, *, n_jobs: int | None = 1) -> float:
    """Distinct canonical molecules among the first ``k`` valid ones, as a fraction
    (MOSES ``unique@k``; ``k=None``: all). Warns when there are fewer than ``k``."""
    return Generated.of(smiles, ("canon",), f"unique@{k}", n_jobs).unique_at(k)


def novelty(gen: Sequence[str], train: Sequence[str] | KnownMolecules, *,
            n_jobs: int | None = 1) -> float:
    """Fraction of the distinct valid generated molecules not in ``train`` (compared as
    canonical SMILES; a SMILES list is canonicalised here)."""
    g = Generated.of(gen, ("canon",), "novelty", n_jobs)
    known = (train if isinstance(train, KnownMolecules)
             else KnownMolecules.from_smiles(train, n_jobs=n_jobs))
    return g.novelty(known)


def internal_diversity(gen: Sequence[str], p: int = 1, *, n_jobs: int | None = 1,
                       device: str = "cpu") -> float:
    """MOSES ``IntDiv_p`` (``p=1``: IntDiv, ``p=2``: IntDiv2); 0 for copies of one molecule."""
    if p < 1:
        raise ValueError(f"internal_diversity: p must be >= 1, got {p}")
    return Generated.of(gen, ("fp",), "internal diversity", n_jobs).internal_diversity((p,), device)[p]


def snn(gen: Sequence[str], ref: Sequence[str] | ReferenceStats, *, n_jobs: int | None = 1,
        device: str = "cpu") -> float:
    """Mean Tanimoto similarity of each generated molecule to its nearest reference one."""
    g = Generated.of(gen, ("fp",), "SNN", n_jobs)
    return g.snn(_as_reference(ref, ("snn",), n_jobs), device)


def fragment_similarity(gen: Sequence[str], ref: Sequence[str] | ReferenceStats, *,
                        n_jobs: int | None = 1) -> float:
    """Cosine similarity of BRICS fragment counts (MOSES ``Frag``)."""
    g = Generated.of(gen, ("frags",), "Frag", n_jobs)
    return MS.cosine_counts(_as_reference(ref, ("frag",), n_jobs).frag, g.counts("frags"))


def scaffold_similarity(gen: Sequence[str], ref: Sequence[str] | ReferenceStats, *,
                        n_jobs: int | None = 1) -> float:
    """Cosine similarity of Bemis-Murcko scaffold counts (MOSES ``Scaf``); NaN when either
    set has no scaffold of two or more rings."""
    g = Generated.of(gen, ("scaf",), "Scaf", n_jobs)
    return MS.cosine_counts(_as_reference(ref, ("scaf",), n_jobs).scaf, g.counts("scaf"))


def fcd(gen: Sequence[str], ref: Any, *, n_jobs: int | None = 1, device: str = "cpu",
        batch_size: int = 512) -> float:
    """Fréchet ChemNet Distance (Preuer et al. 2018) of the valid generated molecules.

    Args:
        ref: reference SMILES, a ``ReferenceStats``, or ChemNet statistics as a
            ``(mu, sigma)`` pair or MOSES's ``{"mu": ..., "sigma": ...}``.
    """
    g = Generated.of(gen, ("chemnet",), "FCD", n_jobs)
    if isinstance(ref, dict):
        mu, sigma = ref["mu"], ref["sigma"]
    elif isinstance(ref, tuple) and len(ref) == 2 and not isinstance(ref[0], str):
        mu, sigma = ref
    else:
        r = _as_reference(ref, ("fcd",), n_jobs, device)
        if r.fcd_mu is None:
            raise ValueError(f"FCD: the reference {r.name!r} has no ChemNet statistics")
        mu, sigma = r.fcd_mu, r.fcd_sigma
    return MS.fcd_from_stats(*g.fcd_stats(device, batch_size), mu, sigma)


def filters(gen: Sequence[str], *, n_jobs: int | None = 1) -> float:
    """Fraction of valid generated molecules passing MOSES's filters."""
    g = Generated.of(gen, ("filters",), "Filters", n_jobs)
    return float(np.mean(g.cols["filters"]))


def property_distances(gen: Sequence[str], ref: Sequence[str] | ReferenceStats, *,
                       n_jobs: int | None = 1) -> dict[str, float]:
    """Wasserstein-1 distances of logP, SA, QED and weight between generated and reference."""
    g = Generated.of(gen, MF.PROPERTIES, "property distances", n_jobs)
    return g.properties(_as_reference(ref, ("props",), n_jobs))


def kl_score(gen: Sequence[str], ref: Sequence[str] | ReferenceStats, *, n_jobs: int | None = 1,
             device: str = "cpu", return_parts: bool = False) -> float | tuple[float, dict[str, float]]:
    """GuacaMol's distribution-learning KL score in (0, 1] (1 = same distributions).

    With ``return_parts`` also returns the per-descriptor KL divergences.
    """
    g = Generated.of(gen, ("canon_nostereo", "kl", "fp4096"), "KL score", n_jobs)
    score, parts = g.kl(_as_reference(ref, ("kl",), n_jobs, device), device)
    return (score, parts) if return_parts else score


def _references(test: Any, test_scaffolds: Any, train: Any, workers: MF.Workers, kl: bool,
                device: str, progress: bool | None
                ) -> tuple[dict[str, ReferenceStats], KnownMolecules | None]:
    refs: dict[str, ReferenceStats] = {}
    for suffix, ref, split in (("Test", test, "test"), ("TestSF", test_scaffolds, "test_scaffolds")):
        if ref is False:
            if suffix == "Test":
                raise ValueError("moses_metrics: test=False is not allowed; the test set is the "
                                 "reference of most metrics")
            continue
        if ref is None:
            refs[suffix] = moses_reference(split, workers=workers, device=device)
        elif isinstance(ref, ReferenceStats):
            refs[suffix] = ref
        else:
            refs[suffix] = ReferenceStats.from_smiles(MF.check_smiles(ref, split), name=split,
                                                      kl_size=10_000 if kl else 0, workers=workers,
                                                      device=device, progress=progress)
    if train is False:
        known = None
    elif train is None:
        known = moses_train(workers=workers, progress=progress)
    elif isinstance(train, KnownMolecules):
        known = train
    else:
        known = KnownMolecules.from_smiles(train, name="train", workers=workers, progress=progress)
    return refs, known


def moses_metrics(gen: Sequence[str], *, train: Any = None, test: Any = None,
                  test_scaffolds: Any = None, n_jobs: int | None = 1, device: str = "cpu",
                  batch_size: int = 512, k: Sequence[int] = (1000, 10000), kl: bool = True,
                  progress: bool | None = None) -> dict[str, float]:
    """All MOSES metrics (and GuacaMol's KL score) of generated SMILES, with MOSES's names.

    Args:
        gen: generated SMILES (MOSES recommends 30,000).
        train: training SMILES or ``KnownMolecules`` for ``Novelty``; None = MOSES's train
            split (canonicalised once, cached); False = no novelty.
        test, test_scaffolds: reference SMILES or ``ReferenceStats``; None = MOSES's sets
            (published statistics, cached); ``test_scaffolds=False`` skips the ``/TestSF``
            metrics.
        n_jobs: worker processes for RDKit (None = all cores); ChemNet and the fingerprint
            products use torch's threads on ``device``.
        k: sizes for ``unique@k``.
        kl: also compute GuacaMol's ``KL`` score against the test set.
    Returns:
        ``{"valid", "unique@1000", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test",
        "Scaf/Test", "FCD/TestSF", ..., "IntDiv", "IntDiv2", "Filters", "logP", "SA",
        "QED", "weight", "Novelty", "KL"}`` as floats (``higher_is_better()`` gives the
        directions).
    Raises:
        ValueError: empty input, or no valid molecule (the other metrics need some).
        TypeError: a non-string item.
    """
    gen = MF.check_smiles(gen, "gen")
    with MF.Workers(n_jobs) as workers:
        g = Generated(MF.featurize(gen, ALL_FIELDS, workers=workers, progress=progress,
                                   desc="generated"))
        g.need("moses_metrics")  # before loading any reference
        refs, known = _references(test, test_scaffolds, train, workers, kl, device, progress)
    return scores(g, refs, known, k=k, kl=kl, device=device, batch_size=batch_size)


class MoleculeMetrics:
    """Stateful MOSES metrics: ``update(smiles)`` featurises each batch as it comes (in
    ``n_jobs`` processes), ``compute()`` scores everything seen so far, ``reset()`` forgets
    it (the reference statistics stay loaded). Results do not depend on the batching.
    Same arguments as ``moses_metrics``; ``higher_is_better`` maps each result to its
    direction.

    Not a ``metrics.classes.Metric``: its results carry MOSES's names and no judge
    feature space.
    """

    def __init__(self, *, train: Any = None, test: Any = None, test_scaffolds: Any = None,
                 n_jobs: int | None = 1, device: str = "cpu", batch_size: int = 512,
                 k: Sequence[int] = (1000, 10000), kl: bool = True, progress: bool | None = None):
        self.sources = {"train": train, "test": test, "test_scaffolds": test_scaffolds}
        self.n_jobs, self.device, self.batch_size = n_jobs, device, batch_size
        self.k, self.kl, self.progress = tuple(k), kl, progress
        self.higher_is_better = higher_is_better(self.k)
        self._refs: tuple | None = None
        self.reset()

    def reset(self) -> None:
        self._cols: dict[str, list] = {"valid": [], **{f: [] for f in ALL_FIELDS}}
        self._acts = None  # ChemNet activations of the valid rows, once ``sync`` made them

    def update(self, smiles: Sequence[str]) -> None:
        smiles = MF.check_smiles(smiles, "update", allow_empty=True)
        cols = MF.featurize(smiles, ALL_FIELDS, n_jobs=self.n_jobs, progress=self.progress)
        for f, c in cols.items():
            self._cols[f].extend(c)
        self._acts = None

    def __len__(self) -> int:
        return len(self._cols["valid"])

    def sync(self) -> "MoleculeMetrics":
        """Under torchrun: every process's featurised molecules, concatenated in rank order
        (torchmetrics' "cat"); a no-op in one process. Every process must call it."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        # ChemNet, the costly part of FCD, runs in every process on its own valid rows
        fcd = self.sources["test"] is not None or self.sources["test_scaffolds"] not in (None, False)
        acts = None
        if fcd:
            mine = [t for t, ok in zip(self._cols["chemnet"], self._cols["valid"]) if ok]
            acts = MS.chemnet_activations(mine, device=self.device, batch_size=self.batch_size)
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (self._cols, acts))
        self._cols = {f: [v for cols, _ in gathered for v in cols[f]] for f in self._cols}
        self._acts = np.concatenate([a for _, a in gathered]) if fcd else None
        return self

    def compute(self) -> dict[str, float]:
        if not len(self):
            raise ValueError("MoleculeMetrics: nothing was passed to update()")
        if self._refs is None:
            s = self.sources
            with MF.Workers(self.n_jobs) as workers:
                self._refs = _references(s["test"], s["test_scaffolds"], s["train"], workers,
                                         self.kl, self.device, self.progress)
        return scores(Generated(self._cols, chemnet_acts=self._acts), *self._refs, k=self.k, kl=self.kl,
                       device=self.device, batch_size=self.batch_size)
