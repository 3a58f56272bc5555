"""Judges: the feature networks behind genlab's sample-quality scores.

A judge maps images ``(B, C, H, W)`` in ``[0, 1]`` to a feature vector (the embedding
FID, KID and precision/recall compare) and to class logits (the probabilities the
Inception Score and mode coverage use). Every judge names its ``feature_space``; scores
computed in different feature spaces are not comparable, so every score prints it.

This module holds the ``Judge`` interface, the small CNN genlab trains as a judge
(``JudgeCNN`` inside ``CNNJudge``) and the judge file format: ``<stem>.json`` (the
architecture, classes, training record) beside ``<stem>.safetensors`` (tensors only).
Loading never unpickles.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ... import __version__
from ...base import atomic_write_bytes, atomic_write_json
from ...errors import ModelFormatError

FORMAT = "genlab-judge"
FORMAT_VERSION = 1
RANGE_TOLERANCE = 1e-4  # values this far outside [0, 1] are rounding, not a mistake
# extract() zero-pads each batch to a multiple of this many images: CPU convolution
# kernels (oneDNN) are chosen by batch size and small odd batches round differently, so
# padding makes the features of an image the same bit for bit whatever batch_size is.
PAD_MULTIPLE = 16


# ----------------------------------------------------------------------------- the CNN
def default_architecture(input_shape: Sequence[int], num_classes: int,
                         **overrides: Any) -> dict[str, Any]:
    """The architecture config of a CNN judge for images of ``input_shape``.

    Three stages of 3x3 conv + BatchNorm + ReLU (32, 64, 128 channels; 1, 2, 2 convs),
    2x2 max-pooling between stages, global average pooling, a 128-d ReLU embedding (the
    feature space), dropout and a linear classifier. Images larger than 32 pixels are
    first average-pooled down to at most 32 so that cost stays small.

    Args:
        input_shape: ``(C, H, W)``.
        num_classes: number of classes (>= 2).
        **overrides: replace any field (``channels``, ``convs``, ``embed_dim``,
            ``dropout``, ``input_pool``, ``pool``).

    Returns:
        A JSON-able dict accepted by ``JudgeCNN(**arch)``.
    """
    c, h, w = (int(v) for v in input_shape)
    input_pool = 0
    while min(h, w) >> input_pool > 32:
        input_pool += 1
    arch = {"input_shape": [c, h, w], "num_classes": int(num_classes),
            "channels": [32, 64, 128], "convs": [1, 2, 2], "embed_dim": 128,
            "dropout": 0.3, "input_pool": input_pool, "pool": 1}
    unknown = set(overrides) - set(arch)
    if unknown:
        raise ValueError(f"unknown judge architecture field(s) {sorted(unknown)}; "
                         f"known: {sorted(arch)}")
    arch.update(overrides)
    return arch


class ConvEncoder(nn.Module):
    """The convolutional part of a judge: images to a non-negative embedding.

    Three (by default) stages of 3x3 conv + BatchNorm + ReLU with 2x2 max-pooling between
    them, average pooling to a ``pool x pool`` grid, and a linear layer + ReLU to
    ``embed_dim`` features.

    Args:
        input_shape: ``(C, H, W)`` of the images.
        channels: output channels of each stage.
        convs: 3x3 convolutions per stage (same length as ``channels``).
        embed_dim: size ``F`` of the embedding (the features).
        input_pool: the input is average-pooled by ``2**input_pool`` first.
        pool: the last stage is average-pooled to a ``pool x pool`` grid before the
            embedding (1: global average pooling; 2 or more keeps where things are, which a
            judge of positions needs).
    """

    def __init__(self, input_shape: Sequence[int], channels: Sequence[int] = (32, 64, 128),
                 convs: Sequence[int] = (1, 2, 2), embed_dim: int = 128, input_pool: int = 0,
                 pool: int = 1):
        super().__init__()
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
        if len(channels) != len(convs) or not channels or min(convs) < 1:
            raise ValueError(f"channels {list(channels)} and convs {list(convs)} must be "
                             "non-empty, of equal length, with at least one conv per stage")
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool must be a positive integer, got {pool!r}")
        c, h, w = (int(v) for v in input_shape)
        layers: list[nn.Module] = []
        if input_pool:
            k = 2 ** int(input_pool)
            layers.append(nn.AvgPool2d(k))
            h, w = h // k, w // k
            if min(h, w) < 1:
                raise ValueError(f"input_pool={input_pool} shrinks {tuple(input_shape)} "
                                 "to nothing")
        for i, (out, reps) in enumerate(zip(channels, convs)):
            for _ in range(int(reps)):
                layers += [nn.Conv2d(c, int(out), 3, padding=1, bias=False),
                           nn.BatchNorm2d(int(out)), nn.ReLU(inplace=True)]
                c = int(out)
            if i < len(channels) - 1 and min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        self.body = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
                                   nn.Linear(c * pool * pool, int(embed_dim)), nn.ReLU())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, embed_dim)`` embedding (non-negative)."""
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class JudgeCNN(ConvEncoder):
    """A small image classifier whose penultimate layer is the judge's feature space: a
    ``ConvEncoder``, dropout and a linear classifier.

    Args:
        input_shape, channels, convs, embed_dim, input_pool, pool: as for ``ConvEncoder``.
        num_classes: classifier outputs ``K``.
        dropout: dropout on the embedding before the classifier (training only).
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int,
                 channels: Sequence[int] = (32, 64, 128), convs: Sequence[int] = (1, 2, 2),
                 embed_dim: int = 128, dropout: float = 0.3, input_pool: int = 0, pool: int = 1):
        if num_classes < 2:
            raise ValueError(f"a judge needs at least 2 classes, got {num_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        super().__init__(input_shape, channels, convs, embed_dim, input_pool, pool)
        self.dropout = nn.Dropout(float(dropout))
        self.head = nn.Linear(int(embed_dim), int(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, K)`` logits."""
        return self.head(self.dropout(self.features(x)))


