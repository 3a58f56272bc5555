"""The diffusion family: guidance that helps with every sampler (clipped x0, noise
recomputed), the variational bound, the options' errors, trajectories and the CLI."""
import math

import pytest
import torch

from genlab import cli
from genlab.models import Diffusion
from genlab.models.diffusion.model import detect_levels, discretized_log_likelihood

SAMPLER_STEPS = {"ddim": 20, "dpm++": 10, "heun": 8, "ddpm": 50, "euler": 10}


@pytest.fixture(scope="module")
def cond_model(digits_splits):
    """A class-conditional model trained for 300 steps (~10 s): about 0.95 of its samples
    are judged the class asked for."""
    return Diffusion(num_classes=-1, channels=16, heads=2, prediction="v").fit(
        digits_splits["train"], {"max_steps": 300, "epochs": 1000, "batch_size": 64, "lr": 2e-3,
                                 "progress": False, "threads": 1})


@pytest.fixture(scope="module")
def judge():
    from genlab.metrics.judges import judge_for

    return judge_for("digits")


@pytest.mark.parametrize("sampler", sorted(SAMPLER_STEPS))
def test_guided_class_accuracy_is_never_below_unguided(cond_model, judge, sampler):
    y = torch.arange(200) % 10
    acc = {}
    for w in (0, 1, 3):
        x = cond_model.sample(200, y=y, sampler=sampler, steps=SAMPLER_STEPS[sampler], guidance=w,
                              generator=torch.Generator().manual_seed(0))
        assert x.min() >= 0 and x.max() <= 1
        acc[w] = float((judge.extract(x, progress=False)["probs"].argmax(1) == y).double().mean())
    assert acc[0] < 0.3, acc  # w = 0 is the unconditional model: about chance
    assert acc[1] > 0.5 and acc[3] >= acc[1], acc


def test_discretised_decoder_is_a_distribution_over_the_levels():
    levels = 17
    values = torch.linspace(-1, 1, levels)  # every level of one pixel
    for mean, std in [(0.0, 0.1), (0.93, 0.01), (-1.4, 0.3), (0.2, 1e-4)]:
        lp = discretized_log_likelihood(values[:, None], torch.full((levels, 1), mean), std, levels)
        assert math.isclose(float(lp.exp().sum()), 1.0, abs_tol=1e-9), (mean, std)


def test_levels_are_detected_from_the_data(digits_splits):
    assert detect_levels(digits_splits["train"].x) == 17  # the 0..16 digits
    assert detect_levels(torch.randint(0, 256, (10, 3)).float() / 255) == 256
    assert detect_levels(torch.randint(0, 2, (10, 3)).float()) == 256  # binary lies on the 8-bit grid
    assert detect_levels(torch.rand(10, 3)) == 0


def test_log_prob_is_a_bound_on_a_probability_and_prefers_real_digits(cond_model, digits_splits):
    test = digits_splits["test"].x[:16]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    full = cond_model.log_prob(test, timesteps=0, generator=g())
    assert full.dtype == torch.float64 and full.shape == (16,) and (full < 0).all()  # log of a probability
    est = torch.stack([cond_model.log_prob(test, timesteps=20, generator=torch.Generator().manual_seed(s))
                       for s in range(4)]).mean(0)
    assert abs(float(est.mean() - full.mean())) < 0.05 * abs(float(full.mean()))  # unbiased estimate
    noise = torch.randint(0, 17, test.shape, generator=g()).float() / 16
    assert float(cond_model.log_prob(noise, generator=g()).mean()) < float(full.mean()) - 50
    with_y = cond_model.log_prob(test, y=digits_splits["test"].y[:16], generator=g())
    assert float(with_y.mean()) > float(cond_model.log_prob(test, generator=g()).mean())  # labels help
    with pytest.raises(ValueError, match=r"timesteps must be in 0\.\.999"):
        cond_model.log_prob(test, timesteps=5000)
    with pytest.raises(ValueError, match=r"images in \[0, 1\]"):
        cond_model.log_prob(test * 3)


