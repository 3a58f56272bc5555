"""Molecule strings as tokens: atom-level SMILES, and SELFIES.

SMILES are split into chemically meaningful tokens rather than characters — ``Cl`` and
``Br`` are one atom each, a bracket atom such as ``[nH]`` or ``[C@@H]`` is one token,
``%12`` is one ring closure — following the regular expression of Schwaller et al. 2019,
"Molecular Transformer: A Model for Uncertainty-Calibrated Chemical Reaction Prediction"
(written afresh here). A string the tokens cannot spell exactly is refused with the
position of the first character no token covers, so nothing is silently dropped.

SELFIES (Krenn et al. 2020, "Self-referencing embedded strings (SELFIES): A 100% robust
molecular string representation") are sequences of bracketed symbols in which every
sequence decodes to a valid molecule. Conversion uses the ``selfies`` package
(pip install "genlab[chem]"), imported when called; tokenising a SELFIES string needs
no package (one symbol per ``[...]``, plus ``.`` between fragments), so a trained
model's tokenizer works without it.
"""
from __future__ import annotations

import re
from typing import Any

_SMILES_TOKEN = re.compile(
    r"\[[^\[\]]+\]"          # bracket atom: [nH], [C@@H], [O-], [13CH3], [H]
    r"|Br|Cl"                # two-letter atoms of the organic subset (before B and C)
    r"|%\d\d|%\(\d+\)"       # ring closures 10-99 (%12) and RDKit's %(123)
    r"|[BCNOPSFI*]"          # organic-subset atoms and the wildcard
    r"|[bcnops]"             # aromatic atoms
    r"|\d"                   # ring closures 0-9
    r"|[-=#$:/\\.~?>@+()]"   # bonds, fragment dot, reaction/SMARTS symbols, branches
)
_SELFIES_TOKEN = re.compile(r"\[[^\[\]]*\]|\.")
SELFIES_HINT = 'pip install "genlab[chem]" (or pip install selfies)'


def _tokenize(pattern: re.Pattern, text: str, what: str) -> list[str]:
    if not isinstance(text, str):
        raise ValueError(f"expected a {what} string, got {type(text).__name__}")
    tokens = pattern.findall(text)
    if len("".join(tokens)) == len(text):  # matches never overlap, so nothing was skipped
        return tokens
    pos = 0
    for m in pattern.finditer(text):
        if m.start() != pos:
            break
        pos = m.end()
    hint = "; a SMILES string holds no whitespace" if text[pos].isspace() else ""
    raise ValueError(f"cannot tokenise {what} {text!r}: {text[pos]!r} at position {pos} starts "
                     f"no {what} token{hint}")


def tokenize_smiles(smiles: str) -> list[str]:
    """Atom-level SMILES tokens, which join back to exactly ``smiles``.

    Args:
        smiles: a SMILES string (not checked for chemical validity).
    Returns:
        The tokens, e.g. ``"c1ccc(Cl)cc1"`` -> ``c 1 c c c ( Cl ) c c 1``.
    Raises:
        ValueError: a character that starts no SMILES token (e.g. whitespace, an unclosed
            ``[``), naming its position.
    """
    return _tokenize(_SMILES_TOKEN, smiles, "SMILES")


def tokenize_selfies(selfies: str) -> list[str]:
    """SELFIES symbols (``[C]``, ``[=O]``, ``[Branch1]``, ``.``), joining back to the input.

    Equivalent to ``selfies.split_selfies`` but strict: a character outside any
    ``[...]`` symbol raises instead of being skipped.

    Args:
        selfies: a SELFIES string.
    Returns:
        The symbols.
    Raises:
        ValueError: a character outside any symbol, naming its position.
    """
    return _tokenize(_SELFIES_TOKEN, selfies, "SELFIES")


def require_selfies() -> Any:
    """The ``selfies`` module, or an ImportError that says how to install it."""
    try:
        import selfies
    except ImportError as err:
        raise ImportError(f"SELFIES conversion needs the selfies package: {SELFIES_HINT}") from err
    return selfies


def to_selfies(smiles: str) -> str | None:
    """SMILES -> SELFIES.

    Args:
        smiles: a SMILES string.
    Returns:
        The SELFIES string, or None when ``selfies`` cannot parse the SMILES (syntax
        errors, an unclosed ring) or it is empty.
    """
    sf = require_selfies()
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    try:
        return sf.encoder(smiles.strip())
    except sf.EncoderError:
        return None


def from_selfies(selfies: str) -> str:
    """SELFIES -> SMILES. Any sequence of valid symbols decodes to a valid molecule.

    Args:
        selfies: a SELFIES string (``""`` decodes to ``""``, the empty molecule).
    Returns:
        A SMILES string (not canonical; see ``genlab.chem.canonical``).
    Raises:
        ValueError: a malformed string (a hanging ``[``) or an unknown symbol.
    """
    sf = require_selfies()
    try:
        return sf.decoder(selfies)
    except sf.DecoderError as err:
        raise ValueError(f"cannot decode SELFIES {selfies!r}: {str(err).splitlines()[0]}") from None
