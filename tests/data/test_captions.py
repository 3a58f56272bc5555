"""Captioned datasets: captioned-shapes (procedural, exact ground truth, held-out pairs,
paraphrases) and fashion-mnist-captions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from genlab.data import load, load_splits
from genlab.data.captions import (
    COLOURS, HELDOUT, RGB, SHAPES, caption, decode_captions, fashion_caption, paraphrases,
    shapes_tokenizer,
)
from genlab.data.tokenizers import UNK_ID, from_config
from genlab.errors import DataError
from test_datasets import _fake_fashion  # tests/data is on sys.path (no __init__.py)

FASHION = Path("/usr/share/datasets/fashion-mnist")
HAVE_FASHION = (FASHION / "train-images-idx3-ubyte.gz").is_file()
SMALL = {"n_train": 600, "n_val": 50, "n_test": 300}


@pytest.fixture(scope="module")
def shapes():
    return load_splits("captioned-shapes", **SMALL)


def _names(ds, name):
    values = ds.meta["attribute_values"][name]
    return [values[i] for i in ds.attributes[name].tolist()]


def test_splits_shapes_dtypes_and_determinism(shapes):
    assert list(shapes) == ["train", "val", "test", "heldout", "paraphrased"]
    for key, ds in shapes.items():
        n = {"train": 600, "val": 50}.get(key, 300)
        assert ds.x.shape == (n, 3, 16, 16) and ds.x.dtype == torch.float32
        assert 0 <= float(ds.x.min()) and float(ds.x.max()) <= 1
        assert ds.text.dtype == torch.int64 and ds.text.shape[0] == n
        assert set(ds.attributes) == {"shape", "colour", "count", "position"}
        assert ds.meta["split"] == key and ds.y is None
    again = load_splits("captioned-shapes", **SMALL)
    for key in shapes:
        assert torch.equal(shapes[key].x, again[key].x) and torch.equal(shapes[key].text, again[key].text)
    other = load("captioned-shapes", seed=1, **SMALL)
    assert not torch.equal(other.x, shapes["train"].x)
    # the first k images do not depend on the split size; limit draws only those
    cut = load_splits("captioned-shapes", limit=40)
    assert torch.equal(cut["train"].x, shapes["train"].x[:40]) and len(cut["heldout"]) == 40
    big = load("captioned-shapes", split="test", size=32, limit=8)
    assert big.x.shape == (8, 3, 32, 32)


def test_ground_truth_matches_the_pixels(shapes):
    ds = shapes["train"]
    x = ds.x.numpy()
    lit = x.max(1) > 0
    for i in range(len(ds)):
        colours = np.unique(x[i][:, lit[i]].T, axis=0)
        assert len(colours) == 1  # one colour, a brightness of the named one
        rgb = colours[0] / colours[0].max()
        assert np.array_equal(rgb, RGB[ds.attributes["colour"][i]])
        count = ndimage.label(lit[i], structure=np.ones((3, 3)))[1]
        assert count == int(ds.attributes["count"][i]) + 1
    centres = np.array(ds.meta["cell_centers"]["one"])
    one = (ds.attributes["count"] == 0).numpy()
    for i in np.flatnonzero(one):
        ys, xs = np.nonzero(lit[i])
        centroid = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
        nearest = np.argmin(((centres - centroid) ** 2).sum(1))
        assert nearest == int(ds.attributes["position"][i])
    assert (ds.attributes["position"][~torch.from_numpy(one)] == 5).all()
    # the shape is told by its pixels: squares fill their box, crosses fill little of it
    fill = []
    for i in np.flatnonzero(one):
        ys, xs = np.nonzero(lit[i])
        fill.append(lit[i].sum() / ((np.ptp(xs) + 1) * (np.ptp(ys) + 1)))
    fill = np.array(fill)
    kind = ds.attributes["shape"].numpy()[one]
    square, cross = SHAPES.index("square"), SHAPES.index("cross")
    assert (fill[kind == square] == 1).all() and (fill[kind == cross] < 0.6).all()
    assert (fill[(kind != square)] < 1).all()


def test_heldout_pairs_only_in_heldout(shapes):
    held = {tuple(p) for p in shapes["train"].meta["heldout_combinations"]}
    assert held == set(HELDOUT) and len({c for _, c in held}) == len(held)
    assert {s for s, _ in held} == set(SHAPES)
    for key in ("train", "val", "test", "paraphrased"):
        pairs = set(zip(_names(shapes[key], "shape"), _names(shapes[key], "colour")))
        assert not pairs & held
    assert len(set(zip(_names(shapes["train"], "shape"), _names(shapes["train"], "colour")))) == 20
    assert set(zip(_names(shapes["heldout"], "shape"), _names(shapes["heldout"], "colour"))) == held


def test_captions_decode_to_the_templates(shapes):
    for key in ("train", "heldout"):
        ds = shapes[key]
        attrs = zip(*(ds.attributes[k].tolist() for k in ("shape", "colour", "count", "position")))
        want = [caption(s, c, n + 1, p) for s, c, n, p in attrs]
        assert decode_captions(ds) == want
    assert caption("circle", "red", 1, "top left") == "a red circle at the top left"
    assert caption("square", "blue", 1, "center") == "a blue square in the center"
    assert caption("triangle", "green", 2, "none") == "two green triangles"
    assert caption("cross", "yellow", 3, "none") == "three yellow crosses"
    with pytest.raises(ValueError, match="does not go with count 2"):
        caption("cross", "yellow", 2, "center")
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        caption("cross", "pink")


def test_paraphrases_differ_from_templates_and_have_no_unknown_words(shapes):
    tok = shapes_tokenizer()
    assert shapes["test"].meta["tokenizer"] == tok.to_config()
    templates = set()
    for s in SHAPES:
        for c in COLOURS:
            for n, ps in ((1, ("top left", "bottom right", "center")), (2, ("none",)), (3, ("none",))):
                templates.update(caption(s, c, n, p) for p in ps)
    for s in SHAPES[:2]:
        for n, p in ((1, "top left"), (1, "center"), (2, "none"), (3, "none")):
            for text in paraphrases(s, "red", n, p):
                assert text not in templates and UNK_ID not in tok.encode(text)
                assert tok.decode(tok.encode(text)) == text
    assert "top-left: red circle" in paraphrases("circle", "red", 1, "top left")
    assert "a pair of green triangles" in paraphrases("triangle", "green", 2, "none")
    test, para = shapes["test"], shapes["paraphrased"]
    assert para.x is test.x and para.meta["caption_style"] == "paraphrase"
    got = decode_captions(para)
    assert not set(got) & set(decode_captions(test))
    attrs = zip(*(test.attributes[k].tolist() for k in ("shape", "colour", "count", "position")))
    assert all(g in paraphrases(s, c, n + 1, p) for g, (s, c, n, p) in zip(got, attrs))
    assert UNK_ID not in para.text


def test_caption_tokenizer_round_trip_unknown_words_and_config():
    tok = shapes_tokenizer()
    ids = tok.encode("A RED circle, at the Top-Left: purple!")
    assert ids.count(UNK_ID) == 2  # "purple", "!"
    assert tok.decode(ids) == "a red circle, at the top-left: <unk> <unk>"
    assert tok.encode("") == [] and tok.decode([0, 0]) == ""
    cfg = tok.to_config()
    again = from_config(cfg["tokenizer"], cfg["vocab"], cfg["merges"])
    assert cfg["tokenizer"] == "caption" and again.vocab == tok.vocab


def test_all_split_keeps_captions_and_bad_options():
    ds = load("captioned-shapes", split="all", limit=10)
    assert len(ds) == 30 and ds.text.shape[0] == 30 and ds.attributes["shape"].shape == (30,)
    with pytest.raises(DataError, match="size must be one of"):
        load("captioned-shapes", size=20)
    with pytest.raises(DataError, match="n_train must be a positive integer"):
        load("captioned-shapes", n_train=0)
    with pytest.raises(DataError, match="limit must be a positive integer"):
        load("captioned-shapes", limit=0)


def _check_fashion(splits) -> None:
    for ds in splits.values():
        assert ds.x.shape[1:] == (1, 28, 28) and torch.equal(ds.attributes["class"], ds.y)
        caps = decode_captions(ds)
        for label, text in zip(ds.y.tolist(), caps):
            assert text in {fashion_caption(label, t) for t in range(3)}
    assert fashion_caption(7) == "a photo of a sneaker" and fashion_caption(9, 1) == "an ankle boot"
    assert fashion_caption(0, 2) == "a picture of a t-shirt"


def test_fashion_mnist_captions_on_fake_files(tmp_path):
    _fake_fashion(tmp_path)
    splits = load_splits("fashion-mnist-captions", root=tmp_path, limit=15)
    assert list(splits) == ["train", "val", "test"] and len(splits["train"]) == 15
    _check_fashion(splits)


@pytest.mark.skipif(not HAVE_FASHION, reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_captions():
    splits = load_splits("fashion-mnist-captions", limit=200)
    _check_fashion(splits)
    plain = load("fashion-mnist", split="test", limit=200)
    assert torch.equal(splits["test"].x, plain.x) and torch.equal(splits["test"].y, plain.y)
    assert splits["test"].meta["attribute_values"]["class"][9] == "Ankle boot"
