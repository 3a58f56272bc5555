"""Values that used to slip through: --limit 0, NaN/inf options and config fields, absurd
thread counts, and bad temperature / top-k / top-p / sweep counts in sample()."""
import dataclasses
import math
import os

import numpy as np
import pytest
import torch

import genlab
import genlab.models  # noqa: F401  (registers every model family and its configs)
import genlab.pipelines  # noqa: F401
from genlab._threads import max_threads, set_threads
from genlab.base import Config
from genlab.cli import UsageError, main, parse_overrides
from genlab.models import VAE, VAEConfig
from genlab.models.sequence import sampling
from genlab.train import TrainConfig

FAST = {"epochs": 1, "max_steps": 2, "batch_size": 32, "progress": False, "seed": 0}
NAN, INF = float("nan"), float("inf")


def _err_line(capsys):
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("limit", ["0", "-3"])
def test_limit_zero_or_negative_is_a_usage_error(limit, tmp_path, capsys):
    assert main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "r"), "--limit", limit]) == 2
    assert f"--limit must be >= 1 (leave it out to use all the data), got {limit}" in _err_line(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("token, shown", [("--beta=nan", "--beta: must be a finite number, got nan"),
                                          ("--beta=inf", "--beta: must be a finite number, got inf"),
                                          ("--lr=-inf", "--lr: must be a finite number, got -inf"),
                                          ("--betas=0.9,nan", "--betas: must be a finite number, got nan")])
def test_overrides_refuse_non_finite_floats(token, shown):
    with pytest.raises(UsageError, match=shown):
        parse_overrides([token], VAEConfig, TrainConfig)


def test_cli_nan_override_is_one_line_exit_2(tmp_path, capsys):
    assert main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "r"), "--beta=nan"]) == 2
    assert "--beta: must be a finite number, got nan" in _err_line(capsys)


def test_cli_lr_inf_is_refused(tmp_path, capsys):
    assert main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "r"), "--lr", "inf"]) == 2
    assert "lr must be a finite number, got inf" in _err_line(capsys)


def test_cli_sample_temperature_nan(tmp_path, capsys):
    VAE(VAEConfig(hidden=(8,), latent_dim=2)).fit("digits", FAST).save(tmp_path / "m")
    assert main(["sample", str(tmp_path / "m"), "-n", "2", "-o", str(tmp_path / "s.npy"),
                 "--temperature=nan"]) == 2
    assert "--temperature: must be a finite number, got nan" in _err_line(capsys)
    assert not (tmp_path / "s.npy").exists()


# ----------------------------------------------------------------------------- configs
def _config_classes():
    seen, todo = [], [Config]
    while todo:
        for c in todo.pop().__subclasses__():
            if c not in seen and c.__module__.startswith("genlab."):
                seen.append(c)
                todo.append(c)
    return seen


def _float_fields():
    out = []
    for cls in _config_classes():
        default = cls()
        for f in dataclasses.fields(cls):
            v = getattr(default, f.name)
            if isinstance(v, float) or (isinstance(v, tuple) and v and all(isinstance(u, float) for u in v)):
                out.append((cls, f.name, v))
    return out


def test_every_config_class_is_found():
    names = {c.__name__ for c in _config_classes()}
    assert {"TrainConfig", "VAEConfig", "GANConfig", "RecurrentConfig", "TransformerConfig",
            "SeqVAEConfig", "AutoencoderConfig", "BayesNetConfig", "MRFConfig", "RBMConfig"} <= names


