"""Declared capabilities (genlab.capabilities): every family's tags tell the truth, bad
declarations fail when the class is defined, and a new family plugs its own sample
writer and report section into the registries without touching genlab."""
import dataclasses
import inspect
import json

import numpy as np
import pytest
import torch

import genlab
from genlab import sample_io
from genlab.base import GenerativeModel
from genlab.capabilities import (
    METHODS, REPORT_SECTIONS, SAMPLE_WRITERS, CapabilityError, Tags, require, tags_of,
)
from genlab.registry import MODELS


@pytest.mark.parametrize("name", MODELS.names())
def test_every_capability_tag_matches_the_methods(name):
    model = MODELS.get(name)()
    tags = model.tags
    assert isinstance(tags, Tags) and tags.family == name
    for cap, methods in METHODS.items():
        has = all(callable(getattr(model, m, None)) for m in methods)
        assert getattr(tags, cap) == has, f"{name}: tags.{cap}={getattr(tags, cap)} but methods {methods}: {has}"
    params = inspect.signature(model.sample).parameters
    assert set(tags.sample_options) == {p for p, v in params.items()
                                        if v.kind is v.KEYWORD_ONLY and p != "generator"}
    assert set(tags.conditions) <= set(tags.sample_options) | {"y"}
    assert tags.log_prob_kind == type(model).log_prob_kind
    assert tags.trained_by == ("estimator" if not isinstance(model, torch.nn.Module) else tags.trained_by)


def test_tags_follow_the_config_and_the_data():
    from genlab.data.text import text_splits

    vae = genlab.models.VAE(data_shape=(1, 8, 8), num_classes=10)
    assert vae.tags.modality == "image" and vae.tags.conditional and "y" in vae.tags.conditions
    assert vae.tags.sample_shape == (1, 8, 8) and vae.tags.num_classes == 10
    assert genlab.models.VAE(data_shape=(5,)).tags.modality == "table"
    assert not genlab.models.VAE().tags.conditional
    lm = genlab.models.LSTM(hidden=8, layers=1)
    assert lm.tags.modality == "unknown"  # no tokenizer before it has seen data
    lm.prepare(text_splits("abc abd " * 40, block_size=8)["train"])
    assert lm.tags.modality == "text" and lm.tags.text_prompts and lm.tags.sample_shape is None
    assert genlab.models.LSTM(tokenizer="smiles", vocab=("C",)).tags.modality == "molecule"


def test_bad_declarations_fail_when_the_class_is_defined():
    with pytest.raises(TypeError, match="unknown tag.*'reconstructs'"):
        class Typo(GenerativeModel):
            declared_tags = {"reconstructs": True}
    with pytest.raises(TypeError, match="declares reconstruction=True but has no reconstruct"):
        class Liar(GenerativeModel):
            declared_tags = {"reconstruction": True}
    with pytest.raises(TypeError, match="modality must be one of"):
        class Odd(GenerativeModel):
            declared_tags = {"modality": "smell"}
    with pytest.raises(ValueError, match="requires unknown tag"):
        SAMPLE_WRITERS.register(".x", requires={"colour": "red"})


def test_require_names_what_is_missing():
    vae = genlab.models.VAE()
    assert require(vae, "latent", "reconstruction").reconstruction
    with pytest.raises(CapabilityError, match="needs a model with upscaling; VAE has not"):
        require(vae, "upscaling", what="SuperResolution")
    with pytest.raises(CapabilityError, match="not a genlab model"):
        tags_of(object())
    with pytest.raises(ValueError, match="SuperResolution"):  # the pipeline declares it
        genlab.pipelines.super_resolution.SuperResolution(vae)


