"""Training and evaluating CNN judges on labelled image data (``genlab judge train``).

The judges themselves (the networks, their weights, ``load_judge``) are feature spaces the
metrics and the GAN's FID validation use, so they stay in ``genlab.metrics.judges``;
training one is orchestration (data loading, augmentation, a training loop), so it lives
here, above the layers it uses.

A judge trains through genlab's one ``Trainer`` (``JudgeClassifier`` wraps the CNN as a
model whose ``forward`` returns the cross-entropy loss and the accuracy, trained by the
default gradient step): AdamW with nanoGPT's weight-decay groups, linear warm-up and
cosine decay to 0, augmentation, per-epoch validation. Deterministic on CPU: weights are
initialised and dropout is drawn under ``torch.manual_seed(seed)`` (inside
``torch.random.fork_rng``, so the caller's global RNG is left as it was), the data order
of epoch ``e`` comes from a generator seeded by ``(seed, e)`` and augmentation from one
seeded by ``(seed, step)``. The same data, settings, seed and thread count give
bit-identical weights.
"""
from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import __version__
from ..base import Config
from ..models.torch_model import TorchGenerativeModel
from ..data.dataset import Dataset, as_dataset
from ..train import Callback, TrainConfig, Trainer
from ..metrics.judges.net import CNNJudge, default_architecture, save_judge, weights_fingerprint

# The recipes of the shipped judges (scripts/train_judges.py trains them).
SHIPPED_RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 60, "batch_size": 64, "lr": 3e-3, "augment": "shift:1"},
    "mnist-5k": {"epochs": 40, "batch_size": 64, "lr": 3e-3, "augment": "shift:2,rotate:10"},
    "fashion-mnist": {"epochs": 14, "batch_size": 128, "lr": 3e-3, "augment": "shift:2,flip"},
}


def _as_splits(data: Any, data_options: dict[str, Any] | None) -> tuple[str, dict[str, Dataset]]:
    """``(name, {"train", "val", "test"})`` from a name, a path, a dict or a Dataset."""
    from ..data.datasets import load_splits
    from ..registry import DATASETS

    options = dict(data_options or {})
    if isinstance(data, dict):
        missing = {"train", "val", "test"} - set(data)
        if missing:
            raise ValueError(f"a dict of splits needs train, val and test; missing "
                             f"{sorted(missing)}")
        splits, name = data, data["train"].name
    elif isinstance(data, (str, os.PathLike)):
        splits = load_splits(data, **options)
        text = os.fspath(data)
        name = DATASETS.canonical(text) if text in DATASETS else \
            (Path(text).resolve().name or "data")
    else:  # a Dataset, an image array or an (images, labels) pair: split 80/10/10, seed 0
        ds = as_dataset(data)
        if len(ds) < 10:
            raise ValueError(f"need at least 10 labelled images to split into train/val/test, "
                             f"got {len(ds)}")
        parts = ds.split([0.8, 0.1, 0.1], seed=0)
        splits, name = dict(zip(("train", "val", "test"), parts)), ds.name
    for key in ("train", "val", "test"):
        ds = splits[key]
        if not isinstance(ds, Dataset) or ds.kind != "image":
            raise ValueError(f"judges are trained on images; the {key} split of {name!r} is "
                             f"not an image Dataset")
        if ds.y is None:
            raise ValueError(f"judges are classifiers: {name!r} has no labels. Use an image "
                             "folder with one subfolder per class, or pass (images, labels)")
    return name, splits


def _num_classes(splits: dict[str, Dataset]) -> tuple[int, list[str]]:
    train = splits["train"]
    k = max(int(ds.y.max()) + 1 for ds in splits.values())
    classes = list(train.classes) if train.classes else [str(i) for i in range(k)]
    if len(classes) < k:
        raise ValueError(f"labels go up to {k - 1} but only {len(classes)} class names are known")
    if len(classes) < 2 or int(train.y.unique().numel()) < 2:
        raise ValueError(f"a judge needs at least 2 classes in its training data, got "
                         f"{int(train.y.unique().numel())}")
    return len(classes), classes


@dataclasses.dataclass(frozen=True)
class JudgeClassifierConfig(Config):
    """The trainable judge's config: only the image shape (the architecture is given to
    ``JudgeClassifier``)."""

    data_shape: tuple[int, ...] | None = None


