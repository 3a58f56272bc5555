"""Resumable training checkpoints.

A checkpoint holds model, optimizer and scheduler state, torch's global RNG state and the
loop position (step, epoch, batch within the epoch), so a resumed run replays exactly the
same arithmetic as an uninterrupted one. It is written to a temporary file and renamed
over the old one, so a kill at any instant leaves a complete checkpoint.

Checkpoints are read with ``torch.load(weights_only=True)``: the restricted unpickler
accepts only tensors and plain containers, never arbitrary objects. The published model
(``model/``) is safetensors + JSON as everywhere else in genlab.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from ..base import atomic_write_bytes
from ..errors import GenlabError

LAST = "last.pt"


def save_checkpoint(folder: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` to ``folder/last.pt``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    path = Path(folder) / LAST
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(folder: str | Path) -> dict[str, Any] | None:
    """Read ``folder/last.pt``; ``None`` if there is none."""
    path = Path(folder) / LAST
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file: say so rather than a pickle traceback
        raise GenlabError(
            f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); "
            "delete it to restart training from scratch"
        ) from None


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