def test_sample_writers_follow_the_tags(tmp_path):
    vae = genlab.models.VAE(hidden=(8,), latent_dim=2).fit("digits", {"epochs": 1, "max_steps": 1,
                                                                         "progress": False})
    assert sample_io.writers_for(vae)[:3] == [".png", ".jpg", ".jpeg"]
    assert ".txt" not in sample_io.writers_for(vae) and ".mid" not in sample_io.writers_for(vae)
    with pytest.raises(sample_io.SampleOutputError, match="can be written as .png, .jpg"):
        sample_io.write_samples(vae, 3, tmp_path / "s.smi", progress=False)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------- a family from outside genlab
class Points(GenerativeModel):
    """A third-party family: points on a circle, fitted by its own estimator (the radius)."""

    model_type = "test-points"
    log_prob_kind = "none"
    declared_tags = {"modality": "table", "trained_by": "estimator", "sample_shape": (2,)}

    def fit(self, data, train=None):
        x = torch.as_tensor(data, dtype=torch.float32)
        self.radius = float(x.norm(dim=1).mean())
        self.fitted = True
        return self

    def sample(self, n, *, generator=None):
        t = torch.rand(n, generator=generator) * 2 * np.pi
        return self.radius * torch.stack([t.cos(), t.sin()], 1)

    def _saved_tensors(self):
        return {"radius": np.array([self.radius], dtype=np.float64)}

    @classmethod
    def _from_saved(cls, config, header, weights):
        m = cls(config)
        m.radius = float(weights.arrays({"radius": (1,)})["radius"][0])
        m.fitted = True
        return m


@pytest.fixture
def points_family():
    def write_pts(job):
        with job.replacing() as tmp, open(tmp, "w") as f:
            for x in job.chunks():
                f.writelines(f"({a:.3f} {b:.3f})\n" for a, b in x.tolist())

    def section(ctx):
        ctx.figs.parts.append(f"<h2>Circle</h2><p>radius {ctx.model.radius:.2f}</p>")

    SAMPLE_WRITERS.register(".pts", requires={"family": "test-points"})(write_pts)
    REPORT_SECTIONS.register("circle", requires={"family": "test-points"})(section)
    yield
    SAMPLE_WRITERS.unregister(".pts")
    REPORT_SECTIONS.unregister("circle")


def test_a_new_family_brings_its_own_writer_and_section(points_family, tmp_path):
    from genlab.report import write_report
    from genlab.runs import Run

    model = Points().fit(torch.tensor([[3.0, 4.0], [0.0, 5.0]]))
    assert model.tags.modality == "table" and model.tags.family == "test-points"
    assert ".pts" in sample_io.writers_for(model)
    assert ".pts" not in sample_io.writers_for(genlab.models.VAE(data_shape=(2,)))
    assert sample_io.write_samples(model, 5, tmp_path / "s.pts", progress=False) == f"wrote 5 samples to {tmp_path / 's.pts'}"
    lines = (tmp_path / "s.pts").read_text().splitlines()
    assert len(lines) == 5 and all(abs(np.hypot(*map(float, ln[1:-1].split())) - 5.0) < 1e-3 for ln in lines)
    sample_io.write_samples(model, 4, tmp_path / "s.csv", progress=False)  # genlab's writers apply too
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (4, 2)

    MODELS.register("test-points")(Points)
    try:
        run = tmp_path / "run"
        model.save(run / "model")
        (run / "run.json").write_text(json.dumps({"model_type": "test-points", "status": "finished"}))
        page = write_report(Run(run)).read_text()
    finally:
        MODELS.unregister("test-points")
    assert "<h2>Circle</h2><p>radius 5.00</p>" in page
    assert "Training curves" not in page  # fitted by its own estimator: no curves
    assert [e.name for e in REPORT_SECTIONS.applicable(model.tags)] == ["circle"]


def test_tags_are_plain_data():
    t = genlab.models.VAE(data_shape=(1, 8, 8)).tags
    d = t.to_dict()
    assert json.loads(json.dumps(d)) == json.loads(json.dumps(d)) and d["conditional"] is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.modality = "text"
