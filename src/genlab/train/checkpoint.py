"""Resumable training checkpoints.

A checkpoint holds model, optimizer and scheduler state, torch's global RNG state and the
loop position (step, epoch, batch within the epoch), so a resumed run replays exactly the
same arithmetic as an uninterrupted one. It is written to a temporary file and renamed
over the old one, so a kill at any instant leaves a complete checkpoint; the one before it
is kept as ``previous.pt``. Each file carries the SHA-256 of its payload, checked at every
read: a damaged or altered ``last.pt`` is reported and ``previous.pt`` is used instead, and
weights that are not finite are never written nor resumed from.

Checkpoints are read with ``torch.load(weights_only=True)``: the restricted unpickler
accepts only tensors and plain containers, never arbitrary objects. The published model
(``model/``) is safetensors + JSON as everywhere else in genlab.
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path
from typing import Any

import torch

from ..base import atomic_write_bytes, check_finite_tensors
from ..errors import GenlabError, TrainingDivergedError

LAST = "last.pt"
PREVIOUS = "previous.pt"
# A checkpoint file is MAGIC + the SHA-256 of the payload (32 bytes) + the torch.save payload,
# so a flipped bit anywhere is caught before the state is used. Files without MAGIC (written
# by genlab before hashes were recorded) are read unchecked.
MAGIC = b"GENLAB-CKPT-1\n"
_TMP_PREFIXES = (f".{LAST}.", f".{PREVIOUS}.")
# The layout of the training state inside a checkpoint. 2: optimizers, schedulers and
# guards saved by name, the step's own state, the model config (the one loop with
# pluggable steps). Checkpoints of format 1 (the separate GAN loop, unnamed optimizers)
# are refused by ``check_state_format``.
STATE_FORMAT = 2


class CheckpointError(GenlabError, ValueError):
    """A checkpoint file fails its check (damaged, altered, or not a genlab checkpoint)."""


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file for ``state``: header, SHA-256, payload."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    return MAGIC + hashlib.sha256(payload).digest() + payload


def decode_checkpoint(data: bytes, path: Path) -> dict[str, Any]:
    """Verify and unpickle (restricted: tensors and plain containers only) a checkpoint.

    Raises:
        CheckpointError: the digest does not match, or the payload cannot be read.
    """
    if data.startswith(MAGIC):
        digest, payload = data[len(MAGIC):len(MAGIC) + 32], data[len(MAGIC) + 32:]
        if hashlib.sha256(payload).digest() != digest:
            raise CheckpointError(f"checkpoint {path} fails its SHA-256 check (the file was "
                                  "changed or damaged after it was written)")
    else:
        payload = data
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file: say so rather than a pickle traceback
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is not a genlab checkpoint")
    return state


def _model_tensors(state: dict[str, Any]) -> dict[str, Any]:
    """The model weights in a checkpoint (``model`` for the generic trainer and GANs)."""
    m = state.get("model")
    return m if isinstance(m, dict) else {}


def save_checkpoint(folder: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` to ``folder/last.pt``, keeping the one before it as
    ``previous.pt`` so that one damaged file never loses all progress.

    Weights that are not finite are refused (``TrainingDivergedError``): a checkpoint is
    only ever written from a healthy state.
    """
    folder = Path(folder)
    check_finite_tensors(_model_tensors(state), f"checkpoint at step {state.get('step')}",
                         error=TrainingDivergedError)
    data = encode_checkpoint(state)
    path = folder / LAST
    folder.mkdir(parents=True, exist_ok=True)

    def keep_previous() -> None:  # a kill between the two renames leaves previous.pt: still resumable
        if path.is_file():
            os.replace(path, folder / PREVIOUS)

    atomic_write_bytes(path, data, before_replace=keep_previous)
    return path


def clean_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove temporary files of genlab's own naming (``.last.pt.*.tmp``, ...) that a kill
    during a write left in the checkpoint folder; nothing else is touched. Returns what
    was removed (``genlab.outputs.remove_temporaries``)."""
    from ..outputs import remove_temporaries

    return remove_temporaries(folder, _TMP_PREFIXES)


def load_checkpoint(folder: str | Path, *, log: Any = None) -> dict[str, Any] | None:
    """Read the newest good checkpoint of ``folder``: ``last.pt``, or ``previous.pt`` when
    ``last.pt`` is missing or fails its check (said on stderr, or through ``log``).
    ``None`` when there is none.

    Raises:
        CheckpointError: every checkpoint there fails its check.
    """
    folder = Path(folder)
    errors = []
    for name in (LAST, PREVIOUS):
        path = folder / name
        if not path.is_file():
            continue
        try:
            state = decode_checkpoint(path.read_bytes(), path)
            check_finite_tensors(_model_tensors(state), f"checkpoint {path}", error=CheckpointError)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if errors:
            msg = f"note: {errors[0]}; resuming from the previous checkpoint {path} (step {state.get('step')})"
            (log or (lambda m: print(m, file=sys.stderr)))(msg)
        return state
    if errors:
        raise CheckpointError("; ".join(errors) + ". Delete the checkpoints folder to restart "
                              "training from scratch")
    return None


def check_state_format(state: dict[str, Any], folder: str | Path) -> None:
    """Refuse a checkpoint whose training-state layout this genlab cannot resume.

    Raises:
        CheckpointError: written by an older training loop (one line saying what to do).
    """
    got = state.get("format", 1)
    if got != STATE_FORMAT:
        raise CheckpointError(
            f"the checkpoint in {folder} was written by {'an older' if got < STATE_FORMAT else 'a newer'} "
            f"genlab training loop (state format {got}, this genlab reads {STATE_FORMAT}) and cannot be "
            "resumed: start a new run (its trained model, if saved, still loads)")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read one checkpoint file (verified; tensors and plain containers only).

    Raises:
        CheckpointError: it fails its check or cannot be read.
    """
    path = Path(path)
    return decode_checkpoint(path.read_bytes(), path)


def discard_newest(folder: str | Path) -> bool:
    """Drop ``last.pt`` and make ``previous.pt`` the newest again (used when the weights
    in ``last.pt`` turn out to be the ones that diverged). Returns whether it did."""
    folder = Path(folder)
    if (folder / PREVIOUS).is_file():
        os.replace(folder / PREVIOUS, folder / LAST)
        return True
    return False


def checkpoint_step(folder: str | Path) -> int | None:
    """The step of ``folder/last.pt`` (verified), or ``None``."""
    try:
        path = Path(folder) / LAST
        return int(read_checkpoint(path).get("step")) if path.is_file() else None
    except (CheckpointError, TypeError, ValueError):
        return None


def open_metrics_log(path: str | Path, resumed_step: int | None) -> tuple[Any, list[dict[str, Any]]]:
    """Open a run's ``metrics.jsonl`` for appending.

    A fresh run (``resumed_step is None``) starts an empty log. A resumed run keeps the
    rows up to the checkpoint's step and drops the ones the checkpoint never saw, so the
    log of a resumed run equals that of an uninterrupted one.

    Returns:
        ``(file, rows kept)``.
    """
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, Any]] = []
    if resumed_step is not None and path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        history = [r for r in rows if r.get("step", 0) <= resumed_step]
        path.write_text("".join(json.dumps(r) + "\n" for r in history))
    return open(path, "a" if resumed_step is not None else "w"), history
