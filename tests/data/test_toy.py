"""2-D Gaussian-mixture toys: constants, sampling, the ring8/grid25 datasets."""
import math

import pytest
import torch

import genlab.metrics as gm
from genlab.data import load, load_splits
from genlab.data import toy
from genlab.registry import DATASETS


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_standard_constants():
    ring = toy.ring_centers()
    assert ring.shape == (8, 2)
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    assert torch.allclose(ring[2], torch.tensor([0.0, 2.0], dtype=torch.float64), atol=1e-12)
    grid = toy.grid_centers()
    assert grid.shape == (25, 2)
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert (toy.RING_STD, toy.GRID_STD) == (0.02, 0.05)


@pytest.mark.parametrize("sampler,centers,std", [
    (toy.ring_of_gaussians, toy.ring_centers(), 0.02),
    (toy.grid_of_gaussians, toy.grid_centers(), 0.05),
])
def test_samples_follow_the_mixture(sampler, centers, std):
    x, y = sampler(20000, generator=_gen(), return_labels=True)
    assert x.shape == (20000, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    resid = x.double() - centers[y]
    assert resid.std().item() == pytest.approx(std, rel=0.03)
    assert resid.mean(0).abs().max().item() < 5 * std / math.sqrt(20000)  # 5 sigma
    counts = torch.bincount(y, minlength=len(centers)).double()
    expected = 20000 / len(centers)
    assert ((counts - expected).abs() < 5 * math.sqrt(expected)).all()  # equal weights
    # each point is nearest its own centre (modes are far apart relative to std)
    assert torch.equal(torch.cdist(x.double(), centers).argmin(1), y)


def test_sampling_is_reproducible_and_options_apply():
    a = toy.ring_of_gaussians(50, generator=_gen(3))
    assert torch.equal(a, toy.ring_of_gaussians(50, generator=_gen(3)))
    assert not torch.equal(a, toy.ring_of_gaussians(50, generator=_gen(4)))
    wide = toy.ring_of_gaussians(1000, modes=4, radius=5.0, std=0.0, generator=_gen())
    assert torch.allclose(wide.norm(dim=1), torch.full((1000,), 5.0), atol=1e-5)
    assert len(torch.unique(wide, dim=0)) == 4
    small = toy.grid_of_gaussians(10, side=3, spacing=1.0, std=0.0, generator=_gen())
    assert set(small.flatten().tolist()) <= {-1.0, 0.0, 1.0}
    with pytest.raises(ValueError, match="positive integer"):
        toy.ring_of_gaussians(0)


@pytest.mark.parametrize("name,modes", [("ring8", 8), ("grid25", 25)])
def test_registered_datasets(name, modes):
    assert name in DATASETS
    splits = load_splits(name)
    assert set(splits) == {"train", "val", "test"}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [20000, 2500, 2500]
    ds = splits["train"]
    assert ds.kind == "table" and ds.shape == (2,) and ds.num_classes == modes
    assert ds.meta["dataset"] == name and len(ds.meta["centers"]) == modes
    assert not torch.equal(splits["val"].x, splits["test"].x)
    again = load_splits(name)
    assert torch.equal(again["test"].x, splits["test"].x)  # deterministic
    small = load(name, split="val", limit=30, seed=1)
    assert len(small) == 30 and not torch.equal(small.x, splits["val"].x[:30])
    # real data scores as a perfect generator on the toy protocol
    out = gm.toy_mode_metrics(splits["test"].x, name)
    assert out["modes_covered"] == modes
    assert out["high_quality_share"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)


def test_dataset_option_errors():
    with pytest.raises(ValueError, match="limit"):
        load_splits("ring8", limit=0)
    with pytest.raises(ValueError, match="n_train"):
        load_splits("grid25", n_train=0)
    with pytest.raises(ValueError, match="no option"):
        load_splits("ring8", radius=3)
    with pytest.raises(ValueError, match="unknown toy"):
        toy.centers("ring9")
