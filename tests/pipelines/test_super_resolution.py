"""Super-resolution: SSIM against references, the SRGAN beating bicubic after a short
training, the pipeline, and `genlab upscale`."""
import math

import numpy as np
import pytest
import torch

import genlab
from genlab.models.gan import SRGAN
from genlab.pipelines.super_resolution import SuperResolution, gaussian_window, ssim

SR_TINY = {"factor": 2, "channels": 16, "n_blocks": 1, "d_channels": (8,)}


@pytest.fixture(scope="module")
def trained_sr(digits_splits):
    torch.set_num_threads(1)
    return SRGAN(**SR_TINY).fit(digits_splits["train"], {"max_steps": 150, "batch_size": 64, "progress": False,
                                                          "threads": 1, "epochs": 100})  # lr_g/lr_d: SRGAN defaults


# ----------------------------------------------------------------------------- SSIM
def test_ssim_of_constant_images_is_closed_form():
    a, b = 0.3, 0.7
    x, y = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    c1 = 0.01 ** 2  # variances are zero: only the luminance term remains
    assert float(ssim(x, y)) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)
    assert float(ssim(x, x)) == pytest.approx(1.0)


def test_ssim_equals_a_direct_window_by_window_computation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 14, 13, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    w = gaussian_window(11, 1.5).numpy()
    assert w.sum() == pytest.approx(1.0)
    xs, ys = x.double().numpy(), y.double().numpy()
    want = []
    for b in range(2):
        vals = []
        for i in range(14 - 10):
            for j in range(13 - 10):
                px, py = xs[b, 0, i:i + 11, j:j + 11], ys[b, 0, i:i + 11, j:j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                c1, c2 = 0.01 ** 2, 0.03 ** 2
                vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
        want.append(np.mean(vals))
    assert ssim(x, y).numpy() == pytest.approx(np.array(want), rel=1e-9)


def test_ssim_against_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 28, 28, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    want = metrics.structural_similarity(x[0, 0].double().numpy(), y[0, 0].double().numpy(), data_range=1.0,
                                         gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert float(ssim(x, y)) == pytest.approx(want, rel=1e-6)


def test_ssim_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))


# ----------------------------------------------------------------------------- the model
def test_untrained_srgan_is_bicubic(digits_small):
    m = SRGAN(**SR_TINY, data_shape=(1, 8, 8))
    lr = torch.nn.functional.avg_pool2d(digits_small.x[:4], 2)
    bic = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.allclose(m.generator(lr), bic)


def test_srgan_beats_bicubic_after_short_training(trained_sr, digits_splits):
    pipe = SuperResolution(trained_sr)
    res = pipe.evaluate(digits_splits["test"])
    assert set(res) >= {"psnr", "ssim", "psnr_bicubic", "ssim_bicubic"} and res["n"] == len(digits_splits["test"])
    assert res["psnr"] > res["psnr_bicubic"] + 0.5
    assert res["ssim"] > res["ssim_bicubic"]
    assert all(math.isfinite(v) for v in res.values())


def test_pipeline_shapes_sample_and_errors(trained_sr, digits_small):
    pipe = SuperResolution(trained_sr)
    assert pipe(torch.rand(3, 1, 4, 4)).shape == (3, 1, 8, 8)
    assert pipe(torch.rand(1, 5, 6)).shape == (1, 1, 10, 12)  # any size: fully convolutional
    assert pipe.side_by_side(torch.rand(2, 1, 4, 4)).shape == (6, 1, 8, 8)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(trained_sr.sample(5, generator=g()), trained_sr.sample(5, generator=g()))
    lr = torch.rand(2, 1, 4, 4)
    assert torch.equal(trained_sr.sample(2, low_res=lr), pipe(lr))
    with pytest.raises(ValueError, match="low_res must be images"):
        pipe(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="super-resolution model"):
        SuperResolution(genlab.models.VAE(hidden=(8,), latent_dim=2).fit(digits_small, {"epochs": 1, "progress": False}))
    with pytest.raises(ValueError, match="not divisible"):
        SRGAN(factor=3).fit(digits_small, {"max_steps": 1, "progress": False})
    assert genlab.PIPELINES.get("super-resolution") is SuperResolution


def test_from_run_and_cli_upscale(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from genlab import cli
    from genlab.workflow import train_run

    run = train_run("srgan", "digits", out=tmp_path / "run", model_config=dict(SR_TINY),
                    train={"max_steps": 3, "batch_size": 32, "progress": False}, report=False)
    pipe = SuperResolution.from_run(run.path)
    assert pipe.factor == 2
    Image.fromarray((np.random.default_rng(0).random((6, 5, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    rc = cli.main(["upscale", str(run.path), str(tmp_path / "a.png"), "-o", str(tmp_path / "out")])
    assert rc == 0
    with Image.open(tmp_path / "out" / "a_x2.png") as im:
        assert im.size == (10, 12) and im.mode == "L"  # RGB input converted to the model's 1 channel
    with Image.open(tmp_path / "out" / "a_compare.png") as im:  # three tiles, each enlarged
        assert im.size[1] >= 256 and im.size[0] >= 3 * 256
    # a missing image is refused before anything is written: the default ./upscaled is not
    # created (this test used to leave ./upscaled/ in the folder pytest ran from)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["upscale", str(run.path), str(tmp_path / "missing.png")]) == 2
    assert "no image" in capsys.readouterr().err
    assert not (tmp_path / "upscaled").exists()
