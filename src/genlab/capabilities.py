"""Declared capabilities: what a model is and can do, and the registries keyed by them.

A model states what it is in ``model.tags`` (a frozen ``Tags``, in the spirit of
scikit-learn's estimator tags) instead of being probed with ``hasattr`` or compared by
``model_type``. The class declares what holds for every instance in ``declared_tags``;
what depends on the config (the modality from ``data_shape``, the number of classes,
the tokenizer) comes from ``_config_tags()``. ``GenerativeModel.__init_subclass__``
checks the declarations when a family is defined: an unknown tag name is a ``TypeError``,
and so is a capability declared without the methods it promises (``METHODS``).

Code that does something for *some* models (a report section, a sample writer, an
evaluator) registers it in one of the registries below with the tags it ``requires``;
``write_report``, ``genlab sample`` and ``genlab evaluate`` loop over what applies. A
family or pipeline fills them from its own module, so adding a family adds its sections
and writers without touching the report, the sampler or the evaluator::

    from genlab.capabilities import SAMPLE_WRITERS

    @SAMPLE_WRITERS.register(".xyz", requires={"modality": "molecule"})
    def write_xyz(job):                 # job: genlab.sample_io.SampleJob
        with job.replacing() as tmp:
            ...

This module is in the core layer: it imports nothing of genlab but the registry.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable, Iterable, Mapping

from .errors import GenlabError
from .registry import Registry

#: what a model's samples are
MODALITIES = ("image", "table", "discrete-table", "text", "molecule", "music", "unknown")
#: how a model's parameters are learnt
TRAINED_BY = ("gradient", "adversarial", "estimator")


@dataclasses.dataclass(frozen=True)
class Tags:
    """What a model is and can do.

    Attributes:
        family: the model's registry name (``model_type``), for entries that belong to
            one family only.
        modality: what a sample is: ``image`` ``(C, H, W)`` in [0, 1], ``table`` (a row of
            floats), ``discrete-table`` (a row of state codes), ``text``, ``molecule``
            (SMILES/SELFIES tokens) or ``music`` (event tokens); ``unknown`` before the
            model has seen data.
        sample_shape: the shape of one sample (``None`` when not known yet or variable).
        log_prob_kind: ``exact``, ``lower_bound``, ``unnormalized`` or ``none``.
        log_prob_options: the keyword options of ``log_prob``.
        sample_options: the keyword options of ``sample`` besides ``generator``.
        conditions: the ``sample`` options that condition the output: ``y`` (class
            labels), ``prompt`` (a text or token prompt), ``low_res`` (an image to upscale),
            ``evidence`` (observed variables).
        num_classes: classes a conditional model takes as ``y`` (0: not class-conditional).
        latent: ``sample_latent(n)`` and ``decode(z)``: a latent space to walk in.
        reconstruction: ``reconstruct(x[, y])``.
        interpolation: ``interpolate(a, b, steps[, y])`` between two examples.
        text_output: ``samples_to_text(x)``: samples read as strings.
        text_prompts: ``sample(prompt="...")`` continues a text prompt.
        per_token_nll: ``nll_per_token(x)``: mean NLL per real token (padding excluded).
        self_scoring: ``evaluate(test)`` returns the model's own test metrics (the
            numpy families fitted by their own estimator).
        upscaling: ``upscale(low_res)``: super-resolution.
        trained_by: ``gradient`` (the Trainer's default step), ``adversarial`` (the
            adversarial step) or ``estimator`` (fitted in closed form by its own code: no
            training curves, ``TrainConfig`` does not apply).
        structure: the model's graph, for reports: ``dag`` (Bayesian network), ``grid``
            (a grid MRF) or ``None``.
    """

    family: str = ""
    modality: str = "unknown"
    sample_shape: tuple[int, ...] | None = None
    log_prob_kind: str = "none"
    log_prob_options: tuple[str, ...] = ()
    sample_options: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    num_classes: int = 0
    latent: bool = False
    reconstruction: bool = False
    interpolation: bool = False
    text_output: bool = False
    text_prompts: bool = False
    per_token_nll: bool = False
    self_scoring: bool = False
    upscaling: bool = False
    trained_by: str = "gradient"
    structure: str | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"Tags: modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        if self.trained_by not in TRAINED_BY:
            raise ValueError(f"Tags: trained_by must be one of {', '.join(TRAINED_BY)}, got {self.trained_by!r}")
        if self.num_classes < 0:
            raise ValueError(f"Tags: num_classes must be >= 0, got {self.num_classes}")

    @property
    def conditional(self) -> bool:
        """Whether ``sample`` takes class labels ``y``."""
        return self.num_classes > 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["conditional"] = self.conditional
        return d

    def matches(self, requires: Mapping[str, Any] | Callable[["Tags"], bool] | None) -> bool:
        """Whether these tags meet ``requires``: a mapping of tag name to the value it
        must have (a tuple or set: one of them; ``True``: a true value), or a predicate."""
        if requires is None:
            return True
        if callable(requires):
            return bool(requires(self))
        for name, want in requires.items():
            have = getattr(self, name)
            if want is True:
                if not have:
                    return False
            elif isinstance(want, (tuple, list, set, frozenset)):
                if have not in want:
                    return False
            elif have != want:
                return False
        return True


TAG_NAMES = frozenset(f.name for f in dataclasses.fields(Tags))

#: the methods a true capability promises (checked when a family is defined)
METHODS: dict[str, tuple[str, ...]] = {
    "latent": ("sample_latent", "decode"),
    "reconstruction": ("reconstruct",),
    "interpolation": ("interpolate",),
    "text_output": ("samples_to_text",),
    "per_token_nll": ("nll_per_token",),
    "self_scoring": ("evaluate",),
    "upscaling": ("upscale",),
}


def check_declared_tags(cls: type) -> None:
    """Raise ``TypeError`` if ``cls.declared_tags`` names an unknown tag or declares a
    capability whose methods ``cls`` lacks."""
    declared = getattr(cls, "declared_tags", {}) or {}
    unknown = set(declared) - TAG_NAMES
    if unknown:
        raise TypeError(f"{cls.__qualname__}.declared_tags: unknown tag(s) {sorted(unknown)}; "
                        f"known: {', '.join(sorted(TAG_NAMES))}")
    try:
        Tags(**declared)
    except ValueError as e:
        raise TypeError(f"{cls.__qualname__}.declared_tags: {e}") from None
    for cap, methods in METHODS.items():
        if declared.get(cap):
            missing = [m for m in methods if not callable(getattr(cls, m, None))]
            if missing:
                raise TypeError(f"{cls.__qualname__} declares {cap}=True but has no {', '.join(missing)}()")


def keyword_options(fn: Any, *, skip: Iterable[str] = ("generator",)) -> tuple[str, ...]:
    """The keyword-only parameters of ``fn`` (a method's options), minus ``skip``."""
    try:
        params = inspect.signature(inspect.unwrap(fn)).parameters.values()
    except (TypeError, ValueError):
        return ()
    skip = set(skip)
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in skip)


