"""GAN family: loss math, gradient penalty, spectral norm, EMA, n_critic, the training loop's
guarantees (resume after SIGKILL, NaN guard, reproducibility), conditional sampling,
minibatch std and packing."""
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import genlab
from genlab.train.checkpoint import read_checkpoint
from genlab.errors import LogProbUnavailableError, TrainingDivergedError
from genlab.models.gan import GAN, GANConfig
from genlab.models.gan import losses
from genlab.models.gan.nets import Discriminator, minibatch_std, pack_inputs
from genlab.models.gan.train import ema_decay_at, ema_update

TINY = {"arch": "mlp", "hidden": (32, 16), "latent_dim": 4}
CONV = {"arch": "conv", "g_channels": (16, 8), "d_channels": (8, 16), "latent_dim": 8}
FAST = {"epochs": 1, "batch_size": 64, "progress": False, "threads": 1}


def sig(t):
    return 1 / (1 + math.exp(-t))


# ----------------------------------------------------------------------------- losses
@pytest.mark.parametrize("kind, d_want, g_want", [
    ("minimax", -math.log(sig(0.5)) - math.log(1 - sig(0.25)), math.log(1 - sig(-0.5))),
    ("nonsaturating", -math.log(sig(0.5)) - math.log(1 - sig(0.25)), -math.log(sig(-0.5))),
    ("lsgan", 0.5 * ((0.5 - 1) ** 2 + 0.25 ** 2), 0.5 * (-0.5 - 1) ** 2),
    ("hinge", 0.5 + 1.25, 0.5),
    ("wgan-gp", 0.25 - 0.5, 0.5),
])
def test_loss_values_and_gradient_signs(kind, d_want, g_want):
    real = torch.tensor([0.5], requires_grad=True)
    fake = torch.tensor([0.25], requires_grad=True)
    d = losses.d_loss(kind, real, fake)
    assert float(d.detach()) == pytest.approx(d_want, abs=1e-6)
    d.backward()
    assert real.grad.item() < 0  # D pushes real logits up ...
    assert fake.grad.item() > 0  # ... and fake logits down
    fake2 = torch.tensor([-0.5], requires_grad=True)
    g = losses.g_loss(kind, fake2)
    assert float(g.detach()) == pytest.approx(g_want, abs=1e-6)
    g.backward()
    assert fake2.grad.item() < 0  # G pushes its logits up


def test_minimax_saturates_nonsaturating_does_not():
    """Goodfellow et al.: when D rejects fakes confidently, log(1 - D(G(z))) has a vanishing
    gradient, -log D(G(z)) does not."""
    grads = {}
    for kind in ("minimax", "nonsaturating"):
        f = torch.tensor([-8.0], requires_grad=True)
        losses.g_loss(kind, f).backward()
        grads[kind] = abs(f.grad.item())
    assert grads["minimax"] == pytest.approx(sig(-8.0), rel=1e-4)
    assert grads["nonsaturating"] == pytest.approx(1 - sig(-8.0), rel=1e-4)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="loss must be one of"):
        GANConfig(loss="wasserstein")


# ----------------------------------------------------------------------------- gradient penalty
def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    w = torch.tensor([3.0, 4.0])  # ||w|| = 5: the gradient everywhere
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    gp = losses.gradient_penalty(lambda x: x @ w, real, fake, generator=torch.Generator().manual_seed(0))
    assert float(gp) == pytest.approx((5 - 1) ** 2)


def test_gradient_penalty_equals_brute_force():
    torch.manual_seed(0)
    d = Discriminator((1, 8, 8), arch="conv", channels=(4, 8))
    real, fake = torch.rand(5, 1, 8, 8), torch.rand(5, 1, 8, 8)
    gp = losses.gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(3))
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    want = []
    for i in range(5):  # one example at a time, central finite differences of D
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).double()[None]
        dd = Discriminator((1, 8, 8), arch="conv", channels=(4, 8)).double()
        dd.load_state_dict({k: v.double() for k, v in d.state_dict().items()})
        grad = torch.zeros(64, dtype=torch.float64)
        h = 1e-5
        for j in range(64):
            e = torch.zeros(64, dtype=torch.float64)
            e[j] = h
            e = e.view(1, 1, 8, 8)
            grad[j] = (dd(x + e) - dd(x - e)).item() / (2 * h)
        want.append((grad.norm() - 1) ** 2)
    assert float(gp.detach()) == pytest.approx(float(torch.stack(want).mean()), rel=1e-4)


