"""Pictures of molecules: a grid of 2-D structure drawings (RDKit's drawing code).

Used by run reports to show generated molecules. A string that is not a valid molecule
(a model's invalid sample) becomes a grey cell labelled ``invalid`` with the string
itself, so a grid of samples shows the failures instead of crashing on them.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

from .mol import to_mol

_INVALID_FILL = (236, 236, 236)
_TEXT = (90, 90, 90)


def _cell(mol: Any, legend: str, size: int) -> Any:
    """One molecule drawn on a ``size`` x ``size`` white square (PNG via Cairo)."""
    from PIL import Image
    from rdkit.Chem.Draw import rdMolDraw2D

    d2d = rdMolDraw2D.MolDraw2DCairo(size, size)
    d2d.drawOptions().fixedBondLength = size / 8  # small molecules are not blown up to fill the cell
    d2d.DrawMolecule(mol, legend=legend)
    d2d.FinishDrawing()
    return Image.open(io.BytesIO(d2d.GetDrawingText())).convert("RGB")


def _invalid_cell(text: str, legend: str, size: int) -> Any:
    """A grey square saying ``invalid`` with (the start of) the string that failed."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (size, size), _INVALID_FILL)
    draw = ImageDraw.Draw(img)
    pt = max(10, size // 15)
    try:
        font = ImageFont.load_default(size=pt)  # scalable from Pillow 10.1
    except TypeError:
        font, pt = ImageFont.load_default(), 11
    width = max(8, int(size / (0.62 * pt)) - 2)  # characters per line
    lines = ["invalid"] + [text[i:i + width] for i in range(0, min(len(text), 4 * width), width)]
    if legend:
        lines.append(legend[:width])
    for k, line in enumerate(lines):
        draw.text((6, 6 + int(1.4 * pt) * k), line, fill=_TEXT, font=font)
    return img


def grid_image(smiles_list: Sequence[str], *, legends: Sequence[str] | None = None,
               per_row: int = 6, size: int = 200) -> Any:
    """Draw molecules in a grid.

    Args:
        smiles_list: SMILES strings; invalid or empty ones become labelled grey cells.
        legends: one caption per molecule (default: none).
        per_row: cells per row.
        size: cell width and height in pixels.
    Returns:
        A ``PIL.Image.Image`` (RGB) of ``ceil(n / per_row)`` rows of ``min(n, per_row)`` cells.
    Raises:
        ValueError: no molecules, mismatched ``legends``, or a bad ``per_row`` / ``size``.
        ImportError: RDKit is not installed.
    """
    from PIL import Image

    smiles_list = list(smiles_list)
    if not smiles_list:
        raise ValueError("grid_image needs at least one SMILES string")
    legends = [""] * len(smiles_list) if legends is None else [str(t) for t in legends]
    if len(legends) != len(smiles_list):
        raise ValueError(f"{len(legends)} legends for {len(smiles_list)} molecules")
    if per_row < 1 or size < 32:
        raise ValueError(f"per_row must be >= 1 and size >= 32, got per_row={per_row}, size={size}")
    cols = min(per_row, len(smiles_list))
    rows = -(-len(smiles_list) // cols)
    grid = Image.new("RGB", (cols * size, rows * size), (255, 255, 255))
    for i, (s, legend) in enumerate(zip(smiles_list, legends)):
        mol = to_mol(s)
        cell = _cell(mol, legend, size) if mol is not None else _invalid_cell(str(s), legend, size)
        grid.paste(cell, ((i % cols) * size, (i // cols) * size))
    return grid


def save_grid(smiles_list: Sequence[str], path: str | Path, *, legends: Sequence[str] | None = None,
              per_row: int = 6, size: int = 200) -> Path:
    """Draw molecules in a grid (see ``grid_image``) and write the picture to ``path``.

    Args:
        smiles_list: SMILES strings.
        path: output file; the format follows the suffix (``.png`` recommended).
        legends, per_row, size: as in ``grid_image``.
    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(smiles_list, legends=legends, per_row=per_row, size=size).save(path)
    return path
