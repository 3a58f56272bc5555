"""Perceptual Path Length against closed forms on linear 'decoders'."""
import numpy as np
import pytest
import torch

import genlab
from genlab.capabilities import Tags
from genlab.metrics.ppl import lerp, perceptual_path_length, slerp


class Linear:
    """decode(z) = z @ A.T in float64: PPL along lerp paths is ||A (z1 - z0)||^2 exactly."""

    tags = Tags(latent=True)

    def __init__(self, a):
        self.a = a

    def eval(self):
        return self

    def sample_latent(self, n, *, generator=None):
        return torch.randn(n, self.a.shape[1], generator=generator, dtype=torch.float64)

    def decode(self, z):
        return z @ self.a.T


def test_lerp_ppl_matches_the_closed_form():
    a = torch.eye(3, dtype=torch.float64) * 2.0
    res = perceptual_path_length(Linear(a), lambda x: x, n=4000, interpolation="lerp", eps=1e-3,
                                 generator=torch.Generator().manual_seed(0))
    # d = ||2 (z1 - z0)||^2 = 4 * chi^2_3 * 2 -> mean 24 before the 1-99 % trim (trim lowers it a bit)
    g = torch.Generator().manual_seed(0)
    d = []
    for _ in range(16):  # replay the same draws: z0, z1, t per batch of 250
        z0, z1 = torch.randn(250, 3, generator=g, dtype=torch.float64), torch.randn(250, 3, generator=g, dtype=torch.float64)
        torch.rand(250, 1, generator=g, dtype=torch.float64)
        d.append((2 * (z1 - z0)).pow(2).sum(1))
    d = torch.cat(d)
    lo, hi = torch.quantile(d, 0.01), torch.quantile(d, 0.99)
    assert res["ppl_median"] == pytest.approx(float(np.median(d.numpy())), rel=1e-9)
    assert 20 < res["ppl"] < 24 and res["n"] == 4000
    assert float(d[(d >= lo) & (d <= hi)].mean()) == pytest.approx(res["ppl"], rel=1e-3)


def test_slerp_and_lerp_endpoints():
    a, b = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    for f in (slerp, lerp):
        assert torch.allclose(f(a, b, torch.zeros(5, 1, dtype=torch.float64)), a)
        assert torch.allclose(f(a, b, torch.ones(5, 1, dtype=torch.float64)), b)


def test_ppl_on_a_real_vae_is_reproducible_and_named(digits_small):
    m = genlab.models.VAE(hidden=(32, 16), latent_dim=4).fit(digits_small, {"epochs": 2, "progress": False})
    f = lambda x: x.flatten(1)  # noqa: E731
    r1 = perceptual_path_length(m, f, n=64, generator=torch.Generator().manual_seed(1), feature_space="pixels")
    r2 = perceptual_path_length(m, f, n=64, generator=torch.Generator().manual_seed(1), feature_space="pixels")
    assert r1 == r2 and r1["feature_space"] == "pixels" and r1["ppl"] > 0


def test_ppl_needs_a_latent_space():
    with pytest.raises(ValueError, match="no latent space"):
        perceptual_path_length(genlab.models.LSTM(), lambda x: x)
    with pytest.raises(ValueError, match="not a genlab model"):
        perceptual_path_length(object(), lambda x: x)
