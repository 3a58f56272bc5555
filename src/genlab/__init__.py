"""genlab: generative AI end to end under one model contract.

    >>> import genlab
    >>> model = genlab.models.VAE(latent_dim=8).fit("digits")
    >>> x = model.sample(16)
    >>> model.save("my_vae"); same = genlab.load("my_vae")
"""
from __future__ import annotations

from ._version import __version__

from ._threads import apply_wait_policy as _apply_wait_policy

_apply_wait_policy()  # must run before torch is imported

from ._threads import set_threads  # noqa: E402
from .base import load  # noqa: E402
from .errors import (  # noqa: E402
    DataError, GenlabError, LogProbUnavailableError, ModelFormatError, NotFittedError,
    TrainingDivergedError,
)
from .registry import DATASETS, MODELS, PIPELINES  # noqa: E402


def list_models() -> list[str]:
    """Names of every registered model family."""
    return MODELS.names()


def list_datasets() -> list[str]:
    """Names of every registered dataset."""
    return DATASETS.names()


def __getattr__(name: str):  # lazy subpackages: genlab.models, genlab.data, ...
    import importlib

    if name in ("models", "data", "train", "metrics", "pipelines", "report", "runs", "nn", "evaluation",
                "workflow"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")


__all__ = [
    "__version__", "load", "set_threads", "list_models", "list_datasets", "MODELS",
    "DATASETS", "PIPELINES", "GenlabError", "DataError", "ModelFormatError",
    "NotFittedError", "TrainingDivergedError", "LogProbUnavailableError",
]
