"""genlab.data.molecules (MOSES) and genlab.data.molecule_files (users' SMILES files)."""
import importlib.util

import pytest
import torch

from genlab.data import molecules
from genlab.data.datasets import load, load_splits
from genlab.errors import DataError
from genlab.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, from_config


def _moses_or_skip():
    try:
        molecules.moses_file("train")
    except DataError as err:
        pytest.skip(str(err))


def _decode(ds):
    cfg = ds.meta["tokenizer"]
    tok = from_config(cfg["tokenizer"], cfg["vocab"], cfg["merges"])
    out = []
    for row in ds.x.tolist():
        assert row[0] == BOS_ID
        out.append(tok.decode(row[1:row.index(EOS_ID)]))
    return out


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- MOSES files
def test_moses_files_are_found_without_importing_moses():
    _moses_or_skip()
    for name in molecules.MOSES_FILES:
        assert molecules.moses_file(name).is_file()
    import sys

    assert "moses" not in sys.modules
    with pytest.raises(DataError, match="unknown MOSES file 'val'"):
        molecules.moses_file("val")


def test_missing_molsets_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DataError, match=r"pip install --no-deps molsets==0\.3\.1"):
        molecules.moses_file("train")


def test_moses_split_sizes_are_the_published_ones():
    _moses_or_skip()
    assert len(molecules.moses_smiles("test")) == 176_074
    assert len(molecules.moses_smiles("test_scaffolds")) == 176_225
    assert molecules.moses_smiles("test")[0] == "CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1"


# ----------------------------------------------------------------------------- MOSES datasets
def test_moses_splits_rows_meta_and_vocabulary():
    _moses_or_skip()
    sp = load_splits("moses", limit=40)
    assert set(sp) == {"train", "val", "test", "test_scaffolds"}
    assert set(sp["train"].meta["items"]).isdisjoint(sp["val"].meta["items"])
    assert sp["test"].meta["items"] == list(molecules.moses_smiles("test")[:40])
    vocab = sp["train"].meta["tokenizer"]["vocab"]
    assert sp["train"].meta["tokenizer"]["tokenizer"] == "smiles"
    assert tuple(vocab[3:]) == molecules.MOSES_TOKENS["smiles"]  # all of MOSES, whatever was loaded
    for ds in sp.values():
        m = ds.meta
        assert ds.kind == "sequence" and len(ds) == 40 and ds.x.shape[1] == molecules.MOSES_MAX_TOKENS["smiles"] + 2
        assert m["start"] == "<bos>" and m["layout"] == "items" and m["molecules"] is True
        assert m["representation"] == "smiles" and m["tokenizer"]["vocab"] == vocab
        assert _decode(ds) == m["items"]  # rows are exactly the molecules
        assert (ds.x[:, -1] == PAD_ID).all()


def test_moses_is_deterministic_and_n_train_takes_a_prefix():
    _moses_or_skip()
    a = load_splits("moses", n_train=30, n_eval=10)
    b = load_splits("moses", n_train=60, n_eval=20)
    assert b["train"].meta["items"][:30] == a["train"].meta["items"]
    assert b["val"].meta["items"][:10] == a["val"].meta["items"]
    assert torch.equal(load_splits("moses", n_train=30, n_eval=10)["train"].x, a["train"].x)
    assert len(a["train"]) == 30 and len(a["test_scaffolds"]) == 10
    assert load("moses", split="test_scaffolds", limit=5).meta["split"] == "test_scaffolds"


