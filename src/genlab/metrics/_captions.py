"""Text-to-image metrics on judge outputs: caption accuracy per attribute, R-precision,
diversity among images of one caption. Pure functions of tensors (re-exported by
``genlab.metrics.functional``); the networks that produce their inputs are the caption
judges in ``genlab.metrics.judges``."""
from __future__ import annotations

from typing import Any, Mapping

import torch


def _long(v: Any) -> torch.Tensor:
    return torch.as_tensor(v).reshape(-1).long().cpu()


def attribute_accuracy(pred: Mapping[str, Any], truth: Mapping[str, Any], *,
                       unnamed: Mapping[str, int] | None = None) -> dict[str, Any]:
    """How often predicted attributes equal the ground truth, per attribute and all at once.

    Args:
        pred: ``{attribute: (N,)}`` predicted value indices (a judge's argmax).
        truth: ``{attribute: (N,)}`` true value indices, the same attributes.
        unnamed: ``{attribute: value}``: a value that means the caption does not name the
            attribute (captioned-shapes' position ``none`` for two or three objects). Those
            rows are left out of that attribute's accuracy and need not match for ``all``.

    Returns:
        ``{"per_attribute": {attribute: accuracy or None}, "all": share of rows whose every
        named attribute is right, "n": N, "named": {attribute: rows that name it},
        "correct": (N,) bool tensor}``. An attribute no row names gets ``None``.
    """
    if set(pred) != set(truth) or not truth:
        raise ValueError(f"attribute_accuracy: predictions for {sorted(pred)} but ground truth for "
                         f"{sorted(truth)}")
    unnamed = dict(unnamed or {})
    n = None
    ok = None
    per: dict[str, float | None] = {}
    named: dict[str, int] = {}
    for name in truth:
        t, p = _long(truth[name]), _long(pred[name])
        if len(t) != len(p) or (n is not None and len(t) != n):
            raise ValueError(f"attribute_accuracy: {name!r} has {len(p)} predictions and {len(t)} true values"
                             + (f" (other attributes have {n})" if n is not None else ""))
        n = len(t)
        mask = t != unnamed[name] if name in unnamed else torch.ones(n, dtype=torch.bool)
        hit = p == t
        named[name] = int(mask.sum())
        per[name] = float(hit[mask].double().mean()) if mask.any() else None
        good = hit | ~mask
        ok = good if ok is None else ok & good
    if not n:
        raise ValueError("attribute_accuracy: no rows")
    return {"per_attribute": per, "all": float(ok.double().mean()), "n": n, "named": named, "correct": ok}


def r_precision(image_emb: Any, text_emb: Any, true_index: Any, *, groups: Any = None) -> float:
    """R-precision with R = 1 (AttnGAN, Xu et al. 2018; DM-GAN): the share of images whose
    true caption ranks first among the candidate captions by cosine similarity.

    AttnGAN ranks the true caption among 99 random others; here the candidates are all
    distinct captions of the data set, so chance is ``1 / len(candidates)`` (with
    ``groups``: the true group's share of the candidates).

    Args:
        image_emb: ``(N, D)`` image embeddings.
        text_emb: ``(M, D)`` embeddings of the candidate captions.
        true_index: ``(N,)`` index of each image's caption among the candidates.
        groups: optional ``(M,)`` ids: captions of one id say the same thing (two wordings
            of one class), and an image is right when the top caption is in its caption's group.

    Returns:
        the share in ``[0, 1]``.
    """
    img = torch.as_tensor(image_emb, dtype=torch.float64)
    txt = torch.as_tensor(text_emb, dtype=torch.float64)
    idx = _long(true_index)
    if img.dim() != 2 or txt.dim() != 2 or img.shape[1] != txt.shape[1]:
        raise ValueError(f"r_precision: embeddings (N, D) and (M, D) expected, got {tuple(img.shape)} and "
                         f"{tuple(txt.shape)}")
    if len(idx) != len(img) or (len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(txt))):
        raise ValueError(f"r_precision: true_index must hold {len(img)} indices into {len(txt)} captions")
    if len(img) == 0:
        raise ValueError("r_precision: no images")
    img = torch.nn.functional.normalize(img, dim=1)
    txt = torch.nn.functional.normalize(txt, dim=1)
    top = (img @ txt.T).argmax(1)
    if groups is None:
        return float((top == idx).double().mean())
    g = _long(groups)
    if len(g) != len(txt):
        raise ValueError(f"r_precision: {len(g)} group ids for {len(txt)} captions")
    return float((g[top] == g[idx]).double().mean())


def r_precision_chance(true_index: Any, groups: Any = None, n_candidates: int | None = None) -> float:
    """What ``r_precision`` scores when the ranking is random: the mean over images of the
    share of candidates in the true caption's group (``1 / n_candidates`` without groups)."""
    idx = _long(true_index)
    if groups is None:
        if not n_candidates:
            raise ValueError("r_precision_chance: give groups or n_candidates")
        return 1.0 / n_candidates
    g = _long(groups)
    size = torch.bincount(g)[g]  # members of each candidate's group
    return float((size[idx].double() / len(g)).mean())


def diversity_within(features: Any, labels: Any) -> dict[str, Any]:
    """Mean pairwise Euclidean distance between the features of images with the same label
    (the same caption): low when a model draws one picture per caption.

    Args:
        features: ``(N, F)``.
        labels: ``(N,)`` group ids (a caption's index).

    Returns:
        ``{"diversity": mean over all same-label pairs (None when no label has two rows),
        "pairs": number of pairs, "groups": labels with two or more rows}``.
    """
    f = torch.as_tensor(features, dtype=torch.float64)
    lab = _long(labels)
    if f.dim() != 2 or len(f) != len(lab):
        raise ValueError(f"diversity_within: features (N, F) and N labels expected, got {tuple(f.shape)} "
                         f"and {len(lab)}")
    total, pairs, groups = 0.0, 0, 0
    for v in torch.unique(lab):
        rows = f[lab == v]
        k = len(rows)
        if k < 2:
            continue
        d = torch.cdist(rows, rows)
        total += float(d.sum()) / 2
        pairs += k * (k - 1) // 2
        groups += 1
    return {"diversity": total / pairs if pairs else None, "pairs": pairs, "groups": groups}
