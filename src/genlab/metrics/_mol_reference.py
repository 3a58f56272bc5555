"""Reference-set statistics for the molecule metrics, computed once and cached.

Scoring against MOSES's 176k-molecule test sets is dominated by work on the reference
(fingerprints, fragments, scaffolds, properties, ChemNet activations). ``ReferenceStats``
holds all of it; ``moses_reference("test" | "test_scaffolds")`` builds it from the
statistics molsets ships (``test_stats.npz``: FCD mean/covariance, Morgan bits, fragment
and scaffold counts, property values — the ones MOSES's published numbers used; our
features reproduce them exactly, see the tests) and caches it as a plain ``.npz`` (no
pickle) under ``$GENLAB_CACHE/moses`` (default ``~/.cache/genlab/moses``).
``KnownMolecules`` is the training set for novelty: hashes of canonical SMILES.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import _mol_features as MF
from . import _mol_similarity as MS

FORMAT = 1


def cache_dir() -> Path:
    root = os.environ.get("GENLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genlab")
    return Path(root) / "moses"


def _rdkit_version() -> str:
    MF.require_rdkit()
    import rdkit

    return rdkit.__version__


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _counts_to_arrays(counts: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(counts)
    return np.array(keys, dtype=str), np.array([counts[k] for k in keys], dtype=np.int64)


def _hash64(smiles: Sequence[str]) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
                     for s in smiles], dtype=np.uint64)


# ----------------------------------------------------------------------------- reference
@dataclass
class ReferenceStats:
    """Everything the MOSES metrics need from a reference set, computed once.

    Attributes:
        name: a label (``"moses:test"``, ``"custom"``).
        fps: packed Morgan (radius 2, 1024-bit) fingerprints ``(N, 128)`` uint8 (SNN).
        frag, scaf: BRICS-fragment and scaffold counts ``{canonical SMILES: count}``.
        props: ``{"logP" | "SA" | "QED" | "weight": (N,) float64}``.
        fcd_mu, fcd_sigma: ChemNet activation mean ``(512,)`` and covariance ``(512, 512)``.
        kl_desc, kl_sim: GuacaMol's 9 descriptors ``(M, 9)`` and internal max ECFP4
            similarity ``(M,)`` of a seeded subset (<= 10,000 unique molecules).
    """

    name: str
    fps: np.ndarray
    frag: dict[str, int]
    scaf: dict[str, int]
    props: dict[str, np.ndarray]
    fcd_mu: np.ndarray | None = None
    fcd_sigma: np.ndarray | None = None
    kl_desc: np.ndarray | None = None
    kl_sim: np.ndarray | None = None
    source: str = ""
    _order: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.fps)

    def popcount_order(self) -> np.ndarray:
        """Reference rows sorted by popcount (for the nearest-neighbour search), cached."""
        if self._order is None:
            self._order = np.argsort(MS.popcounts(self.fps), kind="stable")
        return self._order

    def __repr__(self) -> str:
        return (f"ReferenceStats({self.name!r}, n={self.n}, fcd={self.fcd_mu is not None}, "
                f"kl={self.kl_desc is not None})")

    # ------------------------------------------------------------------ build
    @classmethod
    def from_smiles(cls, smiles: Sequence[str], *, name: str = "custom", fcd: bool = True,
                    kl_size: int = 10_000, seed: int = 0, n_jobs: int | None = 1,
                    device: str = "cpu", progress: bool | None = None,
                    workers: MF.Workers | None = None) -> "ReferenceStats":
        """Statistics of a reference set of SMILES (invalid ones are left out).

        Args:
            fcd: also run ChemNet over the set (the slowest part: ~1.5 ms a molecule on CPU).
            kl_size: molecules in the seeded subset for GuacaMol's KL score (0 = none).
        """
        smiles = MF.check_smiles(smiles, "reference")
        own = workers is None
        workers = workers or MF.Workers(n_jobs)
        try:
            fields = ("fp", "frags", "scaf", *MF.PROPERTIES) + (("chemnet",) if fcd else ())
            cols = MF.featurize(smiles, fields, workers=workers, progress=progress,
                                desc=f"reference {name}")
            ok = [i for i, v in enumerate(cols["valid"]) if v]
            if len(ok) < 2:
                raise ValueError(f"reference {name}: {len(ok)} valid molecules of {len(smiles)}; "
                                 "a reference set needs at least 2")
            frag: dict[str, int] = {}
            scaf: dict[str, int] = {}
            for i in ok:
                for f in cols["frags"][i]:
                    frag[f] = frag.get(f, 0) + 1
                s = cols["scaf"][i]
                if s is not None:
                    scaf[s] = scaf.get(s, 0) + 1
            stats = cls(name=name, fps=MS.pack([cols["fp"][i] for i in ok]), frag=frag, scaf=scaf,
                        props={p: np.array([cols[p][i] for i in ok]) for p in MF.PROPERTIES},
                        source=f"computed from {len(smiles)} SMILES")
            if fcd:
                acts = MS.chemnet_activations([cols["chemnet"][i] for i in ok], device=device)
                stats.fcd_mu, stats.fcd_sigma = MS.gaussian(acts)
            if kl_size:
                stats.kl_desc, stats.kl_sim = kl_reference([smiles[i] for i in ok], size=kl_size,
                                                           seed=seed, workers=workers, device=device)
        finally:
            if own:
                workers.close()
        return stats

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> None:
        """Write a compressed ``.npz`` (strings as unicode arrays; readable without pickle)."""
        fk, fc = _counts_to_arrays(self.frag)
        sk, sc = _counts_to_arrays(self.scaf)
        meta = {"format": FORMAT, "name": self.name, "source": self.source}
        arrays = {"meta": np.array(json.dumps(meta)), "fps": self.fps, "frag_keys": fk,
                  "frag_counts": fc, "scaf_keys": sk, "scaf_counts": sc,
                  **{f"prop_{k}": np.asarray(v, np.float64) for k, v in self.props.items()}}
        for k in ("fcd_mu", "fcd_sigma", "kl_desc", "kl_sim"):
            if getattr(self, k) is not None:
                arrays[k] = np.asarray(getattr(self, k), np.float64)
        _atomic_savez(Path(path), arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReferenceStats":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format", 0) > FORMAT:
                raise ValueError(f"{path}: reference statistics format {meta['format']} is newer "
                                 f"than this genlab reads ({FORMAT}); upgrade genlab")
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            return cls(name=meta["name"], source=meta.get("source", ""), fps=z["fps"],
                       frag=dict(zip(z["frag_keys"].tolist(), z["frag_counts"].tolist())),
                       scaf=dict(zip(z["scaf_keys"].tolist(), z["scaf_counts"].tolist())),
                       props={k[5:]: z[k] for k in z.files if k.startswith("prop_")},
                       fcd_mu=get("fcd_mu"), fcd_sigma=get("fcd_sigma"),
                       kl_desc=get("kl_desc"), kl_sim=get("kl_sim"))


def kl_reference(smiles: Sequence[str], *, size: int = 10_000, seed: int = 0,
                 workers: MF.Workers | None = None, n_jobs: int | None = 1,
                 device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """GuacaMol's KL reference: a seeded random subset of ``size`` SMILES, deduplicated by
    non-isomeric canonical SMILES; returns its descriptors ``(M, 9)`` and internal max
    ECFP4 similarities ``(M,)``."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(smiles), min(size, len(smiles)), replace=False))
    cols = MF.featurize([smiles[i] for i in pick], ("canon_nostereo", "kl", "fp4096"),
                        workers=workers, n_jobs=n_jobs, desc="KL reference")
    keep = first_unique(cols["canon_nostereo"])
    desc = np.array([cols["kl"][i] for i in keep], np.float64).reshape(-1, len(MF.KL_DESCRIPTORS))
    return (desc, MS.max_other_similarity(MS.pack([cols["fp4096"][i] for i in keep]), device=device))


