"""Sample-quality metric functions against closed forms, brute-force references
(numpy/scipy/scikit-learn) and, when installed, torchmetrics on identical inputs."""
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance as ssd
import scipy.stats
import torch

import genlab.metrics as gm
from genlab.metrics import _manifold, functional as F


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _pair(n=400, f=16, shift=0.3, seed=0):
    g = _gen(seed)
    a = torch.randn(n, f, generator=g, dtype=torch.float64)
    mix = torch.randn(f, f, generator=g, dtype=torch.float64) / f ** 0.5
    b = (0.8 * a + 0.6 * torch.randn(n, f, generator=g, dtype=torch.float64)) @ mix + shift
    return a @ mix, b


class _Identity(torch.nn.Module):
    """The 'judge' handed to torchmetrics: returns the features unchanged."""

    def __init__(self, f):
        super().__init__()
        self.num_features = f

    def forward(self, x):
        return x


def _scipy_fid(a, b):
    a, b = a.numpy(), b.numpy()
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    d = a.mean(0) - b.mean(0)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# ----------------------------------------------------------------------------- FID
def test_fid_closed_form_population_statistics():
    # N(0, I) vs N(0.5, 4I) in 16 dims: 16 * 0.25 + 16 * (1 + 4 - 2 * 2) = 20
    d = F.frechet_distance(torch.zeros(16), torch.eye(16), torch.full((16,), 0.5),
                           4 * torch.eye(16))
    assert d == pytest.approx(20.0, abs=1e-10)


def test_fid_closed_form_large_samples():
    g = _gen(1)
    a = torch.randn(100_000, 16, generator=g, dtype=torch.float64)
    b = 0.5 + 2 * torch.randn(100_000, 16, generator=g, dtype=torch.float64)
    assert gm.fid(a, b) == pytest.approx(20.0, abs=0.3)


def test_fid_matches_scipy_sqrtm_reference():
    a, b = _pair()
    assert gm.fid(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-9)
    assert gm.fid(a, b) == pytest.approx(gm.fid(b, a), rel=1e-9)  # symmetric


def test_fid_identical_sets_is_exactly_zero_and_never_negative():
    a, b = _pair()
    assert gm.fid(a, a) == 0.0
    assert gm.fid(a.float(), a.float()) == 0.0
    near = gm.fid(a, a + 1e-13)  # rounding-level difference: clamped, not negative/NaN
    assert 0.0 <= near < 1e-9


@pytest.mark.parametrize("n1,n2", [(10, 12), (10, 500), (500, 10), (400, 500)])
def test_fid_fewer_samples_than_dimensions(n1, n2):
    # singular covariances: tr sqrt(S1 S2) = nuclear norm of A B^T with S1 = A^T A, S2 = B^T B;
    # both singular (eigh route), one singular (Cholesky of the other), neither (Cholesky)
    g = _gen(2)
    a = torch.randn(n1, 32, generator=g, dtype=torch.float64)
    b = torch.randn(n2, 32, generator=g, dtype=torch.float64) * 1.3 + 0.2
    ac, bc = (a - a.mean(0)) / (n1 - 1) ** 0.5, (b - b.mean(0)) / (n2 - 1) ** 0.5
    d = a.mean(0) - b.mean(0)
    ref = d @ d + (ac ** 2).sum() + (bc ** 2).sum() - 2 * torch.linalg.svdvals(ac @ bc.T).sum()
    v = gm.fid(a, b)
    # a singular covariance leaves zero eigenvalues of S1 S2 computed as +-eps, whose square
    # roots are ~1e-8 each (any method: the eigh route and scipy's sqrtm alike)
    rel = 1e-12 if min(n1, n2) > 32 else 1e-7
    assert math.isfinite(v) and v == pytest.approx(float(ref), rel=rel)


@pytest.mark.parametrize("width", [1, 63, 64, 255, 256, 301])
def test_fid_covariance_from_gram_panels_is_exact(width):
    # the Gram is summed over its upper column panels (1, 2 or 4 of them) and mirrored
    from genlab.metrics import _distribution as D

    x = torch.randn(700, width, generator=_gen(4), dtype=torch.float64) * 2 + 1
    mu, cov = D.gaussian_stats(x)
    assert torch.equal(cov, cov.T)
    torch.testing.assert_close(cov, torch.cov(x.T).reshape(width, width), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mu, x.mean(0), rtol=0, atol=0)