def test_sampling_options_are_checked(cond_model, digits_small):
    m = cond_model
    with pytest.raises(ValueError, match="unknown sampler 'hune'; did you mean 'heun'"):
        m.sample(2, sampler="hune")
    assert torch.equal(m.sample(2, sampler="DPM-Solver++", steps=3, generator=torch.Generator().manual_seed(0)),
                       m.sample(2, sampler="dpm++", steps=3, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="steps must be an integer in 1..1000"):
        m.sample(2, steps=0)
    with pytest.raises(ValueError, match="guidance must be a finite number >= 0"):
        m.sample(2, guidance=-1)
    with pytest.raises(ValueError, match="eta is DDIM's option"):
        m.sample(2, sampler="dpm++", eta=0.5)
    with pytest.raises(ValueError, match="heun walks Karras"):
        m.sample(2, sampler="heun", spacing="trailing")
    with pytest.raises(ValueError, match=r"y must hold 2 labels in 0\.\.9"):
        m.sample(2, y=[3, 12])
    plain = Diffusion(channels=8, heads=2, timesteps=20).fit(digits_small, {"max_steps": 1, "progress": False})
    with pytest.raises(ValueError, match="guidance needs a class- or text-conditional model"):
        plain.sample(2, guidance=3)
    with pytest.raises(ValueError, match="unconditional: it takes no y"):
        plain.sample(2, y=1)


def test_trajectory_ends_at_the_sample(cond_model):
    kw = dict(y=4, sampler="ddim", steps=10)
    frames = cond_model.sample_trajectory(3, frames=6, generator=torch.Generator().manual_seed(2), **kw)
    assert frames.shape == (6, 3, 1, 8, 8)
    same = cond_model.sample(3, generator=torch.Generator().manual_seed(2), **kw)
    assert torch.equal(frames[-1], same)
    assert frames[0].std() > frames[-1].std() * 0.5 and not torch.equal(frames[0], frames[-1])


def test_ema_weights_are_what_samples_by_default(cond_model):
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    ema = cond_model.sample(4, steps=5, generator=g())
    raw = cond_model.sample(4, steps=5, generator=g(), ema=False)
    assert not torch.equal(ema, raw)
    assert torch.equal(ema, cond_model.sample(4, steps=5, generator=g(), ema=True))


def test_cli_trains_and_samples_with_sampler_options(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "diffusion", "--data", "digits", "--out", str(run), "--limit", "128",
                     "--max-steps", "3", "--num_classes=-1", "--channels=8", "--heads=2", "--timesteps=50",
                     "--noise_schedule=linear", "--nll_timesteps=3"]) == 0
    out = tmp_path / "sevens.png"
    assert cli.main(["sample", str(run), "-n", "8", "--sampler", "dpm++", "--steps", "5", "--guidance", "3",
                     "--y", "7", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
    assert cli.main(["sample", str(run), "-n", "2", "--sampler=nope", "-o", str(tmp_path / "x.npy")]) == 2
    assert "unknown sampler 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- editing
def test_img2img_moves_images_more_with_strength_and_keeps_them_at_zero(cond_model, digits_splits, judge):
    from genlab.pipelines import DiffusionEditor

    ed = DiffusionEditor(cond_model)
    x = digits_splits["test"].x[:40]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(ed.img2img(x, strength=0.0, generator=g()), x)
    scores = ed.evaluate(x, strengths=(0.2, 0.5, 0.9), y=digits_splits["test"].y[:40])
    changes = [scores[f"img2img_change@{s:g}"] for s in (0.2, 0.5, 0.9)]
    assert changes[0] < changes[1] < changes[2], changes
    # strength 0.9 toward class 0 turns most digits into zeros; 0.1 keeps their own class
    y0 = torch.zeros(40, dtype=torch.long)
    far = ed.img2img(x, strength=0.9, y=y0, guidance=3, generator=g())
    near = ed.img2img(x, strength=0.1, y=y0, generator=g())
    pred = lambda z: judge.extract(z, progress=False)["probs"].argmax(1)  # noqa: E731
    assert float((pred(far) == 0).double().mean()) > 0.7
    assert float((pred(near) == digits_splits["test"].y[:40]).double().mean()) > 0.7
    with pytest.raises(ValueError, match="img2img walks training steps"):
        ed.img2img(x, sampler="heun")
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        ed.img2img(x, strength=1.5)


def test_inpainting_keeps_the_known_pixels_and_fills_the_hole_plausibly(cond_model, digits_splits, judge):
    from genlab.pipelines import DiffusionEditor
    from genlab.pipelines.diffusion_editing import repaint_schedule

    assert repaint_schedule(4, 2, 2) == [4, 3, 2, 1, 0, 1, 2, 1, 0]  # down, one jump back from 0, down
    assert repaint_schedule(5, 2, 1) == [5, 4, 3, 2, 1, 0]  # no resampling: plain ancestral
    ed = DiffusionEditor(cond_model)
    x, y = digits_splits["test"].x[:40], digits_splits["test"].y[:40]
    hole = torch.zeros(1, 8, 8, dtype=torch.bool)
    hole[:, :, 4:] = True  # regenerate the right half
    out = ed.inpaint(x, hole, y=y, steps=25, jump=5, resample=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, :, :4], x[:, :, :, :4])  # kept exactly
    acc = float((judge.extract(out, progress=False)["probs"].argmax(1) == y).double().mean())
    assert acc > 0.7, acc
    blank = x.clone()
    blank[:, :, :, 4:] = 0
    acc_blank = float((judge.extract(blank, progress=False)["probs"].argmax(1) == y).double().mean())
    assert acc > acc_blank  # the filled half carries the digit
    scores = ed.evaluate(x[:8], strengths=(), mask=hole)
    assert scores["inpaint_kept_max_change"] == 0.0 and scores["inpaint_hole_psnr_db"] > 5
    with pytest.raises(ValueError, match="does not fit"):
        ed.inpaint(x, torch.zeros(3, 3, dtype=torch.bool))


def test_cli_img2img_inpaint_and_trajectory_gif(tmp_path, capsys):
    from PIL import Image

    run = tmp_path / "run"
    assert cli.main(["train", "diffusion", "--data", "digits", "--out", str(run), "--limit", "128",
                     "--max-steps", "3", "--num_classes=-1", "--channels=8", "--heads=2", "--timesteps=50",
                     "--nll_timesteps=3"]) == 0
    src = tmp_path / "in.png"
    Image.fromarray((torch.rand(32, 40) * 255).byte().numpy()).save(src)  # any size: resized to 8x8
    out = tmp_path / "edit.png"
    assert cli.main(["img2img", str(run), str(src), "-o", str(out), "-n", "3", "--strength", "0.5",
                     "--y", "2", "--steps", "10"]) == 0
    with Image.open(out) as im:
        assert im.size[0] > 4 * im.size[1] - 20  # a row of input + 3 results
    assert cli.main(["img2img", str(run), str(src), "-o", str(out), "-n", "1"]) == 2  # exists: --overwrite
    assert "overwrite" in capsys.readouterr().err
    filled = tmp_path / "fill.png"
    assert cli.main(["inpaint", str(run), str(src), "-o", str(filled), "-n", "2", "--box", "0.5,0,1,1",
                     "--steps", "10", "--jump", "2", "--resample", "2"]) == 0
    with Image.open(filled) as im:
        assert im.size[0] > 3 * im.size[1]  # input, hole, 2 fillings
    assert cli.main(["inpaint", str(run), str(src), "-o", str(tmp_path / "b.png"), "--box", "0.5,0.5,0.2,1"]) == 2
    assert "--box needs" in capsys.readouterr().err
    gif = tmp_path / "traj.gif"
    assert cli.main(["sample", str(run), "-n", "4", "--steps", "6", "--y", "1", "-o", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 7  # the noise and 6 steps
    vae = tmp_path / "vae"
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(vae), "--limit", "64", "--max-steps", "1",
                     "--hidden=16", "--latent_dim=2"]) == 0
    assert cli.main(["img2img", str(vae), str(src), "-o", str(tmp_path / "v.png")]) == 2
    assert "needs a diffusion run" in capsys.readouterr().err
