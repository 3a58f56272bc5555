"""Molecules as token sequences: the MOSES benchmark data and users' SMILES files.

Every molecule is one item row ``<bos> tokens <eos> <pad>...`` (see
``genlab.data.text.item_datasets``), tokenised atom by atom (``"smiles"``) or symbol by
symbol (``"selfies"``), so the sequence family (``rnn``/``lstm``/``gru``/``transformer``)
trains on molecules unchanged — a CharRNN in the sense of Segler et al. 2018 and the
MOSES baseline. Every split's ``meta`` carries ``items`` (its molecules as SMILES, for
novelty and for the metrics), ``representation``, ``molecules=True``, and the tokenizer,
whose vocabulary covers every split so held-out molecules can be scored.

MOSES (Polykovskiy et al. 2020, "Molecular Sets (MOSES): A Benchmarking Platform for
Molecular Generation Models") ships inside the ``molsets`` wheel. That package does not
import on current RDKit, so genlab never imports it: ``moses_file`` finds its data files
with ``importlib.util.find_spec`` and they are read with ``gzip`` (no pandas). Its SMILES
are RDKit canonical already and are used as published (re-canonicalising with RDKit
2026.09 changes 11 of the first 20,000: aromaticity perception, explicit [H]), so
loading MOSES needs no RDKit unless ``augment`` asks for random SMILES.

SELFIES conversion is slow (~6,000 molecules/s with the ``selfies`` package), so
converted lists are cached on disk by content under ``$GENLAB_CACHE/selfies`` (default
``~/.cache/genlab``): reloading a run's data (evaluation, resume) is then quick.

Users' ``.smi`` / ``.csv`` files: ``genlab.data.molecule_files``.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import itertools
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import DataError
from ..registry import DATASETS
from .dataset import Dataset
from .text import item_datasets

MOSES_INSTALL = "pip install --no-deps molsets==0.3.1 (or bash scripts/setup.sh)"
MOSES_FILES = {
    "train": "dataset/data/train.csv.gz", "test": "dataset/data/test.csv.gz",
    "test_scaffolds": "dataset/data/test_scaffolds.csv.gz",
    "test_stats": "dataset/data/test_stats.npz",
    "test_scaffolds_stats": "dataset/data/test_scaffolds_stats.npz",
    "mcf": "metrics/mcf.csv", "wehi_pains": "metrics/wehi_pains.csv",
}
MOSES_SPLITS = ("train", "test", "test_scaffolds")
REPRESENTATIONS = ("smiles", "selfies")
N_TRAIN = 100_000   # default training molecules: ~1 s to tokenise, ~1 epoch/few minutes on CPU
N_EVAL = 10_000     # default molecules in each of val, test and test_scaffolds
VAL_FRACTION = 0.01  # MOSES train held out (seeded) as val: 15,847 molecules
SPLIT_SEED = 0
# token alphabets of all of MOSES (train + test + test_scaffolds), so the vocabulary, and
# with it a model's shape, does not depend on which molecules were loaded
MOSES_TOKENS = {
    "smiles": ("#", "(", ")", "-", "1", "2", "3", "4", "5", "6", "=", "Br", "C", "Cl", "F", "N",
               "O", "S", "[H]", "[nH]", "c", "n", "o", "s"),
    "selfies": ("[#Branch1]", "[#Branch2]", "[#C]", "[#N]", "[=Branch1]", "[=Branch2]", "[=C]",
                "[=N]", "[=O]", "[=Ring1]", "[=Ring2]", "[=S]", "[Br]", "[Branch1]", "[Branch2]",
                "[C]", "[Cl]", "[F]", "[H]", "[NH1]", "[N]", "[O]", "[P]", "[Ring1]", "[Ring2]", "[S]"),
}
MOSES_MAX_TOKENS = {"smiles": 54, "selfies": 55}  # longest molecule of all of MOSES (selfies 2.1)


def _rep(representation: str) -> str:
    if representation not in REPRESENTATIONS:
        raise DataError(f"representation must be 'smiles' or 'selfies', got {representation!r}")
    return representation


def _count(value: Any, what: str, *, allow_none: bool = False, minimum: int = 1) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataError(f"{what} must be an integer >= {minimum}{' or None' if allow_none else ''}, "
                        f"got {value!r}")
    return value


# ----------------------------------------------------------------------------- MOSES files
def moses_file(name: str) -> Path:
    """Path of a file of the MOSES data set inside the installed ``molsets`` package.

    Args:
        name: ``train``, ``test``, ``test_scaffolds`` (SMILES, ``.csv.gz``),
            ``test_stats``, ``test_scaffolds_stats`` (FCD reference statistics, ``.npz``),
            ``mcf`` or ``wehi_pains`` (the SMARTS filters, ``.csv``).
    Returns:
        The path (the package is located, never imported).
    Raises:
        DataError: unknown name, ``molsets`` not installed, or the file missing.
    """
    if name not in MOSES_FILES:
        raise DataError(f"unknown MOSES file {name!r}; choose one of {', '.join(MOSES_FILES)}")
    try:
        spec = importlib.util.find_spec("moses")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the MOSES data set is not installed: {MOSES_INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / MOSES_FILES[name]
    if not path.is_file():
        raise DataError(f"the MOSES file {path} is missing (is the installed 'moses' package "
                        f"molsets?): {MOSES_INSTALL}")
    return path


@functools.lru_cache(maxsize=None)
def moses_smiles(split: str) -> tuple[str, ...]:
    """All SMILES of a published MOSES split, in file order (cached per process).

    Args:
        split: ``train`` (1,584,663), ``test`` (176,074) or ``test_scaffolds`` (176,225).
    Returns:
        The SMILES strings.
    """
    if split not in MOSES_SPLITS:
        raise DataError(f"unknown MOSES split {split!r}; choose one of {', '.join(MOSES_SPLITS)}")
    path = moses_file(split)
    try:
        with gzip.open(path, "rt", encoding="ascii") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as err:
        raise DataError(f"cannot read {path} (truncated or corrupt?): {err}; reinstall: "
                        f"{MOSES_INSTALL}") from err
    if not lines or lines[0].strip().upper() != "SMILES":
        raise DataError(f"{path} does not start with the header 'SMILES'; reinstall: {MOSES_INSTALL}")
    return tuple(s for s in (l.strip() for l in lines[1:]) if s)


# ----------------------------------------------------------------------------- building
def _tokens_of(representation: str) -> Any:
    from ..chem.tokens import tokenize_selfies, tokenize_smiles

    return tokenize_smiles if representation == "smiles" else tokenize_selfies


def _cache_dir() -> Path:
    root = os.environ.get("GENLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genlab")
    return Path(root) / "selfies"


def selfies_of(smiles: Sequence[str]) -> list[str | None]:
    """SELFIES of every SMILES (None where ``selfies`` cannot encode one), cached on disk.

    The cache key is the ``selfies`` version and the exact list, so a cached answer is
    the one a fresh conversion would give; the cache is best-effort (an unwritable or
    damaged cache just means converting again).

    Args:
        smiles: SMILES strings.
    Returns:
        One SELFIES string (or None) per input, in order.
    """
    from ..chem.tokens import require_selfies, to_selfies

    version = require_selfies().__version__
    digest = hashlib.sha1("\n".join([version, *smiles]).encode()).hexdigest()[:24]
    path = _cache_dir() / f"{digest}.txt.gz"
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
        if len(lines) == len(smiles):
            return [t or None for t in lines]
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        pass
    out = [to_selfies(s) for s in smiles]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(gzip.compress("\n".join(t or "" for t in out).encode("utf-8"), compresslevel=1))
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        pass
    return out


def _variants(smiles: str, k: int) -> list[str]:
    """``smiles`` and up to ``k`` distinct random spellings of it, seeded by the string."""
    from ..chem.mol import randomize

    return list(dict.fromkeys([smiles, *randomize(smiles, k, seed=zlib.crc32(smiles.encode()))]))


def molecule_splits(parts: dict[str, Sequence[str]], *, name: str, representation: str = "smiles",
                    augment: int = 0, max_len: int | None = None, alphabet: Sequence[str] = (),
                    min_length: int = 0, meta: dict[str, Any] | None = None) -> dict[str, Dataset]:
    """SMILES per split -> item Datasets in the chosen representation.

    Args:
        parts: split name -> SMILES strings (one per molecule).
        name: dataset name.
        representation: ``"smiles"`` (atom-level tokens) or ``"selfies"``.
        augment: rows of ``k`` random SMILES per training molecule besides its own
            (SMILES enumeration, Bjerrum 2017; duplicates of one molecule are dropped).
        max_len: leave out molecules longer than this many tokens (counted in
            ``meta["too_long"]``).
        alphabet: tokens the vocabulary must hold even if no loaded molecule uses them.
        min_length: rows hold at least this many tokens (plus ``<bos>``/``<eos>``), but
            never more than ``max_len``.
        meta: extra ``meta`` entries for every split.
    Returns:
        One Dataset per part; ``meta["items"]`` holds the split's molecules as SMILES.
    """
    rep = _rep(representation)
    augment = _count(augment, "augment", minimum=0)
    max_len = _count(max_len, "max_len", allow_none=True)
    if augment and rep != "smiles":
        raise DataError("augment makes random SMILES, so it applies to representation='smiles' only")
    split_tokens = _tokens_of(rep)
    mols, rows, tokens, notes = {}, {}, {}, {}
    for key, smiles in parts.items():
        texts = list(smiles)
        unencodable = 0
        if rep == "selfies":
            pairs = list(zip(texts, selfies_of(texts)))
            unencodable = sum(t is None for _, t in pairs)
            smiles = [s for s, t in pairs if t is not None]
            texts = [t for _, t in pairs if t is not None]
            if unencodable:
                warnings.warn(f"{name}: {unencodable} molecules of the {key} split cannot be written "
                              "as SELFIES and were left out (meta['not_encodable'])", stacklevel=3)
        toks = [split_tokens(t) for t in texts]
        keep = [i for i, t in enumerate(toks) if max_len is None or len(t) <= max_len]
        notes[key] = {"too_long": len(texts) - len(keep), "not_encodable": unencodable}
        mols[key] = [smiles[i] for i in keep]
        rows[key] = [texts[i] for i in keep]
        tokens[key] = [toks[i] for i in keep]
        if not rows[key]:
            raise DataError(f"{name}: no molecule of the {key} split is left (max_len={max_len})")
    if augment and "train" in rows:
        rows["train"] = [v for s in rows["train"] for v in _variants(s, augment)]
        tokens["train"] = [split_tokens(v) for v in rows["train"]]
        if max_len is not None:
            keep = [i for i, t in enumerate(tokens["train"]) if len(t) <= max_len]
            rows["train"], tokens["train"] = [rows["train"][i] for i in keep], [tokens["train"][i] for i in keep]
    from .tokenizers import CLASSES, SPECIALS

    # the vocabulary of every split (as Tokenizer.train would build it), tokenising once
    vocab = set(alphabet).union(itertools.chain.from_iterable(itertools.chain.from_iterable(tokens.values())))
    tok = CLASSES[rep]([*SPECIALS, *sorted(vocab)])
    index = tok.index.__getitem__
    ids = {key: [list(map(index, ts)) for ts in part] for key, part in tokens.items()}
    longest = max(len(t) for part in tokens.values() for t in part)
    width = max(longest, min_length) if max_len is None else min(max_len, max(longest, min_length))
    out = item_datasets(rows, tok, name=name, length=width + 2, ids=ids,
                        meta={"representation": rep, "molecules": True, **(meta or {})})
    for key, ds in out.items():
        ds.meta.update(items=mols[key], n_molecules=len(mols[key]), **notes[key],
                       augment=augment if key == "train" else 0)
    return out


# ----------------------------------------------------------------------------- MOSES
def moses_splits(*, representation: str = "smiles", n_train: int | None = N_TRAIN,
                 n_eval: int | None = N_EVAL, augment: int = 0, max_len: int | None = None,
                 limit: int | None = None) -> dict[str, Dataset]:
    """MOSES as ``train`` / ``val`` / ``test`` / ``test_scaffolds`` item Datasets.

    ``val`` is a seeded 1 % of MOSES train (15,847 molecules, never in ``train``);
    ``train`` is the rest in a seeded order, so ``n_train=N`` takes the same first N
    molecules in every process; ``test`` and ``test_scaffolds`` are MOSES' own.

    Args:
        representation: ``"smiles"`` or ``"selfies"``.
        n_train: training molecules (``None``: all 1,568,816 not held out).
        n_eval: molecules kept in each of val, test and test_scaffolds (the first of
            each; ``None``: all). The full reference sets stay available through
            ``moses_smiles(split)`` for the metrics.
        augment: random SMILES per training molecule (see ``molecule_splits``).
        max_len: leave out molecules longer than this many tokens.
        limit: at most this many molecules per split (quick runs; applied before
            tokenising, so it is fast).
    Returns:
        ``{"train", "val", "test", "test_scaffolds"}`` Datasets of kind ``"sequence"``.
    """
    rep = _rep(representation)
    n_train = _count(n_train, "n_train", allow_none=True)
    n_eval = _count(n_eval, "n_eval", allow_none=True)
    limit = _count(limit, "limit", allow_none=True)
    train = moses_smiles("train")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = round(VAL_FRACTION * len(train))

    def first(n: int | None) -> int | None:
        return min(v for v in (n, limit) if v is not None) if (n, limit) != (None, None) else None

    parts = {"train": [train[i] for i in perm[n_val:][:first(n_train)].tolist()],
             "val": [train[i] for i in perm[:n_val][:first(n_eval)].tolist()],
             "test": list(moses_smiles("test")[:first(n_eval)]),
             "test_scaffolds": list(moses_smiles("test_scaffolds")[:first(n_eval)])}
    name = "moses" if rep == "smiles" else "moses-selfies"
    return molecule_splits(parts, name=name, representation=rep, augment=augment, max_len=max_len,
                           alphabet=MOSES_TOKENS[rep], min_length=MOSES_MAX_TOKENS[rep],
                           meta={"source": str(moses_file("train").parent)})


def _register(name: str, description: str) -> Any:
    def deco(fn: Any) -> Any:
        fn.description = description
        return DATASETS.register(name)(fn)
    return deco


@_register("moses", f"MOSES molecules (PyPI molsets) as atom-level SMILES; {N_TRAIN:,} training "
                    "molecules by default, val/test/test_scaffolds")
def moses(*, n_train: int | None = N_TRAIN, n_eval: int | None = N_EVAL, augment: int = 0,
          max_len: int | None = None, limit: int | None = None) -> dict[str, Dataset]:
    """MOSES as SMILES token rows (see ``moses_splits`` for the options)."""
    return moses_splits(representation="smiles", n_train=n_train, n_eval=n_eval, augment=augment,
                        max_len=max_len, limit=limit)


@_register("moses-selfies", f"MOSES molecules as SELFIES symbols (every string decodes to a "
                            f"molecule); {N_TRAIN:,} training molecules by default")
def moses_selfies(*, n_train: int | None = N_TRAIN, n_eval: int | None = N_EVAL,
                  max_len: int | None = None, limit: int | None = None) -> dict[str, Dataset]:
    """MOSES as SELFIES token rows (see ``moses_splits``; needs ``selfies``)."""
    return moses_splits(representation="selfies", n_train=n_train, n_eval=n_eval,
                        max_len=max_len, limit=limit)
