"""Style-transfer measures (metrics/_style.py) against closed forms, scikit-image and scipy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.metrics import functional as F


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_gram_is_the_feature_inner_products_over_positions():
    f = _rand(2, 3, 4, 5)
    g = F.gram(f)
    ref = np.einsum("bchw,bdhw->bcd", f.numpy(), f.numpy()) / 20
    np.testing.assert_allclose(g.numpy(), ref, rtol=1e-6)
    # a permutation of the positions leaves the Gram statistics unchanged
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    shuffled = f.flatten(2)[:, :, perm].reshape(f.shape)
    assert torch.allclose(F.gram(shuffled), g, atol=1e-6)


def test_gram_distance_is_relative_and_averaged_over_layers():
    t = {"a": _rand(1, 2, 3, 3, seed=1), "b": _rand(1, 4, 2, 2, seed=2)}
    same = {k: v.expand(3, -1, -1, -1) for k, v in t.items()}
    assert torch.allclose(F.gram_distance(same, t), torch.zeros(3, dtype=torch.float64))
    # doubling the features quadruples the Gram: distance ||4G - G|| / ||G|| = 3 on each layer
    doubled = {k: 2 * v for k, v in t.items()}
    assert torch.allclose(F.gram_distance(doubled, t), torch.tensor([3.0], dtype=torch.float64))
    # one layer only
    only_a = F.gram_distance({"a": 2 * t["a"], "b": t["b"]}, t, layers=["a"])
    assert torch.allclose(only_a, torch.tensor([3.0], dtype=torch.float64))
    assert torch.allclose(F.gram_distance({"a": 2 * t["a"], "b": t["b"]}, t), torch.tensor([1.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="missing"):
        F.gram_distance({"a": t["a"]}, t, layers=["b"])


def test_content_distance_closed_form():
    c = _rand(2, 3, 4, 4)
    x = c * 1.5
    assert torch.allclose(F.content_distance(x, c), torch.full((2,), 0.25, dtype=torch.float64))
    with pytest.raises(ValueError, match="shapes differ"):
        F.content_distance(x[:, :2], c)


def test_yiq_and_luminance_match_scikit_image():
    skcolor = pytest.importorskip("skimage.color")
    x = _rand(2, 3, 5, 6, seed=3)
    ours = F.rgb_to_yiq(x.double()).permute(0, 2, 3, 1).numpy()
    ref = skcolor.rgb2yiq(x.double().permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    np.testing.assert_allclose(F.yiq_to_rgb(F.rgb_to_yiq(x.double())).numpy(), x.double().numpy(), atol=1e-12)
    np.testing.assert_allclose(F.luminance(x.double())[:, 0].numpy(), ref[..., 0], atol=1e-12)


def test_preserve_colour_keeps_the_contents_chroma_and_the_stylised_luminance():
    content, stylised = _rand(1, 3, 8, 8, seed=4) * 0.5 + 0.25, _rand(1, 3, 8, 8, seed=5) * 0.5 + 0.25
    out = F.preserve_colour(stylised, content)
    yiq_out, yiq_c, yiq_s = (F.rgb_to_yiq(t.double()) for t in (out, content, stylised))
    inside = ((out > 0) & (out < 1)).all(1, keepdim=True).expand_as(yiq_out)  # where nothing was clipped
    assert torch.allclose(yiq_out[:, :1][inside[:, :1]], yiq_s[:, :1][inside[:, :1]], atol=1e-5)
    assert torch.allclose(yiq_out[:, 1:][inside[:, 1:]], yiq_c[:, 1:][inside[:, 1:]], atol=1e-5)
    assert inside.float().mean() > 0.9


def test_ssim_luminance_matches_scikit_image_on_the_luma():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _rand(1, 3, 24, 24, seed=6), _rand(1, 3, 24, 24, seed=7)
    b = 0.7 * a + 0.3 * b
    ya, yb = (F.luminance(t.double())[0, 0].numpy() for t in (a, b))
    ref = metrics.structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0)
    assert F.ssim_luminance(a, b).item() == pytest.approx(ref, abs=1e-6)


def test_colour_histogram_distance_closed_forms():
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1
    blue = torch.zeros(1, 3, 4, 4)
    blue[:, 2] = 1
    half = torch.cat([red[..., :2], blue[..., 2:]], -1)
    assert F.colour_histogram_distance(red, red).item() == pytest.approx(0.0, abs=1e-12)
    assert F.colour_histogram_distance(red, blue).item() == pytest.approx(1.0)
    # half the pixels in common: Bhattacharyya coefficient sqrt(1/2), Hellinger sqrt(1 - sqrt(1/2))
    assert F.colour_histogram_distance(half, red).item() == pytest.approx(np.sqrt(1 - np.sqrt(0.5)))
    # against numpy's histogramdd on random images
    x, t = _rand(2, 3, 16, 16, seed=8), _rand(1, 3, 10, 12, seed=9)
    def h(im):
        counts, _ = np.histogramdd(im.reshape(3, -1).T.numpy(), bins=8, range=[(0, 1)] * 3)
        return counts.ravel() / counts.sum()
    ref = [np.sqrt(max(0.0, 1 - np.sqrt(h(x[i]) * h(t[0])).sum())) for i in range(2)]
    np.testing.assert_allclose(F.colour_histogram_distance(x, t).numpy(), ref, atol=1e-12)


def test_colour_w1_matches_scipy_for_unequal_sizes():
    stats = pytest.importorskip("scipy.stats")
    x, t = _rand(2, 3, 6, 7, seed=10), _rand(1, 3, 5, 4, seed=11) ** 2
    ours = F.colour_w1(x, t).numpy()
    ref = [np.mean([stats.wasserstein_distance(x[i, c].flatten().numpy(), t[0, c].flatten().numpy())
                    for c in range(3)]) for i in range(2)]
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_adain_gives_the_content_the_style_statistics():
    c, s = _rand(2, 4, 6, 6, seed=12), _rand(1, 4, 5, 5, seed=13) * 3 + 1
    out = F.adain(c, s)
    om, ostd = F.channel_stats(out, eps=0)
    sm, sstd = F.channel_stats(s, eps=0)
    assert torch.allclose(om, sm.expand_as(om), atol=1e-5)
    assert torch.allclose(ostd, sstd.expand_as(ostd), rtol=1e-3)
    # the content's normalised pattern is kept
    cm, cstd = F.channel_stats(c, eps=0)
    assert torch.allclose((out - om) / ostd, (c - cm) / cstd, atol=1e-3)
    with pytest.raises(ValueError, match="channels"):
        F.adain(c, s[:, :3])
