"""Packed datasets (issue 16, data larger than memory): round trips for every kind, the
streamed and resumable packing of an image folder, training on memory-mapped splits equal
to training in memory, and one-line errors for what can go wrong."""
import json

import numpy as np
import pytest
import torch

import genlab
from genlab.data.dataset import Dataset
from genlab.data.datasets import load_splits
from genlab.data.packed import (META_FILE, PROGRESS_FILE, PackError, PackedArray, PackedDataset, describe,
                                load_packed, pack, pack_image_folder)

TRAIN = {"epochs": 1, "batch_size": 32, "progress": False, "seed": 0}


def _same_splits(a, b):
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k].x, b[k].x[:]), k
        assert (a[k].y is None and b[k].y is None) or torch.equal(a[k].y, b[k].y), k
        assert a[k].kind == b[k].kind and a[k].classes == b[k].classes


def test_a_registered_dataset_round_trips(tmp_path):
    out = pack("digits", tmp_path / "digits.gldata", progress=False)
    info = json.loads((out / META_FILE).read_text())
    assert info["storage"] == "float16" and info["source"] == "digits"  # k/16 levels: exact in float16
    _same_splits(load_splits("digits"), load_splits(out))
    lazy = load_packed(out, in_memory_bytes=0)
    assert isinstance(lazy["train"], PackedDataset) and isinstance(lazy["train"].x, PackedArray)
    _same_splits(load_splits("digits"), lazy)
    assert "1,258 examples, labelled" in describe(out)
    # binarize and limit as for the source
    b = load_splits(out, binarize=True, limit=50)
    ref = load_splits("digits", binarize=True, limit=50)
    assert torch.equal(b["train"].x, ref["train"].x) and len(b["val"]) == 50


def test_storage_types(tmp_path):
    from genlab.data.packed import storage_for

    levels = torch.randint(0, 256, (10, 1, 4, 4)).float() / 255
    assert storage_for("image", levels) == np.uint8
    assert storage_for("image", torch.rand(10, 1, 4, 4)) == np.float32
    assert storage_for("sequence", torch.randint(0, 300, (5, 9))) == np.int16
    assert storage_for("sequence", torch.tensor([[0, 40000]])) == np.int32
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    out = pack(str(corpus), tmp_path / "c.gldata", progress=False, options={"block_size": 16})
    _same_splits(load_splits(str(corpus), block_size=16), load_packed(out, in_memory_bytes=0))
    tok = load_splits(str(corpus), block_size=16)["train"].meta["tokenizer"]
    assert load_splits(out)["train"].meta["tokenizer"] == json.loads(json.dumps(tok))  # JSON: tuples are lists


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for cls in ("cats", "dogs"):
        (root / cls).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(root / cls / f"{i:02d}.png")
    return root


def test_an_image_folder_is_streamed_with_the_same_split(image_folder, tmp_path):
    out = pack_image_folder(image_folder, tmp_path / "p.gldata", chunk=8, progress=False)
    info = json.loads((out / META_FILE).read_text())
    assert info["storage"] == "uint8" and info["shape"] == [3, 12, 10] and info["classes"] == ["cats", "dogs"]
    _same_splits(load_splits(str(image_folder)), load_packed(out, in_memory_bytes=0))
    assert not (out / PROGRESS_FILE).exists()


def test_an_interrupted_pack_resumes_to_the_same_bytes(image_folder, tmp_path):
    whole = pack_image_folder(image_folder, tmp_path / "whole.gldata", chunk=4, progress=False)
    part = tmp_path / "part.gldata"
    with pytest.raises(KeyboardInterrupt):
        pack_image_folder(image_folder, part, chunk=4, progress=False, _stop_after=3)
    assert (part / PROGRESS_FILE).is_file() and not (part / META_FILE).exists()
    with pytest.raises(PackError, match="unfinished pack: run `genlab data pack` .* again"):
        load_splits(part)
    with pytest.raises(PackError, match="another source or other options"):
        pack_image_folder(image_folder, part, size=6, progress=False)
    pack_image_folder(image_folder, part, chunk=4, progress=False)  # continues
    for f in sorted(p.name for p in whole.iterdir()):
        assert (whole / f).read_bytes() == (part / f).read_bytes(), f


