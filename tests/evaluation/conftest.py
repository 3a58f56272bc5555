"""Fixtures of the evaluation tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def judge_cache(tmp_path_factory):
    """A fresh ``$GENLAB_CACHE`` for one test module (the caption judges' cache lives under
    it), so that a module's judges are trained once and reused by its tests alone."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("genlab-cache")
        mp.setenv("GENLAB_CACHE", str(root))
        yield root
