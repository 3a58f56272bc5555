"""The one contract suite: every registered model family must pass it.

A new family joins by registering in genlab.MODELS and adding a small config to CASES
(the first test fails until it does). Torch and numpy models are compared through what
they save (the tensors in model.safetensors), so the suite needs nothing family-specific.
"""
import inspect

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import genlab
from genlab.base import LOG_PROB_KINDS
from genlab.errors import LogProbUnavailableError, NotFittedError

TINY = {"hidden": (32, 16), "latent_dim": 4}
# model name -> (config overrides, data fixture name)
CASES = {
    "autoencoder": ({**TINY}, "digits_small"),
    "vae": ({**TINY}, "digits_small"),
    "bayesnet": ({"max_indegree": 2}, "asia_table"),
    "mrf": ({"max_iter": 5, "gibbs_sweeps": 5}, "digits_small"),
    "rbm": ({"hidden": 16, "sample_steps": 10, "ais_betas": 50, "ais_chains": 10}, "digits_small"),
    "gan": ({"arch": "mlp", **TINY}, "digits_small"),
    "srgan": ({"factor": 2, "channels": 8, "n_blocks": 1, "d_channels": (8,)}, "digits_small"),
    "rnn": ({"hidden": 16, "layers": 1}, "text_small"),
    "lstm": ({"hidden": 16, "layers": 2, "dropout": 0.1, "bptt": 4}, "text_small"),
    "gru": ({"hidden": 16, "layers": 2}, "text_small"),
    "transformer": ({"d_model": 16, "layers": 2, "heads": 2}, "text_small"),
    "seqvae": ({"embed_dim": 8, "enc_hidden": 16, "dec_hidden": 16, "dec_layers": 2, "latent_dim": 4,
                "dropout": 0.1, "word_dropout": 0.2, "kl_warmup_steps": 5}, "text_small"),
    "diffusion": ({"channels": 8, "heads": 2, "timesteps": 50, "sample_steps": 5, "nll_timesteps": 5}, "digits_small"),
    "latent-diffusion": ({"encoder_channels": (8,), "channels": 8, "heads": 2, "timesteps": 50, "sample_steps": 5,
                          "nll_timesteps": 5}, "digits_small"),
}
# extra variants of families worth running through the whole contract
VARIANTS = {
    "autoencoder-conv": ("autoencoder", {"arch": "conv", "channels": (8, 16), "latent_dim": 4, "hidden": (16,)}, "digits_small"),
    "vae-conv": ("vae", {"arch": "conv", "channels": (8, 16), "latent_dim": 4, "hidden": (16,)}, "digits_small"),
    "vae-gaussian": ("vae", {**TINY, "likelihood": "gaussian"}, "digits_small"),
    "vae-conditional": ("vae", {**TINY, "num_classes": -1, "dropout": 0.1}, "digits_small"),
    "autoencoder-denoising": ("autoencoder", {**TINY, "denoise_std": 0.2, "dropout": 0.1}, "digits_small"),
    "gan-conv-wgan-gp-ema": ("gan", {"arch": "conv", "g_channels": (16, 8), "d_channels": (8, 16), "latent_dim": 8,
                                     "loss": "wgan-gp", "n_critic": 2, "ema_decay": 0.9, "minibatch_std": True},
                             "digits_small"),
    "gan-conditional-hinge-sn": ("gan", {"arch": "conv", "g_channels": (16, 8), "d_channels": (8, 16), "latent_dim": 8,
                                         "num_classes": -1, "loss": "hinge", "spectral_norm": True}, "digits_small"),
    "diffusion-conditional-eps": ("diffusion", {"channels": 8, "heads": 2, "timesteps": 50, "sample_steps": 5,
                                              "nll_timesteps": 5, "num_classes": -1, "prediction": "epsilon",
                                              "noise_schedule": "linear", "loss_weighting": "min-snr",
                                              "sampler": "dpm++", "dropout": 0.1}, "digits_small"),
    "diffusion-text": ("diffusion", {"channels": 8, "heads": 2, "attention_res": 4, "timesteps": 50, "sample_steps": 5,
                                     "nll_timesteps": 5, "text_dim": 16, "text_layers": 1,
                                     "text_conditioning": "both"}, "shapes_small"),
    "diffusion-table": ("diffusion", {"hidden": 16, "depth": 1, "timesteps": 50, "sample_steps": 5,
                                      "nll_timesteps": 5}, "table_small"),
    "latent-diffusion-ae-conditional": ("latent-diffusion", {"first_stage": "autoencoder", "encoder_channels": (8,),
                                                             "channels": 8, "heads": 2, "timesteps": 50, "sample_steps": 5,
                                                             "num_classes": -1, "sampler": "dpm++"}, "digits_small"),
    "gan-pack-mbstd": ("gan", {"arch": "mlp", **TINY, "pack": 2, "minibatch_std": True, "loss": "lsgan"}, "digits_small"),
}
TRAIN = {"epochs": 1, "batch_size": 64, "progress": False, "seed": 0}

