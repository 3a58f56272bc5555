"""The caption judge: a small CNN with one classification head per attribute a caption
names (``shape``, ``colour``, ``count``, ``position`` for captioned-shapes; ``class`` for
Fashion-MNIST captions), and ``CaptionJudges``, the pair of judges text-to-image scores
run on (this one and the image-text model of ``judges.contrastive``).

The heads are the slices of one linear layer over the judge's embedding, one slice per
attribute, each trained with its own cross-entropy (``genlab.evaluation.caption_judges``
trains it on real training images and their ``Dataset.attributes``). A value meaning "the
caption does not say" (captioned-shapes' position ``none`` for two or three objects) gets
no output: those rows are masked out of that head's loss and accuracy. The embedding, the
penultimate layer, is the feature space of FID and KID on these data sets.

    >>> judges = caption_judges("captioned-shapes")             # genlab.evaluation: trains or loads
    >>> out = judges.attributes.extract(images)
    >>> out["predictions"]["colour"][:4]                         # value indices, as Dataset.attributes
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from .net import JUDGE_KINDS, CNNJudge, default_architecture


def head_values(values: Mapping[str, Sequence[str]], unnamed: Mapping[str, str] | None = None
                ) -> dict[str, list[str]]:
    """The classes of each head: an attribute's values without its ``unnamed`` one."""
    unnamed = dict(unnamed or {})
    return {k: [v for v in vals if v != unnamed.get(k)] for k, vals in values.items()}


