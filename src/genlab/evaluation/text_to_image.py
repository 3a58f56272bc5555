"""Text-to-image evaluation: ``genlab evaluate RUN`` for an image model conditioned on
captions (``"prompt"`` in ``tags.conditions``) whose data carry ground truth
(``Dataset.text``, ``attributes``, ``meta["attribute_values"]``: captioned-shapes,
fashion-mnist-captions).

For each guidance ``w`` (default 0, 1, 3; 0 samples the unconditional model) the model
draws one image for each of the first ``n`` test captions (chunk ``i`` seeded by
``sample_io.chunk_generator(seed, i)``, the same noise for every ``w``), and the caption
judges (``evaluation.caption_judges``, trained on the real training split and cached)
score them:

* caption accuracy per attribute and for all attributes at once (the attribute judge),
  beside the judge's accuracy on the real test images of the same captions: the ceiling;
* R-precision (the image-text judge ranks every distinct caption of the data set for
  each image; right when the true one is first), with its chance level and the real
  images' score;
* FID and KID in the attribute judge's feature space against the real test images, with
  the real-vs-real floor (as many real training images);
* diversity within a caption: the mean feature distance between images of one caption
  (guidance trades it for accuracy), beside the real images' own;

and at ``probe_guidance`` (default 3) caption accuracy on the ``heldout`` split (shape /
colour pairs training never showed) and on the ``paraphrased`` split (the test captions
in wordings no training caption uses), where the data have them.

The record goes where the image evaluator puts its own (``eval.json["evaluation"]``, an
``eval`` row in ``metrics.jsonl``), with ``guidance_curve``, ``ceiling``, ``chance``,
``heldout`` and ``paraphrased`` beside the printed rows; the report's text-to-image
section (``report/text_to_image.py``) draws from it.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping, Sequence

import torch

from ..capabilities import EVALUATORS, Tags, require
from ..errors import DataError
from .evaluate import describe_sets, score_row, store_record

#: guidance values of the curve, and the one the held-out and paraphrased captions get
GUIDANCES = (0.0, 1.0, 3.0)
PROBE_GUIDANCE = 3.0
#: captions per guidance value by default: a few hundred keep a laptop's evaluation to minutes
DEFAULT_N = 300


def text_conditional(tags: Tags) -> bool:
    """An image model that takes captions (``"prompt"`` in its conditions)."""
    return tags.modality == "image" and "prompt" in tags.conditions


def has_captions(data: Any) -> bool:
    """Data with captions and their ground truth (what the caption judges need)."""
    meta = getattr(data, "meta", None) or {}
    return getattr(data, "text", None) is not None and bool(getattr(data, "attributes", None)) \
        and bool(meta.get("attribute_values"))


def gkey(w: float) -> str:
    """``3.0`` -> ``"w3"``: the suffix of a row's metric name."""
    return f"w{float(w):g}"


# ----------------------------------------------------------------------------- sampling
@torch.no_grad()
def sample_for_captions(model: Any, captions: Sequence[str], *, guidance: float, seed: int = 0,
                        batch_size: int = 250, **options: Any) -> torch.Tensor:
    """One image per caption, in chunks of ``batch_size`` (chunk ``i`` drawn with
    ``chunk_generator(seed, i)``, so the noise does not depend on ``guidance``); images
    clamped to ``[0, 1]``. ``options`` go to ``model.sample`` (``steps``, ``sampler``)."""
    from ..sample_io import chunk_generator

    out = []
    for i, start in enumerate(range(0, len(captions), batch_size)):
        part = list(captions[start:start + batch_size])
        x = model.sample(len(part), prompt=part, guidance=float(guidance), generator=chunk_generator(seed, i),
                         **options).float()
        if not torch.isfinite(x).all():
            raise DataError("the model produced non-finite samples; it cannot be scored")
        out.append(x.cpu().clamp(0, 1))
    return torch.cat(out)


