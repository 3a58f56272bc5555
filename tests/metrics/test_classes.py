"""Metric classes: streaming equals the pure functions, results do not depend on how the
data was batched, every result names its feature space, reset clears."""
import warnings

import pytest
import torch

import genlab.metrics as gm


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _pair(n=2500, f=12, seed=0, offset=0.0):
    g = _gen(seed)
    a = torch.randn(n, f, generator=g, dtype=torch.float64) + offset
    b = 1.1 * torch.randn(n, f, generator=g, dtype=torch.float64) + 0.2 + offset
    return a, b


def _feed(metric, x, sizes, **kw):
    lo = 0
    for s in sizes:
        metric.update(x[lo:lo + s], **kw)
        lo += s
    if lo < len(x):
        metric.update(x[lo:], **kw)


CHUNKINGS = [[2500], [1, 2, 1021, 3], [7] * 300, [1024, 1024, 1]]


def test_fid_streaming_is_bit_identical_for_any_batching_and_matches_function():
    a, b = _pair()
    results = []
    for sizes in CHUNKINGS:
        m = gm.FID(feature_space="judge-x")
        _feed(m, a, sizes, real=True)
        _feed(m, b, list(reversed(sizes)), real=False)
        results.append(m.compute())
    assert all(r == results[0] for r in results)  # bit for bit
    out = results[0]
    assert out["feature_space"] == "judge-x" and out["n_real"] == out["n_fake"] == 2500
    assert out["fid"] == pytest.approx(gm.fid(a, b), rel=1e-10)
    assert gm.FID.higher_is_better == {"fid": False}


def test_fid_streaming_wide_features_bit_identical_and_equal_to_function():
    # 300 features: 4 Gram panels (not 64-byte aligned), blocks taken without copies
    g = _gen(5)
    a = torch.randn(2100, 300, generator=g, dtype=torch.float64)
    b = 0.8 * torch.randn(2100, 300, generator=g, dtype=torch.float64) + 0.1
    results = []
    for sizes in ([2100], [1, 1030, 3, 1066], [300] * 7):
        m = gm.FID()
        _feed(m, a.float() if sizes == [2100] else a, sizes, real=True)  # a float32 copy too
        _feed(m, b, sizes, real=False)
        results.append(m.compute()["fid"])
    assert results[1] == results[2]
    assert results[1] == pytest.approx(gm.fid(a, b), rel=1e-10)
    assert results[0] == pytest.approx(gm.fid(a.float(), b), rel=1e-10)


def test_fid_streaming_is_accurate_with_a_large_feature_mean():
    # shifted sums: no cancellation in sum(x x^T) - n mu mu^T when |mean| >> spread
    a, b = _pair(n=3000, f=6, offset=1e5)
    m = gm.FID()
    _feed(m, a, [100] * 30, real=True)
    _feed(m, b, [1000] * 3, real=False)
    assert m.compute()["fid"] == pytest.approx(gm.fid(a - 1e5, b - 1e5), rel=1e-6)


def test_fid_identical_sets_zero_and_errors():
    a, _ = _pair(n=50)
    m = gm.FID()
    m.update(a, real=True)
    m.update(a, real=False)
    assert m.compute()["fid"] == 0.0
    m.reset()
    m.update(a[:1], real=True)
    m.update(a, real=False)
    with pytest.raises(ValueError, match="at least 2 samples"):
        m.compute()
    with pytest.raises(ValueError, match="width"):
        m.update(a[:, :3], real=True)
    with pytest.raises(ValueError, match="NaN"):
        m.update(torch.full((2, 12), float("nan")), real=False)


def test_fid_reset_keep_real():
    a, b = _pair(n=200)
    m = gm.FID()
    m.update(a, real=True)
    m.update(b, real=False)
    first = m.compute()["fid"]
    m.reset(keep_real=True)
    with pytest.raises(ValueError):
        m.compute()  # no fake rows any more
    m.update(b, real=False)
    assert m.compute()["fid"] == first
    m.reset()
    m.update(b, real=False)
    with pytest.raises(ValueError):
        m.compute()


def test_fid_class_agrees_with_torchmetrics():
    tm = pytest.importorskip("torchmetrics.image.fid")

    class Identity(torch.nn.Module):
        num_features = 12

        def forward(self, x):
            return x

    a, b = _pair(n=700)
    ref = tm.FrechetInceptionDistance(feature=Identity())
    m = gm.FID()
    for lo in range(0, 700, 128):
        ref.update(a[lo:lo + 128], real=True)
        ref.update(b[lo:lo + 128], real=False)
        m.update(a[lo:lo + 128], real=True)
        m.update(b[lo:lo + 128], real=False)
    assert m.compute()["fid"] == pytest.approx(float(ref.compute()), rel=1e-6)


