"""Per-molecule features for the molecule metrics, computed in one RDKit pass.

Every MOSES / GuacaMol metric is a set-level function of a few per-molecule values
(canonical SMILES, Morgan bits, BRICS fragments, the Bemis-Murcko scaffold, four
properties, the filter verdict, GuacaMol's descriptors, ChemNet's input tokens). MOSES
re-parses the SMILES for every metric; here each SMILES is parsed once, in worker
processes, and only the requested fields come back (``featurize``).

Definitions follow the MOSES reference (Polykovskiy et al. 2020, "Molecular Sets (MOSES):
A Benchmarking Platform for Molecular Generation Models", Front. Pharmacol.), checked
value for value against the statistics molsets ships (tests/metrics/test_molecule_metrics.py):

* a SMILES is *valid* when it is a non-empty string RDKit parses (and sanitises); its
  canonical form is ``Chem.MolToSmiles(mol)`` (isomeric), and every other field is computed
  on the molecule re-read from that canonical SMILES, as MOSES does;
* fingerprints: Morgan radius 2, 1024 bits (MOSES) and 4096 bits (GuacaMol's ECFP4),
  packed 8 bits a byte (``np.packbits``);
* fragments: ``FragmentOnBRICSBonds`` then the canonical SMILES split on ``.``;
* scaffold: the Bemis-Murcko scaffold's canonical SMILES, kept when it has >= 2 rings;
* filters: no ring of 8+ atoms, no charged atom, only C N S O F Cl Br H, no match of the
  MCF or PAINS SMARTS (molsets' ``mcf.csv`` / ``wehi_pains.csv``) on the molecule with
  explicit hydrogens, and a non-isomeric SMILES that RDKit reads back.

RDKit is imported on first use, with a clear ``ImportError`` when the ``[chem]`` extra is
missing.
"""
from __future__ import annotations

import csv
import functools
import math
import multiprocessing
import os
from typing import Any, Callable, Iterable, Sequence

import numpy as np

FIELDS = ("canon", "canon_nostereo", "fp", "fp4096", "frags", "scaf", "logP", "SA", "QED",
          "weight", "filters", "kl", "chemnet")
PROPERTIES = ("logP", "SA", "QED", "weight")
# GuacaMol's KL benchmark descriptors (Brown et al. 2019): 4 continuous, then 5 integer
KL_DESCRIPTORS = ("BertzCT", "MolLogP", "MolWt", "TPSA", "NumHAcceptors", "NumHDonors",
                  "NumRotatableBonds", "NumAliphaticRings", "NumAromaticRings")
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
# ChemNet's input alphabet (Preuer et al. 2018, as fcd/fcd-torch encode it); "X" = unknown
CHEMNET_VOCAB = ("C", "N", "O", "H", "F", "Cl", "P", "B", "Br", "S", "I", "Si", "#", "(", ")",
                 "+", "-", "1", "2", "3", "4", "5", "6", "7", "8", "=", "[", "]", "@", "c",
                 "n", "o", "s", "X", ".")
CHEMNET_LEN = 350
NO_TOKEN = 255  # an all-zero row of the one-hot input


def require_rdkit():
    """``rdkit.Chem``, or an ImportError that says how to install it."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('the molecule metrics need RDKit: pip install "genlab[chem]"') from e
    RDLogger.DisableLog("rdApp.*")  # invalid generated SMILES are counted, not printed
    return Chem


# ----------------------------------------------------------------------------- input checks
def check_smiles(smiles: Any, what: str = "smiles", *, allow_empty: bool = False) -> list[str]:
    """``smiles`` as a list of str; TypeError naming the first non-string item."""
    if isinstance(smiles, (str, bytes)):
        raise TypeError(f"{what}: expected a list of SMILES strings, got a single "
                        f"{type(smiles).__name__}; wrap it in a list")
    try:
        out = list(smiles)
    except TypeError:
        raise TypeError(f"{what}: expected a list of SMILES strings, got "
                        f"{type(smiles).__name__}") from None
    for i, s in enumerate(out):
        if not isinstance(s, str):
            raise TypeError(f"{what}[{i}] is {type(s).__name__} ({s!r:.40}), not a SMILES "
                            "string")
    if not out and not allow_empty:
        raise ValueError(f"{what} is empty: nothing to score")
    return [str(s) for s in out]  # numpy str_ -> str (pickles smaller, hashes the same)


# ----------------------------------------------------------------------------- filter lists
def filter_smarts() -> list[str]:
    """MOSES's filter patterns: the MCF list, then the PAINS list (molsets csv files)."""
    from ..data.molecules import moses_file  # the MOSES files, located without importing moses

    with open(moses_file("mcf"), newline="") as f:
        mcf = [row["smarts"].strip() for row in csv.DictReader(f)]
    with open(moses_file("wehi_pains"), newline="") as f:
        pains = [row[0].strip() for row in csv.reader(f) if row]  # no header: smarts,name
    return mcf + pains


