"""Alias for one release: this module moved to ``genlab.metrics.music``; import from there
(or from ``genlab.pipelines.music``, which re-exports it)."""
from ..metrics.music import *  # noqa: F401,F403