def test_gradient_penalty_packs_groups():
    w = torch.tensor([1.0, 0.0, 0.0, 2.0])  # packed pairs of 2-D points: one norm per pair
    gp = losses.gradient_penalty(lambda x: pack_inputs(x, 2) @ w, torch.randn(4, 2), torch.randn(4, 2))
    assert float(gp) == pytest.approx((math.sqrt(5) - 1) ** 2)


# ----------------------------------------------------------------------------- spectral norm
def test_spectral_norm_makes_the_top_singular_value_one():
    torch.manual_seed(0)
    d = Discriminator((2,), arch="mlp", hidden=(32, 32), spectral_norm=True)
    with torch.no_grad():
        for lin in [m for m in d.modules() if isinstance(m, torch.nn.Linear)]:
            lin.parametrizations.weight.original.mul_(7.0)  # far from 1 before normalising
        for _ in range(60):  # each training-mode forward runs one power iteration
            d(torch.randn(8, 2))
    d.eval()
    tops = [float(torch.linalg.matrix_norm(m.weight.detach(), 2)) for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert len(tops) == 3 and all(t == pytest.approx(1.0, abs=1e-3) for t in tops)


# ----------------------------------------------------------------------------- EMA, n_critic
def test_ema_math():
    ema, net = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        ema.weight.fill_(1.0)
        net.weight.fill_(3.0)
        net.running_mean.fill_(5.0)
    ema_update(ema, net, 0.9)
    assert torch.allclose(ema.weight, torch.full((2,), 0.9 * 1 + 0.1 * 3))
    assert torch.equal(ema.running_mean, net.running_mean)  # buffers are copied
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(10 ** 6, 0.999) == 0.999


def test_sampling_uses_the_ema_generator(digits_small):
    m = GAN(**TINY, ema_decay=0.9).fit(digits_small, FAST)
    z = m.sample_latent(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m.decode(z), m.generator_ema(z))
    assert not torch.equal(m.generator_ema(z), m.generator(z))
    assert any(k.startswith("generator_ema.") for k in m.state_dict())


def test_n_critic_counts(digits_small):
    m = GAN(**TINY, n_critic=3)
    calls = {"d": 0, "g": 0}
    d_step, g_step = m.d_step, m.g_step
    m.d_step = lambda *a: (calls.__setitem__("d", calls["d"] + 1), d_step(*a))[1]
    m.g_step = lambda *a: (calls.__setitem__("g", calls["g"] + 1), g_step(*a))[1]
    m.fit(digits_small, {**FAST, "max_steps": 4, "batch_size": 16})
    assert calls == {"d": 12, "g": 4}


# ----------------------------------------------------------------------------- shapes
def test_minibatch_std_matches_hand_computation():
    h = torch.randn(8, 3, 4, 4)
    out = minibatch_std(h, 4)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], h)
    for i in range(8):  # groups of 4 rows: row i is with rows i % 2, i % 2 + 2, ...
        group = h[i % 2::2]
        want = (group.var(0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(out[i, 3], want.expand(4, 4), atol=1e-6)
    assert minibatch_std(torch.randn(6, 5), 4).shape == (6, 6)  # gcd(6, 4) = 2 groups
    assert minibatch_std(torch.randn(5, 5), 4).shape == (5, 6)  # odd: one group


def test_pack_shapes_and_order():
    x = torch.arange(24.0).view(6, 1, 2, 2)
    p = pack_inputs(x, 3)
    assert p.shape == (2, 3, 2, 2) and torch.equal(p[1, 0], x[3, 0])
    d = Discriminator((1, 8, 8), arch="conv", channels=(4, 8), pack=2, minibatch_std=True)
    assert d(torch.rand(6, 1, 8, 8)).shape == (3,)
    assert Discriminator((2,), arch="mlp", hidden=(8,), pack=4)(torch.randn(8, 2)).shape == (2,)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 12, 20), (1, 7, 9)])
def test_conv_nets_sized_from_any_image_shape(shape):
    m = GAN(**CONV, data_shape=shape)
    assert m.generator(torch.randn(2, 8)).shape == (2, *shape)
    assert m.discriminator(torch.rand(2, *shape)).shape == (2,)


