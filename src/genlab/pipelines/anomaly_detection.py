"""Anomaly detection by reconstruction error.

An autoencoder trained on normal data only reconstructs normal inputs well and unusual
ones badly, so the per-example reconstruction error is an anomaly score (Japkowicz et
al. 1995; Sakurada & Yairi 2014). With no labelled anomalies at training time, the
leave-one-class-out benchmark holds one class out of training and asks how well the
score ranks that class above the others on the test split (ROC-AUC; the protocol of
Akcay et al. 2018, GANomaly). It is the reverse of the one-class protocol of Ruff et al.
2018 (Deep SVDD), which trains on one class and treats the other nine as anomalies.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import NotFittedError
from ..registry import PIPELINES
from .denoising import ReconstructionPipeline


@PIPELINES.register("anomaly-detection", aliases=("anomaly_detection", "anomaly"))
class AnomalyDetector(ReconstructionPipeline):
    """Score and flag anomalies by reconstruction error.

    Example:
        >>> det = AnomalyDetector(ae).calibrate(val_normal.x)   # threshold = 99th pct
        >>> out = det(test.x)                  # {"scores": (B,), "flags": (B,) bool}
        >>> det.evaluate(normal_x, anomalous_x)  # {"roc_auc": ..., "average_precision": ...}

    Args:
        model: a fitted Autoencoder or unconditional VAE (scored at its posterior mean),
            trained on normal data.
        quantile: the calibration quantile of normal scores used as threshold.
    """

    def __init__(self, model: Any, quantile: float = 0.99):
        super().__init__(model)
        if not 0 < quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
        self.quantile = float(quantile)
        self.threshold: float | None = None

    def score(self, x: Any) -> torch.Tensor:
        """Per-example mean squared reconstruction error ``(B,)`` (higher = more
        anomalous)."""
        x = self._check_x(x)
        return (self.reconstruct(x) - x).pow(2).flatten(1).mean(1)

    def calibrate(self, normal_x: Any) -> "AnomalyDetector":
        """Set ``threshold`` to the ``quantile`` of scores on normal data, so about
        ``1 - quantile`` of normal examples get flagged (the false-positive rate).

        Args:
            normal_x: ``(N, *data_shape)`` normal examples not used for training
                (e.g. the validation split).
        Returns:
            self
        """
        s = self.score(normal_x).double()
        self.threshold = float(torch.quantile(s, self.quantile))
        return self

    def __call__(self, x: Any, threshold: float | None = None) -> dict[str, torch.Tensor]:
        """Scores and anomaly flags.

        Args:
            x: ``(B, *data_shape)``.
            threshold: flag scores above this; default the calibrated threshold.
        Returns:
            ``{"scores": (B,) float, "flags": (B,) bool}``.
        Raises:
            NotFittedError: no ``threshold`` given and ``calibrate`` never called.
        """
        if threshold is None:
            if self.threshold is None:
                raise NotFittedError(
                    "AnomalyDetector has no threshold to flag anomalies: call "
                    "calibrate(normal_x) first, pass threshold=..., or use score(x) "
                    "for scores only")
            threshold = self.threshold
        threshold = float(threshold)
        if math.isnan(threshold):
            raise ValueError("threshold must be a number, got NaN")
        scores = self.score(x)
        return {"scores": scores, "flags": scores > threshold}

    def evaluate(self, normal_x: Any, anomalous_x: Any) -> dict[str, float]:
        """How well the score separates anomalies (positives) from normal data.

        Args:
            normal_x: ``(N, *data_shape)`` normal examples.
            anomalous_x: ``(M, *data_shape)`` anomalies.
        Returns:
            ``{"roc_auc", "average_precision", "n_normal", "n_anomalous"}`` from
            scikit-learn; with a calibrated threshold also ``"tpr"`` and ``"fpr"`` at it.
        """
        from sklearn.metrics import average_precision_score, roc_auc_score

        s_norm = self.score(normal_x).double().numpy()
        s_anom = self.score(anomalous_x).double().numpy()
        scores = np.concatenate([s_norm, s_anom])
        labels = np.concatenate([np.zeros(len(s_norm)), np.ones(len(s_anom))])
        out = {"roc_auc": float(roc_auc_score(labels, scores)),
               "average_precision": float(average_precision_score(labels, scores)),
               "n_normal": float(len(s_norm)), "n_anomalous": float(len(s_anom))}
        if self.threshold is not None:
            out["tpr"] = float((s_anom > self.threshold).mean())
            out["fpr"] = float((s_norm > self.threshold).mean())
        return out


def holdout_class_auc(dataset: str | dict[str, Any], holdout: int, *, model_config: dict[str, Any] | None = None,
                      train: dict[str, Any] | None = None, seed: int = 0,
                      data_options: dict[str, Any] | None = None) -> dict[str, float]:
    """The one-class-held-out protocol: the held-out class is the anomaly.

    An ``Autoencoder(**model_config)`` is trained on the train split with every example
    of class ``holdout`` removed (validated on the val split without it). The test split
    is then scored; class ``holdout`` is the anomalous (positive) class and all other
    classes are normal. Returns the ROC-AUC of the score for that split.

    Args:
        dataset: a labelled dataset name (``"digits"``, ``"fashion-mnist"``, ...), or
            its splits as returned by ``load_splits`` (saves reloading in a loop).
        holdout: the class label held out of training and treated as the anomaly.
        model_config: ``AutoencoderConfig`` fields (e.g. ``{"arch": "conv",
            "latent_dim": 16}``).
        train: ``TrainConfig`` fields (e.g. ``{"epochs": 3}``); its ``seed`` defaults
            to ``seed``.
        seed: the training seed (weight initialisation and data order).
        data_options: options for ``load_splits`` (e.g. ``{"limit": 5000}``).
    Returns:
        ``{"holdout", "roc_auc", "average_precision", "n_train", "n_test_normal",
        "n_test_anomalous", "steps", "train_seconds"}`` (``steps``: the scheduled
        optimizer steps, fewer if early stopping ends training).
    """
    import time

    from ..data.datasets import load_splits
    from ..models import Autoencoder

    if isinstance(dataset, dict):
        if not {"train", "test"} <= set(dataset):
            raise ValueError(f"a splits dict needs 'train' and 'test', got {sorted(dataset)}")
        splits, dataset = dataset, dataset["train"].name
    else:
        splits = load_splits(dataset, **(data_options or {}))
    tr, val, test = splits["train"], splits.get("val"), splits["test"]
    if tr.y is None or test.y is None:
        raise ValueError(f"holdout_class_auc needs a labelled dataset; {dataset!r} has no labels")
    classes = sorted(set(tr.y.tolist()))
    if isinstance(holdout, bool) or int(holdout) != holdout or int(holdout) not in classes:
        raise ValueError(f"holdout must be one of the class labels {classes}, got {holdout!r}")
    holdout = int(holdout)
    tr = tr.subset((tr.y != holdout).nonzero().flatten())
    if val is not None and val.y is not None:
        val = val.subset((val.y != holdout).nonzero().flatten())
    is_anom = test.y == holdout
    if not is_anom.any() or is_anom.all():
        raise ValueError(f"the test split of {dataset!r} must hold class {holdout} and others")

    train = {"seed": seed, "progress": False, **(train or {})}
    model = Autoencoder(**(model_config or {}))  # fit seeds the weight init with train["seed"]
    t0 = time.time()
    model.fit(tr, train, val=val)
    seconds = time.time() - t0
    det = AnomalyDetector(model)
    res = det.evaluate(test.x[~is_anom], test.x[is_anom])
    from ..train import TrainConfig

    cfg = TrainConfig.coerce(train)
    steps = math.ceil(len(tr) / cfg.batch_size) * cfg.epochs
    if cfg.max_steps is not None:
        steps = min(steps, cfg.max_steps)
    return {"holdout": float(holdout), "roc_auc": res["roc_auc"],
            "average_precision": res["average_precision"], "n_train": float(len(tr)),
            "n_test_normal": res["n_normal"], "n_test_anomalous": res["n_anomalous"],
            "steps": float(steps), "train_seconds": seconds}
