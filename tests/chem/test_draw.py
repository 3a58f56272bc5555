"""genlab.chem.draw: molecule grids, with invalid strings as labelled cells."""
import numpy as np
import pytest

pytest.importorskip("rdkit")

from genlab.chem import grid_image, save_grid  # noqa: E402


def test_grid_has_one_cell_per_molecule_and_survives_invalid_strings(tmp_path):
    smiles = ["CCO", "not a molecule", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "", "C1CC", "CN"]
    img = grid_image(smiles, legends=[f"m{i}" for i in range(7)], per_row=3, size=100)
    assert img.size == (300, 300) and img.mode == "RGB"
    a = np.asarray(img)
    cell = lambda i: a[(i // 3) * 100:(i // 3 + 1) * 100, (i % 3) * 100:(i % 3 + 1) * 100]
    grey = np.array([236, 236, 236])
    for i in (1, 4, 5):  # invalid: grey background
        assert (cell(i)[-5:, -5:] == grey).all()
    for i in (0, 2, 3, 6):  # drawn: white background with dark strokes
        assert (cell(i)[:3, :3] == 255).all() and cell(i).min() < 100
    path = save_grid(smiles[:2], tmp_path / "sub" / "g.png", size=64)
    assert path.is_file() and path.stat().st_size > 0


def test_grid_errors():
    with pytest.raises(ValueError, match="at least one"):
        grid_image([])
    with pytest.raises(ValueError, match="2 legends for 1"):
        grid_image(["C"], legends=["a", "b"])