def test_kid_class_matches_function_for_any_batching():
    a, b = _pair(n=300, f=5)
    kw = dict(subsets=4, subset_size=100, seed=2)
    want = gm.kid(a, b, **kw)
    for sizes in ([300], [1, 50, 249], [7] * 43):
        m = gm.KID(feature_space="f", **kw)
        _feed(m, a, sizes, real=True)
        _feed(m, b, sizes, real=False)
        out = m.compute()
        assert (out["kid_mean"], out["kid_std"]) == want
        assert out["feature_space"] == "f" and out["subset_size"] == 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = gm.KID(subset_size=1000)
        m.update(a, real=True)
        m.update(b[:50], real=False)
        assert m.compute()["subset_size"] == 50


def test_inception_score_class():
    logits = 2 * torch.randn(500, 8, generator=_gen(3), dtype=torch.float64)
    m = gm.InceptionScore(feature_space="digits-cnn", splits=5, from_logits=True)
    _feed(m, logits, [3, 100, 250])
    out = m.compute()
    assert (out["is_mean"], out["is_std"]) == gm.inception_score(logits, splits=5,
                                                                 from_logits=True)
    assert out["feature_space"] == "digits-cnn" and out["n"] == 500
    assert gm.InceptionScore.higher_is_better == {"is_mean": True}
    m.reset()
    with pytest.raises(ValueError, match="nothing was passed"):
        m.compute()


def test_precision_recall_class():
    a, b = _pair(n=400, f=6)
    m = gm.PrecisionRecall(feature_space="pix", k_pr=3, k_dc=5)
    _feed(m, a, [13] * 30, real=True)
    _feed(m, b, [400], real=False)
    out = m.compute()
    want = gm.prdc(a, b)
    assert {k: out[k] for k in want} == want and out["feature_space"] == "pix"
    assert all(gm.PrecisionRecall.higher_is_better.values())


def test_mode_coverage_class_streams_histograms():
    g = _gen(4)
    probs = torch.softmax(4 * torch.randn(900, 6, generator=g, dtype=torch.float64), 1)
    real = torch.randint(0, 6, (300,), generator=g)
    want = gm.mode_coverage(probs, real)
    m = gm.ModeCoverage(feature_space="judge")
    _feed(m, probs, [1, 400, 99])
    m.update(real[:100], real=True)
    m.update(torch.eye(6, dtype=torch.float64)[real[100:]], real=True)  # probabilities too
    out = m.compute()
    assert out["counts"] == want["counts"] and out["feature_space"] == "judge"
    scalars = {k: v for k, v in want.items() if k != "counts"}
    assert {k: out[k] for k in scalars} == pytest.approx(scalars)
    assert gm.ModeCoverage.higher_is_better["kl"] is False
    with pytest.raises(ValueError, match="classes"):
        m.update(probs[:, :4])


def test_mode_coverage_real_labels_missing_top_classes():
    probs = torch.eye(4, dtype=torch.float64)[torch.tensor([0, 1, 2, 3])]
    m = gm.ModeCoverage()
    m.update(torch.tensor([0, 1, 1]), real=True)  # classes 2, 3 absent from real labels
    m.update(probs)
    assert m.compute()["kl"] > 10  # large but finite: smoothed histogram


def test_memorization_class():
    g = _gen(5)
    train, test = torch.randn(300, 4, generator=g), torch.randn(100, 4, generator=g)
    fake = torch.cat([torch.randn(50, 4, generator=g), train[:5]])
    m = gm.Memorization(feature_space="raw", quantile=0.05)
    _feed(m, train, [100, 200], which="train")
    m.update(test, "test")
    _feed(m, fake, [20, 35], which="fake")
    out = m.compute()
    want = gm.memorization(fake, train, test)
    assert {k: out[k] for k in want} == want
    assert out["n_fake"] == 55 and out["feature_space"] == "raw"
    assert [c[1] for c in out["closest"][:5]] == sorted(c[1] for c in out["closest"][:5])
    with pytest.raises(ValueError, match="which"):
        m.update(test, "val")


def test_diversity_class_and_reset():
    a, _ = _pair(n=3000, f=4)
    m = gm.Diversity(feature_space="f", max_samples=500, seed=1)
    _feed(m, a, [1000, 999])
    out = m.compute()
    assert out["diversity"] == gm.diversity(a, max_samples=500, seed=1)
    assert out["n"] == 3000 and out["feature_space"] == "f"
    m.reset()
    with pytest.raises(ValueError):
        m.compute()


def test_every_class_has_feature_space_default_and_direction():
    for cls in (gm.FID, gm.KID, gm.InceptionScore, gm.PrecisionRecall, gm.ModeCoverage,
                gm.Memorization, gm.Diversity):
        m = cls()
        assert m.feature_space == "unknown" and isinstance(cls.higher_is_better, dict)
        assert cls.higher_is_better and "unknown" in repr(m)
