"""Property-based fuzzing of what genlab reads about models: ``config.json``, safetensors
headers and weights, checkpoints, and the CLI's ``--key=value`` values. The only outcomes
allowed are a successful load (of exactly what was saved) or a ``GenlabError`` naming the
file — never another exception type, a hang, or silently different weights."""
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import genlab
from genlab.base import WEIGHTS_FILE
from genlab.cli import UsageError, parse_overrides
from genlab.errors import GenlabError
from genlab.models.vae import VAEConfig
from genlab.train import TrainConfig
from genlab.train.checkpoint import decode_checkpoint, encode_checkpoint

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def saved(saved_vae):
    return saved_vae


def _load_outcome(folder: Path, reference: dict[str, torch.Tensor]) -> str:
    try:
        m = genlab.load(folder)
    except GenlabError as e:
        assert str(folder) in str(e), f"the error does not name the folder: {e}"
        return "refused"
    state = m.state_dict()  # a load that succeeds must give exactly the saved weights
    assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)
    return "loaded"


@SETTINGS
@given(field=st.sampled_from(["model_type", "config", "format_version", "weights_sha256", "genlab_version"]),
       value=json_values)
@example(field="config", value={"hidden": "wide"})
@example(field="format_version", value="1")
@example(field="model_type", value=["vae"])
def test_fuzz_config_json_top_level(saved, field, value):
    ref = genlab.load(saved).state_dict()
    with tempfile.TemporaryDirectory() as t:
        d = Path(shutil.copytree(saved, Path(t) / "m"))
        cfg = json.loads((d / "config.json").read_text())
        cfg[field] = value
        (d / "config.json").write_text(json.dumps(cfg))
        _load_outcome(d, ref)


@SETTINGS
@given(key=st.sampled_from(sorted(VAEConfig.field_names()) + ["nope"]), value=json_values)
@example(key="hidden", value=[10**9, 10**9])
@example(key="data_shape", value=[1, 8])
@example(key="latent_dim", value=0)
def test_fuzz_model_config_fields(saved, key, value):
    ref = genlab.load(saved).state_dict()
    with tempfile.TemporaryDirectory() as t:
        d = Path(shutil.copytree(saved, Path(t) / "m"))
        cfg = json.loads((d / "config.json").read_text())
        cfg["config"][key] = value
        (d / "config.json").write_text(json.dumps(cfg))
        _load_outcome(d, ref)


@SETTINGS
@given(data=st.data())
@example(data=None)
def test_fuzz_weights_bytes(saved, data):
    """Random byte edits anywhere in model.safetensors (header length, header JSON, data),
    with the recorded hash kept (a damaged file) or updated (a crafted one)."""
    ref = genlab.load(saved).state_dict()
    raw = bytearray((saved / WEIGHTS_FILE).read_bytes())
    if data is None:  # a header length that points past the end of the file
        raw[:8] = (len(raw) * 4).to_bytes(8, "little")
        rehash = True
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()):
            raw = raw[:data.draw(st.integers(0, len(raw)))]
        rehash = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as t:
        d = Path(shutil.copytree(saved, Path(t) / "m"))
        (d / WEIGHTS_FILE).write_bytes(bytes(raw))
        if rehash:
            import hashlib

            cfg = json.loads((d / "config.json").read_text())
            cfg["weights_sha256"] = hashlib.sha256(bytes(raw)).hexdigest()
            (d / "config.json").write_text(json.dumps(cfg))
        try:
            m = genlab.load(d)
        except GenlabError as e:
            assert str(d) in str(e)
            return
        # a crafted file with a consistent hash may load, but only with finite weights
        assert all(torch.isfinite(v).all() for v in m.state_dict().values() if v.is_floating_point())
        if not rehash:
            assert all(torch.equal(m.state_dict()[k], ref[k]) for k in ref)


@SETTINGS
@given(data=st.data())
def test_fuzz_checkpoint_bytes(data, tmp_path_factory):
    """Any change to a checkpoint's bytes is caught by its SHA-256 (or it fails to parse)."""
    blob = bytearray(encode_checkpoint({"model": {"w": torch.arange(6.0)}, "step": 3}))
    i = data.draw(st.integers(0, len(blob) - 1))
    v = data.draw(st.integers(0, 255).filter(lambda b: b != blob[i]))
    blob[i] = v
    try:
        state = decode_checkpoint(bytes(blob), Path("ck/last.pt"))
    except GenlabError as e:
        assert "ck/last.pt" in str(e)
        return
    raise AssertionError(f"a changed byte at {i} went unnoticed: {state}")


@SETTINGS
@given(key=st.sampled_from(["lr", "epochs", "beta", "hidden", "latent_dim", "grad_clip", "threads",
                            "betas", "arch", "dropout", "patience", "seed", "likelihood"]),
       raw=st.text(max_size=12) | st.sampled_from(["nan", "inf", "-inf", "1e999", "(1,", "()", "0", "-1",
                                                   "none", "1e-400", "9" * 30, "(nan,0.9)"]))
def test_fuzz_cli_values(key, raw):
    """--key=value reaches a config only as a valid value; anything else is one UsageError
    or ValueError line (the CLI prints it and exits 2)."""
    try:
        model_over, train_over = parse_overrides([f"--{key}={raw}"], VAEConfig, TrainConfig)
        VAEConfig(**model_over)
        TrainConfig(**train_over)
    except (UsageError, ValueError) as e:
        assert "\n" not in str(e).strip()