#: the ``sample`` options a model may list in ``Tags.conditions``
CONDITIONS = ("y", "prompt", "low_res", "evidence")


def require(model: Any, *capabilities: str, what: str = "this", **values: Any) -> Tags:
    """``model.tags`` if every one of ``capabilities`` is true there, else a
    ``CapabilityError`` naming what is missing (pipelines declare ``requires`` and call
    this instead of probing with ``hasattr``). A capability may also be a condition
    (``"prompt"``: in ``tags.conditions``), and ``values`` name tags that must have a value
    (``modality="image"``)."""
    tags = getattr(model, "tags", None)
    if not isinstance(tags, Tags):
        wanted = [*capabilities, *(f"{k}={v}" for k, v in values.items())]
        raise CapabilityError(f"{what} needs a genlab model with {', '.join(wanted)}; got a "
                              f"{type(model).__name__}, which is not a genlab model (it has no tags)")
    unknown = [c for c in capabilities if c not in TAG_NAMES and c not in CONDITIONS] + \
        [k for k in values if k not in TAG_NAMES]
    if unknown:
        raise ValueError(f"require: unknown capability or tag {', '.join(unknown)}")
    missing = [f"a {k} of {v!r}" for k, v in values.items() if getattr(tags, k) != v]
    missing += [(f"the {c!r} condition" if c in CONDITIONS else c) for c in capabilities
                if not (c in tags.conditions if c in CONDITIONS else getattr(tags, c))]
    if missing:
        raise CapabilityError(f"{what} needs a model with {', '.join(missing)}; "
                              f"{type(model).__name__} has not (its tags: {describe(tags)})")
    return tags


def tags_of(model: Any) -> Tags:
    """``model.tags``, or a ``CapabilityError`` for an object that is not a genlab model."""
    tags = getattr(model, "tags", None)
    if not isinstance(tags, Tags):
        raise CapabilityError(f"{type(model).__name__} is not a genlab model (it has no tags); "
                              "subclass genlab.base.GenerativeModel")
    return tags


def describe(tags: Tags) -> str:
    """A short line of the true capabilities, for messages."""
    caps = [name for name in METHODS if getattr(tags, name)]
    if tags.num_classes:
        caps.append(f"{tags.num_classes} classes")
    if tags.conditions:
        caps.append(f"conditioned on {', '.join(tags.conditions)}")
    return f"{tags.modality}, log_prob {tags.log_prob_kind}" + (f", {', '.join(caps)}" if caps else "")


class CapabilityError(GenlabError, TypeError, ValueError):
    """The model lacks a capability that a command or pipeline needs (a ``TypeError``:
    the wrong kind of model; also a ``ValueError`` as genlab's usage errors are)."""


