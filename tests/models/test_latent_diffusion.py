"""Latent diffusion: a VAE (or autoencoder) to a latent grid, a diffusion prior on the
grids, both trained by one step on the one trainer and saved in one folder."""
import contextlib

import pytest
import torch

import genlab
from genlab.errors import DataError, LogProbUnavailableError
from genlab.models import LatentDiffusion
from genlab.train.checkpoint import LAST, read_checkpoint

TINY = {"encoder_channels": (4,), "channels": 8, "heads": 2, "timesteps": 20, "sample_steps": 3,
        "nll_timesteps": 3, "ema_decay": 0.9}
# 96 rows, batch 32: 3 steps an epoch, 9 in all; the prior trains from step 4
TRAIN = {"epochs": 3, "batch_size": 32, "progress": False, "seed": 3, "threads": 1, "val_fraction": 0,
         "checkpoint_every": 1}


def g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def data(digits_splits):
    return digits_splits["train"].subset(slice(0, 96))


@pytest.fixture(scope="module")
def conditional(data):
    """A class-conditional model trained through both stages."""
    return LatentDiffusion(**TINY, num_classes=-1, stage1_steps=4).fit(data, TRAIN)


def test_shapes_and_ranges(conditional, data):
    m = conditional
    assert m.config.num_classes == 10 and m.config.encoder_channels == (4,)
    assert m.latent_shape == (4, 4, 4) and m.latent_dim == 64  # 8x8 -> one stride-2 layer -> 4x4
    x = m.sample(6, generator=g(), y=3)
    assert x.shape == (6, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    z = m.sample_latent(6, generator=g(), y=3)
    assert z.shape == (6, 64)
    assert torch.equal(m.decode(z), x)  # sample = decode(sample_latent)
    assert torch.equal(m.decode(z.reshape(6, 4, 4, 4)), x)  # grids decode too
    assert m.encode(data.x[:5]).shape == (5, 64)
    assert m.reconstruct(data.x[:5], data.y[:5]).shape == (5, 1, 8, 8)
    tags = m.tags
    assert tags.latent and tags.reconstruction and tags.modality == "image" and tags.num_classes == 10
    assert tags.log_prob_kind == "lower_bound" and set(tags.sample_options) == {"y", "sampler", "steps", "guidance"}
    assert genlab.MODELS.get("ldm") is LatentDiffusion


def test_the_stage_switch_freezes_the_first_stage_and_standardises_the_latents(data):
    seen = {}

    class Watch:
        def on_step_end(self, trainer, logs):
            m = trainer.model
            seen[trainer.step] = ({k: v.clone() for k, v in m.first_stage.state_dict().items()},
                                  {k: v.clone() for k, v in m.prior.net.state_dict().items()}, logs["stage"])

    m = LatentDiffusion(**TINY, stage1_steps=4)
    before = None

    class First:
        def on_fit_start(self, trainer):
            nonlocal before
            before = {k: v.clone() for k, v in trainer.model.prior.net.state_dict().items()}

    m.fit(data, TRAIN, callbacks=[First(), Watch()])
    assert [seen[s][2] for s in range(1, 10)] == [1.0] * 4 + [2.0] * 5
    same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(seen[4][0], seen[9][0])  # stage 2 leaves the encoder and decoder alone
    assert not same(seen[1][0], seen[4][0])  # stage 1 trained them
    assert same(before, seen[4][1]) and not same(seen[4][1], seen[5][1])  # the prior trains in stage 2 only
    # the scale estimated at the switch: the training latents have mean 0 and variance 1
    with torch.no_grad():
        mu, logvar = m._posterior(data.x)
        zs = (mu - m.latent_shift) * m.latent_scale
        var = zs.var(unbiased=False) + (logvar.exp() * m.latent_scale ** 2).mean()
    assert abs(float(zs.mean())) < 1e-4 and abs(float(var) - 1) < 1e-4
    assert float(m.latent_scale) != 1.0


@pytest.mark.parametrize("stop", [4, 6], ids=["at-the-switch", "after-the-switch"])
def test_resume_across_the_switch_is_bit_identical(data, tmp_path, stop):
    ref = LatentDiffusion(**TINY, stage1_steps=4).fit(data, TRAIN, run_dir=tmp_path / "ref")
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="stays untrained") if stop == 4 else contextlib.nullcontext():
        LatentDiffusion(**TINY, stage1_steps=4).fit(data, {**TRAIN, "max_steps": stop}, run_dir=run)
    state = read_checkpoint(run / "checkpoints" / LAST)["step_state"]
    assert state == {"switch": 4, "standardized": stop > 4}
    resumed = LatentDiffusion(**TINY, stage1_steps=4).fit(data, TRAIN, run_dir=run, resume=True)
    a, b = ref.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_save_load_round_trip(conditional, tmp_path):
    conditional.save(tmp_path / "m")
    back = genlab.load(tmp_path / "m")
    assert type(back) is LatentDiffusion and back.config == conditional.config
    assert torch.equal(back.latent_scale, conditional.latent_scale)
    for kw in ({}, {"y": 7, "guidance": 2.0, "sampler": "dpm++", "steps": 4}):
        assert torch.equal(back.sample(5, generator=g(1), **kw), conditional.sample(5, generator=g(1), **kw))


