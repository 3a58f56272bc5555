"""Fixtures of the evaluation tests: caption judges trained once per session on a small
captioned-shapes split (a few seconds), in a cache folder of their own."""
from __future__ import annotations

import pytest

#: the split sizes and the recipe of the session's caption judges
SHAPES = {"n_train": 3000, "n_val": 300, "n_test": 500}
JUDGE_RECIPE = {"attribute_options": {"epochs": 4}, "image_text_options": {"epochs": 4}, "threads": 1}


@pytest.fixture(scope="session")
def shapes_judges(tmp_path_factory):
    """Judges trained on ``SHAPES`` with ``JUDGE_RECIPE`` into ``<root>/judges``: a namespace
    of ``root``, ``splits``, ``judges`` (``CaptionJudges``) and ``recipe``."""
    from types import SimpleNamespace

    from genlab.data.datasets import load_splits
    from genlab.evaluation.caption_judges import caption_judges

    root = tmp_path_factory.mktemp("genlab-cache")
    splits = load_splits("captioned-shapes", **SHAPES)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(root))
        judges = caption_judges(splits, progress=False, **JUDGE_RECIPE)
    return SimpleNamespace(root=root, splits=splits, judges=judges, recipe=dict(JUDGE_RECIPE))


@pytest.fixture(scope="module")
def judge_cache(shapes_judges):
    """``$GENLAB_CACHE`` set to the session judges' cache root for one test module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(shapes_judges.root))
        yield shapes_judges.root