# ----------------------------------------------------------------------------- scoring
class _Scorer:
    """The judges' view of one evaluation: the candidates' embeddings and the real images'
    features, computed once and reused for every guidance value."""

    def __init__(self, judges: Any, splits: Mapping[str, Any], seed: int):
        from .caption_judges import candidate_captions, captioned_parts

        self.judges, self.seed = judges, seed
        self.values, self.unnamed = captioned_parts(splits["train"], "the training split")
        self.cands = candidate_captions(splits)
        self.text_emb = judges.image_text.encode_captions(self.cands.ids)
        self.unnamed_index = judges.attributes.unnamed_index()

    def truth_index(self, ds: Any) -> torch.Tensor:
        return self.cands.index_of(ds, self.values, self.unnamed)

    def accuracy(self, x: torch.Tensor, ds: Any) -> tuple[dict[str, Any], torch.Tensor]:
        from ..metrics.functional import attribute_accuracy

        out = self.judges.attributes.extract(x, progress=False)
        judge = self.judges.attributes
        acc = attribute_accuracy(out["predictions"], {k: ds.attributes[k][:len(x)] for k in judge.heads},
                                 unnamed=self.unnamed_index)
        acc.pop("correct")
        return acc, out["features"]

    def r_precision(self, x: torch.Tensor, truth: torch.Tensor) -> float:
        from ..metrics.functional import r_precision

        return r_precision(self.judges.image_text.encode_images(x, progress=False), self.text_emb, truth,
                           groups=self.cands.groups)

    def chance(self, truth: torch.Tensor) -> float:
        from ..metrics.functional import r_precision_chance

        return r_precision_chance(truth, groups=self.cands.groups)

    def distances(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        from ..metrics import functional as F

        size = min(len(real), len(fake), 1000)
        k, k_std = F.kid(real, fake, subset_size=size, seed=self.seed)
        return {"fid": F.fid(real, fake), "kid": k, "kid_std": k_std}


def score_text_to_image(model: Any, splits: Mapping[str, Any], *, judges: Any, n: int = DEFAULT_N,
                        guidances: Sequence[float] = GUIDANCES, probe_guidance: float | None = PROBE_GUIDANCE,
                        seed: int = 0, batch_size: int = 250, sample_options: Mapping[str, Any] | None = None,
                        progress: bool | None = None) -> dict[str, Any]:
    """Score a text-conditional image model against its captioned data (see the module
    docstring); writes nothing.

    Args:
        model: a genlab model with the ``"prompt"`` condition.
        splits: ``train``, ``val``, ``test`` (and ``heldout``, ``paraphrased``) captioned Datasets.
        judges: ``CaptionJudges`` trained on the same data (``caption_judges``).
        n: captions (= images) per guidance value, the first ``n`` of ``test`` (and as many
            of ``heldout`` and ``paraphrased``).
        guidances: the guidance curve's ``w`` values.
        probe_guidance: the ``w`` of the held-out and paraphrased captions (``None``: skip them).
        seed: sampling seed (and KID's subsets).
        batch_size: images per ``model.sample`` call.
        sample_options: more ``model.sample`` keywords (``steps``, ``sampler``).
        progress: a bar over the sampling passes (default: when there are 10+ chunks).

    Returns:
        An evaluation record: ``rows`` (``score_row``s: each score beside the real images'
        value — the ceiling for accuracies and R-precision, the real-vs-real floor for
        FID/KID), ``guidance_curve`` (one dict per ``w``), ``ceiling``, ``chance``,
        ``heldout``, ``paraphrased``, ``captions`` (the strings scored), ``notes``.
    """
    from ..data.captions import decode_captions
    from ..metrics.functional import diversity_within
    from ..progress import Progress

    require(model, "prompt", what="text-to-image evaluation", modality="image")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    guidances = [float(w) for w in guidances]
    if not guidances:
        raise ValueError("give at least one guidance value")
    test, train = splits["test"], splits["train"]
    for key in ("train", "test"):
        if not has_captions(splits[key]):
            raise DataError(f"text-to-image evaluation needs captioned {key} data with ground truth "
                            f"(text, attributes, meta['attribute_values']); {splits[key].name} has none")
    n = min(n, len(test))
    sc = _Scorer(judges, splits, seed)
    space = judges.attributes.feature_space
    rspace = judges.image_text.feature_space
    opts = dict(sample_options or {})
    notes: list[str] = []
    probes = [k for k in ("heldout", "paraphrased") if probe_guidance is not None and k in splits
              and has_captions(splits[k])]
    passes = len(guidances) + len(probes)
    bar = Progress(passes * n, "sampling for captions", "image",
                   enabled=progress if progress is not None else passes * n >= 10 * batch_size)

    def draw(captions: list[str], w: float) -> torch.Tensor:
        x = sample_for_captions(model, captions, guidance=w, seed=seed, batch_size=batch_size, **opts)
        bar.update(len(x))
        return x

    # the real side: ceilings and floors
    sub = _head(test, n)
    captions = decode_captions(sub)
    truth = sc.truth_index(sub)
    real_acc, real_feat = sc.accuracy(sub.x, sub)
    floor_feat = sc.judges.attributes.extract(train.x[:n], progress=False)["features"]
    floor = sc.distances(real_feat, floor_feat)
    real_div = diversity_within(real_feat, truth)["diversity"]
    ceiling = {"all": real_acc["all"], "per_attribute": real_acc["per_attribute"],
               "r_precision": sc.r_precision(sub.x, truth), "diversity": real_div,
               "fid_floor": floor["fid"], "kid_floor": floor["kid"], "kid_floor_std": floor["kid_std"]}
    chance = {"r_precision": sc.chance(truth), "candidates": len(sc.cands.ids)}

    rows, curve = [], []
    with bar:
        for w in guidances:
            x = draw(captions, w)
            acc, feat = sc.accuracy(x, sub)
            dist = sc.distances(real_feat, feat)
            point = {"w": w, "all": acc["all"], "per_attribute": acc["per_attribute"],
                     "r_precision": sc.r_precision(x, truth), **dist,
                     "diversity": diversity_within(feat, truth)["diversity"]}
            curve.append(point)
            g = gkey(w)
            rows.append(score_row(f"all_attributes@{g}", point["all"], ceiling["all"], space, True))
            for k, v in acc["per_attribute"].items():
                rows.append(score_row(f"{k}@{g}", v, ceiling["per_attribute"][k], space, True))
            rows.append(score_row(f"r_precision@{g}", point["r_precision"], ceiling["r_precision"], rspace, True,
                                  chance=chance["r_precision"]))
            rows.append(score_row(f"fid@{g}", dist["fid"], floor["fid"], space, False))
            rows.append(score_row(f"kid@{g}", dist["kid"], floor["kid"], space, False, std=dist["kid_std"]))
            rows.append(score_row(f"diversity@{g}", point["diversity"], real_div, space, None,
                                  note="mean feature distance between images of one caption"))
        extra: dict[str, Any] = {}
        for key in probes:
            ds = _head(splits[key], n)
            x = draw(decode_captions(ds), probe_guidance)
            acc, _ = sc.accuracy(x, ds)
            if key == "heldout":  # other images: their own ceiling
                ceil, _ = sc.accuracy(ds.x, ds)
            else:  # the test images, captioned in other words
                ceil = real_acc
            g = gkey(probe_guidance)
            extra[key] = {"w": probe_guidance, "n": len(ds), "all": acc["all"],
                          "per_attribute": acc["per_attribute"], "ceiling": ceil["all"],
                          "ceiling_per_attribute": ceil["per_attribute"]}
            rows.append(score_row(f"{key}_all@{g}", acc["all"], ceil["all"], space, True))
            for k, v in acc["per_attribute"].items():
                rows.append(score_row(f"{key}_{k}@{g}", v, ceil["per_attribute"][k], space, True))
    missing = [k for k in ("heldout", "paraphrased") if k not in probes]
    if missing and probe_guidance is not None:
        notes.append(f"no {' or '.join(missing)} split with captions in {test.name}: not scored")
    notes.append(f"R-precision chance: {chance['r_precision']:.4g} ({chance['candidates']} distinct captions "
                 f"ranked for each image, by {rspace})")
    notes.append(f"caption accuracies are read by {space}; its accuracy on the real images of the same "
                 "captions (the real-vs-real column) is their ceiling")
    if n < 2000:
        notes.append(f"FID and KID on only {n} images per guidance value: biased at this size, compare only "
                     "scores of equal sample counts")
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "kind": "text-to-image",
            "n_fake": n, "n_real": n, "n_floor": min(n, len(train)), "seed": seed, "judge": space,
            "image_text_judge": rspace, "metrics": ["caption_accuracy", "r_precision", "fid", "kid", "diversity"],
            "guidances": guidances, "sample_options": opts, "rows": rows, "guidance_curve": curve,
            "ceiling": ceiling, "chance": chance, **extra, "captions": captions,
            "notes": notes, "figures": {}, "closest_pairs": []}


