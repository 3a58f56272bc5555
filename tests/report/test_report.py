"""Figures and the HTML run report, on tiny runs trained in a temporary folder."""
from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.report import image_grid, plot_curves, plot_reconstructions, save_grid, write_report
from genlab.report import html as report_html
from genlab.report.figures import plot_table_samples
from genlab.runs import Run
from genlab.workflow import train_run

TINY = {"epochs": 1, "batch_size": 256, "progress": False}
SMALL_VAE = {"latent_dim": 4, "hidden": [32, 16]}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("runs") / "vae-digits"
    return train_run("vae", "digits", out=out, train=TINY, model_config=SMALL_VAE)


def _png_ok(path) -> Image.Image:
    img = Image.open(path)
    img.load()
    assert img.format == "PNG"
    return img


def _embedded_images(page: str) -> list[Image.Image]:
    import io

    found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return [Image.open(io.BytesIO(base64.b64decode(s))) for s in found]


# ----------------------------------------------------------------------------- image grids
def test_image_grid_greyscale_size_and_upscaling():
    img = image_grid(torch.rand(5, 1, 8, 8), nrow=3)
    assert img.mode == "L"
    # 8x8 digits are upscaled x6 to 48 px tiles; 1 px padding between and around tiles
    assert img.size == (3 * 48 + 4, 2 * 48 + 3)


def test_image_grid_rgb_clips_values():
    x = torch.full((4, 3, 20, 30), 2.0)
    x[0] = -1.0
    img = image_grid(x, scale=2, pad=0)
    assert img.mode == "RGB" and img.size == (2 * 60, 2 * 40)
    a = np.asarray(img)
    assert a[:40, :60].max() == 0 and a[40:, 60:].min() == 255


def test_image_grid_accepts_numpy_and_default_nrow():
    img = image_grid(np.zeros((9, 1, 28, 28), np.float32), pad=2)
    assert img.size == (3 * 56 + 4 * 2, 3 * 56 + 4 * 2)


@pytest.mark.parametrize("shape", [(8, 8), (4, 8, 8), (2, 2, 8, 8), (0, 1, 8, 8)])
def test_image_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="image_grid"):
        image_grid(torch.rand(*shape))


def test_image_grid_rejects_bad_options():
    with pytest.raises(ValueError, match="nrow"):
        image_grid(torch.rand(2, 1, 8, 8), nrow=0)
    with pytest.raises(ValueError, match="scale"):
        image_grid(torch.rand(2, 1, 8, 8), scale=0)


def test_save_grid_and_reconstructions(tmp_path):
    p = save_grid(torch.rand(6, 1, 8, 8), tmp_path / "sub" / "g.png", nrow=6)
    assert _png_ok(p).size == (6 * 48 + 7, 48 + 2)
    x = torch.rand(12, 3, 16, 16)
    p = plot_reconstructions(x, x.flip(0), tmp_path / "rec.png", n=5)
    assert _png_ok(p).size == (5 * 48 + 6, 2 * 48 + 3)
    with pytest.raises(ValueError, match="shape"):
        plot_reconstructions(x, x[:, :1], tmp_path / "bad.png")


# ----------------------------------------------------------------------------- curves, tables
def test_plot_curves_on_real_rows(vae_run, tmp_path):
    rows = vae_run.metrics()
    assert any(r["split"] == "train" for r in rows) and any(r["split"] == "val" for r in rows)
    assert _png_ok(plot_curves(rows, tmp_path / "c.png")).size[0] > 300


def test_plot_curves_empty_and_odd_rows(tmp_path):
    assert _png_ok(plot_curves([], tmp_path / "empty.png"))
    rows = [
        {"split": "train", "step": s, "epoch": 0, "lr": 1e-3 / s, "loss": 10.0 / s, "mse": float("nan"),
         "time": 0.1} for s in range(1, 6)
    ] + [
        {"split": "val", "step": 5, "epoch": 0, "val_loss": 2.5},
        {"split": "event", "step": 5, "epoch": 0, "event": "early_stop", "best_step": 5, "best_val_loss": 2.5},
        {"split": "event", "step": 6, "epoch": 0, "event": "diverged", "value": "nan"},
    ]
    assert _png_ok(plot_curves(rows, tmp_path / "odd.png"))


def test_plot_table_samples(tmp_path):
    real, fake = torch.randn(200, 10), torch.randn(150, 10) * 2
    p = plot_table_samples(real, fake, [f"col{i}" for i in range(10)], tmp_path / "t.png")
    assert _png_ok(p)
    with pytest.raises(ValueError, match="same D"):
        plot_table_samples(real, fake[:, :3], None, tmp_path / "bad.png")


# ----------------------------------------------------------------------------- the report
def test_report_of_a_finished_vae_run(vae_run):
    vae_run.update(command=["genlab", "train", "--note", "<script>alert(1)</script>"])
    path = write_report(vae_run, n_samples=16)
    assert path == vae_run.path / "report.html"
    page = path.read_text()
    assert vae_run.name in page and "digits" in page and "finished" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'src="data:image/png;base64,' in page
    imgs = _embedded_images(page)
    assert len(imgs) == 4 and all(i.format == "PNG" for i in imgs)
    for name in ("samples.png", "reconstructions.png", "interpolation.png", "curves.png"):
        assert (vae_run.path / "figures" / name).is_file()
    metrics = vae_run.eval["metrics"]
    for k, v in metrics.items():
        assert k in page
        if isinstance(v, float):
            assert report_html._fmt(v) in page
    assert report_html._fmt(metrics["test_loss"]) == f"{metrics['test_loss']:.5g}"
    assert "nll_note" in page  # digits in [0, 1] are not binary: the Bernoulli NLL note shows


