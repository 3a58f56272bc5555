"""Exceptions users can catch. Each is also a builtin type (ValueError, ...) so code that
catches the builtin keeps working."""
from __future__ import annotations


class GenlabError(Exception):
    """Base class of every error genlab raises on purpose."""


class ModelFormatError(GenlabError, ValueError):
    """A folder or file is not a (readable) saved genlab model."""


class NotFittedError(GenlabError, RuntimeError):
    """A model was used before ``fit`` (or ``load``) gave it weights."""


class DataError(GenlabError, ValueError):
    """Input data is missing, unreadable, or has the wrong shape or values."""


class TrainingDivergedError(GenlabError, RuntimeError):
    """The loss became NaN or infinite during training."""


class LogProbUnavailableError(GenlabError, NotImplementedError):
    """The model defines no likelihood (``log_prob_kind == 'none'``)."""


class OutputExistsError(GenlabError, FileExistsError):
    """An output path holds files genlab did not write (or a run it may not replace):
    genlab never deletes or overwrites them."""


class UsageError(GenlabError):
    """A mistake in the command line (an unknown option, a bad value, a missing
    argument): ``genlab`` prints it as one line and exits with status 2."""
