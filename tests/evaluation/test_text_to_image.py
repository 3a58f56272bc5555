"""The text-to-image evaluator (``evaluation.text_to_image``) on a tiny text-conditional
diffusion run of captioned-shapes, trained just long enough to follow colour words; the
``genlab evaluate`` table and the report's text-to-image section."""
from __future__ import annotations

import pytest
import torch

from genlab.capabilities import EVALUATORS
from genlab.cli import main
from genlab.evaluation.text_to_image import evaluate_text_to_image
from genlab.runs import fit_run

DATA = {"n_train": 2000, "n_val": 200, "n_test": 200}
# FiLM only and no attention: the cheapest U-Net that learns colour words in 250 steps
MODEL = {"channels": 8, "attention_res": 0, "timesteps": 100, "text_dim": 16, "text_layers": 1,
         "text_conditioning": "film", "ema_decay": 0.99, "sampler": "dpm++", "sample_steps": 10}
TRAIN = {"max_steps": 250, "batch_size": 32, "lr": 5e-3, "seed": 0, "progress": False}
N = 64


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("t2i") / "run"
    # fit_run: a run folder without the test metrics and the report train_run adds (seconds saved)
    return fit_run("diffusion", "captioned-shapes", out=out, train=TRAIN, model_config=MODEL, data_options=DATA)


@pytest.fixture(scope="module")
def judges(shapes_judges):
    """The session's caption judges (tests/evaluation/conftest.py), from their folder."""
    return shapes_judges.judges


@pytest.fixture(scope="module")
def record(run, judges):
    return evaluate_text_to_image(run, n=N, judge=str(judges.folder), progress=False)


def test_the_text_to_image_evaluator_is_chosen_before_the_image_one(run):
    model, splits = run.model(), run.data_splits()
    found = EVALUATORS.applicable(model.tags, splits["test"])
    assert [e.name for e in found][:2] == ["text-to-image", "images"]
    # without ground truth the plain image evaluator scores the same model
    import dataclasses

    plain = dataclasses.replace(splits["test"], attributes={})
    assert EVALUATORS.applicable(model.tags, plain)[0].name == "images"


def test_require_reads_conditions_and_tag_values(run):
    from genlab.capabilities import CapabilityError, require

    model = run.model()
    assert require(model, "prompt", modality="image") == model.tags
    with pytest.raises(CapabilityError, match="needs a model with a modality of 'table'"):
        require(model, "prompt", modality="table", what="a table tool")
    with pytest.raises(CapabilityError, match="the 'y' condition.*conditioned on prompt"):
        require(model, "y")
    with pytest.raises(ValueError, match="unknown capability or tag nope"):
        require(model, "nope")


def test_record_has_the_guidance_curve_ceilings_and_probes(record):
    assert record["kind"] == "text-to-image" and record["n_fake"] == N
    assert [p["w"] for p in record["guidance_curve"]] == [0.0, 1.0, 3.0]
    attrs = ["shape", "colour", "count", "position"]
    for p in [*record["guidance_curve"], record["ceiling"]]:
        assert list(p["per_attribute"]) == attrs
        for v in [p["all"], p["r_precision"], *p["per_attribute"].values()]:
            assert v is None or 0.0 <= v <= 1.0, p
    for p in record["guidance_curve"]:
        assert p["fid"] >= 0 and p["diversity"] >= 0 and "kid_std" in p
    for key in ("heldout", "paraphrased"):
        r = record[key]
        assert r["w"] == 3.0 and r["n"] == N and 0 <= r["all"] <= 1 and 0 <= r["ceiling"] <= 1
    rows = {r["metric"]: r for r in record["rows"]}
    for name in ("all_attributes@w0", "colour@w3", "r_precision@w1", "fid@w3", "kid@w0", "diversity@w3",
                 "heldout_all@w3", "paraphrased_colour@w3"):
        assert name in rows, sorted(rows)
    assert rows["colour@w3"]["floor"] == record["ceiling"]["per_attribute"]["colour"]
    assert rows["fid@w0"]["floor"] == record["ceiling"]["fid_floor"] and rows["fid@w0"]["higher_is_better"] is False
    assert record["judge"].startswith("judge:captions-captioned-shapes@")
    assert len(record["captions"]) == N and all(isinstance(c, str) for c in record["captions"])


def test_guidance_makes_the_colour_follow_the_caption(record):
    curve = {p["w"]: p for p in record["guidance_curve"]}
    # unguided (w = 0) samples ignore the caption: colour is right about 1 time in 6
    assert curve[0.0]["per_attribute"]["colour"] < 0.4
    assert curve[3.0]["per_attribute"]["colour"] >= curve[0.0]["per_attribute"]["colour"] + 0.25, curve
    assert curve[3.0]["all"] >= curve[0.0]["all"]
    assert curve[3.0]["r_precision"] >= curve[0.0]["r_precision"]
    # the judge reads the real images of the same captions far better than the model draws them
    assert record["ceiling"]["per_attribute"]["colour"] >= 0.95
    assert record["ceiling"]["all"] > curve[3.0]["all"]
    assert record["ceiling"]["r_precision"] > 10 * record["chance"]["r_precision"]


def test_r_precision_chance_is_one_over_the_distinct_captions(record, run):
    splits = run.data_splits()
    distinct = torch.unique(torch.cat([splits[k].text for k in ("train", "val", "test", "heldout")]), dim=0)
    assert record["chance"]["candidates"] == len(distinct)
    assert record["chance"]["r_precision"] == pytest.approx(1 / len(distinct), abs=1e-6)
    assert any("R-precision chance" in n for n in record["notes"])


def test_genlab_evaluate_prints_the_table_and_the_report_shows_the_curve(run, record, judges, capsys, monkeypatch):
    from genlab.capabilities import EVALUATORS

    folder = judges.folder
    # without -n, genlab evaluate takes the evaluator's own default (not the 10,000 of images)
    entry = next(e for e in EVALUATORS.entries() if e.name == "text-to-image")
    monkeypatch.setitem(entry.info, "default_n", N // 2)
    assert main(["evaluate", str(run.path), "--judge", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "all_attributes@w3" in out and "r_precision@w0" in out and "heldout_all@w3" in out
    assert "note: R-precision chance" in out
    ev = run.eval["evaluation"]
    assert ev["kind"] == "text-to-image" and ev["n_fake"] == N // 2 and ev["judge"] == record["judge"]
    # seeded, and the first captions of each chunk get the same noise: the captions agree
    assert ev["captions"] == record["captions"][:N // 2]
    html = (run.path / "report.html").read_text()
    assert "Text to image: the guidance curve" in html and "Captions and their images" in html
    assert (run.path / "figures" / "captions.png").is_file()
