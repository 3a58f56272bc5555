"""genlab.chem.mol: parsing, canonical forms, clean-up and random SMILES on known molecules."""
import subprocess
import sys

import pytest

pytest.importorskip("rdkit")

from genlab.chem import canonical, clean, randomize, to_mol  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
# real MOSES training molecules (the first lines of train.csv.gz)
MOSES = ["CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1", "CC(C)(C)C(=O)C(Oc1ccc(Cl)cc1)n1ccnc1",
         "Cc1c(Cl)cccc1Nc1ncccc1C(=O)OCC(O)CO", "Cn1cnc2c1c(=O)n(CC(O)CO)c(=O)n2C"]


def test_importing_genlab_chem_does_not_import_rdkit():
    code = "import sys, genlab, genlab.chem; print('rdkit' in sys.modules, 'selfies' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("spelling", [ASPIRIN, "OC(=O)c1ccccc1OC(C)=O", "O=C(O)c1ccccc1OC(=O)C",
                                      "CC(=O)OC1=CC=CC=C1C(O)=O"])  # last one Kekulé
def test_every_spelling_of_aspirin_has_one_canonical_form(spelling):
    assert canonical(spelling) == ASPIRIN


def test_canonical_keeps_or_drops_stereo():
    assert canonical("C[C@H](N)C(=O)O") == "C[C@H](N)C(=O)O"
    assert canonical("C[C@H](N)C(=O)O", isomeric=False) == "CC(N)C(=O)O"
    assert canonical("[13CH4]", isomeric=False) == "C"


@pytest.mark.parametrize("bad", ["", "   ", "C1CC", "c1cccc1", "C(C", "[Xx]", "CC(C)(C)(C)(C)C", None, 42])
def test_unparsable_strings_are_none_and_silent(bad, capfd):
    assert to_mol(bad) is None
    assert canonical(bad) is None
    assert clean(bad) is None
    err = capfd.readouterr().err
    assert "SMILES Parse Error" not in err and "kekulize" not in err


def test_clean_strips_salts_and_neutralises():
    assert clean("CC(=O)[O-].[Na+]") == "CC(=O)O"
    assert clean("[Na+].CC(=O)[O-]") == "CC(=O)O"
    assert clean("CCN.Cl") == "CCN"                           # hydrochloride salt
    assert clean("C[NH3+].[Cl-]") == "CN"                     # protonated amine -> neutral
    assert clean("C[N+](C)(C)C.[Cl-]") == "C[N+](C)(C)C"      # quaternary: no neutral form
    assert clean("O.O.OC(=O)c1ccccc1OC(C)=O") == ASPIRIN      # water of crystallisation
    assert clean(ASPIRIN) == ASPIRIN


def test_randomize_gives_reproducible_spellings_of_the_same_molecule():
    for smi in MOSES + [ASPIRIN]:
        out = randomize(smi, 5, seed=3)
        assert len(out) == 5 and out == randomize(smi, 5, seed=3)
        assert {canonical(s) for s in out} == {canonical(smi)}
    many = randomize(MOSES[1], 20, seed=0)
    assert len(set(many)) > 5 and many != randomize(MOSES[1], 20, seed=1)
    assert randomize(ASPIRIN, 0, seed=0) == []


def test_randomize_refuses_bad_input():
    with pytest.raises(ValueError, match="not a valid SMILES"):
        randomize("C1CC", 2, seed=0)
    with pytest.raises(ValueError, match="seed"):
        randomize(ASPIRIN, 2, seed=-1)
    with pytest.raises(ValueError, match="n must be"):
        randomize(ASPIRIN, 1.5, seed=0)