def test_report_accepts_a_path_and_checks_arguments(vae_run, tmp_path):
    assert write_report(str(vae_run.path), n_samples=4).is_file()
    with pytest.raises(ValueError, match="n_samples"):
        write_report(vae_run, n_samples=0)
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nowhere")


def test_conditional_vae_gets_one_row_per_class(tmp_path):
    run = train_run("vae", "digits", out=tmp_path / "cvae", train=TINY,
                    model_config={**SMALL_VAE, "num_classes": -1}, report=False)
    k = run.model().config.num_classes
    assert k == 10
    write_report(run, n_samples=30)
    grid = _png_ok(run.figure("samples.png"))
    pad, tile = report_html.GRID_PAD, 48
    assert grid.size[1] == k * tile + (k + 1) * pad
    assert grid.size[0] == 3 * tile + 4 * pad  # ceil(30 / 10) samples per class
    assert "one row per class" in (run.path / "report.html").read_text()


def test_run_without_a_model_still_gets_a_report(vae_run, tmp_path):
    dst = tmp_path / "unfinished"
    shutil.copytree(vae_run.path, dst)
    shutil.rmtree(dst / "model")
    shutil.rmtree(dst / "figures")
    (dst / "eval.json").unlink()
    run = Run(dst)
    run.update(status="running")
    page = write_report(run).read_text()
    assert "No trained model yet" in page and "running" in page
    assert len(_embedded_images(page)) == 1  # the curves only
    assert sorted(p.name for p in (dst / "figures").iterdir()) == ["curves.png"]


def test_run_with_no_metrics_yet(tmp_path):
    dst = tmp_path / "fresh"
    dst.mkdir()
    (dst / "run.json").write_text(json.dumps({"name": "fresh", "model_type": "vae", "data": "digits",
                                              "status": "running"}))
    page = write_report(dst).read_text()
    assert "fresh" in page and "No eval.json yet" in page


def test_contract_only_model_skips_what_it_cannot_do(vae_run, tmp_path, monkeypatch):
    from genlab.capabilities import Tags

    class Bare:  # only the contract: sample + its tags
        tags = Tags(modality="image", sample_shape=(1, 8, 8), log_prob_kind="exact")

        def sample(self, n, *, generator=None):
            return torch.rand(n, 1, 8, 8, generator=generator)

    monkeypatch.setattr(report_html, "_load_model", lambda run: (Bare(), None))
    dst = tmp_path / "bare"
    shutil.copytree(vae_run.path, dst)
    shutil.rmtree(dst / "figures")
    page = write_report(dst, n_samples=9).read_text()
    assert "Samples" in page and "Reconstructions" not in page and "interpolation" not in page.lower()
    assert len(_embedded_images(page)) == 2


def test_autoencoder_and_table_runs(tmp_path):
    run = train_run("ae", "digits", out=tmp_path / "ae", train=TINY, model_config={"latent_dim": 4})
    page = (run.path / "report.html").read_text()
    assert "Reconstructions" in page and "Latent interpolation" not in page
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(120, 3))
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,c\n" + "".join(f"{r[0]},{r[1]},{r[2]}\n" for r in rows))
    run = train_run("vae", str(csv), out=tmp_path / "tab", train=TINY, model_config=SMALL_VAE)
    page = (run.path / "report.html").read_text()
    assert (run.path / "figures" / "table_samples.png").is_file()
    assert "Real vs generated" in page and "Samples</h2>" not in page


def test_sequence_runs_show_text_samples(tmp_path):
    from genlab.workflow import train_run

    corpus = tmp_path / "c.txt"
    corpus.write_text("to be or not to be, that is the question.\n" * 60)
    run = train_run("lstm", str(corpus), out=tmp_path / "lm", train={"epochs": 1, "progress": False},
                    model_config={"hidden": 16, "layers": 1}, data_options={"block_size": 32})
    html = (run.path / "report.html").read_text()
    assert '<pre class="sample">' in html and "Real vs generated columns" not in html


def test_music_runs_show_compositions(tmp_path):
    import torch

    import genlab
    from genlab.data.dataset import Dataset
    from genlab.pipelines.music import VOCAB
    from genlab.capabilities import REPORT_SECTIONS
    from genlab.report.html import ReportContext, _Figures
    from genlab.runs import Run

    x = torch.randint(3, len(VOCAB), (40, 17), generator=torch.Generator().manual_seed(0))
    ds = Dataset(x, kind="sequence", meta={"tokenizer": {"tokenizer": "word", "vocab": list(VOCAB)}})
    model = genlab.models.LSTM(hidden=8, layers=1).fit(ds, {"epochs": 1, "progress": False})
    (tmp_path / "run.json").write_text("{}")
    assert model.tags.modality == "music"
    assert [e.name for e in REPORT_SECTIONS.applicable(model.tags)] == ["compositions"]
    figs = _Figures()
    REPORT_SECTIONS.get("compositions")(ReportContext(Run(tmp_path), model, model.tags, None, 2, 0, figs, []), n=2)
    html = "".join(figs.parts)
    assert html.count("<audio controls") == 2 and "piece_1.mid" in html
    assert (tmp_path / "figures" / "music" / "piece_0.wav").is_file()