ALL = {**{k: (k, v[0], v[1]) for k, v in CASES.items()}, **VARIANTS}


@pytest.fixture(scope="session")
def table_small():
    """512 rows of the ring-of-8 toy: flat (D,) data."""
    from genlab.data.datasets import load_splits

    return load_splits("ring8", n_train=512, n_val=64, n_test=64)["train"]


@pytest.fixture(scope="session")
def asia_table():
    from genlab.models.pgm import read_bif

    bn = read_bif("asia")
    return bn.decode(bn.sample(500, generator=0))


def _np(x):
    return x.detach().numpy() if torch.is_tensor(x) else np.asarray(x)


def _rows(data, n):
    """The first n examples as the model takes them (state codes for discrete tables)."""
    return data.codes[:n] if hasattr(data, "codes") else data.x[:n]


def _saved_arrays(model, folder):
    model.save(folder)
    return load_file(str(folder / "model.safetensors"))


def _same_arrays(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_every_registered_model_has_a_contract_case():
    missing = set(genlab.MODELS.names()) - set(CASES)
    assert not missing, f"add a CASES entry for {sorted(missing)}"


@pytest.fixture(scope="module", params=sorted(ALL))
def fitted(request):
    fam, cfg, data_name = ALL[request.param]
    data = request.getfixturevalue(data_name)
    cls = genlab.MODELS.get(fam)
    model = cls(**cfg)
    assert model.fit(data, TRAIN) is model  # fit returns self
    return model, data


def test_log_prob_kind_declared(fitted):
    model, _ = fitted
    assert model.log_prob_kind in LOG_PROB_KINDS
    assert type(model).model_type in genlab.MODELS


def test_sample_shape_finite_reproducible(fitted):
    model, data = fitted
    a = _np(model.sample(5, generator=torch.Generator().manual_seed(7)))
    b = _np(model.sample(5, generator=torch.Generator().manual_seed(7)))
    c = _np(model.sample(5, generator=torch.Generator().manual_seed(8)))
    assert a.shape == (5, *data.shape)
    assert np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_load_roundtrip(fitted, tmp_path):
    model, data = fitted
    before = _saved_arrays(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = genlab.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.config == model.config
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert np.array_equal(_np(model.sample(4, generator=g())), _np(loaded.sample(4, generator=g())))
    assert _same_arrays(before, _saved_arrays(loaded, tmp_path / "again"))
    assert type(model).load(tmp_path / "m").config == model.config


def _log_prob_kw(model, data):
    """The options this test offers, narrowed to those the model declares."""
    from genlab.base import select_log_prob_options

    y = data.y[:6] if getattr(model.config, "num_classes", 0) else None
    return select_log_prob_options(model, y=y, k=16, generator=torch.Generator().manual_seed(0))


def test_log_prob_follows_its_kind(fitted):
    model, data = fitted
    x = _rows(data, 6)
    if model.log_prob_kind == "none":
        with pytest.raises(LogProbUnavailableError):
            model.log_prob(x)
        return
    if getattr(model.config, "likelihood", "") == "bernoulli":
        x = (x > 0.5).float()
    lp1 = model.log_prob(x, **_log_prob_kw(model, data))
    lp2 = model.log_prob(x, **_log_prob_kw(model, data))
    assert torch.is_tensor(lp1) and lp1.dtype == torch.float64, type(lp1)  # the contract: (N,) float64
    assert lp1.shape == (6,) and torch.isfinite(lp1).all()
    assert torch.equal(lp1, lp2)
    if getattr(model.config, "likelihood", "") == "bernoulli" or model.model_type == "bayesnet":
        assert (lp1 <= 0).all()  # a probability of discrete data is at most 1


def test_sample_is_a_tensor_of_the_documented_dtype(fitted):
    model, data = fitted
    x = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.is_tensor(x), type(x)
    discrete = hasattr(data, "codes") or not data.x.is_floating_point()  # state codes, token ids
    assert x.dtype == (torch.int64 if discrete else torch.float32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_log_prob_keyword_is_refused_naming_it_and_the_model(name):
    cls = genlab.MODELS.get(name)
    model = cls(**CASES[name][0])  # refused before anything else: no fit needed
    with pytest.raises(TypeError, match=rf"{cls.__name__}\.log_prob\(\) takes no option 'nope'"):
        model.log_prob(torch.zeros(1), nope=1)
    for opt in ("k", "generator", "normalized"):  # offered to every model before; only some take them
        if opt not in cls.log_prob_options:
            with pytest.raises(TypeError, match=f"no option '{opt}'"):
                model.log_prob(torch.zeros(1), **{opt: None})
    with pytest.raises(TypeError, match="by keyword"):
        model.log_prob(torch.zeros(1), None)
    if "y" not in cls.log_prob_options:
        with pytest.raises(TypeError, match="not conditional"):
            model.log_prob(torch.zeros(1), y=torch.zeros(1))


def test_y_none_is_accepted_by_every_model(fitted):
    model, data = fitted
    if model.log_prob_kind == "none":
        return
    x = _rows(data, 2)
    if getattr(model.config, "likelihood", "") == "bernoulli":
        x = (x > 0.5).float()
    kw = {k: v for k, v in _log_prob_kw(model, data).items() if k != "y"}
    if getattr(model.config, "num_classes", 0):
        return  # a conditional model needs its y
    assert torch.equal(model.log_prob(x, y=None, **kw), model.log_prob(x, **_log_prob_kw(model, data)))


def test_declared_log_prob_options_match_the_signature():
    from genlab.base import GenerativeModel

    for name in genlab.MODELS.names():
        cls = genlab.MODELS.get(name)
        params = inspect.signature(inspect.unwrap(cls.log_prob)).parameters
        kw_only = {p.name for p in params.values() if p.kind is p.KEYWORD_ONLY}
        assert kw_only == set(cls.log_prob_options), name
    with pytest.raises(TypeError, match=r"log_prob_options \('k',\) do not match"):
        class Drift(GenerativeModel):  # noqa: F841
            log_prob_options = ("k",)

            def log_prob(self, x, *, k=None, generator=None):
                return x
    with pytest.raises(TypeError, match="keyword-only"):
        class Positional(GenerativeModel):  # noqa: F841
            def log_prob(self, x, y=None):
                return x


def test_every_family_saves_and_loads_through_the_one_serializer(fitted, tmp_path, monkeypatch):
    from genlab import serialize
    from genlab.base import GenerativeModel

    model, _ = fitted
    cls = type(model)
    # no family has its own save/load path: they supply tensors and rebuild from them
    assert cls.save is GenerativeModel.save
    assert cls._load_from_header.__func__ is GenerativeModel._load_from_header.__func__
    assert cls.check_fitted is GenerativeModel.check_fitted
    calls = []
    real_save, real_weights = serialize.save_model_folder, serialize.SavedWeights
    monkeypatch.setattr(serialize, "save_model_folder", lambda *a, **k: calls.append("save") or real_save(*a, **k))

    class Spy(real_weights):
        def __init__(self, header):
            calls.append("load")
            super().__init__(header)

    monkeypatch.setattr(serialize, "SavedWeights", Spy)
    before = _saved_arrays(model, tmp_path / "m")
    loaded = genlab.load(tmp_path / "m")
    assert calls == ["save", "load"]
    assert loaded.fitted and loaded.config == model.config
    assert _same_arrays(before, _saved_arrays(loaded, tmp_path / "again"))  # round trip identical
    mode = (tmp_path / "m" / "model.safetensors").stat().st_mode & 0o777
    assert mode == (tmp_path / "m" / "config.json").stat().st_mode & 0o777  # not mkstemp's 0600
    assert not [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("name", ["bayesnet", "mrf"])
def test_pgm_folders_saved_by_the_previous_code_still_load(name, tmp_path):
    """tests/models/saved_v1 was written by the PGMs' own save methods before the one
    serializer (safetensors of numpy arrays): it loads, and saves back to the same tensors."""
    from pathlib import Path

    old = Path(__file__).parent / "models" / "saved_v1" / name
    m = genlab.load(old)
    assert m.model_type == name and m.fitted
    assert _same_arrays(load_file(str(old / "model.safetensors")), _saved_arrays(m, tmp_path / "m"))
    assert torch.is_tensor(m.sample(2, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", ["bayesnet", "mrf"])
def test_damaged_pgm_folders_are_one_model_format_error_naming_the_file(name, tmp_path):
    import hashlib
    import json
    import shutil
    from pathlib import Path

    from genlab.errors import ModelFormatError

    old = Path(__file__).parent / "models" / "saved_v1" / name

    def damaged(edit_weights=None, edit_config=None, rehash=False):
        d = Path(shutil.copytree(old, tmp_path / f"d{len(list(tmp_path.iterdir()))}"))
        w, c = d / "model.safetensors", d / "config.json"
        if edit_weights:
            w.write_bytes(edit_weights(w.read_bytes()))
        cfg = json.loads(c.read_text())
        if edit_config:
            edit_config(cfg)
        if rehash:
            cfg["weights_sha256"] = hashlib.sha256(w.read_bytes()).hexdigest()
        c.write_text(json.dumps(cfg))
        with pytest.raises(ModelFormatError) as e:
            genlab.load(d)
        assert str(d) in str(e.value) and "\n" not in str(e.value)
        return str(e.value)

    flip = lambda b: b[:-1] + bytes([b[-1] ^ 0x40])  # noqa: E731
    assert "SHA-256" in damaged(flip)
    assert "truncated or corrupt" in damaged(lambda b: b[:-8], rehash=True)
    from safetensors.numpy import save_file

    def other_shapes(b):
        arrays = {k: np.concatenate([v, v], axis=-1) for k, v in load_file(str(old / "model.safetensors")).items()}
        save_file(arrays, str(tmp_path / "other.safetensors"))
        return (tmp_path / "other.safetensors").read_bytes()

    assert "does not match" in damaged(other_shapes, rehash=True)
    assert "'max_iter' has the wrong type" in damaged(edit_config=lambda c: c["config"].update(max_iter="many"))
    (tmp_path / "nw").mkdir()
    shutil.copy(old / "config.json", tmp_path / "nw" / "config.json")
    with pytest.raises(ModelFormatError, match="no model.safetensors"):
        genlab.load(tmp_path / "nw")


def test_construction_from_a_config_or_overrides_is_the_same_for_every_family():
    for name in genlab.MODELS.names():
        cls = genlab.MODELS.get(name)
        cfg = cls.config_class(**CASES[name][0])
        assert cls(cfg).config == cls(**CASES[name][0]).config == cfg
        first = cls.config_class.field_names()[0]
        assert cls(cfg, **{first: getattr(cfg, first)}).config == cfg
        with pytest.raises(TypeError, match=rf"{cls.__name__} has no setting 'nope'"):
            cls(nope=1)
        with pytest.raises(TypeError, match=rf"{cls.__name__} has no setting 'nope'"):
            cls(cfg, nope=1)


def test_prepare_is_the_public_hook_and_ensure_built_a_deprecated_alias(digits_small):
    from genlab.base import GenerativeModel

    model = genlab.MODELS.get("vae")(**TINY)
    with pytest.warns(DeprecationWarning, match="prepare"):
        model._ensure_built(digits_small)
    assert model.config.data_shape == (1, 8, 8) and model.built
    with pytest.warns(DeprecationWarning, match="override prepare"):
        class Old(GenerativeModel):
            def _ensure_built(self, data):
                self.seen = data
    m = Old()
    m.prepare(3)
    assert m.seen == 3


def test_base_does_not_import_train_and_the_old_name_still_works():
    import subprocess
    import sys

    code = ("import sys, genlab.base; assert 'genlab.train' not in sys.modules, 'base imports train';"
            "import warnings; warnings.simplefilter('error');"
            "from genlab.models import TorchGenerativeModel\n"
            "try:\n    genlab.base.TorchGenerativeModel\nexcept DeprecationWarning: pass\n"
            "else:\n    raise SystemExit('no DeprecationWarning')\n"
            "warnings.simplefilter('ignore'); assert genlab.base.TorchGenerativeModel is TorchGenerativeModel")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_unfitted_model_refuses_to_sample():
    for name in genlab.MODELS.names():
        model = genlab.MODELS.get(name)(**CASES[name][0])
        with pytest.raises(NotFittedError):
            model.sample(2)
        with pytest.raises(NotFittedError):
            model.save("never-written")


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_is_deterministic(name, request, tmp_path):
    cfg, data_name = CASES[name]
    data = request.getfixturevalue(data_name)
    cls = genlab.MODELS.get(name)
    a = cls(**cfg).fit(data, TRAIN)
    b = cls(**cfg).fit(data, TRAIN)
    assert _same_arrays(_saved_arrays(a, tmp_path / "a"), _saved_arrays(b, tmp_path / "b"))


@pytest.mark.parametrize("name, field, want", [("autoencoder", "loss", "bce"), ("vae", "likelihood", "bernoulli")])
def test_auto_fields_resolve_when_data_shape_is_given(name, field, want, digits_small):
    model = genlab.MODELS.get(name)(data_shape=(1, 8, 8), **CASES[name][0])
    model.fit(digits_small, TRAIN)
    assert getattr(model.config, field) == want
    x = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.min() >= 0 and x.max() <= 1


def test_reconstruct_keeps_the_training_mode(digits_small):
    for name in ("autoencoder", "vae"):
        model = genlab.MODELS.get(name)(**CASES[name][0]).fit(digits_small, TRAIN)
        model.train()
        assert model.reconstruct(digits_small.x[:3]).shape == (3, 1, 8, 8)
        assert model.training


def test_check_model_passes_on_every_family(fitted):
    """genlab.testing.check_model, the check published for third-party families, holds for
    every shipped family and variant."""
    from genlab.testing import check_model

    model, data = fitted
    passed = check_model(model, data, fitted=True, n=6)
    assert "sample is seeded" in passed and "load gives the same class" in passed
    if model.tags.log_prob_kind == "exact":  # the Bayesian network and the language models
        assert "exp(log_prob) sums to 1" in passed
