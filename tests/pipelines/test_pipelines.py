"""The three autoencoder applications: compression, denoising, anomaly detection."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genlab
from genlab.data.datasets import load_splits
from genlab.errors import NotFittedError
from genlab.metrics.functional import roc_auc
from genlab.models import VAE, Autoencoder
from genlab.pipelines import (AnomalyDetector, Compression, Denoiser, add_noise,
                              holdout_class_auc)

# 10 short epochs: 3 epochs of the default batch size leave the digits model near the mean
TRAIN = {"epochs": 10, "batch_size": 32, "lr": 3e-3, "progress": False}


@pytest.fixture(scope="module")
def splits():
    return load_splits("digits")


@pytest.fixture(scope="module")
def ae(splits):
    return Autoencoder(latent_dim=16).fit(splits["train"], TRAIN, val=splits["val"])


@pytest.fixture(scope="module")
def dae(splits):
    return Autoencoder(latent_dim=16, denoise_std=0.3).fit(splits["train"], TRAIN, val=splits["val"])


# ----------------------------------------------------------------------------- compression
def test_registered():
    assert genlab.PIPELINES.get("compression") is Compression
    assert genlab.PIPELINES.get("denoising") is Denoiser
    assert genlab.PIPELINES.get("anomaly-detection") is AnomalyDetector


def test_compression_bits_math(ae, splits):
    comp = Compression(ae, bits=6).fit_range(splits["train"].x)
    r = comp.evaluate(splits["test"].x)
    assert r["bits_per_image"] == 16 * 6
    assert r["raw_bits_per_image"] == 8 * 64
    assert r["compression_ratio"] == pytest.approx(512 / 96)
    assert all(isinstance(v, float) for v in r.values())
    out = comp(splits["test"].x[:5])
    assert out["codes"].shape == (5, 16) and out["codes"].dtype == torch.uint8
    assert int(out["codes"].max()) <= 63
    assert out["x_hat"].shape == (5, 1, 8, 8)


@pytest.mark.parametrize("bits,fitted", [(8, True), (3, False), (12, True)])
def test_compress_round_trip(ae, splits, bits, fitted):
    comp = Compression(ae, bits=bits)
    if fitted:
        comp.fit_range(splits["train"].x, quantile=0.01)
    x = splits["test"].x[:37]
    blob = comp.compress(x)
    assert isinstance(blob, bytes)
    assert len(blob) == 12 + 8 * 16 + math.ceil(37 * 16 * bits / 8)
    assert torch.equal(comp.decompress(blob), comp(x)["x_hat"])


def test_psnr_decreases_with_bits(ae, splits):
    psnr = {b: Compression(ae, bits=b).fit_range(splits["train"].x).evaluate(splits["test"].x)
            for b in (8, 2)}
    assert psnr[8]["psnr_db"] > psnr[2]["psnr_db"]
    assert psnr[8]["psnr_db"] == pytest.approx(psnr[8]["psnr_unquantized_db"], abs=0.2)
    assert psnr[8]["psnr_db"] > 15  # the model learned something beyond the mean image


def test_compression_with_vae(splits):
    vae = VAE(latent_dim=8).fit(splits["train"], {"epochs": 2, "progress": False})
    comp = Compression(vae, bits=4).fit_range(splits["train"].x)
    x = splits["test"].x[:10]
    assert torch.equal(comp.decompress(comp.compress(x)), comp(x)["x_hat"])
    assert comp.evaluate(x)["bits_per_image"] == 32


def test_compression_errors(ae, splits):
    with pytest.raises(ValueError, match="bits"):
        Compression(ae, bits=0)
    comp = Compression(ae, bits=4)
    with pytest.raises(ValueError, match=r"shape \(B, 1, 8, 8\)"):
        comp(splits["test"].x.flatten(1))
    with pytest.raises(ValueError, match="one example"):
        comp(splits["test"].x[0])
    with pytest.raises(ValueError, match="magic"):
        comp.decompress(b"not a stream")
    blob = comp.compress(splits["test"].x[:4])
    with pytest.raises(ValueError, match="truncated"):
        comp.decompress(blob[:-1])
    with pytest.raises(ValueError, match="bits=4"):
        Compression(ae, bits=5).decompress(blob)
    with pytest.raises(ValueError, match="encode/decode"):
        Compression(object())


# ----------------------------------------------------------------------------- denoising
def test_denoiser_gain(dae, splits):
    den = Denoiser(dae)
    r = den.evaluate(splits["test"].x, noise_std=0.3, generator=torch.Generator().manual_seed(1))
    assert set(r) == {"psnr_noisy_db", "psnr_denoised_db", "psnr_gain_db"}
    assert r["psnr_gain_db"] > 0
    assert r["psnr_gain_db"] == pytest.approx(r["psnr_denoised_db"] - r["psnr_noisy_db"])
    many = den.evaluate(splits["test"].x, noise_std=[0.1, 0.5], noise="saltpepper")
    assert set(many) == {f"{k}@{s}" for k in r for s in ("0.1", "0.5")}
    assert den(splits["test"].x[:3]).shape == (3, 1, 8, 8)


def test_add_noise():
    x = torch.full((4, 1, 8, 8), 0.5)
    a = add_noise(x, 0.3, torch.Generator().manual_seed(0))
    b = add_noise(x, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    sp = add_noise(x, 0.5, torch.Generator().manual_seed(0), kind="saltpepper")
    assert set(sp.unique().tolist()) <= {0.0, 0.5, 1.0}
    assert 0.3 < float((sp != 0.5).float().mean()) < 0.7
    with pytest.raises(ValueError, match="noise must be one of"):
        add_noise(x, 0.1, kind="speckle")
    with pytest.raises(ValueError, match="probability"):
        add_noise(x, 1.5, kind="saltpepper")


# ----------------------------------------------------------------------------- anomaly
def test_holdout_auc_better_than_chance():
    r = holdout_class_auc("digits", 0, model_config={"latent_dim": 16}, train=TRAIN)
    assert 0.5 < r["roc_auc"] <= 1 and math.isfinite(r["roc_auc"])
    assert r["n_test_anomalous"] > 0 and r["n_test_normal"] > r["n_test_anomalous"]
    with pytest.raises(ValueError, match="class labels"):
        holdout_class_auc("digits", 10, train=TRAIN)


def test_anomaly_detector(ae, splits):
    det = AnomalyDetector(ae)
    test = splits["test"]
    s = det.score(test.x)
    assert s.shape == (len(test),) and (s >= 0).all()
    with pytest.raises(NotFittedError, match="calibrate"):
        det(test.x)
    out = det(test.x, threshold=float(s.median()))
    assert out["flags"].sum() == (s > s.median()).sum()
    det.calibrate(splits["val"].x)
    assert float((det.score(splits["val"].x) > det.threshold).float().mean()) <= 0.02
    ones = test.y == 1
    r = det.evaluate(test.x[~ones], test.x[ones])
    assert {"roc_auc", "average_precision", "tpr", "fpr"} <= set(r)
    scores = torch.cat([det.score(test.x[~ones]), det.score(test.x[ones])])
    labels = torch.cat([torch.zeros(int((~ones).sum())), torch.ones(int(ones.sum()))])
    assert r["roc_auc"] == pytest.approx(roc_auc(scores, labels), abs=1e-9)
    with pytest.raises(ValueError, match="shape"):
        det.score(torch.zeros(3, 1, 28, 28))


def test_roc_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        scores = rng.integers(0, 6, size=200).astype(float)  # many ties
        labels = rng.integers(0, 2, size=200)
        assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert roc_auc(torch.tensor([1.0, 1.0]), torch.tensor([0, 1])) == 0.5
    assert roc_auc([0.1, 0.9, 0.8], [False, True, True]) == 1.0
    with pytest.raises(ValueError, match="one class"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels"):
        roc_auc([0.1, 0.2], [0, 1, 1])


# ----------------------------------------------------------------------------- runs
def test_from_run(tmp_path, splits):
    genlab.workflow.train_run("autoencoder", "digits", out=tmp_path / "r",
                              train={"epochs": 2, "progress": False}, report=False)
    comp = Compression.from_run(tmp_path / "r", bits=4)
    assert comp.bits == 4 and comp.evaluate(splits["test"].x)["bits_per_image"] == 4 * comp.latent_dim
    assert Denoiser.from_run(tmp_path / "r")(splits["test"].x[:2]).shape == (2, 1, 8, 8)
    det = AnomalyDetector.from_run(tmp_path / "r").calibrate(splits["val"].x)
    assert det(splits["test"].x)["flags"].dtype == torch.bool
    with pytest.raises(FileNotFoundError):
        Denoiser.from_run(tmp_path / "missing")


def test_untrained_model_rejected():
    with pytest.raises(NotFittedError):
        Denoiser(Autoencoder(latent_dim=4))
