"""The image-text judge behind R-precision: a small contrastive model in the manner of CLIP
(Radford et al. 2021), trained on one data set's real (image, caption) pairs.

A CNN (``net.ConvEncoder`` and a linear projection) embeds images and a caption encoder —
a bag of word embeddings through a small MLP, or one Transformer layer over the caption
ids — embeds captions, both into one L2-normalised space where the cosine similarity of a
matching pair is high. ``genlab.evaluation.caption_judges`` trains it with the symmetric
InfoNCE loss; R-precision (``metrics.functional.r_precision``) ranks, for each image, all
distinct captions of the data set by their similarity to it.

Saved as ``<stem>.json`` (format ``genlab-image-text-judge``: architecture, tokenizer,
training record) beside ``<stem>.safetensors``; loading never unpickles.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .net import ConvEncoder, check_pixels, padded_map, read_record, state_bytes, write_record

FORMAT = "genlab-image-text-judge"
FORMAT_VERSION = 1
ENCODERS = ("bag", "transformer")
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps its temperature at 1/100


def image_text_architecture(input_shape: Sequence[int], vocab_size: int, text_len: int, *,
                            encoder: str = "bag", embed_dim: int = 64, text_dim: int = 64,
                            image: dict[str, Any] | None = None) -> dict[str, Any]:
    """The architecture config of an ``ImageTextJudge``.

    Args:
        input_shape: ``(C, H, W)``.
        vocab_size, text_len: the caption tokenizer's vocabulary and the caption rows' length.
        encoder: ``bag`` (mean of word embeddings, then an MLP) or ``transformer`` (one
            pre-norm Transformer layer with learnt positions, mean-pooled).
        embed_dim: the joint space.
        text_dim: word embedding width.
        image: overrides of the image CNN (``channels``, ``convs``, ``embed_dim``,
            ``input_pool``, ``pool``).
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    c, h, w = (int(v) for v in input_shape)
    input_pool = 0
    while min(h, w) >> input_pool > 32:
        input_pool += 1
    img = {"channels": [16, 32, 64], "convs": [1, 2, 2], "embed_dim": 128, "input_pool": input_pool, "pool": 2}
    unknown = set(image or {}) - set(img)
    if unknown:
        raise ValueError(f"unknown image encoder field(s) {sorted(unknown)}; known: {sorted(img)}")
    img.update(image or {})
    return {"input_shape": [c, h, w], "embed_dim": int(embed_dim), "image": img,
            "text": {"vocab_size": int(vocab_size), "text_len": int(text_len), "dim": int(text_dim),
                     "encoder": encoder, "heads": 4}}


