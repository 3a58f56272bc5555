"""Alias for one release: this module moved to ``genlab.data.music``; import from there
(or from ``genlab.pipelines.music``, which re-exports it)."""
from ..data.music import *  # noqa: F401,F403