def test_training_on_a_memory_mapped_split_equals_training_in_memory(tmp_path):
    out = pack("digits", tmp_path / "d.gldata", progress=False)
    lazy, mem = load_packed(out, in_memory_bytes=0), load_splits("digits")
    a = genlab.models.VAE(hidden=(16,), latent_dim=2).fit(lazy["train"], {**TRAIN, "augment": "shift:1"},
                                                          val=lazy["val"])
    b = genlab.models.VAE(hidden=(16,), latent_dim=2).fit(mem["train"], {**TRAIN, "augment": "shift:1"},
                                                          val=mem["val"])
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_run_on_a_pack_resumes_bit_identically(tmp_path, monkeypatch):
    from genlab.workflow import train_run

    monkeypatch.setenv("GENLAB_PACK_IN_MEMORY_BYTES", "0")  # every split memory-mapped
    out = pack("digits", tmp_path / "d.gldata", progress=False)
    cfg = {"hidden": (16,), "latent_dim": 2}
    straight = train_run("vae", str(out), out=tmp_path / "a", model_config=cfg, train={**TRAIN, "epochs": 2},
                         report=False)
    train_run("vae", str(out), out=tmp_path / "b", model_config=cfg, train=TRAIN, report=False)
    resumed = train_run("vae", None, out=tmp_path / "b", train={"epochs": 2}, resume=True, report=False)
    sa, sb = straight.model().state_dict(), resumed.model().state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_errors_are_one_line(tmp_path, image_folder):
    with pytest.raises(PackError, match=r"a pack's name ends in \.gldata"):
        pack("digits", tmp_path / "d.pack", progress=False)
    busy = tmp_path / "busy.gldata"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    with pytest.raises(PackError, match="not empty and not a genlab pack"):
        pack("digits", busy, progress=False)
    assert (busy / "mine.txt").read_text() == "keep me"
    out = pack("digits", tmp_path / "d.gldata", progress=False)
    with pytest.raises(PackError, match="already holds a finished pack; pass --overwrite"):
        pack("digits", out, progress=False)
    pack("digits", out, overwrite=True, progress=False)
    with pytest.raises(genlab.errors.DataError, match="takes only binarize and limit"):
        load_splits(out, size=4)
    with pytest.raises(PackError, match="apply to image folders only"):
        pack("digits", tmp_path / "e.gldata", size=4, progress=False)
    # a damaged pack: a truncated array, a newer format
    x = out / "train.x.npy"
    x.write_bytes(x.read_bytes()[:1000])
    with pytest.raises(PackError, match="train.x.npy"):
        load_splits(out)
    info = json.loads((out / META_FILE).read_text())
    (out / META_FILE).write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(PackError, match="newer genlab"):
        load_splits(out)
    with pytest.raises(PackError, match="is not a genlab pack"):
        load_packed(tmp_path)


def test_the_data_command(tmp_path, capsys, image_folder):
    from genlab.cli import main

    assert main(["data", "pack", str(image_folder), "-o", str(tmp_path / "p.gldata"), "--size", "6,5"]) == 0
    out = capsys.readouterr().out
    assert "image data of shape (3, 6, 5), stored as uint8" in out and "genlab train MODEL --data" in out
    assert main(["data", "info", str(tmp_path / "p.gldata")]) == 0
    assert "train: 32 examples, labelled" in capsys.readouterr().out
    assert main(["data", "pack", "digits", "-o", str(tmp_path / "x")]) == 2
    assert "ends in .gldata" in capsys.readouterr().err
    assert main(["data", "pack", str(image_folder), "-o", str(tmp_path / "q.gldata"), "--size", "0"]) == 2


def test_a_subset_of_a_packed_split_is_in_memory(tmp_path):
    out = pack("digits", tmp_path / "d.gldata", progress=False)
    lazy = load_packed(out, in_memory_bytes=0)["test"]
    sub = lazy.subset(torch.tensor([5, 1, 3]))
    assert type(sub) is Dataset and torch.equal(sub.x, load_splits("digits")["test"].x[[5, 1, 3]])
    assert float(lazy.x.max()) == 1.0 and lazy.shape == (1, 8, 8) and len(lazy) == 269


def test_dataloader_workers_give_the_same_training_and_resume(tmp_path, monkeypatch):
    """TrainConfig.workers reads batches ahead in worker processes: the same batches in the
    same order, so the weights equal those of reading in the main process, also across a
    resume that changes the number of workers."""
    from genlab.workflow import train_run

    monkeypatch.setenv("GENLAB_PACK_IN_MEMORY_BYTES", "0")
    out = pack("digits", tmp_path / "d.gldata", progress=False)
    cfg = {"hidden": (16,), "latent_dim": 2}
    plain = train_run("vae", str(out), out=tmp_path / "a", model_config=cfg,
                      train={**TRAIN, "epochs": 2, "augment": "shift:1"}, report=False)
    train_run("vae", str(out), out=tmp_path / "b", model_config=cfg,
              train={**TRAIN, "epochs": 1, "augment": "shift:1", "workers": 2}, report=False)
    resumed = train_run("vae", None, out=tmp_path / "b", train={"epochs": 2, "workers": 1}, resume=True,
                        report=False)
    assert resumed.info["history"][-1]["changed"]["workers"] == [2, 1]
    sa, sb = plain.model().state_dict(), resumed.model().state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match="workers must be an integer"):
        genlab.train.TrainConfig(workers=-1)


def test_a_process_of_a_torchrun_reads_only_its_rows(tmp_path):
    """The worker-side reader of a torchrun process reads that process's contiguous rows of
    each global batch, as Trainer.shard would cut them."""
    from genlab.train import distributed
    from genlab.train.trainer import EpochBatches

    ds = load_packed(pack("digits", tmp_path / "d.gldata", progress=False), in_memory_bytes=0)["train"]
    whole = EpochBatches(ds, 0, 3, 50, 1)
    mine = [EpochBatches(ds, 0, 3, 50, 1, shard=(r, 2)) for r in (0, 1)]
    for b in (0, len(whole) - 1):  # a full batch and the short last one
        full = whole[b]
        for r in (0, 1):
            rows = distributed.shard_rows(len(full["x"]), r, 2)
            assert torch.equal(mine[r][b]["x"], full["x"][rows]) and torch.equal(mine[r][b]["y"], full["y"][rows])