# ----------------------------------------------------------------------------- contract bits
def test_reproducible_and_log_prob_raises(digits_small):
    a = GAN(**TINY).fit(digits_small, FAST)
    b = GAN(**TINY).fit(digits_small, FAST)
    c = GAN(**TINY).fit(digits_small, {**FAST, "seed": 1})
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(a.sample(4, generator=g()), b.sample(4, generator=g()))
    s = a.sample(4, generator=g())
    assert s.min() >= 0 and s.max() <= 1  # images: sigmoid output
    with pytest.raises(LogProbUnavailableError):
        a.log_prob(digits_small.x[:2])
    assert genlab.MODELS.get("dcgan") is GAN


def test_conditional_sampling(digits_small):
    m = GAN(**CONV, num_classes=-1).fit(digits_small, FAST)
    assert m.config.num_classes == 10 and m.config.g_cond == "cbn"
    z = m.sample_latent(4, generator=torch.Generator().manual_seed(0))
    threes, sevens = m.decode(z, 3), m.decode(z, [7, 7, 7, 7])
    assert threes.shape == (4, 1, 8, 8) and not torch.equal(threes, sevens)
    assert m.sample(6, y=[0, 1, 2, 3, 4, 5], generator=torch.Generator().manual_seed(0)).shape == (6, 1, 8, 8)
    with pytest.raises(ValueError, match="labels in 0..9"):
        m.sample(2, y=[3, 12])
    mlp = GAN(**TINY, num_classes=-1).fit(digits_small, FAST)
    assert mlp.config.g_cond == "concat" and mlp.sample(3, y=1).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="unconditional"):
        GAN(**TINY).fit(digits_small, FAST).sample(2, y=1)
    with pytest.raises(ValueError, match="pack"):
        GANConfig(num_classes=10, pack=2)


# ----------------------------------------------------------------------------- the loop
def test_nan_guard_names_the_step_and_keeps_the_checkpoint(tmp_path, digits_small):
    m = GAN(**TINY)
    g_step = m.g_step
    count = {"n": 0}

    def poisoned(*a):
        count["n"] += 1
        out = g_step(*a)
        if count["n"] == 6:
            out["g_loss"] = out["g_loss"] * float("nan")
        return out

    m.g_step = poisoned
    with pytest.raises(TrainingDivergedError, match="generator loss became nan at step 6") as e:
        m.fit(digits_small, {**FAST, "batch_size": 16, "checkpoint_every": 2}, run_dir=tmp_path)
    assert "last good checkpoint" in str(e.value)
    ck = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["event"] == "diverged" and rows[-1]["step"] == 6


def test_run_folder_samples_gif_and_best_fid(tmp_path, digits_splits):
    m = GAN(**CONV, sample_every=3, n_fixed=16, val_every=4, val_samples=100)
    m.fit(digits_splits["train"].subset(slice(0, 256)), {**FAST, "batch_size": 32, "log_every": 2},
          val=digits_splits["val"], run_dir=tmp_path)
    pngs = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert pngs == ["step_000003.png", "step_000006.png", "step_000008.png"]
    from PIL import Image

    with Image.open(tmp_path / "figures" / "progress.gif") as gif:
        assert gif.n_frames == 3
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert [r["step"] for r in val] == [4, 8] and all(r["val_fid"] > 0 for r in val)
    train = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8] and {"d_loss", "g_loss", "d_real", "d_fake"} <= set(train[0])
    best = min(val, key=lambda r: r["val_fid"])["step"]
    assert (best != 8) == any(r.get("event") == "restored_best" for r in rows)


def test_toy_progress_is_a_scatter_picture(tmp_path):
    from genlab.data.datasets import load_splits

    ring = load_splits("ring8", n_train=512, n_val=64, n_test=64)
    GAN(**TINY, sample_every=4).fit(ring["train"], {**FAST, "max_steps": 4}, run_dir=tmp_path)
    assert (tmp_path / "samples" / "step_000004.png").is_file()
    assert (tmp_path / "figures" / "progress.gif").is_file()


def test_mlp_generator_batchnorm_option(tmp_path):
    from genlab.data.datasets import load_splits

    plain = GAN(**TINY, data_shape=(2,))
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.generator.modules())
    m = GAN(**TINY, g_batchnorm=True, minibatch_std=True, ema_decay=0.9)
    ring = load_splits("ring8", n_train=512, n_val=64, n_test=64)
    m.fit(ring["train"], {**FAST, "max_steps": 6})
    bns = [b for b in m.generator.modules() if isinstance(b, torch.nn.BatchNorm1d)]
    assert [b.num_features for b in bns] == list(TINY["hidden"])
    assert all(int(b.num_batches_tracked) > 0 for b in bns)  # running statistics were learned
    ema_bns = [b for b in m.generator_ema.modules() if isinstance(b, torch.nn.BatchNorm1d)]
    assert all(torch.equal(a.running_mean, b.running_mean) for a, b in zip(bns, ema_bns))  # buffers copied
    z = torch.randn(5, TINY["latent_dim"])
    one_by_one = torch.cat([m.decode(z[i:i + 1]) for i in range(5)])  # eval mode: running stats
    assert torch.allclose(m.decode(z), one_by_one, atol=1e-6)
    m.save(tmp_path / "bn")
    assert torch.equal(genlab.load(tmp_path / "bn").decode(z), m.decode(z))


