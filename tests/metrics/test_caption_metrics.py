"""The text-to-image metrics of ``metrics._captions`` (re-exported by ``functional``):
known answers, chance levels and the messages on bad input."""
from __future__ import annotations

import itertools

import pytest
import torch

from genlab.metrics import functional as F


# ----------------------------------------------------------------------------- attribute accuracy
def test_attribute_accuracy_known_answer():
    truth = {"colour": [0, 1, 2, 0], "shape": [1, 1, 0, 0]}
    pred = {"colour": [0, 1, 0, 0], "shape": [1, 0, 0, 0]}
    out = F.attribute_accuracy(pred, truth)
    assert out["per_attribute"] == {"colour": 0.75, "shape": 0.75}
    assert out["all"] == 0.5 and out["n"] == 4 and out["named"] == {"colour": 4, "shape": 4}
    assert out["correct"].tolist() == [True, False, False, True]


def test_attribute_accuracy_unnamed_rows_are_left_out_and_need_not_match():
    # position 5 means "the caption does not say": rows 2 and 3 are not scored on position
    truth = {"colour": [0, 1, 2, 3], "position": [0, 1, 5, 5]}
    pred = {"colour": [0, 1, 2, 0], "position": [0, 2, 3, 5]}
    out = F.attribute_accuracy(pred, truth, unnamed={"position": 5})
    assert out["per_attribute"] == {"colour": 0.75, "position": 0.5}
    assert out["named"] == {"colour": 4, "position": 2}
    assert out["correct"].tolist() == [True, False, True, False] and out["all"] == 0.5
    # an attribute no row names has no accuracy (None), not 0 or NaN
    none = F.attribute_accuracy({"position": [1, 2]}, {"position": [5, 5]}, unnamed={"position": 5})
    assert none["per_attribute"] == {"position": None} and none["all"] == 1.0


def test_attribute_accuracy_takes_tensors_of_any_shape():
    t = torch.tensor([[0, 1], [1, 1]])
    out = F.attribute_accuracy({"a": t}, {"a": t.flatten()})
    assert out["all"] == 1.0 and out["n"] == 4


def test_attribute_accuracy_errors():
    with pytest.raises(ValueError, match="predictions for \\['a'\\] but ground truth for \\['b'\\]"):
        F.attribute_accuracy({"a": [0]}, {"b": [0]})
    with pytest.raises(ValueError, match="ground truth for \\[\\]"):
        F.attribute_accuracy({}, {})
    with pytest.raises(ValueError, match="'a' has 2 predictions and 3 true values"):
        F.attribute_accuracy({"a": [0, 1]}, {"a": [0, 1, 2]})
    with pytest.raises(ValueError, match="other attributes have 3"):
        F.attribute_accuracy({"a": [0, 1, 2], "b": [0, 1]}, {"a": [0, 1, 2], "b": [0, 1]})
    with pytest.raises(ValueError, match="no rows"):
        F.attribute_accuracy({"a": []}, {"a": []})


# ----------------------------------------------------------------------------- R-precision
def test_r_precision_known_answer():
    txt = torch.eye(3)  # three candidate captions along the axes
    img = torch.tensor([[2.0, 0.1, 0.0], [0.0, 0.0, 5.0], [1.0, 0.9, 0.0], [0.0, 3.0, 0.1]])
    # top captions: 0, 2, 0, 1; true: 0, 2, 1, 1 -> 3 of 4 (cosine, so the scale does not matter)
    assert F.r_precision(img, txt, [0, 2, 1, 1]) == 0.75
    assert F.r_precision(img * 7, txt * 0.1, [0, 2, 1, 1]) == 0.75
    # captions 0 and 1 say the same thing: image 2 ranks caption 0 first, which is in its group
    assert F.r_precision(img, txt, [0, 2, 1, 1], groups=[0, 0, 1]) == 1.0


def test_r_precision_chance_is_one_over_the_candidates_and_random_rankings_reach_it():
    assert F.r_precision_chance([0, 1, 2], n_candidates=8) == 0.125
    # with groups: the mean share of candidates in the true caption's group
    assert F.r_precision_chance([0, 2], groups=[0, 0, 1, 1, 1, 2]) == pytest.approx((2 / 6 + 3 / 6) / 2)
    # one group per caption: 1 / M
    assert F.r_precision_chance([0, 3], groups=[0, 1, 2, 3]) == 0.25
    g = torch.Generator().manual_seed(0)
    n, m, d = 20000, 10, 16
    score = F.r_precision(torch.randn(n, d, generator=g), torch.randn(m, d, generator=g),
                          torch.randint(m, (n,), generator=g))
    assert abs(score - 1 / m) < 0.01


def test_r_precision_errors():
    with pytest.raises(ValueError, match="embeddings \\(N, D\\) and \\(M, D\\) expected"):
        F.r_precision(torch.zeros(2, 3), torch.zeros(4, 5), [0, 1])
    with pytest.raises(ValueError, match="embeddings"):
        F.r_precision(torch.zeros(3), torch.zeros(4, 3), [0])
    with pytest.raises(ValueError, match="must hold 2 indices into 4 captions"):
        F.r_precision(torch.ones(2, 3), torch.ones(4, 3), [0, 4])
    with pytest.raises(ValueError, match="must hold 2 indices"):
        F.r_precision(torch.ones(2, 3), torch.ones(4, 3), [0])
    with pytest.raises(ValueError, match="no images"):
        F.r_precision(torch.ones(0, 3), torch.ones(4, 3), [])
    with pytest.raises(ValueError, match="3 group ids for 4 captions"):
        F.r_precision(torch.ones(2, 3), torch.ones(4, 3), [0, 1], groups=[0, 1, 2])
    with pytest.raises(ValueError, match="give groups or n_candidates"):
        F.r_precision_chance([0, 1])


# ----------------------------------------------------------------------------- diversity within a caption
def test_diversity_within_known_answer():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [1.0, 1.0]])
    lab = [0, 0, 1, 1, 2]  # pairs: distance 5 (label 0), 10 (label 1); label 2 has one row
    out = F.diversity_within(f, lab)
    assert out == {"diversity": 7.5, "pairs": 2, "groups": 2}
    # three rows of one label: the mean of the three pairwise distances
    tri = F.diversity_within(torch.tensor([[0.0], [1.0], [3.0]]), [4, 4, 4])
    assert tri["diversity"] == pytest.approx((1 + 3 + 2) / 3) and tri["pairs"] == 3
    # brute force on random data
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(30, 4, generator=g, dtype=torch.float64), torch.randint(4, (30,), generator=g)
    d = [float((x[i] - x[j]).norm()) for i, j in itertools.combinations(range(30), 2) if y[i] == y[j]]
    assert F.diversity_within(x, y)["diversity"] == pytest.approx(sum(d) / len(d), rel=1e-12)


def test_diversity_within_one_picture_per_caption_is_zero_and_singletons_give_none():
    assert F.diversity_within(torch.ones(4, 3), [0, 0, 1, 1])["diversity"] == 0.0
    assert F.diversity_within(torch.randn(3, 2), [0, 1, 2]) == {"diversity": None, "pairs": 0, "groups": 0}


def test_diversity_within_errors():
    with pytest.raises(ValueError, match="features \\(N, F\\) and N labels expected, got \\(3, 2\\) and 2"):
        F.diversity_within(torch.zeros(3, 2), [0, 1])
    with pytest.raises(ValueError, match="features \\(N, F\\)"):
        F.diversity_within(torch.zeros(3), [0, 1, 2])