def caption_architecture(input_shape: Sequence[int], values: Mapping[str, Sequence[str]],
                         unnamed: Mapping[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """``default_architecture`` for a caption judge: as many outputs as the heads have
    classes, smaller stages (16, 32, 64 channels) and a 2x2 grid before the embedding (it
    must tell where things are)."""
    k = sum(len(v) for v in head_values(values, unnamed).values())
    return default_architecture(input_shape, k, **{"channels": [16, 32, 64], "pool": 2, **overrides})


class CaptionJudge(CNNJudge):
    """A CNN judge with one head per attribute.

    Args:
        architecture: from ``caption_architecture``.
        name, feature_space, info: as for ``Judge``.
        values: ``{attribute: value names}`` as in a captioned Dataset's
            ``meta["attribute_values"]`` (the ground truth indexes these).
        unnamed: ``{attribute: value}`` the caption leaves unsaid (no output for it).
    """

    kind = "attributes"

    def __init__(self, architecture: dict[str, Any], *, name: str, feature_space: str,
                 values: Mapping[str, Sequence[str]], unnamed: Mapping[str, str] | None = None,
                 info: dict[str, Any] | None = None):
        vals = {k: [str(v) for v in vs] for k, vs in values.items()}
        unsaid = {k: str(v) for k, v in dict(unnamed or {}).items() if v in vals.get(k, ())}
        heads = head_values(vals, unsaid)
        if not heads or any(len(v) < 2 for v in heads.values()):
            raise ValueError(f"every attribute needs at least two values to tell apart, got {heads}")
        classes = [f"{k}={v}" for k, h in heads.items() for v in h]
        super().__init__(architecture, name=name, feature_space=feature_space, classes=classes, info=info)
        self.values, self.unnamed, self.heads = vals, unsaid, heads
        # value index of each head output, and head target of each value (-1: unnamed)
        self._to_value = {k: torch.tensor([self.values[k].index(v) for v in h]) for k, h in self.heads.items()}
        self._to_head = {k: torch.tensor([h.index(v) if v in h else -1 for v in self.values[k]])
                         for k, h in self.heads.items()}

    @property
    def attributes(self) -> list[str]:
        return list(self.heads)

    def unnamed_index(self) -> dict[str, int]:
        """``{attribute: value index}`` of the values captions leave unsaid."""
        return {k: self.values[k].index(v) for k, v in self.unnamed.items()}

    def split_logits(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, sum K)`` -> ``{attribute: (B, K_attribute)}``."""
        out, start = {}, 0
        for k, h in self.heads.items():
            out[k] = logits[:, start:start + len(h)]
            start += len(h)
        return out

    def head_targets(self, attributes: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Ground truth value indices -> head targets (``-1`` where the caption does not say)."""
        return {k: self._to_head[k].to(attributes[k].device)[attributes[k].long()] for k in self.heads}

    def predict(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits -> ``{attribute: (B,) value indices}`` (the argmax of each head)."""
        return {k: self._to_value[k].to(lg.device)[lg.argmax(1)] for k, lg in self.split_logits(logits).items()}

    def extract(self, x: Any, batch_size: int = 500, progress: bool | None = None) -> dict[str, Any]:
        """``Judge.extract`` with ``probs`` a softmax per head and ``predictions``:
        ``{attribute: (N,) value indices}``."""
        out = super().extract(x, batch_size=batch_size, progress=progress)
        parts = self.split_logits(out["logits"])
        out["probs"] = torch.cat([torch.softmax(p, dim=1) for p in parts.values()], dim=1)
        out["predictions"] = self.predict(out["logits"])
        return out

    def attribute_accuracy(self, x: Any, attributes: Mapping[str, Any], batch_size: int = 500) -> dict[str, Any]:
        """``metrics.functional.attribute_accuracy`` of the judge's predictions on images
        ``x`` against ``attributes`` (``{attribute: (N,) value indices}``)."""
        from .._captions import attribute_accuracy

        pred = self.extract(x, batch_size=batch_size, progress=False)["predictions"]
        return attribute_accuracy(pred, {k: attributes[k] for k in self.heads}, unnamed=self.unnamed_index())

    def accuracy(self, x: Any, y: Any, batch_size: int = 500) -> float:
        """All-attributes accuracy against ``y``, a ``{attribute: values}`` mapping."""
        if not isinstance(y, Mapping):
            raise ValueError("a caption judge scores attributes: pass {attribute: (N,) value indices}")
        return self.attribute_accuracy(x, y, batch_size=batch_size)["all"]

    def _record_extra(self) -> dict[str, Any]:
        # the JSON record's keys are sorted on writing: the heads' order (the logits' layout) is kept apart
        return {"kind": self.kind, "values": self.values, "attribute_order": list(self.values),
                "unnamed": self.unnamed}

    @classmethod
    def _from_record(cls, record: dict[str, Any]) -> "CaptionJudge":
        values = {k: record["values"][k] for k in record["attribute_order"]}
        return cls(record["architecture"], name=record["name"], feature_space=record["feature_space"],
                   values=values, unnamed=record.get("unnamed"), info=record)


JUDGE_KINDS["attributes"] = CaptionJudge


@dataclasses.dataclass
class CaptionJudges:
    """The two networks text-to-image scores run on, trained on one data set's real images.

    Attributes:
        attributes: the ``CaptionJudge`` (caption accuracy; its embedding is the space of
            FID and KID).
        image_text: the ``ImageTextJudge`` (R-precision).
        folder: where they are stored (``None``: not saved).
    """

    attributes: CaptionJudge
    image_text: Any
    folder: Path | None = None

    def to(self, device: Any) -> "CaptionJudges":
        self.attributes.to(device)
        self.image_text.to(device)
        return self

    @property
    def feature_space(self) -> str:
        return self.attributes.feature_space


ATTRIBUTES_STEM, IMAGE_TEXT_STEM = "attributes", "image_text"


def save_caption_judges(judges: CaptionJudges, folder: str | Path) -> Path:
    """Write both judges into ``folder`` (``attributes.*`` and ``image_text.*``)."""
    from .contrastive import save_image_text_judge
    from .net import save_judge

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_judge(judges.attributes, folder, stem=ATTRIBUTES_STEM)
    save_image_text_judge(judges.image_text, folder, stem=IMAGE_TEXT_STEM)
    judges.folder = folder
    return folder


def load_caption_judges(folder: str | Path) -> CaptionJudges:
    """The judges ``save_caption_judges`` wrote into ``folder``.

    Raises:
        ModelFormatError: a missing or damaged file (named).
    """
    from .contrastive import read_image_text_judge
    from .net import read_judge

    folder = Path(folder)
    attributes = read_judge(folder / f"{ATTRIBUTES_STEM}.json")
    if not isinstance(attributes, CaptionJudge):
        from ...errors import ModelFormatError

        raise ModelFormatError(f"{folder / (ATTRIBUTES_STEM + '.json')} is not a caption (attributes) judge")
    return CaptionJudges(attributes, read_image_text_judge(folder / f"{IMAGE_TEXT_STEM}.json"), folder)