class CaptionEncoder(nn.Module):
    """Caption ids ``(B, L)`` (padding 0) -> ``(B, out_dim)``.

    Args:
        vocab_size, text_len, dim, encoder, heads: see ``image_text_architecture``.
        out_dim: the joint space's width.
    """

    def __init__(self, vocab_size: int, text_len: int, dim: int, out_dim: int, encoder: str = "bag",
                 heads: int = 4):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        self.encoder, self.text_len = encoder, int(text_len)
        self.words = nn.Embedding(int(vocab_size), int(dim), padding_idx=0)
        if encoder == "transformer":
            self.positions = nn.Embedding(int(text_len), int(dim))
            self.layer = nn.TransformerEncoderLayer(int(dim), int(heads), dim_feedforward=2 * int(dim),
                                                    dropout=0.0, batch_first=True, norm_first=True)
            self.out = nn.Sequential(nn.LayerNorm(int(dim)), nn.Linear(int(dim), int(out_dim)))
        else:
            self.out = nn.Sequential(nn.Linear(int(dim), int(dim)), nn.ReLU(), nn.Linear(int(dim), int(out_dim)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()[:, :self.text_len]
        real = ids != 0
        h = self.words(ids)
        if self.encoder == "transformer":
            h = h + self.positions(torch.arange(ids.shape[1], device=ids.device))[None]
            # an all-padding row (the empty caption) would attend to nothing: let it see itself
            pad = ~real & real.any(1, keepdim=True)
            h = self.layer(h, src_key_padding_mask=pad)
        w = real.to(h.dtype)[..., None]
        pooled = (h * w).sum(1) / w.sum(1).clamp_min(1.0)
        return self.out(pooled)


class ImageTextJudge(nn.Module):
    """Images and captions into one space (cosine similarity); the network R-precision uses.

    Args:
        architecture: from ``image_text_architecture``.
        name: short name (the data set).
        feature_space: the label printed with scores (``"image-text:<name>@<hash>"``).
        tokenizer: the caption tokenizer's config (``Dataset.meta["tokenizer"]``), to
            encode strings.
        info: the JSON record (training data, accuracy, ...).
    """

    def __init__(self, architecture: dict[str, Any], *, name: str, feature_space: str,
                 tokenizer: dict[str, Any] | None = None, info: dict[str, Any] | None = None):
        super().__init__()
        arch = {**architecture, "image": dict(architecture["image"]), "text": dict(architecture["text"])}
        self.architecture = arch
        self.name, self.feature_space = str(name), str(feature_space)
        self.input_shape = tuple(int(v) for v in arch["input_shape"])
        self.tokenizer = dict(tokenizer or {})
        self.info = dict(info or {})
        d = int(arch["embed_dim"])
        self.image_encoder = ConvEncoder(self.input_shape, **arch["image"])
        self.image_proj = nn.Linear(int(arch["image"]["embed_dim"]), d)
        t = arch["text"]
        self.text_encoder = CaptionEncoder(t["vocab_size"], t["text_len"], t["dim"], d, t["encoder"],
                                           t.get("heads", 4))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    # -- raw (training) side
    def image_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> unit-length ``(B, D)`` (with gradients)."""
        return nn.functional.normalize(self.image_proj(self.image_encoder(x)), dim=1)

    def text_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """Caption ids ``(B, L)`` -> unit-length ``(B, D)`` (with gradients)."""
        return nn.functional.normalize(self.text_encoder(ids), dim=1)

    def scale(self) -> torch.Tensor:
        """The inverse temperature ``exp(logit_scale)``, at most 100."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The ``(B_images, B_captions)`` logits ``scale * cos``."""
        return self.scale() * self.image_embeddings(x) @ self.text_embeddings(ids).T

    # -- scoring side (eval mode, no gradients, float64 on the CPU, batch-independent)
    def encode_images(self, x: Any, batch_size: int = 500, progress: bool | None = None) -> torch.Tensor:
        """Images ``(N, C, H, W)`` in [0, 1] -> ``(N, D)`` float64 unit vectors."""
        x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
        if x.dim() == 3 and self.input_shape[0] == 1:
            x = x.unsqueeze(1)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"image-text judge {self.name!r} expects images of shape "
                             f"(N, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        x = check_pixels(x, self.name)
        (emb,) = padded_map(self, lambda b: (self.image_embeddings(b),), x, batch_size, progress=progress,
                            desc=f"image embeddings ({self.feature_space})")
        return nn.functional.normalize(emb, dim=1)

    def encode_captions(self, captions: Any, batch_size: int = 500) -> torch.Tensor:
        """Caption ids ``(M, L)`` (or strings, spelled by the judge's tokenizer) -> ``(M, D)``
        float64 unit vectors."""
        ids = self._ids(captions)
        (emb,) = padded_map(self, lambda b: (self.text_embeddings(b),), ids, batch_size, progress=False)
        return nn.functional.normalize(emb, dim=1)

    def similarity(self, images: Any, captions: Any) -> torch.Tensor:
        """Cosine similarities ``(N, M)`` of images and captions (float64)."""
        return self.encode_images(images) @ self.encode_captions(captions).T

    def _ids(self, captions: Any) -> torch.Tensor:
        if isinstance(captions, str):
            captions = [captions]
        if isinstance(captions, (list, tuple)) and captions and all(isinstance(c, str) for c in captions):
            if not self.tokenizer:
                raise ValueError(f"image-text judge {self.name!r} has no tokenizer: pass caption ids")
            from ...data.tokenizers import encode_captions, from_config

            tok = from_config(self.tokenizer["tokenizer"], self.tokenizer["vocab"], self.tokenizer.get("merges", ()))
            return encode_captions(tok, list(captions), self.architecture["text"]["text_len"])
        ids = torch.as_tensor(captions)
        if ids.dim() != 2 or ids.is_floating_point():
            raise ValueError(f"captions must be strings or token ids (M, L), got {tuple(ids.shape)} {ids.dtype}")
        vocab = self.architecture["text"]["vocab_size"]
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"caption token ids must be in 0..{vocab - 1}")
        return ids.long()

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, feature_space={self.feature_space!r}, input_shape={self.input_shape}, "
                f"text_encoder={self.architecture['text']['encoder']!r}")


def save_image_text_judge(judge: ImageTextJudge, folder: str | Path, *, stem: str = "image_text") -> Path:
    """Write ``folder/<stem>.safetensors`` and ``folder/<stem>.json`` (atomically)."""
    record = dict(judge.info)
    record.update({"format": FORMAT, "format_version": FORMAT_VERSION, "name": judge.name,
                   "feature_space": judge.feature_space, "architecture": judge.architecture,
                   "tokenizer": judge.tokenizer, "params": sum(p.numel() for p in judge.parameters())})
    judge.info = write_record(folder, stem, state_bytes(judge, FORMAT), record)
    return Path(folder) / f"{stem}.json"


def read_image_text_judge(json_path: str | Path) -> ImageTextJudge:
    """Load an ``ImageTextJudge`` (eval mode, gradients off).

    Raises:
        ModelFormatError: missing or damaged files, a newer format, mismatched weights.
    """
    from ...errors import ModelFormatError

    record, state = read_record(json_path, FORMAT, FORMAT_VERSION)
    try:
        judge = ImageTextJudge(record["architecture"], name=record["name"], feature_space=record["feature_space"],
                               tokenizer=record.get("tokenizer"), info=record)
        judge.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFormatError(f"image-text judge {json_path} cannot be rebuilt: {err}") from err
    judge.eval()
    judge.requires_grad_(False)
    return judge