class JudgeClassifier(TorchGenerativeModel):
    """A CNN judge as a model the ``Trainer`` trains with its default gradient step:
    ``forward(batch)`` returns the cross-entropy ``loss`` of the class logits and the
    accuracy ``acc``. The CNN is built (under the trainer's seed) at the first ``fit``.

    Args:
        architecture: a ``default_architecture`` dict.
        name: the judge's name; ``classes``: its class names.
    """

    model_type = "judge"
    config_class = JudgeClassifierConfig

    def __init__(self, architecture: dict[str, Any], *, name: str, classes: list[str]):
        super().__init__(JudgeClassifierConfig())
        self._spec = (architecture, name, classes)

    def build(self) -> None:
        arch, name, classes = self._spec
        self.judge = CNNJudge(arch, name=name, feature_space="pending", classes=classes)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, y = batch["x"], batch["y"]
        logits = one_image_safe(self.judge.net, x, training=self.training)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


def one_image_safe(net: Any, *args: Any, training: bool) -> Any:
    """``net(*args)``; a training batch of one image runs batch norm on its running
    statistics (it cannot take statistics of one image)."""
    if training and len(args[0]) < 2:
        norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for m in norms:
            m.eval()
        try:
            return net(*args)
        finally:
            for m in norms:
                m.train()
    return net(*args)


class _EpochHistory(Callback):
    """Per-epoch rows of a judge's training: example-weighted train loss and accuracy,
    validation accuracy, wall seconds; and the thread count the fit ran with."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.threads = torch.get_num_threads()
        self._reset()

    def _reset(self) -> None:
        self.loss = self.correct = self.seen = 0.0
        self.t0 = time.perf_counter()

    def on_fit_start(self, trainer: Any) -> None:
        self.threads = torch.get_num_threads()
        self._reset()

    def on_step_end(self, trainer: Any, logs: dict[str, float]) -> None:
        bs = trainer.config.batch_size
        rows = min(bs, len(trainer.train_data) - (trainer.batch_in_epoch - 1) * bs)
        self.loss += logs["loss"] * rows
        self.correct += logs["acc"] * rows
        self.seen += rows

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        seen = max(self.seen, 1)
        self.rows.append({"epoch": trainer.epoch + 1, "loss": round(self.loss / seen, 5),
                          "train_acc": round(self.correct / seen, 5),
                          "val_acc": round(row.get("val_acc", math.nan), 5),
                          "seconds": round(time.perf_counter() - self.t0, 2)})
        self._reset()


def fit_judge_model(model: TorchGenerativeModel, train: Dataset, val: Dataset | None, *, epochs: int,
                    batch_size: int, lr: float, weight_decay: float, seed: int, threads: int | None,
                    augment: str | None, progress: bool) -> tuple[list[dict[str, Any]], int, int]:
    """Train a judge-as-model (``forward`` returns ``loss`` and ``acc``) with the judges'
    recipe: AdamW, linear warm-up over the first 5 % of steps (at most 500), cosine decay
    to 0, validation every epoch, torch's global RNG left as it was.

    Returns:
        ``(per-epoch history, threads used, warm-up steps)``.
    """
    steps_per_epoch = math.ceil(len(train) / batch_size)
    warmup = min(max(1, epochs * steps_per_epoch // 20), 500)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="adamw", lr=lr,
                      weight_decay=weight_decay, schedule="cosine", warmup_steps=warmup,
                      min_lr_ratio=0.0, seed=seed, threads=threads, augment=augment,
                      val_fraction=0.0, progress=progress, tensorboard=False)
    record = _EpochHistory()
    with torch.random.fork_rng(devices=[]):  # the trainer seeds torch's RNG: leave the caller's as it was
        Trainer(cfg).fit(model, train, val=val, callbacks=[record])
    return record.rows, record.threads, warmup


def evaluate_judge(judge: CNNJudge, data: Dataset, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``judge`` on a labelled image Dataset."""
    if data.y is None:
        raise ValueError(f"{data.name!r} has no labels to compute accuracy against")
    return judge.accuracy(data.x, data.y, batch_size=batch_size)


