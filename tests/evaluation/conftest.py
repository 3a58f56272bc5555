"""Fixtures of the evaluation tests: the session's caption judges (``shapes_judges``, in
tests/conftest.py) as ``$GENLAB_CACHE`` for a module."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def judge_cache(shapes_judges):
    """``$GENLAB_CACHE`` set to the session judges' cache root for one test module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(shapes_judges.root))
        yield shapes_judges.root