# ----------------------------------------------------------------------------- per process
@functools.lru_cache(maxsize=None)
def _tools() -> dict[str, Any]:
    """RDKit generators, descriptor functions and filter patterns, built once a process."""
    Chem = require_rdkit()
    from rdkit import DataStructs
    from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator
    from rdkit.Chem.Scaffolds import MurckoScaffold
    from rdkit.Contrib.SA_Score import sascorer

    return {
        "Chem": Chem, "DataStructs": DataStructs, "MurckoScaffold": MurckoScaffold,
        "morgan": rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024),
        "ecfp4": rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=4096),
        "logP": Crippen.MolLogP, "SA": sascorer.calculateScore, "QED": QED.qed,
        "weight": Descriptors.MolWt,
        "kl": [getattr(Descriptors, name) for name in KL_DESCRIPTORS],
        "chemnet": {s: i for i, s in enumerate(CHEMNET_VOCAB)},
    }


@functools.lru_cache(maxsize=None)
def _filter_patterns() -> tuple[list, np.ndarray]:
    """The MCF + PAINS query molecules and their pattern fingerprints ``(P, 32)`` uint64.

    A pattern can only match a molecule whose pattern fingerprint holds all of the
    pattern's bits (RDKit's substructure-screening fingerprint), so only those patterns
    are tried: about 3x faster than matching all ~500, with identical verdicts (checked
    against unscreened matching in the tests).
    """
    t = _tools()
    Chem = t["Chem"]
    patterns = [Chem.MolFromSmarts(s) for s in filter_smarts()]
    assert all(p is not None for p in patterns), "a molsets filter SMARTS did not parse"
    qfp = np.stack([_fp_bytes(t["DataStructs"], Chem.PatternFingerprint(p, fpSize=2048))
                    for p in patterns]).view(np.uint64)
    return patterns, qfp


def _fp_bytes(DataStructs, fp) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(DataStructs.BitVectToFPSText(fp)), dtype=np.uint8)


def parse(smiles: str):
    """RDKit molecule, or None for an empty or unreadable SMILES."""
    if not smiles:
        return None
    return _tools()["Chem"].MolFromSmiles(smiles)


def canonical(smiles: str, *, isomeric: bool = True) -> str | None:
    """Canonical SMILES (RDKit), or None when invalid."""
    mol = parse(smiles)
    return None if mol is None else _tools()["Chem"].MolToSmiles(mol, isomericSmiles=isomeric)


def passes_filters(mol, t: dict[str, Any] | None = None) -> bool:
    """MOSES's ``mol_passes_filters`` on an RDKit molecule."""
    t = t or _tools()
    Chem = t["Chem"]
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 or a.GetSymbol() not in ALLOWED_ATOMS
           for a in mol.GetAtoms()):
        return False
    patterns, qfp = _filter_patterns()
    h_mol = Chem.AddHs(mol)
    mfp = _fp_bytes(t["DataStructs"], Chem.PatternFingerprint(h_mol, fpSize=2048)).view(np.uint64)
    for i in np.flatnonzero(((qfp & mfp) == qfp).all(1)):
        if h_mol.HasSubstructMatch(patterns[i]):
            return False
    smi = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smi) and Chem.MolFromSmiles(smi) is not None


def chemnet_tokens(smiles: str, vocab: dict[str, int] | None = None) -> bytes:
    """ChemNet's input for one SMILES as ``CHEMNET_LEN`` token ids (``NO_TOKEN`` = zero row).

    The encoding fcd/fcd-torch feed ChemNet: symbols are single characters except a
    letter followed by ``r``, ``i`` or ``l`` (Br, Cl, Si, ...); unknown symbols map to
    ``X``; the string ends at its first ``.`` (an end marker ``.`` is appended) or at
    position ``CHEMNET_LEN - 1``, where ``.`` is written.
    """
    vocab = vocab or _tools()["chemnet"]
    s = smiles + "."
    out = bytearray([NO_TOKEN]) * CHEMNET_LEN
    src = dst = 0
    while True:
        step = 2 if s[src + 1] in "ril" else 1
        out[dst] = vocab.get(s[src:src + step], vocab["X"])
        src += step
        dst += 1
        if s[src] == "." or dst == CHEMNET_LEN - 1:
            out[dst] = vocab["."]
            return bytes(out)


def _scaffold(mol, t: dict[str, Any]) -> str | None:
    try:
        scaf = t["MurckoScaffold"].GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smi = t["Chem"].MolToSmiles(scaf)
    return smi if smi and scaf.GetRingInfo().NumRings() >= 2 else None