def train_judge(data: Any, *, out: str | os.PathLike | None = None, name: str | None = None,
                epochs: int = 15, batch_size: int = 128, lr: float = 3e-3,
                weight_decay: float = 0.05, seed: int = 0, threads: int | None = None,
                augment: str | None = "shift:2", architecture: dict[str, Any] | None = None,
                data_options: dict[str, Any] | None = None, feature_space: str | None = None,
                command: str | None = None, progress: bool = True
                ) -> tuple[CNNJudge, dict[str, Any]]:
    """Train a CNN judge on labelled images and measure its test accuracy.

    Args:
        data: a dataset name (``"fashion-mnist"``), a path (an image folder with one
            subfolder per class; split 80/10/10 with seed 0), a labelled image
            ``Dataset`` or an ``(images (N, C, H, W), labels (N,))`` pair (split the same
            way), or a dict of ``train``/``val``/``test`` Datasets.
        out: folder to write ``judge.safetensors`` and ``judge.json`` into (optional).
        name: the judge's name (default: the dataset name or the folder's name).
        epochs: passes over the training split (>= 1).
        batch_size: images per step.
        lr: peak AdamW learning rate (linear warm-up, cosine decay to 0).
        weight_decay: AdamW weight decay on conv/linear weights.
        seed: initialisation, dropout, data order and augmentation seed.
        threads: torch CPU threads for the run (restored afterwards); ``None``: the
            trainer's choice (1 for a judge-sized model, see ``TrainConfig.threads``).
            Bit-identical results need the same thread count.
        augment: ``genlab.data.parse_augment`` spec, e.g. ``"shift:2,flip"``, or None.
        architecture: overrides of ``default_architecture`` fields.
        data_options: options for ``genlab.data.load_splits`` (``size``, ``channels``, ...).
        feature_space: the feature-space label (default ``"judge:<name>@<first 8 hex
            digits of the weights' SHA-256>"``, so two different judges never share one).
        command: the command line to record as the way to reproduce this judge.
        progress: show the trainer's progress (a bar on a terminal, a line every 10 s in a log).

    Returns:
        ``(judge, report)``: the judge in eval mode and its JSON record (sizes,
        per-epoch history, val and test accuracy, wall time, versions, command).

    Raises:
        ValueError: unlabelled or non-image data, fewer than 2 classes, bad settings.
    """
    for key, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    data_name, splits = _as_splits(data, data_options)
    name = name or data_name
    k, classes = _num_classes(splits)
    train = splits["train"]
    if len(train) < 2:
        raise ValueError(f"{data_name!r}: need at least 2 training images, got {len(train)}")
    arch = default_architecture(train.shape, k, **(architecture or {}))

    start = time.perf_counter()
    model = JudgeClassifier(arch, name=name, classes=classes)
    history, used_threads, warmup = fit_judge_model(
        model, train, splits["val"], epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        seed=seed, threads=threads, augment=augment, progress=progress)
    judge = model.judge
    judge.eval()
    judge.requires_grad_(False)
    test_acc = evaluate_judge(judge, splits["test"])
    wall = time.perf_counter() - start
    judge.feature_space = feature_space or f"judge:{name}@{weights_fingerprint(judge)[:8]}"
    if command is None:
        command = (f"genlab judge train --data {data_name} --epochs {epochs} --seed {seed}"
                   f" --augment {augment or 'none'}"
                   + (f" --threads {threads}" if threads else "")
                   + (f" --out {os.fspath(out)}" if out is not None else ""))
    judge.info = {
        "name": name, "feature_space": judge.feature_space,
        "test_accuracy": round(test_acc, 5),
        "val_accuracy": history[-1]["val_acc"],
        "training": {
            "data": str(data_name), "train_size": len(train), "val_size": len(splits["val"]),
            "test_size": len(splits["test"]), "epochs": epochs, "batch_size": batch_size,
            "optimizer": "AdamW", "lr": lr, "weight_decay": weight_decay,
            "schedule": f"linear warm-up {warmup} steps, cosine to 0", "augment": augment,
            "seed": seed, "threads": used_threads, "wall_time_s": round(wall, 1),
            "history": history,
        },
        "command": command, "genlab_version": __version__,
        "torch_version": torch.__version__, "python_version": platform.python_version(),
    }
    if out is not None:
        save_judge(judge, out)
    else:
        judge.info.update({"params": sum(p.numel() for p in judge.net.parameters()),
                           "architecture": arch})
    return judge, dict(judge.info)