SCRIPT = textwrap.dedent("""
    import sys, time
    import torch, genlab
    from genlab.data.datasets import load_splits
    from genlab.models.gan import GAN

    class Slow:  # give the parent time to kill us mid-run
        def on_step_end(self, trainer, logs):
            time.sleep(float(sys.argv[3]))

    splits = load_splits("digits")
    m = GAN(arch="conv", g_channels=(16, 8), d_channels=(8, 16), latent_dim=8, loss="wgan-gp",
            n_critic=2, ema_decay=0.99, spectral_norm=True, minibatch_std=True, val_every=10,
            val_samples=100)
    m.fit(splits["train"].subset(slice(0, 512)),
          {"max_steps": 36, "batch_size": 32, "checkpoint_every": 5, "progress": False, "seed": 3,
           "schedule": "cosine", "warmup_steps": 5, "threads": 1},
          val=splits["val"], run_dir=sys.argv[1], resume=sys.argv[2] == "1", callbacks=[Slow()])
    m.save(sys.argv[1] + "/final")
""")


def _run(script, run_dir, resume, delay):
    return subprocess.Popen([sys.executable, str(script), str(run_dir), "1" if resume else "0", str(delay)],
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


# SIGTERM's polite stop is covered for every family by tests/train/test_trainer.py and a
# GAN's SIGKILL (between steps and mid-checkpoint-write, EMA weights compared) by
# tests/train/test_fault_injection.py; this end-to-end variant runs with the slow tests
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_kill_then_resume_is_bit_identical(tmp_path, signum):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    ref = _run(script, tmp_path / "ref", False, 0)
    victim = _run(script, tmp_path / "victim", False, 0.05)
    ckpt = tmp_path / "victim" / "checkpoints" / "last.pt"
    log = tmp_path / "victim" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the run is past a few checkpoints
        if ckpt.exists() and log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    victim.send_signal(signum)
    assert victim.wait() != 0
    assert not (tmp_path / "victim" / "final").exists(), "the run ended before it was killed"
    killed_at = read_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 36
    assert _run(script, tmp_path / "victim", True, 0).wait() == 0
    assert ref.wait() == 0
    a = genlab.load(tmp_path / "ref" / "final").state_dict()
    b = genlab.load(tmp_path / "victim" / "final").state_dict()
    assert a.keys() == b.keys() and any(k.startswith("generator_ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k != "time"}  # noqa: E731
                       for l in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(tmp_path / "ref") == strip(tmp_path / "victim")
    assert any(r["split"] == "val" for r in strip(tmp_path / "ref"))


def test_resume_with_other_settings_is_refused(tmp_path, digits_small):
    GAN(**TINY).fit(digits_small, {**FAST, "max_steps": 2}, run_dir=tmp_path)
    with pytest.raises(ValueError, match="another model configuration"):
        GAN(**TINY, loss="hinge").fit(digits_small, {**FAST, "max_steps": 2}, run_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="seed=9.*cannot change on resume"):
        GAN(**TINY).fit(digits_small, {**FAST, "max_steps": 2, "seed": 9}, run_dir=tmp_path, resume=True)
    # more steps may be added on resume
    GAN(**TINY).fit(digits_small, {**FAST, "max_steps": 3}, run_dir=tmp_path, resume=True)
    assert read_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 3


def test_a_callback_stop_checkpoints_its_step(tmp_path, digits_small):
    from genlab.models.gan import GAN
    from genlab.train.checkpoint import load_checkpoint

    class StopAt:
        def on_step_end(self, trainer, logs):
            trainer.should_stop = trainer.step >= 3

    GAN(arch="mlp", hidden=(16,), latent_dim=4).fit(
        digits_small, {"epochs": 5, "batch_size": 32, "checkpoint_every": 100, "progress": False},
        run_dir=tmp_path, callbacks=[StopAt()])
    assert load_checkpoint(tmp_path / "checkpoints")["step"] == 3