def _one(smiles: str, fields: Sequence[str], t: dict[str, Any]) -> tuple | None:
    """The requested fields of one SMILES, or None when it is invalid."""
    Chem = t["Chem"]
    mol = parse(smiles)
    if mol is None:
        return None
    canon = Chem.MolToSmiles(mol)
    if fields != ("canon",):
        mol = Chem.MolFromSmiles(canon) or mol  # MOSES scores the canonical molecule
    out = []
    logp = t["logP"](mol) if "logP" in fields or "kl" in fields else None  # shared, 0.2 ms
    for f in fields:
        if f == "canon":
            out.append(canon)
        elif f == "canon_nostereo":
            out.append(Chem.MolToSmiles(mol, isomericSmiles=False))
        elif f == "fp":
            out.append(np.packbits(t["morgan"].GetFingerprintAsNumPy(mol)).tobytes())
        elif f == "fp4096":
            out.append(np.packbits(t["ecfp4"].GetFingerprintAsNumPy(mol)).tobytes())
        elif f == "frags":
            out.append(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split("."))
        elif f == "scaf":
            out.append(_scaffold(mol, t))
        elif f in PROPERTIES:
            out.append(float(logp if f == "logP" else t[f](mol)))
        elif f == "filters":
            out.append(passes_filters(mol, t))
        elif f == "kl":  # GuacaMol replaces a non-finite descriptor by 0
            vals = [float(logp if name == "MolLogP" else fn(mol))
                    for name, fn in zip(KL_DESCRIPTORS, t["kl"])]
            out.append(tuple(v if math.isfinite(v) else 0.0 for v in vals))
        elif f == "chemnet":
            out.append(chemnet_tokens(canon, t["chemnet"]))
        else:  # pragma: no cover - callers pass FIELDS only
            raise AssertionError(f"unknown field {f!r}")
    return tuple(out)


def _chunk_worker(args: tuple[list[str], tuple[str, ...]]) -> list[tuple | None]:
    smiles, fields = args
    t = _tools()
    return [_one(s, fields, t) for s in smiles]


# ----------------------------------------------------------------------------- parallel map
def resolve_jobs(n_jobs: int | None) -> int:
    if n_jobs is None or n_jobs <= 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    return int(n_jobs)


class Workers:
    """A process pool (or the calling process when ``n_jobs == 1``) mapping a function over
    chunks in order, with an optional tqdm bar. Use as a context manager, or pass one to
    several calls so they share the pool."""

    MIN_PARALLEL = 400  # below this many items, start-up costs more than it saves

    def __init__(self, n_jobs: int | None = None):
        self.n_jobs = resolve_jobs(n_jobs)
        self._pool = None

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def map(self, fn: Callable, items: Sequence, *, args: tuple = (), progress: bool | None = None,
            desc: str = "molecules", unit: str = "mol") -> list:
        """``[fn((chunk, *args)) ...]`` flattened: ``fn`` takes a chunk, returns a list."""
        n = len(items)
        parallel = self.n_jobs > 1 and n >= self.MIN_PARALLEL
        size = max(50, min(2000, math.ceil(n / (self.n_jobs * 8)))) if parallel else 2000
        chunks = [(list(items[i:i + size]), *args) for i in range(0, n, size)]
        if progress is None:
            progress = n >= 20000
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=desc, unit=unit, leave=False)
        if parallel and self._pool is None:
            self._pool = multiprocessing.get_context().Pool(self.n_jobs)
        results = self._pool.imap(fn, chunks) if parallel else map(fn, chunks)
        out: list = []
        for part in results:
            out.extend(part)
            if bar is not None:
                bar.update(len(part))
        if bar is not None:
            bar.close()
        return out


def featurize(smiles: Sequence[str], fields: Iterable[str], *, workers: Workers | None = None,
              n_jobs: int | None = 1, progress: bool | None = None,
              desc: str = "molecules") -> dict[str, list]:
    """Columns of per-molecule fields for a list of SMILES.

    Returns ``{"valid": [bool], field: [value or None]}`` with one entry per input SMILES,
    in input order (None where the SMILES is invalid).
    """
    fields = tuple(fields)
    bad = [f for f in fields if f not in FIELDS]
    if bad:
        raise ValueError(f"unknown molecule fields {bad}; known: {FIELDS}")
    _tools()  # fail here (not in a worker) if RDKit or molsets is missing
    if "filters" in fields:
        _filter_patterns()
    own = workers is None
    workers = workers or Workers(n_jobs)
    try:
        rows = workers.map(_chunk_worker, smiles, args=(fields,), progress=progress, desc=desc)
    finally:
        if own:
            workers.close()
    cols: dict[str, list] = {"valid": [r is not None for r in rows]}
    for j, f in enumerate(fields):
        cols[f] = [None if r is None else r[j] for r in rows]
    return cols
