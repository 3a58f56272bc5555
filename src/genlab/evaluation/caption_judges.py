"""Training the caption judges text-to-image scores run on, and their cache.

Two networks per captioned data set, both trained on its REAL training split through the
one ``Trainer`` (each wrapped as a model whose ``forward`` returns its loss, trained by the
default gradient step with the judges' recipe, ``judges.fit_judge_model``):

* the attribute judge (``metrics.judges.captions.CaptionJudge``): one cross-entropy per
  attribute head, averaged; rows whose caption leaves an attribute unsaid (position
  ``none``) are masked out of that head. The attributes travel to the model packed into
  one integer label ``y`` (mixed radix), since the trainer batches ``x``, ``y`` and ``text``.
* the image-text judge (``metrics.judges.contrastive.ImageTextJudge``): the symmetric
  InfoNCE loss of CLIP over a batch's images and captions. A batch of captioned-shapes
  holds the same caption many times (140 distinct training captions), so every pair with
  the same attributes counts as a positive: the targets of a row are spread evenly over
  its positives (with one caption per image and distinct captions this is CLIP's loss).

``caption_judges(data)`` trains both once and keeps them under
``$GENLAB_CACHE/judges/<data>-<key>/`` (default ``~/.cache/genlab``), the key a SHA-256 of
the data set's name, its options, a digest of the training split's contents and the
recipe: the same data and settings load in a fraction of a second; anything else trains
anew. A run's ``limit`` is left out of the data options (a judge is a fixed yardstick, so
it is trained on the whole training split).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from .. import __version__
from ..data.dataset import Dataset
from ..errors import DataError
from ..metrics.judges.captions import (
    CaptionJudge, CaptionJudges, caption_architecture, head_values, load_caption_judges, save_caption_judges,
)
from ..metrics.judges.contrastive import ImageTextJudge, image_text_architecture
from ..metrics.judges.net import state_bytes
from .judges import JudgeClassifier, JudgeClassifierConfig, fit_judge_model, one_image_safe

#: bump when a recipe or the networks change: older cache entries are then retrained
CACHE_VERSION = 2
#: the value of an attribute that means "the caption does not say"
UNNAMED = "none"

ATTRIBUTE_RECIPE: dict[str, Any] = {"epochs": 6, "batch_size": 128, "lr": 3e-3, "weight_decay": 0.05,
                                    "augment": None, "recolour": True}
IMAGE_TEXT_RECIPE: dict[str, Any] = {"epochs": 6, "batch_size": 256, "lr": 2e-3, "weight_decay": 0.05,
                                     "augment": None, "encoder": "bag", "recolour": True}


# ----------------------------------------------------------------------------- the data
def captioned_parts(ds: Dataset, what: str = "data") -> tuple[dict[str, list[str]], dict[str, str]]:
    """``(attribute values, unnamed values)`` of a captioned Dataset, or a ``DataError``."""
    values = ds.meta.get("attribute_values")
    if ds.text is None or not ds.attributes or not values:
        raise DataError(f"{what} ({ds.name}) has no captions with ground truth: the caption judges need a "
                        "captioned data set whose examples carry text, attributes and "
                        "meta['attribute_values'] (captioned-shapes, fashion-mnist-captions)")
    missing = [k for k in values if k not in ds.attributes]
    if missing:
        raise DataError(f"{what} ({ds.name}): attribute_values name {missing}, which the examples do not carry")
    values = {k: [str(v) for v in vals] for k, vals in values.items()}
    unnamed = {k: UNNAMED for k, vals in values.items() if UNNAMED in vals}
    return values, unnamed


def attribute_codes(ds: Dataset, values: Mapping[str, list[str]], unnamed: Mapping[str, str]) -> torch.Tensor:
    """One integer per example packing its head targets (mixed radix: head ``k`` takes
    ``target + 1``, 0 meaning unsaid); equal codes mean equal attributes."""
    heads = head_values(values, unnamed)
    code = torch.zeros(len(ds), dtype=torch.int64)
    stride = 1
    for k, h in heads.items():
        table = torch.tensor([h.index(v) + 1 if v in h else 0 for v in values[k]])
        code += table[ds.attributes[k]] * stride
        stride *= len(h) + 1
    return code


def unpack_codes(code: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """The head targets in ``attribute_codes`` (``-1``: unsaid), head by head."""
    out = []
    for k in sizes:
        out.append(code % (k + 1) - 1)
        code = code // (k + 1)
    return out


def _with_codes(ds: Dataset, values: Mapping[str, list[str]], unnamed: Mapping[str, str], text: bool) -> Dataset:
    import dataclasses

    return dataclasses.replace(ds, y=attribute_codes(ds, values, unnamed), classes=None,
                               text=ds.text if text else None, attributes={})


# ----------------------------------------------------------------------------- the models
class Recolour:
    """Recolouring by RGB channel permutations that map a data set's colours onto each
    other (``Recolour.of`` finds them), for the judges' training: a recoloured image keeps
    its shape, count and position and changes colour as the permutation says.

    Trained only on the (shape, colour) pairs the data shows, the attribute judge's shape
    head fails on every held-out pair (0 % on captioned-shapes' ``heldout`` split: a green
    circle is read through green-channel filters that never saw a circle), and the
    image-text judge ranks held-out captions last; recoloured training images show both
    every shape in every colour.

    Attributes:
        orders: ``(P, 3)`` channel orders (channel ``j`` of the result is ``orders[p, j]``).
        maps: ``(P, K)`` the colour value each colour value becomes.
        tokens: ``(P, V)`` token maps that swap the colour words of a caption, or ``None``.
    """

    def __init__(self, orders: torch.Tensor, maps: torch.Tensor, to_head: torch.Tensor, to_value: torch.Tensor,
                 tokens: torch.Tensor | None = None):
        self.orders, self.maps, self.tokens = orders, maps, tokens
        self._to_head, self._to_value = to_head, to_value

    @classmethod
    def of(cls, ds: Dataset, values: Mapping[str, list[str]], unnamed: Mapping[str, str],
           tokenizer: dict[str, Any] | None = None) -> "Recolour | None":
        """The recolouring of ``ds``, or ``None`` (no ``colour`` attribute, not RGB, no
        permutation but the identity; with ``tokenizer``: a colour name that is not one
        token). Each colour's channel code is read from the data (the channels its
        images light, ``> 0.25`` of the brightest): captioned-shapes' primaries and
        secondaries give all six orders."""
        import itertools

        if "colour" not in values or ds.x.shape[1] != 3 or "colour" not in ds.attributes:
            return None
        names = values["colour"]
        lit = ds.x.amax(dim=(2, 3))  # (N, 3) brightest pixel per channel
        codes = []
        for c in range(len(names)):
            rows = lit[ds.attributes["colour"] == c]
            if not len(rows):
                return None
            m = rows.mean(0)
            codes.append(tuple(bool(v) for v in (m > 0.25 * m.max()).tolist()))
        if len(set(codes)) != len(codes):
            return None
        index = {code: i for i, code in enumerate(codes)}
        orders, maps = [], []
        for p in itertools.permutations(range(3)):
            moved = [tuple(code[p[j]] for j in range(3)) for code in codes]
            if all(m in index for m in moved):
                orders.append(p)
                maps.append([index[m] for m in moved])
        if len(orders) < 2:
            return None
        head = head_values(values, unnamed)["colour"]
        to_head = torch.tensor([head.index(v) if v in head else -1 for v in names])
        to_value = torch.tensor([names.index(v) for v in head])
        tokens = None
        if tokenizer is not None:
            from ..data.tokenizers import from_config

            tok = from_config(tokenizer["tokenizer"], tokenizer["vocab"], tokenizer.get("merges", ()))
            ids = [tok.encode(n) for n in names]
            if any(len(i) != 1 for i in ids):
                return None
            word = torch.tensor([i[0] for i in ids])
            tokens = torch.arange(len(tokenizer["vocab"])).repeat(len(orders), 1)
            for p, m in enumerate(maps):
                tokens[p, word] = word[torch.tensor(m)]
        return cls(torch.tensor(orders), torch.tensor(maps), to_head, to_value, tokens)

    def draw(self, n: int) -> torch.Tensor:
        """A permutation per row, from torch's global RNG (which the trainer seeds and checkpoints)."""
        return torch.randint(len(self.orders), (n,))

    def images(self, x: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        idx = self.orders[pick].to(x.device)
        return torch.gather(x, 1, idx[:, :, None, None].expand_as(x))

    def colour_targets(self, t: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """Colour head targets (``-1``: unsaid, kept) after recolouring."""
        dev = t.device
        moved = self.maps.to(dev)[pick.to(dev), self._to_value.to(dev)[t.clamp_min(0)]]
        return torch.where(t >= 0, self._to_head.to(dev)[moved], t)

    def captions(self, text: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        return torch.gather(self.tokens.to(text.device)[pick.to(text.device)], 1, text)


def pack_targets(targets: list[torch.Tensor], sizes: list[int]) -> torch.Tensor:
    """The inverse of ``unpack_codes``."""
    code, stride = torch.zeros_like(targets[0]), 1
    for t, k in zip(targets, sizes):
        code = code + (t + 1) * stride
        stride *= k + 1
    return code


class AttributeClassifier(JudgeClassifier):
    """A ``CaptionJudge`` as a model the ``Trainer`` trains: ``forward(batch)`` returns the
    mean over heads of each head's cross-entropy (rows that leave the attribute unsaid
    masked out) and ``acc``, the share of images with every named attribute right.
    With a ``Recolour``, training images are recoloured at random and their colour
    targets follow."""

    model_type = "caption-judge"
    config_class = JudgeClassifierConfig

    def __init__(self, architecture: dict[str, Any], *, name: str, values: dict[str, list[str]],
                 unnamed: dict[str, str], recolour: Recolour | None = None):
        super().__init__(architecture, name=name, classes=[])
        self._spec = (architecture, name, values, unnamed)
        self._recolour = recolour

    def build(self) -> None:
        arch, name, values, unnamed = self._spec
        self.judge = CaptionJudge(arch, name=name, feature_space="pending", values=values, unnamed=unnamed)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        judge = self.judge
        x = batch["x"]
        targets = dict(zip(judge.heads, unpack_codes(batch["y"], [len(h) for h in judge.heads.values()])))
        if self.training and self._recolour is not None:
            pick = self._recolour.draw(len(x))
            x = self._recolour.images(x, pick)
            targets["colour"] = self._recolour.colour_targets(targets["colour"], pick)
        logits = judge.split_logits(one_image_safe(judge.net, x, training=self.training))
        losses, ok = [], torch.ones(len(x), dtype=torch.bool, device=x.device)
        for lg, t in zip(logits.values(), targets.values()):
            named = t >= 0
            if named.any():
                losses.append(F.cross_entropy(lg[named], t[named]))
            ok &= (lg.argmax(1) == t) | ~named
        return {"loss": torch.stack(losses).mean(), "acc": ok.float().mean()}


class ImageTextFit(JudgeClassifier):
    """An ``ImageTextJudge`` as a model the ``Trainer`` trains: ``forward(batch)`` returns
    the symmetric InfoNCE loss over the batch (pairs with equal attribute codes ``y`` are
    all positives) and ``acc``, the share of images whose most similar caption in the
    batch is a positive."""

    model_type = "image-text-judge"
    config_class = JudgeClassifierConfig

    def __init__(self, architecture: dict[str, Any], *, name: str, tokenizer: dict[str, Any],
                 recolour: Recolour | None = None, heads: dict[str, list[str]] | None = None):
        super().__init__(architecture, name=name, classes=[])
        self._spec = (architecture, name, tokenizer)
        self._recolour, self._heads = recolour, heads or {}

    def build(self) -> None:
        arch, name, tokenizer = self._spec
        self.judge = ImageTextJudge(arch, name=name, feature_space="pending", tokenizer=tokenizer)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, text, y = batch["x"], batch["text"], batch["y"]
        if self.training and self._recolour is not None and self._recolour.tokens is not None:
            rc, sizes = self._recolour, [len(h) for h in self._heads.values()]
            pick = rc.draw(len(x))
            x, text = rc.images(x, pick), rc.captions(text, pick)
            targets = dict(zip(self._heads, unpack_codes(y, sizes)))
            targets["colour"] = rc.colour_targets(targets["colour"], pick)
            y = pack_targets(list(targets.values()), sizes)
        logits = one_image_safe(self.judge, x, text, training=self.training)
        pos = (y[:, None] == y[None, :]).to(logits.dtype)
        target = pos / pos.sum(1, keepdim=True)  # symmetric: the same spread for captions
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        acc = pos.gather(1, logits.argmax(1, keepdim=True)).mean()
        return {"loss": loss, "acc": acc}


# ----------------------------------------------------------------------------- training
def _check_splits(splits: Mapping[str, Dataset]) -> None:
    missing = {"train", "val", "test"} - set(splits)
    if missing:
        raise DataError(f"the caption judges need train, val and test splits; missing {sorted(missing)}")


def _fit(model: JudgeClassifier, splits: Mapping[str, Dataset], values: Mapping[str, list[str]],
         unnamed: Mapping[str, str], recipe: Mapping[str, Any], *, text: bool, seed: int, threads: int | None,
         progress: bool) -> tuple[Any, list[dict[str, Any]], int, int]:
    """Train a judge-as-model on the coded ``train`` split (validated on ``val``) with
    ``recipe``; returns ``(its judge frozen in eval mode, history, threads, warm-up steps)``."""
    history, used, warmup = fit_judge_model(
        model, _with_codes(splits["train"], values, unnamed, text), _with_codes(splits["val"], values, unnamed, text),
        epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"],
        weight_decay=recipe["weight_decay"], seed=seed, threads=threads, augment=recipe["augment"],
        progress=progress)
    judge = model.judge
    judge.eval()
    judge.requires_grad_(False)
    return judge, history, used, warmup


def train_caption_judge(splits: Mapping[str, Dataset], *, name: str | None = None, epochs: int | None = None,
                        batch_size: int | None = None, lr: float | None = None, seed: int = 0,
                        threads: int | None = None, augment: str | None = None, recolour: bool | None = None,
                        progress: bool = True, architecture: dict[str, Any] | None = None) -> CaptionJudge:
    """Train the attribute judge on ``splits["train"]`` (validated on ``val`` each epoch)
    and measure it on ``test`` (and on ``heldout`` when there is one). Unset options take
    ``ATTRIBUTE_RECIPE``; ``recolour`` recolours training images by RGB channel
    permutations (``Recolour``) where the data has a ``colour`` attribute.

    Returns:
        The judge in eval mode; its ``info`` holds the per-attribute test accuracy (the
        ceiling of caption accuracy), the history and the wall time.
    """
    _check_splits(splits)
    r = {**ATTRIBUTE_RECIPE, **{k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr),
                                                  ("augment", augment), ("recolour", recolour)) if v is not None}}
    train = splits["train"]
    values, unnamed = captioned_parts(train, "the training split")
    name = name or str(train.meta.get("dataset") or train.name)
    arch = caption_architecture(train.shape, values, unnamed, **(architecture or {}))
    start = time.perf_counter()
    recolour = Recolour.of(train, values, unnamed) if r["recolour"] else None
    model = AttributeClassifier(arch, name=name, values=values, unnamed=unnamed, recolour=recolour)
    judge, history, used, warmup = _fit(model, splits, values, unnamed, r, text=False, seed=seed,
                                        threads=threads, progress=progress)
    test = splits["test"]
    acc = judge.attribute_accuracy(test.x, test.attributes)
    wall = time.perf_counter() - start
    judge.feature_space = f"judge:captions-{name}@{hashlib.sha256(state_bytes(judge.net)).hexdigest()[:8]}"
    judge.info = {"name": name, "feature_space": judge.feature_space,
                  "test_accuracy": round(acc["all"], 5),
                  "test_accuracy_per_attribute": {k: None if v is None else round(v, 5)
                                                  for k, v in acc["per_attribute"].items()},
                  "training": _training_record(splits, r, seed, used, warmup, wall, history),
                  "genlab_version": __version__, "torch_version": torch.__version__}
    if "heldout" in splits:
        held = judge.attribute_accuracy(splits["heldout"].x, splits["heldout"].attributes)
        judge.info["heldout_accuracy"] = round(held["all"], 5)
        judge.info["heldout_accuracy_per_attribute"] = {k: None if v is None else round(v, 5)
                                                        for k, v in held["per_attribute"].items()}
    return judge


def train_image_text_judge(splits: Mapping[str, Dataset], *, name: str | None = None, epochs: int | None = None,
                           batch_size: int | None = None, lr: float | None = None, encoder: str | None = None,
                           recolour: bool | None = None, seed: int = 0, threads: int | None = None,
                           progress: bool = True,
                           architecture: dict[str, Any] | None = None) -> ImageTextJudge:
    """Train the image-text judge on the real (image, caption) pairs of ``splits["train"]``
    with the symmetric InfoNCE loss; its R-precision on ``test`` images (among every
    distinct caption of the splits) is recorded in ``info``. Unset options take
    ``IMAGE_TEXT_RECIPE`` (``encoder``: ``bag`` or ``transformer``)."""
    from ..metrics.functional import r_precision

    _check_splits(splits)
    r = {**IMAGE_TEXT_RECIPE, **{k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr),
                                                  ("encoder", encoder), ("recolour", recolour))
                                 if v is not None}}
    train = splits["train"]
    values, unnamed = captioned_parts(train, "the training split")
    tok = train.meta.get("tokenizer")
    if not tok:
        raise DataError(f"{train.name}: no meta['tokenizer'] to spell the captions with")
    name = name or str(train.meta.get("dataset") or train.name)
    arch = image_text_architecture(train.shape, len(tok["vocab"]), int(train.text.shape[1]), encoder=r["encoder"],
                                   **(architecture or {}))
    start = time.perf_counter()
    recolour = Recolour.of(train, values, unnamed, tok) if r["recolour"] else None
    model = ImageTextFit(arch, name=name, tokenizer=dict(tok), recolour=recolour, heads=head_values(values, unnamed))
    judge, history, used, warmup = _fit(model, splits, values, unnamed, r, text=True, seed=seed,
                                        threads=threads, progress=progress)
    cands = candidate_captions(splits)
    test = splits["test"]
    truth = cands.index_of(test, values, unnamed)
    rp = r_precision(judge.encode_images(test.x), judge.encode_captions(cands.ids), truth, groups=cands.groups)
    wall = time.perf_counter() - start
    judge.feature_space = f"image-text:{name}@{hashlib.sha256(state_bytes(judge)).hexdigest()[:8]}"
    judge.info = {"name": name, "feature_space": judge.feature_space, "test_r_precision": round(rp, 5),
                  "candidates": len(cands.ids),
                  "training": _training_record(splits, r, seed, used, warmup, wall, history),
                  "genlab_version": __version__, "torch_version": torch.__version__}
    return judge


