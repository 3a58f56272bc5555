"""Saved-model format: config.json + model.safetensors, clear errors for bad folders."""
import json

import pytest

import genlab
from genlab.base import FORMAT_VERSION
from genlab.errors import ModelFormatError


@pytest.fixture(scope="module")
def saved(tmp_path_factory, digits_small):
    path = tmp_path_factory.mktemp("saved") / "vae"
    genlab.models.VAE(hidden=(16,), latent_dim=2).fit(digits_small, {"epochs": 1, "progress": False}).save(path)
    return path


def test_config_json_is_self_describing(saved):
    header = json.loads((saved / "config.json").read_text())
    assert header["model_type"] == "vae" and header["genlab_version"] == genlab.__version__
    assert header["format_version"] == FORMAT_VERSION and header["log_prob_kind"] == "lower_bound"
    assert header["config"]["data_shape"] == [1, 8, 8]
    from safetensors import safe_open

    with safe_open(saved / "model.safetensors", "pt") as f:
        assert f.metadata()["model_type"] == "vae" and len(list(f.keys())) > 0


def _copy(saved, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(saved, dst)
    return dst


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        genlab.load(tmp_path / "nope")


def test_not_a_model(tmp_path):
    (tmp_path / "junk.txt").write_text("hi")
    with pytest.raises(ModelFormatError, match="not a genlab model"):
        genlab.load(tmp_path)


def test_damaged_config(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        genlab.load(d)


def test_truncated_weights(saved, tmp_path):
    d = _copy(saved, tmp_path)
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="truncated or corrupt"):
        genlab.load(d)


def test_newer_format(saved, tmp_path):
    d = _copy(saved, tmp_path)
    h = json.loads((d / "config.json").read_text())
    h.update(format_version=FORMAT_VERSION + 1, genlab_version="9.0.0")
    (d / "config.json").write_text(json.dumps(h))
    with pytest.raises(ModelFormatError, match="9.0.0.*Upgrade genlab"):
        genlab.load(d)


def test_unknown_model_type_and_wrong_class(saved, tmp_path):
    d = _copy(saved, tmp_path)
    h = json.loads((d / "config.json").read_text())
    with pytest.raises(ModelFormatError, match="holds a 'vae' model"):
        genlab.models.Autoencoder.load(d)
    h["model_type"] = "vea"
    (d / "config.json").write_text(json.dumps(h))
    with pytest.raises(ModelFormatError, match="did you mean 'vae'"):
        genlab.load(d)


def test_weights_that_do_not_match_config(saved, tmp_path):
    d = _copy(saved, tmp_path)
    h = json.loads((d / "config.json").read_text())
    h["config"]["latent_dim"] = 3
    (d / "config.json").write_text(json.dumps(h))
    with pytest.raises(ModelFormatError):
        genlab.load(d)


def test_bad_config_values_are_clear():
    with pytest.raises(ValueError, match="latent_dim"):
        genlab.models.VAE(latent_dim=0)
    with pytest.raises(ValueError, match="likelihood"):
        genlab.models.VAE(likelihood="poisson")
    with pytest.raises(TypeError):
        genlab.models.VAE(genlab.models.AutoencoderConfig())


def test_registry_aliases_and_suggestions():
    assert genlab.MODELS.get("ae") is genlab.models.Autoencoder
    with pytest.raises(ValueError, match="did you mean 'autoencoder'"):
        genlab.MODELS.get("autoencodr")
