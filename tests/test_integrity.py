"""What is loaded is what was saved (issue 13, points 4, 15, 16, 17)."""
import json
import os
import shutil
import stat

import pytest
import torch
from safetensors.torch import save_file

import genlab
from genlab import cli
from genlab.base import WEIGHTS_FILE, file_sha256, safetensors_shapes
from genlab.errors import ModelFormatError, NotFittedError
from genlab.models import VAE


@pytest.fixture(scope="module")
def saved(saved_vae):
    return saved_vae


def _copy(d, tmp_path):
    return shutil.copytree(d, tmp_path / "copy")


def _data_offset(path):
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def test_one_flipped_bit_in_the_weights_is_caught(saved, tmp_path, capsys):
    d = _copy(saved, tmp_path)
    w = d / WEIGHTS_FILE
    raw = bytearray(w.read_bytes())
    raw[_data_offset(w) + 3] ^= 0x40  # an exponent bit of the first weight: -0.02 -> -6.7e36
    w.write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match=r"model\.safetensors .*SHA-256"):
        genlab.load(d)
    assert cli.main(["sample", str(d), "-n", "2", "-o", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err
    assert "SHA-256" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.npy").exists()


def test_non_finite_weights_are_refused_at_load_and_at_save(saved, tmp_path):
    d = _copy(saved, tmp_path)
    m = genlab.load(d)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(d / WEIGHTS_FILE))
    cfg = json.loads((d / "config.json").read_text())
    cfg["weights_sha256"] = file_sha256(d / WEIGHTS_FILE)  # consistent hash: NaN saved on purpose
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match=f"{name}.*NaN or infinite"):
        genlab.load(d)
    with torch.no_grad():
        dict(m.named_parameters())[name].view(-1)[0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        m.save(tmp_path / "again")


def test_models_saved_before_hashes_still_load(saved, tmp_path):
    d = _copy(saved, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    del cfg["weights_sha256"]
    (d / "config.json").write_text(json.dumps(cfg))
    assert isinstance(genlab.load(d), VAE)


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(model_type=["vae"]), "model_type must be a string"),
    (lambda c: c.update(config=[1, 2]), "'config' must be an object"),
    (lambda c: c["config"].update(hidden="wide"), "'hidden' has the wrong type"),
    (lambda c: c["config"].update(latent_dim=[2]), "'latent_dim' has the wrong type"),
    (lambda c: c.update(format_version="1"), r"format_version must be a positive integer, got '1'"),
    (lambda c: c.update(format_version=99), "Upgrade genlab"),
])
def test_malformed_config_json_is_one_clear_error(saved, tmp_path, change, message):
    d = _copy(saved, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    change(cfg)
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match=message):
        genlab.load(d)


def test_huge_layer_sizes_are_refused_before_anything_is_allocated(saved, tmp_path):
    d = _copy(saved, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["config"]["hidden"] = [1_000_000, 1_000_000]  # 10^12 weights: 4 TB
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="parameters"):
        genlab.load(d)
    cfg["config"]["hidden"] = [32]  # plausible, but not what the weights file holds
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="does not match"):
        genlab.load(d)


def test_deeply_nested_or_oversized_config_json(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFormatError):
        genlab.load(d)
    (d / "config.json").write_text(json.dumps({"model_type": "vae", "pad": "x" * (2 << 20)}))
    with pytest.raises(ModelFormatError, match="at most"):
        genlab.load(d)


def test_a_damaged_safetensors_header_is_one_clear_error(saved, tmp_path):
    d = _copy(saved, tmp_path)
    w = d / WEIGHTS_FILE
    raw = w.read_bytes()
    w.write_bytes((10**12).to_bytes(8, "little") + raw[8:])
    with pytest.raises(ModelFormatError, match="truncated or corrupt"):
        safetensors_shapes(w)


def test_written_files_get_the_usual_mode(saved):
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.json", WEIGHTS_FILE):
        assert stat.S_IMODE((saved / name).stat().st_mode) == 0o666 & ~mask


def test_a_built_but_untrained_model_refuses_sample_save_and_log_prob(tmp_path):
    """Point 17: this used to be an AttributeError ('VAE' object has no attribute 'log_std')."""
    m = VAE(data_shape=(1, 8, 8))
    for call in (lambda: m.sample(2), lambda: m.save(tmp_path / "m"),
                 lambda: m.log_prob(torch.rand(2, 1, 8, 8))):
        with pytest.raises(NotFittedError, match="not trained"):
            call()
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("family", ["bayesnet", "mrf"])
def test_numpy_families_hash_their_weights_too(tmp_path, family, digits_splits):
    from genlab.models.pgm import read_bif

    if family == "bayesnet":
        m = read_bif("asia")
    else:
        m = genlab.MODELS.get("mrf")(max_iter=3, gibbs_sweeps=2).fit(digits_splits["train"].subset(slice(0, 32)))
    d = m.save(tmp_path / family)
    assert json.loads((d / "config.json").read_text())["weights_sha256"] == file_sha256(d / WEIGHTS_FILE)
    raw = bytearray((d / WEIGHTS_FILE).read_bytes())
    raw[-1] ^= 0x01
    (d / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match="SHA-256"):
        genlab.load(d)


def test_cpu_state_keeps_tied_weights_once_and_splits_views_of_one_buffer(tmp_path):
    """What a model on a GPU is saved from: tied weights (one tensor under two names) are
    stored once and filled in at load; parameters that are views of one flat buffer (a
    CUDA LSTM's cuDNN weights) are stored as separate tensors, which safetensors' own
    ``save_model`` refuses ("None is covering the entire storage")."""
    from safetensors.torch import load_model, save_model

    from genlab.serialize import cpu_state

    torch.manual_seed(0)
    flat = torch.randn(10)
    m = torch.nn.Module()
    m.a, m.b = torch.nn.Parameter(flat[:4].view(2, 2)), torch.nn.Parameter(flat[4:])  # one buffer
    m.emb = torch.nn.Linear(3, 2, bias=False)
    m.head = torch.nn.Linear(3, 2, bias=False)
    m.head.weight = m.emb.weight  # tied
    with pytest.raises(Exception, match="covering the entire storage"):
        save_model(m, str(tmp_path / "refused.safetensors"))
    state = cpu_state(m.state_dict())
    assert set(state) == {"a", "b", "emb.weight"}
    assert state["a"].untyped_storage().data_ptr() != state["b"].untyped_storage().data_ptr()
    save_file(state, str(tmp_path / "m.safetensors"))
    fresh = torch.nn.Module()
    fresh.a, fresh.b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(6))
    fresh.emb, fresh.head = torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(3, 2, bias=False)
    fresh.head.weight = fresh.emb.weight
    missing, unexpected = load_model(fresh, str(tmp_path / "m.safetensors"))
    assert not missing and not unexpected
    for name, t in m.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], t), name


def test_an_error_that_is_not_the_disks_is_not_reported_as_an_io_error(saved, tmp_path, monkeypatch):
    import genlab.serialize as ser

    def broken(*a, **k):
        raise ValueError("some tensors share memory")

    monkeypatch.setattr(ser, "_write_safetensors", broken)
    with pytest.raises(ValueError, match="share memory"):
        genlab.load(saved).save(tmp_path / "m")