# ----------------------------------------------------------------------------- registries
def has_data(data: Any) -> bool:
    """``accepts`` for entries that need the run's data (e.g. a test split to compare with)."""
    return data is not None


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered function with the tags it requires.

    Attributes:
        name: the key (a file suffix for sample writers, a section or evaluator name).
        fn: what is called.
        requires: tag name -> value (see ``Tags.matches``), or a predicate on ``Tags``.
        accepts: an optional predicate on the data (e.g. a data set's ``meta``).
        order: entries are tried and shown in this order (lower first).
        info: anything else the caller reads (``streams`` for a writer, ...).
    """

    name: str
    fn: Callable[..., Any]
    requires: Mapping[str, Any] | Callable[[Tags], bool] | None = None
    accepts: Callable[[Any], bool] | None = None
    order: int = 100
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def applies(self, tags: Tags, data: Any = None) -> bool:
        if not tags.matches(self.requires):
            return False
        return self.accepts is None or bool(self.accepts(data))


class CapabilityRegistry(Registry):
    """A registry whose entries say which models they apply to (``requires``).

    Several entries may share a name (``.csv`` rows of numbers for any model, and a
    Bayesian network's labelled states): ``for_name`` gives the first that applies in
    ``order``. The modules named in ``populate`` are imported on first use, which is how
    the report finds sections that live in the families' and pipelines' own modules.
    """

    def __init__(self, kind: str, populate: tuple[str, ...] = ()):
        super().__init__(kind)
        self._entries: list[Entry] = []
        self._modules = list(populate)

    def add_module(self, module: str) -> None:
        """Import ``module`` (by name) when the registry is first used; a third-party
        family calls this (or simply registers on import)."""
        if module not in self._modules:
            self._modules.append(module)
            if self._populated:
                importlib.import_module(module)

    def _populate(self) -> None:
        if not self._populated:
            self._populated = True
            for mod in self._modules:
                importlib.import_module(mod)

    def register(self, name: str, *, requires: Mapping[str, Any] | Callable[[Tags], bool] | None = None,
                 accepts: Callable[[Any], bool] | None = None, order: int = 100,
                 aliases: tuple[str, ...] = (), **info: Any) -> Callable[[Any], Any]:
        """Decorator: register ``fn`` under ``name`` (and ``aliases``) for models whose
        tags meet ``requires`` (and data that ``accepts`` takes)."""
        if isinstance(requires, Mapping):
            unknown = set(requires) - TAG_NAMES
            if unknown:
                raise ValueError(f"{self.kind} {name!r}: requires unknown tag(s) {sorted(unknown)}")

        def deco(fn: Any) -> Any:
            for key in (name, *aliases):
                entry = Entry(key, fn, requires, accepts, order, dict(info))
                self._entries.append(entry)
                self._items.setdefault(key, entry)
            self._entries.sort(key=lambda e: e.order)
            return fn

        return deco

    def entries(self) -> list[Entry]:
        """Every entry, in ``order``."""
        self._populate()
        return list(self._entries)

    def applicable(self, tags: Tags, data: Any = None) -> list[Entry]:
        """The entries that apply to a model with ``tags`` (and ``data``), in order; one
        per name (the first that applies)."""
        seen: set[str] = set()
        out = []
        for e in self.entries():
            if e.name not in seen and e.applies(tags, data):
                seen.add(e.name)
                out.append(e)
        return out

    def for_name(self, name: str, tags: Tags, data: Any = None) -> Entry | None:
        """The first entry called ``name`` that applies (``None``: none does)."""
        for e in self.entries():
            if e.name == name and e.applies(tags, data):
                return e
        return None

    def get(self, name: str) -> Any:
        return super().get(name).fn

    def unregister(self, name: str, fn: Any = None) -> None:
        """Remove the entries called ``name`` (only the one for ``fn`` when given)."""
        self._entries = [e for e in self._entries if not (e.name == name and (fn is None or e.fn is fn))]
        first = next((e for e in self._entries if e.name == name), None)
        if first is None:
            self._items.pop(name, None)
        else:
            self._items[name] = first


#: sample file formats by suffix (``.png``, ``.npy``, ``.csv``, ``.txt``, ``.smi``,
#: ``.mid``, ``.wav``): ``fn(job)`` with a ``genlab.sample_io.SampleJob``
SAMPLE_WRITERS = CapabilityRegistry("sample writer", populate=(
    "genlab.sample_io", "genlab.models", "genlab.data.music_io", "genlab.pipelines.molecules"))
#: sections of ``report.html``: ``fn(ctx)`` with a ``genlab.report.html.ReportContext``
REPORT_SECTIONS = CapabilityRegistry("report section", populate=("genlab.report.html", "genlab.report.pgm",
                                                                  "genlab.report.diffusion",
                                                                  "genlab.report.text_to_image"))
#: what ``genlab evaluate`` runs: ``fn(run, model, splits, **options) -> record``
EVALUATORS = CapabilityRegistry("evaluator", populate=("genlab.evaluation.evaluate",
                                                       "genlab.evaluation.molecules",
                                                       "genlab.evaluation.text_to_image"))