def first_unique(keys: Sequence[str | None]) -> list[int]:
    """Indices of the first occurrence of each non-None key, in order."""
    seen: set[str] = set()
    out = []
    for i, k in enumerate(keys):
        if k is not None and k not in seen:
            seen.add(k)
            out.append(i)
    return out


# ----------------------------------------------------------------------------- training set
class KnownMolecules:
    """A set of molecules (e.g. a training set) for novelty: 64-bit hashes (BLAKE2b) of
    their canonical SMILES, sorted. Collisions are negligible (p ~ N^2 / 2^65 ~ 1e-7 for
    MOSES's 1.6M). Build with ``from_smiles`` (canonicalises in parallel)."""

    def __init__(self, hashes: np.ndarray, *, name: str = "custom"):
        h = np.asarray(hashes, dtype=np.uint64)
        self.hashes = h if len(h) < 2 or bool((h[1:] > h[:-1]).all()) else np.unique(h)
        self.name = name

    def __len__(self) -> int:
        return len(self.hashes)

    def __repr__(self) -> str:
        return f"KnownMolecules({self.name!r}, n={len(self)})"

    @classmethod
    def from_smiles(cls, smiles: Sequence[str], *, name: str = "custom", n_jobs: int | None = 1,
                    progress: bool | None = None,
                    workers: MF.Workers | None = None) -> "KnownMolecules":
        smiles = MF.check_smiles(smiles, "train", allow_empty=True)
        canon = MF.featurize(smiles, ("canon",), workers=workers, n_jobs=n_jobs,
                             progress=progress, desc=f"canonicalising {name}")["canon"]
        return cls(_hash64([c for c in canon if c is not None]), name=name)

    def contains(self, canonical_smiles: Sequence[str]) -> np.ndarray:
        """Membership of canonical SMILES (bool array)."""
        h = _hash64(canonical_smiles)
        pos = np.searchsorted(self.hashes, h).clip(0, max(len(self.hashes) - 1, 0))
        return (self.hashes[pos] == h) if len(self.hashes) else np.zeros(len(h), bool)

    def save(self, path: str | os.PathLike) -> None:
        _atomic_savez(Path(path), {"hashes": self.hashes, "name": np.array(self.name)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KnownMolecules":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["hashes"], name=str(z["name"]))


# ----------------------------------------------------------------------------- MOSES
def moses_smiles(split: str) -> tuple[str, ...]:
    """The SMILES of a MOSES split (``train``, ``test``, ``test_scaffolds``); see
    ``genlab.data.molecules.moses_smiles``."""
    from ..data.molecules import moses_smiles as smiles_of

    return smiles_of(split)


class _StatsUnpickler(pickle.Unpickler):
    """Unpickles molsets' statistics with only the classes they hold (numpy arrays,
    Counter); anything else is refused."""

    ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("collections", "Counter"),
               ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"molsets statistics: refusing to load {module}.{name}")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def read_molsets_stats(split: str) -> dict[str, Any]:
    """The dict molsets stores in ``<split>_stats.npz`` (a pickled object array)."""
    from ..data.molecules import moses_file

    path = moses_file(f"{split}_stats")
    with zipfile.ZipFile(path) as z, z.open("stats.npy") as f:
        version = np.lib.format.read_magic(f)
        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)(f)
        if header[2] != np.dtype(object):
            raise ValueError(f"{path}: unexpected layout {header}")
        return _StatsUnpickler(f).load().item()