def test_moses_selfies_rows_decode_to_the_same_molecules():
    _moses_or_skip()
    pytest.importorskip("selfies")
    pytest.importorskip("rdkit")
    from genlab.chem import canonical, from_selfies

    sp = load_splits("moses-selfies", limit=30)
    ds = sp["test"]
    assert ds.meta["representation"] == "selfies" and ds.meta["tokenizer"]["tokenizer"] == "selfies"
    assert tuple(ds.meta["tokenizer"]["vocab"][3:]) == molecules.MOSES_TOKENS["selfies"]
    texts = _decode(ds)
    assert all(t.startswith("[") for t in texts)
    assert [canonical(from_selfies(t)) for t in texts] == [canonical(s) for s in ds.meta["items"]]
    import os
    from pathlib import Path

    cached = sorted((Path(os.environ["GENLAB_CACHE"]) / "selfies").glob("*.txt.gz"))
    assert len(cached) == 4  # one per split
    again = load_splits("moses-selfies", limit=30)  # second load comes from the disk cache
    assert torch.equal(again["test"].x, ds.x)
    assert molecules.selfies_of(["CCO", "C1CC"])[1] is None


def test_moses_augment_adds_random_spellings_of_the_training_molecules():
    _moses_or_skip()
    pytest.importorskip("rdkit")
    from genlab.chem import canonical

    sp = load_splits("moses", limit=10, augment=3)
    tr = sp["train"]
    mols = tr.meta["items"]
    assert len(mols) == 10 and tr.meta["augment"] == 3 and 10 < len(tr) <= 40
    rows = _decode(tr)
    assert {canonical(r) for r in rows} == {canonical(m) for m in mols}
    assert len(set(rows)) == len(rows) and set(mols) <= set(rows)
    assert len(sp["val"]) == 10 and sp["val"].meta["augment"] == 0
    assert torch.equal(load_splits("moses", limit=10, augment=3)["train"].x, tr.x)


def test_moses_option_errors():
    _moses_or_skip()
    with pytest.raises(DataError, match="n_train must be an integer >= 1"):
        load_splits("moses", n_train=0)
    with pytest.raises(DataError, match="augment makes random SMILES"):
        molecules.moses_splits(representation="selfies", augment=1, limit=5)
    with pytest.raises(DataError, match="has no option"):
        load_splits("moses-selfies", augment=1)
    with pytest.raises(DataError, match="representation must be"):
        molecules.moses_splits(representation="inchi")
    sp = load_splits("moses", limit=50, max_len=30)
    assert sp["train"].x.shape[1] == 32 and len(sp["train"]) + sp["train"].meta["too_long"] == 50


def test_item_splits_takes_a_molecule_tokenizer():
    from genlab.data.text import item_splits

    smiles = ["CCO", "CCN", "c1ccccc1Cl", "CC(=O)O", "CCBr", "C1CCCCC1", "CCCCCC", "OCCO", "NCCN", "CC#N",
              "CCCl", "C=O", "CNC"]
    sp = item_splits(smiles, name="m", tokenizer="smiles", max_len=5)
    assert sp["train"].meta["tokenizer"]["tokenizer"] == "smiles" and "Cl" in sp["train"].meta["tokenizer"]["vocab"]
    kept = [s for ds in sp.values() for s in ds.meta["items"]]
    assert sorted(kept) == sorted(s for s in smiles if s not in ("c1ccccc1Cl", "C1CCCCC1", "CCCCCC", "CC(=O)O"))
    assert sp["train"].x.shape[1] == 4 + 2  # the longest kept item (OCCO, NCCN, CC#N) + <bos>/<eos>
    for ds in sp.values():
        assert _decode(ds) == ds.meta["items"]


# ----------------------------------------------------------------------------- user files
SMI = """SMILES name
CC(=O)Oc1ccccc1C(=O)O aspirin
CC(=O)[O-].[Na+] sodium_acetate

C1CC broken_ring
c1ccccc1 benzene
not_a_smiles x
OC(=O)c1ccccc1OC(C)=O aspirin_again
CCO
CCN
CCCl
c1ccncc1
CC(C)O
CCOCC
C1CCCCC1
"""


