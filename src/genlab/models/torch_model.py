"""``TorchGenerativeModel``: the base of every model made of torch modules (building
layers once the data shape is known, ``fit`` through the generic trainer, save/load of
``model.safetensors``). It lives here, not in ``genlab.base``, so that the contract does not
import the trainer."""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..base import CONFIG_FILE, MAX_PARAMETERS, WEIGHTS_FILE, Config, GenerativeModel
from ..devices import module_device, noise, to_device
from ..errors import ModelFormatError


#: the public methods that take and return tensors: on a model that is not on the CPU their
#: tensor arguments are moved to its device and their tensor results back to the CPU, so
#: callers (writers, metrics, reports) see CPU tensors on every device. A caller that passes
#: a tensor already on the model's device (``forward``, a training step, a pipeline working
#: on the GPU) is device-aware: it gets device tensors back, and nothing is copied
DEVICE_API = ("sample", "log_prob", "reconstruct", "encode", "decode", "interpolate", "sample_latent",
              "token_log_probs", "upscale", "beam_search", "progress_image")
CPU = torch.device("cpu")


def _to_caller(value: Any) -> Any:
    """A device-API result as callers get it: its tensors on the CPU."""
    return to_device(value, CPU)


def _on_accelerator(value: Any) -> bool:
    """Whether a tensor in ``value`` (a tensor, or a dict/list/tuple of them) is off the CPU."""
    if torch.is_tensor(value):
        return value.device.type != "cpu"
    if isinstance(value, dict):
        return any(_on_accelerator(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_on_accelerator(v) for v in value)
    return False


def _device_api(fn: Any) -> Any:
    @functools.wraps(fn)
    def on_device(self: "TorchGenerativeModel", *args: Any, **kwargs: Any) -> Any:
        dev = self.device
        if dev.type == "cpu" or self.__dict__.get("_in_device_api") or _on_accelerator((args, kwargs)):
            return fn(self, *args, **kwargs)  # inner and device-aware calls keep device tensors
        self.__dict__["_in_device_api"] = True
        try:
            return _to_caller(fn(self, *to_device(args, dev), **to_device(kwargs, dev)))
        finally:
            self.__dict__["_in_device_api"] = False

    on_device._device_api = True  # type: ignore[attr-defined]
    return on_device


class TorchGenerativeModel(GenerativeModel, nn.Module):
    """Base for models made of torch modules.

    Subclasses build their layers in ``build()`` once ``config.data_shape`` is known (at
    construction when the config has it, else at the first ``fit``), and implement
    ``forward(batch) -> dict`` returning ``{"loss": scalar, **parts}`` so that the one
    generic trainer trains every such model.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in DEVICE_API:  # each class wraps the methods it defines itself
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "_device_api", False):
                setattr(cls, name, _device_api(fn))

    def __init__(self, config: Config | None = None, **overrides: Any):
        nn.Module.__init__(self)
        GenerativeModel.__init__(self, config, **overrides)
        config = self.config
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

    def training_step(self) -> Any:
        """What one update of this model is, for the one ``Trainer``: a
        ``genlab.train.steps.Step``. Default: ``GradientStep`` (``forward(batch)["loss"]``,
        one optimizer); a family with another kind of update returns its own."""
        from ..train.steps import GradientStep

        return GradientStep()

    # -- devices
    @property
    def device(self) -> torch.device:
        """Where the weights are (``model.to("cuda")`` moves them; a fit leaves them on
        ``TrainConfig.device``)."""
        return module_device(self)

    def _noise(self, *shape: int, generator: torch.Generator | None = None, kind: str = "normal") -> torch.Tensor:
        """Seeded noise drawn on the CPU (the same for a seed on every device), on ``self.device``."""
        return noise(shape, generator=generator, device=self.device, kind=kind)

    def _on_device(self, value: Any) -> Any:
        """Tensors of ``value`` moved to ``self.device`` (a no-op on the CPU)."""
        return to_device(value, self.device)

    # -- shared machinery
    def prepare(self, dataset: Any) -> None:
        """Build the layers for ``dataset``'s shape (once) and resolve the config fields
        that depend on the data (``data_defaults``, ``num_classes=-1``); a model built
        for another shape refuses the data."""
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

    def fit(self, data: Any, train: Any = None, *, val: Any = None, run_dir: Any = None,
            resume: bool = False, callbacks: list | None = None) -> "TorchGenerativeModel":
        """Train on ``data`` with the one trainer, using this model's ``training_step()``.

        Args:
            data: a ``genlab.data.Dataset``, a dataset name, a path, or an array/tensor.
            train: a ``genlab.train.TrainConfig`` (or a dict of its fields).
            val: validation data; default: a deterministic ``train.val_fraction`` split.
            run_dir: folder for checkpoints and the metrics log (default: none kept).
            resume: continue from ``run_dir``'s last checkpoint.
            callbacks: ``genlab.train.Callback`` objects (or any objects with some of
                its hooks: ``on_step_end(trainer, logs)``, ``on_epoch_end(trainer, row)``, ...).
        Returns:
            self
        """
        from ..train import Trainer

        Trainer(train).fit(self, data, val=val, run_dir=run_dir, resume=resume,
                           callbacks=callbacks)
        return self

    def _saved_tensors(self) -> nn.Module:
        return self

    @classmethod
    def _from_saved(cls, config: Config, header: dict[str, Any], weights: Any) -> "TorchGenerativeModel":
        """Build the model for ``config`` (first on the ``meta`` device, to check its shapes
        against the file without allocating) and load the weights into it."""
        folder = Path(header["_dir"])
        if getattr(config, "data_shape", None) is None:
            raise ModelFormatError(f"{folder / CONFIG_FILE}: the model was saved unfitted")
        model = _build_checked(cls, config, weights.shapes, folder)
        weights.load_into(model)
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