def _from_molsets(split: str, *, workers: MF.Workers, device: str) -> ReferenceStats:
    raw = read_molsets_stats(split)
    ref = ReferenceStats(
        name=f"moses:{split}", fps=np.packbits(np.asarray(raw["SNN"]["fps"], np.uint8), axis=1),
        frag=dict(raw["Frag"]["frag"]), scaf=dict(raw["Scaf"]["scaf"]),
        props={p: np.asarray(raw[p]["values"], np.float64) for p in MF.PROPERTIES},
        fcd_mu=np.asarray(raw["FCD"]["mu"], np.float64),
        fcd_sigma=np.asarray(raw["FCD"]["sigma"], np.float64),
        source=f"molsets {split}_stats.npz (MOSES's published statistics)")
    ref.kl_desc, ref.kl_sim = kl_reference(moses_smiles(split), workers=workers, device=device)
    return ref


def moses_reference(split: str = "test", *, n_jobs: int | None = None, refresh: bool = False,
                    device: str = "cpu", workers: MF.Workers | None = None) -> ReferenceStats:
    """MOSES's ``test`` or ``test_scaffolds`` reference statistics, cached after first use.

    The first call converts molsets' shipped statistics (a few seconds) and computes the KL
    subset (10,000 molecules, ~30 s of CPU); later calls load the cache in ~1 s.
    """
    if split not in ("test", "test_scaffolds"):
        raise ValueError(f"moses_reference: split must be 'test' or 'test_scaffolds', got {split!r}")
    path = cache_dir() / f"{split}-rdkit{_rdkit_version()}-v{FORMAT}.npz"
    if path.is_file() and not refresh:
        return ReferenceStats.load(path)
    own = workers is None
    workers = workers or MF.Workers(n_jobs)
    try:
        ref = _from_molsets(split, workers=workers, device=device)
    finally:
        if own:
            workers.close()
    ref.save(path)
    return ref


def moses_train(*, n_jobs: int | None = None, refresh: bool = False, progress: bool | None = True,
                workers: MF.Workers | None = None) -> KnownMolecules:
    """MOSES's 1.58M training molecules as ``KnownMolecules`` (canonicalised once with the
    installed RDKit — ~5 min of CPU — then cached, 13 MB)."""
    path = cache_dir() / f"train-rdkit{_rdkit_version()}-v{FORMAT}.npz"
    if path.is_file() and not refresh:
        return KnownMolecules.load(path)
    known = KnownMolecules.from_smiles(moses_smiles("train"), name="moses:train", n_jobs=n_jobs,
                                       progress=progress, workers=workers)
    known.save(path)
    return known
