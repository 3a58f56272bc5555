"""Chemistry for molecule generation: SMILES/SELFIES handling and drawing, on RDKit.

RDKit and ``selfies`` come with the ``[chem]`` extra (pip install "genlab[chem]") and are
imported only when a function needs them, so ``import genlab.chem`` always works.

* ``mol`` — ``to_mol``, ``canonical``, ``clean`` (largest fragment, neutralised),
  ``randomize`` (SMILES enumeration for augmentation);
* ``tokens`` — the atom-level SMILES tokeniser and SELFIES conversion/tokenising;
* ``draw`` — ``grid_image`` / ``save_grid`` of 2-D structure drawings.
"""
from .draw import grid_image, save_grid
from .mol import canonical, clean, quiet_rdkit, randomize, require_rdkit, to_mol
from .tokens import from_selfies, to_selfies, tokenize_selfies, tokenize_smiles

__all__ = ["canonical", "clean", "from_selfies", "grid_image", "quiet_rdkit", "randomize",
           "require_rdkit", "save_grid", "to_mol", "to_selfies", "tokenize_selfies",
           "tokenize_smiles"]