@pytest.mark.parametrize("cls, name, default", _float_fields(),
                         ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_float_config_fields_refuse_nan_and_inf(cls, name, default, bad):
    value = tuple(bad for _ in default) if isinstance(default, tuple) else bad
    with pytest.raises(ValueError, match=f"{cls.__name__}: {name} must"):
        cls(**{name: value})
    with pytest.raises(ValueError, match=f"{cls.__name__}: {name} must"):
        cls.from_dict({name: list(value) if isinstance(value, tuple) else value})  # e.g. a config.json


def test_optional_float_fields_and_opt_out():
    with pytest.raises(ValueError, match="TrainConfig: grad_clip must be a finite number, got inf"):
        TrainConfig(grad_clip=INF)
    with pytest.raises(ValueError, match="GANConfig: lr_g must be a finite number, got nan"):
        genlab.models.GANConfig(lr_g=NAN)

    @dataclasses.dataclass(frozen=True)
    class Capped(Config):
        allow_inf = frozenset({"cap"})
        cap: float = INF
        rate: float = 0.5

        def __post_init__(self):  # its own check, without super(): the base check still runs
            if not self.rate > 0:
                raise ValueError("rate must be > 0")

    assert Capped().cap == INF
    with pytest.raises(ValueError, match="Capped: cap must be a number .not NaN., got nan"):
        Capped(cap=NAN)
    with pytest.raises(ValueError, match="Capped: rate must be a finite number, got inf"):
        Capped(rate=INF)


@pytest.mark.parametrize("field", ["lr", "weight_decay", "momentum", "gamma", "min_delta", "min_lr_ratio"])
def test_train_config_float_fields_must_be_finite(field):
    for bad in (NAN, INF):
        with pytest.raises(ValueError, match=f"TrainConfig: {field} must be a finite number"):
            TrainConfig(**{field: bad})


def test_thread_counts_are_capped():
    cpus = os.cpu_count() or 1
    assert max_threads() == 4 * cpus
    with pytest.raises(ValueError, match=f"threads must be <= {4 * cpus} .4 x the {cpus} CPU"):
        TrainConfig(threads=100000)
    assert TrainConfig(threads=max_threads()).threads == max_threads()
    before = torch.get_num_threads()
    for bad in (100000, 0, -1, 2.5):
        with pytest.raises(ValueError, match="threads must be"):
            set_threads(bad)
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------------------- sample()
@pytest.fixture(scope="module")
def vae():
    torch.set_num_threads(1)
    return VAE(VAEConfig(hidden=(8,), latent_dim=2)).fit("digits", FAST)


@pytest.mark.parametrize("t", [NAN, INF, -1.0])
def test_vae_temperature_must_be_finite_and_non_negative(vae, t):
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        vae.sample(2, temperature=t)


def test_vae_temperature_zero_decodes_the_prior_mean(vae):
    x = vae.sample(3, temperature=0.0)
    assert torch.isfinite(x).all() and torch.allclose(x[0], x[1])


@pytest.fixture(scope="module")
def lstm():
    from genlab.data.text import text_splits

    corpus = "the quick brown fox jumps over the lazy dog.\n" * 20
    return genlab.MODELS.get("lstm")(hidden=8, layers=1).fit(text_splits(corpus, block_size=12)["train"], FAST)


@pytest.mark.parametrize("kw, needle", [({"temperature": NAN}, "temperature must be a finite number >= 0"),
                                        ({"temperature": INF}, "temperature must be a finite number >= 0"),
                                        ({"temperature": -0.5}, "temperature must be a finite number >= 0"),
                                        ({"top_k": 0}, "top_k must be a positive integer"),
                                        ({"top_k": True}, "top_k must be a positive integer"),
                                        ({"top_k": 2.5}, "top_k must be a positive integer"),
                                        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
                                        ({"top_p": NAN}, r"top_p must be in \(0, 1\]"),
                                        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]")])
def test_sequence_sampling_options(lstm, kw, needle):
    with pytest.raises(ValueError, match=needle):
        lstm.sample(2, generator=torch.Generator().manual_seed(0), **kw)
    with pytest.raises(ValueError, match=needle):
        sampling.check_sampling_args(kw.get("temperature", 1.0), kw.get("top_k"), kw.get("top_p"))


def test_sequence_sampling_still_takes_good_options(lstm):
    g = torch.Generator().manual_seed(0)
    assert lstm.sample(2, generator=g, temperature=0, top_k=3, top_p=0.9).shape[0] == 2
    assert lstm.sample(2, generator=g, temperature=np.float32(0.7), top_k=np.int64(2)).shape[0] == 2
    with pytest.raises(ValueError, match="length_penalty must be a finite number"):
        lstm.beam_search(beam_width=2, length_penalty=NAN)


def test_gibbs_sweeps_and_steps_must_be_positive():
    from genlab.models.pgm import RBM, GridMRF

    rng = np.random.default_rng(0)
    rows = (rng.random((8, 6, 1)) < 0.5).repeat(6, 2).astype(np.float32)[:, None]
    mrf = GridMRF(max_iter=3).fit(rows)
    with pytest.raises(ValueError, match="sweeps must be a positive integer, got 0"):
        mrf.sample(2, sweeps=0)
    assert mrf.sample(2, sweeps=1, generator=0).shape == (2, 1, 6, 6)
    rbm = RBM(hidden=4).fit(torch.bernoulli(torch.full((32, 8), 0.5)), FAST)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        rbm.sample(2, steps=0)
    assert math.prod(rbm.sample(2, steps=1).shape) == 16