def _head(ds: Any, n: int) -> Any:
    """The first ``n`` examples of a Dataset (images, captions and attributes)."""
    import dataclasses

    return dataclasses.replace(ds, x=ds.x[:n], y=None if ds.y is None else ds.y[:n], text=ds.text[:n],
                               attributes={k: v[:n] for k, v in ds.attributes.items()})


# ----------------------------------------------------------------------------- runs
def run_judges(run: Any, *, judge: str | None = None, progress: bool | None = None,
               **options: Any) -> Any:
    """The caption judges of a run's data: ``judge`` a folder written by
    ``save_caption_judges``, else trained on the run's data (``caption_judges``; cached)."""
    from .caption_judges import caption_judges

    if judge:
        from ..metrics.judges.captions import load_caption_judges

        return load_caption_judges(judge)
    return caption_judges(run.info["data"], data_options=run.info.get("data_options"),
                          progress=progress is not False, **options)


def evaluate_text_to_image(run: Any, *, n: int = DEFAULT_N, guidances: Sequence[float] = GUIDANCES,
                           probe_guidance: float | None = PROBE_GUIDANCE, seed: int = 0,
                           judge: str | None = None, judge_options: Mapping[str, Any] | None = None,
                           sample_options: Mapping[str, Any] | None = None, batch_size: int = 250,
                           progress: bool | None = None, model: Any = None, splits: Any = None) -> dict[str, Any]:
    """Score a text-to-image run (``score_text_to_image``) and store the record in it
    (``eval.json["evaluation"]``, an ``eval`` row in ``metrics.jsonl``).

    Args:
        run: a ``Run`` or its folder.
        judge: a caption-judge folder; default: trained on the run's data and cached.
        judge_options: options of ``caption_judges`` (``attribute_options``,
            ``image_text_options``, ``threads``, ``seed``).
        model, splits: the run's, when already loaded.
        n, guidances, probe_guidance, seed, sample_options, batch_size, progress: as for
            ``score_text_to_image``.
    """
    from ..runs import Run

    run = run if isinstance(run, Run) else Run(run)
    model = model if model is not None else run.model()
    splits = splits if splits is not None else run.data_splits()
    judges = run_judges(run, judge=judge, progress=progress, **dict(judge_options or {}))
    dev = getattr(model, "device", None)
    if dev is not None and dev.type != "cpu":
        judges.to(dev)  # the judges score where the model samples
    record = score_text_to_image(model, splits, judges=judges, n=n, guidances=guidances,
                                 probe_guidance=probe_guidance, seed=seed, batch_size=batch_size,
                                 sample_options=sample_options, progress=progress)
    describe_sets(record, "image")
    store_record(run, record)
    return record


@EVALUATORS.register("text-to-image", requires=text_conditional, accepts=has_captions, order=25, default_n=DEFAULT_N,
                     what="text-conditional image models on captioned data: caption accuracy, R-precision, "
                          "FID/KID and diversity along the guidance curve, held-out pairs, paraphrases")
def _evaluate(run: Any, model: Any, splits: dict[str, Any], *, n: int, seed: int, judge: str | None = None,
              progress: bool | None = None, **_: Any) -> dict[str, Any]:
    """``genlab evaluate RUN`` for a text-to-image run: ``evaluate_text_to_image`` with
    ``n`` captions per guidance value (``DEFAULT_N`` when ``genlab evaluate`` gets no ``-n``)."""
    return evaluate_text_to_image(run, n=int(n), seed=seed, judge=judge, progress=progress, model=model,
                                  splits=splits)
