"""``TorchGenerativeModel``: the base of every model made of torch modules (building
layers once the data shape is known, ``fit`` through the generic trainer, save/load of
``model.safetensors``). It lives here, not in ``genlab.base``, so that the contract does not
import the trainer."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..base import (CONFIG_FILE, FORMAT_VERSION, MAX_PARAMETERS, WEIGHTS_FILE, Config, GenerativeModel,
                    atomic_write_json, check_config_types, check_finite_tensors, default_file_mode,
                    file_sha256, safetensors_shapes, verify_file_hash)
from ..errors import ModelFormatError, NotFittedError


class TorchGenerativeModel(GenerativeModel, nn.Module):
    """Base for models made of torch modules.

    Subclasses build their layers in ``build()`` once ``config.data_shape`` is known (at
    construction when the config has it, else at the first ``fit``), and implement
    ``forward(batch) -> dict`` returning ``{"loss": scalar, **parts}`` so that the one
    generic trainer trains every such model.
    """

    def __init__(self, config: Config | None = None, **overrides: Any):
        nn.Module.__init__(self)
        if config is None:
            config = self.config_class(**overrides)
        elif overrides:
            config = config.replace(**overrides)
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.built = False
        self.fitted = False  # True once trained or loaded: a later fit then warm-starts
        if getattr(config, "data_shape", None) is not None:
            self.build()
            self.built = True

    # -- to implement
    def build(self) -> None:
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def data_defaults(self, dataset: Any) -> dict[str, Any]:
        """Config values resolved from the data at the first ``fit`` (e.g. ``"auto"``
        fields). Default: none."""
        return {}

    def on_fit_start(self, train_data: Any) -> None:
        """Hook before the first step of a fresh fit of an untrained model (not on resume,
        not when continuing a fitted one), after the weights are drawn: e.g. start parts
        from a pretrained model. Default: nothing."""

    def on_fit_end(self, train_data: Any) -> None:
        """Hook after training (e.g. fit a latent density). Default: nothing."""

    # -- shared machinery
    def _ensure_built(self, dataset: Any) -> None:
        shape = tuple(dataset.shape)
        cfg_shape = getattr(self.config, "data_shape", None)
        if cfg_shape is None:
            changes: dict[str, Any] = {"data_shape": shape}
            if getattr(self.config, "num_classes", 0) == -1:
                changes["num_classes"] = dataset.num_classes
            changes.update(self.data_defaults(dataset))
            self.config = self.config.replace(**changes)
            self.build()
            self.built = True
        elif tuple(cfg_shape) != shape:
            raise ValueError(
                f"{type(self).__name__} was built for data of shape {tuple(cfg_shape)}, "
                f"but the data has shape {shape}"
            )
        else:  # built from a config with data_shape: still resolve its "auto" fields
            changes = {k: v for k, v in self.data_defaults(dataset).items()
                       if getattr(self.config, k) != v}
            if changes:
                if self.fitted:
                    raise ValueError(f"{type(self).__name__} was trained with "
                                     f"{ {k: getattr(self.config, k) for k in changes} }; "
                                     f"this data needs {changes}")
                self.config = self.config.replace(**changes)
                self.build()

    def planned_steps(self, n_train: int, train: Any) -> int:
        """Optimizer steps a fit of ``n_train`` examples under ``TrainConfig`` ``train``
        takes (what a resumed run compares its checkpoint's step against)."""
        spe = math.ceil(n_train / train.batch_size)
        total = spe * train.epochs
        return total if train.max_steps is None else min(train.max_steps, total)

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` unless the model was trained or loaded (or is being
        trained right now: a callback or a sample grid may sample mid-fit). Built but
        untrained weights are random, and some parts (e.g. a fitted latent density) do not
        exist before the end of ``fit``."""
        if not self.built:
            raise NotFittedError(
                f"{type(self).__name__} has no weights yet: call fit(data) or genlab.load(dir)"
            )
        if not (self.fitted or getattr(self, "_fitting", False)):
            raise NotFittedError(
                f"{type(self).__name__} is built but not trained: call fit(data) or "
                "genlab.load(dir) before sample/log_prob/save"
            )

    def fit(self, data: Any, train: Any = None, *, val: Any = None, run_dir: Any = None,
            resume: bool = False, callbacks: list | None = None) -> "TorchGenerativeModel":
        """Train on ``data`` with the generic trainer.

        Args:
            data: a ``genlab.data.Dataset``, a dataset name, a path, or an array/tensor.
            train: a ``genlab.train.TrainConfig`` (or a dict of its fields).
            val: validation data; default: a deterministic ``train.val_fraction`` split.
            run_dir: folder for checkpoints and the metrics log (default: none kept).
            resume: continue from ``run_dir``'s last checkpoint.
            callbacks: objects with optional ``on_step_end(trainer, logs)`` /
                ``on_epoch_end(trainer, logs)`` methods.
        Returns:
            self
        """
        from ..train import Trainer

        Trainer(train).fit(self, data, val=val, run_dir=run_dir, resume=resume,
                           callbacks=callbacks)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into the folder ``path``."""
        from safetensors.torch import save_model

        self.check_fitted()
        check_finite_tensors(self.state_dict(), f"{type(self).__name__} (not saved)",
                             error=ValueError)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".model.", suffix=".tmp")
        os.close(fd)
        try:
            try:
                save_model(self, tmp, metadata={"model_type": self.model_type,
                                                "genlab_version": __version__})
            except Exception as e:  # safetensors reports a full disk as its own error type
                if isinstance(e, OSError) and e.filename is not None:
                    raise
                import errno as _errno

                code = getattr(e, "errno", None) or (_errno.ENOSPC if "space" in str(e).lower() else _errno.EIO)
                raise OSError(code, os.strerror(code), str(path / WEIGHTS_FILE)) from None
            os.chmod(tmp, default_file_mode())
            digest = file_sha256(tmp)
            os.replace(tmp, path / WEIGHTS_FILE)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        atomic_write_json(path / CONFIG_FILE, {
            "model_type": self.model_type,
            "genlab_version": __version__,
            "format_version": FORMAT_VERSION,
            "log_prob_kind": self.log_prob_kind,
            "config": self.config.to_dict(),
            "weights_sha256": digest,
        })
        return path

    @classmethod
    def _load_from_header(cls, header: dict[str, Any]) -> "TorchGenerativeModel":
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        folder = Path(header["_dir"])
        cfg_dict = header.get("config", {})
        check_config_types(cls.config_class, cfg_dict, str(folder / CONFIG_FILE))
        try:
            config = cls.config_class.from_dict(cfg_dict)
        except (TypeError, ValueError) as e:
            raise ModelFormatError(f"{folder / CONFIG_FILE}: invalid config: {e}") from None
        if getattr(config, "data_shape", None) is None:
            raise ModelFormatError(f"{folder / CONFIG_FILE}: the model was saved unfitted")
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelFormatError(f"{folder} has {CONFIG_FILE} but no {WEIGHTS_FILE}")
        verify_file_hash(weights, header)
        stored = safetensors_shapes(weights)
        model = _build_checked(cls, config, stored, folder)
        try:
            missing, unexpected = load_model(model, weights, strict=False)
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            raise ModelFormatError(
                f"{weights} is truncated or corrupt and cannot be read ({e})"
            ) from None
        if missing or unexpected:
            raise ModelFormatError(
                f"{weights} does not match the {cls.model_type} config: "
                f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
            )
        check_finite_tensors(model.state_dict(), str(weights))
        model.eval()
        model.fitted = True
        return model


def _build_checked(cls: type, config: Config, stored: dict[str, tuple[int, ...]], folder: Path):
    """Build ``cls(config)`` once its parameter shapes are known to match the weights
    file: the model is first built on the ``meta`` device (no memory), so a config.json
    asking for huge layers is refused instead of allocating terabytes."""
    try:
        with torch.device("meta"):
            shell = cls(config)
        shapes = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    except Exception:  # a family whose build needs real tensors: size-check what we can
        shapes = None
    if shapes is not None:
        total = sum(math.prod(s) for s in shapes.values())
        if total > MAX_PARAMETERS:
            raise ModelFormatError(f"{folder / CONFIG_FILE}: the config asks for {total:,} "
                                   f"parameters (more than {MAX_PARAMETERS:,}); it is damaged")
        wrong = [k for k in shapes if k in stored and tuple(stored[k]) != shapes[k]]
        if wrong:
            k = wrong[0]
            raise ModelFormatError(f"{folder / WEIGHTS_FILE} does not match {CONFIG_FILE}: "
                                   f"tensor {k!r} is {list(stored[k])} in the file, "
                                   f"{list(shapes[k])} by the config")
    try:
        return cls(config)
    except (RuntimeError, MemoryError, ValueError, TypeError) as e:
        raise ModelFormatError(f"{folder / CONFIG_FILE}: cannot build the model from this "
                               f"config ({type(e).__name__}: {e})") from None
