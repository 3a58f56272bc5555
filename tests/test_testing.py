"""genlab.testing.check_model: the contract as a check third-party families can run; it
passes on the shipped families and names what a broken family gets wrong."""
import pytest
import torch

import genlab
from genlab.base import GenerativeModel
from genlab.testing import check_model

TRAIN = {"epochs": 1, "max_steps": 3, "batch_size": 64, "progress": False, "seed": 0}


@pytest.fixture(scope="module")
def asia_table():
    from genlab.models.pgm import read_bif

    bn = read_bif("asia")
    return bn.decode(bn.sample(300, generator=0))


def test_passes_on_a_vae_and_checks_the_iwae_bound(digits_small):
    passed = check_model(genlab.models.VAE(hidden=(16,), latent_dim=2, likelihood="gaussian"), digits_small,
                         train=TRAIN)
    assert "IWAE bound tightens with k" in passed and "loaded model samples the same" in passed


def test_passes_on_a_conditional_gan(digits_small):
    passed = check_model(genlab.models.GAN(arch="mlp", hidden=(16,), latent_dim=4, num_classes=-1),
                         digits_small, train=TRAIN)
    assert "sample honours y" in passed and "log_prob refused" in passed


def test_passes_on_a_bayesian_network_and_a_language_model(asia_table, text_small):
    passed = check_model(genlab.MODELS.get("bayesnet")(), asia_table)
    assert "loaded model scores the same" in passed and "log_prob float64" in passed
    passed = check_model(genlab.models.LSTM(hidden=8, layers=1), text_small, train=TRAIN)
    assert "log_prob refuses unknown options" in passed


class Sloppy(GenerativeModel):
    """Breaks the contract: ignores the generator, returns float32 log-probs, has a
    reconstruct() its tags do not declare, and is not registered (so it cannot load)."""

    model_type = "sloppy"
    log_prob_kind = "exact"
    declared_tags = {"modality": "table", "sample_shape": (2,)}

    def fit(self, data, train=None):
        self.fitted = True
        return self

    def sample(self, n, *, generator=None):
        return torch.randn(n, 2)  # the generator is ignored

    def log_prob(self, x):
        return torch.zeros(len(x))  # float32, not float64

    def reconstruct(self, x):
        return x

    def _saved_tensors(self):
        return {}


def test_names_every_broken_promise():
    with pytest.raises(AssertionError) as e:
        check_model(Sloppy(), torch.randn(10, 2))
    msg = str(e.value)
    assert "Sloppy breaks the genlab contract" in msg
    for broken in ("tag reconstruction", "sample is seeded", "log_prob float64", "save and load"):
        assert broken in msg, msg