def test_smi_file_is_cleaned_and_invalid_lines_are_counted(tmp_path):
    pytest.importorskip("rdkit")
    path = tmp_path / "mols.smi"
    path.write_text(SMI)
    with pytest.warns(UserWarning, match=r"2 of 13 lines are not valid molecules .*lines 5, 7"):
        sp = load_splits(path)
    items = [s for ds in sp.values() for s in ds.meta["items"]]
    assert sorted(items) == sorted(["CC(=O)Oc1ccccc1C(=O)O", "CC(=O)O", "c1ccccc1", "CCO", "CCN", "CCCl",
                                    "c1ccncc1", "CC(C)O", "CCOCC", "C1CCCCC1"])
    m = sp["train"].meta
    assert m["invalid"] == 2 and m["invalid_lines"] == [5, 7] and m["duplicates"] == 1 and m["lines"] == 13
    assert m["molecules"] is True and len(sp["train"]) == 8 and len(sp["val"]) == len(sp["test"]) == 1
    for ds in sp.values():
        assert _decode(ds) == ds.meta["items"]


def test_csv_with_a_smiles_column_and_selfies(tmp_path):
    pytest.importorskip("rdkit")
    pytest.importorskip("selfies")
    path = tmp_path / "mols.csv"
    rows = ["CCO", "C1CC", "c1ccccc1", "CCN", "CCC", "CCCC", "CCCCO", "OCCO", "CC=O", "CC#N"]
    path.write_text("id;Smiles;activity\n" + "".join(f"{i};{s};0.5\n" for i, s in enumerate(rows)))
    with pytest.warns(UserWarning, match=r"1 of 10 lines is not a valid molecule .*line 3\)"):
        sp = load_splits(path, representation="selfies")
    assert sp["train"].meta["invalid_lines"] == [3] and sp["train"].meta["representation"] == "selfies"
    assert all(t.startswith("[") for t in _decode(sp["train"]))
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n19,20\n")
    assert load_splits(table)["train"].kind == "table"  # no smiles column: still a table


def test_files_without_molecules_or_with_bad_options(tmp_path):
    pytest.importorskip("rdkit")
    bad = tmp_path / "bad.smi"
    bad.write_text("C1CC\nxyz\n\n")
    with pytest.raises(DataError, match="none of its 2 lines is a valid molecule"):
        load_splits(bad)
    few = tmp_path / "few.smi"
    few.write_text("CCO\nCCN\n")
    with pytest.raises(DataError, match="too few"):
        load_splits(few)
    good = tmp_path / "good.smi"
    good.write_text("\n".join(["CCO", "CCN", "CCC", "CCCC", "CCCO", "CCCN", "OCCO", "NCCN", "CCOC", "CCNC"]))
    with pytest.raises(DataError, match="has no option"):
        load_splits(good, block_size=3)
    with pytest.raises(DataError, match="has no column 'mol'"):
        load_splits(_csv(tmp_path), column="mol")
    assert len(load(good, split="all")) == 10


def _csv(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text("SMILES\nCCO\nCCN\n")
    return p


@pytest.mark.slow
@pytest.mark.parametrize("representation", ["smiles", "selfies"])
def test_moses_token_constants_match_all_of_moses(representation):
    """MOSES_TOKENS / MOSES_MAX_TOKENS are the alphabet and longest molecule of all three
    splits (SELFIES: ~6 minutes, converting 1.94M molecules)."""
    _moses_or_skip()
    from genlab.chem import to_selfies, tokenize_selfies, tokenize_smiles

    split = tokenize_smiles if representation == "smiles" else (lambda s: tokenize_selfies(to_selfies(s)))
    seen, longest = set(), 0
    for name in molecules.MOSES_SPLITS:
        for smi in molecules.moses_smiles(name):
            tokens = split(smi)
            seen.update(tokens)
            longest = max(longest, len(tokens))
    assert tuple(sorted(seen)) == molecules.MOSES_TOKENS[representation]
    assert longest == molecules.MOSES_MAX_TOKENS[representation]
