"""Training and evaluating CNN judges on labelled image data (``genlab judge train``).

The judges themselves (the networks, their weights, ``load_judge``) are feature spaces the
metrics and the GAN's FID validation use, so they stay in ``genlab.metrics.judges``;
training one is orchestration (data loading, augmentation, a training loop), so it lives
here, above the layers it uses.

The loop is small and deterministic on CPU: weights are initialised and dropout is drawn
under ``torch.manual_seed(seed)`` (inside ``torch.random.fork_rng``, so the caller's
global RNG is left as it was), the data order of epoch ``e`` comes from a generator
seeded by ``(seed, e)`` and augmentation from its own seeded generator. The same data,
settings, seed and thread count give bit-identical weights.
"""
from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import __version__
from ..data.dataset import Dataset, as_dataset
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


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


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
        threads: torch CPU threads for the run (restored afterwards); ``None`` keeps the
            current setting. Bit-identical results need the same thread count.
        augment: ``genlab.data.parse_augment`` spec, e.g. ``"shift:2,flip"``, or None.
        architecture: overrides of ``default_architecture`` fields.
        data_options: options for ``genlab.data.load_splits`` (``size``, ``channels``, ...).
        feature_space: the feature-space label (default ``"judge:<name>@<first 8 hex
            digits of the weights' SHA-256>"``, so two different judges never share one).
        command: the command line to record as the way to reproduce this judge.
        progress: show a progress bar over epochs.

    Returns:
        ``(judge, report)``: the judge in eval mode and its JSON record (sizes,
        per-epoch history, val and test accuracy, wall time, versions, command).

    Raises:
        ValueError: unlabelled or non-image data, fewer than 2 classes, bad settings.
    """
    from ..data.augment import parse_augment

    for key, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    aug = parse_augment(augment)
    data_name, splits = _as_splits(data, data_options)
    name = name or data_name
    k, classes = _num_classes(splits)
    train = splits["train"]
    if len(train) < 2:
        raise ValueError(f"{data_name!r}: need at least 2 training images, got {len(train)}")
    arch = default_architecture(train.shape, k, **(architecture or {}))

    old_threads = torch.get_num_threads()
    if threads is not None:
        from .._threads import set_threads

        set_threads(threads)  # refuses < 1 and more than the machine can run
    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            judge = CNNJudge(arch, name=name, feature_space="pending", classes=classes)
            net = judge.net
            decay = [p for p in net.parameters() if p.dim() > 1]
            rest = [p for p in net.parameters() if p.dim() <= 1]
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                     {"params": rest, "weight_decay": 0.0}], lr=lr)
            x, y = train.x, train.y
            n = len(x)
            steps_per_epoch = math.ceil(n / batch_size)
            total = epochs * steps_per_epoch
            warmup = min(max(1, total // 20), 500)
            aug_gen = torch.Generator().manual_seed(seed * 2 + 1)
            epoch_iter = range(epochs)
            if progress:
                from tqdm.auto import tqdm

                epoch_iter = tqdm(epoch_iter, desc=f"judge {name}", unit="epoch")
            step = 0
            for epoch in epoch_iter:
                net.train()
                order = torch.randperm(n, generator=torch.Generator().manual_seed(
                    seed * 1_000_003 + epoch))
                loss_sum, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
                for b in range(steps_per_epoch):
                    idx = order[b * batch_size:(b + 1) * batch_size]
                    if len(idx) < 2:  # BatchNorm needs 2+ images
                        step += 1
                        continue
                    xb, yb = x[idx], y[idx]
                    if aug is not None:
                        xb = aug(xb, aug_gen)
                    for group in opt.param_groups:
                        group["lr"] = lr * _lr_factor(step, total, warmup)
                    logits = net(xb)
                    loss = F.cross_entropy(logits, yb)
                    if not torch.isfinite(loss):
                        raise RuntimeError(f"judge training diverged at step {step} (loss "
                                           f"{float(loss)}); lower lr (now {lr})")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                    loss_sum += float(loss.detach()) * len(idx)
                    correct += int((logits.argmax(1) == yb).sum())
                    seen += len(idx)
                row = {"epoch": epoch + 1, "loss": round(loss_sum / max(seen, 1), 5),
                       "train_acc": round(correct / max(seen, 1), 5),
                       "val_acc": round(evaluate_judge(judge, splits["val"]), 5),
                       "seconds": round(time.perf_counter() - t0, 2)}
                history.append(row)
                if progress:
                    epoch_iter.set_postfix(loss=row["loss"], val_acc=row["val_acc"])
        judge.eval()
        judge.requires_grad_(False)
        test_acc = evaluate_judge(judge, splits["test"])
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
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
