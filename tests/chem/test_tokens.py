"""genlab.chem.tokens: the atom-level SMILES tokeniser and SELFIES."""
import pytest

from genlab.chem import tokenize_selfies, tokenize_smiles

MOSES = ["CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1", "CC(C)(C)C(=O)C(Oc1ccc(Cl)cc1)n1ccnc1",
         "Cc1c(Cl)cccc1Nc1ncccc1C(=O)OCC(O)CO", "Cn1cnc2c1c(=O)n(CC(O)CO)c(=O)n2C",
         "[H]N=c1c(C#N)c(C)c(C(=O)OCC)nn1-c1ccc(Br)cc1"]


def test_tokens_are_atoms_bonds_branches_and_ring_closures():
    assert tokenize_smiles("c1ccc(Cl)cc1Br") == ["c", "1", "c", "c", "c", "(", "Cl", ")", "c", "c", "1", "Br"]
    assert tokenize_smiles("C[C@@H](O)[NH3+]") == ["C", "[C@@H]", "(", "O", ")", "[NH3+]"]
    assert tokenize_smiles("C%12CC%12") == ["C", "%12", "C", "C", "%12"]
    assert tokenize_smiles("C%(123)C") == ["C", "%(123)", "C"]
    assert tokenize_smiles("F/C=C\\F") == ["F", "/", "C", "=", "C", "\\", "F"]
    assert tokenize_smiles("N#N.[Na+]") == ["N", "#", "N", ".", "[Na+]"]
    assert tokenize_smiles("Sc1ncco1") == ["S", "c", "1", "n", "c", "c", "o", "1"]  # S then aromatic c
    assert tokenize_smiles("") == []


@pytest.mark.parametrize("smi", MOSES)
def test_tokens_join_back_to_real_moses_molecules(smi):
    tokens = tokenize_smiles(smi)
    assert "".join(tokens) == smi
    assert "l" not in tokens and "r" not in tokens  # Cl and Br are single atoms


@pytest.mark.parametrize("bad, pos", [("CC C", 2), ("C[NH", 1), ("CC&C", 2), ("C%1C", 1)])
def test_untokenisable_strings_name_the_position(bad, pos):
    with pytest.raises(ValueError, match=f"at position {pos}"):
        tokenize_smiles(bad)


def test_selfies_round_trip_and_tokens_match_the_selfies_package():
    sf = pytest.importorskip("selfies")
    pytest.importorskip("rdkit")
    from genlab.chem import canonical, from_selfies, to_selfies

    for smi in MOSES:
        s = to_selfies(smi)
        assert tokenize_selfies(s) == list(sf.split_selfies(s))
        assert canonical(from_selfies(s)) == canonical(smi)
    assert tokenize_selfies("[C].[O]") == ["[C]", ".", "[O]"]
    assert to_selfies("C1CC") is None and to_selfies("") is None


def test_any_selfies_symbol_sequence_decodes_to_a_valid_molecule():
    pytest.importorskip("selfies")
    pytest.importorskip("rdkit")
    import random

    from genlab.chem import from_selfies, to_mol, to_selfies

    alphabet = sorted({t for smi in MOSES for t in tokenize_selfies(to_selfies(smi))})
    rng = random.Random(0)
    for _ in range(200):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        smi = from_selfies(s)
        assert smi == "" or to_mol(smi) is not None, s


def test_bad_selfies_are_refused():
    pytest.importorskip("selfies")
    from genlab.chem import from_selfies

    with pytest.raises(ValueError, match="position 3"):
        tokenize_selfies("[C]C[O]")
    with pytest.raises(ValueError, match="cannot decode SELFIES"):
        from_selfies("[C][O")
