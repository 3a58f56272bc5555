"""The one contract every genlab model keeps, and the save/load format.

Every model (neural or probabilistic) offers::

    fit(data, train=None) -> self
    sample(n, *, generator=None, **condition) -> Tensor
    log_prob(x) -> Tensor          # per example; meaning given by `log_prob_kind`
    save(dir) / genlab.load(dir)

A saved model is a folder with ``config.json`` (``model_type``, ``genlab_version``,
``format_version`` and the model config) and ``model.safetensors`` (tensors only).
Loading never unpickles anything.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from . import __version__
from .errors import LogProbUnavailableError, ModelFormatError, NotFittedError

FORMAT_VERSION = 1
LOG_PROB_KINDS = ("exact", "lower_bound", "unnormalized", "none")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


# ----------------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class Config:
    """Base for model configs: a frozen dataclass validated in ``__post_init__``.

    Subclasses call ``super().__post_init__()`` is not needed; they validate their own
    fields and raise ``ValueError`` with an actionable message.
    """

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(
                f"{cls.__name__} has no field(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        kwargs = {}
        for k, v in d.items():
            kwargs[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


# ----------------------------------------------------------------------------- IO helpers
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_model_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``config.json`` of a saved model folder."""
    path = Path(path)
    if path.is_file() and path.name in (CONFIG_FILE, WEIGHTS_FILE):
        path = path.parent
    cfg_path = path / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {path}: the folder does not exist")
    if not cfg_path.is_file():
        # a run folder keeps its model in run/model/
        if (path / "model" / CONFIG_FILE).is_file():
            return read_model_header(path / "model")
        raise ModelFormatError(
            f"{path} is not a genlab model: it has no {CONFIG_FILE} "
            f"(a saved model is a folder with {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    try:
        header = json.loads(cfg_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{cfg_path} is not valid JSON ({e}); the file is damaged") from e
    if not isinstance(header, dict) or "model_type" not in header:
        raise ModelFormatError(f"{cfg_path} is not a genlab model config (no 'model_type')")
    fv = header.get("format_version", 1)
    if not isinstance(fv, int) or fv > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} was saved by genlab {header.get('genlab_version', '?')} in format "
            f"{fv}; this genlab {__version__} reads format <= {FORMAT_VERSION}. "
            "Upgrade genlab (pip install -U genlab) to load it."
        )
    header["_dir"] = str(path)
    return header


def load(path: str | os.PathLike) -> "GenerativeModel":
    """Load any saved genlab model (or the model of a run folder).

    Dispatches on ``model_type`` in ``config.json`` through the model registry.
    """
    from .registry import MODELS

    header = read_model_header(path)
    try:
        cls = MODELS.get(header["model_type"])
    except ValueError as e:
        raise ModelFormatError(f"{header['_dir']}: {e}") from None
    return cls._load_from_header(header)


# ----------------------------------------------------------------------------- the contract
class GenerativeModel:
    """Interface of every genlab model.

    Class attributes every subclass sets:
        model_type: registry name, written to ``config.json``.
        config_class: the model's ``Config`` dataclass.
        log_prob_kind: one of ``exact``, ``lower_bound``, ``unnormalized``, ``none``.
    """

    model_type: ClassVar[str] = ""
    config_class: ClassVar[type[Config]] = Config
    log_prob_kind: ClassVar[str] = "none"

    def fit(self, data: Any, train: Any = None, **kwargs: Any) -> "GenerativeModel":
        raise NotImplementedError

    def sample(self, n: int, *, generator: torch.Generator | None = None, **condition: Any):
        raise NotImplementedError

    def log_prob(self, x: Any) -> torch.Tensor:
        raise LogProbUnavailableError(
            f"{type(self).__name__} defines no likelihood (log_prob_kind='none'); "
            "compare it with sample-based metrics instead"
        )

    def save(self, path: str | os.PathLike) -> Path:
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GenerativeModel":
        header = read_model_header(path)
        if header["model_type"] != cls.model_type:
            from .registry import MODELS

            if MODELS.canonical(header["model_type"]) != cls.model_type:
                raise ModelFormatError(
                    f"{header['_dir']} holds a {header['model_type']!r} model, "
                    f"not a {cls.model_type!r}; use genlab.load() to load any model"
                )
        return cls._load_from_header(header)

    @classmethod
    def _load_from_header(cls, header: dict[str, Any]) -> "GenerativeModel":
        raise NotImplementedError


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

    def check_fitted(self) -> None:
        if not self.built:
            raise NotFittedError(
                f"{type(self).__name__} has no weights yet: call fit(data) or genlab.load(dir)"
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
        from .train import Trainer

        Trainer(train).fit(self, data, val=val, run_dir=run_dir, resume=resume,
                           callbacks=callbacks)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into the folder ``path``."""
        from safetensors.torch import save_model

        self.check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".model.", suffix=".tmp")
        os.close(fd)
        try:
            save_model(self, tmp, metadata={"model_type": self.model_type,
                                            "genlab_version": __version__})
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
        })
        return path

    @classmethod
    def _load_from_header(cls, header: dict[str, Any]) -> "TorchGenerativeModel":
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        folder = Path(header["_dir"])
        try:
            config = cls.config_class.from_dict(header.get("config", {}))
        except (TypeError, ValueError) as e:
            raise ModelFormatError(f"{folder / CONFIG_FILE}: invalid config: {e}") from None
        if getattr(config, "data_shape", None) is None:
            raise ModelFormatError(f"{folder / CONFIG_FILE}: the model was saved unfitted")
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelFormatError(f"{folder} has {CONFIG_FILE} but no {WEIGHTS_FILE}")
        model = cls(config)
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
        model.eval()
        model.fitted = True
        return model
