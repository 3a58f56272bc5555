"""Molecules from SMILES with RDKit: parsing, canonical forms, clean-up, random SMILES.

RDKit is the field's library (pip install "genlab[chem]"); it is imported inside the
functions, so ``import genlab.chem`` works without it and fails only when a function is
called. Parsing user strings never prints RDKit's warnings (``Can't kekulize mol``,
``SMILES Parse Error``): an unparsable string is simply ``None`` here, and the callers
count and report such lines themselves (see ``genlab.data.molecules``).
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

INSTALL_HINT = 'pip install "genlab[chem]" (or pip install rdkit)'


@functools.lru_cache(maxsize=1)
def require_rdkit() -> Any:
    """``rdkit.Chem``, or an ImportError that says how to install RDKit.

    Returns:
        The ``rdkit.Chem`` module.
    Raises:
        ImportError: RDKit is not installed.
    """
    try:
        from rdkit import Chem
    except ImportError as err:
        raise ImportError(f"genlab's chemistry needs RDKit: {INSTALL_HINT}") from err
    return Chem


@contextlib.contextmanager
def quiet_rdkit() -> Iterator[None]:
    """Silence RDKit's log (parse errors, kekulisation warnings) inside the block.

    ``rdBase.BlockLogs`` restores the previous log state when it is released, so a
    user's own RDKit logging settings survive genlab's calls.
    """
    require_rdkit()
    from rdkit import rdBase

    block = rdBase.BlockLogs()
    try:
        yield
    finally:
        del block


def _parse(smiles: Any) -> Any:
    """A parsed molecule with at least one atom, or None (no logging guard here)."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    mol = require_rdkit().MolFromSmiles(smiles.strip())
    return mol if mol is not None and mol.GetNumAtoms() > 0 else None


def to_mol(smiles: str) -> Any:
    """Parse a SMILES string quietly.

    Args:
        smiles: a SMILES string (surrounding whitespace is ignored).
    Returns:
        An ``rdkit.Chem.Mol``, or None when the string is empty, not a string, or does
        not parse (syntax error, impossible valence, aromaticity that cannot be kekulised).
    """
    with quiet_rdkit():
        return _parse(smiles)


def _to_smiles(mol: Any, isomeric: bool) -> str:
    return require_rdkit().MolToSmiles(mol, isomericSmiles=isomeric)


def canonical(smiles: str, *, isomeric: bool = True) -> str | None:
    """RDKit's canonical SMILES of ``smiles``.

    Args:
        smiles: a SMILES string.
        isomeric: keep stereochemistry and isotopes (``False`` drops them).
    Returns:
        The canonical SMILES, or None for an empty or unparsable string.
    """
    mol = to_mol(smiles)
    return None if mol is None else _to_smiles(mol, isomeric)


@functools.lru_cache(maxsize=1)
def _standardizers() -> tuple[Any, Any]:
    require_rdkit()
    from rdkit.Chem.MolStandardize import rdMolStandardize

    return rdMolStandardize.LargestFragmentChooser(), rdMolStandardize.Uncharger()


def clean_mol(mol: Any) -> Any:
    """Largest fragment (drops counter-ions, salts, solvents), charges neutralised.

    Args:
        mol: an ``rdkit.Chem.Mol``.
    Returns:
        A new Mol.
    """
    chooser, uncharger = _standardizers()
    return uncharger.uncharge(chooser.choose(mol))


def clean(smiles: str, *, isomeric: bool = True) -> str | None:
    """Clean a molecule the way drug-discovery data sets are prepared, as canonical SMILES.

    Keeps the largest fragment (``CC(=O)[O-].[Na+]`` -> the acetate), neutralises charges
    where a neutral form exists (RDKit's ``rdMolStandardize.Uncharger``: acetate -> acetic
    acid; a quaternary ammonium stays charged), then canonicalises.

    Args:
        smiles: a SMILES string.
        isomeric: keep stereochemistry and isotopes.
    Returns:
        The cleaned canonical SMILES, or None for an empty or unparsable string.
    """
    with quiet_rdkit():
        mol = _parse(smiles)
        if mol is None:
            return None
        try:
            mol = clean_mol(mol)
        except Exception:  # RDKit raises its own types for molecules it cannot standardise
            return None
        return _to_smiles(mol, isomeric) if mol.GetNumAtoms() else None


def randomize(smiles: str, n: int, *, seed: int) -> list[str]:
    """``n`` random (non-canonical) SMILES of the same molecule: SMILES enumeration.

    Each string starts the graph walk at a random atom and takes branches in a random
    order (RDKit's ``MolToRandomSmilesVect``), so a model sees one molecule written many
    ways — the data augmentation of Bjerrum 2017, "SMILES Enumeration as Data
    Augmentation for Neural Network Modeling of Molecules". Small molecules have few
    distinct spellings, so the list may repeat strings (or contain the canonical one).

    Args:
        smiles: a valid SMILES string.
        n: how many strings.
        seed: a non-negative integer; the same seed gives the same strings.
    Returns:
        ``n`` SMILES strings, each parsing to the same molecule as ``smiles``.
    Raises:
        ValueError: unparsable ``smiles``, or a bad ``n`` / ``seed``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    mol = to_mol(smiles)
    if mol is None:
        raise ValueError(f"cannot randomise {smiles!r}: it is not a valid SMILES string")
    if n == 0:
        return []
    # RDKit treats randomSeed=0 as "seed from the clock": shift into 1..2**31-1
    return list(require_rdkit().MolToRandomSmilesVect(mol, n, randomSeed=seed % (2**31 - 1) + 1))