def test_fid_rejects_bad_input():
    a, b = _pair()
    with pytest.raises(ValueError, match="at least 2"):
        gm.fid(a[:1], b)
    with pytest.raises(ValueError, match="at least 2"):
        gm.fid(a, b[:1])
    bad = a.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite.*\[3\]"):
        gm.fid(bad, b)
    bad[3, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        gm.fid(a, bad)
    with pytest.raises(ValueError, match="width"):
        gm.fid(a, b[:, :5])
    with pytest.raises(ValueError, match="2-D"):
        gm.fid(a[0], b)


def test_fid_does_not_modify_inputs():
    a, b = _pair()
    a0, an = a.clone(), b.numpy().copy()
    gm.fid(a, b.numpy())
    assert torch.equal(a, a0) and np.array_equal(b.numpy(), an)


def test_fid_agrees_with_torchmetrics():
    tm = pytest.importorskip("torchmetrics.image.fid")
    a, b = _pair(n=600, f=64)
    ref = tm.FrechetInceptionDistance(feature=_Identity(64))
    ref.update(a, real=True)
    ref.update(b, real=False)
    assert gm.fid(a, b) == pytest.approx(float(ref.compute()), rel=1e-6)


# ----------------------------------------------------------------------------- KID
def _brute_mmd2(x, y):
    x, y = x.numpy(), y.numpy()
    k = lambda u, v: (u @ v / x.shape[1] + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)


def test_mmd2_unbiased_matches_brute_force():
    a, b = _pair(n=30, f=5)
    assert F.mmd2_unbiased(a, b[:25]) == pytest.approx(_brute_mmd2(a, b[:25]), rel=1e-10)


def test_kid_full_set_subset_equals_mmd2_and_is_seeded():
    a, b = _pair(n=200, f=8)
    mean, std = gm.kid(a, b, subsets=3, subset_size=200)
    assert mean == pytest.approx(F.mmd2_unbiased(a, b), rel=1e-12) and std < 1e-12
    r1 = gm.kid(a, b, subsets=5, subset_size=50, seed=3)
    assert r1 == gm.kid(a, b, subsets=5, subset_size=50, seed=3)
    assert r1 != gm.kid(a, b, subsets=5, subset_size=50, seed=4)
    assert r1[1] > 0


def test_kid_near_zero_for_same_distribution():
    g = _gen(3)
    a, b = (torch.randn(1500, 8, generator=g, dtype=torch.float64) for _ in range(2))
    same, same_std = gm.kid(a, b, subsets=10, subset_size=500)
    shifted, _ = gm.kid(a, b + 0.3, subsets=10, subset_size=500)
    assert abs(same) < 3 * same_std + 1e-3 and shifted > 30 * abs(same) + 0.1


def test_kid_subset_size_larger_than_data_warns_and_uses_all():
    a, b = _pair(n=60, f=4)
    with pytest.warns(UserWarning, match="exceeds the smaller set"):
        clamped = gm.kid(a, b[:40], subsets=2, subset_size=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the smaller set's size itself: no warning
        assert gm.kid(a, b[:40], subsets=2, subset_size=40) == clamped
    with pytest.raises(ValueError, match="subsets"):
        gm.kid(a, b, subsets=0)


def test_kid_agrees_with_torchmetrics():
    tm = pytest.importorskip("torchmetrics.image.kid")
    a, b = _pair(n=300, f=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tm.KernelInceptionDistance(feature=_Identity(32), subsets=1, subset_size=300)
    ref.update(a, real=True)
    ref.update(b, real=False)
    ref_mean, _ = ref.compute()  # one subset of all rows: permutation-invariant, deterministic
    assert gm.kid(a, b, subsets=1, subset_size=300)[0] == pytest.approx(float(ref_mean), rel=1e-6)


# ----------------------------------------------------------------------------- IS
def test_inception_score_closed_forms():
    k = 10
    onehot = torch.eye(k).repeat(100, 1)  # 1000 confident rows, classes evenly spread
    mean, std = gm.inception_score(onehot, splits=10)
    assert mean == pytest.approx(k, rel=1e-12) and std < 1e-12
    collapsed = torch.softmax(torch.randn(1, k, generator=_gen()), 1).repeat(500, 1)
    assert gm.inception_score(collapsed, splits=5) == pytest.approx((1.0, 0.0), abs=1e-12)


def test_inception_score_matches_scipy_reference():
    p = torch.softmax(2 * torch.randn(1000, 7, generator=_gen(4), dtype=torch.float64), 1)
    ref = []
    for part in np.array_split(p.numpy(), 4):  # sizes 250 each, contiguous
        marg = part.mean(0)
        ref.append(np.exp(np.mean([scipy.stats.entropy(row, marg) for row in part])))
    mean, std = gm.inception_score(p, splits=4)
    assert mean == pytest.approx(np.mean(ref), rel=1e-10)
    assert std == pytest.approx(np.std(ref), rel=1e-8)


def test_inception_score_logits_shuffle_and_errors():
    logits = 3 * torch.randn(300, 5, generator=_gen(5), dtype=torch.float64)
    probs = torch.softmax(logits, 1)
    assert gm.inception_score(logits, splits=3, from_logits=True) == pytest.approx(
        gm.inception_score(probs, splits=3), rel=1e-10)
    # one split is order independent; shuffling changes the split contents otherwise
    assert gm.inception_score(probs, splits=1, seed=1)[0] == pytest.approx(
        gm.inception_score(probs, splits=1)[0], rel=1e-12)
    shuffled = gm.inception_score(probs, splits=3, seed=1)
    assert shuffled == gm.inception_score(probs, splits=3, seed=1)
    assert shuffled != gm.inception_score(probs, splits=3)
    with pytest.raises(ValueError, match="summing to 1"):
        gm.inception_score(logits)
    with pytest.raises(ValueError, match="splits"):
        gm.inception_score(probs, splits=301)


def test_inception_score_agrees_with_torchmetrics():
    tm = pytest.importorskip("torchmetrics.image.inception")
    logits = 2 * torch.randn(400, 10, generator=_gen(6), dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tm.InceptionScore(feature=_Identity(10), splits=1)
        ref.update(logits)
        torch.manual_seed(0)  # torchmetrics shuffles with the global RNG; one split is
        ref_mean, _ = ref.compute()  # order independent
    assert gm.inception_score(logits, splits=1, from_logits=True)[0] == pytest.approx(
        float(ref_mean), rel=1e-6)


# ----------------------------------------------------------------------------- PRDC
def _brute_prdc(real, fake, k_pr, k_dc):
    """Definitions of Kynkäänniemi et al. 2019 / Naeem et al. 2020, open balls."""
    r, f = real.numpy(), fake.numpy()
    drr, dff, drf = ssd.cdist(r, r), ssd.cdist(f, f), ssd.cdist(r, f)
    rad = lambda d, k: np.sort(d, axis=1)[:, k]  # noqa: E731  (column 0 is the point itself)
    r_pr, r_dc, f_pr = rad(drr, k_pr), rad(drr, k_dc), rad(dff, k_pr)
    return {"precision": (drf < r_pr[:, None]).any(0).mean(),
            "recall": (drf < f_pr[None, :]).any(1).mean(),
            "density": (drf < r_dc[:, None]).sum(0).mean() / k_dc,
            "coverage": (drf.min(1) < r_dc).mean()}


def test_prdc_matches_brute_force_reference(monkeypatch):
    a, b = _pair(n=150, f=6, shift=0.2)
    ref = _brute_prdc(a, b[:120], 3, 5)
    assert gm.prdc(a, b[:120]) == pytest.approx(ref, abs=1e-12)
    monkeypatch.setattr(_manifold, "CHUNK", 7)  # chunk merging gives the same answer
    assert gm.prdc(a, b[:120]) == pytest.approx(ref, abs=1e-12)
    assert gm.prdc(a, b[:120], k_pr=2, k_dc=4) == pytest.approx(_brute_prdc(a, b[:120], 2, 4),
                                                                  abs=1e-12)


def test_prdc_radii_match_sklearn_neighbors():
    from sklearn.neighbors import NearestNeighbors

    a, _ = _pair(n=200, f=5)
    dist, _ = NearestNeighbors(n_neighbors=6).fit(a.numpy()).kneighbors(a.numpy())
    r3, r5 = _manifold._kth_column_radius(a, (3, 5))
    np.testing.assert_allclose(r3.sqrt().numpy(), dist[:, 3], rtol=1e-9)
    np.testing.assert_allclose(r5.sqrt().numpy(), dist[:, 5], rtol=1e-9)


def test_prdc_identical_sets_are_exactly_one_and_disjoint_sets_zero():
    a, _ = _pair(n=300, f=10)
    assert gm.prdc(a, a.clone()) == {"precision": 1.0, "recall": 1.0, "density": 1.0,
                                     "coverage": 1.0}
    far = gm.prdc(a, a + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_same_distribution_near_one():
    g = _gen(7)
    a, b = (torch.randn(1000, 8, generator=g, dtype=torch.float64) for _ in range(2))
    out = gm.prdc(a, b)
    assert out["precision"] > 0.8 and out["recall"] > 0.8 and out["coverage"] > 0.9
    assert 0.9 < out["density"] < 1.1
    half = gm.prdc(a, b[:, :] * 0.3)  # fake squeezed into the middle: recall drops
    assert half["recall"] < out["recall"] - 0.3 and half["precision"] > 0.95


def test_prdc_needs_more_samples_than_k():
    a, b = _pair(n=5, f=3)
    with pytest.raises(ValueError, match="more than k"):
        gm.prdc(a, b)


# ----------------------------------------------------------------------------- modes
def test_mode_coverage_counts_kl_and_confidence():
    probs = torch.tensor([[0.95, 0.05, 0, 0], [0.92, 0.08, 0, 0], [0.1, 0.9, 0, 0],
                          [0.2, 0.3, 0.5, 0.0]], dtype=torch.float64)
    out = gm.mode_coverage(probs)  # reference uniform over 4 classes
    assert out["classes_found"] == 3 and out["num_classes"] == 4 and out["min_count"] == 1
    assert out["counts"] == [2, 1, 1, 0]
    assert out["confident_share"] == pytest.approx(3 / 4)
    p = np.array([0.5, 0.25, 0.25, 0.0])
    assert out["kl"] == pytest.approx(scipy.stats.entropy(p, np.full(4, 0.25)), rel=1e-9)
    # against a real histogram given as labels, then as probabilities
    labels = torch.tensor([0, 0, 1, 2, 3, 3])
    q = np.array([2, 1, 1, 2]) / 6
    assert gm.mode_coverage(probs, labels)["kl"] == pytest.approx(scipy.stats.entropy(p, q),
                                                                  rel=1e-9)
    assert gm.mode_coverage(probs, torch.eye(4)[labels])["kl"] == pytest.approx(
        scipy.stats.entropy(p, q), rel=1e-9)
    assert gm.mode_coverage(probs, min_count=2)["classes_found"] == 1


def test_mode_coverage_default_min_count_and_errors():
    k, n = 10, 5000
    labels = torch.arange(n) % k
    probs = torch.eye(k)[labels]
    out = gm.mode_coverage(probs)  # min_count = 1% of the 500 a uniform model gives a class
    assert out["min_count"] == 5 and out["classes_found"] == 10 and out["confident_share"] == 1
    few = torch.eye(k)[torch.cat([torch.zeros(n - 3, dtype=torch.long), torch.tensor([1, 1, 2])])]
    assert gm.mode_coverage(few)["classes_found"] == 1  # 2 and 1 samples are below 5
    with pytest.raises(ValueError, match="labels must lie"):
        gm.mode_coverage(probs, torch.tensor([0, 11]))


def test_toy_mode_metrics_on_exact_and_collapsed_samples():
    from genlab.data.toy import grid_centers, grid_of_gaussians

    x = grid_of_gaussians(20000, generator=_gen(8))
    out = gm.toy_mode_metrics(x, "grid25")
    assert out["modes_covered"] == 25 and out["num_modes"] == 25
    assert out["high_quality_share"] == pytest.approx(1 - math.exp(-4.5), abs=0.004)
    c = grid_centers()
    collapsed = c[7] + 0.01 * torch.randn(500, 2, generator=_gen(9), dtype=torch.float64)
    out = gm.toy_mode_metrics(collapsed, c, std=0.05)
    assert out["modes_covered"] == 1 and out["high_quality_share"] == 1.0
    assert out["counts"][7] == 500
    between = (c[0] + c[1]) / 2 + torch.zeros(10, 2, dtype=torch.float64)
    assert gm.toy_mode_metrics(between, c, std=0.05)["modes_covered"] == 0
    assert gm.toy_mode_metrics(collapsed[:3], c, std=0.05, min_count=4)["modes_covered"] == 0
    with pytest.raises(ValueError, match="std"):
        gm.toy_mode_metrics(x, c)


def test_toy_mode_metrics_matches_brute_force():
    pts = torch.tensor([[2.0, 0.05], [2.0, 0.07], [0.0, 2.0], [1.0, 1.0], [-2.03, 0.0]])
    c = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0]])
    out = gm.toy_mode_metrics(pts, c, std=0.02)  # radius 0.06: strict
    assert out["counts"] == [1, 1, 1] and out["high_quality_share"] == pytest.approx(3 / 5)


# ----------------------------------------------------------------------------- memorisation
def test_memorization_flags_copies_and_not_fresh_samples():
    g = _gen(10)
    train = torch.randn(500, 6, generator=g, dtype=torch.float64)
    test = torch.randn(200, 6, generator=g, dtype=torch.float64)
    fresh = torch.randn(300, 6, generator=g, dtype=torch.float64)
    copies = train[[5, 17, 42]] + torch.tensor([1e-7, 2e-7, 3e-7], dtype=torch.float64)[:, None]
    out = gm.memorization(torch.cat([fresh, copies]), train, test)
    assert [c[:2] for c in out["closest"][:3]] == [(300, 5), (301, 17), (302, 42)]
    assert out["closest"][0][2] == pytest.approx(6 ** 0.5 * 1e-7, rel=1e-6)
    assert out["near_copy_share"] < 0.05 + 0.05 and out["baseline_share"] == pytest.approx(
        0.05, abs=0.01)
    assert 0.8 < gm.memorization(fresh, train, test)["median_ratio"] < 1.25
    copied = gm.memorization(train[:100] + 1e-6, train, test, ratio=0.1)
    assert copied["near_copy_share"] == 1.0 and copied["median_ratio"] < 1e-4
    assert copied["threshold"] == pytest.approx(0.1 * copied["median_test_distance"])
    with pytest.raises(ValueError, match="quantile"):
        gm.memorization(fresh, train, test, quantile=1.5)


def test_diversity_matches_scipy_pdist_and_subsets_by_seed():
    a, _ = _pair(n=120, f=7)
    assert gm.diversity(a) == pytest.approx(ssd.pdist(a.numpy()).mean(), rel=1e-10)
    assert gm.diversity(torch.ones(10, 3)) == 0.0
    sub = gm.diversity(a, max_samples=50, seed=1)
    idx = torch.randperm(120, generator=torch.Generator().manual_seed(1))[:50]
    assert sub == pytest.approx(ssd.pdist(a[idx].numpy()).mean(), rel=1e-10)
    assert sub == gm.diversity(a, max_samples=50, seed=1) != gm.diversity(a, max_samples=50,
                                                                          seed=2)


# ----------------------------------------------------------------------------- likelihood
def test_nll_and_bits_per_dim():
    d = 784
    lp = torch.full((5,), -d * math.log(2))  # each dimension costs exactly one bit
    assert gm.nll_nats(lp) == pytest.approx(d * math.log(2))
    assert gm.bits_per_dim(lp, d) == pytest.approx(1.0)
    assert gm.bits_per_dim(lp, d, levels=256) == pytest.approx(9.0)  # + log2(256)
    with pytest.raises(ValueError, match="NaN"):
        gm.nll_nats(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="dim"):
        gm.bits_per_dim(lp, 0)


def test_public_names():
    assert gm.fid is F.fid and gm.prdc is F.prdc and gm.kid is F.kid
    assert callable(F.psnr) and callable(F.roc_auc)  # the older functions stay
    for name in gm.__all__:
        assert hasattr(gm, name), name
