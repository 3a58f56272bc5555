"""The molecule tokenizers of the sequence family (``smiles``, ``selfies``), and a
sequence model trained on MOSES end to end."""
import pytest
import torch

from genlab.errors import DataError
from genlab.models.sequence import LSTM, RecurrentConfig, SelfiesTokenizer, SmilesTokenizer
from genlab.data.tokenizers import BOS_ID, EOS_ID, SPECIALS, from_config, train_tokenizer

MOSES = ["CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1", "CC(C)(C)C(=O)C(Oc1ccc(Cl)cc1)n1ccnc1",
         "Cc1c(Cl)cccc1Nc1ncccc1C(=O)OCC(O)CO", "Cn1cnc2c1c(=O)n(CC(O)CO)c(=O)n2C"]


def test_smiles_tokenizer_vocab_round_trip_and_config():
    tok = SmilesTokenizer.train(MOSES)
    assert tuple(tok.vocab[:3]) == SPECIALS
    assert "Cl" in tok.vocab and "[nH]" in tok.vocab and "l" not in tok.vocab
    assert tok.vocab[3:] == sorted(tok.vocab[3:])
    for smi in MOSES:
        ids = tok.encode(smi)
        assert min(ids) >= len(SPECIALS) and tok.decode(ids) == smi
        assert tok.decode([BOS_ID, *ids, EOS_ID]) == smi  # specials dropped
    cfg = tok.to_config()
    assert cfg["tokenizer"] == "smiles"
    again = from_config(cfg["tokenizer"], cfg["vocab"], cfg["merges"])
    assert isinstance(again, SmilesTokenizer) and again.vocab == tok.vocab
    assert train_tokenizer("smiles", MOSES[:1], alphabet=["Br"]).index["Br"] > 2


def test_unknown_token_is_named():
    tok = SmilesTokenizer.train(MOSES)
    with pytest.raises(ValueError, match=r"token 'Br' at position 6 of 'CCCCC\(Br\)C'"):
        tok.encode("CCCCC(Br)C")
    with pytest.raises(ValueError, match="position 2"):
        tok.encode("CC C")  # not a SMILES token at all


def test_selfies_tokenizer_round_trip():
    pytest.importorskip("selfies")
    from genlab.chem import to_selfies

    strings = [to_selfies(s) for s in MOSES]
    tok = train_tokenizer("selfies", strings)
    assert isinstance(tok, SelfiesTokenizer) and "[Ring1]" in tok.vocab
    assert all(tok.decode(tok.encode(s)) == s for s in strings)
    with pytest.raises(ValueError, match=r"SELFIES token '\[Xe\]'"):
        tok.encode("[C][Xe]")


def test_configs_accept_the_molecule_tokenizers():
    assert RecurrentConfig(tokenizer="smiles").tokenizer == "smiles"
    assert RecurrentConfig(tokenizer="selfies").tokenizer == "selfies"
    with pytest.raises(ValueError, match="'smiles', 'selfies'"):
        RecurrentConfig(tokenizer="inchi")
    with pytest.raises(ValueError, match="unknown tokenizer 'inchi'"):
        from_config("inchi", SPECIALS)


@pytest.fixture(scope="module")
def moses_small():
    from genlab.data.datasets import load_splits

    try:
        return load_splits("moses", limit=96)
    except DataError as err:
        pytest.skip(str(err))


def test_lstm_trains_samples_and_reloads_on_moses(moses_small, tmp_path):
    cfg = RecurrentConfig(hidden=32, layers=1)
    model = LSTM(cfg).fit(moses_small["train"], {"epochs": 2, "batch_size": 32, "lr": 3e-3, "seed": 0})
    assert model.config.tokenizer == "smiles" and model.config.start == "<bos>"
    lp = model.log_prob(moses_small["test_scaffolds"].x)  # vocabulary covers the held-out splits
    assert lp.shape == (96,) and torch.isfinite(lp).all()
    x = model.sample(8, generator=torch.Generator().manual_seed(0))
    texts = model.samples_to_text(x)
    assert len(texts) == 8 and all(isinstance(t, str) for t in texts)
    model.save(tmp_path / "m")
    from genlab import load

    again = load(tmp_path / "m")
    assert again.samples_to_text(again.sample(8, generator=torch.Generator().manual_seed(0))) == texts


def test_cli_trains_a_smiles_lstm_and_prints_smiles(moses_small, tmp_path, capsys):
    from genlab.cli import main

    out = tmp_path / "run"
    assert main(["train", "lstm", "--data", "moses", "--limit", "64", "--data-opt", "n_eval=16",
                 "--epochs", "1", "--batch-size", "32", "--hidden=32", "--layers=1", "--out", str(out)]) == 0
    import json

    assert json.loads((out / "run.json").read_text())["data_options"] == {"limit": 64, "n_eval": 16}
    capsys.readouterr()
    assert main(["sample", str(out), "-n", "5"]) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if l and not l.startswith("---")]
    assert 1 <= len(lines) <= 5  # an empty sample prints an empty line, dropped here
    assert main(["train", "lstm", "--data", "moses", "--data-opt", "n_train", "--out", str(tmp_path / "x")]) == 2


def test_caption_tokenizer_unknown_words_padding_and_rows():
    from genlab.data.tokenizers import UNK, UNK_ID, CaptionTokenizer, encode_captions

    tok = train_tokenizer("caption", ["a red circle at the top left", "top-left: red circle"])
    assert isinstance(tok, CaptionTokenizer) and tok.vocab[:4] == [*SPECIALS, UNK]
    assert CaptionTokenizer.split("Top-Left: RED") == ["top", "-", "left", ":", "red"]
    assert tok.decode(tok.encode("Top-Left: red circle")) == "top-left: red circle"
    assert tok.encode("a zebra") == [tok.index["a"], UNK_ID]  # never an error
    rows = encode_captions(tok, ["red circle", "a red circle at the top left", ""], 4)
    assert rows.dtype == torch.int64 and rows.shape == (3, 4)
    assert rows[0, 2:].tolist() == [0, 0] and rows[2].tolist() == [0, 0, 0, 0]
    assert tok.decode(rows[1]) == "a red circle at"  # cut at the length
    assert encode_captions(tok, ["red", "red circle"]).shape == (2, 2)
    with pytest.raises(ValueError, match="<unk>"):
        CaptionTokenizer([*SPECIALS, "red"])