def check_pixels(x: torch.Tensor, name: str) -> torch.Tensor:
    """Images as float32, refusing none, NaN/inf and values outside ``[0, 1]`` (beyond
    rounding, which is clamped); the messages name judge ``name``."""
    if len(x) == 0:
        raise ValueError(f"judge {name!r} got no images (N = 0)")
    x = x.to(dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError(f"judge {name!r}: the images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise ValueError(
            f"judge {name!r} expects pixel values in [0, 1], got [{lo:.4g}, {hi:.4g}]; "
            "divide 0-255 images by 255, map [-1, 1] with (x + 1) / 2, or clamp with "
            "x.clamp(0, 1)")
    return x.clamp(0, 1) if lo < 0 or hi > 1 else x


@torch.no_grad()
def padded_map(module: nn.Module, fn: Any, x: torch.Tensor, batch_size: int = 500, *,
               progress: bool | None = None, desc: str = "features") -> tuple[torch.Tensor, ...]:
    """``fn`` over ``x`` in batches, in eval mode without gradients: each batch is
    zero-padded to a multiple of ``PAD_MULTIPLE`` rows (so results do not depend on
    ``batch_size``) and moved to ``module``'s device; ``fn`` returns a tuple of
    ``(B, ...)`` tensors, concatenated and returned as float64 CPU tensors.

    Args:
        progress: a tqdm bar; ``None`` shows one when there are 10+ batches.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    starts = range(0, len(x), batch_size)
    if progress is None:
        progress = len(starts) >= 10
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch", leave=False)
    device = next((t.device for t in module.parameters()), torch.device("cpu"))
    was_training = module.training
    module.eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    try:
        for s in starts:
            chunk = x[s:s + batch_size]
            m = len(chunk)
            pad = -m % PAD_MULTIPLE
            if pad:
                chunk = torch.cat([chunk, chunk.new_zeros((pad, *chunk.shape[1:]))])
            out = fn(chunk.to(device))
            parts.append(tuple(o[:m].detach().to("cpu", torch.float64) for o in out))
    finally:
        module.train(was_training)
    return tuple(torch.cat(cols) for cols in zip(*parts))


# ----------------------------------------------------------------------------- the interface
class Judge(nn.Module):
    """A feature network that scores images. Subclasses implement ``_features_and_logits``.

    Attributes:
        name: short name, e.g. ``"fashion-mnist"``.
        feature_space: the label every score computed with this judge prints, e.g.
            ``"judge:fashion-mnist"``.
        input_shape: ``(C, H, W)`` the judge accepts.
        classes: class names (index = label).
        num_classes: ``len(classes)``.
        feature_dim: size ``F`` of ``features(x)``.
        info: the judge's JSON record (training data, accuracy, command, ...).
    """

    name: str
    feature_space: str
    input_shape: tuple[int, int, int]
    classes: list[str]
    feature_dim: int

    def __init__(self, *, name: str, feature_space: str, input_shape: Sequence[int],
                 classes: Sequence[str], feature_dim: int, info: dict[str, Any] | None = None):
        super().__init__()
        self.name = str(name)
        self.feature_space = str(feature_space)
        self.input_shape = tuple(int(v) for v in input_shape)  # type: ignore[assignment]
        self.classes = [str(c) for c in classes]
        self.feature_dim = int(feature_dim)
        self.info = dict(info or {})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # -- to implement
    def _features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated float32 images -> ``((B, F), (B, K))``."""
        raise NotImplementedError

    # -- input checks
    def _check_shape(self, x: torch.Tensor) -> torch.Tensor:
        """Accept ``(N, C, H, W)`` matching ``input_shape`` (``(N, H, W)`` when C == 1)."""
        if x.dim() == 3 and self.input_shape[0] == 1:
            x = x.unsqueeze(1)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            want = ", ".join(map(str, self.input_shape))
            raise ValueError(
                f"judge {self.name!r} expects images of shape (N, {want}), "
                f"got {tuple(x.shape)}; use the judge trained for this data (genlab judge "
                "train --data ... for your own images)")
        return x

    def check_input(self, x: Any) -> torch.Tensor:
        """Validate images and return them as float32 ``(N, C, H, W)`` on the judge's device.

        Raises:
            ValueError: wrong shape, non-finite values, or values outside ``[0, 1]``.
        """
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        x = check_pixels(self._check_shape(x), self.name)
        param = next(self.parameters(), None)
        return x if param is None else x.to(param.device)

    # -- public API
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] -> embedding ``(B, F)`` (float32)."""
        return self._features_and_logits(self.check_input(x).to(self._device()))[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] -> class logits ``(B, K)`` (float32)."""
        return self._features_and_logits(self.check_input(x).to(self._device()))[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    @torch.no_grad()
    def extract(self, x: Any, batch_size: int = 500,
                progress: bool | None = None) -> dict[str, torch.Tensor]:
        """Features and class probabilities of many images, in eval mode without gradients.

        Args:
            x: images ``(N, C, H, W)`` (tensor or array) with values in [0, 1].
            batch_size: images per forward pass. Results do not depend on it: each
                batch is zero-padded to a multiple of ``PAD_MULTIPLE`` images, which makes
                CPU features bit-identical across batch sizes.
            progress: show a tqdm bar; ``None`` shows one when there are 10+ batches.

        Returns:
            ``{"features": (N, F), "logits": (N, K), "probs": (N, K)}``, float64 CPU
            tensors; ``probs`` is the softmax of the logits computed in float64.

        Raises:
            ValueError: bad ``batch_size`` or input (see ``check_input``).
        """
        x = self.check_input(x)
        feats, logits = padded_map(self, self._features_and_logits, x, batch_size, progress=progress,
                                   desc=f"features ({self.feature_space})")
        return {"features": feats, "logits": logits, "probs": torch.softmax(logits, dim=1)}

    def _device(self) -> torch.device:
        """Where the judge's weights are (``judge.to("cuda")`` moves them; features come back
        on the CPU in float64 either way)."""
        for t in self.parameters():
            return t.device
        return torch.device("cpu")

    @torch.no_grad()
    def accuracy(self, x: Any, y: Any, batch_size: int = 500) -> float:
        """Fraction of images ``x`` whose most likely class is the label ``y``."""
        y = torch.as_tensor(np.asarray(y)).reshape(-1)
        probs = self.extract(x, batch_size=batch_size, progress=False)["probs"]
        if len(y) != len(probs):
            raise ValueError(f"{len(probs)} images but {len(y)} labels")
        return float((probs.argmax(1) == y).double().mean())

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, feature_space={self.feature_space!r}, "
                f"input_shape={self.input_shape}, classes={self.num_classes}, "
                f"feature_dim={self.feature_dim}")


