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
    assert "exp(log_prob) sums to 1" in passed  # over all 256 joint states of asia
    passed = check_model(genlab.models.LSTM(hidden=8, layers=1), text_small, train=TRAIN)
    assert "log_prob refuses unknown options" in passed
    assert "exp(log_prob) sums to 1" in passed  # over every 2-token continuation


def test_tiny_spaces():
    from genlab.models.pgm import read_bif
    from genlab.testing import tiny_space

    bn = read_bif("alarm")  # 37 columns: too many to enumerate, so the leading ones, the rest summed out
    table = bn.decode(bn.sample(5, generator=0))
    rows, what = tiny_space(bn, table, bn.tags)
    assert rows.shape[1] == 37 and 1 < len(rows) <= 4096 and (rows[:, -1] == -1).all()
    assert "summed out" in what
    assert abs(float(torch.logsumexp(bn.log_prob(rows), 0))) < 1e-9


class Unnormalised(GenerativeModel):
    """A coin whose "exact" log-probabilities sum to 1.2."""

    model_type = "coin"
    log_prob_kind = "exact"
    declared_tags = {"modality": "discrete-table", "sample_shape": (1,)}

    def fit(self, data, train=None):
        self.fitted = True
        return self

    def sample(self, n, *, generator=None):
        return torch.randint(0, 2, (n, 1), generator=generator)

    def log_prob(self, x):
        return torch.full((len(x),), 0.6, dtype=torch.float64).log()

    def _saved_tensors(self):
        return {}


def test_an_exact_model_that_does_not_normalise_is_named():
    with pytest.raises(AssertionError) as e:
        check_model(Unnormalised(), torch.zeros(10, 1, dtype=torch.long), space=torch.tensor([[0], [1]]))
    assert "exp(log_prob) sums to 1: over the given space it sums to 1.20000000" in str(e.value)


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
