"""Pairwise MRFs: exact log Z vs brute force, loopy BP (exact on trees), block Gibbs vs
exact marginals, pseudo-likelihood recovery, denoising PSNR gain, textures, save/load."""
import itertools

import numpy as np
import torch

import genlab
from genlab.models.pgm import GridMRF, PairwiseGraph
from genlab.models.pgm.mrf_model import psnr, sample_texture


def brute(g):
    xs = np.array(list(itertools.product(range(g.k), repeat=g.n)))
    lp = g.log_potential(xs)
    m = lp.max()
    z = np.exp(lp - m).sum()
    p = np.exp(lp - m) / z
    marg = np.stack([np.bincount(xs[:, i], weights=p, minlength=g.k) for i in range(g.n)])
    return m + np.log(z), marg


def random_graph(rng, n=7, k=3, edges=None):
    edges = edges if edges is not None else [(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.4]
    return PairwiseGraph(rng.normal(size=(n, k)), np.array(edges), rng.normal(size=(len(edges), k, k)))


def test_log_partition_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(3):
        g = random_graph(rng)
        assert np.isclose(g.log_partition(), brute(g)[0], atol=1e-9)
    g = PairwiseGraph.ising(3, 4, 0.7, 0.2)
    assert np.isclose(g.log_partition(), brute(g)[0], atol=1e-9)


def test_loopy_bp_is_exact_on_trees_and_close_on_loops():
    rng = np.random.default_rng(1)
    tree = random_graph(rng, edges=[(0, 1), (1, 2), (1, 3), (3, 4), (4, 5), (2, 6)])
    bel, _ = tree.loopy_bp(tol=1e-12, damping=0.0)
    assert np.abs(bel - brute(tree)[1]).max() < 1e-9
    g = PairwiseGraph.ising(3, 3, 0.3, 0.1)
    bel, _ = g.loopy_bp()
    assert np.abs(bel - brute(g)[1]).max() < 0.02


def test_block_gibbs_matches_exact_marginals():
    g = PairwiseGraph.ising(3, 3, 0.4, 0.3)
    assert len(g.blocks()) == 2  # checkerboard
    x = g.gibbs(4000, 30, np.random.default_rng(0))
    emp = np.stack([np.bincount(x[:, i], minlength=2) / len(x) for i in range(g.n)])
    assert np.abs(emp - brute(g)[1]).max() < 0.03


def stripes(n=40, h=12, w=12, seed=0):
    rng = np.random.default_rng(seed)
    rows = (rng.random((n, h, 1)) < 0.5).repeat(w, 2)  # horizontal stripes
    flip = rng.random((n, h, w)) < 0.03
    return (rows ^ flip).astype(np.float32)[:, None]


def test_pseudo_likelihood_learns_anisotropy_and_textures():
    m = GridMRF(max_iter=50).fit(stripes())
    w = m.weights_
    agree = lambda t: t[0, 0] + t[1, 1] - t[0, 1] - t[1, 0]  # noqa: E731
    assert agree(w[0]) > 2 and agree(w[0]) > agree(w[1]) + 1  # horizontal coupling dominates
    tex = sample_texture(m, 16, 16, sweeps=100, generator=0)
    assert (tex[:, 1:] == tex[:, :-1]).mean() > (tex[1:] == tex[:-1]).mean()


def test_denoising_gains_psnr():
    rng = np.random.default_rng(0)
    clean = np.zeros((1, 24, 24), dtype=np.int64)
    clean[0, 4:16, 5:19] = 1
    clean[0, 12:22, 12:22] = 1
    noisy = np.where(rng.random(clean.shape) < 0.1, 1 - clean, clean)
    m = GridMRF()
    m.config = m.config.replace(data_shape=(1, 24, 24))
    m.bias_, m.weights_ = np.zeros(2), np.stack([np.eye(2) * 1.5] * 2)
    for method in ("gibbs", "lbp"):
        den = m.denoise(noisy, 0.1, generator=0, method=method)
        assert psnr(clean, den) > psnr(clean, noisy) + 3, method


def test_model_contract_bits(tmp_path):
    data = stripes(n=20, h=6, w=6)
    m = GridMRF(max_iter=20, gibbs_sweeps=20).fit(data)
    assert m.log_prob_kind == "unnormalized"
    lp = m.log_prob(data[:4], normalized=True)
    assert lp.shape == (4,) and (lp < 0).all()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    s = m.sample(3, generator=g())
    assert s.shape == (3, 1, 6, 6) and torch.equal(s, m.sample(3, generator=g()))
    m.save(tmp_path / "m")
    back = genlab.load(tmp_path / "m")
    assert back.config == m.config and torch.equal(back.sample(3, generator=g()), s)
    assert np.isfinite(m.evaluate(data)["nll_nats"])
