"""Captioned images for text-to-image models: ``captioned-shapes`` and
``fashion-mnist-captions``.

Each example carries its caption as token ids in ``Dataset.text`` (``(N, L)`` int64,
padding 0, spelled by a ``"caption"`` tokenizer whose config is ``meta["tokenizer"]``;
``decode_captions(ds)`` gives the strings back) and its ground truth in
``Dataset.attributes`` (``{name: (N,) int64}``, each an index into
``meta["attribute_values"][name]``).

``captioned-shapes`` is procedural (numpy, vectorised; 20,000 16x16 images in about
0.1 s, 32x32 in 0.3 s): one to three shapes of one kind and colour on black. Attributes
``shape`` (circle, square, triangle, cross), ``colour`` (red, green, blue, yellow, magenta,
cyan), ``count`` (one, two, three: the count is the index + 1) and ``position`` (top left,
top right, bottom left, bottom right, center for one object; ``none`` for two or three,
which sit at distinct random cells of the same five). Sizes, offsets and brightness are
jittered from the seed; objects never touch (a black pixel always lies between them), so
the count is the number of 8-connected components. Four (shape, colour) pairs
(``HELDOUT``, one per shape, each colour once) never occur in ``train``/``val``/``test``:
the ``heldout`` split has only them (compositional generalisation). The ``paraphrased``
split is the ``test`` images with captions in wordings no training caption uses
(``paraphrases``), for robustness of a text encoder; all their words are in the
vocabulary, though words only paraphrases use (``pair``, ``upper``, ``middle``, ...) are
never seen in training.

``fashion-mnist-captions`` is Fashion-MNIST (the ``fashion-mnist`` loader) with a caption
from the class name (``"a photo of a sneaker"``, ``"an ankle boot"``); images stay
``1x28x28``, ``y`` is kept and ``attributes["class"]`` equals it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..registry import DATASETS
from .dataset import Dataset
from .tokenizers import CaptionTokenizer, encode_captions

SHAPES = ("circle", "square", "triangle", "cross")
PLURALS = ("circles", "squares", "triangles", "crosses")
COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan")
RGB = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], np.float32)
COUNTS = ("one", "two", "three")
CELLS = ("top left", "top right", "bottom left", "bottom right", "center")
POSITIONS = (*CELLS, "none")
NONE = POSITIONS.index("none")
HELDOUT = (("circle", "green"), ("square", "magenta"), ("triangle", "red"), ("cross", "cyan"))
SIZES = (16, 24, 32)
SPLIT_INDEX = {"train": 0, "val": 1, "test": 2, "heldout": 3}
# Cell centres (x, y) on a 16-pixel side (scaled with the image): a lone object sits at
# the quadrant centres (or the middle), two or three smaller ones nearer the corners so
# that a corner object and a centre one stay apart.
CENTRES_ONE = np.array([[4, 4], [12, 4], [4, 12], [12, 12], [8, 8]], np.float64)
CENTRES_MANY = np.array([[2.8, 2.8], [13.2, 2.8], [2.8, 13.2], [13.2, 13.2], [8, 8]], np.float64)
RADIUS = {"one": 3.0, "many": 2.5}   # object radius on a 16-pixel side, before jitter
SHIFT = {"one": 0.75, "many": 0.25}  # largest centre offset per axis on a 16-pixel side
SQUARE = 0.72  # half side / radius: a square fills the diagonal towards the middle cell
_U = 19  # uniforms per image: pair, count, position, 5 cell keys, 3 sizes, 6 offsets,
#          brightness, paraphrase variant

FASHION_NAMES = ("t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt",
                 "sneaker", "bag", "ankle boot")
FASHION_TEMPLATES = ("a photo of {a} {name}", "{a} {name}", "a picture of {a} {name}")


# ----------------------------------------------------------------------------- captions
def _index(value: int | str, names: Sequence[str], what: str) -> int:
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(names)}")
        return names.index(value)
    if not 0 <= int(value) < len(names):
        raise ValueError(f"{what} index {value!r} is outside 0..{len(names) - 1}")
    return int(value)


def _parts(shape: int | str, colour: int | str, count: int | str, position: int | str
           ) -> tuple[str, str, str, int, str]:
    """Names ``(shape, plural, colour, count, position)``; ``count`` is 1, 2, 3 (or
    ``"one"``...), ``position`` must be ``"none"`` exactly when the count is over 1."""
    s, c = _index(shape, SHAPES, "shape"), _index(colour, COLOURS, "colour")
    n = COUNTS.index(count) + 1 if isinstance(count, str) and count in COUNTS else int(count)
    if n not in (1, 2, 3):
        raise ValueError(f"count must be 1, 2 or 3, got {count!r}")
    p = _index(position, POSITIONS, "position")
    if (n == 1) == (p == NONE):
        raise ValueError(f"position {POSITIONS[p]!r} does not go with count {n}: one object has "
                         "a cell, two or three have position 'none'")
    return SHAPES[s], PLURALS[s], COLOURS[c], n, POSITIONS[p]


def caption(shape: int | str, colour: int | str, count: int | str = 1,
            position: int | str = "center") -> str:
    """The training caption: ``"a red circle at the top left"``, ``"a blue square in the
    center"``, ``"two green triangles"``, ``"three yellow crosses"``.

    Args:
        shape, colour: names or indices into ``SHAPES`` / ``COLOURS``.
        count: 1, 2 or 3.
        position: a cell name or index for one object, ``"none"`` for two or three.
    """
    s, ps, c, n, p = _parts(shape, colour, count, position)
    if n > 1:
        return f"{COUNTS[n - 1]} {c} {ps}"
    return f"a {c} {s} in the center" if p == "center" else f"a {c} {s} at the {p}"


def paraphrases(shape: int | str, colour: int | str, count: int | str = 1,
                position: int | str = "center") -> tuple[str, ...]:
    """Four captions of the same picture in wordings no training caption has
    (``"top-left: red circle"``, ``"red circle, top left corner"``, ``"a pair of green
    triangles"``, ...); arguments as in ``caption``."""
    s, ps, c, n, p = _parts(shape, colour, count, position)
    if n == 2:
        return (f"a pair of {c} {ps}", f"{c} {ps}, two of them", f"2 {c} {ps}",
                f"two {ps}, both {c}")
    if n == 3:
        return (f"a trio of {c} {ps}", f"{c} {ps}, three of them", f"3 {c} {ps}",
                f"three {ps}, all {c}")
    if p == "center":
        return (f"center: {c} {s}", f"{c} {s}, in the middle", f"the {s} in the center is {c}",
                f"a {c} {s} in the centre")
    vert, horiz = p.split()
    upper = {"top": "upper", "bottom": "lower"}[vert]
    return (f"{vert}-{horiz}: {c} {s}", f"{c} {s}, {p} corner", f"the {s} at the {p} is {c}",
            f"a {c} {s} in the {upper} {horiz} corner")


def _combinations() -> list[tuple[int, int, int, int]]:
    """Every valid ``(shape, colour, count, position)``, count 1..3."""
    return [(s, c, n, p) for s in range(len(SHAPES)) for c in range(len(COLOURS))
            for n in (1, 2, 3) for p in (range(len(CELLS)) if n == 1 else (NONE,))]


def _combo(s, c, n, p):
    """Row of a caption table (works on arrays)."""
    return ((s * len(COLOURS) + c) * 3 + (n - 1)) * len(POSITIONS) + p


def shapes_tokenizer() -> CaptionTokenizer:
    """The ``captioned-shapes`` tokenizer: every word of every caption and paraphrase."""
    texts = [t for a in _combinations() for t in (caption(*a), *paraphrases(*a))]
    return CaptionTokenizer.train(texts)


def _shape_tables(tok: CaptionTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows of the caption ``(combos, L)`` and of the paraphrases ``(combos, 4, L)``
    for every combination (rows of invalid combinations stay padding)."""
    combos = _combinations()
    caps = [caption(*a) for a in combos]
    paras = [t for a in combos for t in paraphrases(*a)]
    length = max(len(tok.encode(t)) for t in caps + paras)
    k = len(paras) // len(combos)
    rows = torch.tensor([_combo(*a) for a in combos])
    table = torch.zeros(_combo(len(SHAPES), 0, 1, 0), length, dtype=torch.int64)
    ptable = torch.zeros(len(table), k, length, dtype=torch.int64)
    table[rows] = encode_captions(tok, caps, length)
    ptable[rows] = encode_captions(tok, paras, length).reshape(len(combos), k, length)
    return table, ptable


def decode_captions(ds: Dataset) -> list[str]:
    """The caption strings of a captioned Dataset, decoded from ``ds.text`` with the
    tokenizer in ``ds.meta["tokenizer"]``."""
    from .tokenizers import from_config

    if ds.text is None or "tokenizer" not in ds.meta:
        raise DataError(f"{ds.name}: no captions (text and meta['tokenizer']) to decode")
    cfg = ds.meta["tokenizer"]
    tok = from_config(cfg["tokenizer"], cfg["vocab"], cfg.get("merges", ()))
    return [tok.decode(row) for row in ds.text.tolist()]


# ----------------------------------------------------------------------------- rendering
def _draw(n: int, seed: int, split: str, pairs: np.ndarray
          ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Attributes, the cell of each object slot ``(n, 3)`` and the ``(n, _U)`` uniforms
    the jitter is read from, for ``n`` images of the (shape, colour) ``pairs``. One
    ``(n, _U)`` block per split, so the first ``k`` images do not depend on ``n``."""
    u = np.random.default_rng([seed, SPLIT_INDEX[split]]).random((n, _U))
    pair = pairs[(u[:, 0] * len(pairs)).astype(np.int64)]
    count = (u[:, 1] * 3).astype(np.int64) + 1
    position = np.where(count == 1, (u[:, 2] * len(CELLS)).astype(np.int64), NONE)
    order = np.argsort(u[:, 3:8], axis=1)
    cells = np.where((count == 1)[:, None], position[:, None], order[:, :3])
    attrs = {"shape": pair[:, 0], "colour": pair[:, 1], "count": count - 1, "position": position}
    return attrs, cells, u


def _masks(shape: np.ndarray, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Pixel masks ``(n, S, S)`` of one shape kind per row, ``dx``/``dy`` offsets of pixel
    centres from the object centre, ``r`` its radius (``(n, 1, 1)``)."""
    out = np.empty(np.broadcast_shapes(dx.shape, dy.shape), bool)
    for k in range(len(SHAPES)):
        rows = shape == k
        if not rows.any():
            continue
        x, y, rr = dx[rows], dy[rows], r[rows]
        if SHAPES[k] == "circle":
            m = x * x + y * y <= rr * rr
        elif SHAPES[k] == "square":
            m = (np.abs(x) <= SQUARE * rr) & (np.abs(y) <= SQUARE * rr)
        elif SHAPES[k] == "triangle":  # apex up, base 2r wide, 1.8r tall
            m = (y >= -rr) & (y <= 0.8 * rr) & (np.abs(x) <= (y + rr) / 1.8)
        else:  # cross: a plus, arms r long, an odd number of pixels thick (1 up to r = 4)
            t = 0.25 * rr  # thickness is measured in whole pixels from the nearest pixel centre
            m = (((np.abs(np.rint(x)) <= t) & (np.abs(y) <= rr))
                 | ((np.abs(np.rint(y)) <= t) & (np.abs(x) <= rr)))
        out[rows] = m
    return out


def render_shapes(attrs: dict[str, np.ndarray], cells: np.ndarray, u: np.ndarray, size: int
                  ) -> np.ndarray:
    """Images ``(n, 3, size, size)`` float32 of the drawn attributes (see ``_draw``)."""
    n, unit = len(cells), size / 16
    grid = np.arange(size, dtype=np.float32) + np.float32(0.5)  # pixel centres
    one = attrs["count"] == 0
    radius = np.where(one, RADIUS["one"], RADIUS["many"]) * unit
    shift = np.where(one, SHIFT["one"], SHIFT["many"]) * unit
    lit = np.zeros((n, size, size), bool)
    for k in range(3):
        rows = np.flatnonzero(attrs["count"] >= k)
        cell = cells[rows, k]
        centre = np.where(one[rows, None], CENTRES_ONE[cell], CENTRES_MANY[cell]) * unit
        centre += shift[rows, None] * (2 * u[rows, 11 + 2 * k: 13 + 2 * k] - 1)
        r = radius[rows] * (0.85 + 0.15 * u[rows, 8 + k])
        f = np.float32
        lit[rows] |= _masks(attrs["shape"][rows],
                            grid[None, None, :] - centre[:, 0, None, None].astype(f),
                            grid[None, :, None] - centre[:, 1, None, None].astype(f),
                            r[:, None, None].astype(f))
    colour = RGB[attrs["colour"]] * (0.8 + 0.2 * u[:, 17:18]).astype(np.float32)
    return lit[:, None] * colour[:, :, None, None]


# ----------------------------------------------------------------------------- datasets
def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{what} must be a positive integer, got {value!r}")
    return value


@DATASETS.register("captioned-shapes", aliases=("captioned_shapes",))
def captioned_shapes(*, n_train: int = 20000, n_val: int = 2000, n_test: int = 2000,
                     seed: int = 0, size: int = 16, limit: int | None = None
                     ) -> dict[str, Dataset]:
    """Coloured shapes on black with template captions and exact ground truth.

    Args:
        n_train, n_val, n_test: split sizes (``heldout`` and ``paraphrased`` have
            ``n_test``).
        seed: base seed; each split draws from its own stream, so a split does not depend
            on the other sizes, and the first ``k`` images do not depend on its size.
        size: image side, 16, 24 or 32.
        limit: keep at most ``limit`` examples per split (drawn, not cut: fast).

    Returns:
        ``{"train", "val", "test", "heldout", "paraphrased"}`` image Datasets
        ``(N, 3, size, size)`` in [0, 1] with ``text`` and ``attributes`` (``shape``,
        ``colour``, ``count``, ``position``); ``heldout`` has only the ``HELDOUT``
        (shape, colour) pairs, which the first three never show; ``paraphrased`` is
        ``test`` with captions from ``paraphrases``.
    """
    from .datasets import _finish

    _finish({}, False, limit)  # checks limit
    sizes = {k: _positive(v, f"captioned-shapes: n_{k}")
             for k, v in (("train", n_train), ("val", n_val), ("test", n_test))}
    sizes["heldout"] = sizes["test"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"captioned-shapes: seed must be a non-negative integer, got {seed!r}")
    if size not in SIZES:
        raise DataError(f"captioned-shapes: size must be one of {SIZES}, got {size!r}")
    held = [(SHAPES.index(s), COLOURS.index(c)) for s, c in HELDOUT]
    seen = np.array([(s, c) for s in range(len(SHAPES)) for c in range(len(COLOURS))
                     if (s, c) not in held], np.int64)
    tok = shapes_tokenizer()
    table, ptable = _shape_tables(tok)
    meta = {"dataset": "captioned-shapes", "size": size, "seed": seed,
            "tokenizer": tok.to_config(), "caption_style": "template",
            "attribute_values": {"shape": list(SHAPES), "colour": list(COLOURS),
                                 "count": list(COUNTS), "position": list(POSITIONS)},
            "heldout_combinations": [list(p) for p in HELDOUT],
            "cell_centers": {"one": (CENTRES_ONE * size / 16).tolist(),
                             "many": (CENTRES_MANY * size / 16).tolist()}}
    out = {}
    for split, n in sizes.items():
        n = min(n, limit) if limit is not None else n
        attrs, cells, u = _draw(n, seed, split, np.array(held) if split == "heldout" else seen)
        x = torch.from_numpy(render_shapes(attrs, cells, u, size))
        attributes = {k: torch.from_numpy(v) for k, v in attrs.items()}
        row = torch.from_numpy(_combo(attrs["shape"], attrs["colour"], attrs["count"] + 1,
                                      attrs["position"]))
        out[split] = Dataset(x, kind="image", name="captioned-shapes", meta=dict(meta),
                             text=table[row], attributes=attributes)
        if split == "test":
            variant = torch.from_numpy((u[:, 18] * ptable.shape[1]).astype(np.int64))
            out["paraphrased"] = dataclasses.replace(
                out["test"], meta=dict(meta, caption_style="paraphrase"),
                text=ptable[row, variant])
    return _finish({k: out[k] for k in (*sizes, "paraphrased")}, False, None)


captioned_shapes.description = ("procedural 16x16 coloured shapes (4 shapes x 6 colours, 1-3 "
                                "objects, 5 cells) with captions; held-out pairs and paraphrases")


def fashion_caption(label: int, template: int = 0) -> str:
    """Caption ``template`` (index into ``FASHION_TEMPLATES``) of Fashion-MNIST class
    ``label``: ``"a photo of a sneaker"``, ``"an ankle boot"``, ``"a picture of a bag"``."""
    name = FASHION_NAMES[label]
    return FASHION_TEMPLATES[template].format(a="an" if name[0] in "aeiou" else "a", name=name)


@DATASETS.register("fashion-mnist-captions", aliases=("fashion_mnist_captions",))
def fashion_mnist_captions(*, root: str | Path | None = None, binarize: bool = False,
                           limit: int | None = None, seed: int = 0) -> dict[str, Dataset]:
    """Fashion-MNIST (the ``fashion-mnist`` dataset's splits) with captions.

    Args:
        root, binarize, limit: as for ``fashion-mnist``.
        seed: picks each image's template (one of ``FASHION_TEMPLATES``).

    Returns:
        ``{"train", "val", "test"}`` Datasets of ``(N, 1, 28, 28)`` images, labels ``y``,
        ``text`` and ``attributes["class"]`` (= ``y``).
    """
    from .datasets import FASHION_CLASSES, fashion_mnist

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"fashion-mnist-captions: seed must be a non-negative integer, got {seed!r}")
    texts = [fashion_caption(c, t) for c in range(len(FASHION_NAMES))
             for t in range(len(FASHION_TEMPLATES))]
    tok = CaptionTokenizer.train(texts)
    table = encode_captions(tok, texts).reshape(len(FASHION_NAMES), len(FASHION_TEMPLATES), -1)
    out = {}
    for split, ds in fashion_mnist(root=root, binarize=binarize, limit=limit).items():
        u = np.random.default_rng([seed, SPLIT_INDEX[split]]).random(len(ds))
        template = torch.from_numpy((u * len(FASHION_TEMPLATES)).astype(np.int64))
        meta = dict(ds.meta, dataset="fashion-mnist-captions", tokenizer=tok.to_config(),
                    caption_style="template", attribute_values={"class": list(FASHION_CLASSES)})
        out[split] = dataclasses.replace(ds, name="fashion-mnist-captions", meta=meta,
                                         text=table[ds.y, template], attributes={"class": ds.y})
    return out


fashion_mnist_captions.description = ("Fashion-MNIST with templated captions from the class "
                                      "names ('a photo of a sneaker')")