def _training_record(splits: Mapping[str, Dataset], recipe: dict[str, Any], seed: int, threads: int, warmup: int,
                     wall: float, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": str(splits["train"].meta.get("dataset") or splits["train"].name),
            "train_size": len(splits["train"]), "val_size": len(splits["val"]), "test_size": len(splits["test"]),
            **recipe, "optimizer": "AdamW", "schedule": f"linear warm-up {warmup} steps, cosine to 0",
            "seed": seed, "threads": threads, "wall_time_s": round(wall, 1), "history": history}


class Candidates:
    """The distinct captions of a data set (R-precision's candidates): ``ids`` ``(M, L)``,
    ``groups`` ``(M,)`` their attribute codes (captions of one code say the same thing)."""

    def __init__(self, ids: torch.Tensor, groups: torch.Tensor):
        self.ids, self.groups = ids, groups
        self._first = {int(g): i for i, g in reversed(list(enumerate(groups.tolist())))}

    def index_of(self, ds: Dataset, values: Mapping[str, list[str]], unnamed: Mapping[str, str]) -> torch.Tensor:
        """For each example of ``ds``, a candidate with its attributes (its own caption
        when ``ds``'s caption is among the candidates)."""
        codes = attribute_codes(ds, values, unnamed)
        rows = {tuple(r): i for i, r in enumerate(self.ids.tolist())}
        out = []
        for row, code in zip(ds.text.tolist(), codes.tolist()):
            i = rows.get(tuple(row[:self.ids.shape[1]]))
            if i is None or int(self.groups[i]) != code:
                i = self._first.get(code)
            if i is None:
                raise DataError(f"{ds.name}: an example's attributes match none of the {len(self.ids)} candidate "
                                "captions")
            out.append(i)
        return torch.tensor(out)