def test_guidance_on_the_conditional_prior(conditional, data):
    m = conditional
    xs = {w: m.sample(8, generator=g(2), y=5, guidance=w) for w in (0.0, 1.0, 3.0)}
    assert not torch.equal(xs[0.0], xs[1.0]) and not torch.equal(xs[1.0], xs[3.0])
    assert torch.equal(xs[1.0], m.sample(8, generator=g(2), y=5))  # w = 1 is the plain conditional prior
    assert not torch.equal(m.sample(8, generator=g(2), y=0), m.sample(8, generator=g(2), y=9))
    with pytest.raises(ValueError, match="labels in 0..9"):
        m.sample(2, y=10)
    plain = LatentDiffusion(**TINY, stage1_steps=4).fit(data, {**TRAIN, "epochs": 2})
    with pytest.raises(ValueError, match="guidance needs"):
        plain.sample(2, guidance=3.0)
    with pytest.raises(ValueError, match="unconditional"):
        plain.sample(2, y=1)


def test_log_prob_is_a_seeded_bound_and_the_autoencoder_has_none(conditional, data):
    m = conditional
    x = (data.x[:6] > 0.5).float()
    a = m.log_prob(x, generator=g(), y=data.y[:6])
    assert a.dtype == torch.float64 and a.shape == (6,) and torch.isfinite(a).all() and (a < 0).all()
    assert torch.equal(a, m.log_prob(x, generator=g(), y=data.y[:6]))
    assert torch.isfinite(m.log_prob(x, generator=g(), timesteps=0)).all()  # every KL term, unconditional part
    with pytest.raises(ValueError, match="binary images only"):
        m.log_prob(data.x[:2])
    ae = LatentDiffusion(**TINY, first_stage="autoencoder", likelihood="gaussian", stage1_steps=4)
    ae.fit(data, {**TRAIN, "epochs": 2})
    assert ae.log_prob_kind == "none" and ae.tags.log_prob_kind == "none"
    with pytest.raises(LogProbUnavailableError, match="deterministic"):
        ae.log_prob(x)
    assert ae.sample(3, generator=g()).shape == (3, 1, 8, 8)


def test_bad_options_are_clear_errors(data, digits_splits):
    with pytest.raises(ValueError, match="LatentDiffusionConfig: first_stage must be one of vae, autoencoder"):
        LatentDiffusion(first_stage="gan")
    with pytest.raises(ValueError, match="LatentDiffusionConfig: channels must be >= 4 and divisible by heads"):
        LatentDiffusion(channels=6, heads=4)  # the prior's own rule, under this config's name
    with pytest.raises(ValueError, match="LatentDiffusionConfig: sampler must be one of"):
        LatentDiffusion(sampler="nope")
    with pytest.raises(ValueError, match="stage1_steps must be -1"):
        LatentDiffusion(stage1_steps=-2)
    with pytest.raises(TypeError, match="has no setting 'latent_dim'"):
        LatentDiffusion(latent_dim=4)
    with pytest.warns(UserWarning, match="stage1_steps=9 leaves none of this run's 9 steps"):
        LatentDiffusion(**TINY, stage1_steps=9).fit(data, {**TRAIN, "epochs": 3})
    with pytest.raises(ValueError, match="patience=2 is not supported for latent diffusion training"):
        LatentDiffusion(**TINY).fit(data, {**TRAIN, "patience": 2})
    from genlab.data.datasets import load_splits

    with pytest.raises(DataError, match="models images"):
        LatentDiffusion(**TINY).fit(load_splits("ring8", n_train=64, n_val=8, n_test=8)["train"], TRAIN)
    with pytest.raises(genlab.errors.NotFittedError):
        LatentDiffusion(**TINY).sample(2)


@pytest.mark.parametrize("shape, channels, grid", [((1, 8, 8), (8,), (3, 4, 4)), ((1, 28, 28), (8, 16), (3, 7, 7)),
                                                   ((3, 9, 6), (8,), (3, 5, 3))])
def test_the_conv_blocks_give_and_take_a_latent_grid(shape, channels, grid):
    from genlab.nn import decoder, encoder

    enc = encoder("conv", shape, 3, hidden=(), channels=channels, grid=True)
    dec = decoder("conv", 3, shape, hidden=(), channels=channels, grid=True)
    z = enc(torch.zeros(2, *shape))
    assert tuple(z.shape) == (2, *grid) and enc.out_shape == grid
    assert tuple(dec(z).shape) == (2, *shape)
    assert tuple(encoder("conv", shape, 3, hidden=(), channels=channels)(torch.zeros(2, *shape)).shape) == (2, 3)
    with pytest.raises(ValueError, match="latent grid needs arch='conv'"):
        encoder("mlp", shape, 3, hidden=(4,), channels=channels, grid=True)
