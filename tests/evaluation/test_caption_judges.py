"""The caption judges (``evaluation.caption_judges``): trained on real captioned-shapes
images they read the attributes of real test images; their cache loads without training
and retrains when the recipe or the data change."""
from __future__ import annotations

import pytest
import torch

from genlab.data import Dataset
from genlab.errors import DataError, ModelFormatError
from genlab.evaluation import caption_judges as cj
from genlab.metrics.judges.captions import CaptionJudge, load_caption_judges
from genlab.metrics.judges.contrastive import ImageTextJudge

# the recipe of the session's judges (tests/evaluation/conftest.py), less the thread count
FAST = {"attribute_options": {"epochs": 4}, "image_text_options": {"epochs": 4}}


@pytest.fixture(scope="module")
def splits(shapes_judges):
    return shapes_judges.splits


@pytest.fixture(scope="module")
def cache(judge_cache):
    return judge_cache


@pytest.fixture(scope="module")
def judges(shapes_judges, cache):
    assert {**FAST, "threads": 1} == shapes_judges.recipe
    return shapes_judges.judges


def test_attribute_judge_reads_real_test_images(judges, splits):
    a = judges.attributes
    assert isinstance(a, CaptionJudge) and a.attributes == ["shape", "colour", "count", "position"]
    assert a.unnamed == {"position": "none"}
    test = splits["test"]
    acc = a.attribute_accuracy(test.x, test.attributes)
    # colour, count and position are easy; shape on 16x16 after a few seconds less so
    assert acc["all"] >= 0.8, acc["per_attribute"]
    for k in ("colour", "count", "position"):
        assert acc["per_attribute"][k] >= 0.95, acc["per_attribute"]
    assert acc["named"]["position"] < acc["n"]  # two or three objects have no position
    assert a.info["test_accuracy"] == pytest.approx(acc["all"], abs=1e-5)
    # recoloured training images show every shape in every colour: the held-out pairs are read too
    assert a.info["heldout_accuracy_per_attribute"]["colour"] >= 0.95
    assert a.info["heldout_accuracy"] >= 0.4
    assert a.feature_space.startswith("judge:captions-captioned-shapes@")
    pred = a.extract(test.x[:7])["predictions"]
    assert set(pred) == set(a.attributes) and all(v.shape == (7,) for v in pred.values())


def test_image_text_judge_ranks_the_true_caption_first(judges, splits):
    from genlab.metrics import functional as F

    t = judges.image_text
    assert isinstance(t, ImageTextJudge)
    cands = cj.candidate_captions(splits)
    values, unnamed = cj.captioned_parts(splits["train"])
    test = splits["test"]
    truth = cands.index_of(test, values, unnamed)
    rp = F.r_precision(t.encode_images(test.x), t.encode_captions(cands.ids), truth, groups=cands.groups)
    chance = F.r_precision_chance(truth, groups=cands.groups)
    assert rp == pytest.approx(t.info["test_r_precision"], abs=1e-5)
    assert len(cands.ids) == t.info["candidates"] and chance < 0.02
    assert rp >= 0.5 > 20 * chance
    # strings are spelled with the data's tokenizer: the same embeddings as the ids
    from genlab.data.captions import decode_captions

    words = decode_captions(Dataset(test.x[:3], text=test.text[:3], meta=test.meta))
    assert torch.allclose(t.encode_captions(words), t.encode_captions(test.text[:3]))


def test_cache_hit_loads_without_training(judges, splits, cache, monkeypatch):
    assert judges.folder is not None and judges.folder.parent == cache / "judges"
    assert (judges.folder / "attributes.safetensors").is_file()

    def no(*a, **k):
        raise AssertionError("trained although cached")

    monkeypatch.setattr(cj, "train_caption_judge", no)
    monkeypatch.setattr(cj, "train_image_text_judge", no)
    back = cj.caption_judges(splits, threads=1, progress=False, **FAST)
    assert back.folder == judges.folder
    x = splits["test"].x[:16]
    assert torch.equal(back.attributes.extract(x)["features"], judges.attributes.extract(x)["features"])
    assert torch.equal(back.image_text.encode_images(x), judges.image_text.encode_images(x))
    assert back.attributes.info["test_accuracy"] == judges.attributes.info["test_accuracy"]
    # the heads keep their order (the saved record's keys are sorted): the same readings
    assert back.attributes.attributes == judges.attributes.attributes
    test = splits["test"]
    assert back.attributes.attribute_accuracy(test.x, test.attributes)["all"] == \
        pytest.approx(judges.attributes.info["test_accuracy"], abs=1e-5)


class Trained(Exception):
    pass


@pytest.mark.parametrize("change", ["recipe", "seed", "data"])
def test_a_changed_recipe_or_data_retrains(judges, splits, monkeypatch, change):
    def spy(*a, **k):
        raise Trained

    monkeypatch.setattr(cj, "train_caption_judge", spy)
    data, kw = splits, dict(FAST)
    if change == "recipe":
        kw["attribute_options"] = {"epochs": 5}
    elif change == "seed":
        kw["seed"] = 1
    else:  # one pixel of one training image differs
        x = splits["train"].x.clone()
        x[0, 0, 0, 0] = 0.5
        data = {**splits, "train": Dataset(x, text=splits["train"].text, attributes=splits["train"].attributes,
                                           meta=splits["train"].meta, name=splits["train"].name)}
    with pytest.raises(Trained):
        cj.caption_judges(data, threads=1, progress=False, **kw)


def test_damaged_cache_entries_and_uncaptioned_data_are_refused(judges, splits, tmp_path):
    import shutil

    folder = tmp_path / "j"
    shutil.copytree(judges.folder, folder)
    (folder / "image_text.safetensors").write_bytes(b"broken")
    with pytest.raises(ModelFormatError, match="image_text"):
        load_caption_judges(folder)
    plain = {k: Dataset(splits[k].x[:8], name="plain") for k in ("train", "val", "test")}
    with pytest.raises(DataError, match="no captions with ground truth"):
        cj.caption_judges(plain, cache=False)
    with pytest.raises(DataError, match="need train, val and test"):
        cj.caption_judges({"train": splits["train"]}, cache=False)


def test_attribute_codes_round_trip(splits):
    values, unnamed = cj.captioned_parts(splits["train"])
    ds = splits["test"]
    codes = cj.attribute_codes(ds, values, unnamed)
    sizes = [len(h) for h in cj.head_values(values, unnamed).values()]
    targets = cj.unpack_codes(codes, sizes)
    assert torch.equal(cj.pack_targets(targets, sizes), codes)
    assert torch.equal(targets[1], ds.attributes["colour"])  # colour has no unsaid value
    pos = targets[3]
    assert torch.equal(pos == -1, ds.attributes["position"] == values["position"].index("none"))
