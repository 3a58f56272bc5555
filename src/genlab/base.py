"""The one contract every genlab model keeps.

Every model (neural or probabilistic, torch or numpy) offers::

    Model(config=None, **overrides)
    prepare(data)                          # resolve shapes / "auto" fields from the data
    fit(data, train=None) -> self
    sample(n, *, generator=None, **condition) -> Tensor     # (n, *shape)
    log_prob(x, *, y=None, **options) -> Tensor             # (N,) float64, nats; see log_prob_kind
    save(dir) / genlab.load(dir)

``GenerativeModel`` below documents the return types. The saved format and the file
helpers live in ``genlab.serialize`` (re-exported here); the torch base class lives in
``genlab.models.torch_model`` so that this module does not import the trainer.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .errors import LogProbUnavailableError, ModelFormatError, NotFittedError

if TYPE_CHECKING:
    from .capabilities import Tags
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
    """Interface of every genlab model (torch or numpy, neural or probabilistic).

    Class attributes every subclass sets:
        model_type: registry name, written to ``config.json``.
        config_class: the model's ``Config`` dataclass.
        log_prob_kind: one of ``exact``, ``lower_bound``, ``unnormalized``, ``none``.
        log_prob_options: the keyword options ``log_prob`` takes (``"y"`` for a
            conditional model, ``"k"`` and ``"generator"`` for an importance-sampled
            bound, ...). Any other keyword is a ``TypeError`` naming it and the model;
            ``y=None`` is accepted by every model. Checked against the signature of
            ``log_prob`` when the class is defined.

    The methods and what they return, the same for every family:
        ``__init__(config=None, **overrides)``: the config, or the config class's
            defaults, with ``overrides`` replaced (``VAE(latent_dim=8)``).
        ``prepare(data)``: resolve what depends on the data (shapes, ``"auto"`` fields)
            before anything is recorded or trained; ``fit`` calls it. Default: nothing.
        ``fit(data, train=None, ...) -> self``.
        ``sample(n, *, generator=None, **condition) -> torch.Tensor``: ``(n, *shape)``;
            float32 for images and tables, int64 for token ids and discrete state codes
            (a Bayesian network's columns in ``variables_`` order).
        ``log_prob(x, *, y=None, **options) -> torch.Tensor``: ``(N,)`` float64 in nats,
            one value per example, its meaning given by ``log_prob_kind``.
        ``save(dir)`` / ``genlab.load(dir)``: through the one serializer
            (``genlab.serialize``): ``config.json`` + ``model.safetensors``.
        ``check_fitted()``: raise ``NotFittedError`` unless ``fitted``.

    A family supplies ``_saved_tensors`` (and ``_saved_extra``) for ``save`` and
    ``_from_saved`` for loading; the folder format, atomicity, hashes and checks are
    shared.
    """

    model_type: ClassVar[str] = ""
    config_class: ClassVar[type[Config]] = Config
    log_prob_kind: ClassVar[str] = "none"
    log_prob_options: ClassVar[tuple[str, ...]] = ()
    #: model-config fields that are really training settings and may change on resume
    #: (a GAN's ``lr_g``/``lr_d``); every other model field is fixed once trained
    resumable_config_fields: ClassVar[tuple[str, ...]] = ()
    #: what the user calls to get a fitted model (the ``NotFittedError`` message)
    fit_hint: ClassVar[str] = "fit(data) or genlab.load(dir)"
    #: True once trained or loaded (an instance attribute or a property in subclasses)
    fitted: bool = False
    #: capabilities every instance of the class has (``genlab.capabilities.Tags`` fields,
    #: e.g. ``{"reconstruction": True}``); merged along the class hierarchy and checked
    #: when the class is defined. What depends on the config goes in ``_config_tags``.
    declared_tags: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "_ensure_built" in own and "prepare" not in own:
            warnings.warn(f"{cls.__qualname__} overrides _ensure_built(); override prepare(data) "
                          "instead (the old name goes in the next release)", DeprecationWarning, stacklevel=2)
            cls.prepare = own["_ensure_built"]  # type: ignore[method-assign]
        fn = own.get("log_prob")
        if fn is not None and not getattr(fn, "_checks_options", False):
            cls.log_prob = _checked_log_prob(fn)  # type: ignore[method-assign]
        _check_declared_options(cls)
        merged: dict[str, Any] = {}
        for base in reversed(cls.__mro__):
            merged.update(base.__dict__.get("declared_tags", {}) or {})
        cls.declared_tags = merged
        from .capabilities import check_declared_tags

        check_declared_tags(cls)

    def __init__(self, config: Config | None = None, **overrides: Any):
        if config is None:
            config = self.config_class(**_known_fields(type(self), self.config_class, overrides))
        elif overrides:
            config = config.replace(**_known_fields(type(self), type(config), overrides))
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config

    @property
    def tags(self) -> "Tags":
        """What this model is and can do (``genlab.capabilities.Tags``): the class's
        ``declared_tags``, the log-prob and sample options read from the signatures, and
        what the config decides (``_config_tags``). Report sections, sample writers,
        evaluators and the CLI read this instead of probing the model."""
        from .capabilities import Tags, keyword_options

        kw: dict[str, Any] = {"family": type(self).model_type, "log_prob_kind": type(self).log_prob_kind,
                              "log_prob_options": tuple(type(self).log_prob_options),
                              "sample_options": keyword_options(type(self).sample)}
        kw.update(type(self).declared_tags)
        kw.update(self._config_tags())
        return Tags(**kw)

    def _config_tags(self) -> dict[str, Any]:
        """Tags that depend on the config (e.g. the modality from ``data_shape``, the
        number of classes). Default: ``sample_shape`` from ``config.data_shape``, and the
        modality from its rank (3: ``image``, 1: ``table``) unless declared."""
        # the contract's default reads the two config fields every family that has them
        # names alike; a family whose config means something else overrides this method
        shape = getattr(self.config, "data_shape", None)
        out: dict[str, Any] = {}
        if shape:
            out["sample_shape"] = tuple(int(s) for s in shape)
            if "modality" not in type(self).declared_tags:
                out["modality"] = {3: "image", 1: "table"}.get(len(shape), "unknown")
        k = int(getattr(self.config, "num_classes", 0) or 0)
        if k > 0:
            out["num_classes"] = k
            out["conditions"] = tuple(dict.fromkeys((*type(self).declared_tags.get("conditions", ()), "y")))
        return out

    def prepare(self, data: Any) -> None:
        """Resolve what depends on the data (e.g. its shape, ``"auto"`` config fields)
        before a run records the config or training starts. Default: nothing to do."""

    def _ensure_built(self, data: Any) -> None:
        """Deprecated name of ``prepare`` (kept for one release)."""
        warnings.warn("_ensure_built() is now prepare(); the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        self.prepare(data)

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` unless the model was trained or loaded (``fitted``), or
        is being trained right now (``_fitting``: a callback or a sample grid may sample
        mid-fit)."""
        if not (self.fitted or getattr(self, "_fitting", False)):
            raise NotFittedError(f"{type(self).__name__} is not trained: call {self.fit_hint} "
                                 "before sample/log_prob/save")

    def fit(self, data: Any, train: Any = None, **kwargs: Any) -> "GenerativeModel":
        raise NotImplementedError

    def sample(self, n: int, *, generator: torch.Generator | None = None, **condition: Any):
        raise NotImplementedError

    def log_prob(self, x: Any) -> torch.Tensor:
        raise LogProbUnavailableError(
            f"{type(self).__name__} defines no likelihood (log_prob_kind='none'); "
            "compare it with sample-based metrics instead"
        )

    # -- save / load: one path for every family (genlab.serialize)
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into the folder ``path``."""
        from .serialize import save_model_folder

        self.check_fitted()
        return save_model_folder(path, model_type=self.model_type, log_prob_kind=self.log_prob_kind,
                                 config=self.config.to_dict(), tensors=self._saved_tensors(),
                                 extra=self._saved_extra(), name=type(self).__name__)

    def _saved_tensors(self) -> Any:
        """What ``model.safetensors`` holds: a mapping name -> tensor/array, or a module."""
        raise NotImplementedError

    def _saved_extra(self) -> dict[str, Any]:
        """Keys ``config.json`` holds beside the config (default: none)."""
        return {}

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
        from .serialize import SavedWeights, read_model_config

        config = read_model_config(cls.config_class, header)
        return cls._from_saved(config, header, SavedWeights(header))

    @classmethod
    def _from_saved(cls, config: Config, header: dict[str, Any], weights: Any) -> "GenerativeModel":
        """The fitted model from its checked config and its ``SavedWeights`` (the file is
        known to exist, to match its hash and to have a readable header)."""
        raise NotImplementedError


def _known_fields(model: type, config_class: type, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` if every key is a field of ``config_class``; else a ``TypeError``
    naming the unknown key, the model and the closest field."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    for k in overrides:
        if k not in fields:
            import difflib

            close = difflib.get_close_matches(k, sorted(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; its settings: {', '.join(sorted(fields))}"
            raise TypeError(f"{model.__name__} has no setting {k!r}{hint}")
    return overrides


def _checked_log_prob(fn: Any) -> Any:
    """Wrap a ``log_prob`` so options go by keyword and only declared ones pass."""
    import functools

    @functools.wraps(fn)
    def log_prob(self: GenerativeModel, x: Any, *args: Any, **options: Any) -> Any:
        if args:
            raise TypeError(f"{type(self).__name__}.log_prob() takes its options by keyword "
                            f"(log_prob(x, y=..., ...)), got {len(args)} more positional argument(s)")
        declared = type(self).log_prob_options
        for k in options:
            if k not in declared and k != "y":
                raise TypeError(f"{type(self).__name__}.log_prob() takes no option {k!r}; it takes "
                                + (", ".join(declared) if declared else "none"))
        if "y" in options and "y" not in declared:
            if options.pop("y") is not None:
                raise TypeError(f"{type(self).__name__}.log_prob() takes no y: the model is not conditional")
        return fn(self, x, **options)

    log_prob._checks_options = True  # type: ignore[attr-defined]
    return log_prob


def _check_declared_options(cls: type) -> None:
    """``cls.log_prob_options`` must be exactly the keyword-only parameters of its
    ``log_prob`` (unless that takes ``**options``): the declaration cannot drift."""
    import inspect

    fn = inspect.unwrap(cls.log_prob)
    params = list(inspect.signature(fn).parameters.values())[2:]  # after self, x
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    takes = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    declared = set(cls.log_prob_options)
    if takes != declared:
        raise TypeError(f"{cls.__qualname__}.log_prob_options {tuple(cls.log_prob_options)} do not match "
                        f"the keyword-only options of its log_prob: {tuple(sorted(takes))}")
    if any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
        raise TypeError(f"{cls.__qualname__}.log_prob must take its options keyword-only: log_prob(x, *, ...)")


def select_log_prob_options(model: Any, **offered: Any) -> dict[str, Any]:
    """The part of ``offered`` that ``model.log_prob`` declares (``log_prob_options``),
    for callers that offer every model the same options (``k``, ``generator``, ``y``)."""
    from .capabilities import tags_of

    declared = tags_of(model).log_prob_options
    return {k: v for k, v in offered.items() if k in declared}


GenerativeModel.log_prob = _checked_log_prob(GenerativeModel.log_prob)  # type: ignore[method-assign]


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
