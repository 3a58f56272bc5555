"""The one contract suite: every registered model family must pass it.

A new family joins by registering in genlab.MODELS and adding a small config to CASES
(the first test fails until it does).
"""
import pytest
import torch

import genlab
from genlab.base import LOG_PROB_KINDS
from genlab.errors import LogProbUnavailableError, NotFittedError

TINY = {"hidden": (32, 16), "latent_dim": 4}
# model name -> (config overrides, data fixture name)
CASES = {
    "autoencoder": ({**TINY}, "digits_small"),
    "vae": ({**TINY}, "digits_small"),
}
# extra variants of families worth running through the whole contract
VARIANTS = {
    "autoencoder-conv": ("autoencoder", {"arch": "conv", "channels": (8, 16), "latent_dim": 4, "hidden": (16,)}),
    "vae-conv": ("vae", {"arch": "conv", "channels": (8, 16), "latent_dim": 4, "hidden": (16,)}),
    "vae-gaussian": ("vae", {**TINY, "likelihood": "gaussian"}),
    "vae-conditional": ("vae", {**TINY, "num_classes": -1, "dropout": 0.1}),
    "autoencoder-denoising": ("autoencoder", {**TINY, "denoise_std": 0.2, "dropout": 0.1}),
}
TRAIN = {"epochs": 1, "batch_size": 64, "progress": False, "seed": 0}

ALL = {**{k: (k, v[0], v[1]) for k, v in CASES.items()},
       **{k: (fam, cfg, "digits_small") for k, (fam, cfg) in VARIANTS.items()}}


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
    a = model.sample(5, generator=torch.Generator().manual_seed(7))
    b = model.sample(5, generator=torch.Generator().manual_seed(7))
    c = model.sample(5, generator=torch.Generator().manual_seed(8))
    assert a.shape == (5, *data.shape)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_save_load_roundtrip(fitted, tmp_path):
    model, data = fitted
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = genlab.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.config == model.config
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model.sample(4, generator=g()), loaded.sample(4, generator=g()))
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert type(model).load(tmp_path / "m").config == model.config


def test_log_prob_follows_its_kind(fitted):
    model, data = fitted
    x = data.x[:6]
    if model.log_prob_kind == "none":
        with pytest.raises(LogProbUnavailableError):
            model.log_prob(x)
        return
    kw = {"y": data.y[:6]} if getattr(model.config, "num_classes", 0) else {}
    if getattr(model.config, "likelihood", "") == "bernoulli":
        x = (x > 0.5).float()
    lp1 = model.log_prob(x, k=16, generator=torch.Generator().manual_seed(0), **kw)
    lp2 = model.log_prob(x, k=16, generator=torch.Generator().manual_seed(0), **kw)
    assert lp1.shape == (6,) and torch.isfinite(lp1).all()
    assert torch.equal(lp1, lp2)
    if getattr(model.config, "likelihood", "") == "bernoulli":
        assert (lp1 <= 0).all()  # a probability of binary data is at most 1


def test_unfitted_model_refuses_to_sample():
    for name in genlab.MODELS.names():
        model = genlab.MODELS.get(name)(**CASES[name][0])
        with pytest.raises(NotFittedError):
            model.sample(2)
        with pytest.raises(NotFittedError):
            model.save("never-written")


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_is_deterministic(name, request):
    cfg, data_name = CASES[name]
    data = request.getfixturevalue(data_name)
    cls = genlab.MODELS.get(name)
    a = cls(**cfg).fit(data, TRAIN)
    b = cls(**cfg).fit(data, TRAIN)
    for v1, v2 in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(v1, v2)


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
