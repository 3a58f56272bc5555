"""Shared test set-up: passive OpenMP waiting (see genlab._threads) and small data."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

import genlab  # noqa: E402,F401


@pytest.fixture(scope="session")
def digits_splits():
    from genlab.data.datasets import load_splits

    return load_splits("digits")


@pytest.fixture(scope="session")
def digits_small(digits_splits):
    """256 training digits: enough to train a few steps quickly."""
    return digits_splits["train"].subset(slice(0, 256))


@pytest.fixture(scope="session")
def shapes_small():
    """256 captioned 16x16 shapes (images, caption ids in ``text``, attributes)."""
    from genlab.data import load_splits

    return load_splits("captioned-shapes", n_train=256, n_val=32, n_test=32)["train"]


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def text_small():
    """Token windows (N, 17) of a tiny embedded corpus, for the sequence models."""
    from genlab.data.text import text_splits

    corpus = ("the quick brown fox jumps over the lazy dog.\n" * 3 + "a stitch in time saves nine.\n") * 8
    return text_splits(corpus, block_size=16)["train"]


@pytest.fixture(scope="session")
def saved_vae(tmp_path_factory, digits_splits):
    """A tiny trained VAE saved to a folder (read-only use: copy it before damaging it)."""
    from genlab.models import VAE

    d = tmp_path_factory.mktemp("saved") / "vae"
    VAE(hidden=(16,), latent_dim=2).fit(digits_splits["train"].subset(slice(0, 64)),
                                        {"epochs": 1, "progress": False}).save(d)
    return d


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