class CNNJudge(Judge):
    """A ``JudgeCNN`` trained by genlab (see ``genlab.evaluation.judges.train_judge``).

    Args:
        architecture: config from ``default_architecture`` (``input_shape``,
            ``num_classes``, ...).
        name, feature_space, classes, info: as in ``Judge``.
    """

    def __init__(self, architecture: dict[str, Any], *, name: str, feature_space: str,
                 classes: Sequence[str], info: dict[str, Any] | None = None):
        arch = dict(architecture)
        if len(classes) != arch.get("num_classes"):
            raise ValueError(f"{len(classes)} class names for {arch.get('num_classes')} classes")
        super().__init__(name=name, feature_space=feature_space,
                         input_shape=arch["input_shape"], classes=classes,
                         feature_dim=arch.get("embed_dim", 128), info=info)
        self.architecture = arch
        self.net = JudgeCNN(**arch)

    def _features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.net.features(x)
        return f, self.net.head(self.net.dropout(f))

    kind = "classes"

    def _record_extra(self) -> dict[str, Any]:
        """More fields of the saved record (a subclass's own; ``kind`` picks the class)."""
        return {} if self.kind == "classes" else {"kind": self.kind}

    @classmethod
    def _from_record(cls, record: dict[str, Any]) -> "CNNJudge":
        return cls(record["architecture"], name=record["name"], feature_space=record["feature_space"],
                   classes=record["classes"], info=record)


#: judge classes by the ``kind`` of their saved record (``classes``: a plain classifier)
JUDGE_KINDS: dict[str, type] = {"classes": CNNJudge}