def candidate_captions(splits: Mapping[str, Dataset]) -> Candidates:
    """Every distinct caption of the splits written in the training wording (``meta
    ["caption_style"]`` not ``paraphrase``: train/val/test/heldout), with its attribute code."""
    values, unnamed = captioned_parts(splits["train"], "the training split")
    ids, groups = [], []
    width = max(int(ds.text.shape[1]) for ds in splits.values() if ds.text is not None)
    for ds in splits.values():
        if ds.text is None or ds.meta.get("caption_style") == "paraphrase" or not ds.attributes:
            continue
        text = F.pad(ds.text, (0, width - ds.text.shape[1]))
        ids.append(text)
        groups.append(attribute_codes(ds, values, unnamed))
    rows, inverse = torch.unique(torch.cat(ids), dim=0, return_inverse=True)
    code = torch.full((len(rows),), -1, dtype=torch.int64)
    code[inverse] = torch.cat(groups)
    return Candidates(rows, code)


# ----------------------------------------------------------------------------- the cache
def cache_root() -> Path:
    root = os.environ.get("GENLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genlab")
    return Path(root) / "judges"


def _digest(splits: Mapping[str, Dataset]) -> str:
    h = hashlib.sha256()
    for key in ("train", "val", "test"):
        ds = splits[key]
        for t in (ds.x, ds.text, *[ds.attributes[k] for k in sorted(ds.attributes)]):
            if t is not None:
                h.update(str(tuple(t.shape)).encode())
                h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def caption_judges(data: Any, *, data_options: dict[str, Any] | None = None, seed: int = 0,
                   threads: int | None = None, cache: bool = True, progress: bool = True,
                   attribute_options: dict[str, Any] | None = None,
                   image_text_options: dict[str, Any] | None = None) -> CaptionJudges:
    """The attribute judge and the image-text judge of a captioned data set, trained on its
    real training split on first use and cached.

    Args:
        data: a registered data set's name (``"captioned-shapes"``, ``"fashion-mnist-captions"``)
            or path, or a dict of ``train``/``val``/``test`` (and more) captioned Datasets.
        data_options: options of ``load_splits`` (``limit`` is dropped: judges train on the
            whole training split).
        seed, threads: the training seed and CPU threads (bit-identical results need the same).
        cache: read and write ``$GENLAB_CACHE/judges``; ``False`` trains afresh, keeping nothing.
        progress: show the trainers' progress.
        attribute_options, image_text_options: recipe overrides (``epochs``, ``batch_size``,
            ``lr``; ``encoder`` for the image-text judge) of ``train_caption_judge`` /
            ``train_image_text_judge``.

    Returns:
        ``CaptionJudges`` (``folder`` is the cache entry, ``None`` when not cached).

    Raises:
        DataError: data without captions and ground truth (``Dataset.text``,
            ``attributes``, ``meta["attribute_values"]``).
    """
    opts = {k: v for k, v in dict(data_options or {}).items() if k != "limit"}
    if isinstance(data, Mapping):
        splits, name = dict(data), None
    else:
        from ..data.datasets import load_splits

        splits, name = load_splits(data, **opts), os.fspath(data)
    _check_splits(splits)
    train = splits["train"]
    captioned_parts(train, "the training split")
    name = str(train.meta.get("dataset") or name or train.name)
    a_opts, t_opts = dict(attribute_options or {}), dict(image_text_options or {})
    key = hashlib.sha256(json.dumps({
        "version": CACHE_VERSION, "data": name, "options": opts, "content": _digest(splits), "seed": seed,
        "attributes": {**ATTRIBUTE_RECIPE, **a_opts}, "image_text": {**IMAGE_TEXT_RECIPE, **t_opts},
    }, sort_keys=True, default=str).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name) or "data"
    folder = cache_root() / f"{safe}-{key}"
    if cache and (folder / "image_text.json").is_file() and (folder / "attributes.json").is_file():
        return load_caption_judges(folder)
    kw = {"name": name, "seed": seed, "threads": threads, "progress": progress}
    judges = CaptionJudges(train_caption_judge(splits, **kw, **a_opts), train_image_text_judge(splits, **kw, **t_opts))
    if not cache:
        return judges
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    save_caption_judges(judges, tmp)
    try:
        os.replace(tmp, folder)  # another process may have finished first: keep its entry
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "image_text.json").is_file():
            raise
    judges.folder = folder
    return judges
