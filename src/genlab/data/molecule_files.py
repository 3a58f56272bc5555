"""Users' molecule files: ``.smi`` and ``.csv`` with a ``smiles`` column.

Every line is cleaned (``genlab.chem.clean``: largest fragment, so salts and solvents
go; charges neutralised; canonical SMILES). A line that is not a molecule is counted,
reported in one warning with its line number and kept in ``meta["invalid_lines"]`` —
never silently dropped, never a crash; a file without one valid molecule is a
DataError. The molecules are split 80/10/10 by a seeded permutation and become item
rows through ``genlab.data.molecules.molecule_splits``.
"""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from .dataset import Dataset
from .molecules import SPLIT_SEED, _count, _rep, molecule_splits
from .text import decode_utf8, split_items

USER_FRACTIONS = (0.8, 0.1, 0.1)


def smiles_column(path: str | Path) -> str | None:
    """The name of a ``.csv`` file's SMILES column (matched case-insensitively), or None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline(65536).removeprefix("\ufeff")
        fields = next(csv.reader([header], delimiter=_delimiter(header)), [])
    except (OSError, csv.Error):  # unreadable: not a molecule file; the table loader says why
        return None
    return next((c for c in fields if c.strip().lower() == "smiles"), None)


def _delimiter(line: str) -> str:
    return max(",;\t", key=line.count) if any(d in line for d in ",;\t") else ","


def read_smiles_file(path: str | Path, *, column: str | None = None) -> tuple[list[str], list[int]]:
    """The SMILES of a ``.smi`` or ``.csv`` file with their line numbers (1-based).

    ``.smi``: the first whitespace-separated field of each non-blank line (a first line
    whose first field contains ``smiles`` is a header). ``.csv``: the column ``column``
    (default: the one named ``smiles``, any case). Bytes that are not UTF-8 become U+FFFD,
    which makes the line invalid rather than the file unreadable.

    Returns:
        ``(strings, line_numbers)``.
    Raises:
        FileNotFoundError / DataError: no file, a ``.csv`` without the column, a file that
            is not text (compressed, binary, a Bayesian network file) or a CSV that does
            not parse; the message names the file.
    """
    from .loaders import require_text_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no SMILES file at {path}")
    require_text_file(path, "a SMILES text file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read SMILES file {path}: {e.strerror or e}") from None
    text = decode_utf8(raw, errors="replace", source=str(path))
    out, lines = [], []
    if path.suffix.lower() == ".csv":
        first = text.split("\n", 1)[0]
        reader = csv.reader(io.StringIO(text), delimiter=_delimiter(first))
        try:
            header = [c.strip().lower() for c in next(reader, [])]
            want = (column or "smiles").strip().lower()
            if want not in header:
                raise DataError(f"{path} has no column {column or 'smiles'!r} (columns: {', '.join(header)})")
            j = header.index(want)
            for row in reader:
                if any(c.strip() for c in row):
                    out.append(row[j].strip() if j < len(row) else "")
                    lines.append(reader.line_num)
        except csv.Error as e:
            raise DataError(f"CSV file {path}, line {reader.line_num}: {e}") from None
        return out, lines
    for n, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if not fields or (not out and not lines and "smiles" in fields[0].lower()):
            continue
        out.append(fields[0])
        lines.append(n)
    return out, lines


def clean_smiles_lines(strings: Sequence[str], lines: Sequence[int], *, source: str) -> tuple[list[str], dict]:
    """Clean every string (``genlab.chem.clean``), counting the ones that are not molecules.

    Returns:
        ``(cleaned SMILES, report)`` with ``invalid`` (count), ``invalid_lines`` (their
        line numbers), ``duplicates`` (molecules seen before after cleaning) and ``lines``.
    Raises:
        DataError: not one line is a valid molecule.
    """
    from ..chem.mol import clean

    cleaned = [clean(s) for s in strings]
    bad = [n for n, c in zip(lines, cleaned) if c is None]
    good = [c for c in cleaned if c is not None]
    unique = list(dict.fromkeys(good))
    if not unique:
        raise DataError(f"{source}: none of its {len(strings)} lines is a valid molecule "
                        f"(first lines: {', '.join(map(str, bad[:5])) or 'none'})")
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        what = "lines is not a valid molecule and was" if len(bad) == 1 else "lines are not valid molecules and were"
        warnings.warn(f"{source}: {len(bad)} of {len(strings)} {what} left out "
                      f"(line{'s' if len(bad) > 1 else ''} {shown}); see meta['invalid_lines']", stacklevel=3)
    return unique, {"lines": len(strings), "invalid": len(bad), "invalid_lines": bad,
                    "duplicates": len(good) - len(unique)}


def smiles_file_splits(path: str | Path, *, representation: str = "smiles", column: str | None = None,
                       augment: int = 0, max_len: int | None = None,
                       limit: int | None = None) -> dict[str, Dataset]:
    """A user's ``.smi`` / ``.csv`` molecules -> train/val/test item Datasets (80/10/10, seed 0).

    Args:
        path: the file.
        representation: ``"smiles"`` or ``"selfies"``.
        column: the ``.csv`` column holding SMILES (default: the one named ``smiles``).
        augment: random SMILES per training molecule (see ``molecule_splits``).
        max_len: leave out molecules longer than this many tokens.
        limit: at most this many molecules per split.
    Returns:
        ``{"train", "val", "test"}``; every split's ``meta`` holds the file's cleaning
        report (``invalid``, ``invalid_lines``, ``duplicates``, ``lines``).
    """
    path = Path(path)
    _rep(representation)
    limit = _count(limit, "limit", allow_none=True)
    strings, lines = read_smiles_file(path, column=column)
    mols, report = clean_smiles_lines(strings, lines, source=str(path))
    parts = {k: v[:limit] for k, v in split_items(mols, USER_FRACTIONS, seed=SPLIT_SEED).items()}
    if not all(parts.values()):
        raise DataError(f"{path}: {len(mols)} distinct valid molecules are too few for an 80/10/10 "
                        "train/val/test split (each split needs at least one)")
    return molecule_splits(parts, name=path.name, representation=representation, augment=augment,
                           max_len=max_len, meta={"source": str(path), **report})
