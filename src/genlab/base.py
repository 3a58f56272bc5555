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
import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from .errors import LogProbUnavailableError, ModelFormatError
from .serialize import (  # noqa: F401  (re-exported: the names were defined here before)
    CONFIG_FILE, FORMAT_VERSION, MAX_CONFIG_BYTES, MAX_PARAMETERS, WEIGHTS_FILE, atomic_write_bytes,
    atomic_write_json, check_config_types, check_finite_tensors, default_file_mode, file_sha256,
    read_model_header, safetensors_shapes, verify_file_hash,
)

LOG_PROB_KINDS = ("exact", "lower_bound", "unnormalized", "none")


# ----------------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class Config:
    """Base for model configs: a frozen dataclass validated in ``__post_init__``.

    Subclasses call ``super().__post_init__()`` is not needed; they validate their own
    fields and raise ``ValueError`` with an actionable message.

    Every config, whatever its own ``__post_init__`` does, first rejects NaN and +-inf in
    its float fields (also inside tuples, e.g. ``betas``): NaN compares ``False`` with
    everything, so range checks such as ``lr > 0`` would let it through. A field where
    infinity means something lists its name in the class attribute ``allow_inf``
    (NaN is never accepted).
    """

    #: names of float fields that may be +-inf on purpose (NaN is always rejected)
    allow_inf: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # wrap each subclass's own __post_init__ so the finiteness check runs first, even
        # when it does not call super().__post_init__()
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_checks_finite", False):
            def __post_init__(self: "Config", _own: Any = own) -> None:
                self._check_finite()
                _own(self)

            __post_init__._checks_finite = True  # type: ignore[attr-defined]
            __post_init__.__doc__ = own.__doc__
            cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        """Validate the fields (here: only that float fields are finite)."""
        self._check_finite()

    def _check_finite(self) -> None:
        """Raise ``ValueError`` naming the class and field if a float field (or a float
        inside a tuple/list field) is NaN, or +-inf without the field in ``allow_inf``."""
        import math
        import numbers

        def bad(v: Any, inf_ok: bool) -> bool:
            if isinstance(v, (tuple, list)):
                return any(bad(u, inf_ok) for u in v)
            if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral):
                return math.isnan(v) or (math.isinf(v) and not inf_ok)
            return False

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if bad(v, f.name in self.allow_inf):
                many = isinstance(v, (tuple, list))
                what = ("hold numbers (not NaN)" if many else "be a number (not NaN)") \
                    if f.name in self.allow_inf else ("hold finite numbers" if many else "be a finite number")
                raise ValueError(f"{type(self).__name__}: {f.name} must {what}, got {v!r}")

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
    #: model-config fields that are really training settings and may change on resume
    #: (a GAN's ``lr_g``/``lr_d``); every other model field is fixed once trained
    resumable_config_fields: ClassVar[tuple[str, ...]] = ()

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


def __getattr__(name: str) -> Any:
    """``genlab.base.TorchGenerativeModel`` still works for one release: the class lives in
    ``genlab.models.torch_model`` (base does not import the trainer)."""
    if name == "TorchGenerativeModel":
        import warnings

        warnings.warn("genlab.base.TorchGenerativeModel moved to genlab.models.TorchGenerativeModel; "
                      "the old name goes in the next release", DeprecationWarning, stacklevel=2)
        from .models.torch_model import TorchGenerativeModel

        return TorchGenerativeModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
