"""Seeded batch augmentations and parse_augment."""
from __future__ import annotations

import pytest
import torch

from genlab.data import (
    Compose, GaussianNoise, Normalize, RandomFlip, RandomRotation, RandomShift, parse_augment,
    to_display,
)
from genlab.errors import DataError


def _batch(b=8, c=1, h=12, w=10, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


ALL = [RandomFlip(), RandomFlip(vertical=True), RandomShift(3), RandomShift(2, padding="edge"),
       RandomRotation(20), GaussianNoise(0.1),
       Compose([RandomFlip(), RandomShift(2), RandomRotation(10), GaussianNoise(0.05)])]


@pytest.mark.parametrize("aug", ALL, ids=repr)
def test_same_seed_same_output_different_seed_differs(aug):
    x = _batch(c=3)
    a, b, c = aug(x, _gen(1)), aug(x, _gen(1)), aug(x, _gen(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_only_the_given_generator_is_used():
    x = _batch()
    torch.manual_seed(0)
    a = ALL[-1](x, _gen(5))
    torch.manual_seed(123)  # global RNG state must not matter
    b = ALL[-1](x, _gen(5))
    assert torch.equal(a, b)


def test_flip_twice_is_identity_and_flips_pixels():
    x = _batch()
    f = RandomFlip(p=1.0)
    once = f(x, _gen(0))
    assert torch.equal(once, x.flip(-1))
    assert torch.equal(f(once, _gen(1)), x)
    assert torch.equal(RandomFlip(p=0.0)(x, _gen(0)), x)


def test_shift_zero_is_identity_and_shift_moves_content():
    x = _batch()
    assert torch.equal(RandomShift(0)(x, _gen(0)), x)
    out = RandomShift(2)(x, _gen(3))
    # each image is a translate of the input: some integer offset reproduces it exactly
    for i in range(len(x)):
        hits = 0
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros_like(x[i])
                src = x[i][:, max(0, -dy):12 - max(0, dy), max(0, -dx):10 - max(0, dx)]
                shifted[:, max(0, dy):max(0, dy) + src.shape[1],
                        max(0, dx):max(0, dx) + src.shape[2]] = src
                hits += torch.equal(shifted, out[i])
        assert hits == 1


def test_rotation_zero_is_identity_and_rotation_changes_image():
    x = _batch(c=3, h=9, w=13)
    assert torch.allclose(RandomRotation(0)(x, _gen(0)), x, atol=1e-5)
    assert not torch.allclose(RandomRotation(30)(x, _gen(0)), x, atol=1e-2)


def test_noise_std_measured():
    x = torch.full((16, 1, 32, 32), 0.5)
    out = GaussianNoise(0.05)(x, _gen(0))
    assert (out - x).std().item() == pytest.approx(0.05, rel=0.05)
    assert (out - x).mean().abs().item() < 0.005
    wide = GaussianNoise(2.0)(x, _gen(0))
    assert wide.min() >= 0 and wide.max() <= 1
    assert GaussianNoise(2.0, clip=False)(x, _gen(0)).max() > 1


def test_bad_inputs():
    with pytest.raises(DataError, match=r"\(B, C, H, W\)"):
        RandomFlip()(torch.rand(3, 4, 4), _gen(0))
    with pytest.raises(TypeError, match="torch.Generator"):
        RandomFlip()(_batch(), 0)
    with pytest.raises(ValueError):
        RandomShift(-1)


def test_parse_augment():
    aug = parse_augment("flip, shift:3,rotate:15,noise:0.1,vflip:0.25")
    kinds = [type(a).__name__ for a in aug]
    assert kinds == ["RandomFlip", "RandomShift", "RandomRotation", "GaussianNoise",
                     "RandomFlip"]
    assert aug.augmentations[1].max_pixels == 3 and aug.augmentations[4].vertical
    assert aug.spec() == "flip:0.5,shift:3,rotate:15,noise:0.1,vflip:0.25"
    assert parse_augment(aug.spec()).spec() == aug.spec()
    assert parse_augment("") is None and parse_augment(None) is None
    assert parse_augment("none") is None


@pytest.mark.parametrize("spec, match", [
    ("flip,zoom:2", "unknown augmentation 'zoom'.*flip.*shift.*rotate.*noise"),
    ("shift:two", "'shift' expects a whole number"),
    ("shift:1.5", "'shift' expects a whole number"),
    ("noise:-0.1", ">= 0"),
    ("flip:2", "probability"),
    ("flip,,shift", "empty item"),
])
def test_parse_augment_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_augment(spec)


def test_normalize_inverse_and_display():
    x = _batch(c=3)
    norm = Normalize.fit(x)
    z = norm(x)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(norm.inverse(z), x, atol=1e-6)
    img = to_display(z, norm)
    assert img.dtype.name == "uint8" and img.shape == (8, 12, 10, 3)
    grey = to_display(torch.tensor([[[-1.0, 0.5, float("nan"), 2.0]]]))
    assert grey.shape == (1, 4) and grey.tolist() == [[0, 128, 0, 255]]
    with pytest.raises(DataError, match="std"):
        Normalize(0.5, 0.0)


@pytest.mark.parametrize("spec", ["flip", "vflip,flip:0.3", "shift:2", "rotate:15", "noise:0.1",
                                  "flip,shift:1,rotate:10,noise:0.05"])
def test_a_part_of_the_batch_is_augmented_as_in_the_whole_batch(spec):
    """What a torchrun process that reads only its rows relies on: ``rows=(n, part)``
    draws for all n rows and applies this part's draws, bit for bit."""
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    aug = parse_augment(spec)
    whole = aug(x, torch.Generator().manual_seed(7))
    for part in (slice(0, 5), slice(5, 10), slice(3, 4)):
        got = aug(x[part], torch.Generator().manual_seed(7), rows=(10, part))
        assert torch.equal(got, whole[part]), (spec, part)
    with pytest.raises(ValueError, match="do not describe"):
        aug(x[:3], torch.Generator().manual_seed(7), rows=(10, slice(0, 5)))


def test_batch_rows_are_whole_groups_and_batch_length_counts_them():
    from genlab.train.trainer import batch_length, batch_rows

    for n in (1, 7, 64, 65):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
        for bs in (1, 8, 32):
            for multiple in (1, 2, 3):
                for b in range(-(-n // bs)):
                    rows = batch_rows(order, b, bs, multiple)
                    assert batch_length(n, b, bs, multiple) == len(rows)
                    own = order[b * bs:(b + 1) * bs].tolist()
                    if len(own) >= multiple:  # the batch's own rows, trimmed to whole groups
                        assert rows.tolist() == own[:len(own) - len(own) % multiple]
                    else:  # shorter than one group: the epoch's first group instead
                        assert rows.tolist() == order[:multiple].tolist()