# ----------------------------------------------------------------------------- files
def state_bytes(module: nn.Module, fmt: str = FORMAT) -> bytes:
    """A module's tensors as safetensors bytes (CPU, contiguous), ``fmt`` in the metadata."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    return save(state, metadata={"format": fmt})


def _state_bytes(judge: CNNJudge) -> bytes:
    return state_bytes(judge.net)


def weights_fingerprint(judge: CNNJudge) -> str:
    """SHA-256 (hex) of the judge's weights as serialised to safetensors."""
    return hashlib.sha256(_state_bytes(judge)).hexdigest()


def write_record(folder: str | Path, stem: str, data: bytes, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``folder/<stem>.safetensors`` (``data``) and ``folder/<stem>.json`` (``record``
    with the weights file's name and SHA-256), both atomically. Returns the written record."""
    folder = Path(folder)
    record = dict(record, weights_file=f"{stem}.safetensors",
                  weights_sha256=hashlib.sha256(data).hexdigest())
    record.setdefault("genlab_version", __version__)
    atomic_write_bytes(folder / f"{stem}.safetensors", data)
    atomic_write_json(folder / f"{stem}.json", record)
    return record


def save_judge(judge: CNNJudge, folder: str | Path, *, stem: str = "judge") -> Path:
    """Write ``folder/<stem>.safetensors`` and ``folder/<stem>.json`` (atomically).

    Returns:
        The path of the JSON file.
    """
    if not isinstance(judge, CNNJudge):
        raise ValueError(f"only genlab-trained CNN judges are saved, got {type(judge).__name__}")
    data = _state_bytes(judge)
    record = dict(judge.info)
    record.update({
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": judge.name,
        "feature_space": judge.feature_space, "classes": judge.classes,
        "input_shape": list(judge.input_shape), "num_classes": judge.num_classes,
        "feature_dim": judge.feature_dim, "architecture": judge.architecture,
        "params": sum(p.numel() for p in judge.net.parameters()),
        **judge._record_extra(),
    })
    judge.info = write_record(folder, stem, data, record)
    return Path(folder) / f"{stem}.json"


def read_record(json_path: str | Path, fmt: str = FORMAT, version: int = FORMAT_VERSION
                ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON record at ``json_path`` and the tensors of the safetensors file it names,
    checked: readable JSON of format ``fmt``, a version this genlab reads, the weights'
    SHA-256.

    Raises:
        ModelFormatError: missing or damaged files, another format, a newer version,
            weights that do not match the record (the message names the file).
    """
    from safetensors.torch import load as load_tensors

    json_path = Path(json_path)
    if not json_path.is_file():
        raise ModelFormatError(f"no judge record at {json_path}")
    try:
        record = json.loads(json_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{json_path} is not valid JSON ({err}); the file is damaged") \
            from err
    if not isinstance(record, dict) or record.get("format") != fmt:
        raise ModelFormatError(f"{json_path} is not a {fmt} record")
    if record.get("format_version", 0) > version:
        raise ModelFormatError(f"{json_path} uses {fmt} format {record['format_version']}; this "
                               f"genlab {__version__} reads <= {version}: upgrade genlab")
    weights = json_path.parent / record.get("weights_file", json_path.stem + ".safetensors")
    try:
        data = weights.read_bytes()
    except OSError as err:
        raise ModelFormatError(f"cannot read judge weights {weights}: {err}") from err
    want = record.get("weights_sha256")
    if want and hashlib.sha256(data).hexdigest() != want:
        raise ModelFormatError(f"{weights} does not match its record {json_path} (checksum "
                               "differs): the file is damaged, truncated or from another judge")
    try:
        state = load_tensors(data)
    except Exception as err:  # safetensors raises its own SafetensorError
        raise ModelFormatError(f"{weights} is not a readable safetensors file: {err}") from err
    return record, state


def read_judge(json_path: str | Path) -> CNNJudge:
    """Load a judge from its JSON record and the safetensors file beside it (a
    ``CaptionJudge`` when the record's ``kind`` says ``"attributes"``).

    Raises:
        ModelFormatError: missing or damaged files, a newer format, or weights that do
            not match the record (the message names the file).
    """
    record, state = read_record(json_path)
    kind = record.get("kind", "classes")
    if kind not in JUDGE_KINDS:
        from . import captions  # noqa: F401 - registers the attribute judge's kind

    cls = JUDGE_KINDS.get(kind)
    if cls is None:
        raise ModelFormatError(f"{json_path}: unknown judge kind {kind!r} (known: {', '.join(JUDGE_KINDS)})")
    try:
        judge = cls._from_record(record)
        judge.net.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFormatError(f"judge {json_path} cannot be rebuilt: {err}") from err
    judge.eval()
    judge.requires_grad_(False)
    return judge
