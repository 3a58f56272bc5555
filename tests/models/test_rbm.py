"""RBM: AIS against the exact partition function, CD/PCD training, sampling, save/load."""
import itertools

import pytest
import torch

import genlab
from genlab.models.pgm import RBM

TRAIN = {"epochs": 3, "batch_size": 32, "lr": 0.05, "optimizer": "sgd", "progress": False, "seed": 0}


def exact_log_z(m):
    d = m.b.numel()
    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))
    return float(torch.logsumexp(-m.free_energy(v).detach().double(), 0))


def test_ais_matches_exact_log_partition():
    m = RBM(hidden=4, data_shape=(8,))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        m.W.copy_(torch.randn(8, 4, generator=g))
        m.b.copy_(torch.randn(8, generator=g) * 0.5)
        m.c.copy_(torch.randn(4, generator=g) * 0.5)
    est, se = m.ais_log_partition(betas=500, chains=200, generator=torch.Generator().manual_seed(1))
    assert abs(est - exact_log_z(m)) < 0.05


@pytest.mark.parametrize("persistent", [True, False])
def test_cd_training_improves_likelihood(digits_small, persistent):
    data = digits_small.binarize(0.5)
    m = RBM(hidden=16, persistent=persistent, n_chains=32, sample_steps=50, ais_betas=300, ais_chains=50)
    m.fit(data, {**TRAIN, "epochs": 1})
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    before = float(m.log_prob(data.x[:64], normalized=True, generator=g()).mean())
    m.fit(data, TRAIN)
    after = float(m.log_prob(data.x[:64], normalized=True, generator=g()).mean())
    assert after > before - 1.0 and after < 0
    s = m.sample(4, generator=g())
    assert s.shape == (4, 1, 8, 8) and torch.equal(s, m.sample(4, generator=g()))


def test_save_load(digits_small, tmp_path):
    m = RBM(hidden=8, sample_steps=20).fit(digits_small.binarize(0.5), {**TRAIN, "epochs": 1})
    m.save(tmp_path / "r")
    back = genlab.load(tmp_path / "r")
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(back.sample(2, generator=g()), m.sample(2, generator=g()))
    assert back.log_prob_kind == "unnormalized"
