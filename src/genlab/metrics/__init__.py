"""Metrics: pure functions in ``functional`` plus small stateful classes."""
from . import functional

__all__ = ["functional"]
