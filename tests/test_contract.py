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
    "gan-pack-mbstd": ("gan", {"arch": "mlp", **TINY, "pack": 2, "minibatch_std": True, "loss": "lsgan"}, "digits_small"),
}
TRAIN = {"epochs": 1, "batch_size": 64, "progress": False, "seed": 0}

ALL = {**{k: (k, v[0], v[1]) for k, v in CASES.items()}, **VARIANTS}


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


def test_log_prob_follows_its_kind(fitted):
    model, data = fitted
    x = _rows(data, 6)
    if model.log_prob_kind == "none":
        with pytest.raises(LogProbUnavailableError):
            model.log_prob(x)
        return
    kw = {"y": data.y[:6]} if getattr(getattr(model, "config", None), "num_classes", 0) else {}
    if getattr(model.config, "likelihood", "") == "bernoulli":
        x = (x > 0.5).float()
    params = inspect.signature(model.log_prob).parameters
    if "k" in params or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        kw["k"] = 16
    lp1 = _np(model.log_prob(x, generator=torch.Generator().manual_seed(0), **kw)
              if "generator" in params or "k" in kw else model.log_prob(x, **kw))
    lp2 = _np(model.log_prob(x, generator=torch.Generator().manual_seed(0), **kw)
              if "generator" in params or "k" in kw else model.log_prob(x, **kw))
    assert lp1.shape == (6,) and np.isfinite(lp1).all()
    assert np.array_equal(lp1, lp2)
    if getattr(model.config, "likelihood", "") == "bernoulli" or model.model_type == "bayesnet":
        assert (lp1 <= 0).all()  # a probability of discrete data is at most 1


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
